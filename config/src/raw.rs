//! The configuration file as written: every value optional, read key by key from the
//! parsed TOML document rather than through one serde pass, because serde stops at the
//! first value of the wrong type and we want every mistake, each with its dotted key and
//! line. A key of the wrong type is reported and then treated as absent.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use toml_edit::{ImDocument, Item, TableLike};

use crate::ConfigError;

#[derive(Debug, Default)]
pub struct RawConfig {
    pub data_dir: Option<String>,
    pub gateway: RawGateway,
    pub control: RawControl,
    pub storage: RawStorage,
    pub metrics: RawMetrics,
    pub scanner: RawScanner,
    pub uploads: RawUploads,
    pub sms: RawSms,
    pub log: RawLog,
    pub webhooks: RawWebhooks,
    pub plans: Option<BTreeMap<String, RawPlan>>,
}

#[derive(Debug, Default)]
pub struct RawWebhooks {
    pub allow_private_targets: Option<bool>,
    pub retry_for: Option<String>,
}

#[derive(Debug, Default)]
pub struct RawGateway {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
    pub handshake_timeout: Option<String>,
    pub header_timeout: Option<String>,
    pub body_idle_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub link_failures_per_minute: Option<usize>,
    pub min_upload_rate: Option<String>,
    pub upload_rate_grace: Option<String>,
    pub min_free_disk: Option<String>,
    pub control_url: Option<String>,
    pub control_ca_file: Option<String>,
    pub credential_file: Option<String>,
    pub key_refresh: Option<String>,
}

#[derive(Debug, Default)]
pub struct RawControl {
    pub listen: Option<String>,
    pub internal_listen: Option<String>,
    pub internal_tls_cert_file: Option<String>,
    pub internal_tls_key_file: Option<String>,
    pub lease_ttl: Option<String>,
    pub event_heartbeat: Option<String>,
    pub max_event_streams: Option<usize>,
    pub retention_interval: Option<String>,
    pub console_url: Option<String>,
}

#[derive(Debug, Default)]
pub struct RawStorage {
    pub backend: Option<String>,
    pub path: Option<String>,
    pub s3: RawS3,
}

#[derive(Debug, Default)]
pub struct RawS3 {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub bucket: Option<String>,
    pub path_style: Option<bool>,
    pub access_key_id: Option<String>,
    pub secret_access_key_file: Option<String>,
}

#[derive(Debug, Default)]
pub struct RawMetrics {
    pub listen: Option<String>,
}

#[derive(Debug, Default)]
pub struct RawScanner {
    pub clamd: Option<String>,
    pub timeout: Option<String>,
    pub concurrency: Option<usize>,
    pub on_unavailable: Option<String>,
}

#[derive(Debug, Default)]
pub struct RawUploads {
    pub max_file_size: Option<String>,
}

#[derive(Debug, Default)]
pub struct RawSms {
    pub provider: Option<String>,
    pub max_per_number_per_hour: Option<usize>,
    pub max_per_account_per_hour: Option<usize>,
    pub twilio: RawTwilio,
    pub webhook: RawSmsWebhook,
    pub vonage: RawVonage,
}

#[derive(Debug, Default)]
pub struct RawVonage {
    pub api_key: Option<String>,
    pub api_secret_file: Option<String>,
    pub signature_secret_file: Option<String>,
    pub from: Option<String>,
    pub api_base: Option<String>,
}

#[derive(Debug, Default)]
pub struct RawSmsWebhook {
    pub url: Option<String>,
    pub secret_file: Option<String>,
}

#[derive(Debug, Default)]
pub struct RawTwilio {
    pub account_sid: Option<String>,
    pub auth_token_file: Option<String>,
    pub from: Option<String>,
    pub api_base: Option<String>,
}

#[derive(Debug, Default)]
pub struct RawLog {
    pub format: Option<String>,
}

#[derive(Debug, Default)]
pub struct RawPlan {
    pub sms: Option<bool>,
}

/// What reading found besides the values: problems, and the line of every key present so
/// that later validation errors can name it too.
pub struct Reading {
    pub raw: RawConfig,
    pub problems: Vec<ConfigError>,
    pub lines: BTreeMap<String, usize>,
    /// Every key looked for, present or not: the schema, for the test that the example
    /// config documents each one.
    #[cfg_attr(not(test), allow(dead_code))]
    pub known: BTreeSet<String>,
}

