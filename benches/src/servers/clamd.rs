//! Debian's clamd with the signatures the tests ship and upgate's depth canary, its
//! TemporaryDirectory on tmpfs, limits above upgate's largest file (as docs/operations.md
//! asks of operators).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::{is_root, repo_root, stop};

pub struct Clamd {
    child: Child,
    pub socket: PathBuf,
}

const DATABASES: &[&str] = &["tests/clamav/upgate-test.ndb", "config/clamav/upgate-canary.ndb"];

impl Clamd {
    pub fn start(dir: &Path) -> anyhow::Result<Clamd> {
        let db = dir.join("db");
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&db)?;
        std::fs::create_dir_all(&tmp)?;
        for file in DATABASES {
            let from = repo_root().join(file);
            std::fs::copy(&from, db.join(from.file_name().context("a file name")?))
                .with_context(|| format!("copy {}", from.display()))?;
        }
        let socket = dir.join("clamd.sock");
        let user = if is_root() { "User root\n" } else { "" };
        let conf = format!(
            "DatabaseDirectory {db}\nLocalSocket {sock}\nTemporaryDirectory {tmp}\nForeground yes\n{user}\
StreamMaxLength 64M\nMaxFileSize 64M\nMaxScanSize 256M\nAlertExceedsMax yes\nMaxThreads 4\nLogFile {log}\n",
            db = db.display(),
            sock = socket.display(),
            tmp = tmp.display(),
            log = dir.join("clamd.log").display(),
        );
        let conf_file = dir.join("clamd.conf");
        std::fs::write(&conf_file, conf)?;
        let binary = ["/usr/sbin/clamd", "/usr/bin/clamd"]
            .iter()
            .find(|p| Path::new(p).exists())
            .context("clamd is not installed: apt-get install clamav-daemon")?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&conf_file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let clamd = Clamd { child, socket };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if clamd.ping() {
                return Ok(clamd);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("clamd did not answer PING within 60 s")
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = UnixStream::connect(&self.socket) else {
            return false;
        };
        let mut reply = String::new();
        s.write_all(b"zPING\0").is_ok() && s.read_to_string(&mut reply).is_ok() && reply.starts_with("PONG")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Scans `bytes` with INSTREAM in 64 KiB chunks, as upgate feeds it, and returns the reply.
    pub fn instream(&self, bytes: &[u8]) -> anyhow::Result<String> {
        let mut s = UnixStream::connect(&self.socket)?;
        s.write_all(b"zINSTREAM\0")?;
        for chunk in bytes.chunks(64 * 1024) {
            s.write_all(&(chunk.len() as u32).to_be_bytes())?;
            s.write_all(chunk)?;
        }
        s.write_all(&[0, 0, 0, 0])?;
        let mut reply = String::new();
        s.read_to_string(&mut reply)?;
        Ok(reply.trim_end_matches('\0').to_string())
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
