//! The retention worker: every `control.retention_interval`, deletes the files whose
//! assistant's `retention_days` have passed (`Service::retention_run`). It keeps no state of
//! its own, so a restart loses nothing: the next run finds what is due from the records.

use std::sync::Arc;
use std::time::Duration;

use crate::service::Service;

/// Runs until the task is dropped; the first run comes at once, so files due while the
/// control plane was down go at start.
pub async fn run(service: Arc<Service>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match service.retention_run(upgate_gateway::sys::now()).await {
            Ok(report) if report.deleted > 0 || !report.shredded.is_empty() => tracing::info!(
                deleted = report.deleted,
                accounts_shredded = report.shredded.len(),
                "retention run"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the retention run failed; it is tried again at the next interval")
            }
        }
    }
}
