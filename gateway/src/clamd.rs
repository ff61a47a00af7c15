//! A small clamd client: INSTREAM with our own deadline and an exact reading of the reply.
//! Blocking on purpose: callers run it on a blocking thread, reading the spool at disk speed.
//! (We write our own rather than use clamav-client to own the deadline and the strict
//! "only `stream: OK` is clean" rule; see docs/decisions.md.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use upgate_config::ClamdAddr;

/// Bytes per INSTREAM chunk; well below clamd's StreamMaxLength granularity.
const CHUNK: usize = 64 * 1024;
/// A clamd reply is one short line; anything longer is malformed.
const MAX_REPLY: usize = 4096;

/// What clamd said about a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Exactly `stream: OK`.
    Clean,
    /// A signature matched; the name as clamd gave it.
    Infected(String),
    /// clamd read this file but gave no verdict on it (a limit hit, an error it reports
    /// about the stream). Never clean; retrying the same file will not help.
    NotScanned(String),
    /// clamd could not be asked: unreachable, timed out, reset, or an answer that is not
    /// clamd's protocol. Never clean; says nothing about the file.
    Unavailable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ClamdError {
    /// Connecting, sending or reading failed or took too long.
    #[error("clamd unreachable: {0}")]
    Io(#[from] std::io::Error),
    /// clamd answered something we do not understand.
    #[error("unexpected clamd reply: {0:?}")]
    Reply(String),
}

#[derive(Debug, Clone)]
pub struct Clamd {
    addr: ClamdAddr,
    timeout: Duration,
}

enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn set_deadline(&self, deadline: Instant) -> std::io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "scan deadline passed",
            ));
        }
        match self {
            Conn::Unix(s) => {
                s.set_read_timeout(Some(left))?;
                s.set_write_timeout(Some(left))
            }
            Conn::Tcp(s) => {
                s.set_read_timeout(Some(left))?;
                s.set_write_timeout(Some(left))
            }
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Unix(s) => s.flush(),
            Conn::Tcp(s) => s.flush(),
        }
    }
}

impl Clamd {
    pub fn new(addr: ClamdAddr, timeout: Duration) -> Clamd {
        Clamd { addr, timeout }
    }

    fn connect(&self, deadline: Instant) -> std::io::Result<Conn> {
        let conn = match &self.addr {
            ClamdAddr::Unix(path) => Conn::Unix(UnixStream::connect(path)?),
            ClamdAddr::Tcp(addr) => Conn::Tcp(TcpStream::connect_timeout(addr, self.timeout)?),
        };
        conn.set_deadline(deadline)?;
        Ok(conn)
    }

    /// One `z`-command (NUL-terminated) and its NUL-terminated reply.
    fn command(&self, cmd: &str) -> Result<String, ClamdError> {
        let deadline = Instant::now() + self.timeout;
        let mut conn = self.connect(deadline)?;
        conn.write_all(format!("z{cmd}\0").as_bytes())?;
        read_reply(&mut conn)
    }

    /// `PONG` or an error.
    pub fn ping(&self) -> Result<(), ClamdError> {
        match self.command("PING")?.as_str() {
            "PONG" => Ok(()),
            other => Err(ClamdError::Reply(other.into())),
        }
    }

    /// Engine and database version, e.g. `ClamAV 1.4.6/27000/Mon Nov 23 ...`.
    pub fn version(&self) -> Result<String, ClamdError> {
        let v = self.command("VERSION")?;
        if v.starts_with("ClamAV ") {
            Ok(v)
        } else {
            Err(ClamdError::Reply(v))
        }
    }

    /// Streams `data` to clamd and reads its verdict, all within our deadline.
    pub fn scan(&self, mut data: impl Read) -> Verdict {
        let deadline = Instant::now() + self.timeout;
        let result = (|| -> Result<String, ClamdError> {
            let mut conn = self.connect(deadline)?;
            conn.write_all(b"zINSTREAM\0")?;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = data.read(&mut buf)?;
                conn.set_deadline(deadline)?;
                let sent = conn
                    .write_all(&(n as u32).to_be_bytes())
                    .and_then(|()| conn.write_all(&buf[..n]));
                if let Err(e) = sent {
                    // clamd stops reading and answers when a limit is hit; its reply says why.
                    return read_reply(&mut conn).or(Err(ClamdError::Io(e)));
                }
                if n == 0 {
                    break;
                }
            }
            read_reply(&mut conn)
        })();
        match result {
            Ok(reply) => parse_reply(&reply),
            Err(e) => Verdict::Unavailable(e.to_string()),
        }
    }
}

