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
