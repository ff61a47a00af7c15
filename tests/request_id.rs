//! One request id joins every log line of one upload, and comes back as `X-Request-Id`.

mod common;

use common::files::pdf;
use common::scene::{scene, settings};
use common::upgate::Upgate;

async fn post_file(up: &Upgate, url: &str, bytes: Vec<u8>) -> (u16, String) {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name("a.pdf")
        .mime_str("application/pdf")
        .unwrap();
    let resp = up
        .gateway_client()
        .post(format!("{url}/files"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    (resp.status().as_u16(), id)
}

fn lines_with(logs: &str, id: &str) -> Vec<String> {
    logs.lines()
        .filter(|l| l.contains(id))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_id_joins_every_line_of_an_upload() {
    let mut up = Upgate::configure("");
    up.start().await;
    let scene = scene(&up, settings(3, 200_000)).await;
    let (url, _) = scene.link("call-ids").await;

    let (status, stored) = post_file(&up, &url, pdf("ok", 100)).await;
    assert_eq!(status, 201);
    let (status, refused) = post_file(&up, &url, b"GIF89a<script>".to_vec()).await;
    assert_eq!(status, 415);
    assert_ne!(stored, refused);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let logs = up.logs();
    let lines = lines_with(&logs, &stored);
    assert!(lines.iter().any(|l| l.contains("file stored")), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("/u/{token}/files") && l.contains("201")),
        "{lines:#?}"
    );
    let lines = lines_with(&logs, &refused);
    assert!(lines.iter().any(|l| l.contains("upload refused")), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("content type refused")),
        "{lines:#?}"
    );
    // Each line belongs to one request only.
    assert!(lines_with(&logs, &stored).iter().all(|l| !l.contains(&refused)));

    // The control API does the same.
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/calls/call-ids", up.control))
        .bearer_auth(&scene.reviewer.token)
        .send()
        .await
        .unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        lines_with(&up.logs(), &id)
            .iter()
            .any(|l| l.contains("control request")),
        "{}",
        up.logs()
    );
}
