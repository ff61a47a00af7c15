//! The operator's CLI as scripts use it: results alone on stdout, problems on stderr with
//! the key and the fix, exit 64 for a bad configuration.

mod common;

use std::process::Command;

use common::upgate::{Upgate, BIN};

#[test]
fn config_check_lists_every_problem_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "colour = 1\n[gateway]\nlisten = \"somewhere\"\nheader_timeout = \"soon\"\n[scanner]\nclamd = \"localhost\"\n[sms]\nprovider = \"pigeon\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stdout = String::from_utf8(out.stdout).unwrap();
    for key in [
        "colour",
        "gateway.listen",
        "gateway.header_timeout",
        "scanner.clamd",
        "sms.provider",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(key) && l.contains("fix:")),
            "{key} not reported in:\n{stdout}"
        );
    }

    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/upgate.example.toml");
    let out = Command::new(BIN)
        .args(["config", "check", example])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "ok");
}

#[test]
fn serve_refuses_a_bad_config_with_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[gateway]\nlisten = 1\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gateway"));
}

#[test]
fn accounts_and_tokens_without_a_running_server() {
    let up = Upgate::configure("");
    let id = up.create_account("Offline Ltd", "starter");
    let token = up.create_token(&id, "viewer");
    assert_eq!(token.len(), "upg_".len() + 43);

    let (ok, out, err) = up.cli(&["account", "create", "--name", "X", "--plan", "platinum"]);
    assert!(!ok);
    assert!(out.is_empty(), "nothing on stdout when it fails");
    assert!(err.contains("platinum") && err.contains("starter"), "{err}");
    let (ok, _, err) = up.cli(&["token", "create", "--account", &id, "--role", "root"]);
    assert!(!ok && err.contains("role"), "{err}");
    let (ok, _, err) = up.cli(&[
        "token",
        "create",
        "--account",
        "acc_0000000000000000",
        "--role",
        "admin",
    ]);
    assert!(!ok && err.contains("account"), "{err}");

    // Only the token's hash is stored.
    let store = std::fs::read_dir(up.data_dir().join("meta")).unwrap();
    for entry in store.flatten() {
        if entry.path().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "token found in {:?}",
                entry.path()
            );
        }
    }
}
