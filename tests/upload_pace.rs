//! Slow uploads that held a slot for an hour: the deadline used to grow with the size cap
//! (6,400 s at 50 MiB). Now a body must average a minimum rate once a grace period has
//! passed; below it the upload is cut off (408 `upload_too_slow`) and its slot given back,
//! while a slow but steady one above the rate is taken.

mod common;

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use common::files::pdf;
use common::raw::{connect, read_until_closed};
use common::scene::{scene, settings};
use common::upgate::{link_path, upload_file, Upgate};

/// Sends a file's multipart body at about `rate` bytes a second; returns the answer and
/// how long the server took to give it.
async fn trickle(up: &Upgate, path: &str, file: &[u8], rate: usize) -> (String, Duration) {
    let mut body =
        b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"s.pdf\"\r\n\r\n".to_vec();
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n--B--\r\n");
    let mut tls = connect(up).await;
    let head = format!(
        "POST /{path}/files HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    // Ten pieces a second, each a whole TLS record of rate/10 bytes.
    for piece in body.chunks((rate / 10).max(1)) {
        if tls.write_all(piece).await.is_err() || tls.flush().await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (answer, _, _) = read_until_closed(&mut tls, Duration::from_secs(30)).await;
    (answer, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_uploads_that_hold_a_slot_for_an_hour() {
    let mut up = Upgate::configure_gateway(
        "body_idle_timeout = \"20s\"\nmin_upload_rate = \"32 KiB/s\"\nupload_rate_grace = \"2s\"\n",
        "",
    );
    up.start().await;
    let scene = scene(&up, settings(1, 5_000_000)).await;
    let (url, _) = scene.link("call-pace").await;
    let path = link_path(&url);

    // 8 KiB/s, never pausing long enough to trip the idle timeout: cut soon after the grace.
    let (answer, took) = trickle(&up, &path, &pdf("trickle", 400_000), 8 * 1024).await;
    assert!(answer.contains("upload_too_slow"), "{answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < Duration::from_secs(10), "cut after {took:?}");

    // The slot came back: the link's one file can still be sent, slowly but above the rate.
    let (answer, _) = trickle(&up, &path, &pdf("steady", 150_000), 96 * 1024).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let (status, _) = upload_file(
        &up.gateway_client(),
        &url,
        "more.pdf",
        "application/pdf",
        pdf("more", 10),
    )
    .await;
    assert_eq!(status, 410, "the link's quota is used by the steady upload");
}
