//! TLS handshakes per second, full and resumed (TLS 1.3 tickets, as a phone reconnecting
//! after a drop offers them): each connection makes its handshake, asks for /healthz, and
//! closes. Four clients at once.

use std::time::Instant;

use super::Bench;
use crate::client::{self, Tls};
use crate::proc_stat::Meter;
use crate::report::{median, Row};
use crate::servers::UpgateOptions;

const CLIENTS: usize = 4;

pub async fn run(b: &Bench) -> anyhow::Result<Vec<Row>> {
    let per_client = if b.quick { 100 } else { 500 };
    let (up_dir, ng_dir) = (b.scratch(false, "tls-upgate")?, b.scratch(false, "tls-nginx")?);
    let up = b.upgate(up_dir.path(), &UpgateOptions { clamd: None }).await?;
    let ng = b.nginx(ng_dir.path())?;
    let mut rows = Vec::new();
    for resume in [false, true] {
        let (mut ups, mut ngs, mut up_cpu, mut ng_cpu) = (vec![], vec![], vec![], vec![]);
        for _ in 0..b.rounds {
            for (port, pid, rate, cpu) in [
                (up.gateway.port(), up.pid(), &mut ups, &mut up_cpu),
                (ng.port, ng.pid(), &mut ngs, &mut ng_cpu),
            ] {
                let tls = b.tls(port, resume);
                // One connection first, so that a resuming client holds a ticket.
                hello(&tls).await?;
                let meter = Meter::start(pid);
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..CLIENTS {
                    let tls = tls.clone();
                    tasks.spawn(async move {
                        for _ in 0..per_client {
                            hello(&tls).await?;
                        }
                        anyhow::Ok(())
                    });
                }
                while let Some(done) = tasks.join_next().await {
                    done??;
                }
                let spent = meter.stop();
                let n = (CLIENTS * per_client) as f64;
                rate.push(n / spent.wall.as_secs_f64());
                cpu.push(spent.server_cpu.as_secs_f64() * 1e6 / n);
            }
        }
        let kind = if resume { "resumed" } else { "full" };
        rows.push(Row::new(
            "TLS",
            &format!("{kind} handshakes/s"),
            median(&mut ups),
            Some(median(&mut ngs)),
            true,
        ));
        rows.push(Row::new(
            "TLS",
            &format!("server CPU-µs per {kind} handshake"),
            median(&mut up_cpu),
            Some(median(&mut ng_cpu)),
            false,
        ));
    }
    Ok(rows)
}

async fn hello(tls: &Tls) -> anyhow::Result<()> {
    let began = Instant::now();
    let mut conn = tls.connect().await?;
    let head = client::head("GET", "/healthz", &[("Connection", "close")], 0);
    let r = conn.request(&head, &[]).await?;
    anyhow::ensure!(
        r.status == 200,
        "/healthz answered {} after {:?}",
        r.status,
        began.elapsed()
    );
    Ok(())
}
