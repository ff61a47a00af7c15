//! Reading request bodies on our terms: every wait bounded by the idle timeout, and a body we
//! refused drained (up to a bound) in the background so the caller's browser can read our
//! answer instead of seeing a reset connection.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::mpsc;

/// How much of a refused body we read and discard before giving up and closing.
pub const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// The body stalled longer than the idle timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled")]
pub struct IdleTimeout;

pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// Moves the body's data into a bounded channel (backpressure reaches the client's TCP
/// window). When the reader goes away early, the pump switches to draining.
pub fn pump(
    mut body: Incoming,
    idle: Duration,
) -> impl Stream<Item = Result<Bytes, BodyError>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<Result<Bytes, BodyError>>(2);
    tokio::spawn(async move {
        let mut forwarding = true;
        let mut budget = DRAIN_LIMIT;
        loop {
            let frame = match tokio::time::timeout(idle, body.frame()).await {
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
                Ok(data) if forwarding => forwarding = tx.send(Ok(data)).await.is_ok(),
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
    let stream = pump(body, idle);
    drop(stream);
}
