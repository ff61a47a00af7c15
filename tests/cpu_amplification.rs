//! Work per byte stays bounded whatever the framing: a body sent in tiny chunked frames costs
//! the server at most a small factor more CPU per byte than a normal upload (frames are
//! coalesced before any per-chunk stage), and frames too small to be anything but an attack
//! are cut off at once. Server CPU is read from /proc (user + system time of the process),
//! and only ratios within one run are compared. /proc counts in 10 ms ticks, so every
//! measured stretch is made long enough to span many ticks: the baseline about 25, the
//! accepted uploads 8 or more (a 1 MiB upload is two ticks, and one tick more or less
//! would swing its ratio by half).

mod common;

use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;

use common::files::pdf;
use common::raw::{connect, read_until_closed};
use common::scene::{scene, settings};
use common::upgate::{link_path, upload_file, Upgate};

const MIB: usize = 1024 * 1024;

/// How much more CPU per byte than a normal upload any framing may cost. The figures each
/// case prints are what to watch (and benches/ measures them properly); this bound only
/// catches the class of fault the attack run found, 190x, without failing on a noisy host.
/// On the shared 2-core VMs of December 2026 the same commit measured 7x to 10.5x for
/// 256-byte frames from one fresh build and run to the next (a normal upload is cheap there,
/// 3.4 ns/byte with AVX-512; the chunked path's task hand-overs are dear), against the 8x
/// bound it once had: a tight bound measured the host, not upgate.
const AMPLIFICATION_BOUND: f64 = 32.0;

