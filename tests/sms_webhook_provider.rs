//! The generic SMS provider: upgate POSTs each text to the operator's own SMS gateway,
//! signed as Standard Webhooks, and the gateway reports delivery back the same way. Both
//! directions are checked with the Standard Webhooks reference library from PyPI: it
//! verifies what upgate sends, and it signs the reports upgate must verify.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use common::scene::{scene, settings};
use common::sse::{self, Frame};
use common::upgate::{free_port, Upgate};

const SECRET: &str = "whsec_c2VjcmV0LWZvci10aGUtc21zLWdhdGV3YXktdGVzdHM=";

fn python() -> PathBuf {
    let venv =
        PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/upgate/standardwebhooks/bin/python");
    assert!(
        venv.exists(),
        "run .ci/run (it installs standardwebhooks into {})",
        venv.display()
    );
    venv
}

/// The reference library's signature of a message.
fn reference_signature(secret: &str, id: &str, timestamp: u64, body: &str) -> String {
    let script = "import sys, datetime\nfrom standardwebhooks.webhooks import Webhook\n\
print(Webhook(sys.argv[1]).sign(sys.argv[2], datetime.datetime.fromtimestamp(int(sys.argv[3]), tz=datetime.timezone.utc), sys.argv[4]))";
    let out = Command::new(python())
        .args(["-c", script, secret, id, &timestamp.to_string(), body])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn post_report(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    id: &str,
    ts: u64,
    body: &Value,
) -> StatusCode {
    let body = body.to_string();
    client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", reference_signature(secret, id, ts, &body))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

fn received(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_go_to_the_operator_s_gateway_signed_and_its_reports_come_back_verified() {
    let port = free_port();
    let mut up = Upgate::configure("");
    let secret_file = up.secret("sms-webhook-secret", SECRET);
    up.rewrite_config(&format!(
        "[sms]\nprovider = \"webhook\"\n[sms.webhook]\nurl = \"http://127.0.0.1:{port}/sms\"\nsecret_file = {:?}\n",
        secret_file.display().to_string()
    ));
    let (ok, out, err) = up.cli(&["config", "check"]);
    assert!(ok, "{out} {err}");
    let log = up.data_dir().join("../sms-gateway.jsonl");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook_receiver.py");
    let mut gateway_stand_in = Command::new(python())
        .arg(script)
        .arg(port.to_string())
        .arg(&log)
        .arg(SECRET)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the SMS gateway stand-in did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    up.start().await;
    let scene = scene(&up, settings(3, 5 << 20)).await;
    let (link_url, link_id) = scene.link("c1").await;

    // The text arrived, verified by the reference library.
    let texts = received(&log);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert_eq!(texts[0]["verified"], json!([true]));
    let text = &texts[0]["payload"];
    assert_eq!(text["to"], "+14155550199");
    assert!(text["text"].as_str().unwrap().ends_with(&link_url), "{text}");
    let report_url = text["report_url"].as_str().unwrap().to_string();
    assert_eq!(
        report_url,
        format!("https://127.0.0.1:{}/hooks/sms/webhook", up.gateway_port)
    );
    let message_id = texts[0]["id"].as_str().unwrap().to_string();
    assert_eq!(text["id"], message_id);

    let (_, stream) = sse::open(&scene.integration, "/v1/calls/c1/events", None).await;
    let mut stream = stream.unwrap();
    let client = up.gateway_client();
    let delivered = json!({"id": message_id, "status": "delivered"});

    // Refused: another secret, a capture older than five minutes.
    let other = "whsec_b3RoZXItc2VjcmV0LW5vdC10aGUtb3BlcmF0b3Jz";
    assert_eq!(
        post_report(&client, &report_url, other, "r1", now(), &delivered).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post_report(&client, &report_url, SECRET, "r2", now() - 600, &delivered).await,
        StatusCode::FORBIDDEN
    );

    assert_eq!(
        post_report(&client, &report_url, SECRET, "r3", now(), &delivered).await,
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
    // The same report again is a replay.
    assert_eq!(
        post_report(&client, &report_url, SECRET, "r3", now(), &delivered).await,
        StatusCode::CONFLICT
    );
    let (_, call) = scene.integration.get("/v1/calls/c1").await;
    assert_eq!(call["sms"][0]["provider"], "webhook");
    assert_eq!(call["sms"][0]["provider_id"], message_id);
    assert_eq!(call["sms"][0]["delivery"], "delivered", "{call}");
    let _ = gateway_stand_in.kill();
    let _ = gateway_stand_in.wait();
}
