//! A certificate renewed while upgate runs: SIGHUP loads the new pair for every new
//! handshake, an upload in flight on a connection made under the old one completes, and a
//! broken renewal is refused with the pair served so far kept. Real binary, real TLS.

mod common;

use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use common::files::pdf;
use common::raw::{connect, connect_trusting, send};
use common::scene::{scene, settings};
use common::upgate::{link_path, Upgate};

/// A TLS handshake with the gateway trusting only the certificate in `pem`.
async fn handshake(up: &Upgate, pem: &[u8]) -> Result<(), std::io::Error> {
    connect_trusting(up, pem).await.map(drop)
}

fn hangup(up: &Upgate) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &up.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Waits until the log has `n` lines containing `what`.
async fn logged(up: &Upgate, what: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while up.logs().matches(what).count() < n {
        assert!(
            Instant::now() < deadline,
            "no {what:?} in the log:\n{}",
            up.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_dropping_an_upload() {
    let mut up = Upgate::configure("");
    up.start().await;
    let scene = scene(&up, settings(5, 1_000_000)).await;
    let (url, _) = scene.link("call-tls").await;
    let tls_dir = up.data_dir().join("tls");
    let old = std::fs::read(tls_dir.join("localhost.crt")).unwrap();

    // An upload begins under the old certificate and stops half way.
    let file = pdf("renewed mid-upload", 20_000);
    let mut body = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n".to_vec();
    body.extend_from_slice(&file);
    body.extend_from_slice(b"\r\n--B--\r\n");
    let head = format!(
        "POST /{}/files HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=B\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        link_path(&url),
        body.len()
    );
    let mut stream = connect(&up).await;
    send(&mut stream, head.as_bytes()).await;
    let half = body.len() / 2;
    send(&mut stream, &body[..half]).await;

    // The operator renews the pair in place and reloads.
    let fresh = tempfile::tempdir().unwrap();
    let files = upgate_gateway::tls::ensure_self_signed(fresh.path()).unwrap();
    std::fs::copy(&files.key_file, tls_dir.join("localhost.key")).unwrap();
    std::fs::copy(&files.cert_file, tls_dir.join("localhost.crt")).unwrap();
    let new = std::fs::read(tls_dir.join("localhost.crt")).unwrap();
    assert_ne!(old, new);
    hangup(&up);
    logged(&up, "reloaded the TLS certificate", 1).await;

    // The upload in flight finishes on its connection.
    send(&mut stream, &body[half..]).await;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\"link_state\"") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&chunk[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    // New handshakes get the new certificate, not the old one.
    handshake(&up, &new)
        .await
        .expect("the renewed certificate is served");
    assert!(
        handshake(&up, &old).await.is_err(),
        "the old certificate is still served"
    );

    // A broken renewal (a key that does not go with the certificate) is refused, loudly,
    // and the pair served so far stays.
    let other = tempfile::tempdir().unwrap();
    let mismatched = upgate_gateway::tls::ensure_self_signed(other.path()).unwrap();
    std::fs::copy(&mismatched.key_file, tls_dir.join("localhost.key")).unwrap();
    hangup(&up);
    logged(&up, "could not reload the TLS certificate", 1).await;
    handshake(&up, &new).await.expect("still the renewed certificate");
    let (status, _) = scene.integration.get("/v1/calls/call-tls").await;
    assert_eq!(status, 200, "still running");
}
