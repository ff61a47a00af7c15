//! S4: many small uploads on kept-alive connections: the per-request cost of everything
//! around the bytes (token, link, claim, spool, fsyncs, the record's commit).

use std::sync::Arc;
use std::time::Duration;

use super::{round, slots, Bench, Target};
use crate::files::pdf;
use crate::report::{median, percentile, Row};
use crate::servers::UpgateOptions;

const CONNS: usize = 32;

pub async fn run(b: &Bench) -> anyhow::Result<Vec<Row>> {
    let file = Arc::new(pdf(4096));
    let per_conn = if b.quick { 100 } else { 400 };
    let (up_dir, ng_dir) = (b.scratch(false, "s4-upgate")?, b.scratch(false, "s4-nginx")?);
    let up = b.upgate(up_dir.path(), &UpgateOptions { clamd: None }).await?;
    let ng = b.nginx(ng_dir.path())?;
    let target = Target::upgate(slots(&up, "s4-", CONNS * per_conn * b.rounds).await?);
    let (up_tls, ng_tls) = (b.tls(up.gateway.port(), true), b.tls(ng.port, true));
    let mut f: [Vec<f64>; 10] = Default::default();
    for _ in 0..b.rounds {
        for (tls, target, pid, at) in [
            (&up_tls, &target, up.pid(), 0),
            (&ng_tls, &Target::Nginx, ng.pid(), 5),
        ] {
            let r = round(tls, target, pid, CONNS, per_conn, file.clone()).await?;
            let n = r.latencies.len() as f64;
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            f[at].push(n / r.spent.wall.as_secs_f64());
            f[at + 1].push(ms(percentile(&r.latencies, 50.0)));
            f[at + 2].push(ms(percentile(&r.latencies, 99.0)));
            f[at + 3].push(r.spent.server_cpu.as_secs_f64() * 1e6 / n);
            f[at + 4].push(r.spent.client_cpu.as_secs_f64() * 1e6 / n);
        }
        ng.clear();
    }
    let names = [
        ("uploads/s", true),
        ("p50 ms", false),
        ("p99 ms", false),
        ("server CPU-µs per upload", false),
        ("client CPU-µs per upload", false),
    ];
    let (ups, ngs) = f.split_at_mut(5);
    Ok(names
        .iter()
        .zip(ups.iter_mut().zip(ngs.iter_mut()))
        .map(|((name, higher), (u, n))| Row::new("S4", name, median(u), Some(median(n)), *higher))
        .collect())
}
