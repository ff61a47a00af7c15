//! Large files: S1 one at a time, S2 many at once, S7 the wait after the last byte on a
//! real disk (where upgate's fsyncs cost what they cost).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{cpu_per_gb, gbps, round, slots, Bench, Target, MIB};
use crate::files::pdf;
use crate::report::{median, Row};
use crate::servers::UpgateOptions;

/// upgate's largest file, less a little: what a caller's 50 MiB scan comes to.
pub const BIG: usize = 50 * MIB - 4096;

pub async fn single(b: &Bench) -> anyhow::Result<Vec<Row>> {
    let file = Arc::new(pdf(BIG));
    let per_round = if b.quick { 2 } else { 6 };
    let (up_dir, ng_dir) = (b.scratch(false, "s1-upgate")?, b.scratch(false, "s1-nginx")?);
    let up = b.upgate(up_dir.path(), &UpgateOptions { clamd: None }).await?;
    let ng = b.nginx(ng_dir.path())?;
    let target = Target::upgate(slots(&up, "s1-", per_round * b.rounds + 1).await?);
    let (up_tls, ng_tls) = (b.tls(up.gateway.port(), true), b.tls(ng.port, true));
    let mut figures: [Vec<f64>; 6] = Default::default();
    for _ in 0..b.rounds {
        let r = round(&up_tls, &target, up.pid(), 1, per_round, file.clone()).await?;
        figures[0].push(gbps(r.bytes, r.spent.wall.as_secs_f64()));
        figures[1].push(cpu_per_gb(r.spent.server_cpu, r.bytes));
        figures[2].push(cpu_per_gb(r.spent.client_cpu, r.bytes));
        let r = round(&ng_tls, &Target::Nginx, ng.pid(), 1, per_round, file.clone()).await?;
        figures[3].push(gbps(r.bytes, r.spent.wall.as_secs_f64()));
        figures[4].push(cpu_per_gb(r.spent.server_cpu, r.bytes));
        figures[5].push(cpu_per_gb(r.spent.client_cpu, r.bytes));
        ng.clear();
    }
    let [a, b_, c, d, e, f] = &mut figures;
    Ok(vec![
        Row::new("S1", "throughput, GB/s", median(a), Some(median(d)), true),
        Row::new("S1", "server CPU-s per GB", median(b_), Some(median(e)), false),
        Row::new("S1", "client CPU-s per GB", median(c), Some(median(f)), false),
    ])
}

pub async fn concurrent(b: &Bench) -> anyhow::Result<Vec<Row>> {
    let file = Arc::new(pdf(16 * MIB));
    let mut rows = Vec::new();
    let levels: &[usize] = if b.quick { &[8, 64] } else { &[8, 64, 256] };
    for &conns in levels {
        // A fresh upgate per level: the stored files of a level are gone before the next.
        let per_conn = (64 / conns).max(1);
        let (up_dir, ng_dir) = (b.scratch(false, "s2-upgate")?, b.scratch(false, "s2-nginx")?);
        let up = b.upgate(up_dir.path(), &UpgateOptions { clamd: None }).await?;
        let ng = b.nginx(ng_dir.path())?;
        let target = Target::upgate(slots(&up, "s2-", conns * per_conn * b.rounds).await?);
        let (up_tls, ng_tls) = (b.tls(up.gateway.port(), true), b.tls(ng.port, true));
        let (mut ups, mut ngs, mut up_cpu, mut ng_cpu) = (vec![], vec![], vec![], vec![]);
        for _ in 0..b.rounds {
            let r = round(&up_tls, &target, up.pid(), conns, per_conn, file.clone()).await?;
            ups.push(gbps(r.bytes, r.spent.wall.as_secs_f64()));
            up_cpu.push(cpu_per_gb(r.spent.server_cpu, r.bytes));
            let r = round(&ng_tls, &Target::Nginx, ng.pid(), conns, per_conn, file.clone()).await?;
            ngs.push(gbps(r.bytes, r.spent.wall.as_secs_f64()));
            ng_cpu.push(cpu_per_gb(r.spent.server_cpu, r.bytes));
            ng.clear();
        }
        let scenario = format!("S2 ×{conns}");
        rows.push(Row::new(
            &scenario,
            "aggregate GB/s",
            median(&mut ups),
            Some(median(&mut ngs)),
            true,
        ));
        rows.push(Row::new(
            &scenario,
            "server CPU-s per GB",
            median(&mut up_cpu),
            Some(median(&mut ng_cpu)),
            false,
        ));
    }
    Ok(rows)
}

/// From the last byte written to the answer, for a large file, data on the real disk.
pub async fn last_byte_on_disk(b: &Bench) -> anyhow::Result<Vec<Row>> {
    let file = pdf(BIG);
    let per_round = if b.quick { 2 } else { 4 };
    let (up_dir, ng_dir) = (b.scratch(true, "s7-upgate")?, b.scratch(true, "s7-nginx")?);
    let up = b.upgate(up_dir.path(), &UpgateOptions { clamd: None }).await?;
    let ng = b.nginx(ng_dir.path())?;
    let target = Target::upgate(slots(&up, "s7-", per_round * b.rounds).await?);
    let (up_tls, ng_tls) = (b.tls(up.gateway.port(), true), b.tls(ng.port, true));
    let (mut ups, mut ngs) = (vec![], vec![]);
    for _ in 0..b.rounds {
        for (tls, target, out) in [(&up_tls, &target, &mut ups), (&ng_tls, &Target::Nginx, &mut ngs)] {
            let mut conn = tls.connect().await?;
            for n in 0..per_round {
                out.push(last_byte(&mut conn, target, &file, n).await?.as_secs_f64() * 1000.0);
            }
        }
        ng.clear();
    }
    Ok(vec![Row::new(
        "S7",
        "last byte -> answer, ms (median)",
        median(&mut ups),
        Some(median(&mut ngs)),
        false,
    )])
}

/// Sends a whole upload and times only the wait between its last byte and the answer.
pub async fn last_byte<S>(
    conn: &mut crate::client::Conn<S>,
    target: &Target,
    file: &[u8],
    n: usize,
) -> anyhow::Result<Duration>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (head, body) = target.request(file, &format!("last-{n}"))?;
    conn.send(&head).await?;
    for piece in body {
        conn.send(piece).await?;
    }
    conn.flush().await?;
    let sent = Instant::now();
    let r = conn.response().await?;
    let waited = sent.elapsed();
    if !target.stored(r.status) {
        anyhow::bail!("{} answered {}", target.name(), r.status);
    }
    Ok(waited)
}
