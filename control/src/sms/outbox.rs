//! The development provider: one JSON line per message in `sms-outbox.jsonl`, so a developer
//! can open the link without a carrier. The log line says a message was written, to a masked
//! number, never its body: the body holds the link.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;

use super::{Accepted, SmsError, SmsProvider};
use crate::redact::mask_phone;

pub struct Outbox {
    path: PathBuf,
}

impl Outbox {
    pub fn new(path: PathBuf) -> Outbox {
        Outbox { path }
    }
}

#[async_trait]
impl SmsProvider for Outbox {
    fn name(&self) -> &'static str {
        "outbox"
    }

    async fn send(&self, to: &str, body: &str) -> Result<Accepted, SmsError> {
        let id = crate::ids::new_id("outbox");
        let line = serde_json::json!({"id": id, "at": upgate_gateway::routes::now(), "to": to, "body": body});
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)?;
            // One write per line keeps lines whole even with concurrent senders (O_APPEND).
            f.write_all(format!("{line}\n").as_bytes())?;
            f.sync_data()
        })
        .await
        .map_err(|e| SmsError::Unreachable(e.to_string()))?
        .map_err(|e| SmsError::Unreachable(format!("cannot write the outbox: {e}")))?;
        tracing::info!(to = %mask_phone(to), outbox = %self.path.display(), "SMS written to the outbox");
        Ok(Accepted { provider_id: id })
    }
}