const UNKNOWN_FIX: &str = "remove it or check its spelling against config/upgate.example.toml";

/// Parses `text`; `Err` is a TOML syntax error, after which nothing else can be read.
pub fn read(text: &str) -> Result<Reading, ConfigError> {
    let doc = ImDocument::parse(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        let key = e
            .span()
            .map(|s| crate::locate(text, s.start))
            .unwrap_or_else(|| "(file)".into());
        ConfigError {
            key,
            line,
            // One line per problem in the report, however the parser phrases it.
            problem: e.message().trim().replace('\n', "; "),
            fix: "correct the TOML syntax (see config/upgate.example.toml)".into(),
        }
    })?;
    let mut r = Reader {
        text,
        problems: Vec::new(),
        lines: BTreeMap::new(),
        known: BTreeSet::new(),
    };
    let mut root = Section::new(String::new(), Some(doc.as_table()));
    let raw = RawConfig {
        data_dir: root.string(&mut r, "data_dir"),
        gateway: gateway(&mut r, &mut root),
        control: control(&mut r, &mut root),
        storage: storage(&mut r, &mut root),
        metrics: RawMetrics {
            listen: listen(&mut r, &mut root, "metrics"),
        },
        scanner: scanner(&mut r, &mut root),
        uploads: uploads(&mut r, &mut root),
        sms: sms(&mut r, &mut root),
        log: log(&mut r, &mut root),
        webhooks: webhooks(&mut r, &mut root),
        plans: plans(&mut r, &mut root),
    };
    root.finish(&mut r);
    Ok(Reading {
        raw,
        problems: r.problems,
        lines: r.lines,
        known: r.known,
    })
}

fn gateway(r: &mut Reader, root: &mut Section) -> RawGateway {
    let mut s = root.section(r, "gateway");
    let raw = RawGateway {
        listen: s.string(r, "listen"),
        public_url: s.string(r, "public_url"),
        tls_cert_file: s.string(r, "tls_cert_file"),
        tls_key_file: s.string(r, "tls_key_file"),
        handshake_timeout: s.string(r, "handshake_timeout"),
        header_timeout: s.string(r, "header_timeout"),
        body_idle_timeout: s.string(r, "body_idle_timeout"),
        max_connections: s.count(r, "max_connections"),
        max_connections_per_ip: s.count(r, "max_connections_per_ip"),
        link_failures_per_minute: s.count(r, "link_failures_per_minute"),
        min_upload_rate: s.string(r, "min_upload_rate"),
        upload_rate_grace: s.string(r, "upload_rate_grace"),
        min_free_disk: s.string(r, "min_free_disk"),
        control_url: s.string(r, "control_url"),
        control_ca_file: s.string(r, "control_ca_file"),
        credential_file: s.string(r, "credential_file"),
        key_refresh: s.string(r, "key_refresh"),
    };
    s.finish(r);
    raw
}

fn control(r: &mut Reader, root: &mut Section) -> RawControl {
    let mut s = root.section(r, "control");
    let raw = RawControl {
        listen: s.string(r, "listen"),
        internal_listen: s.string(r, "internal_listen"),
        internal_tls_cert_file: s.string(r, "internal_tls_cert_file"),
        internal_tls_key_file: s.string(r, "internal_tls_key_file"),
        lease_ttl: s.string(r, "lease_ttl"),
        event_heartbeat: s.string(r, "event_heartbeat"),
        max_event_streams: s.count(r, "max_event_streams"),
        retention_interval: s.string(r, "retention_interval"),
        console_url: s.string(r, "console_url"),
    };
    s.finish(r);
    raw
}

fn storage(r: &mut Reader, root: &mut Section) -> RawStorage {
    let mut s = root.section(r, "storage");
    let backend = s.string(r, "backend");
    let path = s.string(r, "path");
    let mut t = s.section(r, "s3");
    let s3 = RawS3 {
        endpoint: t.string(r, "endpoint"),
        region: t.string(r, "region"),
        bucket: t.string(r, "bucket"),
        path_style: t.flag(r, "path_style"),
        access_key_id: t.string(r, "access_key_id"),
        secret_access_key_file: t.string(r, "secret_access_key_file"),
    };
    t.finish(r);
    s.finish(r);
    RawStorage { backend, path, s3 }
}

