//! Prometheus metrics of both planes. Labels are fixed small sets (outcomes, verdicts, route
//! templates): never a token, a link id, a name or a number. Every labelled series is made
//! at start, at zero, so that rates and alerts work from the first scrape. The `process_*`
//! metrics come from the prometheus crate's collector, in a registry of their own because
//! they carry no `upgate_` prefix.

use prometheus::process_collector::ProcessCollector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// `process_*`: CPU, memory, open files, start time.
    process: Registry,
    /// Upload answers by outcome code (`stored`, `file_too_large`, `infected`, ...).
    pub uploads: IntCounterVec,
    /// Stored uploads: from the request's start to the answer (mostly the caller's network).
    pub upload_seconds: Histogram,
    /// Stored uploads: their plaintext size.
    pub upload_bytes: Histogram,
    /// Plaintext bytes of stored files.
    pub stored_bytes: IntCounter,
    /// Scans by verdict (`clean`, `infected`, `not_scanned`).
    pub scans: IntCounterVec,
    pub scan_seconds: Histogram,
    /// Scans waiting for one of the scanner's slots (`scanner.concurrency`) now.
    pub scanner_queue: IntGauge,
    /// Checks of a clamd that answered but did not detect a canary (EICAR, upgate's own
    /// signature): a database update gone wrong.
    pub scanner_canary_failures: IntCounter,
    /// Link checks by result (`ok`, `invalid`, `expired`, `rate_limited`): a rise in
    /// `invalid` is someone guessing.
    pub link_checks: IntCounterVec,
    pub connections: IntGauge,
    /// Connections refused by a cap (`global`, `per_ip`) or cut by a timeout (`handshake`).
    pub connections_refused: IntCounterVec,
    /// 1 when uploads are scanned, 0 when scanning is off or the scanner is down.
    pub scanner_up: IntGauge,
    /// Free bytes where uploads are spooled, as of the last scrape.
    pub disk_free: IntGauge,
    /// When the public TLS certificate expires (Unix seconds).
    pub tls_expiry: IntGauge,
    /// Link SMS by result (`sent`, `failed`): failures mean callers are waiting for a text.
    pub sms: IntCounterVec,
    /// File downloads by staff.
    pub downloads: IntCounter,
    /// Control-API requests by route template and status, and their durations by route.
    pub control_requests: IntCounterVec,
    pub control_request_seconds: HistogramVec,
    /// Control-API requests refused with 401, 403 or 404 under `/v1`, by route template and
    /// status: a rise is a lost or stolen token being tried, or someone walking ids.
    pub control_denied: IntCounterVec,
    /// Internal-API calls refused for a missing, wrong or revoked gateway credential.
    pub internal_api_refused: IntCounter,
    /// Event streams (Server-Sent Events) open on the control API now.
    pub event_streams: IntGauge,
    /// Webhook attempts by outcome (`delivered`, `failed`, `dead`).
    pub webhooks: IntCounterVec,
    /// SMS delivery reports by result (`applied`, `stale`, `forged`, `unknown`): `forged`
    /// is someone posting reports without the provider's secret.
    pub sms_reports: IntCounterVec,
    /// Links by how far they got (`sent`, `opened`, `file_stored`): the conversion funnel,
    /// deployment-wide (per assistant it is in the follow-up report, not in a label).
    pub link_funnel: IntCounterVec,
    /// Files by what quarantine did with them: `held` (came in while no trusted clamd could
    /// scan), then `released`, `infected` or `unscannable` when the rescan decided.
    pub quarantine: IntCounterVec,
    /// Files waiting in quarantine now (on the control plane that records them).
    pub quarantine_held: IntGauge,
    /// Files the retention worker deleted because their assistant's retention passed.
    pub retention_deleted: IntCounter,
    /// Console sign-ins refused for a wrong password or code (rate-limited tries are not
    /// counted: they were never checked).
    pub console_sign_in_failures: IntCounter,
}

