//! The audit log: entries numbered in the order they were written, read per account.
//! Changes write their entry in their own transaction (see [`AuditNote`]); this trait
//! appends entries that stand alone (a refused request, a download) and reads the log.

use async_trait::async_trait;

use super::{AuditNote, RepoError};
use crate::model::AuditEntry;

#[async_trait]
pub trait AuditRepo: Send + Sync + 'static {
    /// Appends the entry; durable.
    async fn append(&self, note: AuditNote) -> Result<(), RepoError>;

    /// The account's newest `limit` entries, newest first.
    async fn recent(&self, account_id: &str, limit: usize) -> Result<Vec<AuditEntry>, RepoError>;
}
