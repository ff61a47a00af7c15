use super::*;

#[test]
fn empty_file_is_the_embedded_default() {
    let c = Config::parse("").unwrap();
    assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
    assert_eq!(c.gateway.listen.to_string(), DEFAULT_GATEWAY_LISTEN);
    assert_eq!(c.gateway.public_url, "https://127.0.0.1:8443");
    assert_eq!(c.control.listen.to_string(), DEFAULT_CONTROL_LISTEN);
    assert!(c.scanner.clamd.is_none());
    assert!(matches!(c.sms, SmsConfig::Outbox));
    assert_eq!(c.plans["starter"], Plan { sms: false });
    assert_eq!(c.plans["pro"], Plan { sms: true });
}

#[test]
fn the_example_config_parses_to_the_defaults() {
    let text = include_str!("../upgate.example.toml");
    let c = Config::parse(text).unwrap();
    let d = Config::parse("").unwrap();
    assert_eq!(c.data_dir, d.data_dir);
    assert_eq!(c.gateway.header_timeout, d.gateway.header_timeout);
    assert_eq!(c.plans, d.plans);
    assert_eq!(c.scanner.timeout, d.scanner.timeout);
    assert_eq!(c.log, d.log);
}

#[test]
fn every_bad_key_is_reported_with_its_fix() {
    let text = r#"
        colour = "blue"
        [gateway]
        listen = "nowhere"
        header_timeout = "soon"
        public_url = "http://x"
        max_connections = 0
        [scanner]
        clamd = "localhost"
        [sms]
        provider = "twilio"
    "#;
    let errs = Config::parse(text).unwrap_err().0;
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    for key in [
        "colour",
        "gateway.listen",
        "gateway.header_timeout",
        "gateway.public_url",
        "gateway.max_connections",
        "scanner.clamd",
        "sms.twilio.account_sid",
        "sms.twilio.from",
        "sms.twilio.auth_token_file",
    ] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
    assert!(errs.iter().all(|e| !e.fix.is_empty()));
}

#[test]
fn syntax_errors_are_reported_not_panicked() {
    let errs = Config::parse("[gateway\nlisten=").unwrap_err().0;
    assert_eq!(errs.len(), 1);
    let errs = Config::parse("[gateway]\nmax_connections = \"many\"")
        .unwrap_err()
        .0;
    assert_eq!(errs.len(), 1);
}

#[cfg(unix)]
#[test]
fn secret_files_readable_by_others_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "s3cret\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = format!(
        "[sms]\nprovider = \"twilio\"\n[sms.twilio]\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\nfrom = \"+15005550006\"\nauth_token_file = {:?}\n",
        path.display().to_string()
    );
    let errs = Config::parse(&text).unwrap_err().0;
    assert_eq!(errs[0].key, "sms.twilio.auth_token_file");
    assert!(!errs[0].problem.contains("s3cret"));

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let SmsConfig::Twilio(t) = Config::parse(&text).unwrap().sms else {
        panic!("not twilio")
    };
    assert_eq!(t.auth_token, "s3cret");
    assert!(!format!("{t:?}").contains("s3cret"));
}

#[test]
fn clamd_addresses() {
    let c = Config::parse("[scanner]\nclamd = \"unix:/run/c.sock\"").unwrap();
    assert_eq!(c.scanner.clamd, Some(ClamdAddr::Unix("/run/c.sock".into())));
    let c = Config::parse("[scanner]\nclamd = \"tcp:127.0.0.1:3310\"").unwrap();
    assert_eq!(
        c.scanner.clamd,
        Some(ClamdAddr::Tcp("127.0.0.1:3310".parse().unwrap()))
    );
}

#[test]
fn quarantine_needs_a_scanner_to_scan_what_it_holds() {
    let c = Config::parse("").unwrap();
    assert_eq!(c.scanner.on_unavailable, OnScannerUnavailable::FailClosed);
    let c =
        Config::parse("[scanner]\nclamd = \"unix:/run/c.sock\"\non_unavailable = \"quarantine\"\n").unwrap();
    assert_eq!(c.scanner.on_unavailable, OnScannerUnavailable::Quarantine);
    let e = Config::parse("[scanner]\non_unavailable = \"quarantine\"\n").unwrap_err();
    assert!(e.to_string().contains("scanner.on_unavailable"), "{e}");
    assert!(e.to_string().contains("scanner.clamd"), "{e}");
    let e = Config::parse("[scanner]\nclamd = \"unix:/c\"\non_unavailable = \"skip\"\n").unwrap_err();
    assert!(e.to_string().contains("\"quarantine\""), "{e}");
}

