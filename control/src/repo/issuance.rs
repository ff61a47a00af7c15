//! Links as staff and the voice platform issue them, and the messages that carry them.
//! (Gateways use links through [`LinkRepo`](super::LinkRepo).)

use async_trait::async_trait;

use super::{AuditNote, RepoError};
use crate::model::{Link, SmsMessage};

#[async_trait]
pub trait IssueRepo: Send + Sync + 'static {
    /// Stores a new active link on its call and, in the same transaction, supersedes the
    /// call's link that is active at `link.created_at` (only the latest link can be); durable.
    async fn issue(&self, link: &Link, audit: AuditNote) -> Result<(), RepoError>;

    /// The account's link; another account's is `None`.
    async fn account_link(&self, account_id: &str, link_id: &str) -> Result<Option<Link>, RepoError>;

    /// Ends the account's link as revoked if it is active at `t`, writing `audit` with it;
    /// returns the link as it is afterwards.
    async fn revoke(
        &self,
        account_id: &str,
        link_id: &str,
        t: u64,
        audit: AuditNote,
    ) -> Result<Option<Link>, RepoError>;

    /// Records a message on its call, after the ones before it; durable.
    async fn record_sms(&self, message: &SmsMessage) -> Result<(), RepoError>;

    /// Applies a carrier's report to the message `provider` knows as `update.provider_id`:
    /// `None` if there is none, `Some(false)` if the report says nothing newer than what is
    /// kept (a replay), `Some(true)` when applied, with an event for a final status.
    async fn record_delivery(
        &self,
        provider: &str,
        update: &crate::sms::DeliveryUpdate,
        t: u64,
    ) -> Result<Option<bool>, RepoError>;

    /// The account's message; another account's is `None`.
    async fn sms(&self, account_id: &str, id: &str) -> Result<Option<SmsMessage>, RepoError>;

    /// Handles up to `limit` links whose expiry is at or before `t`: each still active is
    /// stored as expired with its `link_expired` event, once; durable. Returns how many
    /// it handled and how many of those expired (the others had ended before).
    async fn expire_due(&self, t: u64, limit: usize) -> Result<(usize, usize), RepoError>;

    /// How many links signed with link key `key_id` are active at `t`.
    async fn live_links_signed_by(&self, key_id: u32, t: u64) -> Result<u64, RepoError>;
}
