//! S9: with a real clamd. The scan runs after the last byte (a slow caller is never piped
//! live into clamd), so the wait after the last byte is compared with clamd scanning the
//! same bytes alone over INSTREAM: the difference is what upgate adds to the scan. upgate's
//! own CPU per GB is reported too (clamd's is its own, and not counted in it).

use std::sync::Arc;
use std::time::Instant;

use super::big::{last_byte, BIG};
use super::{cpu_per_gb, slots, Bench, Target};
use crate::files::pdf;
use crate::proc_stat::Meter;
use crate::report::{median, Row};
use crate::servers::{Clamd, UpgateOptions};

pub async fn run(b: &Bench) -> anyhow::Result<Vec<Row>> {
    let file = Arc::new(pdf(BIG));
    let per_round = if b.quick { 2 } else { 4 };
    let (clamd_dir, up_dir) = (b.scratch(false, "s9-clamd")?, b.scratch(false, "s9-upgate")?);
    let clamd = Arc::new(Clamd::start(clamd_dir.path())?);
    let options = UpgateOptions {
        clamd: Some(clamd.socket.clone()),
    };
    let up = b.upgate(up_dir.path(), &options).await?;
    let target = Target::upgate(slots(&up, "s9-", per_round * b.rounds).await?);
    let tls = b.tls(up.gateway.port(), true);
    let (mut waits, mut alone, mut cpu, mut totals) = (vec![], vec![], vec![], vec![]);
    for _ in 0..b.rounds {
        let mut conn = tls.connect().await?;
        for n in 0..per_round {
            let meter = Meter::start(up.pid());
            let began = Instant::now();
            waits.push(last_byte(&mut conn, &target, &file, n).await?.as_secs_f64() * 1000.0);
            totals.push(began.elapsed().as_secs_f64() * 1000.0);
            cpu.push(cpu_per_gb(meter.stop().server_cpu, file.len()));
        }
        for _ in 0..per_round {
            let (clamd, file) = (clamd.clone(), file.clone());
            let began = Instant::now();
            let reply = tokio::task::spawn_blocking(move || clamd.instream(&file)).await??;
            anyhow::ensure!(reply.ends_with("OK"), "clamd alone answered {reply}");
            alone.push(began.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(vec![
        Row::new(
            "S9",
            "last byte -> answer, ms (baseline: clamd INSTREAM alone)",
            median(&mut waits),
            Some(median(&mut alone)),
            false,
        ),
        Row::new(
            "S9",
            "whole upload with clamd, ms",
            median(&mut totals),
            None,
            false,
        ),
        Row::new(
            "S9",
            "upgate CPU-s per GB with clamd",
            median(&mut cpu),
            None,
            false,
        ),
    ])
}
