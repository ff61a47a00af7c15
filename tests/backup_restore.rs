//! Keep and restore, as an operator runs them: `upgate backup` while the server takes
//! uploads, `upgate restore` onto a fresh data directory, a server started on it that
//! serves every file byte for byte and goes on taking uploads. Then crypto-shredding: an
//! account deleted after the backup stays unreadable when that old backup is restored,
//! while the other account's files open as before.

mod common;

use std::path::Path;

use reqwest::StatusCode;

use common::files::pdf;
use common::scene::{settings, Scene};
use common::upgate::{upload_file, Api, Upgate};

const PASSPHRASE: &str = "a long passphrase for the backup drill";

async fn store(scene: &Scene, up: &Upgate, call: &str, bytes: &[u8]) -> String {
    let (url, _) = scene.link(call).await;
    let (status, body) = upload_file(
        &up.gateway_client(),
        &url,
        "statement.pdf",
        "application/pdf",
        bytes.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["file"]["id"].as_str().unwrap().to_string()
}

async fn download(api: &Api, file_id: &str) -> (StatusCode, Vec<u8>) {
    let resp = api.fetch(&format!("/v1/files/{file_id}/content"), None).await;
    (resp.status(), resp.bytes().await.unwrap().to_vec())
}

/// Tokens of each role for `account`, and its assistant `desk` taking uploads.
async fn scene_of(up: &Upgate, account: &str) -> Scene {
    let api = |role| Api::new(&up.control, &up.create_token(account, role));
    let scene = Scene {
        admin: api("admin"),
        integration: api("integration"),
        reviewer: api("reviewer"),
    };
    let (status, body) = scene
        .admin
        .put("/v1/assistants/desk", settings(5, 2_000_000))
        .await;
    assert!(status.is_success(), "{body}");
    scene
}

/// `upgate backup --to FILE` on `up`: (exit ok, stdout, stderr).
fn backup_cli(up: &Upgate, to: &Path, passphrase: &Path) -> (bool, String, String) {
    up.cli(&[
        "backup",
        "--to",
        to.to_str().unwrap(),
        "--passphrase-file",
        passphrase.to_str().unwrap(),
    ])
}

/// `upgate restore` into `into`'s data directory: (exit ok, stdout, stderr).
fn restore_cli(
    into: &Upgate,
    backup: &Path,
    passphrase: &Path,
    keyring: Option<&Path>,
) -> (bool, String, String) {
    let data = into.data_dir();
    let mut args = vec![
        "restore",
        "--from",
        backup.to_str().unwrap(),
        "--passphrase-file",
        passphrase.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    if let Some(keyring) = keyring {
        args.extend(["--keyring", keyring.to_str().unwrap()]);
    }
    into.cli(&args)
}

/// A restore that must work; the JSON it prints.
fn restore(into: &Upgate, backup: &Path, passphrase: &Path, keyring: &Path) -> serde_json::Value {
    let (ok, out, err) = restore_cli(into, backup, passphrase, Some(keyring));
    assert!(ok, "restore failed: {err}");
    serde_json::from_str(out.trim()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_byte_exact_and_a_deleted_account_stays_shredded_in_it() {
    let mut up = Upgate::configure("");
    up.start().await;
    let work = tempfile::tempdir().unwrap();
    let pass = up.secret("backup-passphrase", &format!("{PASSPHRASE}\n"));

    // Two accounts, each with files.
    let kept_account = up.create_account("Kept", "pro");
    let gone_account = up.create_account("Gone", "pro");
    let mut scenes = Vec::new();
    for account in [&kept_account, &gone_account] {
        scenes.push(scene_of(&up, account).await);
    }
    let mut files = Vec::new(); // (scene index, file id, bytes)
    for (i, scene) in scenes.iter().enumerate() {
        for n in 0..2 {
            // Several segments each; a marker to look for in the backup's bytes.
            let bytes = pdf(&format!("PLAINTEXT-MARKER-{i}-{n}"), 150_000 + n * 1000);
            let id = store(scene, &up, &format!("call-{i}-{n}"), &bytes).await;
            files.push((i, id, bytes));
        }
    }

    // The backup, taken while the server runs.
    let backup = work.path().join("upgate.backup");
    let (ok, out, err) = backup_cli(&up, &backup, &pass);
    assert!(ok, "backup failed: {err}");
    let written: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(written["files"], 4, "{written}");
    assert_eq!(written["objects"], 4, "{written}");
    let raw = std::fs::read(&backup).unwrap();
    assert!(
        !raw.windows(16).any(|w| w == b"PLAINTEXT-MARKER"),
        "plaintext in the backup"
    );
    let link_key = std::fs::read(up.data_dir().join("keys/link-1.key")).unwrap();
    assert!(
        !raw.windows(32).any(|w| w == link_key.as_slice()),
        "a key in the clear"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A second backup to the same name is refused: nothing is overwritten.
    let (ok, _, err) = backup_cli(&up, &backup, &pass);
    assert!(!ok && err.contains("exists"), "{err}");

    // Restore onto a fresh directory; the wrong passphrase and a used directory are refused.
    let mut restored = Upgate::configure("");
    let wrong = restored.secret("wrong", "not the passphrase at all");
    let keyring = up.data_dir().join("keys/accounts");
    let (ok, _, err) = restore_cli(&restored, &backup, &wrong, None);
    assert!(!ok && err.contains("passphrase is wrong"), "{err}");
    let report = restore(&restored, &backup, &pass, &keyring);
    assert_eq!(report["files"], 4, "{report}");
    assert_eq!(report["unreadable"], 0, "{report}");
    let (ok, _, err) = restore_cli(&restored, &backup, &pass, None);
    assert!(!ok && err.contains("not empty"), "{err}");

    restored.start().await;
    for (i, id, bytes) in &files {
        let api = Api::new(&restored.control, &scenes[*i].reviewer.token);
        let (status, body) = download(&api, id).await;
        assert_eq!(status, StatusCode::OK, "{id}");
        assert!(body == *bytes, "{id} is not byte-exact after restore");
    }
    // The restored server goes on: a new upload, and its audit entry after the old ones.
    let on_restored = Scene {
        admin: Api::new(&restored.control, &scenes[0].admin.token),
        integration: Api::new(&restored.control, &scenes[0].integration.token),
        reviewer: Api::new(&restored.control, &scenes[0].reviewer.token),
    };
    let newer = pdf("after the restore", 1000);
    let new_id = store(&on_restored, &restored, "call-after", &newer).await;
    assert_eq!(download(&on_restored.reviewer, &new_id).await.1, newer);
    let (status, audit) = on_restored.admin.get("/v1/audit?limit=500").await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entries = audit["entries"].as_array().unwrap();
    let stores = entries.iter().filter(|e| e["action"] == "file.store").count();
    assert_eq!(
        stores, 3,
        "the old entries and the new one, none overwritten: {audit}"
    );
    restored.stop();

    // The operator deletes the second account on the live server.
    let (ok, _, err) = up.cli(&["account", "delete", &gone_account]);
    assert!(!ok && err.contains("--yes"), "{err}");
    let (ok, out, err) = up.cli(&["account", "delete", &gone_account, "--yes"]);
    assert!(ok, "delete failed: {err}");
    assert!(out.contains("\"keys_destroyed\":1"), "{out}");
    let (status, _) = scenes[1].admin.get("/v1/assistants/desk").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "its tokens went with it");
    let (status, _) = download(&scenes[0].reviewer, &files[0].1).await;
    assert_eq!(status, StatusCode::OK, "the other account is untouched");

    // The old backup, restored with today's keyring: the deleted account's records come
    // back, its files do not open; the other account's files are intact.
    let mut old = Upgate::configure("");
    let report = restore(&old, &backup, &pass, &keyring);
    assert_eq!(report["unreadable"], 2, "{report}");
    old.start().await;
    for (i, id, bytes) in &files {
        let api = Api::new(&old.control, &scenes[*i].reviewer.token);
        let (status, body) = download(&api, id).await;
        if *i == 0 {
            assert_eq!(status, StatusCode::OK);
            assert!(body == *bytes);
        } else {
            assert_eq!(status, StatusCode::GONE, "a shredded file must not open");
            let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(problem["code"], "file_shredded", "{problem}");
            assert!(!body.windows(16).any(|w| w == b"PLAINTEXT-MARKER"));
        }
    }
}

/// With S3 storage a backup holds the metadata and the keys; the sealed objects stay in the
/// bucket, and a restored server reads them there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_s3_the_backup_leaves_the_objects_in_the_bucket() {
    let garage = common::garage::Garage::start();
    let mut up = Upgate::configure(&garage.storage_config());
    up.start().await;
    let pass = up.secret("backup-passphrase", PASSPHRASE);
    let account = up.create_account("Bucket", "pro");
    let scene = scene_of(&up, &account).await;
    let bytes = pdf("kept in the bucket", 100_000);
    let id = store(&scene, &up, "call-s3", &bytes).await;

    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("s3.backup");
    let (ok, out, err) = backup_cli(&up, &backup, &pass);
    assert!(ok, "backup failed: {err}");
    let written: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (written["files"].as_u64(), written["objects"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(
        std::fs::metadata(&backup).unwrap().len() < bytes.len() as u64,
        "the object is not in the backup"
    );
    up.stop();

    let mut restored = Upgate::configure(&garage.storage_config());
    let report = restore(&restored, &backup, &pass, &up.data_dir().join("keys/accounts"));
    assert_eq!(
        (report["files"].as_u64(), report["objects"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(
        !restored.data_dir().join("objects").exists(),
        "no local objects with S3"
    );
    restored.start().await;
    let api = Api::new(&restored.control, &scene.reviewer.token);
    let (status, body) = download(&api, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == bytes, "not byte-exact from the bucket");
}
