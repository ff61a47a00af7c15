//! upgate's configuration: one TOML file, every key optional with a named default,
//! turned into typed values with every mistake reported at once (key, problem, fix).

mod listeners;
mod raw;
mod secret;
mod split;
mod storage;
mod tls;
mod twilio;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use secret::read_secret_file;
pub use split::{ControlLinkConfig, InternalApiConfig};
pub use storage::{S3Config, StorageConfig};

use raw::RawConfig;

/// Where the embedded default keeps everything when nothing else is said.
pub const DEFAULT_DATA_DIR: &str = "./upgate-data";
/// Internet-facing gateway; loopback by default so a first start exposes nothing.
pub const DEFAULT_GATEWAY_LISTEN: &str = "127.0.0.1:8443";
/// The private control API; loopback only by default.
pub const DEFAULT_CONTROL_LISTEN: &str = "127.0.0.1:8080";
/// `/metrics` and the detailed `/readyz` on their own listener, never on the public one
/// (which answers only a bare `/healthz` and `/readyz` for load balancers).
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9090";
/// The internal API gateways call (`upgate control` only); TLS and a gateway credential.
pub const DEFAULT_INTERNAL_LISTEN: &str = "127.0.0.1:8444";
pub const DEFAULT_TWILIO_API_BASE: &str = "https://api.twilio.com";
pub const DEFAULT_VONAGE_API_BASE: &str = "https://api.nexmo.com";
/// The largest file any link may take unless the operator says otherwise (`[uploads]`).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 50 << 20;
/// The most `uploads.max_file_size` may be: an S3 multipart upload of 10,000 parts of
/// 8 MiB holds about 78 GiB, and nobody texts a caller for more.
pub const MAX_FILE_BYTES_CEILING: u64 = 64 << 30;
/// The least it may be: below this, clamd's depth proof would prove nothing useful.
pub const MIN_FILE_BYTES_CEILING: u64 = 64 << 10;

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Keys, certificates, the metadata store, sealed objects and the spool live here.
    pub data_dir: PathBuf,
    pub gateway: GatewayConfig,
    pub control: ControlConfig,
    pub storage: StorageConfig,
    pub metrics: MetricsConfig,
    pub scanner: ScannerConfig,
    pub uploads: UploadsConfig,
    pub sms: SmsConfig,
    /// Caps on texts, against SMS pumping (premium numbers made to receive our texts).
    pub sms_limits: SmsLimits,
    /// Plans by name; accounts name one. Defaults: `starter` (no SMS) and `pro` (SMS).
    pub plans: BTreeMap<String, Plan>,
    pub log: LogConfig,
    pub webhooks: WebhooksConfig,
}

/// Deliveries of the event log to the accounts' endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhooksConfig {
    /// Endpoints on loopback, private, link-local, CGNAT or metadata addresses (and plain
    /// `http://`) are refused unless this is on: for tests and on-premises receivers.
    pub allow_private_targets: bool,
    /// A delivery that keeps failing is retried, with growing pauses, until this long after
    /// its first attempt, then kept as a dead letter.
    pub retry_for: Duration,
}

impl Default for WebhooksConfig {
    fn default() -> WebhooksConfig {
        WebhooksConfig {
            allow_private_targets: false,
            retry_for: Duration::from_secs(24 * 3600),
        }
    }
}

