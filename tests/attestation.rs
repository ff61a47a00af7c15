//! Scan attestations, checked as a security team would: the real clamd scans the file, the
//! control plane signs what it knew, and `openssl pkeyutl` (not our code) verifies the
//! statement with the published key; the statement's SHA-256 is the downloaded file's. An
//! attestation key rotated by the operator signs new files while old statements still
//! verify with the key that signed them.

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine;
use serde_json::Value;

use common::clamd::Clamd;
use common::files::{pdf, sha256_hex};
use common::scene::{scene, settings, Scene};
use common::upgate::{upload_file, Upgate};

/// Runs `openssl pkeyutl -verify` on the attestation; true when it verifies.
fn openssl_verifies(dir: &Path, attestation: &Value, keys: &Value, statement_override: Option<&str>) -> bool {
    let key_id = attestation["key_id"].as_u64().unwrap();
    let key = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key_id)
        .expect("the signing key is published");
    let statement = statement_override.unwrap_or_else(|| attestation["statement"].as_str().unwrap());
    std::fs::write(dir.join("statement.json"), statement).unwrap();
    let sig = base64::engine::general_purpose::STANDARD
        .decode(attestation["signature"].as_str().unwrap())
        .unwrap();
    std::fs::write(dir.join("statement.sig"), sig).unwrap();
    std::fs::write(dir.join("key.pem"), key["public_key_pem"].as_str().unwrap()).unwrap();
    let out = Command::new("openssl")
        .current_dir(dir)
        .args([
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "key.pem",
            "-rawin",
            "-in",
            "statement.json",
            "-sigfile",
            "statement.sig",
        ])
        .output()
        .expect("openssl runs");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    out.status.success() && said.contains("Signature Verified Successfully")
}

async fn store(scene: &Scene, up: &Upgate, call: &str, bytes: Vec<u8>) -> String {
    let (url, _) = scene.link(call).await;
    let (status, body) = upload_file(
        &up.gateway_client(),
        &url,
        "contract.pdf",
        "application/pdf",
        bytes,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["file"]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_file_s_attestation_verifies_with_openssl_and_names_its_bytes() {
    let clamd = Clamd::start();
    let mut up = Upgate::configure("");
    up.rewrite_config(&format!(
        "[scanner]\nclamd = \"unix:{}\"\ntimeout = \"20s\"\n",
        clamd.socket.display()
    ));
    up.start().await;
    let scene = scene(&up, settings(3, 5 << 20)).await;
    let work = tempfile::tempdir().unwrap();

    let bytes = pdf("signed contract", 30_000);
    let file_id = store(&scene, &up, "c1", bytes.clone()).await;
    let (status, attestation) = scene
        .reviewer
        .get(&format!("/v1/files/{file_id}/attestation"))
        .await;
    assert_eq!(status, 200, "{attestation}");
    assert_eq!(attestation["algorithm"], "Ed25519");
    let (status, keys) = scene.integration.get("/v1/attestation-keys").await;
    assert_eq!(status, 200, "{keys}");
    assert!(
        openssl_verifies(work.path(), &attestation, &keys, None),
        "{attestation}"
    );

    // What it states: these bytes, this verdict from this engine, this policy.
    let statement: Value = serde_json::from_str(attestation["statement"].as_str().unwrap()).unwrap();
    assert_eq!(statement["file_id"], file_id);
    assert_eq!(statement["call_id"], "c1");
    assert_eq!(statement["sha256"], sha256_hex(&bytes));
    assert_eq!(statement["size"], bytes.len());
    assert_eq!(statement["type"], "application/pdf");
    assert_eq!(statement["scan"]["status"], "clean");
    assert!(
        statement["scan"]["engine"]
            .as_str()
            .unwrap()
            .starts_with("ClamAV "),
        "{statement}"
    );
    assert_eq!(statement["policy"]["allowed_types"][0], "application/pdf");
    let downloaded = scene
        .reviewer
        .fetch(&format!("/v1/files/{file_id}/content"), None)
        .await;
    let downloaded = downloaded.bytes().await.unwrap();
    assert_eq!(sha256_hex(&downloaded), statement["sha256"].as_str().unwrap());

    // A statement changed by one byte does not verify.
    let forged = attestation["statement"]
        .as_str()
        .unwrap()
        .replace("\"clean\"", "\"infected\"");
    assert!(!openssl_verifies(work.path(), &attestation, &keys, Some(&forged)));

    // The operator rotates the attestation key while upgate runs: new files are signed by
    // the new key, the old statement still verifies with the old one.
    let (ok, out, err) = up.cli(&["keys", "rotate", "attestation"]);
    assert!(ok, "{out} {err}");
    let second = store(&scene, &up, "c2", pdf("second", 10_000)).await;
    let (_, newer) = scene
        .reviewer
        .get(&format!("/v1/files/{second}/attestation"))
        .await;
    let (_, keys) = scene.integration.get("/v1/attestation-keys").await;
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2, "{keys}");
    assert_ne!(newer["key_id"], attestation["key_id"]);
    assert!(openssl_verifies(work.path(), &newer, &keys, None));
    assert!(openssl_verifies(work.path(), &attestation, &keys, None));

    // Another account sees neither the file nor its attestation.
    let other = up.create_account("Other", "pro");
    let stranger = common::upgate::Api::new(&up.control, &up.create_token(&other, "reviewer"));
    assert_eq!(
        stranger.get(&format!("/v1/files/{file_id}/attestation")).await.0,
        404
    );
}
