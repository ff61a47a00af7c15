//! The watch: a thread that proves clamd, then holds a session open to it (the tether) and
//! pings it. clamd closing that session means the process we proved is gone (stopped,
//! crashed, restarted with another database or other limits): trust is withdrawn at once and
//! the next clamd must prove itself again. A periodic re-check catches a database reload
//! inside the same process. While the tether holds, the depth is proved deeper toward the
//! ceiling, one step per tick (see `canary::deepen`).

use std::sync::Weak;
use std::time::{Duration, Instant};

use super::canary::{self, Proven};
use super::health::Health;
use crate::clamd::Clamd;

/// How often the tether pings clamd; it notices a closed session at once regardless.
const TICK: Duration = Duration::from_secs(5);
/// How often a running depth step is checked for its end (and the tether pinged).
const STEP_TICK: Duration = Duration::from_millis(250);
/// How often the same process re-proves that it detects (and says its database version).
const RECHECK: Duration = Duration::from_secs(60);
/// Waits between attempts while clamd is down.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(15);

/// A tether that held at least this long was a steady clamd: proving a new one starts
/// again without delay. One that broke sooner backs off like a failed proof, so a clamd that
/// keeps dropping sessions is not made to scan the depth canary in a tight loop.
const STEADY: Duration = Duration::from_secs(60);

/// Runs until the scanner that owns `health` is dropped.
pub fn run(clamd: Clamd, health: Weak<Health>, cap: u64) {
    let mut retry = RETRY_MIN;
    loop {
        let Some(h) = health.upgrade() else { return };
        match prove_tethered(&clamd, cap, &|| h.canary_missed()) {
            Ok((session, proven)) => {
                let generation = h.up(proven.clone());
                drop(h);
                let held = Instant::now();
                let Some(why) = hold(&clamd, session, proven, &health, generation, cap) else {
                    return;
                };
                let Some(h) = health.upgrade() else { return };
                h.down(why);
                if held.elapsed() >= STEADY {
                    // A steady clamd went away: prove the next one at once.
                    retry = RETRY_MIN;
                    continue;
                }
            }
            Err(why) => {
                h.down(why);
            }
        }
        std::thread::sleep(retry);
        retry = (retry * 2).min(RETRY_MAX);
    }
}

/// Opens the tether first and checks it is still open after the canaries, so that the
/// canaries and every later scan speak to one and the same clamd process.
fn prove_tethered(
    clamd: &Clamd,
    cap: u64,
    missed: &dyn Fn(),
) -> Result<(crate::clamd::Session, Proven), String> {
    let mut session = clamd.session().map_err(|e| e.to_string())?;
    session.ping().map_err(|e| e.to_string())?;
    let proven = canary::prove(clamd, cap, missed)?;
    session
        .ping()
        .map_err(|_| "clamd restarted while proving itself".to_string())?;
    Ok((session, proven))
}

/// Holds the tether while clamd stays the process we proved. `Some(why)` when trust must go;
/// `None` when the scanner was dropped.
fn hold(
    clamd: &Clamd,
    mut session: crate::clamd::Session,
    mut proven: Proven,
    health: &Weak<Health>,
    generation: u64,
    cap: u64,
) -> Option<String> {
    let mut checked = Instant::now();
    let mut deeper = Deeper::default();
    loop {
        match deeper.poll(clamd, &proven, cap) {
            Ok(None) => {}
            Ok(Some(step)) => {
                proven.depth = step.depth;
                proven.deepening = step.deepening;
                proven.refused = step.refused;
                proven.warnings = step.warnings;
                health.upgrade()?.refresh(generation, proven.clone());
            }
            Err(why) => return Some(why),
        }
        // While a step runs, its end is looked for sooner: the next one starts without
        // waiting out a whole tick.
        let wait = if deeper.running.is_some() { STEP_TICK } else { TICK };
        let closed = session.closed_within(wait);
        let h = health.upgrade()?;
        if closed {
            return Some("clamd closed its connection (stopped or restarted): scanning is paused until it proves itself again".into());
        }
        if h.generation() != generation {
            // A scan saw clamd fail: prove it again from the start.
            return Some("clamd failed a scan: proving it again".into());
        }
        if let Err(e) = session.ping() {
            return Some(format!("clamd stopped answering: {e}"));
        }
        if checked.elapsed() >= RECHECK {
            checked = Instant::now();
            let engine = match session.version() {
                Ok(engine) => engine,
                Err(e) => return Some(format!("clamd stopped answering: {e}")),
            };
            if let Err(why) = canary::detects(clamd, &|| h.canary_missed()) {
                return Some(why);
            }
            if engine != proven.engine {
                // freshclam reloaded the database in the same process: limits are unchanged.
                proven.engine = engine;
                h.refresh(generation, proven.clone());
            }
        }
    }
}

/// The steps that prove clamd deeper, each on a thread of its own: a step at gigabytes
/// takes clamd a minute, longer than its idle timeout for the tether, which must go on
/// being pinged meanwhile.
#[derive(Default)]
struct Deeper {
    running: Option<std::thread::JoinHandle<Proven>>,
}

impl Deeper {
    /// Starts the next step if one is due, and returns the outcome of one that finished:
    /// `Ok(Some(proven))` with its depth, `Err` when a step could not run (trust must go).
    fn poll(&mut self, clamd: &Clamd, proven: &Proven, cap: u64) -> Result<Option<Proven>, String> {
        let mut finished = None;
        if self.running.as_ref().is_some_and(|step| step.is_finished()) {
            let step = self.running.take().expect("checked above");
            let deeper = step.join().map_err(|_| "the depth proof failed".to_string())?;
            finished = Some(deeper);
        }
        let next = finished.as_ref().unwrap_or(proven);
        if self.running.is_none() && next.deepening {
            let (clamd, mut next) = (clamd.clone(), next.clone());
            self.running = Some(
                std::thread::Builder::new()
                    .name("scanner-depth".into())
                    .spawn(move || {
                        canary::deepen(&clamd, &mut next, cap);
                        next
                    })
                    .map_err(|e| format!("cannot start the depth proof: {e}"))?,
            );
        }
        Ok(finished)
    }
}