/// `[metrics]`: a listener and nothing else.
fn listen(r: &mut Reader, root: &mut Section, name: &str) -> Option<String> {
    let mut s = root.section(r, name);
    let listen = s.string(r, "listen");
    s.finish(r);
    listen
}

fn scanner(r: &mut Reader, root: &mut Section) -> RawScanner {
    let mut s = root.section(r, "scanner");
    let raw = RawScanner {
        clamd: s.string(r, "clamd"),
        timeout: s.string(r, "timeout"),
        concurrency: s.count(r, "concurrency"),
        on_unavailable: s.string(r, "on_unavailable"),
    };
    s.finish(r);
    raw
}

fn uploads(r: &mut Reader, root: &mut Section) -> RawUploads {
    let mut s = root.section(r, "uploads");
    let raw = RawUploads {
        max_file_size: s.string(r, "max_file_size"),
    };
    s.finish(r);
    raw
}

fn log(r: &mut Reader, root: &mut Section) -> RawLog {
    let mut s = root.section(r, "log");
    let raw = RawLog {
        format: s.string(r, "format"),
    };
    s.finish(r);
    raw
}

fn webhooks(r: &mut Reader, root: &mut Section) -> RawWebhooks {
    let mut s = root.section(r, "webhooks");
    let raw = RawWebhooks {
        allow_private_targets: s.flag(r, "allow_private_targets"),
        retry_for: s.string(r, "retry_for"),
    };
    s.finish(r);
    raw
}

fn sms(r: &mut Reader, root: &mut Section) -> RawSms {
    let mut s = root.section(r, "sms");
    let provider = s.string(r, "provider");
    let max_per_number_per_hour = s.count(r, "max_per_number_per_hour");
    let max_per_account_per_hour = s.count(r, "max_per_account_per_hour");
    let mut t = s.section(r, "twilio");
    let twilio = RawTwilio {
        account_sid: t.string(r, "account_sid"),
        auth_token_file: t.string(r, "auth_token_file"),
        from: t.string(r, "from"),
        api_base: t.string(r, "api_base"),
    };
    t.finish(r);
    let mut w = s.section(r, "webhook");
    let webhook = RawSmsWebhook {
        url: w.string(r, "url"),
        secret_file: w.string(r, "secret_file"),
    };
    w.finish(r);
    let mut v = s.section(r, "vonage");
    let vonage = RawVonage {
        api_key: v.string(r, "api_key"),
        api_secret_file: v.string(r, "api_secret_file"),
        signature_secret_file: v.string(r, "signature_secret_file"),
        from: v.string(r, "from"),
        api_base: v.string(r, "api_base"),
    };
    v.finish(r);
    s.finish(r);
    RawSms {
        provider,
        max_per_number_per_hour,
        max_per_account_per_hour,
        twilio,
        webhook,
        vonage,
    }
}

/// `[plans.NAME]` tables: the names are the operator's, the keys inside are ours.
fn plans(r: &mut Reader, root: &mut Section) -> Option<BTreeMap<String, RawPlan>> {
    let mut s = root.section(r, "plans");
    // Absent, or not a table (reported): the default plans apply.
    let table = s.table?;
    let mut plans = BTreeMap::new();
    for (name, _) in table.iter() {
        let mut plan = s.section(r, name);
        plans.insert(
            name.to_string(),
            RawPlan {
                sms: plan.flag(r, "sms"),
            },
        );
        plan.finish(r);
    }
    s.finish(r);
    Some(plans)
}

struct Reader<'t> {
    text: &'t str,
    problems: Vec<ConfigError>,
    lines: BTreeMap<String, usize>,
    known: BTreeSet<String>,
}

