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

/// Runs the binary in `cwd` with no config; returns (exit code, stderr).
fn run_in(cwd: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN).args(args).current_dir(cwd).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn commands_other_than_serve_refuse_a_missing_data_dir() {
    let wrong_place = tempfile::tempdir().unwrap();
    let (code, err) = run_in(
        wrong_place.path(),
        &["account", "create", "--name", "X", "--plan", "starter"],
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("upgate-data") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!wrong_place.path().join("upgate-data").exists(), "created anyway");

    let elsewhere = wrong_place.path().join("nowhere");
    let (code, err) = run_in(
        wrong_place.path(),
        &[
            "token",
            "create",
            "--account",
            "acc_0000000000000000",
            "--role",
            "admin",
            "--data-dir",
            elsewhere.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("nowhere"), "{err}");
    assert!(!elsewhere.exists(), "created anyway");
    assert_eq!(std::fs::read_dir(wrong_place.path()).unwrap().count(), 0);

    // config check reads files only: it needs no data directory.
    let (code, err) = run_in(wrong_place.path(), &["config", "check"]);
    assert_eq!(code, Some(0), "{err}");
}

fn check(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upgate.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN)
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn config_check_reports_every_type_error_with_its_line() {
    let (code, out) = check(
        "[gateway]\nlisten = 8443\nmax_connections = \"many\"\n[scanner]\nconcurrency = -2\n[sms.twilio]\nfrom = 15005550006\ncolour = 1\n",
    );
    assert_eq!(code, Some(64));
    for prefix in [
        "gateway.listen (line 2): ",
        "gateway.max_connections (line 3): ",
        "scanner.concurrency (line 5): ",
        "sms.twilio.from (line 7): ",
        "sms.twilio.colour (line 8): unknown key",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(prefix)),
            "{prefix:?} not in:\n{out}"
        );
    }
    assert!(!out.contains('?'), "{out}");
}

#[test]
fn config_check_refuses_two_listeners_on_one_address() {
    let (code, out) = check("[gateway]\nlisten = \"127.0.0.1:9090\"\n");
    assert_eq!(code, Some(64));
    assert!(
        out.lines()
            .any(|l| l.starts_with("gateway.listen (line 2): ") && l.contains("metrics.listen")),
        "{out}"
    );
}

#[test]
fn config_check_reads_the_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let (code, out) = check(&format!(
        "[gateway]\ntls_cert_file = {:?}\ntls_key_file = {:?}\n",
        cert.display().to_string(),
        dir.path().join("missing.key").display().to_string()
    ));
    assert_eq!(code, Some(64));
    assert!(
        out.lines()
            .any(|l| l.starts_with("gateway.tls_key_file (line 3): cannot read")),
        "{out}"
    );
}

#[test]
fn config_check_checks_twilio_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (code, out) = check(&format!(
        "[sms]\nprovider = \"twilio\"\n[sms.twilio]\naccount_sid = \"AC-not-a-sid\"\nfrom = \"5550006\"\nauth_token_file = {:?}\n",
        token.display().to_string()
    ));
    assert_eq!(code, Some(64));
    assert!(
        out.lines()
            .any(|l| l.starts_with("sms.twilio.account_sid (line 4): ")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("sms.twilio.from (line 5): ")),
        "{out}"
    );
}

/// Starts `upgate serve` with stderr to a pipe, reads until it says it is running (or 30 s
/// pass), stops it with SIGTERM and returns everything it wrote, its shutdown included.
fn serve_stderr(extra: &str) -> String {
    let until = "upgate is running";
    use std::io::BufRead;
    use std::process::Stdio;
    let up = Upgate::configure(extra);
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&up.config)
        .env("UPGATE_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains(until);
                lines.push(line);
                if done {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    let _ = reader.join();
    lines.extend(rx.try_iter());
    for said in [until, "shutting down"] {
        assert!(
            lines.iter().any(|l| l.contains(said)),
            "{said:?} never logged:\n{}",
            lines.join("\n")
        );
    }
    lines.join("\n") + "\n"
}

#[test]
fn text_logs_to_a_pipe_carry_no_colour_codes() {
    let out = serve_stderr("");
    assert!(out.contains("upgate is running"), "{out}");
    assert!(!out.contains("\x1b["), "colour codes in:\n{out}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let out = serve_stderr("[log]\nformat = \"json\"\n");
    let mut messages = Vec::new();
    for line in out.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(v.is_object(), "{line}");
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{line}");
        messages.push(v["message"].as_str().unwrap_or_default().to_string());
    }
    assert!(messages.iter().any(|m| m == "upgate is running"), "{messages:?}");
    assert!(!out.contains("\x1b["), "{out}");
}

#[test]
fn config_check_names_what_split_mode_and_s3_need() {
    let (code, out) = check(
        "[gateway]\ncontrol_url = \"http://control:8444\"\n[storage]\nbackend = \"s3\"\n[storage.s3]\nendpoint = \"http://s3.example.com\"\n",
    );
    assert_eq!(code, Some(64));
    for key in [
        "gateway.control_url",
        "storage.s3.region",
        "storage.s3.bucket",
        "storage.s3.access_key_id",
        "storage.s3.secret_access_key_file",
        "storage.s3.endpoint",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(key) && l.contains("fix:")),
            "{key} not reported in:\n{out}"
        );
    }
    let (code, out) = check(
        "[gateway]\ncredential_file = \"/tmp/x\"\n[control]\nlease_ttl = \"1s\"\n[storage]\nbackend = \"ftp\"\n",
    );
    assert_eq!(code, Some(64));
    for key in ["gateway.credential_file", "control.lease_ttl", "storage.backend"] {
        assert!(out.contains(key), "{key} not reported in:\n{out}");
    }
}

#[test]
fn a_gateway_without_its_control_plane_settings_refuses_to_start() {
    let up = Upgate::configure("");
    let out = Command::new(BIN)
        .args(["gateway", "--config"])
        .arg(&up.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("gateway.control_url") && stderr.contains("gateway.credential_file"),
        "{stderr}"
    );
}

#[test]
fn key_and_credential_commands_refuse_bad_input_with_a_reason() {
    let up = Upgate::configure("");
    let (ok, _, err) = up.cli(&["keys", "rotate", "everything"]);
    assert!(!ok && err.contains("link, storage or attestation"), "{err}");
    let (ok, _, err) = up.cli(&["gateway-credential", "create", "--name", "gw 1"]);
    assert!(!ok && err.contains("gateway name"), "{err}");
    let (ok, _, err) = up.cli(&["gateway-credential", "revoke", "gwc_0000000000000000"]);
    assert!(!ok && err.contains("No such gateway credential"), "{err}");
    let (ok, _, err) = up.cli(&["store", "migrate", "--from", "s3", "--to", "local"]);
    assert!(!ok && err.contains("--from local --to s3"), "{err}");
}

/// The manual pages the package installs are what `--help` says today: regenerate them
/// with `upgate man --dir packaging/man` after changing a command.
#[test]
fn the_shipped_man_pages_match_the_commands() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(BIN)
        .args(["man", "--dir"])
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/man");
    let names = |dir: &std::path::Path| {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(out.path()),
        names(&shipped),
        "run `upgate man --dir packaging/man`"
    );
    assert!(names(&shipped).contains(&"upgate-backup.1".to_string()));
    for name in names(&shipped) {
        assert_eq!(
            std::fs::read(out.path().join(&name)).unwrap(),
            std::fs::read(shipped.join(&name)).unwrap(),
            "{name} is stale: run `upgate man --dir packaging/man`"
        );
    }
}
