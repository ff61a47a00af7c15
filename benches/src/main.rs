//! `upgate-bench [--quick] [--rounds N] [all | s1 s2 ...]`: starts upgate and nginx (and
//! clamd for S9) on loopback, runs the scenarios, prints a Markdown table of medians.
//! `benches/run` builds everything and runs this; docs/performance.md reads the figures.

use std::time::Duration;

use anyhow::{bail, Context};
use upgate_bench::report::{table, Row};
use upgate_bench::scenarios::{self, Bench};
use upgate_bench::servers::Cert;

/// No scenario runs longer than this, whatever happens to the servers.
const SCENARIO_DEADLINE: Duration = Duration::from_secs(15 * 60);

fn main() -> anyhow::Result<()> {
    let mut quick = false;
    let mut rounds = None;
    let mut wanted = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--rounds" => rounds = Some(args.next().context("--rounds needs a number")?.parse()?),
            "-h" | "--help" => {
                println!("upgate-bench [--quick] [--rounds N] [all | SCENARIO...]\n\nscenarios:");
                for (name, what, _) in scenarios::all() {
                    println!("  {name:4} {what}");
                }
                return Ok(());
            }
            name => wanted.push(name.to_string()),
        }
    }
    let all = scenarios::all();
    if wanted.is_empty() || wanted.iter().any(|w| w == "all") {
        wanted = all.iter().map(|(n, _, _)| n.to_string()).collect();
    }
    for w in &wanted {
        if !all.iter().any(|(n, _, _)| n == w) {
            bail!("no scenario {w:?}; --help lists them");
        }
    }
    let mem = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let mem_dir = tempfile::Builder::new().prefix("upgate-bench-").tempdir_in(mem)?;
    let disk_dir = tempfile::Builder::new()
        .prefix("upgate-bench-")
        .tempdir_in("/var/tmp")?;
    let bench = Bench {
        cert: Cert::make(mem_dir.path())?,
        mem_dir: mem_dir.path().to_path_buf(),
        disk_dir: disk_dir.path().to_path_buf(),
        rounds: rounds.unwrap_or(if quick { 2 } else { 3 }),
        quick,
    };
    println!("{}", machine());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut rows: Vec<Row> = Vec::new();
    for (name, what, scenario) in all.into_iter().filter(|(n, _, _)| wanted.iter().any(|w| w == n)) {
        eprintln!("== {name}: {what}");
        let ran = runtime.block_on(async { tokio::time::timeout(SCENARIO_DEADLINE, scenario(&bench)).await });
        match ran {
            Ok(Ok(mut r)) => {
                eprint!("{}", table(&r));
                rows.append(&mut r);
            }
            Ok(Err(e)) => bail!("{name} failed: {e:#}"),
            Err(_) => bail!("{name} did not end within {SCENARIO_DEADLINE:?}"),
        }
    }
    println!("{}", table(&rows));
    Ok(())
}

/// The machine the figures come from, for the report.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let nginx = std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_else(|_| "nginx not found".into());
    format!("machine: {cores} cores, {cpu}, Linux {}; {nginx}", kernel.trim())
}
