//! The multipart framing through the real gateway: anything two parsers could read
//! differently is refused with 400 `malformed_upload` and spends nothing, and no part of a
//! body (a later part's head, a preamble) is buffered beyond a small cap whatever it holds.

mod common;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use common::files::pdf;
use common::raw::{connect, read_until_closed};
use common::scene::{scene, settings, Scene};
use common::upgate::{link_path, Upgate};

const MIB: u64 = 1024 * 1024;

async fn start(max_file_bytes: u64) -> (Upgate, Scene) {
    let mut up = Upgate::configure("");
    up.start().await;
    let scene = scene(&up, settings(5, max_file_bytes)).await;
    (up, scene)
}

async fn post(up: &Upgate, url: &str, content_types: &[&str], body: Vec<u8>) -> (StatusCode, Value) {
    let mut req = up.gateway_client().post(format!("{url}/files"));
    for ct in content_types {
        req = req.header("content-type", *ct);
    }
    let resp = req.body(body).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn one_part(boundary: &str, disposition: &str) -> Vec<u8> {
    [
        format!("--{boundary}\r\n{disposition}\r\nContent-Type: application/pdf\r\n\r\n").into_bytes(),
        pdf("doc", 0),
        format!("\r\n--{boundary}--\r\n").into_bytes(),
    ]
    .concat()
}

async fn nothing_spent(up: &Upgate, scene: &Scene, call: &str) {
    assert!(std::fs::read_dir(up.data_dir().join("spool"))
        .unwrap()
        .next()
        .is_none());
    let (_, call) = scene.integration.get(&format!("/v1/calls/{call}")).await;
    assert_eq!(call["links"][0]["files_received"], 0, "{call}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_multipart_framing_still_accepted() {
    let (up, scene) = start(200_000).await;
    let (url, _) = scene.link("call-ambiguous").await;
    let cd = "Content-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"";
    let b71 = "b".repeat(71);
    let refused: Vec<(&str, Vec<&str>, Vec<u8>)> = vec![
        (
            "two boundary parameters",
            vec!["multipart/form-data; boundary=B; boundary=C"],
            one_part("B", cd),
        ),
        (
            "two boundaries, other order",
            vec!["multipart/form-data; boundary=C; boundary=B"],
            one_part("B", cd),
        ),
        (
            "boundary over 70 characters",
            vec![Box::leak(
                format!("multipart/form-data; boundary={b71}").into_boxed_str(),
            )],
            one_part(&b71, cd),
        ),
        (
            "two Content-Type headers",
            vec![
                "multipart/form-data; boundary=B",
                "multipart/form-data; boundary=C",
            ],
            one_part("B", cd),
        ),
        (
            "a boundary with a quote",
            vec!["multipart/form-data; boundary=B\"x"],
            one_part("B\"x", cd),
        ),
        (
            "not form-data",
            vec!["multipart/mixed; boundary=B"],
            one_part("B", cd),
        ),
        (
            "two filename parameters",
            vec!["multipart/form-data; boundary=B"],
            one_part("B", &format!("{cd}; filename=\"b.exe\"")),
        ),
        (
            "two name parameters",
            vec!["multipart/form-data; boundary=B"],
            one_part(
                "B",
                "Content-Disposition: form-data; name=\"file\"; name=\"other\"; filename=\"a.pdf\"",
            ),
        ),
        (
            "attachment disposition",
            vec!["multipart/form-data; boundary=B"],
            one_part(
                "B",
                "Content-Disposition: attachment; name=\"file\"; filename=\"a.pdf\"",
            ),
        ),
        (
            "unquoted parameters",
            vec!["multipart/form-data; boundary=B"],
            one_part("B", "Content-Disposition: form-data; name=file; filename=a.pdf"),
        ),
        (
            "a parameter hidden in a quoted name",
            vec!["multipart/form-data; boundary=B"],
            one_part(
                "B",
                "Content-Disposition: form-data; name=\"file; filename=b.exe\"; filename=\"a.pdf\"",
            ),
        ),
        (
            "filename*",
            vec!["multipart/form-data; boundary=B"],
            one_part("B", &format!("{cd}; filename*=UTF-8''b.exe")),
        ),
        (
            "a fake delimiter in the data",
            vec!["multipart/form-data; boundary=B"],
            one_part("B", cd)
                .into_iter()
                .rev()
                .skip(9)
                .collect::<Vec<u8>>()
                .into_iter()
                .rev()
                .chain(b"\r\n--Bx\r\n--B--\r\n".iter().copied())
                .collect(),
        ),
        (
            "bytes after the closing boundary",
            vec!["multipart/form-data; boundary=B"],
            [one_part("B", cd), b"--B\r\nsmuggled".to_vec()].concat(),
        ),
    ];
    for (what, types, body) in refused {
        let (status, answer) = post(&up, &url, &types, body).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("malformed_upload")),
            "{what}: {answer}"
        );
        assert!(answer["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}");
    }
    nothing_spent(&up, &scene, "call-ambiguous").await;
    let (status, answer) = post(
        &up,
        &url,
        &["multipart/form-data; boundary=\"B\""],
        one_part("B", cd),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a well-formed part is still taken: {answer}"
    );
}

/// Sends a chunked body: `head`, then `filler` repeated up to `total` bytes; returns the answer.
async fn send_chunked(up: &Upgate, path: &str, head: &[u8], total: u64) -> String {
    let mut tls = connect(up).await;
    let request = format!(
        "POST /{path}/files HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=B\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let mut sent = 0u64;
    let mut out = request.into_bytes();
    out.extend_from_slice(format!("{:x}\r\n", head.len()).as_bytes());
    out.extend_from_slice(head);
    out.extend_from_slice(b"\r\n");
    let filler = vec![b'a'; 64 * 1024];
    let mut ok = tls.write_all(&out).await.is_ok();
    while ok && sent < total {
        let mut chunk = format!("{:x}\r\n", filler.len()).into_bytes();
        chunk.extend_from_slice(&filler);
        chunk.extend_from_slice(b"\r\n");
        ok = tls.write_all(&chunk).await.is_ok();
        sent += filler.len() as u64;
    }
    let (answer, _, _) = read_until_closed(&mut tls, std::time::Duration::from_secs(20)).await;
    answer
}

/// The attack run's medium finding: a later part whose head never ends was buffered to the
/// end of the body (+40 MiB RSS for one request). Every head and the preamble are capped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_held_by_a_part_head_after_the_first_part() {
    let (up, scene) = start(50 * MIB).await;
    let (url, _) = scene.link("call-heads").await;
    let path = link_path(&url);
    let cd = "Content-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"";
    let first_part = [
        format!("--B\r\n{cd}\r\n\r\n").into_bytes(),
        pdf("doc", 0),
        b"\r\n--B\r\nContent-Disposition: form-data; name=\"x\"; filename=\"".to_vec(),
    ]
    .concat();
    let heads: [(&str, Vec<u8>); 3] = [
        ("a second part's endless head", first_part),
        ("an endless first head", format!("--B\r\n{cd}; x=\"").into_bytes()),
        ("an endless preamble", b"preamble ".to_vec()),
    ];
    // Warm up the allocator and every code path once.
    for (_, head) in &heads {
        send_chunked(&up, &path, head, 4 * MIB).await;
    }
    let pid = up.pid();
    for (what, head) in &heads {
        let (before, _) = common::upgate::rss_and_peak(pid);
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
        let answer = send_chunked(&up, &path, head, 40 * MIB).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{what}: {answer}");
        assert!(answer.contains("malformed_upload"), "{what}: {answer}");
        let (_, peak) = common::upgate::rss_and_peak(pid);
        let growth = peak.saturating_sub(before);
        eprintln!("{what}: RSS {before} -> peak {peak} (+{growth} bytes)");
        assert!(growth < MIB, "{what}: +{growth} bytes of RSS for one request");
    }
    nothing_spent(&up, &scene, "call-heads").await;
}