#[test]
fn plain_http_only_to_loopback() {
    for ok in [
        "https://api.twilio.com",
        "http://127.0.0.1:9000",
        "http://[::1]:80/x",
        "http://localhost:1",
    ] {
        assert!(base_url_is_safe(ok), "{ok}");
    }
    for bad in [
        "http://api.twilio.com",
        "http://localhost.evil.example",
        "http://127.attacker.example",
        "http://127.0.0.1.nip.io",
        "http://user@127.0.0.1",
        "ftp://127.0.0.1",
        "https://",
        "127.0.0.1",
    ] {
        assert!(!base_url_is_safe(bad), "{bad}");
    }
}

#[test]
fn plain_http_listeners_stay_on_loopback_and_a_public_gateway_names_its_url() {
    let errs = Config::parse("[control]\nlisten = \"0.0.0.0:8080\"\n[metrics]\nlisten = \"10.0.0.5:9090\"\n[gateway]\nlisten = \"0.0.0.0:443\"\n")
        .unwrap_err()
        .0;
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["control.listen", "metrics.listen", "gateway.public_url"]);
    let c = Config::parse("[gateway]\nlisten = \"0.0.0.0:443\"\npublic_url = \"https://up.example.com/\"\n")
        .unwrap();
    assert_eq!(c.gateway.public_url, "https://up.example.com");
}

#[test]
fn sizes_take_units() {
    use crate::parse_size;
    assert_eq!(parse_size("8 KiB"), Some(8192));
    assert_eq!(parse_size("8KiB"), Some(8192));
    assert_eq!(parse_size("1 GiB"), Some(1 << 30));
    assert_eq!(parse_size("500 MB"), Some(500_000_000));
    assert_eq!(parse_size("42"), Some(42));
    for bad in [
        "",
        "KiB",
        "8 kib",
        "-1 KiB",
        "1.5 GiB",
        "99999999999999999999 TiB",
        "8 KiB/s",
    ] {
        assert_eq!(parse_size(bad), None, "{bad}");
    }
    let config =
        crate::Config::parse("[gateway]\nmin_upload_rate = \"16 KiB/s\"\nmin_free_disk = \"2 GiB\"\n")
            .unwrap();
    assert_eq!(config.gateway.min_upload_rate, 16 * 1024);
    assert_eq!(config.gateway.min_free_disk, 2 << 30);
    let errors = crate::Config::parse("[gateway]\nmin_free_disk = \"lots\"\n").unwrap_err();
    assert_eq!(errors.0[0].key, "gateway.min_free_disk");
}

fn keys_and_lines(text: &str) -> Vec<(String, Option<usize>)> {
    Config::parse(text)
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| (e.key, e.line))
        .collect()
}

#[test]
fn every_type_error_is_reported_with_its_key_and_line() {
    let text = r#"data_dir = 7
[gateway]
listen = 8443
max_connections = "many"
max_connections_per_ip = -1
[scanner]
concurrency = 2.5
[sms]
twilio = "no"
[plans.pro]
sms = "yes"
"#;
    let found = keys_and_lines(text);
    for (key, line) in [
        ("data_dir", 1),
        ("gateway.listen", 3),
        ("gateway.max_connections", 4),
        ("gateway.max_connections_per_ip", 5),
        ("scanner.concurrency", 7),
        ("sms.twilio", 9),
        ("plans.pro.sms", 11),
    ] {
        assert!(
            found.contains(&(key.to_string(), Some(line))),
            "{key} on line {line} missing from {found:?}"
        );
    }
    let errs = Config::parse(text).unwrap_err().0;
    let listen = errs.iter().find(|e| e.key == "gateway.listen").unwrap();
    assert!(
        listen.problem.contains("string") && listen.problem.contains("integer"),
        "{listen}"
    );
    assert!(
        listen.to_string().starts_with("gateway.listen (line 3): "),
        "{listen}"
    );
}

