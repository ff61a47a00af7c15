//! Files kept in quarantine: they came in while no trusted clamd could scan them
//! (`scanner.on_unavailable = "quarantine"`). They enter with their record, in
//! [`LinkRepo::record_file`](super::LinkRepo::record_file)'s batch; this repository lists them
//! and records the verdict of their later scan.

use async_trait::async_trait;
use upgate_gateway::control_link::ScanVerdict;

use super::RepoError;
use crate::attest::Attestation;
use crate::model::FileRecord;

#[async_trait]
pub trait QuarantineRepo: Send + Sync + 'static {
    /// Files waiting for their scan, in every account, at most `limit`, the oldest of those
    /// first.
    async fn held(&self, limit: usize) -> Result<Vec<FileRecord>, RepoError>;

    /// How many files wait for their scan, in every account (from the index alone).
    async fn held_count(&self) -> Result<usize, RepoError>;

    /// Records a held file's scan, in one batch with its event and an audit entry: a clean
    /// verdict releases it, a signature or no verdict keeps it (as infected or unscannable).
    /// `attestation` is the statement signed again over the new verdict. `None` when the
    /// file is not held (any more): the verdict is not applied twice.
    async fn decide(
        &self,
        file_id: &str,
        verdict: ScanVerdict,
        attestation: Option<Attestation>,
        t: u64,
    ) -> Result<Option<FileRecord>, RepoError>;

    /// A reviewer's decision on a file still in quarantine (held, or kept as unscannable):
    /// `release` puts it on the call for everyone, with its verdict as it is; otherwise it
    /// is blocked for good. One batch with its audit entry (and, on release, the call's
    /// `file_released` event). `None` when the file is not in one of those states.
    async fn review(
        &self,
        account_id: &str,
        file_id: &str,
        release: bool,
        by: &str,
        t: u64,
    ) -> Result<Option<FileRecord>, RepoError>;
}
