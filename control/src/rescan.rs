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
use upgate_gateway::disk::DiskWatch;
use upgate_gateway::scanner::{Scan, Scanner};
use upgate_gateway::seal::{verify_all, Header, MAX_HEADER_LEN};
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
/// A file whose rescan failed on its own account (its object missing or failing its check,
/// clamd losing its footing on it) rests this long before it is tried again...
const REST_AFTER_A_STRIKE: Duration = Duration::from_secs(60);
/// ...and after this many such failures it is decided unscannable (it stays in quarantine,
/// for reviewers), so that one file can neither hold its call open for ever nor keep taking
/// the scanner down.
const STRIKES: u32 = 3;

/// What one file's rescan came to.
enum Outcome {
    /// The verdict is recorded (or the file was no longer held).
    Decided,
    /// No trusted clamd when it began: the pass stops, the file stays held, no strike.
    ScannerGone,
    /// Not now (no disk room for its copy): the next pass tries again, no strike.
    Later,
    /// A failure of this file's: a strike against it.
    Strike(String),
}

/// A file's failed rescans, and until when it rests.
struct Strikes {
    count: u32,
    until: Instant,
}

pub struct Rescan {
    service: Arc<Service>,
    scanner: Arc<Scanner>,
    store: Arc<dyn ObjectStore>,
    dir: PathBuf,
    /// The room the sealed copies may take, above the operator's free-disk watermark.
    disk: DiskWatch,
    /// Files whose rescans failed on their own account.
    strikes: HashMap<String, Strikes>,
    /// How long a file rests after a strike (`REST_AFTER_A_STRIKE`).
    rest: Duration,
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
        min_free_disk: u64,
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
            disk: DiskWatch::new(&dir, min_free_disk),
            dir,
            strikes: HashMap::new(),
            rest: REST_AFTER_A_STRIKE,
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
        let held = match self.service.held_files(BATCH + self.strikes.len()).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "could not list the files held in quarantine; trying again");
                return;
            }
        };
        // Files decided meanwhile are forgotten.
        self.strikes.retain(|id, _| held.iter().any(|f| &f.id == id));
        for file in &held {
            if self
                .strikes
                .get(&file.id)
                .is_some_and(|s| s.until > Instant::now())
            {
                continue;
            }
            let outcome = match self.rescan(file).await {
                Ok(outcome) => outcome,
                Err(why) => Outcome::Strike(why),
            };
            match outcome {
                Outcome::Decided => {
                    self.strikes.remove(&file.id);
                }
                Outcome::ScannerGone => return,
                Outcome::Later => {}
                Outcome::Strike(why) => self.strike(file, why).await,
            }
        }
    }

    /// Counts a failure against `file`; at the last strike it is decided unscannable.
    async fn strike(&mut self, file: &FileRecord, why: String) {
        let strikes = self.strikes.entry(file.id.clone()).or_insert(Strikes {
            count: 0,
            until: Instant::now(),
        });
        strikes.count += 1;
        strikes.until = Instant::now() + self.rest;
        tracing::error!(file_id = %file.id, %why, strike = strikes.count, "a quarantined file could not be scanned");
        if strikes.count < STRIKES {
            return;
        }
        let reason = format!("could not be scanned {STRIKES} times, the last because {why}");
        let verdict = ScanVerdict::not_scanned(None, reason, now());
        match self.service.decide_quarantined(file, verdict).await {
            Ok(_) => {
                self.strikes.remove(&file.id);
            }
            Err(e) => {
                tracing::warn!(file_id = %file.id, error = %e, "could not record a quarantined file as unscannable")
            }
        }
    }

    async fn rescan(&self, file: &FileRecord) -> Result<Outcome, String> {
        let key = ObjectKey::parse(&file.id).ok_or("its id is not an object key")?;
        let len = self.store.len(&key).await.map_err(|e| e.to_string())?;
        let Ok(_room) = self.disk.reserve(len) else {
            tracing::warn!(file_id = %file.id, bytes = len, "no disk room for a quarantined file's sealed copy; it waits");
            return Ok(Outcome::Later);
        };
        let (copy, sealed_len) = self.fetch(&key, len).await?;
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
        // Every segment authenticated first: a damaged or tampered object is this file's
        // failure, never clamd's (a read error mid-scan would take the scanner down).
        let path = copy.0.clone();
        let checked = opener.clone();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path)?;
            verify_all(std::io::BufReader::new(file), sealed_len, &checked).map_err(std::io::Error::other)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("the stored object failed its check: {e}"))?;
        let trusted_before = self.scanner.proven_depth().is_some();
        let scan = scan_spool(&self.scanner, copy.0.clone(), sealed_len, len, opener)
            .await
            .map_err(|e| e.to_string())?;
        let verdict = match scan {
            Scan::Clean(proof) => ScanVerdict::clean(&proof, now()),
            Scan::Infected { signature, proof } => ScanVerdict::infected(&proof, signature, now()),
            Scan::NotScanned { reason, proof } => ScanVerdict::not_scanned(Some(&proof), reason, now()),
            // clamd was trusted when this file's scan began and failed on it: a strike, so a
            // file that makes clamd hang cannot hold the others back for ever.
            Scan::Unavailable(why) if trusted_before => {
                return Ok(Outcome::Strike(format!("clamd failed on it: {why}")))
            }
            Scan::Unavailable(_) | Scan::Off => return Ok(Outcome::ScannerGone),
        };
        self.service
            .decide_quarantined(file, verdict)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Outcome::Decided)
    }

    /// The stored object (`len` bytes), copied sealed to the rescan directory; with its length.
    async fn fetch(&self, key: &ObjectKey, len: u64) -> Result<(SealedCopy, u64), String> {
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

#[cfg(test)]
mod tests {
    use upgate_gateway::control_link::ScanStatus;
    use upgate_gateway::storage::LocalStore;

    use super::*;

    /// A held file whose stored object is gone fails on its own account: it rests between
    /// tries and, at the third, is kept as unscannable with the reason, and its verdict
    /// event written, so it holds neither the other files nor its call for ever.
    #[tokio::test]
    async fn a_file_that_fails_on_its_own_is_kept_unscannable_after_three_strikes() {
        let f = crate::service::fixture::fixture().await;
        let id = crate::service::quarantine_tests::held(&f, "c").await;

        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(&dir.path().join("objects")).unwrap());
        let config = upgate_config::Config::load(None, Some(dir.path())).unwrap();
        let scanner = Arc::new(Scanner::new(&config.scanner, 1 << 20, Default::default()));
        let mut rescan = Rescan::new(f.svc.clone(), scanner, store, dir.path(), 0).unwrap();
        rescan.pass().await;
        assert_eq!(rescan.strikes[&id].count, 1);
        rescan.pass().await;
        assert_eq!(rescan.strikes[&id].count, 1, "resting: not tried again at once");
        rescan.rest = Duration::ZERO;
        rescan.strikes.get_mut(&id).unwrap().until = Instant::now();
        rescan.pass().await;
        rescan.pass().await;
        assert!(rescan.strikes.is_empty(), "decided, forgotten");
        assert!(f.svc.held_files(10).await.unwrap().is_empty());
        let kept = f
            .svc
            .quarantine(&f.actor.account_id, None, 500)
            .await
            .unwrap()
            .items;
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].scan.status(), ScanStatus::NotScanned);
        assert!(
            kept[0].scan.detail().unwrap().contains("3 times"),
            "{:?}",
            kept[0].scan
        );
        let events = f
            .svc
            .events_after(&f.actor.account_id, None, 0, 100)
            .await
            .unwrap();
        assert_eq!(events.last().unwrap().event.kind(), "file_unscannable");
        assert_eq!(
            std::fs::read_dir(dir.path().join("rescan")).unwrap().count(),
            0,
            "no copy left"
        );
    }
}
