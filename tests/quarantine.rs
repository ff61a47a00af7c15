//! Quarantine with a real clamd stopped and started again: with `on_unavailable =
//! "quarantine"`, files that arrive while no trusted clamd can scan them are kept sealed,
//! seen by reviewers only, and scanned by the control plane when clamd is back: the clean
//! one released to everyone, the infected one kept for reviewers, each with its event.
//! Once in one process, once with the planes apart (where the control plane, which alone
//! can open a stored file, runs the scan with a clamd of its own configuration).

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use common::clamd::Clamd;
use common::files::{eicar, pdf, sha256_hex};
use common::poll::{eventually, wait_scanner};
use common::scene::{scene, settings, Scene};
use common::split::{control_plane, gateway, mint, url_on};
use common::sse;
use common::upgate::{upload_file, Upgate};

const LIMITS: &str = "StreamMaxLength 64M\nMaxFileSize 64M\nMaxScanSize 256M\nAlertExceedsMax yes\n";

fn scanner_config(clamd: &Clamd) -> String {
    format!(
        "[scanner]\nclamd = \"unix:{}\"\non_unavailable = \"quarantine\"\n",
        clamd.socket.display()
    )
}

/// Uploads `bytes` as a PDF; the stored file's JSON, which must say it was kept unscanned.
async fn upload_held(gateway: &Upgate, url: &str, name: &str, bytes: Vec<u8>) -> Value {
    let (status, body) = upload_file(&gateway.gateway_client(), url, name, "application/pdf", bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["file"]["scan"]["status"], "unscanned", "{body}");
    body["file"].clone()
}