#[test]
fn a_section_of_the_wrong_type_is_reported_and_the_rest_still_read() {
    let found = keys_and_lines("gateway = \"x\"\n[scanner]\nclamd = \"nowhere\"\n");
    assert_eq!(
        found,
        [
            ("gateway".to_string(), Some(1)),
            ("scanner.clamd".to_string(), Some(3))
        ]
    );
}

#[test]
fn inline_tables_and_dotted_keys_read_like_sections() {
    let c = Config::parse("gateway = { listen = \"127.0.0.1:9443\" }\nsms.max_per_number_per_hour = 2\n")
        .unwrap();
    assert_eq!(c.gateway.listen.to_string(), "127.0.0.1:9443");
    assert_eq!(c.sms_limits.per_number_per_hour, 2);
    let found = keys_and_lines("gateway = { listen = 1, colour = \"red\" }\n");
    assert!(
        found.contains(&("gateway.listen".to_string(), Some(1))),
        "{found:?}"
    );
    assert!(
        found.contains(&("gateway.colour".to_string(), Some(1))),
        "{found:?}"
    );
}

#[test]
fn unknown_keys_are_named_as_clean_dotted_keys() {
    let text = r#"colour = 1
[gateway]
listn = "127.0.0.1:1"
[sms.twilio]
acount_sid = "x"
[plans.pro]
sms = true
texts = 5
[plans."gold plan"]
sms = true
[extra.deep]
x = 1
"#;
    let found = keys_and_lines(text);
    for (key, line) in [
        ("colour", 1),
        ("gateway.listn", 3),
        ("sms.twilio.acount_sid", 5),
        ("plans.pro.texts", 8),
        ("plans.\"gold plan\"", 9),
        ("extra", 11),
    ] {
        assert!(
            found.contains(&(key.to_string(), Some(line))),
            "{key} on line {line} missing from {found:?}"
        );
    }
    assert!(found.iter().all(|(k, _)| !k.contains('?')), "{found:?}");
}

#[test]
fn two_listeners_on_one_address_are_refused() {
    let found = keys_and_lines("[control]\nlisten = \"127.0.0.1:9090\"\n");
    assert_eq!(found, [("control.listen".to_string(), Some(2))]);
    let errs = Config::parse("[control]\nlisten = \"127.0.0.1:9090\"\n")
        .unwrap_err()
        .0;
    assert!(errs[0].problem.contains("metrics.listen"), "{}", errs[0]);

    // A wildcard gateway takes the port on every address, loopback included.
    let found =
        keys_and_lines("[gateway]\nlisten = \"0.0.0.0:8080\"\npublic_url = \"https://up.example.com\"\n");
    assert_eq!(found, [("gateway.listen".to_string(), Some(2))]);
    let found =
        keys_and_lines("[gateway]\nlisten = \"127.0.0.1:8080\"\n[metrics]\nlisten = \"127.0.0.1:8080\"\n");
    // Three on one address: one problem per pair, each on a key the file sets.
    assert_eq!(
        found,
        [
            ("gateway.listen".to_string(), Some(2)),
            ("metrics.listen".to_string(), Some(4)),
            ("metrics.listen".to_string(), Some(4))
        ]
    );
    // Same port on two loopback addresses, and port 0, are fine.
    Config::parse("[control]\nlisten = \"127.0.0.2:8443\"\n").unwrap();
    Config::parse("[control]\nlisten = \"127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n").unwrap();
}

fn tls_config(cert: &std::path::Path, key: &std::path::Path) -> String {
    format!(
        "[gateway]\ntls_cert_file = {:?}\ntls_key_file = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    )
}

#[test]
fn tls_files_must_exist_parse_and_belong_together() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let one = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = write("cert.pem", &one.cert.pem());
    let key = write("key.pem", &one.key_pair.serialize_pem());
    let other_key = write("other.pem", &other.key_pair.serialize_pem());
    let garbage = write("garbage.pem", "not pem at all\n");
    let missing = dir.path().join("missing.pem");

    let c = Config::parse(&tls_config(&cert, &key)).unwrap();
    assert_eq!(c.gateway.tls.unwrap().cert_file, cert);

    let problem = |cert: &std::path::Path, key: &std::path::Path| {
        Config::parse(&tls_config(cert, key))
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| (e.key, e.problem))
            .collect::<Vec<_>>()
    };
    let found = problem(&missing, &key);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "gateway.tls_cert_file");
    assert!(found[0].1.contains("cannot read"), "{found:?}");

    let found = problem(&garbage, &garbage);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].1.contains("no PEM certificate"), "{found:?}");
    assert!(found[1].1.contains("no PEM private key"), "{found:?}");

    // A key where the certificate should be, and the other way round.
    let found = problem(&key, &cert);
    assert_eq!(found.len(), 2, "{found:?}");

    let found = problem(&cert, &other_key);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "gateway.tls_key_file");
    assert!(found[0].1.contains("does not belong"), "{found:?}");
}

