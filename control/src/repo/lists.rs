//! The account's lists, a page at a time (cursor pagination): calls, files, a caller's
//! files, quarantine and the audit log newest first; assistants, API tokens, users and a
//! user's sessions by id (their ids are random: the order is stable, not meaningful).

use async_trait::async_trait;

use super::RepoError;
use crate::model::{ApiToken, Assistant, AuditEntry, Call, FileRecord, Session, User};

/// One page: its records, and where the next one starts (`None`: this was the last).
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque to callers: the position in the list the next page continues below.
    pub next: Option<Vec<u8>>,
}

/// Which calls a list shows.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub assistant_id: Option<String>,
    /// Created at or after (Unix seconds).
    pub from: Option<u64>,
    /// Created before.
    pub to: Option<u64>,
    /// Calls with (`Some(true)`) or without (`Some(false)`) a file the reader may see.
    pub has_files: Option<bool>,
    /// Calls with or without a refused upload.
    pub has_refusals: Option<bool>,
    /// Whether files in quarantine count for `has_files` (reviewers see them).
    pub sees_quarantine: bool,
}

/// Which audit entries a list shows.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Actions that start with this (`file.`, `user.sign_in`).
    pub action: Option<String>,
    /// Entries by one of these actors (token or user ids, `operator`, `gateway`...).
    pub actors: Option<Vec<String>>,
}

impl AuditFilter {
    pub fn keeps(&self, e: &AuditEntry) -> bool {
        self.action.as_deref().is_none_or(|a| e.action.starts_with(a))
            && self.actors.as_ref().is_none_or(|ids| ids.contains(&e.actor))
    }
}

#[async_trait]
pub trait ListRepo: Send + Sync {
    /// The account's calls, newest first, below `before` (a previous page's `next`).
    async fn calls_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
        filter: CallFilter,
    ) -> Result<Page<Call>, RepoError>;
    /// The account's files, newest first; those in quarantine only when `quarantined`.
    async fn files_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
        quarantined: bool,
    ) -> Result<Page<FileRecord>, RepoError>;
    /// The account's assistants, by id from the last (a page's `next` continues below).
    async fn assistants_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<Assistant>, RepoError>;
    /// The account's audit log, newest first. A filter that matches little gives short
    /// pages (with a cursor) rather than reading the whole log for one request.
    async fn audit_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
        filter: AuditFilter,
    ) -> Result<Page<AuditEntry>, RepoError>;
    /// The files a caller's number sent, newest first; those in quarantine only when
    /// `quarantined`.
    async fn contact_files_page(
        &self,
        account_id: &str,
        number: &str,
        before: Option<Vec<u8>>,
        limit: usize,
        quarantined: bool,
    ) -> Result<Page<FileRecord>, RepoError>;
    /// The account's files in quarantine (held, infected, unscannable or blocked), newest
    /// first by when they entered it.
    async fn quarantine_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<FileRecord>, RepoError>;
    /// The account's API tokens, revoked and expired ones included.
    async fn tokens_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<ApiToken>, RepoError>;
    /// The account's console users, disabled ones included.
    async fn users_page(
        &self,
        account_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<User>, RepoError>;
    /// One user's sessions, ended ones included (for 30 days: older ones are pruned).
    async fn sessions_page(
        &self,
        account_id: &str,
        user_id: &str,
        before: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Page<Session>, RepoError>;
}
