//! Vonage's Messages API (SMS channel) as it is on the wire:
//! `POST {api_base}/v1/messages`, HTTP Basic auth with the API key and secret, JSON
//! `{"message_type": "text", "channel": "sms", "to", "from", "text", "webhook_url",
//! "client_ref"}` with numbers in E.164 without their `+`; `202 {"message_uuid"}`.
//! Vonage posts status updates to `webhook_url` as JSON (`message_uuid`, `status`:
//! `submitted`, `delivered`, `rejected`, `undeliverable`; an `error` with a code), signed
//! with `Authorization: Bearer <JWT>`: HS256 under the account's signature secret, whose
//! claims carry `payload_hash` (the SHA-256 of the body, hex) and `iat`.
//!
//! The JWT check is written here (HS256 with ring, about twenty lines) rather than taken
//! from a JWT crate: one algorithm, one key, and the crates that do all of JOSE bring in
//! much more than that.

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::{digest, hmac};
use serde::Deserialize;
use serde_json::json;
use upgate_config::VonageConfig;
use upgate_gateway::sys::{now, secrets_equal};

use super::{Accepted, Delivery, DeliveryUpdate, ReportError, SmsError, SmsProvider, SmsReport};

/// A status update signed longer ago than this is refused (a captured one replayed later).
const MAX_AGE_SECONDS: u64 = 300;

pub struct Vonage {
    config: VonageConfig,
    http: reqwest::Client,
    /// Where Vonage posts status updates (the gateway's `/hooks/sms/vonage`).
    webhook_url: String,
}

#[derive(Deserialize)]
struct Sent {
    message_uuid: String,
}

#[derive(Deserialize)]
struct Problem {
    title: Option<serde_json::Value>,
    detail: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iat: u64,
    payload_hash: String,
}

#[derive(Deserialize)]
struct Status {
    message_uuid: String,
    status: String,
    #[serde(default)]
    error: Option<StatusError>,
}

#[derive(Deserialize)]
struct StatusError {
    /// Vonage's error code (a number in `title`), e.g. 1320.
    title: Option<serde_json::Value>,
}

impl Vonage {
    pub fn new(config: VonageConfig, webhook_url: String) -> Vonage {
        let http = super::provider_client();
        Vonage {
            config,
            http,
            webhook_url,
        }
    }
}

/// Whether `token` is an HS256 JWT under `secret` for this `body`, issued within the last
/// few minutes.
fn verify_jwt(token: &str, secret: &str, body: &[u8], now: u64) -> bool {
    let mut parts = token.split('.');
    let (Some(head), Some(claims), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let header: Option<serde_json::Value> = URL_SAFE_NO_PAD
        .decode(head)
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok());
    if header.as_ref().and_then(|h| h["alg"].as_str()) != Some("HS256") {
        return false;
    }
    let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    if hmac::verify(&key, format!("{head}.{claims}").as_bytes(), &sig).is_err() {
        return false;
    }
    let Some(claims) = URL_SAFE_NO_PAD
        .decode(claims)
        .ok()
        .and_then(|c| serde_json::from_slice::<Claims>(&c).ok())
    else {
        return false;
    };
    let hash = hex::encode(digest::digest(&digest::SHA256, body));
    secrets_equal(
        hash.as_bytes(),
        claims.payload_hash.to_ascii_lowercase().as_bytes(),
    ) && claims.iat <= now + 60
        && now.saturating_sub(claims.iat) <= MAX_AGE_SECONDS
}

fn status(text: &str) -> Option<Delivery> {
    Some(match text {
        "submitted" => Delivery::Sent,
        "delivered" | "read" => Delivery::Delivered,
        "undeliverable" => Delivery::Undelivered,
        "rejected" => Delivery::Failed,
        _ => return None,
    })
}