/// Statuses the control API's request counts start with, per route.
const CONTROL_STATUSES: [&str; 8] = ["200", "400", "401", "403", "404", "429", "500", "503"];

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("upgate".into()), None).expect("valid prefix");
        let register = |m: Box<dyn prometheus::core::Collector>| registry.register(m).expect("unique metric");
        // A labelled counter with each of `values` made at zero.
        let counter_vec = |name: &str, help: &str, label: &str, values: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
            for v in values {
                c.with_label_values(&[v]);
            }
            register(Box::new(c.clone()));
            c
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            register(Box::new(c.clone()));
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            register(Box::new(g.clone()));
            g
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid");
            register(Box::new(h.clone()));
            h
        };
        let two_labels = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            register(Box::new(c.clone()));
            c
        };

        let build_info = IntGaugeVec::new(
            Opts::new("build_info", "The running upgate's version (always 1)"),
            &["version"],
        )
        .expect("valid metric");
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        register(Box::new(build_info));

        let process = Registry::new();
        process
            .register(Box::new(ProcessCollector::for_self()))
            .expect("unique metric");

        let control_request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "control_request_seconds",
                "Control-API request time to the answer's head, by route template",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route"],
        )
        .expect("valid metric");
        register(Box::new(control_request_seconds.clone()));

        Metrics {
            uploads: counter_vec(
                "uploads_total",
                "Upload requests by outcome",
                "outcome",
                crate::upload::OUTCOMES,
            ),
            upload_seconds: histogram(
                "upload_seconds",
                "Stored uploads, from the request's start to the answer",
                vec![
                    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
                ],
            ),
            upload_bytes: histogram(
                "upload_bytes",
                "Stored uploads by plaintext size",
                prometheus::exponential_buckets(16.0 * 1024.0, 4.0, 10).expect("valid buckets"),
            ),
            stored_bytes: counter("stored_bytes_total", "Plaintext bytes of stored files"),
            scans: counter_vec(
                "scans_total",
                "Scans by verdict",
                "verdict",
                &["clean", "infected", "not_scanned"],
            ),
            scan_seconds: histogram(
                "scan_seconds",
                "Time clamd took per file",
                vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
            ),
            scanner_queue: gauge("scanner_queue", "Scans waiting for a scanner slot"),
            scanner_canary_failures: counter(
                "scanner_canary_failures_total",
                "Checks of an answering clamd that did not detect a canary",
            ),
            link_checks: counter_vec(
                "link_checks_total",
                "Link token checks by result",
                "result",
                &["ok", "invalid", "expired", "rate_limited"],
            ),
            connections: gauge("gateway_connections", "Open gateway connections"),
            connections_refused: counter_vec(
                "connections_refused_total",
                "Connections refused or cut, by reason",
                "reason",
                &["global", "per_ip", "handshake"],
            ),
            scanner_up: gauge("scanner_up", "1 when uploads are being scanned"),
            disk_free: gauge("disk_free_bytes", "Free bytes where uploads are spooled"),
            tls_expiry: gauge(
                "tls_certificate_expiry_timestamp_seconds",
                "When the public TLS certificate expires",
            ),
            sms: counter_vec("sms_total", "Link SMS by result", "status", &["sent", "failed"]),
            downloads: counter("downloads_total", "File downloads by staff"),
            control_requests: two_labels(
                "control_requests_total",
                "Control-API requests by route template and status",
                &["route", "status"],
            ),
            control_request_seconds,
            control_denied: two_labels(
                "control_denied_total",
                "Control API requests refused (401, 403, 404) by route template and status",
                &["route", "status"],
            ),
            internal_api_refused: counter(
                "internal_api_refused_total",
                "Internal API calls refused for their gateway credential",
            ),
            event_streams: gauge("event_streams", "Event streams open on the control API"),
            webhooks: counter_vec(
                "webhook_attempts_total",
                "Webhook attempts by outcome",
                "outcome",
                &["delivered", "failed", "dead"],
            ),
            sms_reports: counter_vec(
                "sms_reports_total",
                "SMS delivery reports by result",
                "result",
                &["applied", "stale", "forged", "unknown"],
            ),
            link_funnel: counter_vec(
                "link_funnel_total",
                "Links texted, opened, and given a file",
                "stage",
                &["sent", "opened", "file_stored"],
            ),
            quarantine: counter_vec(
                "quarantine_total",
                "Files held in quarantine, and the rescan's verdicts on them",
                "outcome",
                &["held", "released", "infected", "unscannable"],
            ),
            quarantine_held: gauge("quarantine_held", "Files waiting in quarantine"),
            retention_deleted: counter(
                "retention_deleted_total",
                "Files deleted because their retention passed",
            ),
            console_sign_in_failures: counter(
                "console_sign_in_failures_total",
                "Console sign-ins refused for a wrong password or code",
            ),
            registry,
            process,
        }
    }

    /// Makes the control API's series for each route template at zero: every status it
    /// starts with, and the denials.
    pub fn control_routes(&self, templates: &[&str]) {
        for route in templates {
            self.control_request_seconds.with_label_values(&[route]);
            for status in CONTROL_STATUSES {
                self.control_requests.with_label_values(&[route, status]);
            }
            for status in ["401", "403", "404"] {
                self.control_denied.with_label_values(&[route, status]);
            }
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&families, &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
