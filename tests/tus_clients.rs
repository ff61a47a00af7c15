//! Real tus clients against upgate, through a TCP relay that cuts the connection part-way:
//! tus-js-client (the reference client, in Node) and tuspy (the tus project's Python
//! client) each resume where the server says it stands, and the file is stored whole. The relay cuts raw TCP (not a browser's offline switch),
//! as a phone that loses its signal does.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::files::{pdf, sha256_hex};
use common::scene::{scene, settings};
use common::split::{control_plane, gateway, mint};
use common::upgate::{link_path, Upgate};

/// Relays loopback TCP to `target`, and cuts once: the connection on which the bytes from
/// clients to the server pass `cut_after` (counted over all connections, since a client may
/// open one per request) dies there. Returns the relay's port and whether the cut happened.
async fn relay(target: u16, cut_after: u64) -> (u16, Arc<AtomicBool>) {
    relay_then(target, cut_after, target).await
}

/// As [`relay`], and every connection after the cut goes to `then` instead: a load balancer
/// that moves the client to another gateway.
async fn relay_then(target: u16, cut_after: u64, then: u16) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let cut = Arc::new(AtomicBool::new(false));
    let was_cut = cut.clone();
    let sent = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let to = if cut.load(Ordering::SeqCst) { then } else { target };
            let Ok(server) = TcpStream::connect(("127.0.0.1", to)).await else {
                continue;
            };
            tokio::spawn(pipe(client, server, cut_after, sent.clone(), cut.clone()));
        }
    });
    (port, was_cut)
}

