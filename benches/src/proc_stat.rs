//! What a process costs, read from /proc: CPU time (user + system, its threads included)
//! and resident memory. Servers are measured from outside, as an operator would.

use std::time::Duration;

fn ticks_per_second() -> u64 {
    // USER_HZ: 100 on every Linux this runs on; /proc reports times in it.
    100
}

/// (utime + stime) of one process, from /proc/PID/stat.
fn stat_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / ticks_per_second()))
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

/// The process and its direct children (nginx's workers).
pub fn family(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            if let Some(child) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
                if parent(child) == Some(pid) {
                    pids.push(child);
                }
            }
        }
    }
    pids
}

/// CPU time of the process and its direct children, as they stand now.
pub fn cpu(pid: u32) -> Duration {
    family(pid).into_iter().filter_map(stat_cpu).sum()
}

/// This process's own CPU time (the load generator's).
pub fn own_cpu() -> Duration {
    stat_cpu(std::process::id()).unwrap_or_default()
}

/// A memory figure from /proc/PID/status (`VmRSS`, `VmHWM`) of the process and its direct
/// children, in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    family(pid)
        .into_iter()
        .filter_map(|p| {
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
            let line = status.lines().find(|l| l.starts_with(field))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .sum()
}

/// Resident memory of the process and its direct children, in bytes.
pub fn rss(pid: u32) -> u64 {
    status_bytes(pid, "VmRSS:")
}

/// The most resident memory the process (and each direct child) has had, in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    status_bytes(pid, "VmHWM:")
}

/// CPU used by a server and by us over one measured stretch.
pub struct Meter {
    pid: u32,
    server: Duration,
    client: Duration,
    started: std::time::Instant,
}

/// What one stretch cost.
#[derive(Debug, Clone, Copy)]
pub struct Spent {
    pub wall: Duration,
    pub server_cpu: Duration,
    pub client_cpu: Duration,
}

impl Meter {
    pub fn start(pid: u32) -> Meter {
        Meter {
            pid,
            server: cpu(pid),
            client: own_cpu(),
            started: std::time::Instant::now(),
        }
    }

    pub fn stop(self) -> Spent {
        Spent {
            wall: self.started.elapsed(),
            server_cpu: cpu(self.pid).saturating_sub(self.server),
            client_cpu: own_cpu().saturating_sub(self.client),
        }
    }
}
