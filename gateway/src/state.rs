//! Everything a gateway request needs, injected so tests can hand in their own parts.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::control_link::ControlLink;
use crate::keys::GatewayKeys;
use crate::metrics::Metrics;
use crate::ratelimit::FailureLimiter;
use crate::storage::ObjectStore;
use crate::upload::{Scanner, ScannerStatus};

pub struct Gateway {
    pub keys: GatewayKeys,
    pub control: Arc<dyn ControlLink>,
    pub store: Arc<dyn ObjectStore>,
    pub scanner: Arc<Scanner>,
    pub metrics: Metrics,
    pub spool_dir: PathBuf,
    pub body_idle_timeout: Duration,
    /// Refuses link requests from an address that keeps failing the token check.
    pub link_failures: FailureLimiter,
    /// Bounds image decodes at once (see `upload::Limits::decoders`).
    pub decoders: Arc<tokio::sync::Semaphore>,
}

impl Gateway {
    /// Readiness for `/readyz`: storage writable and the scanner up (or deliberately off,
    /// which is ready but said loudly). `probe` asks a scanner that is down again; the public
    /// listener never probes, so nobody on the internet can make us hammer clamd.
    pub async fn readiness(&self, probe: bool) -> (bool, serde_json::Value) {
        let scanner = match self.scanner.status() {
            ScannerStatus::Down(_) if probe => self.scanner.check().await,
            status => status,
        };
        let storage = self.store.check().await;
        let (scanner_ok, scanner_json) = match &scanner {
            ScannerStatus::Off => (
                true,
                serde_json::json!({"status": "off", "warning": "SCANNING IS OFF: no clamd is configured, uploads are stored unscanned"}),
            ),
            ScannerStatus::Up(engine) => (true, serde_json::json!({"status": "up", "engine": engine})),
            ScannerStatus::Down(why) => (false, serde_json::json!({"status": "down", "detail": why})),
        };
        let storage_json = match &storage {
            Ok(()) => serde_json::json!({"status": "up"}),
            Err(e) => serde_json::json!({"status": "down", "detail": e.to_string()}),
        };
        let ready = scanner_ok && storage.is_ok();
        (
            ready,
            serde_json::json!({"ready": ready, "scanner": scanner_json, "storage": storage_json}),
        )
    }
}
