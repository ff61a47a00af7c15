//! The storage contract on a real S3 server (Garage): the same suite the local directory
//! passes, multipart uploads for large objects, the lifecycle rule for unfinished ones, and
//! an outage that answers "unavailable" and recovers by itself.

mod common;

use common::garage::Garage;
use upgate_gateway::storage::s3::{LifecycleState, S3Settings, PART_BYTES};
use upgate_gateway::storage::{conformance, ObjectKey, ObjectStore, S3Store, StorageError};

fn store(garage: &Garage) -> S3Store {
    S3Store::open(S3Settings {
        endpoint: garage.endpoint.clone(),
        region: garage.region.clone(),
        bucket: garage.bucket.clone(),
        path_style: true,
        access_key_id: garage.key_id.clone(),
        secret_access_key: zeroize::Zeroizing::new(garage.secret.clone()),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_bucket_keeps_the_storage_contract() {
    let mut garage = Garage::start();
    let s3 = store(&garage);
    let scratch = tempfile::tempdir().unwrap();

    // The lifecycle rule: installed on a bare bucket, found on the next start.
    assert_eq!(s3.ensure_lifecycle().await.unwrap(), LifecycleState::Installed);
    assert_eq!(s3.ensure_lifecycle().await.unwrap(), LifecycleState::Present);

    // Two and a half parts: the multipart path, with a short last part.
    conformance::run(&s3, scratch.path(), PART_BYTES * 5 / 2).await;

    // Storage down: every call says so (no hang, no panic), and nothing is half-written.
    // Readiness keeps a working bucket's answer for a moment (probes are frequent), and
    // forgets it as soon as a write fails.
    s3.check().await.unwrap();
    garage.stop();
    assert!(s3.check().await.is_ok(), "a fresh answer is kept");
    let key = ObjectKey::random();
    let spool = scratch.path().join("spool-outage");
    std::fs::write(&spool, b"sealed bytes").unwrap();
    assert!(matches!(s3.commit(&key, &spool).await, Err(StorageError::Io(_))));
    assert!(
        spool.exists(),
        "a failed commit keeps the spool for the caller to clean up"
    );
    assert!(s3.check().await.is_err());
    // Back: the same store object works again, unaided.
    garage.restart();
    s3.check().await.unwrap();
    s3.commit(&key, &spool).await.unwrap();
    assert_eq!(s3.read_at(&key, 0, 100).await.unwrap(), b"sealed bytes");
    s3.delete(&key).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_an_error_not_an_empty_bucket() {
    let garage = Garage::start();
    let mut settings_secret = garage.secret.clone();
    settings_secret.replace_range(0..4, "0000");
    let s3 = S3Store::open(S3Settings {
        endpoint: garage.endpoint.clone(),
        region: garage.region.clone(),
        bucket: garage.bucket.clone(),
        path_style: true,
        access_key_id: garage.key_id.clone(),
        secret_access_key: zeroize::Zeroizing::new(settings_secret),
    })
    .unwrap();
    assert!(s3.check().await.is_err());
    assert!(s3.list().await.is_err());
}
