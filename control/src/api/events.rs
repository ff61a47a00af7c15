//! The event log as Server-Sent Events: `GET /v1/calls/{call_id}/events` and
//! `GET /v1/events`. A stream sends the events after the client's `Last-Event-ID` (or
//! `?after=`), oldest first, then each new one as it is written; a comment line every
//! heartbeat when nothing happens. A call's stream ends, with an `end` event, once every
//! link the call has had has ended; reconnecting then gets `204`, which tells an
//! `EventSource` to stop. The account's stream runs until the client goes.
//!
//! A stream is a state machine polled by the connection ([`Tail`]), not a task: an idle
//! stream costs its state and a watch on the bus, nothing else.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::{ApiResponse, Problem};
use crate::model::{Call, EventRecord};
use crate::repo::event_bus::EventWatch;
use crate::service::Service;

/// Events read from the log per store read.
const PAGE: usize = 100;

/// What every stream of this control API shares: the heartbeat, the places (one per
/// stream, so streams never take the connections other requests need), and the signal that
/// the server is stopping (streams end then, rather than holding the drain up).
#[derive(Clone)]
pub struct Streams {
    heartbeat: Duration,
    places: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
}

impl Streams {
    pub fn new(heartbeat: Duration, max: usize, stop: watch::Receiver<bool>) -> Streams {
        Streams {
            heartbeat,
            places: Arc::new(Semaphore::new(max)),
            stop,
        }
    }

    /// Streams that never see a stop (tests, and servers that drop them by other means).
    pub fn unstopped(heartbeat: Duration, max: usize) -> Streams {
        let (tx, stop) = watch::channel(false);
        // The sender must outlive the streams, or `stop` reads as closed.
        std::mem::forget(tx);
        Streams::new(heartbeat, max, stop)
    }
}

/// Where the client resumes: `Last-Event-ID` (what an `EventSource` sends when it
/// reconnects), else `?after=`, else the start of the log.
pub fn resume_after(headers: &HeaderMap, query: Option<&str>) -> Result<u64, Problem> {
    let bad = || {
        Problem::bad_request(
            "invalid_last_event_id",
            "Last-Event-ID (or `after`) is the id of an event: a whole number.",
        )
    };
    if let Some(v) = headers.get("last-event-id") {
        let text = v.to_str().map_err(|_| bad())?.trim();
        // An EventSource that saw no id yet sends it empty: no id, so `after` may say.
        if !text.is_empty() {
            return text.parse().map_err(|_| bad());
        }
    }
    let after = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("after="));
    after.map_or(Ok(0), |v| v.parse().map_err(|_| bad()))
}

/// Opens a stream of the account's events, or of `call`'s, after id `after`.
/// What opened a stream, checked again at each heartbeat.
#[derive(Clone)]
pub enum Credential {
    /// An API token (the control API).
    Token(String),
    /// A console session's cookie secret.
    Session(String),
}

impl Credential {
    async fn still_valid(&self, svc: &Service) -> bool {
        match self {
            Credential::Token(token) => matches!(svc.authenticate(token).await, Ok(Ok(_))),
            Credential::Session(secret) => matches!(svc.session_still_valid(secret).await, Ok(true)),
        }
    }
}

pub async fn open(
    svc: Arc<Service>,
    streams: &Streams,
    token: Credential,
    account_id: String,
    call: Option<Call>,
    after: u64,
) -> Result<ApiResponse, Problem> {
    let Ok(place) = streams.places.clone().try_acquire_owned() else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "The control plane holds as many event streams as it is set to; try again shortly.",
        )
        .with_retry_after(5));
    };
    // Watch before the first read: an event written in between still wakes the stream.
    let watch = svc.watch_events(&account_id, call.as_ref().map(|c| c.id.as_str()));
    if let Some(call) = &call {
        let more = svc.events_after(&account_id, Some(&call.id), after, 1).await?;
        if more.is_empty() && svc.call_is_over(call, after).await? {
            let mut resp = Response::new(super::boxed(http_body_util::Full::new(Bytes::new())));
            *resp.status_mut() = StatusCode::NO_CONTENT;
            return Ok(resp);
        }
    }
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + streams.heartbeat, streams.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    svc.metrics.event_streams.inc();
    let tail = Tail {
        _open: Open {
            svc: svc.clone(),
            _place: place,
        },
        greet: true,
        svc,
        token,
        account_id,
        call,
        after,
        pending: VecDeque::new(),
        watch,
        heartbeat,
        stop: streams.stop.clone(),
        check_over: true,
        done: false,
    };
    // The body must be `Sync`; the stream is only ever polled through `&mut`, which
    // `SyncStream` makes plain to the compiler at no cost.
    let frames = sync_wrapper::SyncStream::new(futures_util::stream::unfold(tail, Tail::next));
    let body = StreamBody::new(frames);
    let mut resp = Response::new(body.boxed());
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies that buffer responses (nginx) would hold the events back.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// Counts the stream in the gauge, and holds its place, while it lives.
struct Open {
    svc: Arc<Service>,
    _place: OwnedSemaphorePermit,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.svc.metrics.event_streams.dec();
    }
}