impl Reader<'_> {
    fn problem(&mut self, key: &str, span: Option<Range<usize>>, problem: String, fix: &str) {
        self.problems.push(ConfigError {
            key: key.into(),
            line: span.map(|s| line_of(self.text, s.start)),
            problem,
            fix: fix.into(),
        });
    }

    fn wrong_type(&mut self, key: &str, item: &Item, expected: &str, span: Option<Range<usize>>) {
        self.problem(
            key,
            span,
            format!("expected {expected}, found {}", item.type_name()),
            "write the value as in config/upgate.example.toml",
        );
    }
}

/// One table of the document under its dotted name, remembering which keys were read so
/// that the rest can be reported as unknown.
struct Section<'a> {
    path: String,
    table: Option<&'a dyn TableLike>,
    read: BTreeSet<String>,
}

impl<'a> Section<'a> {
    fn new(path: String, table: Option<&'a dyn TableLike>) -> Self {
        Section {
            path,
            table,
            read: BTreeSet::new(),
        }
    }

    fn dotted(&self, key: &str) -> String {
        if self.path.is_empty() {
            dotted_part(key)
        } else {
            format!("{}.{}", self.path, dotted_part(key))
        }
    }

    /// A value under `key`, entered in the schema.
    fn take(&mut self, r: &mut Reader, key: &str) -> Option<(String, &'a Item, Option<Range<usize>>)> {
        r.known.insert(self.dotted(key));
        self.find(r, key)
    }

    /// The item under `key` with its dotted name and position, marked as read, its line
    /// recorded for later problems.
    fn find(&mut self, r: &mut Reader, key: &str) -> Option<(String, &'a Item, Option<Range<usize>>)> {
        let (k, item) = self.table?.get_key_value(key)?;
        self.read.insert(key.to_string());
        let dotted = self.dotted(key);
        let span = span_of(Some(k), item);
        if let Some(span) = &span {
            r.lines.insert(dotted.clone(), line_of(r.text, span.start));
        }
        Some((dotted, item, span))
    }

    fn string(&mut self, r: &mut Reader, key: &str) -> Option<String> {
        let (dotted, item, span) = self.take(r, key)?;
        match item.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                r.wrong_type(&dotted, item, "a string", span);
                None
            }
        }
    }

    /// A count: a whole number that is not negative.
    fn count(&mut self, r: &mut Reader, key: &str) -> Option<usize> {
        let (dotted, item, span) = self.take(r, key)?;
        match item.as_integer().map(usize::try_from) {
            Some(Ok(n)) => Some(n),
            Some(Err(_)) => {
                r.problem(
                    &dotted,
                    span,
                    "must not be negative".into(),
                    "write a whole number, e.g. 4",
                );
                None
            }
            None => {
                r.wrong_type(&dotted, item, "a whole number", span);
                None
            }
        }
    }

    fn flag(&mut self, r: &mut Reader, key: &str) -> Option<bool> {
        let (dotted, item, span) = self.take(r, key)?;
        let flag = item.as_bool();
        if flag.is_none() {
            r.wrong_type(&dotted, item, "true or false", span);
        }
        flag
    }

    /// A nested table; absent or of the wrong type (reported) reads as empty.
    fn section(&mut self, r: &mut Reader, key: &str) -> Section<'a> {
        let dotted = self.dotted(key);
        let table = self.find(r, key).and_then(|(_, item, span)| {
            let table = item.as_table_like();
            if table.is_none() {
                r.wrong_type(&dotted, item, "a table", span);
            }
            table
        });
        Section::new(dotted, table)
    }

    /// Reports every key that no reader asked for.
    fn finish(self, r: &mut Reader) {
        let Some(table) = self.table else { return };
        for (key, item) in table.iter() {
            if !self.read.contains(key) {
                let k = table.get_key_value(key).map(|(k, _)| k);
                r.problem(
                    &self.dotted(key),
                    span_of(k, item),
                    "unknown key".into(),
                    UNKNOWN_FIX,
                );
            }
        }
    }
}

/// Where to point the operator: the key if the parser kept its position, else the value.
fn span_of(key: Option<&toml_edit::Key>, item: &Item) -> Option<Range<usize>> {
    key.and_then(|k| k.span()).or_else(|| item.span())
}

/// A key as it would be written in the file: bare when it can be, quoted otherwise, so
/// that a dotted name is never ambiguous.
pub(crate) fn dotted_part(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
