//! "The caller didn't receive the SMS": the carrier's delivery reports reach the call. The
//! Twilio stand-in asks for a `StatusCallback` on each message as Twilio does, and posts
//! reports there (to the gateway, over real TLS) signed as Twilio signs them; forged,
//! tampered and replayed reports are refused, and the status shows on the call and in its
//! event stream.

mod common;

use std::time::Duration;

use reqwest::StatusCode;

use common::scene::{scene, settings};
use common::sse::{self, Frame};
use common::twilio::{self, post_report, report_fields, TwilioStandIn};
use common::upgate::Upgate;

const SOON: Duration = Duration::from_secs(10);

async fn next_kind(stream: &mut sse::Sse, kind: &str) -> serde_json::Value {
    loop {
        match stream.event(SOON).await {
            Some(Frame::Event { event, data, .. }) if event == kind => return data,
            Some(_) => continue,
            None => panic!("the stream ended before {kind}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrier_reports_reach_the_call_and_forgeries_do_not() {
    let carrier = TwilioStandIn::start().await;
    let mut up = Upgate::configure("");
    let token_file = up.secret("twilio-token", twilio::AUTH_TOKEN);
    up.rewrite_config(&format!(
        "[sms]\nprovider = \"twilio\"\n[sms.twilio]\naccount_sid = \"{}\"\nauth_token_file = {:?}\nfrom = \"{}\"\napi_base = \"{}\"\n",
        twilio::ACCOUNT_SID,
        token_file.display().to_string(),
        twilio::FROM,
        carrier.api_base(),
    ));
    up.start().await;
    let scene = scene(&up, settings(3, 5 << 20)).await;
    let gateway = up.gateway_client();

    let (_, link_id) = scene.link("c1").await;
    let sent = carrier.sent();
    assert_eq!(carrier.violations.lock().unwrap().len(), 0);
    let first = sent[0].clone();
    let callback = first
        .status_callback
        .clone()
        .expect("each message asks for status reports");
    assert_eq!(
        callback,
        format!("https://127.0.0.1:{}/hooks/sms/twilio", up.gateway_port)
    );
    let (_, stream) = sse::open(&scene.integration, "/v1/calls/c1/events", None).await;
    let mut stream = stream.unwrap();

    // Forgeries: another token, a field changed after signing, no signature at all.
    let delivered = report_fields(&first, "delivered", None);
    assert_eq!(
        post_report(&gateway, &callback, "not-the-token", &delivered).await,
        StatusCode::FORBIDDEN
    );
    let signed = twilio::twilio_signature(
        twilio::AUTH_TOKEN,
        &callback,
        &report_fields(&first, "undelivered", Some("30003")),
    );
    let tampered = gateway
        .post(&callback)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signed)
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&delivered)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), StatusCode::FORBIDDEN);
    let unsigned = gateway
        .post(&callback)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&delivered)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::FORBIDDEN);
    let (_, call) = scene.integration.get("/v1/calls/c1").await;
    assert!(
        call["sms"][0]["delivery"].is_null(),
        "nothing forged was applied: {call}"
    );

    // Genuine: sent, then delivered; the stream hears of the delivery.
    let sent_report = report_fields(&first, "sent", None);
    assert_eq!(
        post_report(&gateway, &callback, twilio::AUTH_TOKEN, &sent_report).await,
        StatusCode::OK
    );
    assert_eq!(
        post_report(&gateway, &callback, twilio::AUTH_TOKEN, &delivered).await,
        StatusCode::OK
    );
    let event = next_kind(&mut stream, "sms_delivered").await;
    assert_eq!(event["detail"]["link_id"], link_id);
    let (_, call) = scene.integration.get("/v1/calls/c1").await;
    assert_eq!(call["sms"][0]["delivery"], "delivered", "{call}");
    assert!(call["sms"][0]["delivery_at"].is_u64());

    // Replays, of the last report and of an older one, change nothing.
    assert_eq!(
        post_report(&gateway, &callback, twilio::AUTH_TOKEN, &delivered).await,
        StatusCode::CONFLICT
    );
    assert_eq!(
        post_report(&gateway, &callback, twilio::AUTH_TOKEN, &sent_report).await,
        StatusCode::CONFLICT
    );

    // A resend whose text never reaches the phone: undelivered, with the carrier's code.
    let (status, _) = scene
        .integration
        .post(&format!("/v1/upload-links/{link_id}/resend"), None)
        .await;
    assert_eq!(status, 201);
    let second = carrier.sent()[1].clone();
    let undelivered = report_fields(&second, "undelivered", Some("30003"));
    assert_eq!(
        post_report(&gateway, &callback, twilio::AUTH_TOKEN, &undelivered).await,
        StatusCode::OK
    );
    let event = next_kind(&mut stream, "sms_undelivered").await;
    assert_eq!(event["detail"]["error_code"], "30003");
    let (_, call) = scene.integration.get("/v1/calls/c1").await;
    assert_eq!(call["sms"][1]["delivery"], "undelivered", "{call}");
    assert_eq!(call["sms"][1]["carrier_error"], "30003");

    // A message nobody sent, and a provider that is not configured.
    let mut stray = second.clone();
    stray.sid = "SM99999999999999999999999999999999".into();
    let fields = report_fields(&stray, "delivered", None);
    assert_eq!(
        post_report(&gateway, &callback, twilio::AUTH_TOKEN, &fields).await,
        StatusCode::NOT_FOUND
    );
    let other = callback.replace("/twilio", "/vonage");
    assert_eq!(
        post_report(&gateway, &other, twilio::AUTH_TOKEN, &fields).await,
        StatusCode::NOT_FOUND
    );

    let metrics = up.metrics().await;
    for line in [
        "upgate_sms_reports_total{result=\"forged\"} 3",
        "upgate_sms_reports_total{result=\"applied\"} 3",
        "upgate_sms_reports_total{result=\"stale\"} 2",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
}
