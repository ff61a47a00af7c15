//! Sending the link by SMS, behind one trait so providers are interchangeable. A provider's
//! failure never un-issues a link: the message is recorded as failed, visible on the call.

mod outbox;
pub mod text;
mod twilio;
mod vonage;
mod webhook;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use upgate_config::SmsConfig;

pub use outbox::Outbox;
pub use twilio::Twilio;
pub use vonage::Vonage;
pub use webhook::WebhookSms;

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

pub use upgate_gateway::control_link::SmsReport;

/// Where a message stands with the carrier, in the order it moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    Queued,
    Sending,
    Sent,
    /// The last three are final.
    Delivered,
    Undelivered,
    Failed,
}

impl Delivery {
    pub fn is_final(self) -> bool {
        self >= Delivery::Delivered
    }
}

/// What a verified report says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryUpdate {
    pub provider_id: String,
    pub status: Delivery,
    /// The carrier's error code (Twilio's `ErrorCode`), for undelivered and failed.
    pub error_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The signature is missing or wrong: not from the provider.
    #[error("the report's signature does not verify")]
    Forged,
    #[error("the report is malformed: {0}")]
    Malformed(&'static str),
    /// This provider sends no reports (or none is configured under that name).
    #[error("no such provider")]
    NotSupported,
}

#[async_trait]
pub trait SmsProvider: Send + Sync + 'static {
    /// A short name for records and metrics ("outbox", "twilio").
    fn name(&self) -> &'static str;
    async fn send(&self, to: &str, body: &str) -> Result<Accepted, SmsError>;
    /// Verifies and reads a delivery report posted to `url` (the address the provider
    /// signed); providers without reports refuse them all.
    fn delivery_report(&self, _url: &str, _report: &SmsReport) -> Result<DeliveryUpdate, ReportError> {
        Err(ReportError::NotSupported)
    }
}

/// The HTTP client every provider sends with: bounded in time, never following a redirect.
pub(crate) fn provider_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .connect_timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client with static settings builds")
}

/// Sends a provider request and reads the answer; failing to reach the provider (or to
/// read it) is `Unreachable`, with no URL in the message.
pub(crate) async fn exchange(
    req: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, bytes::Bytes), SmsError> {
    let unreachable = |e: reqwest::Error| SmsError::Unreachable(e.without_url().to_string());
    let resp = req.send().await.map_err(unreachable)?;
    let status = resp.status();
    Ok((status, resp.bytes().await.map_err(unreachable)?))
}

/// A provider's refusal: its own fault (5xx) is `Unreachable`, the message's `Refused`.
pub(crate) fn refused(status: reqwest::StatusCode, detail: String) -> SmsError {
    if status.is_server_error() {
        SmsError::Unreachable(detail)
    } else {
        SmsError::Refused(detail)
    }
}

/// Where providers post delivery reports: the gateway's public origin, since the control
/// plane is not on the internet; the gateway hands them to the control plane.
pub fn report_url(public_url: &str, provider: &str) -> String {
    format!("{public_url}/hooks/sms/{provider}")
}

/// The provider the configuration names; `public_url` is the gateway's, for reports.
pub fn from_config(config: &SmsConfig, data_dir: &Path, public_url: &str) -> Arc<dyn SmsProvider> {
    match config {
        SmsConfig::Outbox => Arc::new(Outbox::new(data_dir.join("sms-outbox.jsonl"))),
        SmsConfig::Twilio(t) => Arc::new(Twilio::new(t.clone(), report_url(public_url, "twilio"))),
        SmsConfig::Vonage(v) => Arc::new(Vonage::new(v.clone(), report_url(public_url, "vonage"))),
        SmsConfig::Webhook(w) => Arc::new(WebhookSms::new(w.clone(), report_url(public_url, "webhook"))),
    }
}
