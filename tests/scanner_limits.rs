//! clamd's limits set below upgate's own cap (a common misconfiguration): a file clamd
//! refuses to read whole is refused as unscannable, never stored as clean, and the scanner
//! is not declared down for it; other callers' uploads go on being scanned.

mod common;

use reqwest::StatusCode;
use serde_json::Value;

use common::clamd::Clamd;
use common::files::pdf;
use common::scene::{scene, settings};
use common::upgate::{upload_file, Upgate};

async fn upload(up: &Upgate, url: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    upload_file(&up.gateway_client(), url, "doc.pdf", "application/pdf", bytes).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_clamds_own_limit_is_refused_as_unscannable() {
    let clamd = Clamd::start_with_limits("StreamMaxLength 1M\nMaxFileSize 1M\nMaxScanSize 1M\n");
    let mut up = Upgate::configure(&format!(
        "[scanner]\nclamd = \"unix:{}\"\n",
        clamd.socket.display()
    ));
    up.start().await;
    let scene = scene(&up, settings(5, 3_000_000)).await;
    let (url, _) = scene.link("call-limits").await;

    let (status, body) = upload(&up, &url, pdf("big", 2_000_000)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unscannable")),
        "{body}"
    );
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("couldn't check this file"));

    // The scanner is still up and the link still takes a file clamd can read.
    let ready: Value = reqwest::get(format!("{}/readyz", up.monitor))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["scanner"]["status"], "up", "{ready}");
    let (status, body) = upload(&up, &url, pdf("small", 1000)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["file"]["scan"]["status"], "clean");

    let (_, call) = scene.reviewer.get("/v1/calls/call-limits").await;
    assert_eq!(call["files"].as_array().unwrap().len(), 1);
    assert_eq!(call["events"][0]["detail"]["code"], "unscannable");
    assert_eq!(call["events"][0]["detail"]["scan"]["status"], "not_scanned");
}
