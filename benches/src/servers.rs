//! The servers under test, started by the load generator and stopped when dropped:
//! upgate (this workspace's release build), nginx (Debian's) and clamd (Debian's).
//! Both web servers use one certificate, made here, and TLS 1.3.

mod clamd;
mod nginx;
pub mod upgate;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

pub use clamd::Clamd;
pub use nginx::Nginx;
pub use upgate::{Link, Upgate, UpgateOptions};

use rustls::pki_types::CertificateDer;

/// The repository's root, for the clamd signature files the tests ship.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Waits until something accepts connections on `addr`.
pub fn wait_listening(addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("{what} did not listen on {addr} within 60 s")
}

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files in `dir`.
pub struct Cert {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub der: CertificateDer<'static>,
}

impl Cert {
    pub fn make(dir: &Path) -> anyhow::Result<Cert> {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])?;
        let cert_file = dir.join("cert.pem");
        let key_file = dir.join("key.pem");
        std::fs::write(&cert_file, made.cert.pem())?;
        std::fs::write(&key_file, made.key_pair.serialize_pem())?;
        Ok(Cert {
            cert_file,
            key_file,
            der: made.cert.der().clone(),
        })
    }
}

/// Stops a server politely (SIGTERM, which both nginx and upgate take as "stop"), then
/// for sure.
fn stop(child: &mut Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Servers started as root drop to an unprivileged user unless told to stay.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
