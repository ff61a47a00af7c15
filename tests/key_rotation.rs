//! Keys that rotate without downtime: a control plane and a gateway run apart (sharing one
//! local storage directory), both keys rotated by the operator's CLI while uploads run.
//! The gateway picks the new keys up without a restart; links and files made under the old
//! keys keep working; the old link key is retired once no live link uses it, and from then
//! on its links are refused.

mod common;

use std::time::Duration;

use reqwest::Method;

use common::files::{pdf, sha256_hex};
use common::scene::{scene, settings};
use common::split::{control_plane, gateway, mint, url_on};
use common::upgate::{upload_file, Upgate};
use upgate_gateway::seal::{Header, MAX_HEADER_LEN};

/// The storage key id a stored file was sealed for, read from its header in the shared
/// objects directory.
fn sealed_for(objects: &std::path::Path, file_id: &str) -> u32 {
    let path = objects.join(&file_id[2..4]).join(file_id);
    let bytes = std::fs::read(path).unwrap();
    Header::parse(&bytes[..MAX_HEADER_LEN.min(bytes.len())])
        .unwrap()
        .key_id()
}

fn keys(control: &Upgate) -> Vec<serde_json::Value> {
    let (ok, out, err) = control.cli(&["keys", "list"]);
    assert!(ok, "{err}");
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_keys_rotate_while_uploads_run() {
    let shared = tempfile::tempdir().unwrap();
    let objects = shared.path().join("objects");
    let storage = format!(
        "[storage]\nbackend = \"local\"\npath = {:?}\n",
        objects.display().to_string()
    );
    let (mut control, internal_port) = control_plane("", &storage);
    control.start_as("control").await;
    let credential = mint(&control, "gw1");
    let mut gw = gateway(&control, internal_port, &credential, &storage);
    gw.start_as("gateway").await;
    let client = gw.gateway_client();

    let s = scene(&control, settings(10, 4 << 20)).await;
    let (old_link, old_id) = s.link("call-old").await;
    let before = pdf("before", 50_000);
    let (status, body) = upload_file(
        &client,
        &url_on(&gw, &old_link),
        "before.pdf",
        "application/pdf",
        before.clone(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let before_id = body["file"]["id"].as_str().unwrap().to_string();
    // Sealed for the account's own key (ids from 2^31 up; see docs/backup.md).
    let first_key = sealed_for(&objects, &before_id);
    assert!(first_key >= 1 << 31, "sealed for {first_key}, not an account key");

    // Uploads keep running on the old link while the operator rotates both keys.
    let uploader = {
        let (client, url) = (client.clone(), url_on(&gw, &old_link));
        tokio::spawn(async move {
            let mut stored = Vec::new();
            for i in 0..6 {
                let file = pdf(&format!("during {i}"), 30_000);
                let (status, body) =
                    upload_file(&client, &url, "during.pdf", "application/pdf", file.clone()).await;
                assert_eq!(status, 201, "an upload during the rotation failed: {body}");
                stored.push((
                    body["file"]["id"].as_str().unwrap().to_string(),
                    sha256_hex(&file),
                ));
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            stored
        })
    };
    for kind in ["link", "storage"] {
        let (ok, out, err) = control.cli(&["keys", "rotate", kind]);
        assert!(ok, "{err}");
        assert!(out.contains(": 2"), "{out}");
    }
    let during = uploader.await.unwrap();
    let listed = keys(&control);
    let state = |kind: &str, id: u64| {
        listed
            .iter()
            .find(|k| k["kind"] == kind && k["id"] == id)
            .map(|k| k["state"].as_str().unwrap().to_string())
    };
    assert_eq!(state("link", 1).as_deref(), Some("old"));
    assert_eq!(state("link", 2).as_deref(), Some("current"));
    assert_eq!(state("storage", 2).as_deref(), Some("current"));
    assert!(listed.iter().all(|k| k["created_at"].as_u64().unwrap() > 0));

    // The gateway takes the new keys without a restart: a new link (key 2) works, and a new
    // file is sealed for the account's new storage key.
    let (new_link, _) = s.link("call-new").await;
    let mut new_file = None;
    for _ in 0..20 {
        let (status, body) = upload_file(
            &client,
            &url_on(&gw, &new_link),
            "after.pdf",
            "application/pdf",
            pdf("after", 40_000),
        )
        .await;
        if status == 201 {
            let id = body["file"]["id"].as_str().unwrap().to_string();
            let key = sealed_for(&objects, &id);
            if key != first_key && key >= 1 << 31 {
                new_file = Some(id);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let new_file = new_file.expect("the gateway never sealed for the new storage key");
    // The old link still takes files.
    let (status, body) = upload_file(
        &client,
        &url_on(&gw, &old_link),
        "old.pdf",
        "application/pdf",
        pdf("old link", 20_000),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // Every file, under either storage key, downloads byte-exact.
    let fetch = |id: String| {
        let api = s.reviewer.clone();
        async move {
            let resp = api.fetch(&format!("/v1/files/{id}/content"), None).await;
            assert_eq!(resp.status(), 200);
            sha256_hex(&resp.bytes().await.unwrap())
        }
    };
    assert_eq!(fetch(before_id.clone()).await, sha256_hex(&before));
    for (id, sha) in during {
        assert_eq!(fetch(id).await, sha);
    }
    assert_eq!(fetch(new_file).await.len(), 64);

    // Retiring the old link key waits for its links; once the old link is revoked it goes,
    // and the gateway then refuses the old link's token.
    let (ok, _, err) = control.cli(&["keys", "retire", "1"]);
    assert!(!ok && err.contains("live link"), "{err}");
    let (ok, _, err) = control.cli(&["keys", "retire", "2"]);
    assert!(!ok && err.contains("current"), "{err}");
    let (ok, _, err) = control.cli(&["keys", "retire", "1", "--kind", "storage"]);
    assert!(!ok && err.contains("never retired"), "{err}");
    let (status, body) = s
        .integration
        .call(Method::DELETE, &format!("/v1/upload-links/{old_id}"), None)
        .await;
    assert!(status.is_success(), "{body}");
    let (ok, _, err) = control.cli(&["keys", "retire", "1"]);
    assert!(ok, "{err}");
    assert!(keys(&control)
        .iter()
        .all(|k| !(k["kind"] == "link" && k["id"] == 1)));
    let mut refused = false;
    for _ in 0..20 {
        let status = client.get(url_on(&gw, &old_link)).send().await.unwrap().status();
        if status == 404 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(refused, "a token under a retired key still opened a page");
    // Files sealed under the old storage key still open after all of it.
    assert_eq!(fetch(before_id).await, sha256_hex(&before));

    // Rotation works on a stopped control plane too (the CLI opens the store itself).
    control.stop();
    let (ok, out, err) = control.cli(&["keys", "rotate", "link"]);
    assert!(ok && out.contains(": 3"), "{out} {err}");
}
