//! S13: the event streams. What each open stream costs the control plane (resident memory
//! per stream at a tenth of the streams and at all of them: flat means the same), and how
//! soon a stored file's event reaches the stream of its call while all those streams are
//! open: measured from the upload's answer (which follows the durable commit) and, as an
//! upper bound of commit-to-event, from the upload's first byte.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{upload, Bench, Slots, Target};
use crate::client::{self, Conn};
use crate::files::pdf;
use crate::proc_stat::rss;
use crate::report::{percentile, Row};
use crate::servers::upgate::create_call;
use crate::servers::UpgateOptions;

/// Connections used to create the idle streams' calls.
const SETUP_CONNS: usize = 64;

pub async fn run(b: &Bench) -> anyhow::Result<Vec<Row>> {
    let _ = rlimit::increase_nofile_limit(u64::from(u32::MAX));
    // All open at once during the uploads: the idle ones and one per upload of a round, at
    // the default cap of 10,000.
    let uploads = if b.quick { 100 } else { 300 };
    let streams = if b.quick { 1_000 } else { 10_000 } - uploads;
    let connection = keep_alive_cost(b, streams / 10).await?;
    let dir = b.scratch(false, "s13-upgate")?;
    let up = b.upgate(dir.path(), &UpgateOptions { clamd: None }).await?;
    let token = up.integration_token().to_string();

    // Idle streams, one per call, as voice sessions waiting for their callers.
    calls(up.control, &token, streams).await?;
    let base = rss(up.pid());
    let mut idle = Vec::with_capacity(streams);
    let tenth = streams / 10;
    for i in 0..tenth {
        idle.push(open(up.control, &token, &format!("s13-idle-{i}")).await?);
    }
    settle().await;
    let at_tenth = rss(up.pid()).saturating_sub(base) as f64 / tenth as f64;
    for i in tenth..streams {
        idle.push(open(up.control, &token, &format!("s13-idle-{i}")).await?);
    }
    settle().await;
    let at_all = rss(up.pid()).saturating_sub(base) as f64 / streams as f64;

    // Uploads, one after another, each on a call whose stream is open.
    let mut after_answer = Vec::with_capacity(uploads * b.rounds);
    let mut after_first_byte = Vec::with_capacity(uploads * b.rounds);
    let file = pdf(4096);
    let tls = b.tls(up.gateway.port(), true);
    for r in 0..b.rounds {
        let prefix = format!("s13-r{r}-");
        let links = up.links(&prefix, uploads, 16).await?;
        let mut watched = Vec::with_capacity(uploads);
        for i in 0..uploads {
            watched.push(open(up.control, &token, &format!("{prefix}{i}")).await?);
        }
        let slots = Slots::new(
            links
                .into_iter()
                .map(|mut l| {
                    l.left = 1;
                    l
                })
                .collect(),
        );
        let target = Target::upgate(slots);
        let mut conn = tls.connect().await?;
        for stream in watched.iter_mut() {
            let began = Instant::now();
            let heard = tokio::spawn(stream.take().context("stream")?.until("event: file_stored"));
            upload(&mut conn, &target, &file, "s13.pdf").await?;
            let answered = Instant::now();
            let (heard_at, back) = heard.await??;
            *stream = Some(back);
            after_answer.push(heard_at.saturating_duration_since(answered));
            after_first_byte.push(heard_at - began);
        }
    }
    after_answer.sort();
    after_first_byte.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let kib = 1024.0;
    drop(idle);
    Ok(vec![
        Row::new(
            "S13",
            &format!("memory per open stream, KiB, at {streams} (baseline: at {tenth})"),
            at_all / kib,
            Some(at_tenth / kib),
            false,
        ),
        Row::new(
            "S13",
            &format!("memory per open stream at {streams}, KiB (baseline: an idle keep-alive connection)"),
            at_all / kib,
            Some(connection / kib),
            false,
        ),
        Row::new(
            "S13",
            &format!(
                "answer -> file_stored on the call's stream, p50 ms ({} streams open)",
                streams + uploads
            ),
            ms(percentile(&after_answer, 50.0)),
            None,
            false,
        ),
        Row::new(
            "S13",
            "answer -> file_stored, p99 ms",
            ms(percentile(&after_answer, 99.0)),
            None,
            false,
        ),
        Row::new(
            "S13",
            "first byte of the upload -> file_stored, p99 ms (bounds commit -> event)",
            ms(percentile(&after_first_byte, 99.0)),
            None,
            false,
        ),
    ])
}

/// What an idle keep-alive connection to the control API costs in resident memory, in
/// bytes: the part of a stream's cost that is the HTTP connection's (on a server of its
/// own, so nothing else moves its memory).
async fn keep_alive_cost(b: &Bench, count: usize) -> anyhow::Result<f64> {
    let dir = b.scratch(false, "s13-keepalive")?;
    let up = b.upgate(dir.path(), &UpgateOptions { clamd: None }).await?;
    let base = rss(up.pid());
    let mut conns = Vec::with_capacity(count);
    for _ in 0..count {
        let mut conn = client::connect_plain(up.control).await?;
        let r = conn
            .request(&client::head("GET", "/healthz", &[], 0), &[])
            .await?;
        anyhow::ensure!(r.status == 200, "healthz answered {}", r.status);
        conns.push(conn);
    }
    settle().await;
    Ok(rss(up.pid()).saturating_sub(base) as f64 / count as f64)
}

/// Lets the server finish accepting before its memory is read.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Creates calls `s13-idle-0..count` over parallel connections.
async fn calls(control: std::net::SocketAddr, token: &str, count: usize) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..SETUP_CONNS {
        let token = token.to_string();
        tasks.spawn(async move {
            let mut conn: Conn<TcpStream> = client::connect_plain(control).await?;
            for i in (worker..count).step_by(SETUP_CONNS) {
                create_call(&mut conn, &token, &format!("s13-idle-{i}"), i).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// One open stream (its connection, past the response head), taken out while a reader
/// waits on it.
type Open = Option<Stream>;

async fn open(control: std::net::SocketAddr, token: &str, call: &str) -> anyhow::Result<Open> {
    let mut tcp = TcpStream::connect(control).await?;
    let head = format!(
        "GET /v1/calls/{call}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await?;
    let mut stream = Stream {
        tcp,
        buf: Vec::with_capacity(4096),
    };
    stream.fill_until(b"\r\n\r\n").await?;
    if !stream.buf.starts_with(b"HTTP/1.1 200") {
        bail!("stream refused: {}", String::from_utf8_lossy(&stream.buf));
    }
    Ok(Some(stream))
}

struct Stream {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Stream {
    async fn fill_until(&mut self, needle: &[u8]) -> anyhow::Result<usize> {
        loop {
            if let Some(at) = self.buf.windows(needle.len()).position(|w| w == needle) {
                return Ok(at);
            }
            let mut chunk = [0u8; 4096];
            let n = self.tcp.read(&mut chunk).await?;
            if n == 0 {
                bail!("the stream closed");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until `needle` (chunked framing and all: only the text matters here); when it
    /// arrived, and the stream back.
    async fn until(mut self, needle: &'static str) -> anyhow::Result<(Instant, Stream)> {
        let at = self.fill_until(needle.as_bytes()).await?;
        let heard = Instant::now();
        self.buf.drain(..at + needle.len());
        Ok((heard, self))
    }
}
