//! The caller's page in a real browser: Debian's headless Chromium, driven by Playwright
//! (tests/browser/upload_page.mjs), against the real binary over TLS. The script plays the
//! caller; this test plays the staff who then look at the call.

mod common;

use std::path::Path;
use std::process::Command;

use common::files::{pdf, png};
use common::scene::{scene, settings};
use common::upgate::Upgate;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_uploads_from_a_phone_browser() {
    let browser_dir = common::browser::scripts();
    let mut up = Upgate::configure("");
    up.start().await;
    let scene = scene(&up, settings(3, 8_000_000)).await;
    let (url, _) = scene.link("call-browser").await;
    let (plain_url, _) = scene.link("call-plain").await;
    let (german_url, _) = scene.link("call-german").await;
    let (cut_url, _) = scene.link("call-cut").await;
    let big = pdf("Scanned statement", 3 << 20);
    let big_path = up.dir.path().join("scan.pdf");
    std::fs::write(&big_path, &big).unwrap();
    let doc = pdf("Signed contract", 20_000);
    let (pdf_path, png_path) = (up.dir.path().join("c.pdf"), up.dir.path().join("n.png"));
    std::fs::write(&pdf_path, &doc).unwrap();
    std::fs::write(&png_path, png(32, 32)).unwrap();
    // Screenshots of every state, kept as test artefacts.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("upload-page");
    std::fs::create_dir_all(&shots).unwrap();

    let out = Command::new("node")
        .arg(browser_dir.join("upload_page.mjs"))
        .env("UPGATE_LINK", &url)
        .env("UPGATE_LINK_PLAIN", &plain_url)
        .env("UPGATE_LINK_GERMAN", &german_url)
        .env("UPGATE_LINK_CUT", &cut_url)
        .env("UPGATE_GATEWAY_PORT", up.gateway_port.to_string())
        .env("UPGATE_BIG_PDF", &big_path)
        .env("UPGATE_MESSAGE", "Please upload your documents here")
        .env("UPGATE_PDF", &pdf_path)
        .env("UPGATE_PNG", &png_path)
        .env("UPGATE_SHOTS", &shots)
        .output()
        .expect("node is installed");
    assert!(
        out.status.success(),
        "browser script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let (_, call) = scene.reviewer.get("/v1/calls/call-browser").await;
    let files = call["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{call}");
    assert_eq!(files[0]["name"], "certificate.pdf");
    assert_eq!(files[0]["size"], doc.len());
    assert_eq!(
        call["links"][0]["status"], "used",
        "the caller pressed \"I'm finished\""
    );
    // Without JavaScript: one file stored through the plain form, the refused one recorded,
    // and the link finished by the form's "I'm finished".
    let (_, call) = scene.reviewer.get("/v1/calls/call-plain").await;
    let files = call["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{call}");
    assert_eq!(files[0]["name"], "certificate.pdf");
    assert_eq!(call["links"][0]["status"], "used", "{call}");
    assert!(shots.join("phone-finished.png").exists());

    // Through the cut: the whole file, byte for byte.
    let (_, call) = scene.reviewer.get("/v1/calls/call-cut").await;
    let files = call["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{call}");
    assert_eq!(files[0]["sha256"], common::files::sha256_hex(&big));
}
