//! What Prometheus scrapes: the exposition passes `promtool check metrics`, every labelled
//! series is there at zero before anything happened (so rates and alerts work from the
//! first scrape), and every metric the shipped dashboard and alert rules
//! (`docs/monitoring/`) read is one upgate exports. Real binary, real clamd.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use common::clamd::Clamd;
use common::files::pdf;
use common::poll::wait_scanner;
use common::scene::{scene, settings};
use common::upgate::{upload_file, Upgate};

fn promtool() -> &'static str {
    for p in ["/usr/bin/promtool", "/usr/local/bin/promtool"] {
        if std::path::Path::new(p).exists() {
            return p;
        }
    }
    panic!("promtool is not installed: run .ci/run, or apt-get install prometheus");
}

/// `promtool check metrics` on the exposition: its complaints, if any.
fn lint(exposition: &str) -> String {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        String::new()
    } else {
        said
    }
}

/// Metric families in an exposition (from its `# TYPE` lines).
fn families(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Metric names a dashboard or rule file reads (`upgate_…`, `process_…`), with a
/// histogram's `_bucket`/`_sum`/`_count` taken back to its family.
fn referenced(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let starts = (rest.starts_with("upgate_") || rest.starts_with("process_"))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if starts {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..len];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            names.insert(family.to_string());
            i += len;
        } else {
            i += 1;
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exposition_is_clean_complete_from_the_start_and_covers_the_dashboards() {
    // The linter is not blind: a gauge named like a counter is flagged.
    assert_ne!(lint("# HELP x_total x\n# TYPE x_total gauge\nx_total 1\n"), "");
    let clamd = Clamd::start();
    let mut up = Upgate::configure(&format!(
        "[scanner]\nclamd = \"unix:{}\"\n",
        clamd.socket.display()
    ));
    up.start().await;
    wait_scanner(&up, "up").await;

    // Before any upload or request: every series there, at zero.
    let fresh = up.metrics().await;
    assert_eq!(lint(&fresh), "", "promtool check metrics");
    for series in [
        "upgate_uploads_total{outcome=\"stored\"} 0",
        "upgate_uploads_total{outcome=\"scanner_unavailable\"} 0",
        "upgate_uploads_total{outcome=\"insufficient_storage\"} 0",
        "upgate_scans_total{verdict=\"infected\"} 0",
        "upgate_link_checks_total{result=\"invalid\"} 0",
        "upgate_sms_total{status=\"failed\"} 0",
        "upgate_webhook_attempts_total{outcome=\"dead\"} 0",
        "upgate_connections_refused_total{reason=\"per_ip\"} 0",
        "upgate_control_denied_total{route=\"/v1/files/{file_id}/content\",status=\"403\"} 0",
        "upgate_control_requests_total{route=\"/v1/calls/{call_id}\",status=\"200\"} 0",
        "upgate_quarantine_held 0",
        "upgate_scanner_canary_failures_total 0",
        "upgate_scanner_queue 0",
        "upgate_upload_seconds_count 0",
        "upgate_upload_bytes_count 0",
    ] {
        assert!(
            fresh.lines().any(|l| l == series),
            "{series} missing from\n{fresh}"
        );
    }
    let build = fresh
        .lines()
        .find(|l| l.starts_with("upgate_build_info{"))
        .expect("upgate_build_info");
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))) && build.ends_with(" 1"),
        "{build}"
    );
    assert!(
        fresh
            .lines()
            .any(|l| l.starts_with("process_resident_memory_bytes ")),
        "process metrics"
    );
    let expiry: f64 = fresh
        .lines()
        .find_map(|l| l.strip_prefix("upgate_tls_certificate_expiry_timestamp_seconds "))
        .expect("the certificate's expiry")
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        expiry > now + 86_400.0,
        "the self-signed certificate is valid for a while: {expiry}"
    );
    let free: f64 = fresh
        .lines()
        .find_map(|l| l.strip_prefix("upgate_disk_free_bytes "))
        .expect("free disk")
        .parse()
        .unwrap();
    assert!(free > 0.0);

    // After traffic: an upload and control-API requests are measured, still lint-clean.
    let scene = scene(&up, settings(5, 1_000_000)).await;
    let (url, _) = scene.link("call-m").await;
    let (status, body) = upload_file(
        &up.gateway_client(),
        &url,
        "a.pdf",
        "application/pdf",
        pdf("m", 3000),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = scene.integration.get("/v1/calls/call-m").await;
    assert_eq!(status, 200);
    let busy = up.metrics().await;
    assert_eq!(lint(&busy), "", "promtool check metrics");
    assert!(
        busy.lines().any(|l| l == "upgate_upload_seconds_count 1"),
        "{busy}"
    );
    assert!(busy.lines().any(|l| l == "upgate_upload_bytes_count 1"), "{busy}");
    assert!(
        busy.lines()
            .any(|l| l == "upgate_control_requests_total{route=\"/v1/calls/{call_id}\",status=\"200\"} 1"),
        "{busy}"
    );
    assert!(
        busy.lines()
            .any(|l| l.starts_with("upgate_control_request_seconds_count{route=\"/v1/calls/{call_id}\"} ")),
        "{busy}"
    );

    // The dashboard and the rules read only what is exported.
    let exported = families(&busy);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/monitoring");
    for file in ["dashboard.json", "alerts.yml"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let unknown: Vec<_> = referenced(&text)
            .into_iter()
            .filter(|n| !exported.contains(n))
            .collect();
        assert!(
            unknown.is_empty(),
            "{file} reads metrics upgate does not export: {unknown:?}"
        );
    }
}
