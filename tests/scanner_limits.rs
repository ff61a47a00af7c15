//! clamd's limits set below upgate's cap with `AlertExceedsMax yes` (it reports what it does
//! not read): the depth canary learns how deep it scans, readiness warns, settings that allow
//! larger files are refused, and a larger file on an older link is refused as unscannable,
//! never stored as clean. The scanner stays up for everyone else.

mod common;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use common::clamd::Clamd;
use common::files::pdf;
use common::scene::{scene, settings};
use common::upgate::{upload_file, Upgate};

const LOW_LIMITS: &str = "StreamMaxLength 1M\nMaxFileSize 1M\nMaxScanSize 1M\n";

async fn upload(up: &Upgate, url: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    upload_file(&up.gateway_client(), url, "doc.pdf", "application/pdf", bytes).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_over_clamds_own_limit_is_refused_as_unscannable() {
    // An assistant and a link set up while clamd scanned deep enough.
    let mut deep = Clamd::start();
    let mut up = Upgate::configure(&format!(
        "[scanner]\nclamd = \"unix:{}\"\n",
        deep.socket.display()
    ));
    up.start().await;
    let scene = scene(&up, settings(5, 3_000_000)).await;
    let (url, _) = scene.link("call-limits").await;

    // clamd is restarted with limits below the link's.
    deep.stop();
    let _shallow = Clamd::start_custom(
        &format!("{LOW_LIMITS}AlertExceedsMax yes\n"),
        Clamd::DATABASES,
        Some(&deep.socket),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let body = up.readyz().await;
        // Up, and done searching for clamd's limit.
        if (body["scanner"]["status"] == "up" && body["scanner"]["deepening"] == false)
            || Instant::now() > deadline
        {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(body["scanner"]["status"], "up", "{body}");
    // Found by halving from upgate's ceiling (to 800 KiB), then by searching between that and
    // the smallest size refused: within a sixteenth of clamd's real limit (1M).
    let depth = body["scanner"]["depth"].as_u64().unwrap();
    assert!((1024 * 1024 * 15 / 16..=1024 * 1024).contains(&depth), "{body}");
    let warning = body["scanner"]["warnings"][0].as_str().unwrap();
    assert!(warning.contains("StreamMaxLength"), "{warning}");

    // A file beyond what clamd proved it scans: refused, recorded, not stored.
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
    assert_eq!(up.readyz().await["scanner"]["status"], "up");
    let (status, body) = upload(&up, &url, pdf("small", 1000)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["file"]["scan"]["status"], "clean");

    let (_, call) = scene.reviewer.get("/v1/calls/call-limits").await;
    assert_eq!(call["files"].as_array().unwrap().len(), 1);
    assert_eq!(call["events"][0]["detail"]["code"], "unscannable");
    assert_eq!(call["events"][0]["detail"]["scan"]["status"], "not_scanned");

    // New settings above what the scanner proves are refused, naming the clamd settings.
    let (status, body) = scene
        .admin
        .put("/v1/assistants/desk", settings(5, 3_000_000))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "max_file_bytes_over_scanner_depth");
    assert!(body["detail"].as_str().unwrap().contains("StreamMaxLength"));
    let (status, body) = scene.admin.put("/v1/assistants/desk", settings(5, depth)).await;
    assert!(status.is_success(), "{body}");
}
