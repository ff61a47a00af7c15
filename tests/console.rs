//! The staff console in a real browser: Debian's headless Chromium, driven by Playwright
//! (tests/browser/console.mjs), against the real binary, with a caller uploading on the
//! real upload page over TLS. This test makes the accounts and users with the operator's
//! CLI, as an operator would, and checks afterwards what the audit log says each user did.

mod common;

use std::path::Path;
use std::process::Command;

use common::files::{pdf, png};
use common::upgate::{Api, Upgate};
use serde_json::Value;

fn user(up: &Upgate, account: &str, email: &str, role: &str) -> String {
    let (ok, out, err) = up.cli(&[
        "user",
        "create",
        "--account",
        account,
        "--email",
        email,
        "--role",
        role,
    ]);
    assert!(ok, "user create failed: {err}");
    let url = out.trim().to_string();
    assert!(
        url.starts_with(&format!("{}/console/welcome?token=", up.control)),
        "{url}"
    );
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_use_the_console_in_a_browser() {
    let browser_dir = common::browser::scripts();
    let mut up = Upgate::configure("");
    up.start().await;
    let starter = up.create_account("Starter Co", "starter");
    let pro = up.create_account("Pro Co", "pro");
    let integration = up.create_token(&pro, "integration");
    let (ok, leaked, err) = up.cli(&[
        "token",
        "create",
        "--account",
        &pro,
        "--role",
        "integration",
        "--name",
        "leaked",
    ]);
    assert!(ok, "{err}");
    let leaked = Api::new(&up.control, leaked.trim());
    let audit_reader = Api::new(&up.control, &up.create_token(&pro, "reviewer"));
    let image = png(48, 32);
    let png_path = up.dir.path().join("damage.png");
    std::fs::write(&png_path, &image).unwrap();
    let pdf_path = up.dir.path().join("receipt.pdf");
    std::fs::write(&pdf_path, pdf("Receipt", 2_000)).unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&shots).unwrap();

    let out = Command::new("node")
        .arg(browser_dir.join("console.mjs"))
        .env("UPGATE_CONTROL", &up.control)
        .env(
            "UPGATE_STARTER_ADMIN",
            user(&up, &starter, "owner@starter.example", "admin"),
        )
        .env("UPGATE_PRO_ADMIN", user(&up, &pro, "ana@pro.example", "admin"))
        .env("UPGATE_PRO_ADMIN_EMAIL", "ana@pro.example")
        .env("UPGATE_VIEWER", user(&up, &pro, "vic@pro.example", "viewer"))
        .env("UPGATE_REVIEWER", user(&up, &pro, "rosa@pro.example", "reviewer"))
        .env("UPGATE_REVIEWER_EMAIL", "rosa@pro.example")
        .env("UPGATE_INTEGRATION_TOKEN", &integration)
        .env("UPGATE_PNG", &png_path)
        .env("UPGATE_PDF", &pdf_path)
        .env("UPGATE_SHOTS", &shots)
        .output()
        .expect("node is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "console script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(summary["checked"].as_array().unwrap().len() >= 15, "{summary}");
    assert!(shots.join("pro-admin-settings-saved.png").exists());

    // The image's previews are stored, sealed, beside it; the PDF has none.
    let objects = up.data_dir().join("objects");
    let file = summary["file"].as_str().unwrap();
    for side in ["thumb", "preview"] {
        let sealed = std::fs::read(objects.join(&file[2..4]).join(format!("{file}.{side}"))).unwrap();
        assert!(
            !sealed.windows(3).any(|w| w == [0xFF, 0xD8, 0xFF]),
            "{side} is sealed, not a bare JPEG"
        );
    }

    // What the audit log says: sign-ins, the settings change and the download, each by a
    // user (`usr_...`), never by a token; the revoked session; the viewer's refusal.
    let (_, log) = audit_reader.get("/v1/audit?limit=500").await;
    let entries = log["entries"].as_array().unwrap();
    let by = |action: &str| -> Vec<&Value> { entries.iter().filter(|e| e["action"] == action).collect() };
    let downloads = by("file.download");
    assert_eq!(downloads.len(), 1, "{log}");
    assert_eq!(downloads[0]["target"], file);
    let reviewer = downloads[0]["actor"].as_str().unwrap();
    assert!(reviewer.starts_with("usr_"), "{reviewer}");
    let signins = by("user.sign_in");
    assert!(
        signins
            .iter()
            .any(|e| e["actor"] == reviewer && e["detail"]["method"] == "password+totp"),
        "{log}"
    );
    assert!(by("user.totp_enabled").iter().any(|e| e["actor"] == reviewer));
    assert!(by("user.sign_out").iter().any(|e| e["actor"] == reviewer));
    let update = by("assistant.update");
    assert_eq!(update.len(), 1, "the refused save wrote nothing: {log}");
    assert!(update[0]["actor"].as_str().unwrap().starts_with("usr_"));
    // One session the admin ended from their account page, two the reviewer ended from Users.
    let ended = by("session.revoke");
    assert_eq!(ended.len(), 3, "{log}");
    let by_reviewer: Vec<_> = ended.iter().filter(|e| e["actor"] == reviewer).collect();
    assert_eq!(by_reviewer.len(), 2);
    assert!(by_reviewer.iter().all(|e| e["detail"]["user_id"]
        .as_str()
        .is_some_and(|u| u.starts_with("usr_"))));
    let denied = by("access.denied");
    assert!(
        denied.iter().any(|e| e["detail"]["permission"] == "download"),
        "{log}"
    );
    assert_eq!(by("user.disable").len(), 1);
    // The token the reviewer revoked is refused at once.
    let revoked = by("token.revoke");
    assert!(revoked.len() == 1 && revoked[0]["actor"] == reviewer, "{log}");
    assert_eq!(leaked.get("/v1/calls/call-live").await.0, 401);
    // The follow-up's resend texted the quiet call's link again.
    let (_, quiet) = audit_reader.get("/v1/calls/call-quiet").await;
    assert_eq!(quiet["sms"].as_array().unwrap().len(), 2, "{quiet}");
    // The forged posts changed nothing.
    let (_, desk) = audit_reader.get("/v1/assistants/desk").await;
    assert_eq!(desk["file_upload"]["message"], "Please send the photos.");
    // The starter account never got settings saved, and its audit is its own.
    let (_, starter_log) = Api::new(&up.control, &up.create_token(&starter, "reviewer"))
        .get("/v1/audit?limit=500")
        .await;
    assert!(starter_log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["action"] != "assistant.update" && e["action"] != "file.download"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_release_or_block_quarantined_files_in_the_console() {
    let browser_dir = common::browser::scripts();
    // No clamd answers at this address, so every upload waits in quarantine.
    let dir = tempfile::tempdir().unwrap();
    let mut up = Upgate::configure(&format!(
        "[scanner]\nclamd = \"unix:{}\"\non_unavailable = \"quarantine\"\n",
        dir.path().join("no-clamd.sock").display()
    ));
    up.start().await;
    let account = up.create_account("Quarantine Co", "pro");
    let admin = Api::new(&up.control, &up.create_token(&account, "admin"));
    let reviewer = Api::new(&up.control, &up.create_token(&account, "reviewer"));
    let (status, body) = admin
        .put("/v1/assistants/desk", common::scene::settings(3, 1_000_000))
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = admin
        .put(
            "/v1/calls/call-q",
            serde_json::json!({"assistant_id": "desk", "caller_number": "+14155550123"}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let integration = Api::new(&up.control, &up.create_token(&account, "integration"));
    let (status, link) = integration.post("/v1/calls/call-q/upload-links", None).await;
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for name in ["checked.pdf", "suspect.pdf"] {
        let (status, body) = common::upgate::upload_file(
            &up.gateway_client(),
            &url,
            name,
            "application/pdf",
            pdf(name, 1_000),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["file"]["scan"]["status"], "unscanned", "{body}");
        ids.push(body["file"]["id"].as_str().unwrap().to_string());
    }
    let out = Command::new("node")
        .arg(browser_dir.join("quarantine.mjs"))
        .env("UPGATE_CONTROL", &up.control)
        .env(
            "UPGATE_REVIEWER",
            user(&up, &account, "sec@pro.example", "reviewer"),
        )
        .env(
            "UPGATE_SHOTS",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("console"),
        )
        .output()
        .expect("node is installed");
    assert!(
        out.status.success(),
        "quarantine script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The released file is on the call for everyone now; the blocked one for reviewers only.
    let (_, call) = admin.get("/v1/calls/call-q").await;
    let names: Vec<&str> = call["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["checked.pdf"], "{call}");
    let (_, q) = reviewer.get("/v1/quarantine").await;
    let states: Vec<(&str, &str)> = q["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap(),
                f["quarantine"]["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(states, [(ids[1].as_str(), "blocked")]);
    let (_, log) = reviewer.get("/v1/audit?limit=50").await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"file.release") && actions.contains(&"file.block"),
        "{actions:?}"
    );
}
