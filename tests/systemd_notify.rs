//! upgate under systemd's `Type=notify` with a watchdog, as the units in `systemd/` run it:
//! the service manager's side is a datagram socket here, the protocol systemd speaks
//! (`NOTIFY_SOCKET`, `WATCHDOG_USEC`). READY once listening, WATCHDOG pings at half the
//! period, RELOADING then READY around a SIGHUP, STOPPING when the drain begins.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::upgate::Upgate;

/// The datagrams received within `limit`, each as its lines.
fn receive(socket: &UnixDatagram, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match socket.recv(&mut buf) {
            Ok(n) => got.extend(String::from_utf8_lossy(&buf[..n]).lines().map(str::to_string)),
            Err(_) => break,
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_systemd_when_it_is_ready_alive_reloading_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let mut up = Upgate::configure("");
    let notify = format!("NOTIFY_SOCKET={}", path.display());
    // A 400 ms watchdog: pings every 200 ms.
    up.start_wrapped("info", &["env", &notify, "WATCHDOG_USEC=400000"])
        .await;

    let first = receive(&socket, Duration::from_millis(1500));
    assert!(first.iter().any(|l| l == "READY=1"), "{first:?}");
    let pings = first.iter().filter(|l| *l == "WATCHDOG=1").count();
    assert!(
        (3..=12).contains(&pings),
        "about 5 pings in 1.5 s at half of 400 ms: {first:?}"
    );
    let ready_at = first.iter().position(|l| l == "READY=1").unwrap();
    let first_ping = first.iter().position(|l| l == "WATCHDOG=1").unwrap();
    assert!(ready_at < first_ping, "pings only once ready: {first:?}");

    let hup = std::process::Command::new("kill")
        .args(["-HUP", &up.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let reload = receive(&socket, Duration::from_millis(800));
    let reloading = reload
        .iter()
        .position(|l| l == "RELOADING=1")
        .expect("RELOADING=1");
    assert!(
        reload[reloading..]
            .iter()
            .any(|l| l.starts_with("MONOTONIC_USEC=")),
        "systemd wants the reload's time: {reload:?}"
    );
    assert!(reload[reloading..].iter().any(|l| l == "READY=1"), "{reload:?}");
    let (status, _) = reqwest::get(format!("{}/healthz", up.control))
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, 200, "a SIGHUP does not stop it");

    up.terminate();
    let end = receive(&socket, Duration::from_secs(3));
    assert!(end.iter().any(|l| l == "STOPPING=1"), "{end:?}");
}
