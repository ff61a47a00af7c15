//! The virus scanner as a long-lived dependency whose health is state, not a moment. A clamd
//! is trusted only after it has proved, since it last came up, that it detects (the canary)
//! and that it scans as deep as our largest file (the depth canary); a session held open to
//! it (the tether, see `watch`) tells us the moment that process goes away. Until a clamd has
//! proved itself, every upload is "not scanned", never clean.

mod canary;
mod health;
mod tmpdir;
mod watch;

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use upgate_config::ScannerConfig;

pub use canary::{eicar, DepthCanary, DEPTH_MARKER};
pub use health::{Proof, ScannerStatus};

use crate::clamd::{Clamd, Verdict};
use crate::metrics::Metrics;
use health::Health;

/// Until the first proof finishes.
const NOT_PROVEN_YET: &str = "clamd has not proved itself yet";

/// How deep the trusted clamd has proved it scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    /// Files up to this many bytes are scanned whole.
    pub bytes: u64,
    /// Deeper proofs are still running toward the ceiling: this will grow.
    pub deepening: bool,
}

/// What scanning one file came to.
#[derive(Debug)]
pub enum Scan {
    /// Scanning is off by configuration: stored as not scanned, said loudly elsewhere.
    Off,
    /// A proven clamd read the whole file and found nothing.
    Clean(Arc<Proof>),
    /// A proven clamd found a signature.
    Infected { signature: String, proof: Arc<Proof> },
    /// A proven clamd read the file but gave no verdict on it (a limit): never kept.
    NotScanned { reason: String, proof: Arc<Proof> },
    /// No trusted clamd could be asked, or it changed during the scan: the caller retries.
    Unavailable(String),
}

/// One scan in the queue for a slot, counted while it waits (and not after, however its
/// wait ends: the future can be dropped mid-wait).
struct Waiting<'a>(&'a prometheus::IntGauge);

