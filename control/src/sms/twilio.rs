//! Twilio's Messages API as it is on the wire: `POST {api_base}/2010-04-01/Accounts/{sid}/Messages.json`,
//! form fields `To`, `From`, `Body`, HTTP Basic auth with the account SID and auth token.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use upgate_config::TwilioConfig;

use super::{Accepted, SmsError, SmsProvider};

pub struct Twilio {
    config: TwilioConfig,
    http: reqwest::Client,
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
    pub fn new(config: TwilioConfig) -> Twilio {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client with static settings builds");
        Twilio { config, http }
    }
}

#[async_trait]
impl SmsProvider for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
    }

    async fn send(&self, to: &str, body: &str) -> Result<Accepted, SmsError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.config.api_base, self.config.account_sid
        );
        let resp = self
            .http
            .post(url)
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
            .form(&[("To", to), ("From", self.config.from.as_str()), ("Body", body)])
            .send()
            .await
            .map_err(|e| SmsError::Unreachable(e.without_url().to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| SmsError::Unreachable(e.without_url().to_string()))?;
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
        if status.is_server_error() {
            Err(SmsError::Unreachable(detail))
        } else {
            Err(SmsError::Refused(detail))
        }
    }
}
