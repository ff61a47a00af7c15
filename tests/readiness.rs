//! The small ones: `Retry-After` on every 503 and 429 a caller sees, readiness that says no
//! when the disk is nearly full (and uploads refused before it fills), and readiness that
//! answers at once while the server drains instead of hanging.

mod common;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use common::files::pdf;
use common::scene::{scene, settings};
use common::slow_clamd::SlowClamd;
use common::upgate::{upload_file, Upgate};

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