/// How `upgate serve` writes its log lines (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event; coloured only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// The origin put in front of `/u/TOKEN` in texted links, without a trailing slash.
    pub public_url: String,
    /// PEM certificate chain and key; both absent = a self-signed localhost certificate in the data dir.
    pub tls: Option<TlsFiles>,
    /// A TLS handshake that has not finished by then is dropped (tokio-rustls has none of its own).
    pub handshake_timeout: Duration,
    /// Request head must arrive within this (hyper's timeout is off unless set).
    pub header_timeout: Duration,
    /// A body that sends nothing for this long is cut off.
    pub body_idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Invalid link tokens one address may present per minute before its link requests are
    /// refused (429) for the rest of the minute.
    pub link_failures_per_minute: usize,
    /// Once `upload_rate_grace` has passed, an upload must have averaged at least this many
    /// bytes a second, or it is cut off: a trickle cannot hold a slot for hours.
    pub min_upload_rate: u64,
    pub upload_rate_grace: Duration,
    /// Below this much free space where uploads are spooled and stored, readiness says no
    /// and uploads are refused (507) before the disk fills.
    pub min_free_disk: u64,
    /// How a gateway run apart (`upgate gateway`) reaches its control plane.
    pub control: Option<ControlLinkConfig>,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ControlConfig {
    pub listen: SocketAddr,
    /// The internal API for gateways run apart (`upgate control` only).
    pub internal: InternalApiConfig,
    /// How often an open event stream gets a comment line when nothing happens, so proxies
    /// and clients that time out idle connections keep it.
    pub event_heartbeat: Duration,
    /// Event streams open at once; each holds a connection (and a file descriptor).
    pub max_event_streams: usize,
    /// How often the retention worker looks for files past their assistant's
    /// `retention_days`: no file outlives its date by more than this.
    pub retention_interval: Duration,
    /// Where staff open the console (the control API's own address, or the TLS proxy in
    /// front of it): sign-in links point here, and an `https://` address makes the session
    /// cookie `Secure`.
    pub console_url: String,
}

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    pub listen: SocketAddr,
}

/// Deployment-wide limits on what callers send, above every assistant's own settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadsConfig {
    /// No link takes a larger file: assistant settings above it are refused, and clamd
    /// must prove it scans this deep before larger files are accepted.
    pub max_file_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct ScannerConfig {
    /// None = scanning is off (the embedded default says so loudly).
    pub clamd: Option<ClamdAddr>,
    /// Our own deadline for one scan, connect to verdict.
    pub timeout: Duration,
    /// At most this many scans at once: keep it at or below clamd's MaxThreads.
    pub concurrency: usize,
    pub on_unavailable: OnScannerUnavailable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddr {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

/// What happens to an upload when clamd cannot give a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnScannerUnavailable {
    /// Refuse the upload with a "try again shortly" answer; the link stays usable.
    FailClosed,
    /// Keep the file sealed as unscanned, invisible to all but reviewers, and scan it when
    /// clamd is back (the control plane does: it alone can open a stored file).
    Quarantine,
}

#[derive(Debug, Clone)]
pub enum SmsConfig {
    /// Appends each message as a JSON line to `sms-outbox.jsonl` in the data dir (development).
    Outbox,
    Twilio(TwilioConfig),
    /// POSTs each text to the operator's own SMS gateway, signed as Standard Webhooks; the
    /// gateway reports delivery back the same way.
    Webhook(SmsWebhookConfig),
    /// Vonage's Messages API (SMS channel), with its signed status webhooks.
    Vonage(VonageConfig),
}

#[derive(Clone)]
pub struct VonageConfig {
    pub api_key: String,
    pub api_secret: String,
    /// Signs the status webhooks Vonage sends (HS256 JWTs): the account's signature secret.
    pub signature_secret: String,
    /// A number in E.164 (sent without its `+`, as Vonage takes it) or a sender id.
    pub from: String,
    pub api_base: String,
}

impl fmt::Debug for VonageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VonageConfig")
            .field("api_key", &self.api_key)
            .field("api_secret", &"<redacted>")
            .field("signature_secret", &"<redacted>")
            .field("from", &self.from)
            .field("api_base", &self.api_base)
            .finish()
    }
}

#[derive(Clone)]
pub struct SmsWebhookConfig {
    pub url: String,
    /// `whsec_` and base64: signs what upgate sends and verifies the reports it gets.
    pub secret: String,
}

impl fmt::Debug for SmsWebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsWebhookConfig")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Texts allowed per hour; past them link requests answer 429 until the hour has room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsLimits {
    pub per_number_per_hour: usize,
    pub per_account_per_hour: usize,
}

#[derive(Clone)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
    pub api_base: String,
}

impl fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("from", &self.from)
            .field("api_base", &self.api_base)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// SMS sending, which file upload needs to text its link.
    pub sms: bool,
}

