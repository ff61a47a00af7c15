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
/// Bytes a second the slowest clamd we allow for reads a stream at (see `deadline_for`).
const SCAN_PACE: u64 = 8 << 20;
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

    pub fn addr(&self) -> &ClamdAddr {
        &self.addr
    }

    fn connect(&self, deadline: Instant) -> std::io::Result<Conn> {
        let conn = match &self.addr {
            ClamdAddr::Unix(path) => Conn::Unix(UnixStream::connect(path)?),
            ClamdAddr::Tcp(addr) => Conn::Tcp(TcpStream::connect_timeout(addr, self.timeout)?),
        };
        conn.set_deadline(deadline)?;
        Ok(conn)
    }

    /// One `z`-command (NUL-terminated) and its NUL-terminated reply, after which clamd closes.
    fn command(&self, cmd: &str) -> Result<String, ClamdError> {
        let deadline = Instant::now() + self.timeout;
        let mut conn = self.connect(deadline)?;
        conn.write_all(format!("z{cmd}\0").as_bytes())?;
        let reply = read_reply(&mut conn)?;
        expect_close(&mut conn)?;
        Ok(reply)
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
        parse_version(self.command("VERSION")?)
    }

    /// A connection that stays open between commands (`IDSESSION`): while it is open, every
    /// answer on it comes from the same clamd process.
    pub fn session(&self) -> Result<Session, ClamdError> {
        let mut conn = self.connect(Instant::now() + self.timeout)?;
        conn.write_all(b"zIDSESSION\0")?;
        Ok(Session {
            conn,
            next_id: 1,
            timeout: self.timeout,
        })
    }

    /// How long a scan of `len` bytes may take: the configured timeout, plus time for the
    /// bytes at a pace any clamd keeps (this one reads ~64 MiB/s), so that a large file is
    /// not cut off by a deadline set for small ones.
    pub fn deadline_for(&self, len: u64) -> Duration {
        self.timeout + Duration::from_secs(len / SCAN_PACE)
    }

    /// Streams `data` (`len` bytes) to clamd and reads its verdict, all within our deadline.
    pub fn scan(&self, mut data: impl Read, len: u64) -> Verdict {
        let deadline = Instant::now() + self.deadline_for(len);
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
            let reply = read_reply(&mut conn)?;
            expect_close(&mut conn)?;
            Ok(reply)
        })();
        match result {
            Ok(reply) => parse_reply(&reply),
            Err(e) => Verdict::Unavailable(e.to_string()),
        }
    }
}

/// A clamd `IDSESSION` connection. clamd numbers its replies (`3: PONG`); a reply with the
/// wrong number, or none, ends the session as broken.
pub struct Session {
    conn: Conn,
    next_id: u32,
    timeout: Duration,
}

impl Session {
    fn command(&mut self, cmd: &str) -> Result<String, ClamdError> {
        self.conn.set_deadline(Instant::now() + self.timeout)?;
        self.conn.write_all(format!("z{cmd}\0").as_bytes())?;
        let reply = read_reply(&mut self.conn)?;
        let id = self.next_id;
        self.next_id += 1;
        reply
            .strip_prefix(&format!("{id}: "))
            .map(str::to_string)
            .ok_or(ClamdError::Reply(reply))
    }

    pub fn ping(&mut self) -> Result<(), ClamdError> {
        match self.command("PING")?.as_str() {
            "PONG" => Ok(()),
            other => Err(ClamdError::Reply(other.into())),
        }
    }

    pub fn version(&mut self) -> Result<String, ClamdError> {
        parse_version(self.command("VERSION")?)
    }

    /// Waits up to `wait` for clamd to hang up. `true`: the session is over (clamd closed it,
    /// died, or sent something unasked); `false`: still open and quiet.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let set = match &self.conn {
            Conn::Unix(s) => s.set_read_timeout(Some(wait)),
            Conn::Tcp(s) => s.set_read_timeout(Some(wait)),
        };
        if set.is_err() {
            return true;
        }
        let mut byte = [0u8; 1];
        let quiet = matches!(
            self.conn.read(&mut byte),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
        );
        !quiet
    }
}

fn parse_version(v: String) -> Result<String, ClamdError> {
    if v.starts_with("ClamAV ") && v.len() > "ClamAV ".len() {
        Ok(v)
    } else {
        Err(ClamdError::Reply(v))
    }
}

/// Reads one reply up to its NUL terminator. A reply cut short (the connection closed
/// before the NUL) is not a reply: clamd always terminates what it says with `z` commands.
fn read_reply(conn: &mut impl Read) -> Result<String, ClamdError> {
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match conn.read(&mut byte)? {
            0 => return Err(ClamdError::Reply("reply without its NUL terminator".into())),
            _ if byte[0] == 0 => break,
            _ => reply.push(byte[0]),
        }
        if reply.len() > MAX_REPLY {
            return Err(ClamdError::Reply("reply too long".into()));
        }
    }
    String::from_utf8(reply).map_err(|_| ClamdError::Reply("not UTF-8".into()))
}

/// After a one-shot command clamd closes the connection: anything more is not clamd.
fn expect_close(conn: &mut impl Read) -> Result<(), ClamdError> {
    let mut byte = [0u8; 1];
    match conn.read(&mut byte) {
        Ok(0) => Ok(()),
        Ok(_) => Err(ClamdError::Reply("bytes after the reply".into())),
        // A reset after a complete reply loses nothing.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
        Err(e) => Err(ClamdError::Io(e)),
    }
}

/// Pure: the verdict in a clamd INSTREAM reply (without its NUL). Only an exact `stream: OK`
/// is clean; `Heuristics.Limits.Exceeded.*` means clamd gave up, so it is "not scanned".
pub fn parse_reply(reply: &str) -> Verdict {
    if reply == "stream: OK" {
        return Verdict::Clean;
    }
    if let Some(name) = reply
        .strip_prefix("stream: ")
        .and_then(|r| r.strip_suffix(" FOUND"))
    {
        let well_formed = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !well_formed {
            return Verdict::Unavailable(format!("malformed reply {reply:?}"));
        }
        if name.starts_with("Heuristics.Limits.Exceeded") {
            return Verdict::NotScanned(format!("clamd limit hit: {name}"));
        }
        return Verdict::Infected(name.to_string());
    }
    // An error about this stream's size is about the file; any other (a full or unwritable
    // temporary directory, memory) is about clamd, and retrying later may work.
    if reply.ends_with(" ERROR") && !reply.contains(['\0', '\n', '\r']) {
        if reply.contains("size limit exceeded") {
            return Verdict::NotScanned(format!("clamd said {reply:?}"));
        }
        return Verdict::Unavailable(format!("clamd said {reply:?}"));
    }
    Verdict::Unavailable(if reply.is_empty() {
        "empty reply".into()
    } else {
        format!("unexpected reply {reply:?}")
    })
}

#[cfg(test)]
mod tests;
