//! An upgrade with no dropped upload, rehearsed as systemd runs it (`upgate.socket` holds the
//! public listener; `systemctl restart upgate`): a stand-in for systemd
//! (tests/socket_activate.py) owns the socket and hands it to each upgate as fd 3. An upload
//! is half sent when the restart begins; the old process stops accepting and finishes it
//! (201); a caller who connects during the drain waits in the socket's queue and is served
//! by the new process (201). No connection is refused or reset. Real binary, real TLS.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use common::files::pdf;
use common::raw::{connect, send};
use common::scene::{scene, settings};
use common::upgate::{link_path, Upgate, BIN};

/// The systemd stand-in, its commands and its reports.
struct Supervisor {
    child: Child,
    commands: ChildStdin,
    reports: BufReader<std::process::ChildStdout>,
}

impl Supervisor {
    fn start(up: &Upgate) -> Supervisor {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/socket_activate.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(up.gateway_port.to_string())
            .arg(&up.log)
            .args(["--", BIN, "serve", "--config"])
            .arg(&up.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let commands = child.stdin.take().unwrap();
        let reports = BufReader::new(child.stdout.take().unwrap());
        let mut s = Supervisor {
            child,
            commands,
            reports,
        };
        assert!(s.report().starts_with("started "));
        s
    }

    fn report(&mut self) -> String {
        let mut line = String::new();
        self.reports.read_line(&mut line).unwrap();
        line.trim().to_string()
    }

    fn tell(&mut self, command: &str) {
        writeln!(self.commands, "{command}").unwrap();
        self.commands.flush().unwrap();
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.tell("stop");
        let _ = self.child.wait();
    }
}

/// A multipart upload of `file`: its head and body.
fn upload(url: &str, file: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut body = b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n".to_vec();
    body.extend_from_slice(file);
    body.extend_from_slice(b"\r\n--B--\r\n");
    let head = format!(
        "POST /{}/files HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=B\r\nAccept: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        link_path(url),
        body.len()
    );
    (head.into_bytes(), body)
}

async fn answer<S: AsyncReadExt + Unpin>(stream: &mut S) -> String {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk))
            .await
            .expect("an answer")
            .unwrap_or(0);
        if n == 0 {
            return String::from_utf8_lossy(&answer).into_owned();
        }
        answer.extend_from_slice(&chunk[..n]);
    }
}

async fn wait_for_log(up: &Upgate, what: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while up.logs().matches(what).count() < n {
        assert!(Instant::now() < deadline, "no {what:?}:\n{}", up.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_a_held_socket_drops_no_upload() {
    let up = Upgate::configure("");
    let mut systemd = Supervisor::start(&up);
    up.wait_until_up("serve").await;
    assert!(up
        .logs()
        .contains("public listener handed over by the service manager"));
    let scene = scene(&up, settings(5, 1_000_000)).await;
    let (url, _) = scene.link("call-upgrade").await;

    // An upload is half sent when the upgrade begins.
    let first = pdf("sent across the upgrade", 40_000);
    let (head, body) = upload(&url, &first);
    let mut in_flight = connect(&up).await;
    send(&mut in_flight, &head).await;
    let half = body.len() / 2;
    send(&mut in_flight, &body[..half]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    systemd.tell("restart");
    wait_for_log(&up, "shutting down", 1).await;

    // A caller connecting now: the old process accepts nothing more, so the connection
    // waits in the socket's queue (the TLS handshake with it).
    let second = pdf("sent during the drain", 5_000);
    let (head2, body2) = upload(&url, &second);
    let waiting = {
        let gateway = up.gateway_port;
        let pem = std::fs::read(up.data_dir().join("tls/localhost.crt")).unwrap();
        tokio::spawn(async move {
            let mut stream = common::raw::connect_to(gateway, &pem).await;
            send(&mut stream, &head2).await;
            send(&mut stream, &body2).await;
            answer(&mut stream).await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "the draining process took a new connection"
    );

    // The upload in flight finishes on the old process.
    send(&mut in_flight, &body[half..]).await;
    let first_answer = answer(&mut in_flight).await;
    assert!(first_answer.starts_with("HTTP/1.1 201"), "{first_answer}");

    // The old process exits; the new one takes the socket and the waiting caller.
    assert_eq!(systemd.report(), "exited 0");
    assert!(systemd.report().starts_with("started "));
    let second_answer = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("the waiting caller is served")
        .unwrap();
    assert!(second_answer.starts_with("HTTP/1.1 201"), "{second_answer}");
    up.wait_until_up("serve").await;
    let (status, call) = scene.integration.get("/v1/calls/call-upgrade").await;
    assert_eq!(status, 200, "{call}");
    assert_eq!(call["files"].as_array().unwrap().len(), 2, "{call}");
    assert_eq!(
        up.logs()
            .matches("public listener handed over by the service manager")
            .count(),
        2
    );
}
