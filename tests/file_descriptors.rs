//! File descriptors: with systemd's soft RLIMIT_NOFILE of 1024, a connection flood made
//! `accept` fail with EMFILE and broke an upload on a connection already open. upgate raises
//! its soft limit to the hard one at start, lowers its connection cap (with a warning) to
//! what the limit carries, and refuses to start (exit 64) when even that is too little.

mod common;

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use common::files::pdf;
use common::raw::{connect, read_until_closed};
use common::scene::{scene, settings};
use common::upgate::{link_path, Upgate, BIN};

/// The soft and hard "Max open files" of a process.
fn open_file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let n: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    (n[0], n[1])
}

fn hard_limit() -> u64 {
    open_file_limits(std::process::id()).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soft_limit_is_raised_to_the_hard_one() {
    let hard = hard_limit();
    let mut up = Upgate::configure("");
    up.start_wrapped("info", &["prlimit", &format!("--nofile=256:{hard}"), "--"])
        .await;
    assert_eq!(open_file_limits(up.pid()), (hard, hard));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_descriptors() {
    // A limit too low for the default cap of 1024 connections, which one address may fill.
    let mut up = Upgate::configure_gateway(
        "body_idle_timeout = \"20s\"\nhandshake_timeout = \"20s\"\nmax_connections_per_ip = 100000\n",
        "",
    );
    up.start_wrapped("info", &["prlimit", "--nofile=700:700", "--"])
        .await;
    assert!(
        up.logs().contains("gateway.max_connections lowered"),
        "{}",
        up.logs()
    );
    let scene = scene(&up, settings(2, 2_000_000)).await;
    let (url, _) = scene.link("call-fds").await;
    let path = link_path(&url);

    // An upload starts on a connection of its own and sends half its body.
    let file = pdf("during the flood", 200_000);
    let mut body =
        b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.pdf\"\r\n\r\n".to_vec();
    body.extend_from_slice(&file);
    body.extend_from_slice(b"\r\n--B--\r\n");
    let mut upload = connect(&up).await;
    let head = format!(
        "POST /{path}/files HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    upload.write_all(head.as_bytes()).await.unwrap();
    upload.write_all(&body[..body.len() / 2]).await.unwrap();
    upload.flush().await.unwrap();

    // A flood of connections, more than the descriptors would allow.
    let mut flood = Vec::new();
    for _ in 0..900 {
        match tokio::net::TcpStream::connect(("127.0.0.1", up.gateway_port)).await {
            Ok(s) => flood.push(s),
            Err(_) => break,
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The upload on the open connection finishes and is stored.
    upload.write_all(&body[body.len() / 2..]).await.unwrap();
    upload.flush().await.unwrap();
    let (answer, _, _) = read_until_closed(&mut upload, Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    drop(flood);
    let logs = up.logs();
    assert!(!logs.contains("accept failed"), "{logs}");
    assert!(!logs.contains("Too many open files"), "{logs}");
    assert!(up
        .metrics()
        .await
        .contains("upgate_connections_refused_total{reason=\"global\"}"));
}

#[test]
fn a_limit_too_low_for_any_service_refuses_to_start() {
    let up = Upgate::configure("");
    let out = std::process::Command::new("prlimit")
        .args(["--nofile=200:200", "--", BIN, "serve", "--config"])
        .arg(&up.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("LimitNOFILE") && err.contains("gateway.max_connections"),
        "{err}"
    );
}
