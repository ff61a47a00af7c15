//! Real tus clients against upgate, through a TCP relay that cuts the connection part-way:
//! tus-js-client (the reference client, in Node) resumes where the server says it stands,
//! and the file is stored whole. The relay cuts raw TCP (not a browser's offline switch),
//! as a phone that loses its signal does.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::files::{pdf, sha256_hex};
use common::scene::{scene, settings};
use common::upgate::{link_path, Upgate};

/// Relays loopback TCP to `target`; the first connection is cut once `cut_after` bytes
/// went from the client to the server. Returns the relay's port.
async fn relay(target: u16, cut_after: u64) -> (u16, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let cut = Arc::new(AtomicBool::new(false));
    let was_cut = cut.clone();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let server = TcpStream::connect(("127.0.0.1", target)).await.unwrap();
            let limit = if first { Some(cut_after) } else { None };
            first = false;
            let cut = cut.clone();
            tokio::spawn(pipe(client, server, limit, cut));
        }
    });
    (port, was_cut)
}

async fn pipe(client: TcpStream, server: TcpStream, limit: Option<u64>, cut: Arc<AtomicBool>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let sent = Arc::new(AtomicU64::new(0));
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let total = sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if limit.is_some_and(|l| total > l) {
                // The signal is gone: both sides see the connection die mid-request.
                cut.store(true, Ordering::SeqCst);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tus_js_client_resumes_after_the_connection_is_cut() {
    let browser_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/tus-js-client").is_dir(),
        "run .ci/run (it runs `npm ci` in tests/browser)"
    );
    let mut up = Upgate::configure("");
    up.start().await;
    let scene = scene(&up, settings(2, 8 << 20)).await;
    let (link, _) = scene.link("call-tus-js").await;
    let file = pdf("sent from tus-js-client", 3 << 20);
    let path = up.dir.path().join("statement.pdf");
    std::fs::write(&path, &file).unwrap();

    let chunk: u64 = 512 * 1024;
    let (port, was_cut) = relay(up.gateway_port, 1_300_000).await;
    let endpoint = format!("https://localhost:{port}/{}/tus", link_path(&link));
    let out = std::process::Command::new("node")
        .arg(browser_dir.join("tus_upload.mjs"))
        .env("TUS_ENDPOINT", &endpoint)
        .env("TUS_FILE", &path)
        .env("TUS_NAME", "statement.pdf")
        .env("TUS_CHUNK", chunk.to_string())
        // The test gateway's certificate is self-signed.
        .env("NODE_TLS_REJECT_UNAUTHORIZED", "0")
        .output()
        .expect("node is installed");
    assert!(
        out.status.success(),
        "tus-js-client failed:\n{}\n{}",
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
    assert!(summary["retries"].as_u64().unwrap() >= 1, "{summary}");
    // Resumed, not restarted: after the cut the client went on from an offset the server
    // gave it, and only the chunk in flight at the cut was sent twice.
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
            pair[1] + chunk >= pair[0] + 1,
            "went back more than a chunk: {summary}"
        );
    }
    assert!(resent <= 1, "{summary}");
    eprintln!("tus-js-client PATCH offsets: {patches:?}");

    let (_, call) = scene.reviewer.get("/v1/calls/call-tus-js").await;
    let files = call["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{call}");
    assert_eq!(files[0]["name"], "statement.pdf");
    assert_eq!(files[0]["sha256"], sha256_hex(&file));
    assert_eq!(files[0]["size"], file.len());
}