async fn quarantine_states(scene: &Scene) -> Vec<(String, String)> {
    let (status, body) = scene.reviewer.get("/v1/quarantine").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut states: Vec<(String, String)> = body["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["quarantine"]["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    states.sort();
    states
}

async fn metric(up: &Upgate, outcome: &str) -> String {
    let text = up.metrics().await;
    let line = format!("upgate_quarantine_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .unwrap_or_else(|| panic!("no {line} in the metrics"))
        .to_string()
}

/// What every role sees while the files are held, and after the rescan decided.
async fn held_then_decided(
    scene: &Scene,
    call: &str,
    clean: &Value,
    infected: &Value,
    restart: impl FnOnce(),
) {
    let (clean_id, infected_id) = (clean["id"].as_str().unwrap(), infected["id"].as_str().unwrap());
    // Held: reviewers see both, nobody else sees either.
    for api in [&scene.integration, &scene.admin] {
        let (_, details) = api.get(&format!("/v1/calls/{call}")).await;
        assert_eq!(details["files"], serde_json::json!([]), "{details}");
        for id in [clean_id, infected_id] {
            for path in [format!("/v1/files/{id}"), format!("/v1/files/{id}/attestation")] {
                let (status, body) = api.get(&path).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
            }
        }
        let (status, _) = api.get("/v1/quarantine").await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "the quarantine list is the reviewers'"
        );
        let (_, contact) = api.get("/v1/contacts/+14155550199/files").await;
        assert_eq!(contact["files"], serde_json::json!([]), "{contact}");
    }
    let (_, details) = scene.reviewer.get(&format!("/v1/calls/{call}")).await;
    assert_eq!(details["files"].as_array().unwrap().len(), 2, "{details}");
    let mut want = vec![
        (clean_id.to_string(), "held".to_string()),
        (infected_id.to_string(), "held".to_string()),
    ];
    want.sort();
    assert_eq!(quarantine_states(scene).await, want);
    let (_, file) = scene.reviewer.get(&format!("/v1/files/{clean_id}")).await;
    assert!(file["quarantine"]["reason"].as_str().unwrap().len() > 3, "{file}");
    // A reviewer can fetch a held file (evidence), decrypted and whole.
    let resp = scene
        .reviewer
        .fetch(&format!("/v1/files/{clean_id}/content"), None)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        sha256_hex(&resp.bytes().await.unwrap()),
        clean["sha256"].as_str().unwrap()
    );

    restart();

    eventually(
        Duration::from_secs(90),
        "the rescan decided both files",
        || async {
            quarantine_states(scene).await == vec![(infected_id.to_string(), "infected".to_string())]
        },
    )
    .await;
    // The clean one is everyone's now, with the engine that scanned it and a statement
    // signed over that verdict.
    let (status, file) = scene.integration.get(&format!("/v1/files/{clean_id}")).await;
    assert_eq!(status, StatusCode::OK, "{file}");
    assert_eq!(file["scan"]["status"], "clean");
    assert!(
        file["scan"]["engine"].as_str().unwrap().starts_with("ClamAV "),
        "{file}"
    );
    assert_eq!(file["quarantine"]["state"], "released");
    let (_, attestation) = scene
        .integration
        .get(&format!("/v1/files/{clean_id}/attestation"))
        .await;
    let statement: Value = serde_json::from_str(attestation["statement"].as_str().unwrap()).unwrap();
    assert_eq!(statement["scan"]["status"], "clean", "{statement}");
    let (_, details) = scene.integration.get(&format!("/v1/calls/{call}")).await;
    let ids: Vec<&str> = details["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [clean_id], "{details}");
    // The infected one stays hidden, and says what was found.
    let (status, _) = scene.integration.get(&format!("/v1/files/{infected_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, file) = scene.reviewer.get(&format!("/v1/files/{infected_id}")).await;
    assert_eq!(file["scan"]["status"], "infected", "{file}");
    assert!(!file["scan"]["detail"].as_str().unwrap().is_empty(), "{file}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_while_clamd_is_down_then_released_or_kept_when_it_is_back() {
    let mut clamd = Clamd::start();
    let mut up = Upgate::configure(&scanner_config(&clamd));
    up.start().await;
    wait_scanner(&up, "up").await;
    let scene = scene(&up, settings(10, 1_000_000)).await;
    let (url, _) = scene.link("call-q").await;
    let (status, stream) = sse::open(&scene.integration, "/v1/calls/call-q/events", None).await;
    assert_eq!(status, StatusCode::OK);
    let mut stream = stream.unwrap();

    clamd.stop();
    let ready = wait_scanner(&up, "down").await;
    // Still ready: uploads go on, into quarantine, so load balancers keep the gateway.
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["scanner"]["uploads"], "quarantined", "{ready}");
    let clean = upload_held(&up, &url, "letter.pdf", pdf("a letter", 2000)).await;
    let infected = upload_held(&up, &url, "virus.pdf", pdf(&eicar(), 0)).await;
    assert_eq!(metric(&up, "held").await, "2");

    let socket = clamd.socket.clone();
    let mut back = None;
    held_then_decided(&scene, "call-q", &clean, &infected, || {
        back = Some(Clamd::start_custom(LIMITS, Clamd::DATABASES, Some(&socket)));
    })
    .await;

    // The voice platform's stream heard it all, in order.
    let mut kinds = Vec::new();
    while !(kinds.contains(&"file_released".to_string()) && kinds.contains(&"file_infected".to_string())) {
        let frame = stream.event(Duration::from_secs(30)).await.expect("an event");
        kinds.push(frame.kind().to_string());
    }
    let held: Vec<usize> = (0..kinds.len())
        .filter(|&i| kinds[i] == "file_quarantined")
        .collect();
    assert_eq!(held.len(), 2, "{kinds:?}");
    assert!(!kinds.contains(&"file_stored".to_string()), "{kinds:?}");
    let decided = kinds.iter().position(|k| k == "file_released").unwrap();
    assert!(held.iter().all(|&i| i < decided), "{kinds:?}");
    assert_eq!(metric(&up, "released").await, "1");
    assert_eq!(metric(&up, "infected").await, "1");

    // Decided files are not scanned again after a restart; a new upload scans as usual.
    up.stop();
    up.start().await;
    wait_scanner(&up, "up").await;
    let (status, body) = upload_file(
        &up.gateway_client(),
        &url,
        "later.pdf",
        "application/pdf",
        pdf("later", 100),
    )
    .await;
    assert_eq!(
        (status, body["file"]["scan"]["status"].as_str()),
        (StatusCode::CREATED, Some("clean"))
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(quarantine_states(&scene).await.len(), 1);
    assert_eq!(
        metric(&up, "released").await,
        "0",
        "counters start again: nothing was rescanned"
    );
    drop(back);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_planes_apart_the_control_plane_scans_what_gateways_kept() {
    let mut clamd = Clamd::start();
    let shared = tempfile::tempdir().unwrap();
    let config = format!(
        "[storage]\nbackend = \"local\"\npath = {:?}\n{}",
        shared.path().join("objects").display().to_string(),
        scanner_config(&clamd)
    );
    let (mut control, internal_port) = control_plane("", &config);
    control.start_as("control").await;
    let credential = mint(&control, "gw1");
    let mut gw = gateway(&control, internal_port, &credential, &config);
    gw.start_as("gateway").await;
    wait_scanner(&gw, "up").await;
    let scene = scene(&control, settings(10, 1_000_000)).await;
    let (link, _) = scene.link("call-split").await;
    let url = url_on(&gw, &link);

    clamd.stop();
    wait_scanner(&gw, "down").await;
    let clean = upload_held(&gw, &url, "letter.pdf", pdf("a letter", 3000)).await;
    let infected = upload_held(&gw, &url, "virus.pdf", pdf(&eicar(), 0)).await;
    let socket = clamd.socket.clone();
    let mut back = None;
    held_then_decided(&scene, "call-split", &clean, &infected, || {
        back = Some(Clamd::start_custom(LIMITS, Clamd::DATABASES, Some(&socket)));
    })
    .await;
    assert_eq!(metric(&control, "released").await, "1");
    drop(back);
}
