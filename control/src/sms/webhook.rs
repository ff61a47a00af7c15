//! The operator's own SMS gateway, spoken to as Standard Webhooks: each text is a signed
//! POST of `{"id", "to", "text", "report_url"}` to `sms.webhook.url`; a 2xx accepts it (its
//! JSON `id`, if any, is the gateway's own message id, else ours). The gateway reports
//! delivery to `report_url` the same way, signed with the same secret:
//! `{"id", "status", "error_code"}`, where `id` is the message id it answered (or ours) and
//! `status` one of `queued`, `sending`, `sent`, `delivered`, `undelivered`, `failed`.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use upgate_config::SmsWebhookConfig;
use upgate_gateway::sys::now;

use super::{Accepted, Delivery, DeliveryUpdate, ReportError, SmsError, SmsProvider, SmsReport};
use crate::webhooks::sign;

pub struct WebhookSms {
    config: SmsWebhookConfig,
    http: reqwest::Client,
    /// Where the gateway posts delivery reports (our `/hooks/sms/webhook`).
    report_url: String,
}

#[derive(Deserialize)]
struct Answer {
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    id: String,
    status: Delivery,
    #[serde(default)]
    error_code: Option<String>,
}

impl WebhookSms {
    pub fn new(config: SmsWebhookConfig, report_url: String) -> WebhookSms {
        let http = super::provider_client();
        WebhookSms {
            config,
            http,
            report_url,
        }
    }
}

#[async_trait]
impl SmsProvider for WebhookSms {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, to: &str, text: &str) -> Result<Accepted, SmsError> {
        let bytes: [u8; 12] =
            upgate_gateway::sys::random().map_err(|_| SmsError::Unreachable("no randomness".into()))?;
        let id = format!("msg_{}", hex::encode(bytes));
        let body = json!({"id": id, "to": to, "text": text, "report_url": self.report_url}).to_string();
        let ts = now();
        let signature = sign::signature_header([self.config.secret.as_str()], &id, ts, body.as_bytes());
        let request = self
            .http
            .post(&self.config.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body);
        let (status, answer) = super::exchange(request).await?;
        if status.is_success() {
            let theirs = serde_json::from_slice::<Answer>(&answer).ok().and_then(|a| a.id);
            return Ok(Accepted {
                provider_id: theirs.filter(|i| !i.is_empty() && i.len() <= 128).unwrap_or(id),
            });
        }
        let detail = format!("the SMS gateway answered HTTP {}", status.as_u16());
        Err(super::refused(status, detail))
    }

    fn delivery_report(&self, _url: &str, report: &SmsReport) -> Result<DeliveryUpdate, ReportError> {
        let header = |name: &str| {
            report
                .headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .ok_or(ReportError::Forged)
        };
        let (id, ts, signature) = (
            header("webhook-id")?,
            header("webhook-timestamp")?,
            header("webhook-signature")?,
        );
        if !sign::verify(
            &self.config.secret,
            id,
            ts,
            signature,
            report.body.as_bytes(),
            now(),
        ) {
            return Err(ReportError::Forged);
        }
        let parsed: Report =
            serde_json::from_str(&report.body).map_err(|_| ReportError::Malformed("not a report"))?;
        Ok(DeliveryUpdate {
            provider_id: parsed.id,
            status: parsed.status,
            error_code: parsed.error_code.filter(|c| !c.is_empty()),
        })
    }
}
