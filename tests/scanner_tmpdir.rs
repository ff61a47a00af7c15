//! Class 9 of issue 5, "Plaintext left by the scanner": clamd's INSTREAM writes each whole
//! upload to its TemporaryDirectory before scanning it, and a clamd killed mid-scan left a
//! 31 MB plaintext copy there. upgate's readiness warns when that directory is not on tmpfs.
//! Real clamd, real upgate.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::clamd::Clamd;
use common::upgate::Upgate;

const LIMITS: &str = "StreamMaxLength 64M\nMaxFileSize 64M\nMaxScanSize 256M\nAlertExceedsMax yes\n";

/// The filesystem type of `dir` as `stat -f` names it: a judge independent of upgate's.
fn filesystem(dir: &Path) -> String {
    let out = Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "stat -f {}", dir.display());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// upgate on `clamd`, logging what the scanner module finds at debug.
async fn start(clamd: &Clamd) -> Upgate {
    let mut up = Upgate::configure(&format!(
        "[scanner]\nclamd = \"unix:{}\"\n",
        clamd.socket.display()
    ));
    up.start_logging("info,upgate_gateway::scanner=debug").await;
    up
}

/// `/readyz` once the scanner has proved itself (clamd's start, then the canaries).
async fn proven(up: &Upgate) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body: Value = reqwest::get(format!("{}/readyz", up.monitor))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body["scanner"]["status"] == "up" {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "the scanner never proved itself: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn tmpfs_warnings(body: &Value) -> Vec<String> {
    body["scanner"]["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no warnings list: {body}"))
        .iter()
        .filter_map(Value::as_str)
        .filter(|w| w.contains("tmpfs"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_left_by_the_scanner() {
    // A clamd whose TemporaryDirectory is on the disk the build is on.
    let disk = Path::new(env!("CARGO_TARGET_TMPDIR"));
    assert_ne!(
        filesystem(disk),
        "tmpfs",
        "this test needs {} on a disk",
        disk.display()
    );
    let on_disk = Clamd::start_custom_in(LIMITS, Clamd::DATABASES, None, Some(disk));
    let dir = on_disk.temporary_directory().display().to_string();
    let mut up = start(&on_disk).await;
    let body = proven(&up).await;
    let warnings = tmpfs_warnings(&body);
    assert_eq!(warnings.len(), 1, "{body}");
    let warning = &warnings[0];
    for part in [dir.as_str(), "not tmpfs", "config/clamav/", "docs/operations.md"] {
        assert!(warning.contains(part), "{part:?} not in {warning:?}");
    }
    // A warning, not a refusal: this clamd detects and scans deep enough.
    assert_eq!(body["ready"], true, "{body}");
    assert!(
        up.logs().lines().any(|l| l.contains("WARN") && l.contains(&dir)),
        "{}",
        up.logs()
    );
    up.stop();
    drop(on_disk);

    // The tests' usual clamd, its TemporaryDirectory on tmpfs: no warning, and the log shows
    // that the check looked (rather than could not tell).
    let in_memory = Clamd::start();
    assert_eq!(filesystem(in_memory.temporary_directory()), "tmpfs");
    let dir = in_memory.temporary_directory().display().to_string();
    let mut up = start(&in_memory).await;
    let body = proven(&up).await;
    assert_eq!(tmpfs_warnings(&body), Vec::<String>::new(), "{body}");
    let logs = up.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("temporary files are in memory") && l.contains(&dir) && l.contains("tmpfs")),
        "{logs}"
    );
    up.stop();
}
