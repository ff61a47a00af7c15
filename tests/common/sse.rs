//! A Server-Sent Events reader, as a voice platform's client reads the event streams:
//! frames split at blank lines, `id`, `event`, `data`, comments and `retry`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::upgate::Api;

/// One frame of the stream.
#[derive(Debug, Clone)]
pub enum Frame {
    Event {
        id: Option<u64>,
        event: String,
        data: Value,
    },
    /// A `: ...` line: the heartbeat.
    Comment(String),
    Retry(u64),
}

impl Frame {
    pub fn kind(&self) -> &str {
        match self {
            Frame::Event { event, .. } => event,
            Frame::Comment(_) => ":",
            Frame::Retry(_) => "retry",
        }
    }
}

pub struct Sse {
    resp: reqwest::Response,
    buf: String,
}

/// Opens `path` on the control API; the status and, for a 200, the stream.
pub async fn open(api: &Api, path: &str, last_event_id: Option<u64>) -> (StatusCode, Option<Sse>) {
    let mut req = api
        .http
        .get(format!("{}{path}", api.base))
        .bearer_auth(&api.token)
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    if status != StatusCode::OK {
        return (status, None);
    }
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    (
        status,
        Some(Sse {
            resp,
            buf: String::new(),
        }),
    )
}

impl Sse {
    /// The next frame within `within`; `None` once the server has closed the stream.
    /// Panics if nothing comes in time.
    pub async fn next(&mut self, within: Duration) -> Option<Frame> {
        tokio::time::timeout(within, self.read())
            .await
            .unwrap_or_else(|_| panic!("no frame within {within:?}"))
    }

    async fn read(&mut self) -> Option<Frame> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let text: String = self.buf.drain(..end + 2).collect();
                return Some(parse(text.trim_end_matches('\n')));
            }
            let chunk = self.resp.chunk().await.expect("the stream reads")?;
            self.buf.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next event, skipping heartbeats and the retry hint.
    pub async fn event(&mut self, within: Duration) -> Option<Frame> {
        loop {
            match self.next(within).await? {
                f @ Frame::Event { .. } => return Some(f),
                _ => continue,
            }
        }
    }
}

fn parse(text: &str) -> Frame {
    let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            return Frame::Comment(comment.trim().to_string());
        }
        let (field, value) = line.split_once(": ").unwrap_or((line, ""));
        match field {
            "id" => id = Some(value.parse().expect("numeric ids")),
            "event" => event = value.to_string(),
            "data" => data.push_str(value),
            "retry" => return Frame::Retry(value.parse().expect("retry in ms")),
            other => panic!("unexpected field {other:?} in {text:?}"),
        }
    }
    let data = serde_json::from_str(&data).unwrap_or_else(|e| panic!("data is JSON ({e}): {text:?}"));
    Frame::Event { id, event, data }
}
