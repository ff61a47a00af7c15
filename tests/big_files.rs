//! Files beyond the old 50 MiB: the ceiling is the operator's (`[uploads] max_file_size`),
//! a real clamd is proved deeper in steps while smaller files already flow, large files go
//! through tus with the server's memory flat, the multipart POST keeps its modest cap, and a
//! file deeper than clamd reads is refused when its upload is created, before any byte.

mod common;

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::Value;

use common::clamd::Clamd;
use common::files::{sha256_hex, varied_pdf};
use common::scene::{scene, settings};
use common::upgate::{rss_and_peak, upload_file, Upgate};

const MIB: u64 = 1 << 20;

fn config(clamd: &Clamd, ceiling_mib: u64) -> String {
    format!(
        "[scanner]\nclamd = \"unix:{}\"\n[uploads]\nmax_file_size = \"{ceiling_mib} MiB\"\n",
        clamd.socket.display()
    )
}

/// Waits until the scanner has proved all it will; returns its readiness section.
async fn proved(up: &Upgate) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let body = up.readyz().await;
        let scanner = &body["scanner"];
        if scanner["status"] == "up" && scanner["deepening"] == false {
            return scanner.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the scanner never finished its proofs: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `POST .../tus` with a declared length; the answer.
async fn create(client: &Client, link: &str, length: u64) -> reqwest::Response {
    client
        .post(format!("{link}/tus"))
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", length.to_string())
        .header("Upload-Metadata", "filename YmlnLnBkZg==")
        .send()
        .await
        .unwrap()
}

/// Sends `file` through tus in 32 MiB PATCHes; returns the last answer's status.
async fn send(client: &Client, link: &str, file: &[u8]) -> StatusCode {
    let created = create(client, link, file.len() as u64).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap();
    let url = format!("{}{location}", &link[..link.find("/u/").unwrap()]);
    let mut offset = 0;
    let mut status = StatusCode::OK;
    for chunk in file.chunks(32 * MIB as usize) {
        let r = client
            .patch(&url)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", offset.to_string())
            .header("Content-Type", "application/offset+octet-stream")
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        status = r.status();
        assert_eq!(status, StatusCode::NO_CONTENT, "{:?}", r.text().await);
        offset += chunk.len();
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_hundreds_of_mib_goes_through_tus_with_flat_memory() {
    let clamd = Clamd::start_with_limits("StreamMaxLength 400M\nMaxFileSize 400M\nMaxScanSize 1600M\n");
    let mut up = Upgate::configure(&config(&clamd, 384));
    up.start().await;
    let client = up.gateway_client();

    // The first proof brought trust at 64 MiB; the rest is proved in steps up to the ceiling.
    let scanner = proved(&up).await;
    assert_eq!(scanner["depth"], 384 * MIB, "{scanner}");
    assert_eq!(scanner["warnings"].as_array().unwrap().len(), 0, "{scanner}");

    // Settings may now go up to the ceiling, and not beyond it.
    let scene = scene(&up, settings(3, 384 * MIB)).await;
    let (status, body) = scene
        .admin
        .put("/v1/assistants/desk", settings(3, 384 * MIB + 1))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "max_file_bytes_out_of_range");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains(&(384 * MIB).to_string()));
    let (link, _) = scene.link("call-big").await;

    // tus says the deployment's largest file.
    let options = client
        .request(reqwest::Method::OPTIONS, format!("{link}/tus"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        options.headers()["tus-max-size"],
        (384 * MIB).to_string().as_str()
    );
    // Over the link's limit: refused at creation, before any byte.
    let r = create(&client, &link, 384 * MIB + 1).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // The multipart POST keeps its modest cap, whatever the link allows.
    let over_form_cap = varied_pdf("form", 51 * MIB as usize);
    let (status, body) = upload_file(&client, &link, "form.pdf", "application/pdf", over_form_cap).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    // A small file first, so the server's own start-up is behind the baseline.
    let small = varied_pdf("small", 1_000_000);
    send(&client, &link, &small).await;
    let pid = up.pid();
    let (_, baseline) = rss_and_peak(pid);

    let file = varied_pdf("big", 300 * MIB as usize);
    send(&client, &link, &file).await;
    let (_, peak) = rss_and_peak(pid);
    let grew = peak.saturating_sub(baseline);
    println!(
        "server peak memory: {} MiB before, {} MiB after a {} MiB upload (+{} MiB)",
        baseline / MIB,
        peak / MIB,
        file.len() as u64 / MIB,
        grew / MIB
    );
    assert!(
        grew < 48 * MIB,
        "memory grew by {} MiB for a {} MiB file",
        grew / MIB,
        file.len() as u64 / MIB
    );

    // Stored clean, whole: the download is byte for byte the file.
    let (_, call) = scene.reviewer.get("/v1/calls/call-big").await;
    let files = call["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{call}");
    let big = files
        .iter()
        .find(|f| f["size"] == file.len())
        .expect("the big file");
    assert_eq!(big["scan"]["status"], "clean", "{big}");
    assert_eq!(big["sha256"], sha256_hex(&file));
    let id = big["id"].as_str().unwrap();
    let download = scene
        .reviewer
        .fetch(&format!("/v1/files/{id}/content"), None)
        .await;
    assert_eq!(download.status(), StatusCode::OK);
    let bytes = download.bytes().await.unwrap();
    assert_eq!(sha256_hex(&bytes), sha256_hex(&file));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proof_stops_at_clamds_limit_and_deeper_files_are_refused_before_any_byte() {
    // A link made while clamd read deep enough for its 200 MiB...
    let mut deep = Clamd::start_with_limits("StreamMaxLength 300M\nMaxFileSize 300M\nMaxScanSize 300M\n");
    let mut up = Upgate::configure(&config(&deep, 256));
    up.start().await;
    assert_eq!(proved(&up).await["depth"], 256 * MIB);
    let scene = scene(&up, settings(3, 200 * MIB)).await;
    let (link, _) = scene.link("call-deep").await;

    // ...then clamd comes back reading 100 MB streams.
    deep.stop();
    let _shallow = Clamd::start_custom(
        "StreamMaxLength 100M\nMaxFileSize 100M\nMaxScanSize 400M\nAlertExceedsMax yes\n",
        Clamd::DATABASES,
        Some(&deep.socket),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let scanner = loop {
        let scanner = proved(&up).await;
        if scanner["depth"].as_u64() < Some(256 * MIB) || Instant::now() > deadline {
            break scanner;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let depth = scanner["depth"].as_u64().unwrap();
    // Found within a sixteenth of clamd's real limit, never above it.
    assert!((94 * MIB..=100 * MIB).contains(&depth), "{scanner}");
    let warning = scanner["warnings"][0].as_str().unwrap();
    assert!(warning.contains("uploads.max_file_size"), "{warning}");
    assert!(warning.contains("StreamMaxLength"), "{warning}");

    // A file deeper than that is refused when its upload is created, before any byte, and
    // the link stays usable for one clamd can read.
    let client = up.gateway_client();
    let r = create(&client, &link, 150 * MIB).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "unscannable", "{body}");
    let file = varied_pdf("fits", 80 * MIB as usize);
    send(&client, &link, &file).await;
    let (_, call) = scene.reviewer.get("/v1/calls/call-deep").await;
    assert_eq!(call["files"][0]["scan"]["status"], "clean", "{call}");
    assert_eq!(call["files"].as_array().unwrap().len(), 1, "{call}");

    // Settings follow the proved depth, not the ceiling.
    let (status, body) = scene
        .admin
        .put("/v1/assistants/desk", settings(3, 200 * MIB))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "max_file_bytes_over_scanner_depth");
    assert!(body["detail"].as_str().unwrap().contains(&depth.to_string()));
}

/// A tmpfs mounted for one test, unmounted when dropped. Mounting needs root, as CI runs
/// the tests; `None` for anyone else.
struct SmallTmpfs(tempfile::TempDir);

impl SmallTmpfs {
    fn mount(size_mib: u64) -> Option<SmallTmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size_mib}m,mode=1777"),
                "tmpfs",
            ])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then_some(SmallTmpfs(dir))
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clamd_whose_temporary_space_is_smaller_than_the_ceiling_stays_trusted() {
    // clamd's limits allow 400M, but its temporary directory holds 100 MiB: the operator
    // raised max_file_size and clamd.conf and forgot the tmpfs.
    let Some(tmpfs) = SmallTmpfs::mount(100) else {
        let uid = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let root = uid
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
        assert!(!root, "root could not mount a tmpfs");
        eprintln!("SKIPPED: mounting a tmpfs for clamd needs root (CI runs the tests as root)");
        return;
    };
    let clamd = Clamd::start_custom_in(
        "StreamMaxLength 400M\nMaxFileSize 400M\nMaxScanSize 1600M\nAlertExceedsMax yes\n",
        Clamd::DATABASES,
        None,
        Some(tmpfs.0.path()),
    );
    let mut up = Upgate::configure(&config(&clamd, 384));
    up.start().await;

    // The canaries clamd could not write are sizes it cannot scan: the depth stops below
    // the tmpfs, trust is never withdrawn, and the warning says where to look.
    let scanner = proved(&up).await;
    let depth = scanner["depth"].as_u64().unwrap();
    assert!((64 * MIB..=100 * MIB).contains(&depth), "{scanner}");
    let warnings = scanner["warnings"].to_string();
    assert!(warnings.contains("uploads.max_file_size"), "{warnings}");
    assert!(warnings.contains("TemporaryDirectory"), "{warnings}");
    let logs = up.logs();
    assert!(
        !logs.contains("scanner not trusted"),
        "trust went while proving deeper:\n{logs}"
    );

    // A file deeper than that is refused before a byte; one within it is scanned and stored.
    let scene = scene(&up, settings(3, depth)).await;
    let (link, _) = scene.link("call-tmpfs").await;
    let client = up.gateway_client();
    let r = create(&client, &link, depth + 1).await;
    assert_eq!(
        r.status(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "over the link's limit first"
    );
    let file = varied_pdf("fits", 80 * MIB as usize);
    send(&client, &link, &file).await;
    let (_, call) = scene.reviewer.get("/v1/calls/call-tmpfs").await;
    assert_eq!(call["files"][0]["scan"]["status"], "clean", "{call}");
    assert_eq!(up.readyz().await["scanner"]["status"], "up");
}
