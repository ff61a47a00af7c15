//! `Idempotency-Key`s of the requests that text a caller. Only ids are kept, never the
//! answer (it holds the link, which is rebuilt).

use async_trait::async_trait;

use super::RepoError;

/// How long a key is remembered after its first use (seconds).
pub const KEEP_SECONDS: u64 = 24 * 3600;
/// A key whose request never finished (a crash) is free again after this (seconds).
pub const IN_FLIGHT_SECONDS: u64 = 60;

/// Where a request with a key stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// First use (or the earlier use was forgotten): go ahead, then `done` or `abort`.
    Fresh,
    /// Seen and finished: answer with this link and message again.
    Replay { link_id: String, sms_id: String },
    /// Its first request is still running.
    InUse,
    /// The key was used for another request.
    Reused,
}

#[async_trait]
pub trait IdempotencyRepo: Send + Sync + 'static {
    /// Checks and claims the key in one step, at `t`. Two concurrent first uses: one gets
    /// `Fresh`, the other `InUse`. What it answers is durable (a replay never shows what a
    /// crash could still undo).
    async fn begin(&self, account_id: &str, key: &str, request: &str, t: u64) -> Result<Begun, RepoError>;

    /// Records what the keyed request produced; durable.
    async fn done(&self, account_id: &str, key: &str, link_id: &str, sms_id: &str) -> Result<(), RepoError>;

    /// Frees a key whose request failed, so a retry runs; durable.
    async fn abort(&self, account_id: &str, key: &str) -> Result<(), RepoError>;
}
