//! The multipart wrapper: a check of the body's framing as the bytes go by, before multer
//! parses them. No preamble; every part's head capped and checked (`part_head`), whichever
//! part it is; a boundary inside the data must be a real delimiter; at most `max_parts`
//! parts; the closing boundary present and nothing after it but one line break. Memory is a
//! part head (at most `MAX_PART_HEAD`) and a delimiter's length, whatever the body holds.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use memchr::memmem::Finder;

use super::part_head::{self, Ambiguous, PartHead, MAX_PART_HEAD};
use crate::body::BodyError;

enum State {
    /// Matching `--boundary\r\n` at the very start; `n` bytes matched so far.
    Opening(usize),
    /// Collecting a part's head up to its empty line.
    Head(Vec<u8>),
    /// Inside a part's data; `tail` holds its last bytes, which may start a delimiter.
    Data { tail: Vec<u8> },
    /// Just after a delimiter: `--` closes, CRLF opens the next part.
    AfterDelimiter(Vec<u8>),
    /// After the closing delimiter; `n` bytes of its optional CRLF seen.
    Epilogue(usize),
}

/// The framing check as a pure state machine: feed it the body in any chunks.
pub struct Framing {
    opening: Vec<u8>,
    delimiter: Finder<'static>,
    max_parts: usize,
    parts: usize,
    state: State,
    heads: Vec<PartHead>,
}

impl Framing {
    pub fn new(boundary: &str, max_parts: usize) -> Framing {
        Framing {
            opening: format!("--{boundary}\r\n").into_bytes(),
            delimiter: Finder::new(format!("\r\n--{boundary}").as_bytes()).into_owned(),
            max_parts,
            parts: 0,
            state: State::Opening(0),
            heads: Vec::new(),
        }
    }

    /// The heads of the parts seen so far, in order.
    pub fn heads(&self) -> &[PartHead] {
        &self.heads
    }

    /// Checks the next bytes of the body.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), Ambiguous> {
        while !chunk.is_empty() {
            chunk = self.step(chunk)?;
        }
        Ok(())
    }

    /// The body ended: it must have ended after its closing boundary.
    pub fn finish(&self) -> Result<(), Ambiguous> {
        match self.state {
            State::Epilogue(_) => Ok(()),
            State::Opening(_) | State::Head(_) if self.parts == 0 => {
                Err(Ambiguous("the body ended before its first part"))
            }
            _ => Err(Ambiguous("the body ended before its closing boundary")),
        }
    }

    /// Consumes a prefix of `chunk` in the current state; returns the rest.
    fn step<'c>(&mut self, chunk: &'c [u8]) -> Result<&'c [u8], Ambiguous> {
        match &mut self.state {
            State::Opening(n) => {
                let take = (self.opening.len() - *n).min(chunk.len());
                if chunk[..take] != self.opening[*n..*n + take] {
                    return Err(Ambiguous("the body must start with its boundary"));
                }
                *n += take;
                if *n == self.opening.len() {
                    self.open_part()?;
                }
                Ok(&chunk[take..])
            }
            State::Head(head) => {
                // The end (CRLFCRLF) may straddle chunks: search from 3 bytes back.
                let from = head.len().saturating_sub(3);
                let room = MAX_PART_HEAD + 4 - head.len();
                let take = chunk.len().min(room);
                head.extend_from_slice(&chunk[..take]);
                if head.starts_with(b"\r\n") {
                    return Err(Ambiguous("a part without headers"));
                }
                match memchr::memmem::find(&head[from..], b"\r\n\r\n") {
                    Some(at) => {
                        let end = from + at;
                        let used = end + 4 - (head.len() - take);
                        let parsed = part_head::check_head(&head[..end])?;
                        self.heads.push(parsed);
                        self.state = State::Data { tail: Vec::new() };
                        Ok(&chunk[used..])
                    }
                    None if head.len() > MAX_PART_HEAD => Err(Ambiguous("part head too large")),
                    None => Ok(&chunk[take..]),
                }
            }
            State::Data { tail } => {
                let d = self.delimiter.needle().len();
                // A delimiter that starts in the tail and ends in this chunk comes first.
                let head_len = chunk.len().min(d - 1);
                let mut window = std::mem::take(tail);
                let kept = window.len();
                window.extend_from_slice(&chunk[..head_len]);
                let end = match self.delimiter.find(&window) {
                    Some(at) if at < kept => Some(at + d - kept),
                    _ => self.delimiter.find(chunk).map(|at| at + d),
                };
                match end {
                    Some(end) => {
                        self.state = State::AfterDelimiter(Vec::with_capacity(2));
                        Ok(&chunk[end..])
                    }
                    None => {
                        // Keep the last d-1 bytes of data: they may begin a delimiter.
                        if chunk.len() >= d - 1 {
                            window.clear();
                            window.extend_from_slice(&chunk[chunk.len() - (d - 1)..]);
                        } else {
                            window.drain(..window.len().saturating_sub(d - 1));
                        }
                        *tail = window;
                        Ok(&[])
                    }
                }
            }
            State::AfterDelimiter(seen) => {
                let take = (2 - seen.len()).min(chunk.len());
                seen.extend_from_slice(&chunk[..take]);
                match seen.as_slice() {
                    b"--" => self.state = State::Epilogue(0),
                    b"\r\n" => self.open_part()?,
                    b"-" | b"\r" => {}
                    _ => return Err(Ambiguous("a boundary in the data that is not a delimiter")),
                }
                Ok(&chunk[take..])
            }
            State::Epilogue(n) => {
                let take = (2 - *n).min(chunk.len());
                if chunk[..take] != b"\r\n"[*n..*n + take] {
                    return Err(Ambiguous("bytes after the closing boundary"));
                }
                *n += take;
                if take < chunk.len() {
                    return Err(Ambiguous("bytes after the closing boundary"));
                }
                Ok(&[])
            }
        }
    }

    fn open_part(&mut self) -> Result<(), Ambiguous> {
        self.parts += 1;
        if self.parts > self.max_parts {
            return Err(Ambiguous("one file per request"));
        }
        self.state = State::Head(Vec::new());
        Ok(())
    }
}

/// The body with its framing checked: each chunk passes on only after it was checked, and
/// the first ambiguity ends the stream with an error multer reports as a stream failure.
pub struct Checked<S> {
    body: S,
    framing: Framing,
    done: bool,
}

pub fn checked<S>(body: S, boundary: &str, max_parts: usize) -> Checked<S> {
    Checked {
        body,
        framing: Framing::new(boundary, max_parts),
        done: false,
    }
}

impl<S> Stream for Checked<S>
where
    S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
{
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let next = std::task::ready!(Pin::new(&mut self.body).poll_next(cx));
        let checked = match next {
            Some(Ok(chunk)) => self.framing.feed(&chunk).map(|()| Some(Ok(chunk))),
            Some(Err(e)) => Ok(Some(Err(e))),
            None => self.framing.finish().map(|()| None),
        };
        Poll::Ready(match checked {
            Ok(item) => item,
            Err(ambiguous) => {
                self.done = true;
                Some(Err(Box::new(ambiguous)))
            }
        })
    }
}

#[cfg(test)]
mod tests;
