//! The account's event log: every change on a call that integrations and the voice
//! platform follow (links issued and ended, uploads started, files stored or refused, SMS
//! handed over) is appended in the same transaction as the change itself, so a crash
//! between the two can neither lose an event nor announce a change that did not happen.

use async_trait::async_trait;

use super::event_bus::EventWatch;
use super::RepoError;
use crate::model::EventRecord;

#[async_trait]
pub trait EventRepo: Send + Sync + 'static {
    /// The account's events with an id above `after`, oldest first, at most `limit`. Ids
    /// are given in the order events became visible, so a reader that resumes after the
    /// last id it saw misses none and sees none twice.
    async fn events_after(
        &self,
        account_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, RepoError>;

    /// The same, for one call of the account.
    async fn call_events_after(
        &self,
        account_id: &str,
        call_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, RepoError>;

    /// The id of the account's newest event (0 before the first).
    async fn last_id(&self, account_id: &str) -> Result<u64, RepoError>;

    /// Wakes when the account's log (with `call_id`, that call's part of it) grows: watch
    /// first, then read after the last id seen, then wait, and no event goes unnoticed.
    fn watch(&self, account_id: &str, call_id: Option<&str>) -> EventWatch;
}
