//! The event log as readers follow it, and the sweeper that writes the events no request
//! causes (a link's expiry).

use std::time::Duration;

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
            let (handled, expired) = self.repos.issue.expire_due(t, EXPIRY_BATCH).await?;
            total += expired;
            if handled < EXPIRY_BATCH {
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

    /// Whether the call is over as far as the log up to id `upto` tells: a link was issued,
    /// and every link issued has an event that ended it. Judged from the log alone, never
    /// from the links' records: a record can show a link ended a moment before the event
    /// that says so is visible, and a stream that ended then would never send that event.
    /// A call with no link yet is not over: the assistant may follow it before issuing one.
    /// Nor is a call with a file waiting in quarantine: its verdict is still to come.
    pub async fn call_is_over(&self, call: &Call, upto: u64) -> Result<bool, ServiceError> {
        let mut open = std::collections::HashSet::new();
        let mut held = std::collections::HashSet::new();
        let mut issued = false;
        let mut after = 0;
        loop {
            let page = self
                .events_after(&call.account_id, Some(&call.id), after, OVER_PAGE)
                .await?;
            for record in page.iter().take_while(|r| r.id <= upto) {
                match &record.event {
                    Event::LinkIssued { link_id, .. } => {
                        issued = true;
                        open.insert(link_id.clone());
                    }
                    e if e.ends_a_link() => {
                        open.remove(e.link_id());
                    }
                    Event::FileQuarantined(f) => {
                        held.insert(f.file_id.clone());
                    }
                    Event::FileReleased(d) | Event::FileInfected(d) | Event::FileUnscannable(d) => {
                        held.remove(&d.file_id);
                    }
                    _ => {}
                }
            }
            match page.last() {
                Some(last) if page.len() == OVER_PAGE && last.id < upto => after = last.id,
                _ => return Ok(issued && open.is_empty() && held.is_empty()),
            }
        }
    }
}

/// Events read per page when judging whether a call is over.
const OVER_PAGE: usize = 500;

impl Event {
    /// The link the event is about.
    pub fn link_id(&self) -> &str {
        match self {
            Event::UploadRefused(r) => &r.link_id,
            Event::LinkIssued { link_id, .. }
            | Event::LinkSuperseded { link_id, .. }
            | Event::LinkRevoked { link_id }
            | Event::LinkOpened { link_id }
            | Event::LinkExpired { link_id, .. }
            | Event::LinkFinished { link_id }
            | Event::UploadStarted { link_id }
            | Event::SmsSent { link_id, .. }
            | Event::SmsFailed { link_id, .. }
            | Event::SmsDelivered { link_id, .. }
            | Event::SmsUndelivered { link_id, .. } => link_id,
            Event::FileStored(f) | Event::FileQuarantined(f) => &f.link_id,
            Event::FileReleased(d) | Event::FileInfected(d) | Event::FileUnscannable(d) => &d.link_id,
        }
    }

    /// Whether the call may be over after this event: it ends one of the call's links, or
    /// decides the verdict of a file that waited in quarantine.
    pub fn may_end_the_call(&self) -> bool {
        self.ends_a_link()
            || matches!(
                self,
                Event::FileReleased { .. } | Event::FileInfected { .. } | Event::FileUnscannable { .. }
            )
    }

    /// Whether this event ends one of the call's links.
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

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use serde_json::json;
    use upgate_gateway::token::LinkId;

    use crate::service::fixture::fixture;

    /// Whether a call is over is read from the log up to the id a stream has sent, never
    /// from the links' records: a link stored as ended before its event was sent would
    /// otherwise end the stream without that event.
    #[tokio::test]
    async fn a_call_is_over_only_up_to_the_event_that_ended_its_last_link() {
        let f = fixture().await;
        let input =
            serde_json::from_value(json!({"assistant_id": "asst", "caller_number": "+14155550123"})).unwrap();
        let call = f.svc.put_call(&f.actor, "c", input).await.unwrap().0;
        assert!(!f.svc.call_is_over(&call, u64::MAX).await.unwrap(), "no link yet");
        let first = f.svc.issue_link(f.actor.clone(), "c".into(), None).await.unwrap();
        let second = f.svc.issue_link(f.actor.clone(), "c".into(), None).await.unwrap();
        assert_ne!(first.link.id, second.link.id);
        assert!(
            !f.svc.call_is_over(&call, u64::MAX).await.unwrap(),
            "the first is superseded, the second is open"
        );
        let id = LinkId::from_str(&second.link.id).unwrap();
        f.svc
            .repos
            .links
            .finish(&id, upgate_gateway::sys::now())
            .await
            .unwrap();
        let log = f
            .svc
            .events_after(&f.actor.account_id, Some("c"), 0, 100)
            .await
            .unwrap();
        let finished = log.last().unwrap();
        assert_eq!(finished.event.kind(), "link_finished");
        assert!(!f.svc.call_is_over(&call, finished.id - 1).await.unwrap());
        assert!(f.svc.call_is_over(&call, finished.id).await.unwrap());
    }
}
