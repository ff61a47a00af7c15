//! A real clamd for tests: Debian's daemon, our two-signature database, every path in a
//! temp directory, its TemporaryDirectory on tmpfs so scanned plaintext never hits a disk.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Clamd {
    child: Child,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
    tmp: tempfile::TempDir,
}

fn clamd_binary() -> PathBuf {
    for p in ["/usr/sbin/clamd", "/usr/bin/clamd"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("clamd is not installed: run .ci/run, or apt-get install clamav-daemon");
}

impl Clamd {
    /// Our test signatures and upgate's shipped depth signature, as an operator installs them.
    pub const DATABASES: &'static [&'static str] =
        &["tests/clamav/upgate-test.ndb", "config/clamav/upgate-canary.ndb"];

    pub fn start() -> Clamd {
        Clamd::start_with_limits("StreamMaxLength 64M\nMaxFileSize 64M\nMaxScanSize 256M\n")
    }

    /// A clamd with the given size limits (config lines), e.g. one set below upgate's cap.
    pub fn start_with_limits(limits: &str) -> Clamd {
        Clamd::start_custom(&format!("{limits}AlertExceedsMax yes\n"), Clamd::DATABASES, None)
    }

    /// A clamd with extra config lines, the given signature files (paths from the repository
    /// root), listening on `socket` if given (to stand in for one that was stopped).
    pub fn start_custom(lines: &str, databases: &[&str], socket: Option<&Path>) -> Clamd {
        Clamd::start_custom_in(lines, databases, socket, None)
    }

    /// Like `start_custom`, with its TemporaryDirectory made in `temp_parent` instead of on
    /// tmpfs (to stand in for a clamd that writes its streams to a disk).
    pub fn start_custom_in(
        lines: &str,
        databases: &[&str],
        socket: Option<&Path>,
        temp_parent: Option<&Path>,
    ) -> Clamd {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        for file in databases {
            let from = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            std::fs::copy(&from, db.join(from.file_name().unwrap())).unwrap();
        }
        let tmpfs = match temp_parent {
            Some(parent) => tempfile::tempdir_in(parent),
            None if Path::new("/dev/shm").is_dir() => tempfile::tempdir_in("/dev/shm"),
            None => tempfile::tempdir(),
        };
        let tmp = tmpfs.unwrap();
        let socket = socket.map_or_else(|| dir.path().join("clamd.sock"), Path::to_path_buf);
        let _ = std::fs::remove_file(&socket);
        let user = if unsafe_is_root() { "User root\n" } else { "" };
        let conf = format!(
            "DatabaseDirectory {db}\nLocalSocket {sock}\nTemporaryDirectory {tmp}\nForeground yes\n{user}\
{lines}MaxThreads 4\nLogFile {log}\n",
            db = db.display(),
            sock = socket.display(),
            tmp = tmp.path().display(),
            log = dir.path().join("clamd.log").display(),
        );
        let conf_path = dir.path().join("clamd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(clamd_binary())
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start clamd");
        let clamd = Clamd {
            child,
            socket,
            _dir: dir,
            tmp,
        };
        clamd.wait_ready();
        clamd
    }

    fn wait_ready(&self) {
        use std::io::{Read, Write};
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&self.socket) {
                let mut reply = String::new();
                if s.write_all(b"zPING\0").is_ok()
                    && s.read_to_string(&mut reply).is_ok()
                    && reply.starts_with("PONG")
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("clamd did not become ready in 60 s");
    }

    /// Its TemporaryDirectory, where it writes each stream before scanning it.
    pub fn temporary_directory(&self) -> &Path {
        self.tmp.path()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// clamd refuses to run as root unless told `User root`.
fn unsafe_is_root() -> bool {
    std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || std::fs::read_to_string("/proc/self/status")
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false)
}
