//! S12: issuing upload links through the control API (the outbox SMS provider, so the
//! carrier's latency is not in the figure): throughput over 64 connections, and whether the
//! 1,000th link on one call costs what the first did.

use std::time::{Duration, Instant};

use super::Bench;
use crate::client;
use crate::proc_stat::Meter;
use crate::report::{median, percentile, Row};
use crate::servers::upgate::{api_call, create_call};
use crate::servers::UpgateOptions;

const CONNS: usize = 64;

pub async fn run(b: &Bench) -> anyhow::Result<Vec<Row>> {
    let per_conn = if b.quick { 30 } else { 100 };
    let dir = b.scratch(false, "s12-upgate")?;
    let up = b.upgate(dir.path(), &UpgateOptions { clamd: None }).await?;
    let (mut rates, mut p50s, mut p99s, mut cpus) = (vec![], vec![], vec![], vec![]);
    for r in 0..b.rounds {
        // The calls exist first: this measures issuing links, not creating calls.
        let mut conns = Vec::new();
        for worker in 0..CONNS {
            let mut conn = client::connect_plain(up.control).await?;
            for i in 0..per_conn {
                let n = (r * CONNS + worker) * per_conn + i;
                create_call(&mut conn, up.integration_token(), &format!("s12-{n}"), n).await?;
            }
            conns.push(conn);
        }
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(CONNS + 1));
        let mut tasks = tokio::task::JoinSet::new();
        for (worker, mut conn) in conns.into_iter().enumerate() {
            let (token, start) = (up.integration_token().to_string(), start.clone());
            tasks.spawn(async move {
                start.wait().await;
                let mut took = Vec::with_capacity(per_conn);
                for i in 0..per_conn {
                    let n = (r * CONNS + worker) * per_conn + i;
                    let began = Instant::now();
                    let (status, body) = api_call(
                        &mut conn,
                        &token,
                        "POST",
                        &format!("/v1/calls/s12-{n}/upload-links"),
                        None,
                    )
                    .await?;
                    anyhow::ensure!(status == 201, "link refused: {status} {body}");
                    took.push(began.elapsed());
                }
                anyhow::Ok(took)
            });
        }
        start.wait().await;
        let meter = Meter::start(up.pid());
        let mut took = Vec::new();
        while let Some(done) = tasks.join_next().await {
            took.extend(done??);
        }
        let spent = meter.stop();
        took.sort();
        let n = took.len() as f64;
        rates.push(n / spent.wall.as_secs_f64());
        p50s.push(percentile(&took, 50.0).as_secs_f64() * 1000.0);
        p99s.push(percentile(&took, 99.0).as_secs_f64() * 1000.0);
        cpus.push(spent.server_cpu.as_secs_f64() * 1e6 / n);
    }
    let (first, last) = one_call(&up, if b.quick { 300 } else { 1000 }).await?;
    Ok(vec![
        Row::new("S12", "links/s (64 connections)", median(&mut rates), None, true),
        Row::new("S12", "p50 ms", median(&mut p50s), None, false),
        Row::new("S12", "p99 ms", median(&mut p99s), None, false),
        Row::new("S12", "server CPU-µs per link", median(&mut cpus), None, false),
        Row::new(
            "S12",
            "last 100 links on one call, ms each (baseline: its first 100)",
            last,
            Some(first),
            false,
        ),
    ])
}

/// Issues `count` links one after another on one call: mean ms of the first and last 100.
async fn one_call(up: &crate::servers::Upgate, count: usize) -> anyhow::Result<(f64, f64)> {
    let mut conn = client::connect_plain(up.control).await?;
    let token = up.integration_token();
    create_call(&mut conn, token, "s12-one", 0).await?;
    let mut took: Vec<Duration> = Vec::with_capacity(count);
    for _ in 0..count {
        let began = Instant::now();
        let (status, body) =
            api_call(&mut conn, token, "POST", "/v1/calls/s12-one/upload-links", None).await?;
        anyhow::ensure!(status == 201, "link refused: {status} {body}");
        took.push(began.elapsed());
    }
    let mean = |d: &[Duration]| d.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / d.len() as f64;
    let mut first = vec![mean(&took[..100])];
    Ok((median(&mut first), mean(&took[count - 100..])))
}