#[async_trait]
impl SmsProvider for Vonage {
    fn name(&self) -> &'static str {
        "vonage"
    }

    async fn send(&self, to: &str, body: &str) -> Result<Accepted, SmsError> {
        let message = json!({
            "message_type": "text",
            "channel": "sms",
            "to": to.trim_start_matches('+'),
            "from": self.config.from.trim_start_matches('+'),
            "text": body,
            "webhook_url": self.webhook_url,
        });
        let request = self
            .http
            .post(format!("{}/v1/messages", self.config.api_base))
            .basic_auth(&self.config.api_key, Some(&self.config.api_secret))
            .header("accept", "application/json")
            .json(&message);
        let (status, bytes) = super::exchange(request).await?;
        if status.is_success() {
            let sent: Sent = serde_json::from_slice(&bytes)
                .map_err(|_| SmsError::Unreachable(format!("unreadable answer (HTTP {status})")))?;
            return Ok(Accepted {
                provider_id: sent.message_uuid,
            });
        }
        let detail = serde_json::from_slice::<Problem>(&bytes)
            .ok()
            .map(|p| {
                let title = p
                    .title
                    .map(|t| t.to_string().trim_matches('"').to_string())
                    .unwrap_or_default();
                format!(
                    "Vonage error {}: {title}: {}",
                    status.as_u16(),
                    p.detail.unwrap_or_default()
                )
            })
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(super::refused(status, detail))
    }

    fn delivery_report(&self, _url: &str, report: &SmsReport) -> Result<DeliveryUpdate, ReportError> {
        let token = report
            .headers
            .iter()
            .find(|(name, _)| name == "authorization")
            .and_then(|(_, v)| v.strip_prefix("Bearer "))
            .ok_or(ReportError::Forged)?;
        if !verify_jwt(
            token,
            &self.config.signature_secret,
            report.body.as_bytes(),
            now(),
        ) {
            return Err(ReportError::Forged);
        }
        let update: Status =
            serde_json::from_str(&report.body).map_err(|_| ReportError::Malformed("not a status"))?;
        let delivery = status(&update.status).ok_or(ReportError::Malformed("an unknown status"))?;
        let error_code = update
            .error
            .and_then(|e| e.title)
            .map(|t| t.to_string().trim_matches('"').to_string());
        Ok(DeliveryUpdate {
            provider_id: update.message_uuid,
            status: delivery,
            error_code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "vonage-signature-secret-0123456789";
    const BODY: &str = r#"{"message_uuid":"aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab","to":"14155550199","from":"447700900001","timestamp":"2026-12-06T12:00:00.000Z","status":"delivered","channel":"sms"}"#;
    /// Made with Python's standard library (hmac, hashlib, base64), not with this code.
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3NjUwMjI0MDAsImp0aSI6ImM3ZjJlMWEwLTViM2QtNGU4Zi05YTFiLTJjM2Q0ZTVmNmE3YiIsImlzcyI6IlZvbmFnZSIsInBheWxvYWRfaGFzaCI6Ijk4MDhhZDIxZTU3MjJkZjQ1NDE3YWY3M2UwOGVjMDBkZWFmOWNkNDE3ODM2ZmMyMTJjYjJhMmVmMzhhMDQ0YTgiLCJhcGlfa2V5IjoiYWJjZDEyMzQiLCJhcHBsaWNhdGlvbl9pZCI6ImFhYWFhYWFhLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMCJ9.aT3HOR86BV9EGZ-E7ZFuAirU-heuCxIJ6wgCHe8yG7o";
    const IAT: u64 = 1765022400;

    #[test]
    fn a_signed_status_verifies_and_anything_else_does_not() {
        assert!(verify_jwt(TOKEN, SECRET, BODY.as_bytes(), IAT + 10));
        assert!(!verify_jwt(TOKEN, "another-secret", BODY.as_bytes(), IAT + 10));
        assert!(!verify_jwt(
            TOKEN,
            SECRET,
            BODY.replace("delivered", "rejected").as_bytes(),
            IAT + 10
        ));
        assert!(
            !verify_jwt(TOKEN, SECRET, BODY.as_bytes(), IAT + MAX_AGE_SECONDS + 1),
            "replayed late"
        );
        let unsigned = TOKEN.rsplit_once('.').unwrap().0.to_string() + ".";
        assert!(!verify_jwt(&unsigned, SECRET, BODY.as_bytes(), IAT));
        let none = TOKEN.replacen(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
            &URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            1,
        );
        assert!(!verify_jwt(&none, SECRET, BODY.as_bytes(), IAT));
        assert!(!verify_jwt("not.a.jwt.at.all", SECRET, BODY.as_bytes(), IAT));
    }

    #[test]
    fn statuses_map_to_deliveries() {
        assert_eq!(status("submitted"), Some(Delivery::Sent));
        assert_eq!(status("delivered"), Some(Delivery::Delivered));
        assert_eq!(status("undeliverable"), Some(Delivery::Undelivered));
        assert_eq!(status("rejected"), Some(Delivery::Failed));
        assert_eq!(status("exploded"), None);
    }
}
