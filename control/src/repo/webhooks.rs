//! Webhook endpoints and their deliveries. Deliveries are made from the event log: an
//! endpoint's cursor and the deliveries it hands out move in one transaction, so an event
//! is handed to an endpoint once, whatever crashes in between.

use async_trait::async_trait;

use super::{AuditNote, RepoError};
use crate::webhooks::records::{Delivery, Endpoint, Failure};

/// What an attempt came to.
#[derive(Debug, Clone)]
pub enum Attempt {
    Delivered {
        at: u64,
    },
    /// Failed; `next` is when to try again, `None` for a dead letter.
    Failed {
        failure: Failure,
        next: Option<u64>,
    },
}

#[async_trait]
pub trait WebhookRepo: Send + Sync + 'static {
    /// Stores a new endpoint (or replaces one: an update, a rotation), with its audit entry.
    async fn put_endpoint(&self, endpoint: &Endpoint, audit: AuditNote) -> Result<(), RepoError>;

    async fn endpoint(&self, account_id: &str, id: &str) -> Result<Option<Endpoint>, RepoError>;

    async fn endpoints(&self, account_id: &str) -> Result<Vec<Endpoint>, RepoError>;

    /// Deletes the endpoint and every delivery it had; `false` if there was none.
    async fn delete_endpoint(&self, account_id: &str, id: &str, audit: AuditNote) -> Result<bool, RepoError>;

    /// Every enabled endpoint of every account (the dispatcher's round).
    async fn enabled_endpoints(&self) -> Result<Vec<Endpoint>, RepoError>;

    /// Hands the endpoint the account's events after its cursor (at most `limit`), each it
    /// wants as a pending delivery due at `t`, and moves the cursor past them; one
    /// transaction. Returns how many events it read.
    async fn hand_out(&self, account_id: &str, id: &str, t: u64, limit: usize) -> Result<usize, RepoError>;

    /// Pending deliveries due at `t`, soonest first, at most `limit`.
    async fn due(&self, t: u64, limit: usize) -> Result<Vec<Delivery>, RepoError>;

    /// Records an attempt at `delivery`: delivered (its record goes), failed and due again,
    /// or dead. The endpoint's counters move with it.
    async fn record_attempt(&self, delivery: &Delivery, attempt: Attempt) -> Result<(), RepoError>;

    /// The endpoint's pending deliveries and dead letters, oldest event first, at most `limit`.
    async fn deliveries(&self, account_id: &str, id: &str, limit: usize) -> Result<Vec<Delivery>, RepoError>;

    /// Makes the endpoint's dead letters (those of `event_ids`, or all) pending again, due at
    /// `t` with a fresh window. Returns how many.
    async fn replay(
        &self,
        account_id: &str,
        id: &str,
        event_ids: Option<&[u64]>,
        t: u64,
        audit: AuditNote,
    ) -> Result<usize, RepoError>;
}
