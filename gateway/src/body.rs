//! Reading request bodies on our terms. Frames are gathered into pieces of `COALESCE` bytes
//! before any per-chunk stage sees them, so a body sent in tiny frames costs about what a
//! normal one does; a body made of absurdly small frames is cut off. Frames of a useful size
//! are passed on as they are (no copy); only small ones are copied together. Every pause is
//! bounded by the idle timeout and the whole body by a minimum average rate (after a grace
//! period), all checked by one timer per body, never one per frame. A body we refused is drained (bounded
//! in bytes and time) so the caller's browser can read our answer instead of a reset.

use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, Stream};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

/// Pieces handed to the stages: big enough that per-piece work is noise next to per-byte work.
pub const COALESCE: usize = 64 * 1024;
/// Frames at least this long go on without a copy; shorter ones are copied together, so the
/// stages see at most two chunks per this many bytes whatever the client's framing.
const SHARED_FRAME: usize = 4 * 1024;

/// One piece of a body: the chunks gathered for one trip to the stages, in order.
pub type Piece = Vec<Bytes>;
/// How much of a refused body we read and discard before giving up and closing.
pub const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;
/// How long we keep draining a refused body: a trickler cannot hold the connection.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);
/// Frames a body may take beyond one per `MIN_FRAME_BYTES` bytes: generous for the first
/// bytes, after which frames must average at least `MIN_FRAME_BYTES`. Real clients send
/// frames of kilobytes (whole TLS records); one-byte chunks exist only to burn our CPU.
/// Measured (release): a frame costs ~1.3 us however small, so 72-byte frames cost 4.4x a
/// normal upload per byte, 256-byte frames 1.8x.
const FRAME_ALLOWANCE: u64 = 1024;
const MIN_FRAME_BYTES: u64 = 256;
/// The pace is checked at most this often (and at least twice per idle timeout).
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// How a body must arrive.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// The longest pause between bytes.
    pub idle: Duration,
    /// Once `grace` has passed, the body must have averaged at least this many bytes a second.
    pub min_rate: u64,
    pub grace: Duration,
}

/// Why we stopped reading a body before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyCut {
    /// Nothing arrived for the idle timeout.
    #[error("the request body stalled")]
    Idle,
    /// The body averaged less than the minimum rate.
    #[error("the request body arrived slower than the minimum rate")]
    TooSlow,
    /// The body came in frames too small to be anything but an attempt to burn CPU.
    #[error("the request body arrived in pieces too small")]
    Fragmented,
}

pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// Reads a body in coalesced pieces under a `Pace`.
pub struct Reader {
    body: Incoming,
    pace: Pace,
    started: Instant,
    every: Duration,
    tick: Pin<Box<Sleep>>,
    bytes: u64,
    frames: u64,
    bytes_at_tick: u64,
    quiet: Duration,
    done: bool,
}

impl Reader {
    pub fn new(body: Incoming, pace: Pace) -> Reader {
        let every = CHECK_EVERY.min(pace.idle / 2).max(Duration::from_millis(10));
        let started = Instant::now();
        Reader {
            body,
            pace,
            started,
            every,
            tick: Box::pin(tokio::time::sleep_until(started + every)),
            bytes: 0,
            frames: 0,
            bytes_at_tick: 0,
            quiet: Duration::ZERO,
            done: false,
        }
    }

