//! The contract every storage backend keeps, as one suite: the local directory runs it in
//! unit tests, an S3 bucket on a real Garage in `tests/s3_storage.rs`.

use std::path::Path;

use futures_util::TryStreamExt;

use super::{ObjectKey, ObjectStore, StorageError};

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(31).wrapping_add(seed) % 251) as u8)
        .collect()
}

fn spool(dir: &Path, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(format!("spool-{}-{}", bytes.len(), ObjectKey::random().as_str()));
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Runs every check. `scratch` is a directory for spool files; `large` is a size that
/// takes the backend's multipart path (for S3, more than one part).
pub async fn run(store: &dyn ObjectStore, scratch: &Path, large: usize) {
    let before = store.list().await.unwrap().len();
    let key = ObjectKey::random();
    assert!(matches!(store.len(&key).await, Err(StorageError::NotFound)));
    assert!(matches!(
        store.read_at(&key, 0, 1).await,
        Err(StorageError::NotFound)
    ));

    let data = pattern(100_000, 7);
    let s = spool(scratch, &data);
    store.commit(&key, &s).await.unwrap();
    assert!(!s.exists(), "the spool file is consumed");
    let listed = store.list().await.unwrap();
    let mine = listed.iter().find(|l| l.key == key).expect("listed");
    let now = crate::sys::now();
    assert!(
        mine.modified <= now + 5 && mine.modified + 600 >= now,
        "modified {} now {now}",
        mine.modified
    );
    assert_eq!(store.len(&key).await.unwrap(), data.len() as u64);
    assert_eq!(store.read_at(&key, 0, 10).await.unwrap(), &data[..10]);
    assert_eq!(store.read_at(&key, 99_990, 100).await.unwrap(), &data[99_990..]);
    assert_eq!(store.read_at(&key, 100_000, 10).await.unwrap(), b"");
    assert_eq!(store.read_at(&key, 200_000, 10).await.unwrap(), b"");
    // One ranged read streams the whole range, in whatever pieces.
    let pieces: Vec<bytes::Bytes> = store
        .read_range(&key, 1_000, 60_000)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pieces.concat(), &data[1_000..61_000]);

    // A large object arrives whole, byte for byte.
    let big_key = ObjectKey::random();
    let big = pattern(large, 3);
    store.commit(&big_key, &spool(scratch, &big)).await.unwrap();
    assert_eq!(store.len(&big_key).await.unwrap(), large as u64);
    let whole: Vec<bytes::Bytes> = store
        .read_range(&big_key, 0, large as u64)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(whole.concat() == big, "the large object differs");
    let tail = store.read_at(&big_key, large as u64 - 5, 100).await.unwrap();
    assert_eq!(tail, &big[large - 5..]);

    // Committing over a key replaces the object whole (a retried commit).
    let other = pattern(5_000, 11);
    store.commit(&key, &spool(scratch, &other)).await.unwrap();
    assert_eq!(store.read_at(&key, 0, 10_000).await.unwrap(), other);

    store.check().await.unwrap();
    for k in [&key, &big_key] {
        store.delete(k).await.unwrap();
        store.delete(k).await.unwrap();
        assert!(matches!(
            store.read_at(k, 0, 1).await,
            Err(StorageError::NotFound)
        ));
    }
    assert_eq!(store.list().await.unwrap().len(), before);
}
