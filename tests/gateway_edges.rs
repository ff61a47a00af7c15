//! The gateway against hostile and broken clients, through the real binary over real TLS:
//! stalled handshakes and heads, trickling bodies, ambiguous framing and multipart, races
//! on one link, expired links. Scanning is off here (clamd is covered in end_to_end).

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use common::files::pdf;
use common::raw::{connect, read_until_closed, send};
use common::scene::{scene, settings, Scene};
use common::upgate::{link_path, upload_file, Upgate};

const TIMEOUTS: &str = "handshake_timeout = \"1s\"\nheader_timeout = \"1s\"\nbody_idle_timeout = \"1s\"\n";

async fn start() -> (Upgate, Scene) {
    let mut up = Upgate::configure_gateway(TIMEOUTS, "");
    up.start().await;
    let scene = scene(&up, settings(2, 200_000)).await;
    (up, scene)
}

async fn spool_is_empty(up: &Upgate) -> bool {
    std::fs::read_dir(up.data_dir().join("spool"))
        .unwrap()
        .next()
        .is_none()
}

async fn files_received(scene: &Scene, call: &str) -> u64 {
    let (_, call) = scene.integration.get(&format!("/v1/calls/{call}")).await;
    call["links"].as_array().unwrap().last().unwrap()["files_received"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_broken_clients_are_cut_off_while_others_are_served() {
    let (up, scene) = start().await;
    let (url, _) = scene.link("call-slow").await;
    let path = link_path(&url);

    // A TCP connection that never starts TLS is dropped after the handshake timeout.
    let mut idle = tokio::net::TcpStream::connect(("127.0.0.1", up.gateway_port))
        .await
        .unwrap();
    // A head that never ends (slowloris) is cut after the header timeout.
    let mut slow = connect(&up).await;
    send(
        &mut slow,
        format!("GET /{path} HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").as_bytes(),
    )
    .await;
    // A body that stalls after a few bytes is cut after the body idle timeout.
    let mut stall = connect(&up).await;
    let boundary = "XyZ";
    let head = format!(
        "POST /{path}/files HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
Content-Length: 100000\r\n\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\r\n%PDF-1.4\n"
    );
    send(&mut stall, head.as_bytes()).await;

    // Meanwhile a normal caller is served at once.
    let page = up.gateway_client().get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);

    let (_, took, closed) = read_until_closed(&mut idle, Duration::from_secs(6)).await;
    assert!(closed, "a silent TCP connection must be dropped");
    assert!(
        took < Duration::from_secs(4),
        "handshake timeout not applied: {took:?}"
    );
    let (_, took, closed) = read_until_closed(&mut slow, Duration::from_secs(6)).await;
    assert!(
        closed && took < Duration::from_secs(4),
        "slow head not cut: {closed} {took:?}"
    );
    let (answer, took, closed) = read_until_closed(&mut stall, Duration::from_secs(8)).await;
    assert!(
        closed && took < Duration::from_secs(5),
        "stalled body not cut: {took:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("upload_interrupted"));

    // The stalled upload left nothing and spent nothing.
    assert!(spool_is_empty(&up).await);
    assert_eq!(files_received(&scene, "call-slow").await, 0);
    let (status, _) = upload(&up, &url, "after.pdf", pdf("after the stall", 0)).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_framing_and_oversized_heads_are_refused() {
    let (up, scene) = start().await;
    let (url, _) = scene.link("call-framing").await;
    let path = link_path(&url);

    for framing in [
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: chunked, identity\r\n",
    ] {
        let mut s = connect(&up).await;
        send(
            &mut s,
            format!("POST /{path}/files HTTP/1.1\r\nHost: localhost\r\n{framing}\r\n0\r\n\r\n").as_bytes(),
        )
        .await;
        let (answer, _, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{framing:?} -> {answer}");
        assert!(closed, "the connection must be closed after ambiguous framing");
    }
    let mut s = connect(&up).await;
    send(
        &mut s,
        format!(
            "GET /{path} HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
            "a".repeat(20_000)
        )
        .as_bytes(),
    )
    .await;
    let (answer, _, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // Content-Length over the limit is refused before the body is read.
    let mut s = connect(&up).await;
    send(
        &mut s,
        format!("POST /{path}/files HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 900000000\r\nExpect: 100-continue\r\n\r\n").as_bytes(),
    )
    .await;
    let (answer, took, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(took < Duration::from_secs(2));
    assert_eq!(files_received(&scene, "call-framing").await, 0);
}

/// A gateway whose scanner takes 2 s per file, and a link on a fresh call.
async fn start_with_slow_scanner(call: &str) -> (common::slow_clamd::SlowClamd, Upgate, Scene, String) {
    let clamd = common::slow_clamd::SlowClamd::start(Duration::from_secs(2));
    let extra = format!(
        "[scanner]\nclamd = \"unix:{}\"\ntimeout = \"10s\"\n",
        clamd.socket.display()
    );
    let mut up = Upgate::configure_gateway(TIMEOUTS, &extra);
    up.start().await;
    let scene = scene(&up, settings(2, 200_000)).await;
    let (url, _) = scene.link(call).await;
    (clamd, up, scene, url)
}

async fn upload(up: &Upgate, url: &str, name: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    upload_file(&up.gateway_client(), url, name, "application/pdf", bytes).await
}

/// Sends a hand-made multipart body.
async fn raw_multipart(up: &Upgate, url: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let resp = up
        .gateway_client()
        .post(format!("{url}/files"))
        .header("content-type", "multipart/form-data; boundary=B")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_multipart_is_refused_and_spends_nothing() {
    let (up, scene) = start().await;
    let (url, _) = scene.link("call-multipart").await;
    let doc = pdf("doc", 0);
    let part = |headers: &str| {
        [
            format!("--B\r\n{headers}\r\n\r\n").into_bytes(),
            doc.clone(),
            b"\r\n".to_vec(),
        ]
        .concat()
    };
    let end = b"--B--\r\n".to_vec();
    let cd = "Content-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"";
    for (what, body) in [
        ("two files", [part(cd), part(cd), end.clone()].concat()),
        (
            "filename* beside filename",
            [part(&format!("{cd}; filename*=UTF-8''b.pdf")), end.clone()].concat(),
        ),
        (
            "two dispositions",
            [part(&format!("{cd}\r\n{cd}")), end.clone()].concat(),
        ),
        (
            "not a file",
            [part("Content-Disposition: form-data; name=\"file\""), end.clone()].concat(),
        ),
        (
            "another field",
            [
                part("Content-Disposition: form-data; name=\"other\"; filename=\"a.pdf\""),
                end.clone(),
            ]
            .concat(),
        ),
        ("no closing boundary", part(cd)),
        ("no parts", end.clone()),
        (
            "empty file",
            format!("--B\r\n{cd}\r\n\r\n\r\n--B--\r\n").into_bytes(),
        ),
    ] {
        let (status, body) = raw_multipart(&up, &url, body).await;
        assert!(status.is_client_error(), "{what}: {status} {body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: no words for the caller"
        );
    }
    assert!(spool_is_empty(&up).await);
    assert_eq!(files_received(&scene, "call-multipart").await, 0);
    let (status, _) = raw_multipart(&up, &url, [part(cd), end].concat()).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a well-formed single part is accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_never_exceed_the_links_file_quota() {
    let (up, scene) = start().await;
    let (url, _) = scene.link("call-race").await;
    let uploads = (0..8).map(|i| {
        let (up_ref, url) = (&up, url.clone());
        async move {
            upload(
                up_ref,
                &url,
                &format!("doc-{i}.pdf"),
                pdf(&format!("document {i}"), 50_000),
            )
            .await
            .0
        }
    });
    let statuses = futures_util::future::join_all(uploads).await;
    let stored = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
    assert_eq!(stored, 2, "max_files is 2: {statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::GONE),
        "{statuses:?}"
    );
    let (_, call) = scene.integration.get("/v1/calls/call-race").await;
    assert_eq!(call["files"].as_array().unwrap().len(), 2);
    assert_eq!(call["links"][0]["status"], "used");
    assert!(spool_is_empty(&up).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_has_its_own_page_and_forgeries_cost_no_lookup() {
    use upgate_gateway::token::{issue, LinkId, LinkKey};
    let (up, scene) = start().await;
    let (url, link_id) = scene.link("call-expired").await;
    let secret: [u8; 32] = std::fs::read(up.data_dir().join("keys/link-1.key"))
        .unwrap()
        .try_into()
        .unwrap();
    let key = LinkKey::new(1, &secret);
    let id: LinkId = link_id.parse().unwrap();
    let expired = issue(&key, &id, 1_000_000_000);
    let base = url.rsplit_once("/u/").unwrap().0;
    let page = up
        .gateway_client()
        .get(format!("{base}/u/{expired}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::GONE);
    assert!(page.text().await.unwrap().contains("expired"));
    let (status, body) = upload(&up, &format!("{base}/u/{expired}"), "x.pdf", pdf("x", 0)).await;
    assert_eq!(status, StatusCode::GONE, "{body}");

    // Forged, truncated and junk tokens: one answer for all, never a 500.
    let token = url.rsplit('/').next().unwrap();
    let mut flipped = token.as_bytes().to_vec();
    flipped[40] = if flipped[40] == b'a' { b'b' } else { b'a' };
    for bad in [
        String::from_utf8(flipped).unwrap(),
        token[..43].to_string(),
        format!("{token}A"),
        "%00".into(),
        "a".repeat(44),
    ] {
        let resp = up
            .gateway_client()
            .get(format!("{base}/u/{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_the_limit_is_stopped_mid_stream() {
    let (up, scene) = start().await;
    let (url, _) = scene.link("call-chunked").await;
    let path = link_path(&url);
    let mut s = connect(&up).await;
    send(
        &mut s,
        format!("POST /{path}/files HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=B\r\nTransfer-Encoding: chunked\r\n\r\n").as_bytes(),
    )
    .await;
    let mut body =
        b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.pdf\"\r\n\r\n".to_vec();
    body.extend_from_slice(&pdf("big", 400_000)); // the link allows 200 000 bytes
    body.extend_from_slice(b"\r\n--B--\r\n");
    for chunk in body.chunks(16 * 1024) {
        send(&mut s, format!("{:x}\r\n", chunk.len()).as_bytes()).await;
        send(&mut s, chunk).await;
        send(&mut s, b"\r\n").await;
    }
    send(&mut s, b"0\r\n\r\n").await;
    let (answer, _, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("file_too_large"));
    assert!(spool_is_empty(&up).await);
    assert_eq!(files_received(&scene, "call-chunked").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let mut up = Upgate::configure_gateway(&format!("{TIMEOUTS}max_connections_per_ip = 2\n"), "");
    up.start().await;
    let _first = connect(&up).await;
    let _second = connect(&up).await;
    // The third connection from the same address is closed before any TLS is spent on it.
    let mut third = tokio::net::TcpStream::connect(("127.0.0.1", up.gateway_port))
        .await
        .unwrap();
    let (_, took, closed) = read_until_closed(&mut third, Duration::from_secs(3)).await;
    assert!(
        closed && took < Duration::from_millis(900),
        "per-IP cap not applied: {closed} {took:?}"
    );
    drop((_first, _second));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let page = up
        .gateway_client()
        .get(format!("https://127.0.0.1:{}/healthz", up.gateway_port))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "places are given back when connections close");
    let metrics = up.metrics().await;
    assert!(
        metrics.contains("upgate_connections_refused_total{reason=\"per_ip\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_guessing_links_is_refused_cheaply() {
    let mut up = Upgate::configure_gateway(&format!("{TIMEOUTS}link_failures_per_minute = 5\n"), "");
    up.start().await;
    let scene = scene(&up, settings(2, 200_000)).await;
    let (url, _) = scene.link("call-guess").await;
    let base = url.rsplit_once("/u/").unwrap().0.to_string();
    let client = up.gateway_client();
    for i in 0..5 {
        let guess = format!("{base}/u/{i:0>44}");
        assert_eq!(
            client.get(&guess).send().await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
    let refused = client
        .get(format!("{base}/u/{}", "z".repeat(44)))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.text().await.unwrap().contains("wait a minute"));
    // For the rest of the minute even a real link from that address waits; uploads too.
    assert_eq!(
        client.get(&url).send().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let (status, _) = upload(&up, &url, "x.pdf", pdf("x", 0)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let metrics = up.metrics().await;
    assert!(
        metrics.contains("upgate_link_checks_total{result=\"rate_limited\"} 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_hangs_up_during_the_scan_spends_nothing_that_was_not_stored() {
    let (_clamd, up, scene, url) = start_with_slow_scanner("call-hangup").await;

    // The whole file is sent, then the phone loses its signal while the scan runs.
    let hung_up = tokio::time::timeout(
        Duration::from_millis(700),
        upload(&up, &url, "a.pdf", pdf("a", 0)),
    )
    .await;
    assert!(
        hung_up.is_err(),
        "the scan should still be running when the caller hangs up"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    // The upload was settled anyway: stored and counted, not a slot lost until restart.
    assert_eq!(files_received(&scene, "call-hangup").await, 1);
    let (status, body) = upload(&up, &url, "b.pdf", pdf("b", 0)).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the link's second slot is still free: {body}"
    );
    let (status, _) = upload(&up, &url, "c.pdf", pdf("c", 0)).await;
    assert_eq!(status, StatusCode::GONE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_lets_an_upload_in_flight_finish() {
    let (_clamd, mut up, scene, url) = start_with_slow_scanner("call-shutdown").await;
    let client = up.gateway_client();
    let in_flight = tokio::spawn(async move {
        upload_file(&client, &url, "late.pdf", "application/pdf", pdf("late", 0)).await
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    // SIGTERM while the file is being scanned: the caller still gets the answer.
    tokio::task::block_in_place(|| up.stop());
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(up.logs().contains("shutting down"));
    up.start().await;
    assert_eq!(files_received(&scene, "call-shutdown").await, 1);
}
