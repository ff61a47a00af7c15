//! The scanner's health as state. Every change (down, or a new proof) starts a new
//! generation; a scan is trusted only if the generation it started under is still current
//! when it ends, so a clamd that died or was replaced mid-scan never yields a verdict.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use super::canary::Proven;
use crate::metrics::Metrics;

/// What a clamd proved, and under which generation. Only the scanner makes one, so only a
/// scan by a proven clamd can carry one: a clean verdict always names its engine.
#[derive(Debug, PartialEq, Eq)]
pub struct Proof {
    proven: Proven,
    generation: u64,
}

impl Proof {
    /// clamd's `VERSION`: engine and, when clamd reports one, database version.
    pub fn engine(&self) -> &str {
        &self.proven.engine
    }

    /// Files up to this many bytes are scanned whole.
    pub fn depth(&self) -> u64 {
        self.proven.depth
    }

    /// Deeper proofs are still running: a file beyond `depth` waits for them.
    pub fn deepening(&self) -> bool {
        self.proven.deepening
    }

    pub fn warnings(&self) -> &[String] {
        &self.proven.warnings
    }
}

/// Whether uploads can be scanned right now, for `/readyz`, the banner and each upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannerStatus {
    /// No clamd configured: uploads are stored as not scanned, and we say so loudly.
    Off,
    /// clamd passed its canaries since it last came up, and is still the same process.
    Up(Arc<Proof>),
    /// Configured but not trusted (unreachable, or a canary failed): uploads are refused.
    /// The sentence names what to fix.
    Down(String),
}

pub struct Health {
    status: watch::Sender<ScannerStatus>,
    generation: AtomicU64,
    metrics: Metrics,
}

impl Health {
    pub fn new(initial: ScannerStatus, metrics: Metrics) -> Health {
        Health {
            status: watch::Sender::new(initial),
            generation: AtomicU64::new(0),
            metrics,
        }
    }

    pub fn status(&self) -> ScannerStatus {
        self.status.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<ScannerStatus> {
        self.status.subscribe()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The proof `p` is still the current one: nothing went down or changed since.
    pub fn current(&self, p: &Proof) -> bool {
        self.generation() == p.generation
    }

    /// Trust is withdrawn; returns the new generation.
    /// clamd answered a canary without detecting it (counted: its database is wrong).
    pub fn canary_missed(&self) {
        self.metrics.scanner_canary_failures.inc();
    }

    pub fn down(&self, why: impl Into<String>) -> u64 {
        let why = why.into();
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.metrics.scanner_up.set(0);
        self.status.send_if_modified(|s| {
            let changed = !matches!(s, ScannerStatus::Down(w) if *w == why);
            if changed {
                tracing::error!(why = %why, "scanner not trusted: uploads are refused until it proves itself again");
                *s = ScannerStatus::Down(why);
            }
            changed
        });
        generation
    }

    /// A clamd proved itself; returns the generation its scans must still be in when they end.
    pub fn up(&self, proven: Proven) -> u64 {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::info!(engine = %proven.engine, depth = proven.depth, "scanner proved: canaries detected");
        for warning in &proven.warnings {
            tracing::warn!(%warning, "scanner");
        }
        self.metrics.scanner_up.set(1);
        self.status
            .send_replace(ScannerStatus::Up(Arc::new(Proof { proven, generation })));
        generation
    }

    /// The same process re-proved itself with a new database: same generation, new engine.
    pub fn refresh(&self, generation: u64, proven: Proven) {
        self.status.send_if_modified(|s| match s {
            ScannerStatus::Up(p) if p.generation == generation && p.proven != proven => {
                if p.proven.depth != proven.depth || p.proven.deepening != proven.deepening {
                    tracing::info!(
                        depth = proven.depth,
                        deeper_to_come = proven.deepening,
                        "scanner proved its depth"
                    );
                    if !proven.deepening {
                        for warning in &proven.warnings {
                            tracing::warn!(%warning, "scanner");
                        }
                    }
                }
                *s = ScannerStatus::Up(Arc::new(Proof { proven, generation }));
                true
            }
            _ => false,
        });
    }
}
