//! The multipart parser: reads the body's framing strictly as the bytes go by and hands out
//! the part's head and its data. No preamble; every part's head capped and checked
//! (`part_head`), whichever part it is; a boundary inside the data must be a real
//! delimiter; at most `max_parts` parts; the closing boundary present and nothing after it
//! but one line break. Memory is a part head (at most `MAX_PART_HEAD`) and a delimiter's
//! length, whatever the body holds: data is handed on as slices of the pieces it came in
//! (no copy), except the few bytes held back because they might begin a delimiter.
//!
//! It replaced multer behind a strict wrapper: two parsers had to agree on every body, the
//! wrapper's delimiter search ran twice, and multer copied every byte into its own buffer
//! (docs/performance.md). The fuzz target still holds it to multer's reading of the same
//! bodies.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
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

/// What the parser found in the bytes fed to it, in body order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A part begins: its head, checked.
    Part(PartHead),
    /// The next bytes of the current part's data.
    Data(Bytes),
}

/// Hands on a part's data; nothing for an empty slice.
fn data(events: &mut impl Extend<Event>, bytes: Bytes) {
    if !bytes.is_empty() {
        events.extend([Event::Data(bytes)]);
    }
}

/// The framing as a pure state machine: feed it the body in any chunks.
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

    /// Checks the next bytes of the body, dropping the data (for checks and tests).
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), Ambiguous> {
        let mut events = Vec::new();
        self.parse(&Bytes::copy_from_slice(chunk), &mut events)
    }

    /// Parses the next bytes of the body, appending what they hold to `events`.
    pub fn parse(&mut self, chunk: &Bytes, events: &mut impl Extend<Event>) -> Result<(), Ambiguous> {
        let mut at = 0;
        while at < chunk.len() {
            at = self.step(chunk, at, events)?;
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

    /// Consumes bytes of `chunk` from `at` in the current state; returns where it stopped.
    fn step(
        &mut self,
        chunk: &Bytes,
        at: usize,
        events: &mut impl Extend<Event>,
    ) -> Result<usize, Ambiguous> {
        let rest = &chunk[at..];
        match &mut self.state {
            State::Opening(n) => {
                let take = (self.opening.len() - *n).min(rest.len());
                if rest[..take] != self.opening[*n..*n + take] {
                    return Err(Ambiguous("the body must start with its boundary"));
                }
                *n += take;
                if *n == self.opening.len() {
                    self.open_part()?;
                }
                Ok(at + take)
            }
            State::Head(head) => {
                // The end (CRLFCRLF) may straddle chunks: search from 3 bytes back.
                let from = head.len().saturating_sub(3);
                let room = MAX_PART_HEAD + 4 - head.len();
                let take = rest.len().min(room);
                head.extend_from_slice(&rest[..take]);
                if head.starts_with(b"\r\n") {
                    return Err(Ambiguous("a part without headers"));
                }
                match memchr::memmem::find(&head[from..], b"\r\n\r\n") {
                    Some(found) => {
                        let end = from + found;
                        let used = end + 4 - (head.len() - take);
                        let parsed = part_head::check_head(&head[..end])?;
                        self.heads.push(parsed.clone());
                        events.extend([Event::Part(parsed)]);
                        self.state = State::Data { tail: Vec::new() };
                        Ok(at + used)
                    }
                    None if head.len() > MAX_PART_HEAD => Err(Ambiguous("part head too large")),
                    None => Ok(at + take),
                }
            }
            State::Data { tail } => {
                let d = self.delimiter.needle().len();
                // A delimiter that starts in the tail and ends in this chunk comes first.
                let head_len = rest.len().min(d - 1);
                let mut window = std::mem::take(tail);
                let kept = window.len();
                window.extend_from_slice(&rest[..head_len]);
                // A delimiter starting in the tail first, then one in this chunk.
                if let Some(found) = self.delimiter.find(&window).filter(|&found| found < kept) {
                    data(events, Bytes::copy_from_slice(&window[..found]));
                    self.state = State::AfterDelimiter(Vec::with_capacity(2));
                    return Ok(at + found + d - kept);
                }
                if rest.len() < d - 1 {
                    // Too few bytes to settle the tail (and too few to hold a delimiter):
                    // hold back the last d-1 bytes of tail and chunk, hand on the rest.
                    let cut = window.len().saturating_sub(d - 1);
                    data(events, Bytes::copy_from_slice(&window[..cut]));
                    window.drain(..cut);
                    *tail = window;
                    return Ok(chunk.len());
                }
                // The window held the tail and d-1 bytes more: no delimiter starts in the
                // tail, so it is data.
                data(events, Bytes::copy_from_slice(&window[..kept]));
                if let Some(found) = self.delimiter.find(rest) {
                    data(events, chunk.slice(at..at + found));
                    self.state = State::AfterDelimiter(Vec::with_capacity(2));
                    return Ok(at + found + d);
                }
                // No delimiter: hand on all but the last d-1 bytes, which may begin one.
                let keep = d - 1;
                data(events, chunk.slice(at..chunk.len() - keep));
                window.clear();
                window.extend_from_slice(&rest[rest.len() - keep..]);
                *tail = window;
                Ok(chunk.len())
            }
            State::AfterDelimiter(seen) => {
                let take = (2 - seen.len()).min(rest.len());
                seen.extend_from_slice(&rest[..take]);
                match seen.as_slice() {
                    b"--" => self.state = State::Epilogue(0),
                    b"\r\n" => self.open_part()?,
                    b"-" | b"\r" => {}
                    _ => return Err(Ambiguous("a boundary in the data that is not a delimiter")),
                }
                Ok(at + take)
            }
            State::Epilogue(n) => {
                let take = (2 - *n).min(rest.len());
                if rest[..take] != b"\r\n"[*n..*n + take] {
                    return Err(Ambiguous("bytes after the closing boundary"));
                }
                *n += take;
                if take < rest.len() {
                    return Err(Ambiguous("bytes after the closing boundary"));
                }
                Ok(chunk.len())
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

/// Why a multipart body could not be read to its end.
#[derive(Debug)]
pub enum PartsError {
    /// The body itself failed: cut off, too slow, broken connection.
    Body(BodyError),
    /// The framing is not what we accept.
    Ambiguous(Ambiguous),
    /// The body is longer than the caller said it may be.
    TooLong,
}

/// A multipart body read as events: each piece of the body is parsed as it arrives, and the
/// first ambiguity, body error or excess byte ends it.
pub struct Parts<S> {
    body: S,
    framing: Framing,
    events: std::collections::VecDeque<Event>,
    read: u64,
    max_bytes: u64,
    ended: bool,
}

impl<S> Parts<S>
where
    S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
{
    /// Reads `body` with `boundary`, at most `max_parts` parts and `max_bytes` in all.
    pub fn new(body: S, boundary: &str, max_parts: usize, max_bytes: u64) -> Parts<S> {
        Parts {
            body,
            framing: Framing::new(boundary, max_parts),
            events: Default::default(),
            read: 0,
            max_bytes,
            ended: false,
        }
    }

    /// The next event; `None` once the body ended after its closing boundary.
    pub async fn next(&mut self) -> Result<Option<Event>, PartsError> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.read += chunk.len() as u64;
                    if self.read > self.max_bytes {
                        return Err(PartsError::TooLong);
                    }
                    self.framing
                        .parse(&chunk, &mut self.events)
                        .map_err(PartsError::Ambiguous)?;
                }
                Some(Err(e)) => return Err(PartsError::Body(e)),
                None => {
                    self.framing.finish().map_err(PartsError::Ambiguous)?;
                    self.ended = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
