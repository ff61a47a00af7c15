//! Waiting, bounded, for something a running upgate does by itself.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::upgate::Upgate;

/// Polls `check` every 200 ms until it holds; panics naming `what` after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Polls `/readyz` until the scanner's status is `want` (bounded: the watch re-proves
/// within its back-off, at most 15 s, plus clamd's own start).
pub async fn wait_scanner(up: &Upgate, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = up.readyz().await;
        if body["scanner"]["status"] == want || Instant::now() > deadline {
            assert_eq!(body["scanner"]["status"], want, "{body}");
            return body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
