//! The contract every backend must keep; run against each backend.

use super::*;

#[tokio::test]
async fn local_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&dir.path().join("objects")).unwrap();
    super::conformance::run(&store, dir.path(), 3 << 20).await;
}

#[test]
fn object_keys_are_strict() {
    assert!(ObjectKey::parse(ObjectKey::random().as_str()).is_some());
    for bad in [
        "",
        "f_",
        "f_../../etc",
        "F_0123456789abcdef",
        "f_0123456789ABCDEF",
        "x_0123456789abcdef",
    ] {
        assert!(ObjectKey::parse(bad).is_none(), "{bad}");
    }
}

#[tokio::test]
async fn a_spool_on_another_filesystem_is_copied_in_whole() {
    use std::os::unix::fs::MetadataExt;
    // /dev/shm is a tmpfs on Linux: another filesystem than the temp directory's.
    let spool_dir = tempfile::tempdir_in("/dev/shm").expect("a tmpfs at /dev/shm");
    let dir = tempfile::tempdir().unwrap();
    assert_ne!(
        std::fs::metadata(spool_dir.path()).unwrap().dev(),
        std::fs::metadata(dir.path()).unwrap().dev(),
        "the test needs two filesystems"
    );
    let store = LocalStore::open(&dir.path().join("objects")).unwrap();
    let key = ObjectKey::random();
    let spool = spool_dir.path().join("upload.part");
    let data: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&spool, &data).unwrap();
    store.commit(&key, &spool).await.unwrap();
    assert!(!spool.exists());
    assert_eq!(store.read_at(&key, 0, 100_000).await.unwrap(), data);
    let fan_out = dir.path().join("objects").join(&key.as_str()[2..4]);
    let names: Vec<_> = std::fs::read_dir(fan_out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [key.as_str()], "no partial copy is left beside the object");
}

#[tokio::test]
async fn a_copy_a_crash_left_half_done_is_removed_once_it_is_old() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&dir.path().join("objects")).unwrap();
    let fan_out = dir.path().join("objects").join("ab");
    std::fs::create_dir_all(&fan_out).unwrap();
    let (old, fresh) = (fan_out.join(".f_ab00.part"), fan_out.join(".f_ab11.part"));
    for p in [&old, &fresh] {
        std::fs::write(p, b"half").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    assert!(store.list().await.unwrap().is_empty());
    assert!(!old.exists(), "an old half copy goes");
    assert!(fresh.exists(), "a copy that may still be in progress stays");
}

#[test]
fn sidecar_keys_name_their_file_and_are_no_file_keys() {
    let file = ObjectKey::random();
    let thumb = file.sidecar(Sidecar::Thumb);
    assert_eq!(thumb.as_str(), format!("{}.thumb", file.as_str()));
    assert_eq!(thumb.owner(), file);
    assert_eq!(thumb.sidecar(Sidecar::Preview), file.sidecar(Sidecar::Preview));
    assert_eq!(ObjectKey::parse_any(thumb.as_str()), Some(thumb.clone()));
    assert_eq!(
        ObjectKey::parse(thumb.as_str()),
        None,
        "a sidecar is never a file id"
    );
    for bad in [
        "f_zz.thumb",
        "f_0123456789abcdef.other",
        "f_0123456789abcdef.thumb.thumb",
        ".thumb",
    ] {
        assert_eq!(ObjectKey::parse_any(bad), None, "{bad}");
    }
}
