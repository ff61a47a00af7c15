//! Accounts and their assistants' settings. Writes are durable when they return and carry
//! their audit entry in the same transaction.

use async_trait::async_trait;

use super::{AuditNote, RepoError};
use crate::model::{Account, Assistant};

#[async_trait]
pub trait AccountRepo: Send + Sync + 'static {
    /// Stores a new account (its id is fresh).
    async fn create_account(&self, account: &Account, audit: AuditNote) -> Result<(), RepoError>;

    async fn account(&self, id: &str) -> Result<Option<Account>, RepoError>;

    /// Stores the assistant's settings, replacing what was there; true if it is new.
    async fn put_assistant(&self, assistant: &Assistant, audit: AuditNote) -> Result<bool, RepoError>;

    /// The account's assistant; another account's is `None`.
    async fn assistant(&self, account_id: &str, id: &str) -> Result<Option<Assistant>, RepoError>;
}