/// One open stream: where it is in the log and what it waits on.
struct Tail {
    svc: Arc<Service>,
    /// Checked again at each heartbeat: a token or session revoked (or expired) while its
    /// stream is open ends the stream within a heartbeat.
    token: Credential,
    account_id: String,
    /// `Some` for a call's stream, which ends with the call.
    call: Option<Call>,
    /// The last id sent (or the client's resume point).
    after: u64,
    pending: VecDeque<EventRecord>,
    watch: EventWatch,
    heartbeat: tokio::time::Interval,
    stop: watch::Receiver<bool>,
    /// Whether to ask if the call is over once the log is read to its end: at the start,
    /// and after an event that ended a link.
    check_over: bool,
    done: bool,
    /// The first frame is the reconnection delay an `EventSource` should use.
    greet: bool,
    _open: Open,
}

type Item = Result<Frame<Bytes>, std::io::Error>;

impl Tail {
    async fn next(mut self) -> Option<(Item, Tail)> {
        loop {
            if self.done {
                return None;
            }
            if std::mem::take(&mut self.greet) {
                return Some((Ok(Frame::data(Bytes::from_static(b"retry: 3000\n\n"))), self));
            }
            if let Some(event) = self.pending.pop_front() {
                self.after = event.id;
                self.check_over |= event.event.may_end_the_call();
                return Some((Ok(Frame::data(event_frame(&event))), self));
            }
            let call_id = self.call.as_ref().map(|c| c.id.as_str());
            let read = self
                .svc
                .events_after(&self.account_id, call_id, self.after, PAGE)
                .await;
            match read {
                Ok(page) if !page.is_empty() => {
                    self.pending.extend(page);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    // The client reconnects with the last id it got and loses nothing.
                    tracing::warn!(error = %e, "an event stream could not read the log; closing it");
                    return None;
                }
            }
            if std::mem::take(&mut self.check_over) {
                if let Some(call) = &self.call {
                    match self.svc.call_is_over(call, self.after).await {
                        Ok(true) => {
                            self.done = true;
                            let end =
                                Bytes::from_static(b"event: end\ndata: {\"reason\":\"links_ended\"}\n\n");
                            return Some((Ok(Frame::data(end)), self));
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "an event stream could not read its call; closing it");
                            return None;
                        }
                    }
                }
            }
            let heartbeat = tokio::select! {
                _ = self.watch.changed() => false,
                _ = self.heartbeat.tick() => true,
                _ = self.stop.wait_for(|stopping| *stopping) => return None,
            };
            if heartbeat {
                if !self.token.still_valid(&self.svc).await {
                    return None;
                }
                return Some((Ok(Frame::data(Bytes::from_static(b": heartbeat\n\n"))), self));
            }
        }
    }
}

/// `id`, `event` (the kind) and `data` (the record as JSON, one line).
fn event_frame(event: &EventRecord) -> Bytes {
    let data = serde_json::to_string(event).expect("events serialize");
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        event.id,
        event.event.kind()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(last: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = last {
            h.insert("last-event-id", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_resume_point_comes_from_the_header_then_the_query() {
        assert_eq!(resume_after(&headers(None), None).unwrap(), 0);
        assert_eq!(resume_after(&headers(Some("42")), Some("after=7")).unwrap(), 42);
        assert_eq!(resume_after(&headers(Some("")), None).unwrap(), 0);
        // An empty header is no id: `after` still counts, and is checked.
        assert_eq!(resume_after(&headers(Some("")), Some("after=7")).unwrap(), 7);
        assert!(resume_after(&headers(Some("")), Some("after=18446744073709551616")).is_err());
        assert_eq!(resume_after(&headers(None), Some("x=1&after=7")).unwrap(), 7);
        for bad in ["-1", "abc", "1.5", "99999999999999999999999"] {
            let p = resume_after(&headers(Some(bad)), None).unwrap_err();
            assert_eq!(p.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        assert!(resume_after(&headers(None), Some("after=x")).is_err());
    }
}
