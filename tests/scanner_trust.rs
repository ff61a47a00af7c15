//! The scanner's health is state, not a moment: a clamd is trusted only after it proved,
//! since it last came up, that it detects (the EICAR canary and upgate's depth signature)
//! and that it scans as deep as our largest file or reports its limit. Until then every
//! upload is "not scanned": refused, never stored as clean. Real clamd throughout.

mod common;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use common::clamd::Clamd;
use common::files::pdf;
use common::poll::wait_scanner;
use common::scene::{scene, settings, Scene};
use common::upgate::{upload_file, Upgate};

async fn start(clamd: &Clamd) -> (Upgate, Scene) {
    let mut up = Upgate::configure(&format!(
        "[scanner]\nclamd = \"unix:{}\"\n",
        clamd.socket.display()
    ));
    up.start().await;
    let scene = scene(&up, settings(10, 1_000_000)).await;
    (up, scene)
}

async fn upload(up: &Upgate, url: &str, name: &str) -> (StatusCode, Value) {
    upload_file(
        &up.gateway_client(),
        url,
        name,
        "application/pdf",
        pdf(name, 2000),
    )
    .await
}

async fn files_on(scene: &Scene, call: &str) -> Vec<Value> {
    let (_, call) = scene.reviewer.get(&format!("/v1/calls/{call}")).await;
    call["files"].as_array().cloned().unwrap_or_default()
}

/// The attack run's high finding: clamd came back answering, with a database that no longer
/// detects the canary; an upload was then stored as clean with no engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_after_a_scanner_restart() {
    let mut first = Clamd::start();
    let (up, scene) = start(&first).await;
    let (url, _) = scene.link("call-restart").await;
    let (status, body) = upload(&up, &url, "before").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["file"]["scan"]["status"], "clean");
    assert!(body["file"]["scan"]["engine"]
        .as_str()
        .unwrap()
        .starts_with("ClamAV "));

    // clamd stops: trust goes at once, without waiting for an upload to find out.
    first.stop();
    wait_scanner(&up, "down").await;
    let (status, body) = upload(&up, &url, "while-down").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("scanner_unavailable")),
        "{body}"
    );

    // It comes back answering, with a database that does not detect the canary.
    let blind = Clamd::start_custom(
        "StreamMaxLength 64M\nMaxFileSize 64M\nMaxScanSize 256M\nAlertExceedsMax yes\n",
        &["tests/clamav/no-canary.ndb", "config/clamav/upgate-canary.ndb"],
        Some(&first.socket),
    );
    let body = wait_scanner(&up, "down").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !up.readyz().await["scanner"]["detail"]
        .as_str()
        .unwrap_or("")
        .contains("canary not detected")
    {
        assert!(Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for name in ["blind-1", "blind-2"] {
        let (status, body) = upload(&up, &url, name).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["code"], "scanner_unavailable");
    }
    assert_eq!(
        files_on(&scene, "call-restart").await.len(),
        1,
        "nothing stored while blind"
    );
    drop(blind);

    // A clamd without upgate's depth signature is not trusted either, and says what to install.
    let shallow = Clamd::start_custom(
        "StreamMaxLength 64M\nMaxFileSize 64M\nMaxScanSize 256M\nAlertExceedsMax yes\n",
        &["tests/clamav/upgate-test.ndb"],
        Some(&first.socket),
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let body = up.readyz().await;
        if body["scanner"]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("upgate-canary.ndb")
        {
            break;
        }
        assert!(Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = upload(&up, &url, "shallow").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    drop(shallow);

    // A working clamd comes back: trusted again by itself, and the link still works.
    let _good = Clamd::start_custom(
        "StreamMaxLength 64M\nMaxFileSize 64M\nMaxScanSize 256M\nAlertExceedsMax yes\n",
        Clamd::DATABASES,
        Some(&first.socket),
    );
    wait_scanner(&up, "up").await;
    let (status, body) = upload(&up, &url, "after").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let files = files_on(&scene, "call-restart").await;
    assert_eq!(files.len(), 2);
    for f in files {
        assert_eq!(f["scan"]["status"], "clean");
        assert!(
            f["scan"]["engine"].as_str().unwrap().starts_with("ClamAV "),
            "{f}"
        );
    }
}

/// clamd with limits below our largest file and `AlertExceedsMax no` answers OK for files it
/// never read. The depth canary catches each limit that can do it; readiness names the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanner_whose_limits_are_below_ours() {
    for limits in [
        "StreamMaxLength 64M\nMaxFileSize 1M\nMaxScanSize 256M\nAlertExceedsMax no\n",
        "StreamMaxLength 64M\nMaxFileSize 64M\nMaxScanSize 1M\nAlertExceedsMax no\n",
    ] {
        let clamd = Clamd::start_custom(limits, Clamd::DATABASES, None);
        let (up, scene) = start(&clamd).await;
        let body = up.readyz().await;
        assert_eq!(body["scanner"]["status"], "down", "{limits}: {body}");
        let detail = body["scanner"]["detail"].as_str().unwrap();
        assert!(
            detail.contains("AlertExceedsMax yes") && detail.contains("MaxFileSize"),
            "{detail}"
        );
        let (url, _) = scene.link("call-silent").await;
        let (status, body) = upload(&up, &url, "small").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{limits}: {body}");
        assert!(files_on(&scene, "call-silent").await.is_empty());
    }
}
