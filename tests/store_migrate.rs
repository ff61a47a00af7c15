//! Moving an installation's files from the local directory to S3: `upgate store migrate`
//! copies and verifies every sealed object, a second run copies nothing, and upgate started
//! on the bucket serves every file byte-exact.

mod common;

use common::files::{pdf, sha256_hex};
use common::garage::Garage;
use common::scene::{scene, settings};
use common::upgate::{upload_file, Upgate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_files_move_to_s3_verified_and_resumable() {
    let garage = Garage::start();
    let mut up = Upgate::configure("");
    up.start().await;
    let s = scene(&up, settings(5, 20 << 20)).await;
    let (link, _) = s.link("call-1").await;
    let client = up.gateway_client();
    // One small file and one that takes the multipart path (over 8 MiB sealed).
    let files = [pdf("small", 10_000), pdf("large", 9 << 20)];
    let mut ids = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let (status, body) = upload_file(
            &client,
            &link,
            &format!("f{i}.pdf"),
            "application/pdf",
            file.clone(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["file"]["id"].as_str().unwrap().to_string());
    }
    up.stop();

    // Without an S3 destination configured, the command says what to set.
    let (ok, _, err) = up.cli(&["store", "migrate", "--from", "local", "--to", "s3"]);
    assert!(!ok && err.contains("storage.backend"), "{err}");

    up.rewrite_config(&garage.storage_config());
    let (ok, out, err) = up.cli(&["store", "migrate", "--from", "local", "--to", "s3"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("copied 2 file(s)") && out.contains("0 already"),
        "{out}"
    );
    let (ok, out, err) = up.cli(&["store", "migrate", "--from", "local", "--to", "s3"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("copied 0 file(s)") && out.contains("2 already"),
        "{out}"
    );

    // Started on the bucket alone (the local copies moved aside), every file downloads exact.
    std::fs::rename(
        up.data_dir().join("objects"),
        up.dir.path().join("objects-before-s3"),
    )
    .unwrap();
    up.start().await;
    for (id, file) in ids.iter().zip(&files) {
        let resp = s.reviewer.fetch(&format!("/v1/files/{id}/content"), None).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(sha256_hex(&resp.bytes().await.unwrap()), sha256_hex(file));
    }
    let ready = up.readyz().await;
    assert_eq!(ready["storage"]["status"], "up", "{ready}");
}
