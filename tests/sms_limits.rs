//! Against SMS pumping: a caller number gets a few texts an hour, then link requests for it
//! are refused with 429 and Retry-After, leaving no new link behind; other numbers go on.

mod common;

use reqwest::StatusCode;
use serde_json::json;

use common::scene::{scene, settings};
use common::upgate::Upgate;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_to_one_number_are_capped_per_hour() {
    let mut up = Upgate::configure("[sms]\nmax_per_number_per_hour = 2\n");
    up.start().await;
    let scene = scene(&up, settings(3, 1_000_000)).await;
    let api = &scene.integration;
    let (_, link_id) = scene.link("pumped").await;
    let (status, _) = api
        .post(&format!("/v1/upload-links/{link_id}/resend"), None)
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let resp = api
        .http
        .post(format!("{}/v1/calls/pumped/upload-links", api.base))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 3500 && wait <= 3600, "{wait}");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "sms_rate_limited");
    let (status, _) = api
        .post(&format!("/v1/upload-links/{link_id}/resend"), None)
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    let (_, call) = api.get("/v1/calls/pumped").await;
    assert_eq!(
        call["links"].as_array().unwrap().len(),
        1,
        "a refused text leaves no new link"
    );
    assert_eq!(call["links"][0]["status"], "active", "and supersedes nothing");
    assert_eq!(call["sms"].as_array().unwrap().len(), 2);

    api.put(
        "/v1/calls/other",
        json!({"assistant_id": "desk", "caller_number": "+14155550111"}),
    )
    .await;
    let (status, _) = api.post("/v1/calls/other/upload-links", None).await;
    assert_eq!(status, StatusCode::CREATED, "another number is not affected");
}