/// User + system CPU seconds the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_comm.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the comm.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// A multipart body holding `file`, sent with `Transfer-Encoding: chunked` in chunks of
/// `chunk` bytes (written to the socket in large writes, as a fast attacker would).
async fn send_in_chunks(up: &Upgate, path: &str, file: &[u8], chunk: usize) -> String {
    let mut body =
        b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.pdf\"\r\n\r\n".to_vec();
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n--B--\r\n");
    let mut wire = format!(
        "POST /{path}/files HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=B\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for piece in body.chunks(chunk) {
        wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        wire.extend_from_slice(piece);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let mut tls = connect(up).await;
    for block in wire.chunks(64 * 1024) {
        if tls.write_all(block).await.is_err() {
            break;
        }
    }
    let _ = tls.flush().await;
    read_until_closed(&mut tls, std::time::Duration::from_secs(60))
        .await
        .0
}

/// A multipart body holding `file` with a Content-Length, written `record` bytes per write:
/// each write is one TLS record. Returns what the server answered before closing.
async fn send_in_records(up: &Upgate, path: &str, file: &[u8], record: usize) -> String {
    let mut body =
        b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.pdf\"\r\n\r\n".to_vec();
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n--B--\r\n");
    let head = format!(
        "POST /{path}/files HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut tls = connect(up).await;
    tls.write_all(head.as_bytes()).await.unwrap();
    for piece in body.chunks(record) {
        if tls.write_all(piece).await.is_err() {
            break;
        }
    }
    let _ = tls.flush().await;
    read_until_closed(&mut tls, std::time::Duration::from_secs(60))
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_amplification() {
    let mut up = Upgate::configure("");
    up.start().await;
    let scene = scene(&up, settings(20, 50 * MIB as u64)).await;
    let pid = up.pid();
    let client = up.gateway_client();

    // Normal uploads: the cost per byte we compare against.
    let (url, _) = scene.link("call-normal").await;
    let normal = pdf("normal", 8 * MIB);
    let (status, _) = upload_file(&client, &url, "warm.pdf", "application/pdf", pdf("warm", MIB)).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = cpu_seconds(pid);
    const NORMAL_RUNS: usize = 8;
    for i in 0..NORMAL_RUNS {
        let (status, body) = upload_file(
            &client,
            &url,
            &format!("n{i}.pdf"),
            "application/pdf",
            normal.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let per_byte_normal = (cpu_seconds(pid) - before) / (NORMAL_RUNS * normal.len()) as f64;

    // Small frames, still real uploads: accepted, at a cost per byte close to normal.
    let (url, _) = scene.link("call-small-frames").await;
    let path = link_path(&url);
    let file = pdf("frames", 4 * MIB);
    for chunk in [256, 1024] {
        let before = cpu_seconds(pid);
        let answer = send_in_chunks(&up, &path, &file, chunk).await;
        assert!(
            answer.starts_with("HTTP/1.1 201"),
            "{chunk}-byte frames: {answer}"
        );
        let per_byte = (cpu_seconds(pid) - before) / file.len() as f64;
        let ratio = per_byte / per_byte_normal;
        eprintln!(
            "{chunk}-byte frames: {:.1} ns/byte, normal {:.1} ns/byte, ratio {ratio:.2}",
            per_byte * 1e9,
            per_byte_normal * 1e9
        );
        assert!(
            ratio <= AMPLIFICATION_BOUND,
            "{chunk}-byte frames cost {ratio:.1}x a normal upload per byte"
        );
    }

    // One-byte frames (the attack run's 190x): cut off at once, for next to nothing.
    let (url, _) = scene.link("call-one-byte").await;
    let path = link_path(&url);
    let file = pdf("trickle", MIB);
    for chunk in [1, 8, 72] {
        let before = cpu_seconds(pid);
        let answer = send_in_chunks(&up, &path, &file, chunk).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{chunk}-byte frames: {answer}"
        );
        assert!(answer.contains("malformed_upload"), "{answer}");
        let per_byte = (cpu_seconds(pid) - before) / file.len() as f64;
        let ratio = per_byte / per_byte_normal;
        eprintln!(
            "{chunk}-byte frames: refused, {:.1} ns per byte offered, ratio {ratio:.2}",
            per_byte * 1e9
        );
        assert!(
            ratio <= AMPLIFICATION_BOUND,
            "{chunk}-byte frames cost {ratio:.1}x a normal upload per byte"
        );
    }
    let (_, call) = scene.integration.get("/v1/calls/call-one-byte").await;
    assert_eq!(call["links"][0]["files_received"], 0);

    // Tiny TLS records: 512-byte records still carry an upload; one-byte and 64-byte records
    // end the connection once the grace is spent, for little more than the bytes read.
    let (url, _) = scene.link("call-records").await;
    let path = link_path(&url);
    let accepted = pdf("records", 8 * MIB);
    let before = cpu_seconds(pid);
    let answer = send_in_records(&up, &path, &accepted, 512).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "512-byte records: {answer}");
    let ratio = (cpu_seconds(pid) - before) / accepted.len() as f64 / per_byte_normal;
    // Measured over 8 MiB: over 1 MiB, the upload's fixed cost (handshake, claim, commit)
    // and the tick rounding swamp it.
    eprintln!("512-byte TLS records: ratio {ratio:.2}");
    assert!(
        ratio <= AMPLIFICATION_BOUND,
        "512-byte records cost {ratio:.1}x a normal upload per byte"
    );
    // Cut off early, so what they cost is the bytes read before the cut: a small file.
    let file = pdf("records", MIB);
    for record in [1, 64] {
        let before = cpu_seconds(pid);
        let answer = send_in_records(&up, &path, &file, record).await;
        assert!(!answer.contains(" 201 "), "{record}-byte records: {answer}");
        let ratio = (cpu_seconds(pid) - before) / file.len() as f64 / per_byte_normal;
        eprintln!("{record}-byte TLS records: cut off, ratio {ratio:.2}");
        assert!(
            ratio <= AMPLIFICATION_BOUND,
            "{record}-byte records cost {ratio:.1}x a normal upload per byte"
        );
    }
    let (_, call) = scene.integration.get("/v1/calls/call-records").await;
    assert_eq!(call["links"][0]["files_received"], 1);
}
