//! Twilio's Messages API as it is on the wire: `POST {api_base}/2010-04-01/Accounts/{sid}/Messages.json`,
//! form fields `To`, `From`, `Body` and `StatusCallback`, HTTP Basic auth with the account
//! SID and auth token. Twilio then posts the message's status to the callback, signed with
//! `X-Twilio-Signature`: base64 HMAC-SHA1, under the auth token, of the URL followed by
//! every form field's name and value, sorted by name.

use async_trait::async_trait;
use serde::Deserialize;
use upgate_config::TwilioConfig;

use super::{Accepted, Delivery, DeliveryUpdate, ReportError, SmsError, SmsProvider, SmsReport};

pub struct Twilio {
    config: TwilioConfig,
    http: reqwest::Client,
    /// Where Twilio posts status reports (the gateway's `/hooks/sms/twilio`).
    callback: String,
}

#[derive(Deserialize)]
struct MessageResource {
    sid: String,
}

#[derive(Deserialize)]
struct ErrorResource {
    code: Option<u64>,
    message: Option<String>,
}

impl Twilio {
    pub fn new(config: TwilioConfig, callback: String) -> Twilio {
        let http = super::provider_client();
        Twilio {
            config,
            http,
            callback,
        }
    }
}

/// Twilio's signature of a POST to `url` with these form fields.
fn signature(token: &str, url: &str, fields: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = fields.iter().collect();
    sorted.sort();
    let mut signed = url.to_string();
    for (name, value) in sorted {
        signed.push_str(name);
        signed.push_str(value);
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes());
    base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        ring::hmac::sign(&key, signed.as_bytes()),
    )
}

fn status(text: &str) -> Option<Delivery> {
    Some(match text {
        "accepted" | "scheduled" | "queued" => Delivery::Queued,
        "sending" => Delivery::Sending,
        "sent" => Delivery::Sent,
        "delivered" | "read" => Delivery::Delivered,
        "undelivered" => Delivery::Undelivered,
        "failed" | "canceled" => Delivery::Failed,
        _ => return None,
    })
}

#[async_trait]
impl SmsProvider for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    fn delivery_report(&self, url: &str, report: &SmsReport) -> Result<DeliveryUpdate, ReportError> {
        let fields: Vec<(String, String)> = form_urlencoded::parse(report.body.as_bytes())
            .into_owned()
            .collect();
        let given = report
            .headers
            .iter()
            .find(|(name, _)| name == "x-twilio-signature")
            .map(|(_, v)| v.as_str())
            .ok_or(ReportError::Forged)?;
        let want = signature(&self.config.auth_token, url, &fields);
        if !upgate_gateway::sys::secrets_equal(given.as_bytes(), want.as_bytes()) {
            return Err(ReportError::Forged);
        }
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        if field("AccountSid").as_deref() != Some(self.config.account_sid.as_str()) {
            return Err(ReportError::Malformed("another account's report"));
        }
        let provider_id = field("MessageSid").ok_or(ReportError::Malformed("no MessageSid"))?;
        let status = field("MessageStatus")
            .as_deref()
            .and_then(status)
            .ok_or(ReportError::Malformed("no known MessageStatus"))?;
        let error_code = field("ErrorCode").filter(|c| !c.is_empty() && c != "0");
        Ok(DeliveryUpdate {
            provider_id,
            status,
            error_code,
        })
    }

    async fn send(&self, to: &str, body: &str) -> Result<Accepted, SmsError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.config.api_base, self.config.account_sid
        );
        let request = self
            .http
            .post(url)
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
            .form(&[
                ("To", to),
                ("From", self.config.from.as_str()),
                ("Body", body),
                ("StatusCallback", self.callback.as_str()),
            ]);
        let (status, bytes) = super::exchange(request).await?;
        if status.is_success() {
            let msg: MessageResource = serde_json::from_slice(&bytes)
                .map_err(|_| SmsError::Unreachable(format!("unreadable answer (HTTP {status})")))?;
            return Ok(Accepted { provider_id: msg.sid });
        }
        let detail = serde_json::from_slice::<ErrorResource>(&bytes)
            .ok()
            .map(|e| {
                format!(
                    "Twilio error {}: {}",
                    e.code.unwrap_or(0),
                    e.message.unwrap_or_default()
                )
            })
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(super::refused(status, detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "twilio-test-auth-token-5d1f";
    const URL: &str = "https://upgate.example.com/hooks/sms/twilio";

    fn fields() -> Vec<(String, String)> {
        [
            ("MessageSid", "SM00000000000000000000000000000001"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
            ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
            ("To", "+14155550123"),
            ("From", "+15005550006"),
            ("ApiVersion", "2010-04-01"),
            ("SmsSid", "SM00000000000000000000000000000001"),
            ("SmsStatus", "undelivered"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn twilio() -> Twilio {
        let config = TwilioConfig {
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            auth_token: TOKEN.into(),
            from: "+15005550006".into(),
            api_base: "http://127.0.0.1:9".into(),
        };
        Twilio::new(config, URL.into())
    }

    fn report(signature: Option<String>, fields: &[(String, String)]) -> SmsReport {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        SmsReport {
            provider: "twilio".into(),
            path: "/hooks/sms/twilio".into(),
            body,
            headers: signature
                .map(|s| vec![("x-twilio-signature".to_string(), s)])
                .unwrap_or_default(),
        }
    }

    /// The value Twilio's own Python library (`twilio.request_validator`) computes for it.
    #[test]
    fn signs_as_twilio_s_library_does() {
        assert_eq!(signature(TOKEN, URL, &fields()), "jWgRzhQBF+6leaY/tqSLwhYOw4U=");
    }

    #[test]
    fn a_signed_report_is_read_and_a_forged_one_refused() {
        let t = twilio();
        let good = report(Some(signature(TOKEN, URL, &fields())), &fields());
        assert_eq!(
            t.delivery_report(URL, &good).unwrap(),
            DeliveryUpdate {
                provider_id: "SM00000000000000000000000000000001".into(),
                status: Delivery::Undelivered,
                error_code: Some("30003".into()),
            }
        );
        assert_eq!(
            t.delivery_report(URL, &report(None, &fields())),
            Err(ReportError::Forged)
        );
        let wrong = report(Some(signature("another-token", URL, &fields())), &fields());
        assert_eq!(t.delivery_report(URL, &wrong), Err(ReportError::Forged));
        // A field changed after signing (a delivered report made from an undelivered one).
        let mut changed = fields();
        changed[1].1 = "delivered".into();
        let tampered = report(Some(signature(TOKEN, URL, &fields())), &changed);
        assert_eq!(t.delivery_report(URL, &tampered), Err(ReportError::Forged));
        // Signed for another URL.
        let elsewhere = signature(TOKEN, "https://evil.example/hooks/sms/twilio", &fields());
        assert_eq!(
            t.delivery_report(URL, &report(Some(elsewhere), &fields())),
            Err(ReportError::Forged)
        );
    }
}
