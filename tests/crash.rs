//! kill -9 at arbitrary moments while uploads are in flight, then restart: every acknowledged
//! upload is there and downloads byte for byte; every file record points to a complete object
//! that decrypts and matches its SHA-256; nothing half-written is left in the spool, and no
//! object lies on disk without a record. Bounded: a fixed number of rounds, each a second.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use common::files::{pdf, sha256_hex};
use common::scene::{scene, settings};
use common::upgate::{try_upload, Upgate};

/// When each round's kill lands after the uploads start, in milliseconds.
const KILL_AFTER_MS: [u64; 5] = [150, 300, 450, 600, 750];
const WRITERS: usize = 4;
const FILES_PER_WRITER: usize = 20;

fn objects_on_disk(up: &Upgate) -> usize {
    let root = up.data_dir().join("objects");
    std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|d| d.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .filter(|f| f.file_name().to_string_lossy().starts_with("f_"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_upload_never_loses_an_acknowledged_file_or_leaves_a_broken_one() {
    let mut up = Upgate::configure("");
    up.start().await;
    let scene = scene(&up, settings(20, 2_000_000)).await;
    let mut in_flight_at_kill = 0;
    // file id -> the bytes the caller was told were stored
    let acknowledged: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
    let mut calls = Vec::new();

    for (round, kill_after) in KILL_AFTER_MS.iter().enumerate() {
        let before = acknowledged.lock().unwrap().len();
        let client = up.gateway_client();
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            // A link each, so the kill lands while every writer is mid-stream or mid-commit.
            let call = format!("crash-{round}-{w}");
            let (url, _) = scene.link(&call).await;
            calls.push(call);
            let (client, acknowledged) = (client.clone(), acknowledged.clone());
            writers.push(tokio::spawn(async move {
                for i in 0..FILES_PER_WRITER {
                    let doc = pdf(
                        &format!("round {round} writer {w} file {i}"),
                        300_000 + 97_000 * i,
                    );
                    let answer = tokio::time::timeout(
                        Duration::from_secs(5),
                        try_upload(&client, &url, "doc.pdf", "application/pdf", doc.clone()),
                    );
                    let Ok(Some((status, body))) = answer.await else {
                        return;
                    };
                    if status != StatusCode::CREATED {
                        return;
                    }
                    let id = body["file"]["id"].as_str().unwrap().to_string();
                    acknowledged.lock().unwrap().insert(id, doc);
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(*kill_after)).await;
        up.kill9();
        for w in writers {
            // Requests to a dead server fail fast; the unwrap is on the task, not on them.
            let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
        }
        up.start().await;

        let after = acknowledged.lock().unwrap().len();
        eprintln!(
            "round {round}: {after} acknowledged so far, {} in this round",
            after - before
        );
        if after < before + WRITERS * FILES_PER_WRITER {
            in_flight_at_kill += 1;
        }
        // Nothing half-written: the spool is swept, no object lacks a record.
        assert_eq!(
            std::fs::read_dir(up.data_dir().join("spool")).unwrap().count(),
            0,
            "round {round}"
        );
        let mut records = 0;
        for call in &calls {
            let (_, view) = scene.reviewer.get(&format!("/v1/calls/{call}")).await;
            for file in view["files"].as_array().unwrap() {
                records += 1;
                let id = file["id"].as_str().unwrap();
                let got = scene
                    .reviewer
                    .fetch(&format!("/v1/files/{id}/content"), None)
                    .await;
                assert_eq!(
                    got.status(),
                    200,
                    "round {round}: record {id} has no complete object"
                );
                let bytes = got.bytes().await.unwrap();
                assert_eq!(
                    sha256_hex(&bytes),
                    file["sha256"].as_str().unwrap(),
                    "round {round}: {id}"
                );
            }
        }
        assert_eq!(
            objects_on_disk(&up),
            records,
            "round {round}: objects without records"
        );

        // Every acknowledged upload survived, byte for byte.
        let acknowledged = acknowledged.lock().unwrap().clone();
        for (id, doc) in &acknowledged {
            let (status, meta): (StatusCode, Value) = scene.reviewer.get(&format!("/v1/files/{id}")).await;
            assert_eq!(status, 200, "round {round}: acknowledged file {id} lost");
            assert_eq!(meta["sha256"], sha256_hex(doc));
        }
    }
    // The test means something only if files were stored and most kills hit uploads in flight.
    assert!(!acknowledged.lock().unwrap().is_empty());
    assert!(
        in_flight_at_kill >= 3,
        "most kills must land while uploads are in flight: {in_flight_at_kill}"
    );
}
