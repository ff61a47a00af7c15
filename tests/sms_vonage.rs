//! Vonage as the SMS provider: the Messages API's wire format, checked by a loopback
//! stand-in as the Twilio one is, and its signed status updates reaching the call through
//! the gateway; forged, stale and replayed ones refused.

mod common;

use std::time::Duration;

use reqwest::StatusCode;

use common::scene::{scene, settings};
use common::sse::{self, Frame};
use common::upgate::Upgate;
use common::vonage::{self, bearer, VonageStandIn};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn post(client: &reqwest::Client, url: &str, body: &str, authorization: Option<String>) -> StatusCode {
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    req.send().await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_go_through_vonage_and_its_signed_status_updates_reach_the_call() {
    let vonage_api = VonageStandIn::start().await;
    let mut up = Upgate::configure("");
    let secret = up.secret("vonage-secret", vonage::API_SECRET);
    let signature = up.secret("vonage-signature", vonage::SIGNATURE_SECRET);
    up.rewrite_config(&format!(
        "[sms]\nprovider = \"vonage\"\n[sms.vonage]\napi_key = \"{}\"\napi_secret_file = {:?}\nsignature_secret_file = {:?}\nfrom = \"{}\"\napi_base = \"{}\"\n",
        vonage::API_KEY,
        secret.display().to_string(),
        signature.display().to_string(),
        vonage::FROM,
        vonage_api.api_base(),
    ));
    let (ok, out, err) = up.cli(&["config", "check"]);
    assert!(ok, "{out} {err}");
    up.start().await;
    let scene = scene(&up, settings(3, 5 << 20)).await;
    let (link_url, link_id) = scene.link("c1").await;
    assert!(
        vonage_api.violations.lock().unwrap().is_empty(),
        "{:?}",
        vonage_api.violations.lock().unwrap()
    );
    let sent = vonage_api.sent()[0].clone();
    assert_eq!(
        (sent.to.as_str(), sent.from.as_str()),
        ("14155550199", "447700900001")
    );
    assert!(sent.text.ends_with(&link_url));
    assert_eq!(
        sent.webhook_url,
        format!("https://127.0.0.1:{}/hooks/sms/vonage", up.gateway_port)
    );
    let (_, call) = scene.integration.get("/v1/calls/c1").await;
    assert_eq!(call["sms"][0]["provider"], "vonage");
    assert_eq!(call["sms"][0]["provider_id"], sent.uuid);

    let (_, stream) = sse::open(&scene.integration, "/v1/calls/c1/events", None).await;
    let mut stream = stream.unwrap();
    let gateway = up.gateway_client();
    let url = sent.webhook_url.clone();
    let delivered = vonage::status(&sent, "delivered", None);
    // Forged (another secret, no token, a body changed after signing) and stale.
    assert_eq!(
        post(
            &gateway,
            &url,
            &delivered,
            Some(bearer("not-the-secret", &delivered, now()))
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(&gateway, &url, &delivered, None).await,
        StatusCode::FORBIDDEN
    );
    let rejected = vonage::status(&sent, "rejected", Some(1320));
    let signed_for_other = bearer(vonage::SIGNATURE_SECRET, &rejected, now());
    assert_eq!(
        post(&gateway, &url, &delivered, Some(signed_for_other)).await,
        StatusCode::FORBIDDEN
    );
    let old = bearer(vonage::SIGNATURE_SECRET, &delivered, now() - 600);
    assert_eq!(
        post(&gateway, &url, &delivered, Some(old)).await,
        StatusCode::FORBIDDEN
    );

    let good = bearer(vonage::SIGNATURE_SECRET, &delivered, now());
    assert_eq!(
        post(&gateway, &url, &delivered, Some(good.clone())).await,
        StatusCode::OK
    );
    loop {
        match stream.event(Duration::from_secs(10)).await {
            Some(Frame::Event { event, data, .. }) if event == "sms_delivered" => {
                assert_eq!(data["detail"]["link_id"], link_id);
                break;
            }
            Some(_) => continue,
            None => panic!("the stream ended"),
        }
    }
    assert_eq!(
        post(&gateway, &url, &delivered, Some(good)).await,
        StatusCode::CONFLICT,
        "a replay"
    );
    let (_, call) = scene.integration.get("/v1/calls/c1").await;
    assert_eq!(call["sms"][0]["delivery"], "delivered", "{call}");

    // Vonage refusing a number: the message is recorded as failed with Vonage's reason.
    let (status, _) = scene
        .integration
        .put(
            "/v1/calls/c2",
            serde_json::json!({"assistant_id": "desk", "caller_number": vonage::INVALID_TO}),
        )
        .await;
    assert!(status.is_success());
    let (status, link) = scene.integration.post("/v1/calls/c2/upload-links", None).await;
    assert_eq!(status, 201, "{link}");
    assert_eq!(link["sms"]["status"], "failed");
    assert!(
        link["sms"]["error"].as_str().unwrap().contains("Invalid params"),
        "{link}"
    );
}
