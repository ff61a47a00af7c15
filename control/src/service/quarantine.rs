//! Quarantine, as staff see it and as the rescan decides it. A file that came in while no
//! trusted clamd could scan it is kept sealed and seen by reviewers only; `crate::rescan`
//! scans it when clamd is back, and this records the verdict, signed again.

use upgate_gateway::control_link::ScanVerdict;
use upgate_gateway::sys::now;

use super::{Actor, Service, ServiceError};
use crate::model::{FileRecord, QuarantineState, Role};

impl Service {
    /// Whether `actor` may see `file` at all: a file in quarantine is for reviewers only,
    /// so to anyone else it does not exist.
    pub fn may_see(actor: &Actor, file: &FileRecord) -> bool {
        !file.in_quarantine() || actor.role == Role::Reviewer
    }

    /// A file of the actor's account that the actor may see; any other is "not found".
    pub async fn visible_file(&self, actor: &Actor, file_id: &str) -> Result<FileRecord, ServiceError> {
        let file = self.file_for(&actor.account_id, file_id).await?;
        if !Service::may_see(actor, &file) {
            return Err(ServiceError::NotFound("file"));
        }
        Ok(file)
    }

    /// Every file of the account in quarantine, oldest first (reviewers).
    pub async fn quarantine(&self, account_id: &str) -> Result<Vec<FileRecord>, ServiceError> {
        Ok(self.repos.quarantine.quarantined(account_id).await?)
    }

    /// Files waiting for their scan, in every account, at most `limit`.
    pub async fn held_files(&self, limit: usize) -> Result<Vec<FileRecord>, ServiceError> {
        Ok(self.repos.quarantine.held(limit).await?)
    }

    /// Records the verdict of a held file's scan, with a statement signed over it; `None`
    /// if the file is no longer held.
    pub async fn decide_quarantined(
        &self,
        file: &FileRecord,
        verdict: ScanVerdict,
    ) -> Result<Option<FileRecord>, ServiceError> {
        let t = now();
        let link = self
            .repos
            .issue
            .account_link(&file.account_id, &file.link_id)
            .await?;
        // The statement says what the file is now: the same bytes, the new verdict.
        let attestation = link.map(|link| {
            let scanned = FileRecord {
                scan: verdict.clone(),
                ..file.clone()
            };
            let keys = self.keys.current();
            let key = keys
                .attestation
                .last()
                .expect("a key ring always has an attestation key");
            crate::attest::sign(key, &crate::attest::Stated::record(&scanned, &link), t)
        });
        let decided = self
            .repos
            .quarantine
            .decide(&file.id, verdict, attestation, t)
            .await?;
        if let Some(q) = decided.as_ref().and_then(|f| f.quarantine.as_ref()) {
            self.metrics
                .quarantine
                .with_label_values(&[q.state.as_str()])
                .inc();
            if q.state != QuarantineState::Released {
                tracing::warn!(file_id = %file.id, state = q.state.as_str(), "a quarantined file stays in quarantine");
            }
        }
        Ok(decided)
    }

    /// A rescan runs beside this control plane (it has a clamd): held files will be scanned.
    pub fn set_rescans(&self) {
        self.rescans.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn rescans(&self) -> bool {
        self.rescans.load(std::sync::atomic::Ordering::Relaxed)
    }
}
