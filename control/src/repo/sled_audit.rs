//! [`AuditRepo`] on the embedded store: `Audit` by `account/sequence` (big-endian), so an
//! account's entries scan in the order they were written.

use async_trait::async_trait;

use super::sled_keys::decode;
use super::{AuditNote, AuditRepo, RepoError, SledStore};
use crate::db::Tree;
use crate::model::AuditEntry;

#[async_trait]
impl AuditRepo for SledStore {
    async fn append(&self, note: AuditNote) -> Result<(), RepoError> {
        // A new key: nothing is read back, so no lock.
        let durable = self.write(vec![self.audit(note)?])?;
        Ok(durable.await?)
    }

    async fn recent(&self, account_id: &str, limit: usize) -> Result<Vec<AuditEntry>, RepoError> {
        let prefix = format!("{account_id}/").into_bytes();
        self.off(move |s| {
            s.db.scan_prefix_rev(Tree::Audit, &prefix, limit)?
                .into_iter()
                .map(|(_, v)| Ok(decode(Tree::Audit, &v)?))
                .collect()
        })
        .await
    }
}
