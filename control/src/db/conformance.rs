//! What every [`Kv`] engine must do. `open` is called again to check persistence, so it
//! must reopen the same database (after the previous handle is dropped).

use super::{Kv, Op, Tree};

pub fn run<K: Kv>(open: impl Fn() -> K) {
    {
        let kv = open();
        assert_eq!(kv.get(Tree::Calls, b"a/1").unwrap(), None);
        kv.apply(vec![
            Op::Put(Tree::Calls, b"a/1".to_vec(), b"one".to_vec()),
            Op::Put(Tree::Calls, b"a/2".to_vec(), b"two".to_vec()),
            Op::Put(Tree::Calls, b"b/1".to_vec(), b"other".to_vec()),
            Op::Put(Tree::Files, b"f".to_vec(), b"file".to_vec()),
        ])
        .unwrap();
        assert_eq!(kv.get(Tree::Calls, b"a/1").unwrap().as_deref(), Some(&b"one"[..]));
        // Trees are separate namespaces.
        assert_eq!(kv.get(Tree::Files, b"a/1").unwrap(), None);
        let scanned = kv.scan_prefix(Tree::Calls, b"a/").unwrap();
        assert_eq!(scanned.len(), 2);
        assert_eq!(scanned[0].0, b"a/1");
        assert_eq!(scanned[1].0, b"a/2");
        let newest = kv.scan_prefix_rev(Tree::Calls, b"a/", 1).unwrap();
        assert_eq!(newest.len(), 1);
        assert_eq!(newest[0].0, b"a/2");
        assert_eq!(kv.scan_prefix_rev(Tree::Calls, b"a/", 10).unwrap().len(), 2);
        // Below a key, within the prefix only, highest first: the next page of a list.
        let below = kv.scan_rev_before(Tree::Calls, b"a/", Some(b"a/2"), 10).unwrap();
        assert_eq!(below.iter().map(|e| e.0.as_slice()).collect::<Vec<_>>(), [b"a/1"]);
        assert!(kv
            .scan_rev_before(Tree::Calls, b"a/", Some(b"a/1"), 10)
            .unwrap()
            .is_empty());
        // A `before` past the prefix (a forged cursor) still yields the prefix's keys only.
        let forged = kv.scan_rev_before(Tree::Calls, b"a/", Some(b"z"), 10).unwrap();
        assert_eq!(forged.len(), 2);
        // From a key on, within the prefix only, at most `limit`.
        let from = kv.scan_from(Tree::Calls, b"a/", b"a/2", 10).unwrap();
        assert_eq!(from.len(), 1);
        assert_eq!(from[0].0, b"a/2");
        assert_eq!(kv.scan_from(Tree::Calls, b"a/", b"a/", 1).unwrap()[0].0, b"a/1");
        assert!(kv.scan_from(Tree::Calls, b"a/", b"a/3", 10).unwrap().is_empty());
        kv.apply(vec![
            Op::Delete(Tree::Calls, b"a/2".to_vec()),
            Op::Put(Tree::Audit, b"x".to_vec(), vec![]),
        ])
        .unwrap();
        assert_eq!(kv.get(Tree::Calls, b"a/2").unwrap(), None);
        let a = kv.next_id().unwrap();
        let b = kv.next_id().unwrap();
        assert!(b > a);
    }
    // Acknowledged writes survive a reopen.
    let kv = open();
    assert_eq!(kv.get(Tree::Calls, b"a/1").unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(kv.get(Tree::Calls, b"a/2").unwrap(), None);
    assert_eq!(kv.get(Tree::Files, b"f").unwrap().as_deref(), Some(&b"file"[..]));
    assert_eq!(kv.get(Tree::Audit, b"x").unwrap().as_deref(), Some(&b""[..]));
    // Ids keep growing across restarts.
    let c = kv.next_id().unwrap();
    assert!(c > 1);
    drop(kv);
    concurrent_writers(&open);
}

/// Many threads applying at once, each batch spanning trees: every acknowledged batch is
/// whole, and all of them are there after a reopen.
fn concurrent_writers<K: Kv>(open: &impl Fn() -> K) {
    const THREADS: usize = 16;
    const EACH: usize = 50;
    {
        let kv = open();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let kv = &kv;
                s.spawn(move || {
                    for i in 0..EACH {
                        let key = format!("w/{t:02}/{i:03}").into_bytes();
                        kv.apply(vec![
                            Op::Put(Tree::Links, key.clone(), b"link".to_vec()),
                            Op::Put(Tree::Files, key.clone(), b"file".to_vec()),
                        ])
                        .unwrap();
                        // Read-your-writes: an acknowledged batch is visible, both halves.
                        assert!(kv.get(Tree::Links, &key).unwrap().is_some());
                        assert!(kv.get(Tree::Files, &key).unwrap().is_some());
                    }
                });
            }
        });
        // A write made visible and then waited for through `durable` counts too.
        kv.write(vec![Op::Put(Tree::Audit, b"late".to_vec(), b"1".to_vec())])
            .unwrap();
        kv.durable().wait().unwrap();
    }
    let kv = open();
    assert_eq!(kv.scan_prefix(Tree::Links, b"w/").unwrap().len(), THREADS * EACH);
    assert_eq!(kv.scan_prefix(Tree::Files, b"w/").unwrap().len(), THREADS * EACH);
    assert_eq!(kv.get(Tree::Audit, b"late").unwrap().as_deref(), Some(&b"1"[..]));
}
