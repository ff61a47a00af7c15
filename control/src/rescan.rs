//! The rescan: files kept in quarantine while no trusted clamd could scan them are scanned
//! here once one is back. It runs in the control plane because only the control plane can
//! open a stored file (gateways seal for its public key and hold no secret). Each held file
//! is fetched sealed into `data_dir/rescan/` (ciphertext only: plaintext never touches the
//! disk), opened with its storage secret as the scanner reads it, and its verdict recorded
//! with its event (`Service::decide_quarantined`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use tokio::io::AsyncWriteExt;
use upgate_gateway::control_link::ScanVerdict;
use upgate_gateway::scanner::{Scan, Scanner};
use upgate_gateway::seal::{Header, MAX_HEADER_LEN};
use upgate_gateway::storage::{ObjectKey, ObjectStore};
use upgate_gateway::sys::now;
use upgate_gateway::upload::scan_spool;

use crate::model::FileRecord;
use crate::service::Service;

/// How often held files are looked for while the scanner is trusted (a change of the
/// scanner's status, such as clamd coming back, starts a pass at once).
const EVERY: Duration = Duration::from_secs(5);
/// Held files taken per pass.
const BATCH: usize = 64;
/// A file whose rescan failed for a reason of its own (object missing, integrity) is not
/// tried again before this; the log says why each time.
const RETRY_FAILED_AFTER: Duration = Duration::from_secs(600);

/// What one file's rescan came to.
enum Outcome {
    /// The verdict is recorded (or the file was no longer held).
    Decided,
    /// No trusted clamd now: the pass stops, the file stays held.
    ScannerGone,
}

pub struct Rescan {
    service: Arc<Service>,
    scanner: Arc<Scanner>,
    store: Arc<dyn ObjectStore>,
    dir: PathBuf,
    /// Files whose last rescan failed on their own account, until when they rest.
    failed: HashMap<String, Instant>,
}

/// The sealed copy a rescan reads, removed however the rescan ends.
struct SealedCopy(PathBuf);

impl Drop for SealedCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Rescan {
    /// A rescan whose sealed copies go in `data_dir/rescan`, emptied now (copies a crash
    /// left behind are ciphertext, but nobody needs them).
    pub fn new(
        service: Arc<Service>,
        scanner: Arc<Scanner>,
        store: Arc<dyn ObjectStore>,
        data_dir: &Path,
    ) -> std::io::Result<Rescan> {
        let dir = data_dir.join("rescan");
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::create_dir_all(&dir)?;
        service.set_rescans();
        Ok(Rescan {
            service,
            scanner,
            store,
            dir,
            failed: HashMap::new(),
        })
    }

    /// Runs until the task is dropped.
    pub async fn run(mut self) {
        let mut status = self.scanner.subscribe();
        loop {
            if self.scanner.proven_depth().is_some() {
                self.pass().await;
            }
            tokio::select! {
                changed = status.changed() => if changed.is_err() {
                    tokio::time::sleep(EVERY).await;
                },
                _ = tokio::time::sleep(EVERY) => {}
            }
        }
    }

    /// Scans the held files, a batch at a time, while the scanner stays trusted.
    async fn pass(&mut self) {
        let rested = Instant::now();
        self.failed.retain(|_, until| *until > rested);
        let held = match self.service.held_files(BATCH + self.failed.len()).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "could not list the files held in quarantine; trying again");
                return;
            }
        };
        for file in &held {
            if self.failed.contains_key(&file.id) {
                continue;
            }
            match self.rescan(file).await {
                Ok(Outcome::Decided) => {}
                Ok(Outcome::ScannerGone) => return,
                Err(why) => {
                    tracing::error!(file_id = %file.id, %why, "a quarantined file could not be scanned; it stays held");
                    self.failed
                        .insert(file.id.clone(), Instant::now() + RETRY_FAILED_AFTER);
                }
            }
        }
    }

    async fn rescan(&self, file: &FileRecord) -> Result<Outcome, String> {
        let key = ObjectKey::parse(&file.id).ok_or("its id is not an object key")?;
        let (copy, sealed_len) = self.fetch(&key).await?;
        let head = {
            use std::io::Read;
            let mut head = Vec::with_capacity(MAX_HEADER_LEN);
            std::fs::File::open(&copy.0)
                .and_then(|f| f.take(MAX_HEADER_LEN as u64).read_to_end(&mut head))
                .map_err(|e| e.to_string())?;
            head
        };
        let header = Header::parse(&head).map_err(|e| e.to_string())?;
        let opener = self.service.opener(file, header).map_err(|e| e.to_string())?;
        let len = opener.plaintext_len(sealed_len).map_err(|e| e.to_string())?;
        if len != file.size {
            return Err(format!("it opens to {len} bytes, its record says {}", file.size));
        }
        let scan = scan_spool(&self.scanner, copy.0.clone(), sealed_len, len, opener)
            .await
            .map_err(|e| e.to_string())?;
        let verdict = match scan {
            Scan::Clean(proof) => ScanVerdict::clean(&proof, now()),
            Scan::Infected { signature, proof } => ScanVerdict::infected(&proof, signature, now()),
            Scan::NotScanned { reason, proof } => ScanVerdict::not_scanned(Some(&proof), reason, now()),
            Scan::Unavailable(_) | Scan::Off => return Ok(Outcome::ScannerGone),
        };
        self.service
            .decide_quarantined(file, verdict)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Outcome::Decided)
    }

    /// The stored object, copied sealed to the rescan directory; with its length.
    async fn fetch(&self, key: &ObjectKey) -> Result<(SealedCopy, u64), String> {
        let len = self.store.len(key).await.map_err(|e| e.to_string())?;
        let copy = SealedCopy(self.dir.join(format!("{}.sealed", key.as_str())));
        let mut out = tokio::fs::File::create(&copy.0)
            .await
            .map_err(|e| e.to_string())?;
        let mut stream = self
            .store
            .read_range(key, 0, len)
            .await
            .map_err(|e| e.to_string())?;
        let mut written = 0u64;
        while let Some(piece) = stream.try_next().await.map_err(|e| e.to_string())? {
            written += piece.len() as u64;
            out.write_all(&piece).await.map_err(|e| e.to_string())?;
        }
        out.flush().await.map_err(|e| e.to_string())?;
        if written != len {
            return Err(format!("storage gave {written} of its {len} bytes"));
        }
        Ok((copy, len))
    }
}
