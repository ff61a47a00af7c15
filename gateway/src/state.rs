//! Everything a gateway request needs, injected so tests can hand in their own parts.

use std::path::PathBuf;
use std::sync::Arc;

use crate::control_link::{ControlError, ControlLink, LinkView};
use crate::keys::KeyHolder;
use crate::metrics::Metrics;
use crate::ratelimit::FailureLimiter;
use crate::scanner::{Scanner, ScannerStatus};
use crate::storage::ObjectStore;
use crate::token::LinkId;

pub struct Gateway {
    /// Replaced whole when the control plane rotates a key.
    pub keys: KeyHolder,
    pub control: Arc<dyn ControlLink>,
    pub store: Arc<dyn ObjectStore>,
    pub scanner: Arc<Scanner>,
    pub metrics: Metrics,
    pub spool_dir: PathBuf,
    /// How request bodies must arrive: pauses, minimum rate, frame sizes.
    pub pace: crate::body::Pace,
    /// Refuses link requests from an address that keeps failing the token check.
    pub link_failures: FailureLimiter,
    /// Free space where uploads are spooled and stored.
    pub disk: crate::disk::DiskWatch,
    /// Set when shutdown begins: readiness answers "not ready" at once, new uploads are turned
    /// away, uploads in flight finish.
    pub draining: std::sync::atomic::AtomicBool,
    /// Bounds image decodes at once (see `upload::Limits::decoders`).
    pub decoders: Arc<tokio::sync::Semaphore>,
    /// Whether the control plane answered lately (always, in one process).
    pub control_health: ControlHealth,
    /// Resumable uploads in progress on this gateway.
    pub tus: crate::tus::TusUploads,
    /// The deployment's largest file (`uploads.max_file_size`): no link takes more here,
    /// whatever its settings say.
    pub max_file_bytes: u64,
    /// Links whose opening this gateway has reported: the control plane is told once per
    /// link, not on every page view.
    pub opened: OpenedLinks,
    /// `scanner.on_unavailable = "quarantine"` (see `upload::Sinks`).
    pub quarantine: bool,
}

/// A bounded memory of links already reported as opened. Forgetting (when full) only
/// means one more report, which the control plane ignores after the first.
#[derive(Default)]
pub struct OpenedLinks(std::sync::Mutex<std::collections::HashSet<crate::token::LinkId>>);

impl OpenedLinks {
    const MAX: usize = 100_000;

    /// Whether `id` is news (and remembers it).
    pub fn first(&self, id: crate::token::LinkId) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.len() >= Self::MAX {
            seen.clear();
        }
        seen.insert(id)
    }
}

/// What the gateway last heard from the control plane: set by the key refresher in split
/// mode, read by readiness. Absent a problem it is up.
#[derive(Default)]
pub struct ControlHealth(std::sync::Mutex<Option<String>>);

impl ControlHealth {
    pub fn up(&self) {
        *self.0.lock().expect("health lock") = None;
    }

    pub fn down(&self, why: String) {
        *self.0.lock().expect("health lock") = Some(why);
    }

    pub fn problem(&self) -> Option<String> {
        self.0.lock().expect("health lock").clone()
    }
}

impl Gateway {
    /// The link as the control plane sees it, its file limit held to this gateway's ceiling
    /// (a gateway run apart may be configured below the control plane).
    pub async fn link(&self, id: &LinkId) -> Result<LinkView, ControlError> {
        let mut view = self.control.link(id).await?;
        view.max_file_bytes = view.max_file_bytes.min(self.max_file_bytes);
        Ok(view)
    }

    /// Counts a stored upload: its outcome, its size, and how long it took since `started`.
    pub fn count_stored(&self, size: u64, started: std::time::Instant) {
        let m = &self.metrics;
        m.uploads.with_label_values(&["stored"]).inc();
        m.stored_bytes.inc_by(size);
        m.upload_bytes.observe(size as f64);
        m.upload_seconds.observe(started.elapsed().as_secs_f64());
    }

    /// Where a received file goes: the scanner, storage, and its record.
    pub fn sinks(&self) -> crate::upload::Sinks<'_> {
        crate::upload::Sinks {
            scanner: &self.scanner,
            store: &*self.store,
            control: &*self.control,
            quarantine: self.quarantine,
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Readiness for `/readyz`: storage writable and the scanner trusted (or deliberately
    /// off, which is ready but said loudly). Reads state only: the scanner's watch keeps it
    /// current, so nobody on the internet can make us hammer clamd by asking.
    pub async fn readiness(&self) -> (bool, serde_json::Value) {
        if self.is_draining() {
            return (false, serde_json::json!({"ready": false, "draining": true}));
        }
        let storage = self.store.check().await;
        let (scanner_ok, scanner_json) = match self.scanner.status() {
            ScannerStatus::Off => (
                true,
                serde_json::json!({"status": "off", "warning": "SCANNING IS OFF: no clamd is configured, uploads are stored unscanned"}),
            ),
            ScannerStatus::Up(proof) => (
                true,
                serde_json::json!({"status": "up", "engine": proof.engine(), "depth": proof.depth(), "deepening": proof.deepening(), "warnings": proof.warnings()}),
            ),
            // With quarantine chosen, uploads go on while clamd is down (kept unscanned, for
            // reviewers only): taking the gateway out of its load balancer would refuse them.
            ScannerStatus::Down(why) if self.quarantine => (
                true,
                serde_json::json!({"status": "down", "detail": why, "uploads": "quarantined"}),
            ),
            ScannerStatus::Down(why) => (false, serde_json::json!({"status": "down", "detail": why})),
        };
        let storage_json = match &storage {
            Ok(()) => serde_json::json!({"status": "up"}),
            Err(e) => serde_json::json!({"status": "down", "detail": e.to_string()}),
        };
        let (disk_ok, disk_json) = match self.disk.room() {
            Ok(free) => (true, serde_json::json!({"status": "ok", "free_bytes": free})),
            Err(low) => (
                false,
                serde_json::json!({"status": "low", "free_bytes": low.free, "min_free_bytes": low.min_free}),
            ),
        };
        let control = self.control_health.problem();
        let control_json = match &control {
            None => serde_json::json!({"status": "up"}),
            Some(why) => serde_json::json!({"status": "down", "detail": why}),
        };
        let ready = scanner_ok && storage.is_ok() && disk_ok && control.is_none();
        (
            ready,
            serde_json::json!({"ready": ready, "scanner": scanner_json, "storage": storage_json, "disk": disk_json, "control": control_json}),
        )
    }
}

#[cfg(test)]
mod opened_tests {
    use super::OpenedLinks;
    use crate::token::LinkId;

    #[test]
    fn a_link_s_opening_is_news_once() {
        let opened = OpenedLinks::default();
        let (a, b) = (LinkId([1; 12]), LinkId([2; 12]));
        assert!(opened.first(a));
        assert!(!opened.first(a), "the second view is not reported");
        assert!(opened.first(b));
    }
}