impl<'a> Waiting<'a> {
    fn new(gauge: &'a prometheus::IntGauge) -> Waiting<'a> {
        gauge.inc();
        Waiting(gauge)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The scan could not read the file it was given (our own spool): our fault, not clamd's.
#[derive(Debug, thiserror::Error)]
#[error("spool unreadable: {0}")]
pub struct SpoolUnreadable(pub String);

pub struct Scanner {
    clamd: Option<Clamd>,
    permits: Arc<Semaphore>,
    health: Arc<Health>,
    metrics: Metrics,
    /// The largest file any link may accept: the depth clamd must prove.
    cap: u64,
}

impl Scanner {
    /// A scanner that trusts nothing yet; `start` begins proving clamd.
    pub fn new(config: &ScannerConfig, cap: u64, metrics: Metrics) -> Scanner {
        let clamd = config.clamd.clone().map(|addr| Clamd::new(addr, config.timeout));
        let initial = if clamd.is_some() {
            ScannerStatus::Down(NOT_PROVEN_YET.into())
        } else {
            ScannerStatus::Off
        };
        Scanner {
            clamd,
            permits: Arc::new(Semaphore::new(config.concurrency)),
            health: Arc::new(Health::new(initial, metrics.clone())),
            metrics,
            cap,
        }
    }

    /// Starts the watch (a thread of its own: it blocks on clamd's socket) and waits up to
    /// `wait` for its first answer, so the start-up banner can tell the truth.
    pub async fn start(&self, wait: Duration) -> ScannerStatus {
        let Some(clamd) = self.clamd.clone() else {
            return ScannerStatus::Off;
        };
        let health = Arc::downgrade(&self.health);
        let cap = self.cap;
        let mut status = self.health.subscribe();
        std::thread::Builder::new()
            .name("scanner-watch".into())
            .spawn(move || watch::run(clamd, health, cap))
            .expect("spawn the scanner watch");
        let first = status.wait_for(|s| !matches!(s, ScannerStatus::Down(w) if w == NOT_PROVEN_YET));
        let _ = tokio::time::timeout(wait, first).await;
        self.status()
    }

    pub fn status(&self) -> ScannerStatus {
        self.health.status()
    }

    /// Changes of status as they happen (a clamd proven again, one gone).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<ScannerStatus> {
        self.health.subscribe()
    }

    /// Files up to this many bytes can be scanned whole right now; `None` when no clamd has
    /// proved anything (scanning off, or down).
    pub fn proven_depth(&self) -> Option<Depth> {
        match self.status() {
            ScannerStatus::Up(proof) => Some(Depth {
                bytes: proof.depth(),
                deepening: proof.deepening(),
            }),
            _ => None,
        }
    }

    /// A file of `len` bytes will be refused as unscannable whatever happens next: the
    /// clamd we trust proved all it will, and it is less. Lets a resumable upload be refused
    /// at its creation rather than after gigabytes.
    pub fn too_deep(&self, len: u64) -> Option<u64> {
        match self.status() {
            ScannerStatus::Up(proof) if !proof.deepening() && len > proof.depth() => Some(proof.depth()),
            _ => None,
        }
    }

    /// The proof to scan `len` bytes under: the current one, after waiting (up to the time
    /// those deeper proofs take) while clamd is still being proved deeper than it.
    async fn proof_for(&self, clamd: &Clamd, len: u64) -> ScannerStatus {
        let mut status = self.health.subscribe();
        let deep_enough =
            |s: &ScannerStatus| !matches!(s, ScannerStatus::Up(p) if p.deepening() && p.depth() < len);
        // The proofs still to come scan less than twice this file, in all.
        let wait = clamd.deadline_for(len.saturating_mul(2));
        let _ = tokio::time::timeout(wait, status.wait_for(deep_enough)).await;
        self.status()
    }

    /// Scans `len` bytes that `open` yields, on a blocking thread at the reader's speed.
    pub async fn scan<R, F>(&self, len: u64, open: F) -> Result<Scan, SpoolUnreadable>
    where
        R: Read,
        F: FnOnce() -> Result<R, SpoolUnreadable> + Send + 'static,
    {
        let Some(clamd) = self.clamd.clone() else {
            return Ok(Scan::Off);
        };
        let proof = match self.proof_for(&clamd, len).await {
            ScannerStatus::Up(proof) => proof,
            ScannerStatus::Down(why) => return Ok(Scan::Unavailable(why)),
            ScannerStatus::Off => return Ok(Scan::Unavailable("scanner off".into())),
        };
        if len > proof.depth() {
            let reason = format!("larger than the {} bytes clamd proved it scans", proof.depth());
            return Ok(Scan::NotScanned { reason, proof });
        }
        let waiting = Waiting::new(&self.metrics.scanner_queue);
        let Ok(_permit) = self.permits.clone().acquire_owned().await else {
            return Ok(Scan::Unavailable("scanner shut down".into()));
        };
        drop(waiting);
        let started = Instant::now();
        let verdict = tokio::task::spawn_blocking(move || Ok::<_, SpoolUnreadable>(clamd.scan(open()?, len)))
            .await
            .map_err(|e| SpoolUnreadable(e.to_string()))??;
        self.metrics.scan_seconds.observe(started.elapsed().as_secs_f64());
        let scan = match verdict {
            Verdict::Unavailable(reason) => {
                // clamd failed us: trust goes at once, and the watch proves it again.
                self.health.down(format!("clamd failed a scan: {reason}"));
                Scan::Unavailable(reason)
            }
            _ if !self.health.current(&proof) => {
                Scan::Unavailable("clamd went away or changed during the scan".into())
            }
            Verdict::Clean => Scan::Clean(proof),
            Verdict::Infected(signature) => Scan::Infected { signature, proof },
            Verdict::NotScanned(reason) => Scan::NotScanned { reason, proof },
        };
        let label = match &scan {
            Scan::Clean(_) => "clean",
            Scan::Infected { .. } => "infected",
            _ => "not_scanned",
        };
        self.metrics.scans.with_label_values(&[label]).inc();
        Ok(scan)
    }
}

#[cfg(test)]
mod tests;
