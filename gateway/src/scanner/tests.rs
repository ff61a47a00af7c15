//! The scanner against a clamd stand-in that can be made to hang up on cue: the one fault
//! a real clamd cannot be made to show at the exact moment (its process replaced while a
//! scan is in flight). Real clamd runs in the end-to-end tests.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::*;

struct Fake {
    sessions: Arc<Mutex<Vec<UnixStream>>>,
    release: Arc<(Mutex<bool>, Condvar)>,
    _dir: tempfile::TempDir,
    config: ScannerConfig,
}

fn command(s: &mut UnixStream) -> Option<String> {
    let mut cmd = Vec::new();
    let mut b = [0u8; 1];
    while s.read(&mut b).ok()? == 1 && b[0] != 0 {
        cmd.push(b[0]);
    }
    (!cmd.is_empty()).then(|| String::from_utf8_lossy(&cmd).into_owned())
}

fn stream(s: &mut UnixStream) -> Vec<u8> {
    let mut data = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return data;
        }
        let n = u32::from_be_bytes(len) as usize;
        if n == 0 {
            return data;
        }
        let mut chunk = vec![0u8; n];
        s.read_exact(&mut chunk).unwrap();
        data.extend_from_slice(&chunk);
    }
}

/// A clamd that detects both canaries and holds every other scan until released.
fn fake_clamd() -> Fake {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clamd.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let sessions: Arc<Mutex<Vec<UnixStream>>> = Arc::default();
    let release: Arc<(Mutex<bool>, Condvar)> = Arc::default();
    let (s2, r2) = (sessions.clone(), release.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { return };
            let (sessions, release) = (s2.clone(), r2.clone());
            std::thread::spawn(move || {
                let answer = |cmd: &str, s: &mut UnixStream| match cmd {
                    "zPING" => "PONG".to_string(),
                    "zVERSION" => "ClamAV 9.9.9/1/fake".to_string(),
                    "zINSTREAM" => {
                        let data = stream(s);
                        if data.ends_with(DEPTH_MARKER) || data == eicar() {
                            "stream: Fake.Canary FOUND".to_string()
                        } else {
                            let (lock, cv) = &*release;
                            let mut go = lock.lock().unwrap();
                            while !*go {
                                go = cv.wait(go).unwrap();
                            }
                            "stream: OK".to_string()
                        }
                    }
                    _ => "UNKNOWN COMMAND".to_string(),
                };
                let Some(cmd) = command(&mut s) else { return };
                if cmd != "zIDSESSION" {
                    let reply = answer(&cmd, &mut s);
                    let _ = s.write_all(format!("{reply}\0").as_bytes());
                    return;
                }
                sessions.lock().unwrap().push(s.try_clone().unwrap());
                for id in 1.. {
                    let Some(cmd) = command(&mut s) else { return };
                    let reply = answer(&cmd, &mut s);
                    if s.write_all(format!("{id}: {reply}\0").as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let config = ScannerConfig {
        clamd: Some(upgate_config::ClamdAddr::Unix(path)),
        timeout: Duration::from_secs(10),
        concurrency: 2,
        on_unavailable: upgate_config::OnScannerUnavailable::FailClosed,
    };
    Fake {
        sessions,
        release,
        _dir: dir,
        config,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clamd_that_went_away_during_the_scan_gives_no_clean_verdict() {
    let fake = fake_clamd();
    let scanner = Arc::new(Scanner::new(&fake.config, 1 << 20, Metrics::new()));
    let status = scanner.start(Duration::from_secs(10)).await;
    assert!(matches!(status, ScannerStatus::Up(_)), "{status:?}");

    // A scan is in flight when the clamd we proved hangs up its session.
    let scan = tokio::spawn({
        let scanner = scanner.clone();
        async move { scanner.scan(5, || Ok(&b"hello"[..])).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for s in fake.sessions.lock().unwrap().drain(..) {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
    let mut status = scanner.health.subscribe();
    tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| matches!(s, ScannerStatus::Down(_))),
    )
    .await
    .expect("trust withdrawn at once")
    .unwrap();

    // The scan then answers OK: not clean, because the proof it started under is gone.
    {
        let (lock, cv) = &*fake.release;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }
    let outcome = scan.await.unwrap().unwrap();
    assert!(matches!(outcome, Scan::Unavailable(_)), "{outcome:?}");

    // The same stand-in proves itself again, and a scan is clean once more, with its engine.
    tokio::time::timeout(
        Duration::from_secs(20),
        status.wait_for(|s| matches!(s, ScannerStatus::Up(_))),
    )
    .await
    .expect("proved again")
    .unwrap();
    match scanner.scan(5, || Ok(&b"hello"[..])).await.unwrap() {
        Scan::Clean(proof) => assert_eq!(proof.engine(), "ClamAV 9.9.9/1/fake"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn no_clamd_that_has_not_proved_itself_is_asked() {
    let config = ScannerConfig {
        clamd: Some(upgate_config::ClamdAddr::Unix("/nonexistent/clamd.sock".into())),
        timeout: Duration::from_secs(1),
        concurrency: 1,
        on_unavailable: upgate_config::OnScannerUnavailable::FailClosed,
    };
    let scanner = Scanner::new(&config, 1 << 20, Metrics::new());
    // Not started: nothing proved, so nothing is clean and clamd is not even asked.
    let outcome = scanner
        .scan(5, || -> Result<&[u8], SpoolUnreadable> {
            panic!("clamd must not be asked")
        })
        .await
        .unwrap();
    assert!(matches!(outcome, Scan::Unavailable(_)), "{outcome:?}");
    assert!(matches!(
        scanner.start(Duration::from_secs(5)).await,
        ScannerStatus::Down(_)
    ));
}
