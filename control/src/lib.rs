//! upgate-control: the private control plane. Accounts and tokens, assistants' file-upload
//! settings, calls, links and their SMS, file metadata, downloads and the audit log.

pub mod account_keys;
pub mod api;
pub mod attest;
pub mod backup;
pub mod console;
pub mod db;
/// Shared with the gateway, which cleans display names with the same list.
pub use upgate_gateway::hidden_chars;
pub mod ids;
pub mod internal_api;
pub mod keys;
pub mod migrate;
pub mod model;
pub mod ops;
pub mod problem;
pub mod redact;
pub mod repo;
pub mod rescan;
pub mod retention;
pub mod run;
pub mod service;
pub mod settings;
pub mod sms;
pub mod users;
pub mod webhooks;
