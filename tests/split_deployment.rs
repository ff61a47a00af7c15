//! The planes apart, as an operator scales out: one control plane, two gateways on two
//! ports, files on a real Garage. A link issued through the API, its page served by one
//! gateway, files uploaded through the other, downloads byte-exact through the control
//! plane; a gateway killed mid-upload gives its slot back when its lease ends; Garage and
//! the control plane stopped and started mid-run, with 503s meanwhile and no spent link.

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use common::files::{pdf, sha256_hex};
use common::garage::Garage;
use common::poll::eventually;
use common::raw;
use common::scene::{scene, settings};
use common::split::{control_plane, gateway, mint, url_on};
use common::upgate::{link_path, upload_file, Upgate};

/// A multipart upload of `file` sent raw to `gw`, stopped after `sent` bytes of the body.
async fn half_upload(gw: &Upgate, link_url: &str, file: &[u8], sent: usize) -> impl Drop {
    let boundary = "halfhalfhalf";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.pdf\"\r\n\
Content-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut stream = raw::connect(gw).await;
    let head = format!(
        "POST /{}/files HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n\
Content-Length: {}\r\n\r\n",
        link_path(link_url),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..sent]).await.unwrap();
    stream.flush().await.unwrap();
    // Kept open (and silent) by the caller: the upload stays in flight.
    struct Open(#[allow(dead_code)] tokio_rustls::client::TlsStream<tokio::net::TcpStream>);
    impl Drop for Open {
        fn drop(&mut self) {}
    }
    Open(stream)
}

/// Waits until `check` holds, or fails after `limit`.
fn assert_unavailable(status: StatusCode, retry_after: Option<&str>, body: &Value) {
    assert_eq!(status, 503, "{body}");
    assert!(retry_after.is_some(), "a 503 says when to try again");
    let sentence = body["detail"].as_str().unwrap_or_default();
    assert!(sentence.len() > 20, "a plain sentence for the caller: {body}");
}

