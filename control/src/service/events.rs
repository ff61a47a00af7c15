//! The event log as readers follow it, and the sweeper that writes the events no request
//! causes (a link's expiry).

use std::time::Duration;

use upgate_gateway::control_link::LinkState;

use super::{Service, ServiceError};
use crate::model::{Call, Event, EventRecord};
use crate::repo::event_bus::EventWatch;
use upgate_gateway::sys::now;

/// How often expired links are announced: a stream waiting on a link's expiry ends within
/// this of it.
pub const EXPIRY_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How many due links one sweep batch takes before it looks again.
const EXPIRY_BATCH: usize = 256;

impl Service {
    /// Announces every link whose expiry has passed; returns how many expired.
    pub async fn expire_links(&self) -> Result<usize, ServiceError> {
        let t = now();
        let mut total = 0;
        loop {
            let n = self.repos.issue.expire_due(t, EXPIRY_BATCH).await?;
            total += n;
            if n < EXPIRY_BATCH {
                return Ok(total);
            }
        }
    }

    /// Runs [`Service::expire_links`] every [`EXPIRY_SWEEP_EVERY`], for good.
    pub async fn sweep_expired_links(&self) {
        let mut every = tokio::time::interval(EXPIRY_SWEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match self.expire_links().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(expired = n, "links expired"),
                Err(e) => tracing::warn!(error = %e, "the link expiry sweep failed; it runs again"),
            }
        }
    }

    /// Watches the account's log, or one call's part of it (see [`EventWatch`]).
    pub fn watch_events(&self, account_id: &str, call_id: Option<&str>) -> EventWatch {
        self.repos.events.watch(account_id, call_id)
    }

    /// The account's (or the call's) events after id `after`, oldest first, at most `limit`.
    pub async fn events_after(
        &self,
        account_id: &str,
        call_id: Option<&str>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, ServiceError> {
        let events = &self.repos.events;
        Ok(match call_id {
            Some(call_id) => {
                events
                    .call_events_after(account_id, call_id, after, limit)
                    .await?
            }
            None => events.events_after(account_id, after, limit).await?,
        })
    }

    /// Whether the call is over for its event stream: it has had a link, and every one of
    /// them has ended with its event in the log (an expiry counts once the sweeper wrote it).
    /// A call with no link yet is not over: the assistant may follow it before issuing one.
    pub async fn call_is_over(&self, call: &Call) -> Result<bool, ServiceError> {
        let links = self.repos.calls.gathered(call).await?.links;
        Ok(!links.is_empty() && links.iter().all(|l| l.state != LinkState::Active))
    }
}

impl Event {
    /// Whether this event ends one of the call's links (after it, the call may be over).
    pub fn ends_a_link(&self) -> bool {
        matches!(
            self,
            Event::LinkFinished { .. }
                | Event::LinkExpired { .. }
                | Event::LinkRevoked { .. }
                | Event::LinkSuperseded { .. }
        )
    }
}