fn read_reply(conn: &mut impl Read) -> Result<String, ClamdError> {
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match conn.read(&mut byte)? {
            0 => break,
            _ if byte[0] == 0 => break,
            _ => reply.push(byte[0]),
        }
        if reply.len() > MAX_REPLY {
            return Err(ClamdError::Reply("reply too long".into()));
        }
    }
    String::from_utf8(reply).map_err(|_| ClamdError::Reply("not UTF-8".into()))
}

/// Pure: the verdict in a clamd INSTREAM reply. Only an exact `stream: OK` is clean;
/// `Heuristics.Limits.Exceeded.*` means clamd gave up, so it is "not scanned", not infected.
pub fn parse_reply(reply: &str) -> Verdict {
    let reply = reply.trim_end_matches(['\n', '\0']);
    if reply == "stream: OK" {
        return Verdict::Clean;
    }
    if let Some(name) = reply
        .strip_prefix("stream: ")
        .and_then(|r| r.strip_suffix(" FOUND"))
    {
        if name.is_empty() || name.contains(['\n', '\r']) {
            return Verdict::Unavailable(format!("malformed reply {reply:?}"));
        }
        if name.starts_with("Heuristics.Limits.Exceeded") {
            return Verdict::NotScanned(format!("clamd limit hit: {name}"));
        }
        return Verdict::Infected(name.to_string());
    }
    if reply.ends_with(" ERROR") {
        return Verdict::NotScanned(format!("clamd said {reply:?}"));
    }
    Verdict::Unavailable(if reply.is_empty() {
        "empty reply".into()
    } else {
        format!("unexpected reply {reply:?}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_exact_ok_is_clean() {
        assert_eq!(parse_reply("stream: OK"), Verdict::Clean);
        assert_eq!(parse_reply("stream: OK\0"), Verdict::Clean);
        for not_clean in [
            "",
            "OK",
            "stream: OK ",
            "stream: ok",
            "stream:OK",
            "stream: OKAY",
            "INSTREAM size limit exceeded. ERROR",
            "stream: FOUND",
        ] {
            assert!(
                matches!(
                    parse_reply(not_clean),
                    Verdict::NotScanned(_) | Verdict::Unavailable(_)
                ),
                "{not_clean:?}"
            );
        }
    }

    #[test]
    fn found_is_infected_unless_a_limit_was_hit() {
        assert_eq!(
            parse_reply("stream: Eicar-Test-Signature FOUND"),
            Verdict::Infected("Eicar-Test-Signature".into())
        );
        assert!(matches!(
            parse_reply("stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND"),
            Verdict::NotScanned(_)
        ));
    }

    #[test]
    fn a_verdict_about_the_file_is_told_apart_from_a_scanner_failure() {
        // About the file: retrying it will not help, and the scanner is fine.
        assert!(matches!(
            parse_reply("INSTREAM size limit exceeded. ERROR"),
            Verdict::NotScanned(_)
        ));
        assert!(matches!(
            parse_reply("stream: Heuristics.Limits.Exceeded.MaxScanSize FOUND"),
            Verdict::NotScanned(_)
        ));
        // About the scanner: nothing was learned about the file.
        for broken in ["", "stream:", "stream: FOUND", "HTTP/1.1 400 Bad Request"] {
            assert!(
                matches!(parse_reply(broken), Verdict::Unavailable(_)),
                "{broken:?}"
            );
        }
    }

    #[test]
    fn an_unreachable_clamd_is_not_scanned_never_clean() {
        let clamd = Clamd::new(
            ClamdAddr::Unix("/nonexistent/clamd.sock".into()),
            Duration::from_secs(1),
        );
        assert!(matches!(clamd.scan(&b"hello"[..]), Verdict::Unavailable(_)));
        assert!(clamd.ping().is_err());
    }
}
