//! A voice platform that retries after a timeout must not text the caller twice or kill the
//! link it already sent: with an `Idempotency-Key`, the retry gets the first answer again.

mod common;

use reqwest::StatusCode;
use serde_json::{json, Value};

use common::scene::{scene, settings};
use common::upgate::{Api, Upgate};

fn texts_sent(up: &Upgate) -> usize {
    std::fs::read_to_string(up.data_dir().join("sms-outbox.jsonl"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

async fn post_keyed(api: &Api, path: &str, key: &str) -> (StatusCode, Value) {
    let resp = api
        .http
        .post(format!("{}{path}", api.base))
        .bearer_auth(&api.token)
        .header("idempotency-key", key)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_link_request_texts_once_and_keeps_the_link() {
    let mut up = Upgate::configure("");
    up.start().await;
    let scene = scene(&up, settings(3, 1_000_000)).await;
    let api = &scene.integration;
    for call in ["c1", "c2"] {
        api.put(
            &format!("/v1/calls/{call}"),
            json!({"assistant_id": "desk", "caller_number": "+14155550188"}),
        )
        .await;
    }

    let (status, first) = post_keyed(api, "/v1/calls/c1/upload-links", "retry-1").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = post_keyed(api, "/v1/calls/c1/upload-links", "retry-1").await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["url"], first["url"]);
    assert_eq!(again["sms"]["id"], first["sms"]["id"]);
    assert_eq!(
        again["status"], "active",
        "the retry did not supersede the link it repeats"
    );
    assert_eq!(texts_sent(&up), 1, "one text for two requests");

    let (status, body) = post_keyed(api, "/v1/calls/c2/upload-links", "retry-1").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused"))
    );
    let (status, body) = post_keyed(api, "/v1/calls/c1/upload-links", "bad key with spaces").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_idempotency_key"))
    );

    // Resends are keyed the same way.
    let resend = format!("/v1/upload-links/{}/resend", first["id"].as_str().unwrap());
    let (_, r1) = post_keyed(api, &resend, "resend-1").await;
    let (_, r2) = post_keyed(api, &resend, "resend-1").await;
    assert_eq!(r1["sms"]["id"], r2["sms"]["id"]);
    assert_eq!(texts_sent(&up), 2);

    // Two copies of one request racing: one link, one text.
    let (a, b) = tokio::join!(
        post_keyed(api, "/v1/calls/c2/upload-links", "race-1"),
        post_keyed(api, "/v1/calls/c2/upload-links", "race-1")
    );
    assert!(
        a.0 == StatusCode::CREATED || b.0 == StatusCode::CREATED,
        "{a:?} {b:?}"
    );
    for (status, body) in [&a, &b] {
        assert!(
            *status == StatusCode::CREATED || body["code"] == "idempotency_key_in_use",
            "{status} {body}"
        );
    }
    assert_eq!(texts_sent(&up), 3);
    let (_, call) = api.get("/v1/calls/c2").await;
    assert_eq!(call["links"].as_array().unwrap().len(), 1);

    // Keys belong to an account: another account's "retry-1" is its own.
    let other = scene_for_other_account(&up).await;
    other
        .put(
            "/v1/calls/c1",
            json!({"assistant_id": "desk", "caller_number": "+14155550177"}),
        )
        .await;
    let (status, theirs) = post_keyed(&other, "/v1/calls/c1/upload-links", "retry-1").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(theirs["id"], first["id"]);
}

async fn scene_for_other_account(up: &Upgate) -> Api {
    scene(up, settings(3, 1_000_000)).await.integration
}
