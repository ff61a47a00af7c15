//! Webhooks end to end: the real binary, a receiver on loopback (private targets allowed
//! by the operator's switch) that verifies every signature with the Standard Webhooks
//! reference library from PyPI, not with our code. The receiver is down, comes up, goes
//! down again: each event arrives exactly once by its webhook-id, failures show on the
//! endpoint, a delivery that outlives `retry_for` becomes a dead letter and is replayed,
//! and a rotated secret signs beside the old one while they overlap.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::files::pdf;
use common::scene::{scene, settings};
use common::upgate::{free_port, upload_file, Upgate};

/// Where the reference library is: `.ci/run` installs it into this virtualenv.
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

struct Receiver {
    child: Child,
}

impl Receiver {
    fn start(port: u16, log: &Path, secrets: &[&str]) -> Receiver {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook_receiver.py");
        let child = Command::new(python())
            .arg(script)
            .arg(port.to_string())
            .arg(log)
            .args(secrets)
            .spawn()
            .unwrap();
        // Listening once a connection is accepted.
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the receiver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Receiver { child }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn received(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits until the log holds a delivery of each of `kinds` (verified), at most `within`.
async fn wait_for(log: &Path, kinds: &[&str], within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let got = received(log);
        let have = |k: &&str| got.iter().any(|r| r["payload"]["type"] == *k);
        if kinds.iter().all(have) {
            return got;
        }
        assert!(Instant::now() < deadline, "waited for {kinds:?}; got {got:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_retried_exactly_once_by_id_and_replayed_from_dead_letters() {
    let mut up = Upgate::configure("[webhooks]\nallow_private_targets = true\nretry_for = \"8s\"\n");
    up.start().await;
    let scene = scene(&up, settings(3, 5 << 20)).await;
    let port = free_port();
    let log = up.data_dir().join("../received.jsonl");

    // Registered while its receiver is down; the secret is shown once.
    let url = format!("http://127.0.0.1:{port}/hook?source=upgate");
    let (status, created) = scene.admin.post("/v1/webhooks", Some(json!({"url": url}))).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let id = created["id"].as_str().unwrap().to_string();
    let (_, shown) = scene.admin.get(&format!("/v1/webhooks/{id}")).await;
    assert!(!shown.to_string().contains(&secret), "never shown again: {shown}");
    // Only admins manage webhooks.
    assert_eq!(scene.integration.get("/v1/webhooks").await.0, 403);

    let (link_url, _) = scene.link("call-1").await;
    // Down: the first attempts fail (connection refused) and are retried 5 s later.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, view) = scene.admin.get(&format!("/v1/webhooks/{id}")).await;
        if view["stats"]["failed_attempts"].as_u64().unwrap_or(0) >= 2 {
            let failure = &view["stats"]["last_failure"];
            assert!(failure["error"].as_str().unwrap().contains("connect"), "{view}");
            assert!(
                !failure.to_string().contains("source=upgate"),
                "no URL in errors: {view}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no failed attempt recorded: {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let receiver = Receiver::start(port, &log, &[&secret]);
    wait_for(&log, &["link_issued", "sms_sent"], Duration::from_secs(20)).await;

    // Up: a stored file comes at once.
    let phone = up.gateway_client();
    let (status, body) = upload_file(
        &phone,
        &link_url,
        "note.pdf",
        "application/pdf",
        pdf("note", 4_000),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let got = wait_for(&log, &["upload_started", "file_stored"], Duration::from_secs(10)).await;
    let stored = got
        .iter()
        .find(|r| r["payload"]["type"] == "file_stored")
        .unwrap();
    assert_eq!(stored["payload"]["data"]["detail"]["file_id"], body["file"]["id"]);
    assert_eq!(stored["payload"]["data"]["call_id"], "call-1");
    assert_eq!(stored["path"], "/hook?source=upgate");

    // Down again: an event outlives retry_for (8 s) and becomes a dead letter.
    drop(receiver);
    let (_, link) = scene.integration.get("/v1/calls/call-1").await;
    let link_id = link["links"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = scene
        .integration
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/upload-links/{link_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    let dead = loop {
        let (_, list) = scene.admin.get(&format!("/v1/webhooks/{id}/deliveries")).await;
        if let Some(d) = list["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["state"] == "dead")
        {
            break d.clone();
        }
        assert!(Instant::now() < deadline, "no dead letter: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(dead["attempts"].as_u64().unwrap() >= 2, "{dead}");
    let (_, view) = scene.admin.get(&format!("/v1/webhooks/{id}")).await;
    assert_eq!(view["stats"]["dead"], 1, "{view}");

    // Rotated with an overlap: the receiver that knows only the new secret verifies, and so
    // would one that knows only the old (both sign until the overlap ends).
    let (status, rotated) = scene
        .admin
        .post(
            &format!("/v1/webhooks/{id}/rotate-secret"),
            Some(json!({"overlap_seconds": 600})),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    assert_eq!(rotated["secrets"].as_array().unwrap().len(), 2);
    let _receiver = Receiver::start(port, &log, &[&new_secret, &secret]);
    let (status, replayed) = scene.admin.post(&format!("/v1/webhooks/{id}/replay"), None).await;
    assert_eq!((status.as_u16(), replayed["replayed"].as_u64()), (200, Some(1)));
    let got = wait_for(&log, &["link_revoked"], Duration::from_secs(10)).await;
    let revoked = got
        .iter()
        .find(|r| r["payload"]["type"] == "link_revoked")
        .unwrap();
    assert_eq!(revoked["id"], dead["webhook_id"], "a replay keeps the webhook-id");
    assert_eq!(
        revoked["verified"],
        json!([true, true]),
        "signed with both secrets"
    );

    // Every request verified with the reference library; each event once by its id.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let all = received(&log);
    assert!(
        all.iter()
            .all(|r| r["verified"].as_array().unwrap().iter().any(|v| v == true)),
        "{all:#?}"
    );
    let mut ids: Vec<&str> = all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "an event delivered twice: {all:#?}");
    let kinds: Vec<&str> = all
        .iter()
        .map(|r| r["payload"]["type"].as_str().unwrap())
        .collect();
    for kind in [
        "link_issued",
        "sms_sent",
        "upload_started",
        "file_stored",
        "link_revoked",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let (_, list) = scene.admin.get(&format!("/v1/webhooks/{id}/deliveries")).await;
    assert_eq!(list["deliveries"], json!([]), "nothing left pending or dead");
}
