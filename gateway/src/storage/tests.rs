//! The contract every backend must keep; run against each backend.

use super::*;

async fn spool(dir: &Path, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(format!("spool-{}", bytes.len()));
    std::fs::write(&p, bytes).unwrap();
    p
}

pub async fn conformance(store: &dyn ObjectStore, scratch: &Path) {
    let key = ObjectKey::random();
    assert!(matches!(store.len(&key).await, Err(StorageError::NotFound)));
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let s = spool(scratch, &data).await;
    store.commit(&key, &s).await.unwrap();
    assert!(!s.exists(), "the spool file is consumed");
    assert_eq!(store.list().await.unwrap(), vec![key.clone()]);
    assert_eq!(store.len(&key).await.unwrap(), data.len() as u64);
    assert_eq!(store.read_at(&key, 0, 10).await.unwrap(), &data[..10]);
    assert_eq!(store.read_at(&key, 99_990, 100).await.unwrap(), &data[99_990..]);
    assert_eq!(store.read_at(&key, 200_000, 10).await.unwrap(), b"");
    store.check().await.unwrap();
    store.delete(&key).await.unwrap();
    store.delete(&key).await.unwrap();
    assert!(matches!(
        store.read_at(&key, 0, 1).await,
        Err(StorageError::NotFound)
    ));
    assert!(store.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn local_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&dir.path().join("objects")).unwrap();
    conformance(&store, dir.path()).await;
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