/// One thing wrong with the configuration, phrased for the operator who must fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The dotted key, as it would be written in the file (`sms.twilio.from`).
    pub key: String,
    /// 1-based line of the key in the file; `None` when the key is absent (a required key)
    /// or the problem is not in the file (one that cannot be read).
    pub line: Option<usize>,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(
                f,
                "{} (line {line}): {} (fix: {})",
                self.key, self.problem, self.fix
            ),
            None => write!(f, "{}: {} (fix: {})", self.key, self.problem, self.fix),
        }
    }
}

/// Every problem found; never just the first.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in the configuration:\n{}", .0.len(), .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl Config {
    /// Reads `path` if given, otherwise the built-in defaults; `data_dir` from the command
    /// line wins over the file.
    pub fn load(path: Option<&Path>, data_dir: Option<&Path>) -> Result<Config, ConfigErrors> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|e| {
                ConfigErrors(vec![ConfigError {
                    key: p.display().to_string(),
                    line: None,
                    problem: format!("cannot read the file: {e}"),
                    fix: "pass the path of a readable TOML file with --config".into(),
                }])
            })?,
            None => String::new(),
        };
        let mut config = Config::parse(&text)?;
        if let Some(dir) = data_dir {
            config.data_dir = dir.to_path_buf();
        }
        Ok(config)
    }

    /// Where a local storage backend keeps sealed files.
    pub fn objects_dir(&self) -> PathBuf {
        match &self.storage {
            StorageConfig::Local { path: Some(path) } => path.clone(),
            _ => self.data_dir.join("objects"),
        }
    }

    /// Parses and validates TOML text. Files named in it (TLS, secrets) are read too.
    pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
        let reading = raw::read(text).map_err(|e| ConfigErrors(vec![e]))?;
        let mut errors = reading.problems;
        let config = Validator {
            errors: &mut errors,
            lines: &reading.lines,
        }
        .config(reading.raw);
        // Top to bottom, as the operator will fix them; keys absent from the file last.
        errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// Pure: "8 KiB" (binary), "8 KB" (decimal), "8" (bytes).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1 << 10,
        "MB" => 1000 * 1000,
        "MiB" => 1 << 20,
        "GB" => 1000 * 1000 * 1000,
        "GiB" => 1 << 30,
        "TB" => 1000u64.pow(4),
        "TiB" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// Turns raw values into typed ones, recording each problem and substituting the default
/// so that validation carries on to the next key.
struct Validator<'a> {
    errors: &'a mut Vec<ConfigError>,
    /// The line of every key present in the file, so that each problem points at it.
    lines: &'a BTreeMap<String, usize>,
}

