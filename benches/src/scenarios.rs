//! The load scenarios. Each starts the servers it needs, alternates upgate and its baseline
//! round by round (so both see the same machine weather), and returns its rows. Every one
//! is bounded by a count of uploads, never by waiting for a condition, so it ends by itself.

mod big;
mod events;
mod handshakes;
mod links;
mod scan;
mod slow;
mod small;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::bail;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::{self, Conn, Tls};
use crate::files::Multipart;
use crate::report::Row;
use crate::servers::{Cert, Link, Nginx, Upgate, UpgateOptions};

pub const MIB: usize = 1024 * 1024;

/// What every scenario shares: the certificate and where servers keep their files.
pub struct Bench {
    pub cert: Cert,
    /// On tmpfs: measures the pipeline, not the disk.
    pub mem_dir: PathBuf,
    /// On the machine's real disk, for S7.
    pub disk_dir: PathBuf,
    /// Rounds per server in each scenario (alternated).
    pub rounds: usize,
    /// Smaller counts for a quick look; the figures in docs/performance.md are full runs.
    pub quick: bool,
}

pub type Scenario =
    fn(&Bench) -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<Vec<Row>>> + '_>>;

/// The scenarios by name, in the order `all` runs them.
pub fn all() -> Vec<(&'static str, &'static str, Scenario)> {
    vec![
        ("s1", "one 50 MiB upload at a time", |b| Box::pin(big::single(b))),
        ("s2", "8 / 64 / 256 concurrent 16 MiB uploads", |b| {
            Box::pin(big::concurrent(b))
        }),
        ("s3", "1,000 slow uploads in flight: memory", |b| {
            Box::pin(slow::run(b))
        }),
        ("s4", "4 KiB uploads on keep-alive, 32 connections", |b| {
            Box::pin(small::run(b))
        }),
        ("s7", "last byte -> answer for 50 MiB on a real disk", |b| {
            Box::pin(big::last_byte_on_disk(b))
        }),
        ("s9", "50 MiB with clamd vs clamd INSTREAM alone", |b| {
            Box::pin(scan::run(b))
        }),
        ("s12", "link issuance", |b| Box::pin(links::run(b))),
        ("s13", "event streams: memory per stream, commit -> event", |b| {
            Box::pin(events::run(b))
        }),
        ("tls", "TLS handshakes, full and resumed", |b| {
            Box::pin(handshakes::run(b))
        }),
    ]
}

impl Bench {
    /// A fresh directory for one server's run, under tmpfs or the disk.
    pub fn scratch(&self, on_disk: bool, name: &str) -> anyhow::Result<tempfile::TempDir> {
        let parent = if on_disk { &self.disk_dir } else { &self.mem_dir };
        Ok(tempfile::Builder::new().prefix(name).tempdir_in(parent)?)
    }

    pub async fn upgate(&self, dir: &Path, options: &UpgateOptions) -> anyhow::Result<Upgate> {
        Upgate::start(dir, &self.cert, options).await
    }

    pub fn nginx(&self, dir: &Path) -> anyhow::Result<Nginx> {
        Nginx::start(dir, &self.cert)
    }

    pub fn tls(&self, port: u16, resume: bool) -> Tls {
        Tls::new(crate::servers::loopback(port), &self.cert.der, resume)
    }
}

/// Upload slots handed out to concurrent workers: each link's path once per file it takes.
pub struct Slots {
    paths: Vec<String>,
    next: AtomicUsize,
}

impl Slots {
    pub fn new(links: Vec<Link>) -> Arc<Slots> {
        let paths = links
            .into_iter()
            .flat_map(|l| std::iter::repeat_n(l.files_path, l.left as usize))
            .collect();
        Arc::new(Slots {
            paths,
            next: AtomicUsize::new(0),
        })
    }

    pub fn take(&self) -> anyhow::Result<&str> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match self.paths.get(i) {
            Some(p) => Ok(p),
            None => bail!(
                "the scenario ran out of link slots ({} prepared)",
                self.paths.len()
            ),
        }
    }
}