#[cfg(unix)]
#[test]
fn unreadable_tls_key_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    // root reads any file whatever its mode: nothing to test then.
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe");
    std::fs::write(&probe, "x").unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&probe).is_ok() {
        return;
    }
    let one = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, one.cert.pem()).unwrap();
    std::fs::write(&key, one.key_pair.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o000)).unwrap();
    let errs = Config::parse(&tls_config(&cert, &key)).unwrap_err().0;
    assert_eq!(errs[0].key, "gateway.tls_key_file");
}

#[test]
fn the_sms_webhook_provider_needs_a_url_and_a_standard_secret() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path.display().to_string()
    };
    let good = secret("good", "whsec_c2VjcmV0LWZvci10aGUtc21zLWdhdGV3YXktdGVzdHM=\n");
    let config = |url: &str, file: &str| {
        format!("[sms]\nprovider = \"webhook\"\n[sms.webhook]\nurl = {url:?}\nsecret_file = {file:?}\n")
    };
    let ok = Config::parse(&config("https://sms.internal/send", &good)).unwrap();
    assert!(matches!(ok.sms, SmsConfig::Webhook(ref w) if w.url == "https://sms.internal/send"));
    assert!(
        !format!("{:?}", ok.sms).contains("c2VjcmV0"),
        "the secret is not in Debug"
    );
    let keys = |text: &str| -> Vec<String> {
        Config::parse(text)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.key)
            .collect()
    };
    assert_eq!(
        keys(&config("http://sms.internal/send", &good)),
        ["sms.webhook.url"]
    );
    let short = secret("short", "whsec_c2hvcnQ=\n");
    assert_eq!(
        keys(&config("https://sms.internal/send", &short)),
        ["sms.webhook.secret_file"]
    );
    let plain = secret("plain", "hunter2\n");
    assert_eq!(
        keys(&config("https://sms.internal/send", &plain)),
        ["sms.webhook.secret_file"]
    );
    assert_eq!(
        keys("[sms]\nprovider = \"webhook\"\n"),
        ["sms.webhook.url", "sms.webhook.secret_file"]
    );
}

#[test]
fn twilio_identifiers_are_checked_for_shape() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let twilio = |sid: &str, from: &str| {
        format!(
            "[sms]\nprovider = \"twilio\"\n[sms.twilio]\naccount_sid = {sid:?}\nfrom = {from:?}\nauth_token_file = {:?}\n",
            token.display().to_string()
        )
    };
    let sid = "AC0123456789abcdef0123456789abcdef";
    for from in ["+15005550006", "Clinic"] {
        Config::parse(&twilio(sid, from)).unwrap();
    }
    let found = keys_and_lines(&twilio("AC123", "5550006"));
    assert_eq!(
        found,
        [
            ("sms.twilio.account_sid".to_string(), Some(4)),
            ("sms.twilio.from".to_string(), Some(5))
        ]
    );
    let errs = Config::parse(&twilio(sid, "MG0123456789abcdef0123456789abcdef"))
        .unwrap_err()
        .0;
    assert!(errs[0].problem.contains("Messaging Service"), "{}", errs[0]);
}

#[test]
fn log_format_is_text_or_json() {
    assert_eq!(Config::parse("").unwrap().log.format, LogFormat::Text);
    let c = Config::parse("[log]\nformat = \"json\"\n").unwrap();
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(
        keys_and_lines("[log]\nformat = \"xml\"\n"),
        [("log.format".to_string(), Some(2))]
    );
}

#[test]
fn syntax_errors_name_their_line() {
    let errs = Config::parse("[gateway]\nlisten = \"127.0.0.1:1\"\nheader_timeout = \n")
        .unwrap_err()
        .0;
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, Some(3), "{}", errs[0]);
}