impl Validator<'_> {
    fn err(&mut self, key: &str, problem: impl Into<String>, fix: impl Into<String>) {
        self.errors.push(ConfigError {
            key: key.into(),
            line: self.lines.get(key).copied(),
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    fn addr(&mut self, key: &str, value: Option<String>, default: &str) -> SocketAddr {
        let text = value.unwrap_or_else(|| default.into());
        text.parse().unwrap_or_else(|_| {
            self.err(
                key,
                format!("{text:?} is not an address with a port"),
                format!("write it as IP:PORT, e.g. \"{default}\""),
            );
            default.parse().expect("default addresses are valid")
        })
    }

    /// A plain-HTTP listener carrying bearer tokens or internals: loopback only.
    fn loopback(&mut self, key: &str, value: Option<String>, default: &str) -> SocketAddr {
        let addr = self.addr(key, value, default);
        if !addr.ip().is_loopback() {
            self.err(
                key,
                format!("{addr} is not a loopback address, and this listener speaks plain HTTP"),
                "keep it on 127.0.0.1 or [::1]; to reach it from elsewhere put a TLS proxy in front",
            );
        }
        addr
    }

    /// 1 to 100,000: each stream is a connection and a descriptor.
    fn max_event_streams(&mut self, value: Option<usize>) -> usize {
        const DEFAULT: usize = 10_000;
        match value {
            None => DEFAULT,
            Some(n) if (1..=100_000).contains(&n) => n,
            Some(n) => {
                self.err(
                    "control.max_event_streams",
                    format!("{n} is out of range"),
                    "set from 1 to 100000 (the default, 10000, suits most deployments)",
                );
                DEFAULT
            }
        }
    }

    /// 1 s to 5 min: proxies commonly close a connection idle for a minute or more.
    fn event_heartbeat(&mut self, value: Option<String>) -> Duration {
        let every = self.duration("control.event_heartbeat", value, Duration::from_secs(15));
        if !(Duration::from_secs(1)..=Duration::from_secs(300)).contains(&every) {
            self.err(
                "control.event_heartbeat",
                format!("{} is out of range", humantime::format_duration(every)),
                "set from \"1s\" to \"5m\" (the default, \"15s\", suits most proxies)",
            );
            return Duration::from_secs(15);
        }
        every
    }

    /// 1 s to 1 day: retention is counted in days, and a run is a scan of the calls.
    fn retention_interval(&mut self, value: Option<String>) -> Duration {
        const DEFAULT: Duration = Duration::from_secs(600);
        let every = self.duration("control.retention_interval", value, DEFAULT);
        if !(Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&every) {
            self.err(
                "control.retention_interval",
                format!("{} is out of range", humantime::format_duration(every)),
                "set from \"1s\" to \"1d\" (the default is \"10m\")",
            );
            return DEFAULT;
        }
        every
    }

    /// An `http://` or `https://` origin, with no path: sign-in links are made from it.
    fn console_url(&mut self, value: Option<String>, listen: SocketAddr) -> String {
        let default = format!("http://{listen}");
        let Some(text) = value else { return default };
        let trimmed = text.trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"));
        match rest {
            Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', ' ', '@']) => {
                trimmed.to_string()
            }
            _ => {
                self.err(
                    "control.console_url",
                    format!("{text:?} is not an http:// or https:// origin"),
                    "write the address staff open, with no path, e.g. \"https://upgate-admin.example.com\"",
                );
                default
            }
        }
    }

    fn duration(&mut self, key: &str, value: Option<String>, default: Duration) -> Duration {
        let Some(text) = value else { return default };
        match humantime::parse_duration(&text) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                self.err(
                    key,
                    format!("{text:?} is not a positive duration"),
                    "write a duration with a unit, e.g. \"10s\", \"2m\", \"1h\"",
                );
                default
            }
        }
    }

    /// "8 KiB", "1 GiB", "500 MB" or a plain number of bytes.
    fn size(&mut self, key: &str, value: Option<String>, default: u64) -> u64 {
        let Some(text) = value else { return default };
        match parse_size(&text) {
            Some(n) => n,
            None => {
                self.err(
                    key,
                    format!("{text:?} is not a size"),
                    "write a number with a unit, e.g. \"8 KiB\", \"512 MiB\", \"1 GiB\"",
                );
                default
            }
        }
    }

    fn positive(&mut self, key: &str, value: Option<usize>, default: usize) -> usize {
        match value {
            Some(0) => {
                self.err(
                    key,
                    "must be at least 1",
                    format!("remove it for the default ({default}) or set a positive number"),
                );
                default
            }
            Some(n) => n,
            None => default,
        }
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let data_dir = PathBuf::from(raw.data_dir.unwrap_or_else(|| DEFAULT_DATA_DIR.into()));
        let gateway = self.gateway(raw.gateway);
        let control = ControlConfig {
            listen: self.loopback(
                "control.listen",
                raw.control.listen.clone(),
                DEFAULT_CONTROL_LISTEN,
            ),
            internal: self.internal_api(&raw.control),
            event_heartbeat: self.event_heartbeat(raw.control.event_heartbeat.clone()),
            max_event_streams: self.max_event_streams(raw.control.max_event_streams),
            retention_interval: self.retention_interval(raw.control.retention_interval.clone()),
            console_url: String::new(),
        };
        let control = ControlConfig {
            console_url: self.console_url(raw.control.console_url.clone(), control.listen),
            ..control
        };
        let storage = self.storage(raw.storage);
        let metrics = MetricsConfig {
            listen: self.loopback("metrics.listen", raw.metrics.listen, DEFAULT_METRICS_LISTEN),
        };
        let scanner = self.scanner(raw.scanner);
        let uploads = self.uploads(raw.uploads);
        let sms_limits = SmsLimits {
            per_number_per_hour: self.positive(
                "sms.max_per_number_per_hour",
                raw.sms.max_per_number_per_hour,
                5,
            ),
            per_account_per_hour: self.positive(
                "sms.max_per_account_per_hour",
                raw.sms.max_per_account_per_hour,
                500,
            ),
        };
        let sms = self.sms(raw.sms);
        let plans = self.plans(raw.plans);
        let log = self.log(raw.log);
        let webhooks = WebhooksConfig {
            allow_private_targets: raw.webhooks.allow_private_targets.unwrap_or(false),
            retry_for: self.duration(
                "webhooks.retry_for",
                raw.webhooks.retry_for.clone(),
                WebhooksConfig::default().retry_for,
            ),
        };
        for clash in listeners::clashes(&[
            ("gateway.listen", gateway.listen),
            ("control.listen", control.listen),
            ("metrics.listen", metrics.listen),
            ("control.internal_listen", control.internal.listen),
        ]) {
            // Blame the one the file sets: the other may be a default nobody wrote.
            let ((key, addr), (other_key, other)) =
                if !self.lines.contains_key(clash.second.0) && self.lines.contains_key(clash.first.0) {
                    (clash.first, clash.second)
                } else {
                    (clash.second, clash.first)
                };
            self.err(
                key,
                format!("{addr} collides with {other_key} ({other}): two listeners cannot share it"),
                format!("give {key} a port of its own"),
            );
        }
        Config {
            data_dir,
            gateway,
            control,
            storage,
            metrics,
            scanner,
            uploads,
            sms,
            sms_limits,
            plans,
            log,
            webhooks,
        }
    }

    fn uploads(&mut self, raw: raw::RawUploads) -> UploadsConfig {
        let key = "uploads.max_file_size";
        let mut max_file_bytes = self.size(key, raw.max_file_size, DEFAULT_MAX_FILE_BYTES);
        if !(MIN_FILE_BYTES_CEILING..=MAX_FILE_BYTES_CEILING).contains(&max_file_bytes) {
            self.err(
                key,
                format!("{max_file_bytes} bytes is outside what upgate supports"),
                "choose between \"64 KiB\" and \"64 GiB\"",
            );
            max_file_bytes = DEFAULT_MAX_FILE_BYTES;
        }
        UploadsConfig { max_file_bytes }
    }

    fn log(&mut self, raw: raw::RawLog) -> LogConfig {
        let format = match raw.format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                self.err(
                    "log.format",
                    format!("{other:?} is not a log format"),
                    "use \"text\" (for people) or \"json\" (one object per line, for collectors)",
                );
                LogFormat::Text
            }
        };
        LogConfig { format }
    }

    fn gateway(&mut self, raw: raw::RawGateway) -> GatewayConfig {
        let control = self.control_link(&raw);
        let listen = self.addr("gateway.listen", raw.listen, DEFAULT_GATEWAY_LISTEN);
        let public_url = match raw.public_url {
            Some(url) => {
                let trimmed = url.trim_end_matches('/').to_string();
                let host = trimmed.strip_prefix("https://");
                if host.is_none_or(|h| h.is_empty() || h.contains(['/', '?', '#', ' '])) {
                    self.err(
                        "gateway.public_url",
                        format!("{url:?} is not an https origin"),
                        "write the origin callers reach, e.g. \"https://upload.example.com\" (no path)",
                    );
                }
                trimmed
            }
            None if listen.ip().is_unspecified() => {
                self.err(
                    "gateway.public_url",
                    format!("required when gateway.listen is {listen}: callers cannot open https://{listen}"),
                    "set the origin callers reach, e.g. \"https://upload.example.com\"",
                );
                format!("https://{listen}")
            }
            None => format!("https://{listen}"),
        };
        let tls = self.tls_pair(
            "gateway.tls_cert_file",
            raw.tls_cert_file,
            "gateway.tls_key_file",
            raw.tls_key_file,
        );
        GatewayConfig {
            listen,
            public_url,
            tls,
            handshake_timeout: self.duration(
                "gateway.handshake_timeout",
                raw.handshake_timeout,
                Duration::from_secs(10),
            ),
            header_timeout: self.duration(
                "gateway.header_timeout",
                raw.header_timeout,
                Duration::from_secs(10),
            ),
            body_idle_timeout: self.duration(
                "gateway.body_idle_timeout",
                raw.body_idle_timeout,
                Duration::from_secs(30),
            ),
            max_connections: self.positive("gateway.max_connections", raw.max_connections, 1024),
            max_connections_per_ip: self.positive(
                "gateway.max_connections_per_ip",
                raw.max_connections_per_ip,
                64,
            ),
            link_failures_per_minute: self.positive(
                "gateway.link_failures_per_minute",
                raw.link_failures_per_minute,
                20,
            ),
            min_upload_rate: self.size(
                "gateway.min_upload_rate",
                raw.min_upload_rate.map(|r| r.trim_end_matches("/s").to_string()),
                8 * 1024,
            ),
            upload_rate_grace: self.duration(
                "gateway.upload_rate_grace",
                raw.upload_rate_grace,
                Duration::from_secs(30),
            ),
            min_free_disk: self.size("gateway.min_free_disk", raw.min_free_disk, 1 << 30),
            control,
        }
    }

    /// A certificate and its key, both or neither (neither: a self-signed certificate).
    fn tls_pair(
        &mut self,
        cert_key: &str,
        cert: Option<String>,
        key_key: &str,
        key: Option<String>,
    ) -> Option<TlsFiles> {
        match (cert, key) {
            (Some(cert), Some(key)) => {
                let files = TlsFiles {
                    cert_file: cert.into(),
                    key_file: key.into(),
                };
                for problem in tls::check(&files, cert_key, key_key) {
                    self.err(&problem.key, problem.problem, problem.fix);
                }
                Some(files)
            }
            (None, None) => None,
            (Some(_), None) => {
                self.err(
                    key_key,
                    "a certificate is set without its key",
                    format!("set {key_key} too, or neither for a self-signed certificate"),
                );
                None
            }
            (None, Some(_)) => {
                self.err(
                    cert_key,
                    "a key is set without its certificate",
                    format!("set {cert_key} too, or neither for a self-signed certificate"),
                );
                None
            }
        }
    }

    fn scanner(&mut self, raw: raw::RawScanner) -> ScannerConfig {
        let clamd = raw.clamd.and_then(|text| {
            if let Some(path) = text.strip_prefix("unix:") {
                Some(ClamdAddr::Unix(path.into()))
            } else if let Some(addr) = text.strip_prefix("tcp:").and_then(|a| a.parse().ok()) {
                Some(ClamdAddr::Tcp(addr))
            } else {
                self.err(
                    "scanner.clamd",
                    format!("{text:?} is neither unix:PATH nor tcp:IP:PORT"),
                    "write e.g. \"unix:/run/clamav/clamd.ctl\" or \"tcp:127.0.0.1:3310\"",
                );
                None
            }
        });
        let on_unavailable = match raw.on_unavailable.as_deref() {
            None | Some("fail_closed") => OnScannerUnavailable::FailClosed,
            Some("quarantine") if clamd.is_none() => {
                self.err(
                    "scanner.on_unavailable",
                    "\"quarantine\" needs a scanner: scanning is off (no scanner.clamd), so nothing would ever scan the files it holds",
                    "set scanner.clamd, or leave on_unavailable at \"fail_closed\"",
                );
                OnScannerUnavailable::FailClosed
            }
            Some("quarantine") => OnScannerUnavailable::Quarantine,
            Some(other) => {
                self.err(
                    "scanner.on_unavailable",
                    format!("{other:?} is not a choice"),
                    "use \"fail_closed\" (the default) or \"quarantine\"",
                );
                OnScannerUnavailable::FailClosed
            }
        };
        ScannerConfig {
            clamd,
            timeout: self.duration("scanner.timeout", raw.timeout, Duration::from_secs(120)),
            concurrency: self.positive("scanner.concurrency", raw.concurrency, 4),
            on_unavailable,
        }
    }

    fn sms(&mut self, raw: raw::RawSms) -> SmsConfig {
        match raw.provider.as_deref() {
            None | Some("outbox") => SmsConfig::Outbox,
            Some("twilio") => {
                let t = raw.twilio;
                let mut required = |key: &str, v: Option<String>, fix: &str| {
                    v.filter(|s| !s.trim().is_empty()).unwrap_or_else(|| {
                        self.err(key, "required when sms.provider is \"twilio\"", fix);
                        String::new()
                    })
                };
                let account_sid = required(
                    "sms.twilio.account_sid",
                    t.account_sid,
                    "set your Twilio Account SID (AC...)",
                );
                let from = required(
                    "sms.twilio.from",
                    t.from,
                    "set the sending number in E.164, e.g. \"+15005550006\"",
                );
                let token_file = required(
                    "sms.twilio.auth_token_file",
                    t.auth_token_file,
                    "put the auth token in a file readable only by upgate and name it here",
                );
                for problem in [twilio::check_account_sid(&account_sid), twilio::check_from(&from)]
                    .into_iter()
                    .flatten()
                {
                    self.err(&problem.key, problem.problem, problem.fix);
                }
                let auth_token = if token_file.is_empty() {
                    String::new()
                } else {
                    read_secret_file(Path::new(&token_file)).unwrap_or_else(|problem| {
                        self.err(
                            "sms.twilio.auth_token_file",
                            problem,
                            "create the file with mode 0600 holding only the token",
                        );
                        String::new()
                    })
                };
                let api_base = t
                    .api_base
                    .unwrap_or_else(|| DEFAULT_TWILIO_API_BASE.into())
                    .trim_end_matches('/')
                    .to_string();
                if !base_url_is_safe(&api_base) {
                    self.err(
                        "sms.twilio.api_base",
                        format!("{api_base:?} is not https"),
                        "use https (plain http is accepted only for loopback test servers)",
                    );
                }
                SmsConfig::Twilio(TwilioConfig {
                    account_sid,
                    auth_token,
                    from,
                    api_base,
                })
            }
            Some("webhook") => self.sms_webhook(raw.webhook),
            Some("vonage") => self.vonage(raw.vonage),
            Some(other) => {
                self.err(
                    "sms.provider",
                    format!("{other:?} is not a known provider"),
                    "use \"outbox\", \"twilio\", \"vonage\" or \"webhook\"",
                );
                SmsConfig::Outbox
            }
        }
    }

    fn vonage(&mut self, raw: raw::RawVonage) -> SmsConfig {
        let mut required = |key: &str, v: Option<String>, fix: &str| {
            v.filter(|s| !s.trim().is_empty()).unwrap_or_else(|| {
                self.err(key, "required when sms.provider is \"vonage\"", fix);
                String::new()
            })
        };
        let api_key = required(
            "sms.vonage.api_key",
            raw.api_key,
            "copy the API key from the Vonage dashboard",
        );
        let from = required(
            "sms.vonage.from",
            raw.from,
            "set the sending number in E.164, e.g. \"+447700900001\", or a sender id",
        );
        let secret_fix = "create the file with mode 0600 holding only the secret";
        let secret_path = required("sms.vonage.api_secret_file", raw.api_secret_file, secret_fix);
        let signature_path = required(
            "sms.vonage.signature_secret_file",
            raw.signature_secret_file,
            "put the account's signature secret (Dashboard, API settings) in a file, mode 0600",
        );
        let mut read = |key: &str, path: String| {
            if path.is_empty() {
                return String::new();
            }
            read_secret_file(Path::new(&path)).unwrap_or_else(|problem| {
                self.err(key, problem, secret_fix);
                String::new()
            })
        };
        let api_secret = read("sms.vonage.api_secret_file", secret_path);
        let signature_secret = read("sms.vonage.signature_secret_file", signature_path);
        if let Some(problem) = twilio::check_from(&from) {
            self.err("sms.vonage.from", problem.problem, problem.fix);
        }
        let api_base = raw
            .api_base
            .unwrap_or_else(|| DEFAULT_VONAGE_API_BASE.into())
            .trim_end_matches('/')
            .to_string();
        if !base_url_is_safe(&api_base) {
            self.err(
                "sms.vonage.api_base",
                format!("{api_base:?} is not https"),
                "use https (plain http is accepted only for loopback test servers)",
            );
        }
        SmsConfig::Vonage(VonageConfig {
            api_key,
            api_secret,
            signature_secret,
            from,
            api_base,
        })
    }

    fn sms_webhook(&mut self, raw: raw::RawSmsWebhook) -> SmsConfig {
        let url = raw.url.unwrap_or_default().trim_end_matches('/').to_string();
        if url.is_empty() {
            self.err(
                "sms.webhook.url",
                "required when sms.provider is \"webhook\"",
                "set the URL your SMS gateway takes texts at",
            );
        } else if !base_url_is_safe(&url) {
            self.err(
                "sms.webhook.url",
                format!("{url:?} is not https"),
                "use https (plain http is accepted only for loopback)",
            );
        }
        let fix =
            "create the file with mode 0600 holding one line: whsec_ and the base64 of 24 to 64 random bytes";
        let secret = match raw.secret_file {
            None => {
                self.err(
                    "sms.webhook.secret_file",
                    "required when sms.provider is \"webhook\"",
                    fix,
                );
                String::new()
            }
            Some(path) => match read_secret_file(Path::new(&path)) {
                Ok(secret) if secret_is_standard(&secret) => secret,
                Ok(_) => {
                    self.err(
                        "sms.webhook.secret_file",
                        "the file does not hold a whsec_ secret",
                        fix,
                    );
                    String::new()
                }
                Err(problem) => {
                    self.err("sms.webhook.secret_file", problem, fix);
                    String::new()
                }
            },
        };
        SmsConfig::Webhook(SmsWebhookConfig { url, secret })
    }

    fn plans(&mut self, raw: Option<BTreeMap<String, raw::RawPlan>>) -> BTreeMap<String, Plan> {
        let Some(raw) = raw else {
            return BTreeMap::from([
                ("starter".to_string(), Plan { sms: false }),
                ("pro".to_string(), Plan { sms: true }),
            ]);
        };
        if raw.is_empty() {
            self.err(
                "plans",
                "no plan is defined",
                "define at least one, e.g. [plans.pro] sms = true",
            );
        }
        raw.into_iter()
            .map(|(name, p)| {
                if !valid_plan_name(&name) {
                    self.err(
                        &format!("plans.{}", raw::dotted_part(&name)),
                        "plan names use a-z, 0-9, - and _ only (1-32)",
                        "rename the plan",
                    );
                }
                (
                    name,
                    Plan {
                        sms: p.sms.unwrap_or(false),
                    },
                )
            })
            .collect()
    }
}