    /// The next piece of the body: `COALESCE` bytes or more, less only at its end. `None`
    /// once the body ended; after an error, nothing more.
    pub async fn next(&mut self) -> Option<Result<Piece, BodyError>> {
        let mut piece = Piece::new();
        let mut small = BytesMut::new();
        let mut len = 0;
        while !self.done {
            // A frame already here is taken without the timer's select (most of a fast
            // body's frames: what a frame costs matters, tests/cpu_amplification.rs); the
            // pace is checked whenever the body has to be waited for.
            let ready = match self.body.frame().now_or_never() {
                Some(frame) => Some(frame),
                None => tokio::select! {
                    biased;
                    frame = self.body.frame() => Some(frame),
                    () = &mut self.tick => None,
                },
            };
            match ready {
                None => {
                    if let Err(cut) = self.check_pace() {
                        self.done = true;
                        return Some(Err(Box::new(cut)));
                    }
                }
                Some(frame) => match frame {
                    None => self.done = true,
                    Some(Err(e)) => {
                        self.done = true;
                        return Some(Err(Box::new(e)));
                    }
                    Some(Ok(frame)) => {
                        let Ok(data) = frame.into_data() else { continue };
                        self.frames += 1;
                        self.bytes += data.len() as u64;
                        if self.frames > FRAME_ALLOWANCE + self.bytes / MIN_FRAME_BYTES {
                            self.done = true;
                            return Some(Err(Box::new(BodyCut::Fragmented)));
                        }
                        len += data.len();
                        if data.len() >= SHARED_FRAME {
                            if !small.is_empty() {
                                piece.push(small.split().freeze());
                            }
                            piece.push(data);
                        } else {
                            if small.capacity() == 0 {
                                // Room for a piece of small frames, once (grown by doubling
                                // it ended at twice `COALESCE`: docs/performance.md).
                                small.reserve(COALESCE);
                            }
                            small.extend_from_slice(&data);
                        }
                        if len >= COALESCE {
                            break;
                        }
                    }
                },
            }
        }
        if !small.is_empty() {
            piece.push(small.freeze());
        }
        (!piece.is_empty()).then_some(Ok(piece))
    }

    /// Runs on the timer: a stall longer than the idle timeout, or an average below the
    /// minimum rate once the grace period is over, ends the body.
    fn check_pace(&mut self) -> Result<(), BodyCut> {
        let now = Instant::now();
        if self.bytes == self.bytes_at_tick {
            self.quiet += self.every;
        } else {
            self.quiet = Duration::ZERO;
            self.bytes_at_tick = self.bytes;
        }
        if self.quiet >= self.pace.idle {
            return Err(BodyCut::Idle);
        }
        let elapsed = now - self.started;
        if elapsed >= self.pace.grace
            && (self.bytes as f64) < self.pace.min_rate as f64 * elapsed.as_secs_f64()
        {
            return Err(BodyCut::TooSlow);
        }
        self.tick.as_mut().reset(now + self.every);
        Ok(())
    }

    /// Reads and discards what is left, at most `DRAIN_LIMIT` bytes and `DRAIN_TIME`.
    pub async fn drain(mut self) {
        let stop = Instant::now() + DRAIN_TIME;
        let budget = self.bytes + DRAIN_LIMIT;
        let _ = tokio::time::timeout_at(stop, async {
            while let Some(Ok(_)) = self.next().await {
                if self.bytes > budget {
                    break;
                }
            }
        })
        .await;
    }

    /// Feeds the body into `tx` piece by piece; if the reader goes away first, drains the rest.
    pub async fn feed(mut self, tx: mpsc::Sender<Result<Piece, BodyError>>) {
        while let Some(item) = self.next().await {
            let failed = item.is_err();
            if tx.send(item).await.is_err() {
                return self.drain().await;
            }
            if failed {
                return;
            }
        }
    }
}

/// The receiving end of `Reader::feed`: a plain `Unpin` stream of the body's chunks.
pub struct BodyStream {
    pieces: mpsc::Receiver<Result<Piece, BodyError>>,
    ready: std::collections::VecDeque<Bytes>,
}

impl BodyStream {
    /// A stream and the sender a `Reader` feeds it through (two pieces in flight: enough to
    /// overlap reading with the stages, little enough that backpressure reaches the client).
    pub fn channel() -> (mpsc::Sender<Result<Piece, BodyError>>, BodyStream) {
        let (tx, rx) = mpsc::channel(2);
        let stream = BodyStream {
            pieces: rx,
            ready: Default::default(),
        };
        (tx, stream)
    }
}

impl Stream for BodyStream {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        loop {
            if let Some(chunk) = self.ready.pop_front() {
                return std::task::Poll::Ready(Some(Ok(chunk)));
            }
            match std::task::ready!(self.pieces.poll_recv(cx)) {
                Some(Ok(piece)) => self.ready.extend(piece),
                Some(Err(e)) => return std::task::Poll::Ready(Some(Err(e))),
                None => return std::task::Poll::Ready(None),
            }
        }
    }
}

/// Reads and discards a body we will not process, in the background, bounded in bytes and time.
pub fn drain(body: Incoming, pace: Pace) {
    tokio::spawn(Reader::new(body, pace).drain());
}
