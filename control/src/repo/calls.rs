//! Calls, and what each gathers: its links, messages, files and events, each in the order
//! it came.

use async_trait::async_trait;

use super::RepoError;
use crate::model::{Call, CallEvent, FileRecord, Link, SmsMessage};

/// What a call gathered.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    pub links: Vec<Link>,
    pub sms: Vec<SmsMessage>,
    pub files: Vec<FileRecord>,
    /// The newest events (see `Call::events_dropped` for how many older ones went).
    pub events: Vec<CallEvent>,
}

#[async_trait]
pub trait CallRepo: Send + Sync + 'static {
    /// Creates the call, or gives an existing one `call`'s assistant and number (keeping
    /// its creation time and what it gathered). Returns the stored call and whether it is
    /// new; durable.
    async fn put_call(&self, call: Call) -> Result<(Call, bool), RepoError>;

    /// The account's call; another account's is `None`.
    async fn call(&self, account_id: &str, call_id: &str) -> Result<Option<Call>, RepoError>;

    async fn gathered(&self, call: &Call) -> Result<Gathered, RepoError>;

    /// The account's calls created at or after `from` and before `to`, by id.
    async fn calls_created(&self, account_id: &str, from: u64, to: u64) -> Result<Vec<Call>, RepoError>;
}