/// The dotted key (table + key) at byte `offset`, so that a syntax error names the key the
/// operator must fix rather than a byte position.
fn locate(text: &str, offset: usize) -> String {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line_no = before.matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().to_string())
        .unwrap_or_default();
    match (table, key.is_empty()) {
        (Some(t), false) => format!("{t}.{key}"),
        (Some(t), true) => t,
        (None, false) => key,
        (None, true) => "(file)".into(),
    }
}

/// A problem found by one of the checking modules, on a key of their own.
struct Problem {
    key: String,
    problem: String,
    fix: String,
}

/// https anywhere; plain http only to a loopback host (test servers), judged on the parsed
/// host, not a prefix (`http://localhost.evil.example` is not loopback).
/// `whsec_` and the base64 of 24 to 64 bytes, as Standard Webhooks secrets are.
fn secret_is_standard(secret: &str) -> bool {
    use base64::Engine;
    secret
        .strip_prefix("whsec_")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .is_some_and(|key| (24..=64).contains(&key.len()))
}

pub(crate) fn base_url_is_safe(url: &str) -> bool {
    let (scheme, rest) = match url.split_once("://") {
        Some(parts) => parts,
        None => return false,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                authority
            }
        }),
    };
    match scheme {
        "https" => true,
        "http" => host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()),
        _ => false,
    }
}

fn valid_plan_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests;
