//! Reading request bodies on our terms: every wait bounded by the idle timeout, the whole
//! body by a deadline, and a body we refused drained (up to a bound in bytes and time) in
//! the background so the caller's browser can read our answer instead of a reset connection.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How much of a refused body we read and discard before giving up and closing.
pub const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;
/// How long we keep draining a refused body: a trickler cannot hold the connection.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The body stalled longer than the idle timeout, or outlasted its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled or was too slow")]
pub struct IdleTimeout;

pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// Moves the body's data into a bounded channel (backpressure reaches the client's TCP
/// window). Each frame must come within `idle`, the whole body before `deadline`. When the
/// reader goes away early, the pump switches to draining.
pub fn pump(mut body: Incoming, idle: Duration, deadline: Instant) -> BodyStream {
    let (tx, rx) = mpsc::channel::<Result<Bytes, BodyError>>(2);
    tokio::spawn(async move {
        let mut forwarding = true;
        let mut budget = DRAIN_LIMIT;
        let mut deadline = deadline;
        loop {
            let wait = (Instant::now() + idle).min(deadline);
            let frame = match tokio::time::timeout_at(wait, body.frame()).await {
                Err(_) => Err(Box::new(IdleTimeout) as BodyError),
                Ok(None) => break,
                Ok(Some(Err(e))) => Err(Box::new(e) as BodyError),
                Ok(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => Ok(data),
                    Err(_) => continue,
                },
            };
            match frame {
                Err(e) => {
                    if forwarding {
                        let _ = tx.send(Err(e)).await;
                    }
                    break;
                }
                Ok(data) if forwarding => {
                    forwarding = tx.send(Ok(data)).await.is_ok();
                    if !forwarding {
                        deadline = deadline.min(Instant::now() + DRAIN_TIME);
                    }
                }
                Ok(data) => match budget.checked_sub(data.len() as u64) {
                    Some(left) => budget = left,
                    None => break,
                },
            }
        }
    });
    BodyStream(rx)
}

/// The receiving end of [`pump`]: a plain `Unpin` stream of the body's data.
pub struct BodyStream(mpsc::Receiver<Result<Bytes, BodyError>>);

impl Stream for BodyStream {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Reads and discards a body we will not process, bounded in bytes and time.
pub fn drain(body: Incoming, idle: Duration) {
    drop(pump(body, idle, Instant::now() + DRAIN_TIME));
}