async fn upload_raw(
    client: &reqwest::Client,
    url: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Option<String>, Value) {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name("doc.pdf")
        .mime_str("application/pdf")
        .unwrap();
    let resp = client
        .post(format!("{url}/files"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

/// Every 32-byte storage secret the control plane holds.
fn storage_secrets(control: &Upgate) -> Vec<Vec<u8>> {
    std::fs::read_dir(control.data_dir().join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "secret"))
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every readable mapping of a live process's memory.
fn process_memory(pid: u32) -> Vec<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut regions = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (range, perms) = (fields.next().unwrap(), fields.next().unwrap());
        if !perms.starts_with('r') || line.contains("[vvar]") || line.contains("[vsyscall]") {
            continue;
        }
        let (a, b) = range.split_once('-').unwrap();
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        let mut buf = vec![0u8; (b - a) as usize];
        if mem.seek(SeekFrom::Start(a)).is_ok() && mem.read_exact(&mut buf).is_ok() {
            regions.push(buf);
        }
    }
    regions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_one_control_plane_one_bucket() {
    let mut garage = Garage::start();
    let (mut control, internal_port) = control_plane("lease_ttl = \"3s\"\n", &garage.storage_config());
    control.start_as("control").await;

    // The operator mints one credential per gateway; each is printed once.
    let (cred_a, cred_b) = (mint(&control, "gw-a"), mint(&control, "gw-b"));
    let (ok, listed, _) = control.cli(&["gateway-credential", "list"]);
    assert!(ok && listed.contains("gw-a") && !listed.contains(&cred_a[cred_a.len() - 20..]));
    let storage = garage.storage_config();
    let mut a = gateway(&control, internal_port, &cred_a, &storage);
    let mut b = gateway(&control, internal_port, &cred_b, &storage);
    a.start_as("gateway").await;
    b.start_as("gateway").await;
    for gw in [&a, &b] {
        let ready = gw.readyz().await;
        assert_eq!(ready["ready"], true, "{ready}");
        assert!(
            !gw.data_dir().join("keys").exists(),
            "a gateway keeps no key files"
        );
    }

    let s = scene(&control, settings(3, 4 << 20)).await;
    let (link, link_id) = s.link("call-1").await;
    let (client_a, client_b) = (a.gateway_client(), b.gateway_client());

    // The page through A, a file through B.
    let page = client_a.get(url_on(&a, &link)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let first = pdf("first", 200_000);
    let (status, body) = upload_file(
        &client_b,
        &url_on(&b, &link),
        "first.pdf",
        "application/pdf",
        first.clone(),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // Garage down: the caller hears "try again", nothing is recorded, the slot comes back.
    garage.stop();
    let (status, retry, body) = upload_raw(&client_b, &url_on(&b, &link), pdf("lost", 1000)).await;
    assert_unavailable(status, retry.as_deref(), &body);
    garage.restart();

    // A holds a slot with an upload in flight; B fills the last one; then A is killed.
    let big = pdf("big", 1 << 20);
    let in_flight = half_upload(&a, &link, &big, 300_000).await;
    let in_flight_on = |call: &Value| {
        call["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == link_id.as_str())
            .unwrap()["uploads_in_flight"]
            .as_u64()
    };
    eventually(Duration::from_secs(5), "A's upload holds a lease", || async {
        in_flight_on(&s.integration.get("/v1/calls/call-1").await.1) == Some(1)
    })
    .await;
    let second = pdf("second", 150_000);
    let (status, body) = upload_file(
        &client_b,
        &url_on(&b, &link),
        "second.pdf",
        "application/pdf",
        second.clone(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = upload_raw(&client_b, &url_on(&b, &link), pdf("third", 1000)).await;
    assert_eq!(status, 410, "the third slot is held by A's upload: {body}");
    a.kill9();
    drop(in_flight);
    // The lease (3 s) ends and the slot returns by itself.
    let third = pdf("third", 100_000);
    let mut stored = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (status, _, body) = upload_raw(&client_b, &url_on(&b, &link), third.clone()).await;
        if status == 201 {
            stored = Some(body);
            break;
        }
        assert_eq!(status, 410, "{body}");
    }
    assert!(stored.is_some(), "the killed gateway's slot did not come back");
    assert_eq!(
        in_flight_on(&s.integration.get("/v1/calls/call-1").await.1),
        Some(0)
    );

    // Every file downloads byte-exact through the control plane, from the bucket.
    let (_, call) = s.reviewer.get("/v1/calls/call-1").await;
    let files = call["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "{call}");
    let mut wanted: Vec<String> = [&first, &second, &third].iter().map(|f| sha256_hex(f)).collect();
    for f in files {
        let bytes = s
            .reviewer
            .fetch(&format!("/v1/files/{}/content", f["id"].as_str().unwrap()), None)
            .await;
        assert_eq!(bytes.status(), 200);
        let got = sha256_hex(&bytes.bytes().await.unwrap());
        let at = wanted
            .iter()
            .position(|w| *w == got)
            .expect("a stored file is byte-exact");
        wanted.remove(at);
    }
    // A range is one ranged read, and exact.
    let id = files[0]["id"].as_str().unwrap();
    let part = s
        .reviewer
        .fetch(&format!("/v1/files/{id}/content"), Some("bytes=70000-70099"))
        .await;
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().len(), 100);

    // The control plane down: B answers 503 with a sentence, readiness says not ready, and
    // the link is not spent; back up, everything recovers unaided.
    let (link2, _) = s.link("call-2").await;
    control.stop();
    let (status, retry, body) = upload_raw(&client_b, &url_on(&b, &link2), pdf("wait", 1000)).await;
    assert_unavailable(status, retry.as_deref(), &body);
    let page = client_b.get(url_on(&b, &link2)).send().await.unwrap();
    assert_eq!(page.status(), 503);
    assert!(page.headers().contains_key("retry-after"));
    eventually(Duration::from_secs(10), "B says it is not ready", || async {
        b.readyz().await["control"]["status"] == "down"
    })
    .await;
    control.start_as("control").await;
    eventually(Duration::from_secs(10), "B is ready again", || async {
        b.readyz().await["ready"] == true
    })
    .await;
    let (status, body) = upload_file(
        &client_b,
        &url_on(&b, &link2),
        "late.pdf",
        "application/pdf",
        pdf("late", 5000),
    )
    .await;
    assert_eq!(status, 201, "the link was not spent: {body}");

    // Key separation: nothing the gateway holds (config, data directory, memory) contains
    // a storage secret.
    let secrets = storage_secrets(&control);
    assert!(!secrets.is_empty());
    let mut held: Vec<Vec<u8>> = vec![std::fs::read(&b.config).unwrap()];
    for entry in walk(b.dir.path()) {
        held.push(std::fs::read(entry).unwrap());
    }
    let memory = process_memory(b.pid());
    // The scan sees what the gateway does hold (its own credential): it is not blind.
    assert!(
        memory.iter().any(|r| contains(r, cred_b.as_bytes())),
        "the memory scan read nothing useful"
    );
    held.extend(memory);
    for secret in &secrets {
        let hex = hex::encode(secret);
        for region in &held {
            assert!(
                !contains(region, secret),
                "a storage secret in the gateway's reach"
            );
            assert!(
                !contains(region, hex.as_bytes()),
                "a storage secret (hex) in the gateway's reach"
            );
        }
    }

    // A revoked credential gets nothing: B stops being ready, and uploads answer 503.
    let (ok, out, _) = control.cli(&["gateway-credential", "list"]);
    assert!(ok);
    let b_id = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["name"] == "gw-b")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, _, err) = control.cli(&["gateway-credential", "revoke", &b_id]);
    assert!(ok, "{err}");
    eventually(
        Duration::from_secs(10),
        "a revoked gateway is not ready",
        || async { b.readyz().await["ready"] == false },
    )
    .await;
    let (link3, _) = s.link("call-3").await;
    let (status, _, _) = upload_raw(&client_b, &url_on(&b, &link3), pdf("no", 1000)).await;
    assert_eq!(status, 503);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.is_file() {
            files.push(path);
        }
    }
    files
}
