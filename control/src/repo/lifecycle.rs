//! What the data's end of life needs from the store: files due under a retention policy
//! and their deletion, an account's removal, and a consistent copy of everything for a
//! backup.

use std::collections::HashMap;

use async_trait::async_trait;

use super::{AuditNote, RepoError};
use crate::db::{Entry, Tree};
use crate::model::{Assistant, FileRecord};

/// Every tree's entries, copied at one instant.
pub struct Snapshot {
    pub trees: Vec<(Tree, Vec<Entry>)>,
    /// Above every id the store handed out before the copy: a restore starts from it.
    pub next_id: u64,
}

#[async_trait]
pub trait LifecycleRepo: Send + Sync {
    /// Every account's id.
    async fn account_ids(&self) -> Result<Vec<String>, RepoError>;
    /// The account's assistants.
    async fn assistants(&self, account_id: &str) -> Result<Vec<Assistant>, RepoError>;
    /// The account's files whose call's assistant is in `cutoffs` and that arrived at or
    /// before that assistant's cutoff (Unix seconds).
    async fn files_due(
        &self,
        account_id: &str,
        cutoffs: &HashMap<String, u64>,
    ) -> Result<Vec<FileRecord>, RepoError>;
    /// Removes the file's record and every index entry that names it, with `audit`, in one
    /// batch. `false` when it was already gone.
    async fn delete_file(&self, file: &FileRecord, audit: AuditNote) -> Result<bool, RepoError>;
    /// Whether an upload to any of the account's links holds an unexpired lease at `t`.
    async fn uploads_in_flight(&self, account_id: &str, t: u64) -> Result<bool, RepoError>;
    /// Whether any file of the account is still recorded.
    async fn has_files(&self, account_id: &str) -> Result<bool, RepoError>;
    /// Removes the account and every record it holds (calls, links, messages, files,
    /// tokens, audit log, webhooks); returns the ids of the files it had. `None` when there
    /// is no such account.
    async fn purge_account(&self, account_id: &str) -> Result<Option<Vec<String>>, RepoError>;
    /// Every tree, copied while no writer can change any of them.
    async fn snapshot(&self) -> Result<Snapshot, RepoError>;
}
