//! The small ones: `Retry-After` on every 503 and 429 a caller sees, readiness that says no
//! when the disk is nearly full (and uploads refused before it fills, counting the room
//! promised to uploads in flight), and readiness that
//! answers at once while the server drains instead of hanging.

mod common;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use common::files::pdf;
use common::scene::{scene, settings};
use common::slow_clamd::SlowClamd;
use common::upgate::{upload_file, Upgate};
use upgate_gateway::disk::DiskWatch;

fn retry_after(resp: &reqwest::Response) -> Option<u64> {
    resp.headers().get("retry-after")?.to_str().ok()?.parse().ok()
}

async fn upload(up: &Upgate, url: &str) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(pdf("doc", 100))
        .file_name("doc.pdf")
        .mime_str("application/pdf")
        .unwrap();
    up.gateway_client()
        .post(format!("{url}/files"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_every_503_and_429() {
    // A scanner that is configured but not there: uploads and readiness answer 503.
    let mut up = Upgate::configure_gateway(
        "link_failures_per_minute = 2\n",
        "[scanner]\nclamd = \"unix:/nonexistent/clamd.sock\"\n",
    );
    up.start().await;
    let scene = scene(&up, settings(2, 200_000)).await;
    let (url, _) = scene.link("call-retry").await;
    let client = up.gateway_client();

    let resp = upload(&up, &url).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry_after(&resp).is_some(), "upload 503");
    let base = format!("https://127.0.0.1:{}", up.gateway_port);
    let resp = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry_after(&resp).is_some(), "public readyz 503");
    let resp = reqwest::get(format!("{}/readyz", up.monitor)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry_after(&resp).is_some(), "monitoring readyz 503");

    // Guessing links: 429 for the page and for the script's endpoints alike.
    for _ in 0..3 {
        client
            .get(format!("{base}/u/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
            .send()
            .await
            .unwrap();
    }
    let resp = client
        .get(format!("{base}/u/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&resp).is_some(), "page 429");
    let resp = client.post(format!("{url}/done")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after(&resp).is_some(), "JSON 429");
}

/// Room is promised, not only checked: two large resumable uploads that each fit on the
/// disk, but not together, are not both started (the second would fill it halfway through);
/// the room comes back when the first one ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_promised_to_an_upload_in_flight_is_not_promised_twice() {
    const FILE: u64 = 48 << 20;
    // The data directory is made under the temporary directory: the same filesystem.
    let free = DiskWatch::new(&std::env::temp_dir(), 0).free().unwrap();
    // Room above the watermark for a file and a half: what else writes on this disk during
    // the test may move that by up to half a file either way.
    let min_free = free - FILE * 3 / 2;
    let mut up = Upgate::configure_gateway(&format!("min_free_disk = \"{min_free} B\"\n"), "");
    up.start().await;
    let scene = scene(&up, settings(3, FILE)).await;
    let (url, _) = scene.link("call-room").await;
    let client = up.gateway_client();
    let create = || {
        client
            .post(format!("{url}/tus"))
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", FILE.to_string())
            .send()
    };

    let first = create().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let second = create().await.unwrap();
    assert_eq!(
        second.status(),
        StatusCode::INSUFFICIENT_STORAGE,
        "the first one's room was promised"
    );
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["code"], "insufficient_storage");
    // Readiness counts the promise, and the half file left above the watermark is still ready.
    let ready: Value = reqwest::get(format!("{}/readyz", up.monitor))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["disk"]["status"], "ok", "{ready}");
    let unpromised = ready["disk"]["free_bytes"].as_u64().unwrap();
    assert!(
        unpromised < min_free + FILE,
        "free_bytes leaves out the promise: {ready}"
    );

    // Terminated, the first upload gives its room back.
    let origin = &url[..url.find("/u/").unwrap()];
    let location = first.headers()["location"].to_str().unwrap();
    let resp = client
        .delete(format!("{origin}{location}"))
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(create().await.unwrap().status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_not_ready_when_the_disk_is_nearly_full() {
    let mut up = Upgate::configure_gateway("min_free_disk = \"1000 TiB\"\n", "");
    up.start().await;
    let scene = scene(&up, settings(2, 200_000)).await;
    let (url, _) = scene.link("call-disk").await;

    let resp = reqwest::get(format!("{}/readyz", up.monitor)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["disk"]["status"], "low", "{body}");
    let base = format!("https://127.0.0.1:{}", up.gateway_port);
    let resp = up
        .gateway_client()
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);

    let resp = upload(&up, &url).await;
    assert_eq!(resp.status(), StatusCode::INSUFFICIENT_STORAGE);
    assert!(retry_after(&resp).is_some());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "insufficient_storage");
    assert!(body["detail"].as_str().unwrap().contains("your link still works"));
    let (_, call) = scene.integration.get("/v1/calls/call-disk").await;
    assert_eq!(call["links"][0]["files_received"], 0);
    assert!(std::fs::read_dir(up.data_dir().join("spool"))
        .unwrap()
        .next()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_at_once_while_draining() {
    let clamd = SlowClamd::start(Duration::from_secs(4));
    let mut up = Upgate::configure(&format!(
        "[scanner]\nclamd = \"unix:{}\"\n",
        clamd.socket.display()
    ));
    up.start().await;
    let scene = scene(&up, settings(2, 200_000)).await;
    let (url, _) = scene.link("call-drain").await;

    // An upload is being scanned when the server is told to stop.
    let client = up.gateway_client();
    let in_flight = tokio::spawn({
        let url = url.clone();
        async move { upload_file(&client, &url, "slow.pdf", "application/pdf", pdf("slow", 100)).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    up.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Both readiness endpoints say no at once, while the upload finishes.
    let monitor = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let started = Instant::now();
    let resp = monitor
        .get(format!("{}/readyz", up.monitor))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry_after(&resp).is_some());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["draining"], true, "{body}");
    let base = format!("https://127.0.0.1:{}", up.gateway_port);
    let resp = up
        .gateway_client()
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "readiness took {:?}",
        started.elapsed()
    );

    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
