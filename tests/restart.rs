//! What is acknowledged survives: after kill -9 and a restart, the call, its file and the
//! audit trail are there and the file downloads byte for byte. A sealed object that was
//! tampered with on disk is refused before any byte of it is sent.

mod common;

use reqwest::StatusCode;

use common::files::pdf;
use common::scene::{scene, settings};
use common::upgate::{upload_file, Upgate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_uploads_survive_kill_9_and_tampering_is_refused() {
    let mut up = Upgate::configure("");
    up.start().await;
    let scene = scene(&up, settings(5, 2_000_000)).await;
    let (url, _) = scene.link("call-crash").await;
    // Several segments, so the tampering below lands in the middle of the file.
    let doc = pdf("contract", 300_000);
    let (status, stored) = upload_file(
        &up.gateway_client(),
        &url,
        "contract.pdf",
        "application/pdf",
        doc.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let file_id = stored["file"]["id"].as_str().unwrap().to_string();

    up.kill9();
    // What a crash between storage and the record would leave: an object no record names.
    let orphan = up
        .data_dir()
        .join("objects/ab/f_ab000000000000000000000000000000");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"sealed bytes of an upload that was never recorded").unwrap();
    up.start().await;
    assert!(!orphan.exists(), "the start-up sweep removes unrecorded objects");
    let (_, call) = scene.reviewer.get("/v1/calls/call-crash").await;
    assert_eq!(call["files"][0]["id"], file_id.as_str());
    let content = format!("/v1/files/{file_id}/content");
    let got = scene.reviewer.fetch(&content, None).await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), doc.as_slice());

    // Flip one byte of the sealed object on disk, past the first segment.
    let object = up.data_dir().join("objects").join(&file_id[2..4]).join(&file_id);
    let mut sealed = std::fs::read(&object).unwrap();
    let at = sealed.len() - 1000;
    sealed[at] ^= 0x01;
    std::fs::write(&object, &sealed).unwrap();
    let got = scene.reviewer.fetch(&content, None).await;
    assert_eq!(got.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: serde_json::Value = got.json().await.unwrap();
    assert_eq!(
        body["code"], "file_integrity_failed",
        "refused whole, not cut off mid-stream"
    );

    // Dropping the last segment whole (a cut at a segment boundary) is refused too.
    const SEGMENT: usize = 64 * 1024;
    let last_segment = doc.len() % SEGMENT + 16;
    std::fs::write(&object, &sealed[..sealed.len() - last_segment]).unwrap();
    let got = scene.reviewer.fetch(&content, None).await;
    assert_eq!(got.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
