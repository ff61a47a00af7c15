//! Prometheus metrics of the data plane. Labels are fixed small sets (outcomes, verdicts):
//! never a token, a link id, a name or a number.

use prometheus::{Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Upload answers by outcome code (`stored`, `file_too_large`, `infected`, ...).
    pub uploads: IntCounterVec,
    /// Plaintext bytes of stored files.
    pub stored_bytes: IntCounter,
    /// Scans by verdict (`clean`, `infected`, `not_scanned`).
    pub scans: IntCounterVec,
    pub scan_seconds: Histogram,
    /// Link checks by result (`ok`, `invalid`, `expired`): a rise in `invalid` is someone guessing.
    pub link_checks: IntCounterVec,
    pub connections: IntGauge,
    /// Connections refused by a cap (`global`, `per_ip`) or cut by a timeout (`handshake`).
    pub connections_refused: IntCounterVec,
    /// 1 when uploads are scanned, 0 when scanning is off or the scanner is down.
    pub scanner_up: IntGauge,
    /// Link SMS by result (`sent`, `failed`): failures mean callers are waiting for a text.
    pub sms: IntCounterVec,
    /// File downloads by staff.
    pub downloads: IntCounter,
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
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("upgate".into()), None).expect("valid prefix");
        let counter_vec = |name: &str, help: &str, label: &str| {
            let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let uploads = counter_vec("uploads_total", "Upload requests by outcome", "outcome");
        let scans = counter_vec("scans_total", "Scans by verdict", "verdict");
        let link_checks = counter_vec("link_checks_total", "Link token checks by result", "result");
        let sms = counter_vec("sms_total", "Link SMS by result", "status");
        let webhooks = counter_vec("webhook_attempts_total", "Webhook attempts by outcome", "outcome");
        let sms_reports = counter_vec("sms_reports_total", "SMS delivery reports by result", "result");
        let link_funnel = counter_vec(
            "link_funnel_total",
            "Links texted, opened, and given a file",
            "stage",
        );
        for stage in ["sent", "opened", "file_stored"] {
            link_funnel.with_label_values(&[stage]);
        }
        let quarantine = counter_vec(
            "quarantine_total",
            "Files held in quarantine, and the rescan's verdicts on them",
            "outcome",
        );
        for outcome in ["held", "released", "infected", "unscannable"] {
            quarantine.with_label_values(&[outcome]);
        }
        let connections_refused = counter_vec(
            "connections_refused_total",
            "Connections refused or cut, by reason",
            "reason",
        );
        let control_denied = IntCounterVec::new(
            Opts::new(
                "control_denied_total",
                "Control API requests refused (401, 403, 404) by route template and status",
            ),
            &["route", "status"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(control_denied.clone()))
            .expect("unique metric");
        let stored_bytes =
            IntCounter::new("stored_bytes_total", "Plaintext bytes of stored files").expect("valid");
        let scan_seconds = Histogram::with_opts(
            HistogramOpts::new("scan_seconds", "Time clamd took per file")
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
        )
        .expect("valid");
        let connections = IntGauge::new("gateway_connections", "Open gateway connections").expect("valid");
        let scanner_up = IntGauge::new("scanner_up", "1 when uploads are being scanned").expect("valid");
        let downloads = IntCounter::new("downloads_total", "File downloads by staff").expect("valid");
        let internal_api_refused = IntCounter::new(
            "internal_api_refused_total",
            "Internal API calls refused for their gateway credential",
        )
        .expect("valid");
        let event_streams =
            IntGauge::new("event_streams", "Event streams open on the control API").expect("valid");
        for m in [
            Box::new(stored_bytes.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(event_streams.clone()),
            Box::new(scan_seconds.clone()),
            Box::new(connections.clone()),
            Box::new(scanner_up.clone()),
            Box::new(downloads.clone()),
            Box::new(internal_api_refused.clone()),
        ] {
            registry.register(m).expect("unique metric");
        }
        Metrics {
            registry,
            uploads,
            stored_bytes,
            scans,
            scan_seconds,
            link_checks,
            connections,
            connections_refused,
            scanner_up,
            sms,
            downloads,
            control_denied,
            internal_api_refused,
            event_streams,
            webhooks,
            sms_reports,
            link_funnel,
            quarantine,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
