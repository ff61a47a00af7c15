//! Scanning a finished spool with clamd: decrypted on a blocking thread at disk speed
//! (a slow caller is never piped live into clamd), at most `concurrency` scans at once.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio::sync::Semaphore;
use upgate_config::ScannerConfig;

use crate::clamd::{Clamd, Verdict};
use crate::metrics::Metrics;
use crate::seal::{DecryptReader, Opener};

/// The EICAR test string, assembled at run time so this source file is not itself flagged.
pub fn eicar() -> Vec<u8> {
    let parts = [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
    ];
    parts.concat().into_bytes()
}

/// Whether uploads can be scanned right now, for `/readyz` and the start-up banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannerStatus {
    /// No clamd configured: uploads are stored as not scanned.
    Off,
    /// Ready; the engine and database version.
    Up(String),
    /// Configured but not answering (or failed its canary): uploads are refused.
    Down(String),
}

/// The gateway could not read back its own spool to scan it.
#[derive(Debug, thiserror::Error)]
#[error("spool unreadable: {0}")]
pub struct SpoolUnreadable(pub String);

pub struct Scanner {
    clamd: Option<Clamd>,
    permits: Arc<Semaphore>,
    status: RwLock<ScannerStatus>,
    metrics: Metrics,
}

impl Scanner {
    pub fn new(config: &ScannerConfig, metrics: Metrics) -> Scanner {
        let clamd = config.clamd.clone().map(|addr| Clamd::new(addr, config.timeout));
        let status = if clamd.is_some() {
            ScannerStatus::Down("not checked yet".into())
        } else {
            ScannerStatus::Off
        };
        Scanner {
            clamd,
            permits: Arc::new(Semaphore::new(config.concurrency)),
            status: RwLock::new(status),
            metrics,
        }
    }

    pub fn status(&self) -> ScannerStatus {
        self.status.read().expect("status lock").clone()
    }

    fn set_status(&self, status: ScannerStatus) {
        self.metrics
            .scanner_up
            .set(matches!(status, ScannerStatus::Up(_)) as i64);
        *self.status.write().expect("status lock") = status;
    }

    /// Asks clamd for its version and proves it detects: the EICAR canary must be FOUND.
    pub async fn check(&self) -> ScannerStatus {
        let Some(clamd) = self.clamd.clone() else {
            return ScannerStatus::Off;
        };
        let status = tokio::task::spawn_blocking(move || {
            let version = match clamd.version() {
                Ok(v) => v,
                Err(e) => return ScannerStatus::Down(e.to_string()),
            };
            match clamd.scan(eicar().as_slice()) {
                Verdict::Infected(_) => ScannerStatus::Up(version),
                other => ScannerStatus::Down(format!(
                    "canary not detected ({other:?}): check the signature database"
                )),
            }
        })
        .await
        .unwrap_or_else(|e| ScannerStatus::Down(e.to_string()));
        self.set_status(status.clone());
        status
    }

    /// Scans the sealed spool. `None` when scanning is off.
    pub async fn scan_spool(
        &self,
        spool: PathBuf,
        ciphertext_len: u64,
        opener: Opener,
    ) -> Result<Option<(Verdict, String)>, SpoolUnreadable> {
        let Some(clamd) = self.clamd.clone() else {
            return Ok(None);
        };
        let Ok(_permit) = self.permits.clone().acquire_owned().await else {
            return Ok(Some((
                Verdict::Unavailable("scanner shut down".into()),
                String::new(),
            )));
        };
        let started = Instant::now();
        // Our own spool failing is our fault, not clamd's: it must not mark the scanner down.
        let verdict = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&spool).map_err(|e| SpoolUnreadable(e.to_string()))?;
            let reader = DecryptReader::new(std::io::BufReader::new(file), ciphertext_len, opener)
                .map_err(|e| SpoolUnreadable(e.to_string()))?;
            Ok(clamd.scan(reader))
        })
        .await
        .map_err(|e| SpoolUnreadable(e.to_string()))??;
        self.metrics.scan_seconds.observe(started.elapsed().as_secs_f64());
        let label = match &verdict {
            Verdict::Clean => "clean",
            Verdict::Infected(_) => "infected",
            Verdict::NotScanned(_) | Verdict::Unavailable(_) => "not_scanned",
        };
        self.metrics.scans.with_label_values(&[label]).inc();
        let engine = match (&verdict, self.status()) {
            (Verdict::Unavailable(reason), _) => {
                // clamd went away: show it on /readyz at once. A verdict about one file (a
                // limit hit) says nothing about the scanner, so it never marks it down.
                self.set_status(ScannerStatus::Down(reason.clone()));
                String::new()
            }
            (_, ScannerStatus::Up(v)) => v,
            // clamd answers again after being down: learn its version (and prove the canary).
            _ => match self.check().await {
                ScannerStatus::Up(v) => v,
                _ => String::new(),
            },
        };
        Ok(Some((verdict, engine)))
    }
}