#[test]
fn the_event_heartbeat_is_a_second_to_five_minutes() {
    let default = Config::parse("").unwrap();
    assert_eq!(
        default.control.event_heartbeat,
        std::time::Duration::from_secs(15)
    );
    let set = Config::parse("[control]\nevent_heartbeat = \"2s\"\n").unwrap();
    assert_eq!(set.control.event_heartbeat, std::time::Duration::from_secs(2));
    assert_eq!(default.control.max_event_streams, 10_000);
    let set = Config::parse("[control]\nmax_event_streams = 20\n").unwrap();
    assert_eq!(set.control.max_event_streams, 20);
    for bad in ["0", "100001", "-3", "\"many\""] {
        let e = Config::parse(&format!("[control]\nmax_event_streams = {bad}\n")).unwrap_err();
        assert!(e.to_string().contains("control.max_event_streams"), "{bad}: {e}");
    }
    for bad in ["500ms", "6m", "soon"] {
        let e = Config::parse(&format!("[control]\nevent_heartbeat = \"{bad}\"\n")).unwrap_err();
        assert!(e.to_string().contains("control.event_heartbeat"), "{bad}: {e}");
    }
}

#[test]
fn the_example_config_documents_every_key() {
    let text = include_str!("../upgate.example.toml");
    // Each key is in the example, set to its default or commented out with an example
    // value: uncommented, every key of the schema must be there, and nothing else.
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if rest.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')) => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let reading = raw::read(&uncommented).unwrap();
    let unknown: Vec<_> = reading
        .problems
        .iter()
        .filter(|p| p.problem == "unknown key")
        .collect();
    assert!(unknown.is_empty(), "{unknown:?}");
    let missing: Vec<_> = reading
        .known
        .iter()
        .filter(|k| !reading.lines.contains_key(*k))
        .collect();
    assert!(missing.is_empty(), "not in the example: {missing:?}");
}

#[test]
fn the_file_ceiling_is_the_operators_up_to_64_gib() {
    let default = Config::parse("").unwrap();
    assert_eq!(default.uploads.max_file_bytes, 50 << 20);
    for (text, bytes) in [("4 GiB", 4u64 << 30), ("64 GiB", 64 << 30), ("64 KiB", 64 << 10)] {
        let c = Config::parse(&format!("[uploads]\nmax_file_size = \"{text}\"\n")).unwrap();
        assert_eq!(c.uploads.max_file_bytes, bytes, "{text}");
    }
    for bad in ["65 GiB", "1 KiB", "0", "big"] {
        let errs = Config::parse(&format!("\n[uploads]\nmax_file_size = \"{bad}\"\n"))
            .unwrap_err()
            .0;
        assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
        assert_eq!(errs[0].key, "uploads.max_file_size");
        assert_eq!(errs[0].line, Some(3), "{bad}");
    }
}

#[test]
fn the_retention_interval_is_a_second_to_a_day() {
    let default = Config::parse("").unwrap();
    assert_eq!(
        default.control.retention_interval,
        std::time::Duration::from_secs(600)
    );
    let set = Config::parse("[control]\nretention_interval = \"1s\"\n").unwrap();
    assert_eq!(set.control.retention_interval, std::time::Duration::from_secs(1));
    for bad in ["500ms", "2d", "often"] {
        let e = Config::parse(&format!("[control]\nretention_interval = \"{bad}\"\n")).unwrap_err();
        assert!(e.to_string().contains("control.retention_interval"), "{bad}: {e}");
    }
}

#[test]
fn the_console_url_is_an_origin_and_defaults_to_the_control_listener() {
    let default = Config::parse("").unwrap();
    assert_eq!(
        default.control.console_url,
        format!("http://{}", default.control.listen)
    );
    let set = Config::parse("[control]\nconsole_url = \"https://admin.example.com/\"\n").unwrap();
    assert_eq!(set.control.console_url, "https://admin.example.com");
    for bad in [
        "admin.example.com",
        "https://",
        "https://a.example/console",
        "ftp://a.example",
    ] {
        let err = Config::parse(&format!("[control]\nconsole_url = {bad:?}\n")).unwrap_err();
        assert!(err.to_string().contains("control.console_url"), "{bad}: {err}");
    }
}
