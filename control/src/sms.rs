//! Sending the link by SMS, behind one trait so providers are interchangeable. A provider's
//! failure never un-issues a link: the message is recorded as failed, visible on the call.

mod outbox;
pub mod text;
mod twilio;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use upgate_config::SmsConfig;

pub use outbox::Outbox;
pub use twilio::Twilio;

/// What a provider reports for an accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The provider's own id (Twilio's `SM...` sid), for support and delivery callbacks.
    pub provider_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The provider answered with an error (bad number, unverified sender, auth...).
    #[error("provider refused the message: {0}")]
    Refused(String),
    /// The provider could not be reached or answered nonsense.
    #[error("provider unreachable: {0}")]
    Unreachable(String),
}

#[async_trait]
pub trait SmsProvider: Send + Sync + 'static {
    /// A short name for records and metrics ("outbox", "twilio").
    fn name(&self) -> &'static str;
    async fn send(&self, to: &str, body: &str) -> Result<Accepted, SmsError>;
}

/// The provider the configuration names.
pub fn from_config(config: &SmsConfig, data_dir: &Path) -> Arc<dyn SmsProvider> {
    match config {
        SmsConfig::Outbox => Arc::new(Outbox::new(data_dir.join("sms-outbox.jsonl"))),
        SmsConfig::Twilio(t) => Arc::new(Twilio::new(t.clone())),
    }
}
