//! Carriers' delivery reports: a provider posts one to the gateway, which hands it here
//! as it came. The provider's own scheme verifies it (Twilio's `X-Twilio-Signature`),
//! against the URL rebuilt from our public URL, never from what the request claims.

use upgate_gateway::control_link::{ReportOutcome, SmsReport};
use upgate_gateway::sys::now;

use super::{Service, ServiceError};
use crate::sms::ReportError;

impl Service {
    pub async fn sms_report(&self, report: SmsReport) -> Result<ReportOutcome, ServiceError> {
        let provider = self.sms.name();
        if report.provider != provider {
            return Ok(ReportOutcome::Unknown);
        }
        let url = format!("{}{}", self.public_url, report.path);
        let outcome = match self.sms.delivery_report(&url, &report) {
            Err(ReportError::NotSupported) => ReportOutcome::Unknown,
            Err(ReportError::Forged) => ReportOutcome::Forged,
            Err(ReportError::Malformed(why)) => {
                // Signed by the provider, but not a report we can read: keep it in the log.
                tracing::warn!(provider, why, "an SMS delivery report could not be read");
                ReportOutcome::Unknown
            }
            Ok(update) => match self.repos.issue.record_delivery(provider, &update, now()).await? {
                None => ReportOutcome::Unknown,
                Some(false) => ReportOutcome::Stale,
                Some(true) => ReportOutcome::Applied,
            },
        };
        let label = match outcome {
            ReportOutcome::Applied => "applied",
            ReportOutcome::Stale => "stale",
            ReportOutcome::Forged => "forged",
            ReportOutcome::Unknown => "unknown",
        };
        self.metrics.sms_reports.with_label_values(&[label]).inc();
        if outcome == ReportOutcome::Forged {
            tracing::warn!(
                provider,
                "an SMS delivery report with a bad signature was refused"
            );
        }
        Ok(outcome)
    }
}
