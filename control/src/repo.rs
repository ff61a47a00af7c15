//! Repositories: the store behind one async trait per concern, each owning its key layout
//! and its transactions, so the service above them knows no engine. sled implements them
//! today ([`SledStore`], one `sled_*.rs` per trait); each trait has a conformance suite
//! (`*_suite.rs`) that any engine (PostgreSQL, for an HA control plane) must pass without a
//! change to its callers. A write that changes something staff may ask about later carries
//! its audit entry ([`AuditNote`]) into the same transaction.

pub mod accounts;
pub mod audit;
pub mod calls;
pub mod credentials;
pub mod events;
pub mod files;
pub mod idempotency;
pub mod issuance;
pub mod lifecycle;
pub mod links;
pub mod lists;
pub mod quarantine;
pub mod tokens;
pub mod users;
pub mod webhooks;

pub mod event_bus;
mod sled_accounts;
mod sled_audit;
mod sled_by_time;
mod sled_call_layout;
mod sled_calls;
mod sled_credentials;
pub(crate) mod sled_events;
mod sled_expiry;
pub mod sled_files;
mod sled_idempotency;
mod sled_issuance;
pub(crate) mod sled_keys;
mod sled_lifecycle;
pub mod sled_links;
mod sled_lists;
mod sled_quarantine;
mod sled_store;
mod sled_tokens;
mod sled_users;
mod sled_webhooks;

#[cfg(test)]
pub mod control_suite;
#[cfg(test)]
pub mod files_suite;
#[cfg(test)]
pub mod links_suite;

use std::sync::{Arc, Mutex};

pub use accounts::AccountRepo;
pub use audit::AuditRepo;
pub use calls::{CallRepo, Gathered};
pub use credentials::CredentialRepo;
pub use events::EventRepo;
pub use files::FileRepo;
pub use idempotency::{Begun, IdempotencyRepo};
pub use issuance::IssueRepo;
pub use links::LinkRepo;
pub use quarantine::QuarantineRepo;
pub use sled_files::SledFiles;
pub use sled_links::SledLinks;
pub use sled_store::SledStore;
pub use tokens::TokenRepo;
pub use users::UserRepo;
pub use webhooks::WebhookRepo;

/// The store failed; never the caller's fault. The detail is for logs.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Store(#[from] crate::db::DbError),
    /// A file id that is already recorded: ids are random, so only a broken or hostile
    /// gateway sends one, and it must not take over the existing record.
    #[error("file id {0} is already recorded")]
    FileExists(String),
}

/// An audit entry to write with a change: who did what to which record.
#[derive(Debug, Clone)]
pub struct AuditNote {
    pub account_id: String,
    /// A token id, "operator" or "gateway".
    pub actor: String,
    pub action: &'static str,
    pub target: String,
    pub detail: serde_json::Value,
}

/// Every repository the control plane uses, on one engine.
#[derive(Clone)]
pub struct Repos {
    pub accounts: Arc<dyn AccountRepo>,
    pub tokens: Arc<dyn TokenRepo>,
    pub calls: Arc<dyn CallRepo>,
    pub issue: Arc<dyn IssueRepo>,
    pub idempotency: Arc<dyn IdempotencyRepo>,
    pub audit: Arc<dyn AuditRepo>,
    pub credentials: Arc<dyn CredentialRepo>,
    pub links: Arc<dyn LinkRepo>,
    pub files: Arc<dyn FileRepo>,
    pub events: Arc<dyn EventRepo>,
    pub webhooks: Arc<dyn WebhookRepo>,
    pub quarantine: Arc<dyn QuarantineRepo>,
    pub lifecycle: Arc<dyn lifecycle::LifecycleRepo>,
    pub lists: Arc<dyn lists::ListRepo>,
    pub users: Arc<dyn UserRepo>,
}

impl Repos {
    /// The repositories on the embedded store, after bringing its layout up to date
    /// (tokens indexed by id, calls in the per-call layout): once per open, before any use.
    pub fn sled(db: Arc<dyn crate::db::Kv>) -> Result<Repos, RepoError> {
        let write = Arc::new(Mutex::new(()));
        let store = Arc::new(SledStore::new(db, write.clone()));
        store.index_tokens()?;
        store.migrate_calls()?;
        store.index_link_expiry()?;
        store.index_lists()?;
        store.rekey_by_time()?;
        Ok(Repos {
            accounts: store.clone(),
            tokens: store.clone(),
            calls: store.clone(),
            issue: store.clone(),
            idempotency: store.clone(),
            audit: store.clone(),
            events: store.clone(),
            webhooks: store.clone(),
            quarantine: store.clone(),
            lifecycle: store.clone(),
            lists: store.clone(),
            users: store.clone(),
            links: Arc::new(SledLinks::new(store.db(), write)),
            files: Arc::new(SledFiles::new(store.db())),
            credentials: store,
        })
    }
}