async fn pipe(client: TcpStream, server: TcpStream, limit: u64, sent: Arc<AtomicU64>, cut: Arc<AtomicBool>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let total = sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if total > limit && !cut.swap(true, Ordering::SeqCst) {
                // The signal is gone: both sides see the connection die mid-request.
                return;
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// Where tuspy is: `.ci/run` installs it into this virtualenv.
fn tuspy_python() -> std::path::PathBuf {
    std::env::var_os("UPGATE_TUSPY_PYTHON").map_or_else(
        || std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/upgate/tuspy/bin/python"),
        std::path::PathBuf::from,
    )
}

/// The client's command: upload `TUS_FILE` to `TUS_ENDPOINT` in `TUS_CHUNK` pieces, print
/// `{"patches": [offset, ...]}`.
fn client(name: &str) -> std::process::Command {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    match name {
        "tus-js-client" => {
            let dir = root.join("tests/browser");
            assert!(
                dir.join("node_modules/tus-js-client").is_dir(),
                "run .ci/run (it runs `npm ci` in tests/browser)"
            );
            let mut c = std::process::Command::new("node");
            c.arg(dir.join("tus_upload.mjs"))
                // The test gateway's certificate is self-signed.
                .env("NODE_TLS_REJECT_UNAUTHORIZED", "0");
            c
        }
        _ => {
            let python = tuspy_python();
            assert!(
                python.exists(),
                "run .ci/run (it installs tuspy into {})",
                python.display()
            );
            let mut c = std::process::Command::new(python);
            c.arg(root.join("tests/tus_upload.py"));
            c
        }
    }
}

/// One client uploads a 3 MiB file in 512 KiB chunks through a relay that cuts the first
/// connection mid-chunk; it must resume, not restart, and the file must be stored whole.
async fn resumes_after_a_cut(name: &str) {
    let mut up = Upgate::configure("");
    up.start().await;
    let scene = scene(&up, settings(2, 8 << 20)).await;
    let (link, _) = scene.link("call-tus").await;
    let file = pdf(&format!("sent from {name}"), 3 << 20);
    let path = up.dir.path().join("statement.pdf");
    std::fs::write(&path, &file).unwrap();

    let chunk: u64 = 512 * 1024;
    let (port, was_cut) = relay(up.gateway_port, 1_300_000).await;
    let endpoint = format!("https://localhost:{port}/{}/tus", link_path(&link));
    let out = client(name)
        .env("TUS_ENDPOINT", &endpoint)
        .env("TUS_FILE", &path)
        .env("TUS_NAME", "statement.pdf")
        .env("TUS_CHUNK", chunk.to_string())
        .output()
        .expect("the client runs");
    assert!(
        out.status.success(),
        "{name} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        was_cut.load(Ordering::SeqCst),
        "the relay cut the first connection"
    );
    let summary: serde_json::Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    let patches: Vec<u64> = summary["patches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    // Resumed, not restarted: after the cut the client went on from an offset the server
    // gave it, and at most the chunk in flight at the cut was sent twice.
    assert_eq!(patches[0], 0, "{summary}");
    assert!(
        patches.iter().skip(1).all(|o| *o > 0),
        "never back to 0: {summary}"
    );
    let mut resent = 0;
    for pair in patches.windows(2) {
        if pair[1] <= pair[0] {
            resent += 1;
        }
        assert!(
            pair[1] + chunk > pair[0],
            "went back more than a chunk: {summary}"
        );
    }
    assert!(resent <= 1, "{summary}");
    // The cut fell inside a chunk, and the server kept what had arrived of it: the client
    // went on from an offset only the server could have given it.
    assert!(
        patches.iter().any(|o| o % chunk != 0),
        "resumed from the server's offset: {summary}"
    );
    eprintln!("{name} PATCH offsets: {patches:?}");

    let (_, call) = scene.reviewer.get("/v1/calls/call-tus").await;
    let files = call["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{call}");
    assert_eq!(files[0]["name"], "statement.pdf");
    assert_eq!(files[0]["sha256"], sha256_hex(&file));
    assert_eq!(files[0]["size"], file.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_client_resumes_after_the_connection_is_cut() {
    resumes_after_a_cut("tus-js-client").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuspy_resumes_after_the_connection_is_cut() {
    resumes_after_a_cut("tuspy").await;
}

/// The gateway that holds a partial upload dies, and the load balancer sends the client to
/// another one. Partial uploads are not shared between gateways (docs/decisions.md): the
/// other gateway does not know the upload, and the client starts the file over there and
/// finishes it. The file is stored once, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_client_starts_over_cleanly_on_another_gateway_when_its_gateway_dies() {
    let shared = tempfile::tempdir().unwrap();
    let storage = format!(
        "[storage]\nbackend = \"local\"\npath = {:?}\n",
        shared.path().join("objects").display().to_string()
    );
    let (mut control, internal_port) = control_plane("lease_ttl = \"3s\"\n", &storage);
    control.start_as("control").await;
    let (cred_a, cred_b) = (mint(&control, "gw-a"), mint(&control, "gw-b"));
    let mut a = gateway(&control, internal_port, &cred_a, &storage);
    let mut b = gateway(&control, internal_port, &cred_b, &storage);
    a.start_as("gateway").await;
    b.start_as("gateway").await;

    let scene = scene(&control, settings(2, 8 << 20)).await;
    let (link, _) = scene.link("call-moved").await;
    let file = pdf("moved between gateways", 3 << 20);
    let path = a.dir.path().join("statement.pdf");
    std::fs::write(&path, &file).unwrap();
    let chunk: u64 = 512 * 1024;
    let (port, was_cut) = relay_then(a.gateway_port, 1_300_000, b.gateway_port).await;
    let endpoint = format!("https://localhost:{port}/{}/tus", link_path(&link));
    let mut node = tokio::process::Command::from(client("tus-js-client"));
    let run = node
        .env("TUS_ENDPOINT", &endpoint)
        .env("TUS_FILE", &path)
        .env("TUS_NAME", "statement.pdf")
        .env("TUS_CHUNK", chunk.to_string())
        .output();
    let kill_a = async {
        while !was_cut.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        a.kill9();
    };
    let (out, ()) = tokio::join!(run, kill_a);
    let out = out.unwrap();
    assert!(
        out.status.success(),
        "tus-js-client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    let patches: Vec<u64> = summary["patches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    // Started over once: back to 0 after the cut, then straight through.
    let restarts = patches.windows(2).filter(|w| w[1] == 0 && w[0] > 0).count();
    assert_eq!(restarts, 1, "{summary}");
    eprintln!("tus-js-client PATCH offsets across the move: {patches:?}");

    let (_, call) = scene.reviewer.get("/v1/calls/call-moved").await;
    let files = call["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{call}");
    assert_eq!(files[0]["sha256"], sha256_hex(&file));
}
