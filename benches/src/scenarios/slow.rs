//! S3: a thousand callers on bad networks at once. Each connection sends its request head
//! and the first 16 KiB of a 1 MiB file, then a kilobyte a second; memory is read while all
//! are in flight, then they finish at full speed and memory is read again once they are gone.

use std::sync::Arc;
use std::time::Duration;

use super::{slots, Bench, Target};
use crate::files::pdf;
use crate::proc_stat::{peak_rss, rss};
use crate::report::Row;
use crate::servers::UpgateOptions;

/// Trickling this long stays inside upgate's grace period for slow uploads (30 s).
const TRICKLE: Duration = Duration::from_secs(6);

pub async fn run(b: &Bench) -> anyhow::Result<Vec<Row>> {
    let uploads = if b.quick { 200 } else { 1000 };
    // Our side needs a descriptor per connection too.
    let _ = rlimit::increase_nofile_limit(u64::from(u32::MAX));
    let file = Arc::new(pdf(1024 * 1024));
    let (up_dir, ng_dir) = (b.scratch(false, "s3-upgate")?, b.scratch(false, "s3-nginx")?);
    let up = b.upgate(up_dir.path(), &UpgateOptions { clamd: None }).await?;
    let ng = b.nginx(ng_dir.path())?;
    let target = Target::upgate(slots(&up, "s3-", uploads).await?);
    let up_figures = in_flight(
        b.tls(up.gateway.port(), true),
        target,
        up.pid(),
        uploads,
        file.clone(),
    )
    .await?;
    let ng_figures = in_flight(b.tls(ng.port, true), Target::Nginx, ng.pid(), uploads, file).await?;
    let kib = |v: f64| v / 1024.0;
    Ok(vec![
        Row::new(
            "S3",
            &format!("RSS per in-flight upload, KiB ({uploads} uploads)"),
            kib(up_figures.per_upload),
            Some(kib(ng_figures.per_upload)),
            false,
        ),
        Row::new(
            "S3",
            "peak RSS per upload when all finish at once, KiB",
            kib(up_figures.peak_per_upload),
            Some(kib(ng_figures.peak_per_upload)),
            false,
        ),
        Row::new(
            "S3",
            "RSS after the uploads, % of before",
            up_figures.after_pct,
            Some(ng_figures.after_pct),
            false,
        ),
    ])
}

struct Memory {
    per_upload: f64,
    /// The high-water mark, reached when every upload sends the rest of its file at once.
    peak_per_upload: f64,
    after_pct: f64,
}

async fn in_flight(
    tls: crate::client::Tls,
    target: Target,
    pid: u32,
    uploads: usize,
    file: Arc<Vec<u8>>,
) -> anyhow::Result<Memory> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss(pid);
    let started = Arc::new(tokio::sync::Barrier::new(uploads + 1));
    let finish = Arc::new(tokio::sync::Barrier::new(uploads + 1));
    let connecting = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..uploads {
        let (tls, target, file) = (tls.clone(), target.clone(), file.clone());
        let (started, finish, connecting) = (started.clone(), finish.clone(), connecting.clone());
        tasks.spawn(async move {
            let opened = async {
                let _permit = connecting.acquire().await?;
                let mut conn = tls.connect().await?;
                let (head, body) = target.request(&file, &format!("slow-{n}"))?;
                conn.send(&head).await?;
                conn.send(body[0]).await?;
                conn.send(&body[1][..16 * 1024]).await?;
                conn.flush().await?;
                anyhow::Ok((conn, head, body))
            }
            .await;
            started.wait().await;
            // Every task reaches both barriers, failed or not, so none waits for ever.
            let trickled = async {
                let (mut conn, _head, body) = opened?;
                let mut at = 16 * 1024;
                let trickle_until = tokio::time::Instant::now() + TRICKLE;
                while tokio::time::Instant::now() < trickle_until {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    conn.send(&body[1][at..at + 1024]).await?;
                    conn.flush().await?;
                    at += 1024;
                }
                anyhow::Ok((conn, body, at))
            }
            .await;
            finish.wait().await;
            let (mut conn, body, at) = trickled?;
            conn.send(&body[1][at..]).await?;
            conn.send(body[2]).await?;
            conn.flush().await?;
            let r = conn.response().await?;
            if !target.stored(r.status) {
                anyhow::bail!("{} answered {}", target.name(), r.status);
            }
            anyhow::Ok(())
        });
    }
    started.wait().await;
    // Halfway through the trickle: every upload is open and has sent a few pieces.
    tokio::time::sleep(TRICKLE / 2).await;
    let during = rss(pid);
    finish.wait().await;
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss(pid);
    Ok(Memory {
        per_upload: during.saturating_sub(before) as f64 / uploads as f64,
        peak_per_upload: peak_rss(pid).saturating_sub(before) as f64 / uploads as f64,
        after_pct: after as f64 * 100.0 / before as f64,
    })
}
