//! Stored files' records, as staff and the start-up sweep read them. Files are recorded by
//! [`LinkRepo::record_file`](super::LinkRepo::record_file), in the same transaction as the
//! link's count and the lease it ends.

use async_trait::async_trait;

use super::RepoError;
use crate::model::FileRecord;

#[async_trait]
pub trait FileRepo: Send + Sync + 'static {
    /// The file, if it exists and belongs to `account_id` (another account's is `None`).
    async fn file(&self, account_id: &str, file_id: &str) -> Result<Option<FileRecord>, RepoError>;

    /// Whether any record names this object (the orphan sweep keeps those).
    async fn recorded(&self, file_id: &str) -> Result<bool, RepoError>;
}
