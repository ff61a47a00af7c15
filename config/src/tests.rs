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
        "[sms]\nprovider = \"twilio\"\n[sms.twilio]\naccount_sid = \"AC1\"\nfrom = \"+15005550006\"\nauth_token_file = {:?}\n",
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
    assert_eq!(keys, ["gateway.public_url", "control.listen", "metrics.listen"]);
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