/// Links enough for `files` uploads.
pub async fn slots(up: &Upgate, prefix: &str, files: usize) -> anyhow::Result<Arc<Slots>> {
    let links = files.div_ceil(crate::servers::upgate::FILES_PER_LINK as usize);
    Ok(Slots::new(up.links(prefix, links, 16).await?))
}

/// Which server a request goes to, and how it wants a file sent.
#[derive(Clone)]
pub enum Target {
    /// A multipart POST to a link's files path, as the caller's page sends it.
    Upgate { slots: Arc<Slots>, form: Arc<Multipart> },
    /// A PUT of the bare file to its own path.
    Nginx,
}

impl Target {
    pub fn upgate(slots: Arc<Slots>) -> Target {
        Target::Upgate {
            slots,
            form: Arc::new(Multipart::pdf("statement.pdf")),
        }
    }

    /// The request head and the body pieces around `file` (sent as they are).
    pub fn request<'a>(&'a self, file: &'a [u8], name: &str) -> anyhow::Result<(Vec<u8>, [&'a [u8]; 3])> {
        Ok(match self {
            Target::Upgate { slots, form } => {
                let len = form.head.len() + file.len() + form.tail.len();
                let head = client::head(
                    "POST",
                    slots.take()?,
                    &[("Content-Type", &form.content_type)],
                    len,
                );
                (head, [&form.head[..], file, &form.tail[..]])
            }
            Target::Nginx => {
                let head = client::head("PUT", &format!("/put/{name}"), &[], file.len());
                (head, [&[][..], file, &[][..]])
            }
        })
    }

    /// Whether the answer means the file was stored.
    pub fn stored(&self, status: u16) -> bool {
        match self {
            Target::Upgate { .. } => status == 201,
            Target::Nginx => status == 201 || status == 204,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Target::Upgate { .. } => "upgate",
            Target::Nginx => "nginx",
        }
    }
}

/// One whole upload on a kept-alive connection; fails unless the file was stored.
pub async fn upload<S>(conn: &mut Conn<S>, target: &Target, file: &[u8], name: &str) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (head, body) = target.request(file, name)?;
    let r = conn.request(&head, &body).await?;
    if !target.stored(r.status) {
        bail!(
            "{} answered {}: {}",
            target.name(),
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    Ok(())
}

/// GB/s, the unit of the throughput rows (decimal, as network figures are).
pub fn gbps(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / 1e9
}

/// Seconds of CPU per (decimal) GB moved.
pub fn cpu_per_gb(cpu: std::time::Duration, bytes: usize) -> f64 {
    cpu.as_secs_f64() / (bytes as f64 / 1e9)
}

/// What one round of uploads cost and how long each took.
pub struct Round {
    pub spent: crate::proc_stat::Spent,
    pub latencies: Vec<std::time::Duration>,
    pub bytes: usize,
}

/// `conns` kept-alive connections, each sending `per_conn` copies of `file` one after the
/// other. Connections are made before the clock starts: this measures uploads, not handshakes.
pub async fn round(
    tls: &Tls,
    target: &Target,
    pid: u32,
    conns: usize,
    per_conn: usize,
    file: Arc<Vec<u8>>,
) -> anyhow::Result<Round> {
    let start = Arc::new(tokio::sync::Barrier::new(conns + 1));
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..conns {
        let (tls, target, file, start) = (tls.clone(), target.clone(), file.clone(), start.clone());
        tasks.spawn(async move {
            let conn = tls.connect().await;
            start.wait().await;
            let mut conn = conn?;
            let mut latencies = Vec::with_capacity(per_conn);
            for n in 0..per_conn {
                let began = std::time::Instant::now();
                upload(&mut conn, &target, &file, &format!("w{worker}-{}", n % 4)).await?;
                latencies.push(began.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    start.wait().await;
    let meter = crate::proc_stat::Meter::start(pid);
    let mut latencies = Vec::with_capacity(conns * per_conn);
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    let spent = meter.stop();
    latencies.sort();
    Ok(Round {
        spent,
        latencies,
        bytes: conns * per_conn * file.len(),
    })
}
