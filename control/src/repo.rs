//! Repositories: the store behind one async trait per concern, each owning its key layout
//! and its transactions, so the service above them knows no engine. sled implements them
//! today; each trait has one conformance suite that any engine (PostgreSQL, for an HA
//! control plane) must pass without a change to its callers.
//!
//! So far: [`LinkRepo`], the links as gateways use them (claims held as leases, stored
//! files, refusals, finishing), and [`FileRepo`], stored files as staff and the sweep read
//! them. The other concerns (accounts, tokens, assistants, calls, link issuance, audit)
//! still go through `db::Kv` inside the service; they move here one by one.

pub mod files;
pub mod links;
pub mod sled_files;
pub mod sled_links;

#[cfg(test)]
pub mod files_suite;
#[cfg(test)]
pub mod links_suite;

pub use files::FileRepo;
pub use links::LinkRepo;
pub use sled_files::SledFiles;
pub use sled_links::SledLinks;

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
