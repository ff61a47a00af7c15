//! A loopback stand-in for Vonage's Messages API: it checks every request as Vonage would
//! (path, Basic auth, the JSON fields of an SMS) and records it; `status` builds the signed
//! status update Vonage would post back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::loopback::json as answer;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

pub const API_KEY: &str = "abcd1234";
pub const API_SECRET: &str = "vonage-api-secret-5e2a";
pub const SIGNATURE_SECRET: &str = "vonage-signature-secret-0123456789";
pub const FROM: &str = "+447700900001";
/// A number the stand-in refuses as Vonage refuses an invalid one (422, code 1150).
pub const INVALID_TO: &str = "+15005550001";

#[derive(Debug, Clone)]
pub struct Sent {
    pub to: String,
    pub from: String,
    pub text: String,
    pub webhook_url: String,
    pub uuid: String,
}

#[derive(Clone)]
pub struct VonageStandIn {
    pub addr: SocketAddr,
    pub sent: Arc<Mutex<Vec<Sent>>>,
    pub violations: Arc<Mutex<Vec<String>>>,
}

impl VonageStandIn {
    pub async fn start() -> VonageStandIn {
        let mut this = VonageStandIn {
            addr: ([127, 0, 0, 1], 0).into(),
            sent: Arc::default(),
            violations: Arc::default(),
        };
        // The server's copy needs no address: it only records.
        this.addr = super::loopback::serve(this.clone(), |state: VonageStandIn, req| async move {
            state.answer(req).await
        })
        .await;
        this
    }

    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    async fn answer(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let violation = |what: String| {
            self.violations.lock().unwrap().push(what.clone());
            answer(
                StatusCode::BAD_REQUEST,
                json!({"title": "Bad request", "detail": what}),
            )
        };
        if req.method() != hyper::Method::POST || req.uri().path() != "/v1/messages" {
            return violation(format!("{} {}", req.method(), req.uri().path()));
        }
        let want = format!("Basic {}", STANDARD.encode(format!("{API_KEY}:{API_SECRET}")));
        if req.headers().get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
            return answer(
                StatusCode::UNAUTHORIZED,
                json!({"type": "https://developer.nexmo.com/api-errors#unauthorized", "title": "Unauthorized", "detail": "You did not provide correct credentials."}),
            );
        }
        if req.headers().get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
            return violation("content-type".into());
        }
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let Ok(m) = serde_json::from_slice::<Value>(&body) else {
            return violation("not JSON".into());
        };
        let keys: Vec<&str> = m
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut sorted = keys.clone();
        sorted.sort();
        if sorted != ["channel", "from", "message_type", "text", "to", "webhook_url"]
            || m["message_type"] != "text"
            || m["channel"] != "sms"
        {
            return violation(format!("fields {m}"));
        }
        let (to, from) = (m["to"].as_str().unwrap_or(""), m["from"].as_str().unwrap_or(""));
        if to.starts_with('+') || from.starts_with('+') || !to.bytes().all(|b| b.is_ascii_digit()) {
            return violation(format!("numbers must be E.164 without +: {to} {from}"));
        }
        if format!("+{to}") == INVALID_TO {
            return answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"type": "https://developer.nexmo.com/api-errors/messages-olympus#1150", "title": "Invalid params", "detail": "The value of one or more parameters is invalid.", "invalid_parameters": [{"name": "to", "reason": "Invalid number"}]}),
            );
        }
        let mut sent = self.sent.lock().unwrap();
        let uuid = format!("aaaaaaaa-bbbb-4ccc-8ddd-{:012x}", sent.len() + 1);
        sent.push(Sent {
            to: to.into(),
            from: from.into(),
            text: m["text"].as_str().unwrap_or("").into(),
            webhook_url: m["webhook_url"].as_str().unwrap_or("").into(),
            uuid: uuid.clone(),
        });
        answer(StatusCode::ACCEPTED, json!({"message_uuid": uuid}))
    }
}

/// A status update for `sent`, as Vonage posts it.
pub fn status(sent: &Sent, status: &str, error_code: Option<u32>) -> String {
    let mut body = json!({
        "message_uuid": sent.uuid,
        "to": sent.to,
        "from": sent.from,
        "timestamp": "2026-12-06T12:00:00.000Z",
        "status": status,
        "channel": "sms",
    });
    if let Some(code) = error_code {
        body["error"] = json!({"type": format!("https://developer.nexmo.com/api-errors/messages-olympus#{code}"), "title": code, "detail": "Message failed"});
    }
    body.to_string()
}

/// `Authorization: Bearer` for `body`: an HS256 JWT under `secret` with Vonage's claims.
pub fn bearer(secret: &str, body: &str, iat: u64) -> String {
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let hash = hex::encode(ring::digest::digest(&ring::digest::SHA256, body.as_bytes()));
    let head = b64(&json!({"alg": "HS256", "typ": "JWT"}));
    let claims = b64(
        &json!({"iat": iat, "jti": format!("jti-{iat}"), "iss": "Vonage", "payload_hash": hash, "api_key": API_KEY}),
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, format!("{head}.{claims}").as_bytes()));
    format!("Bearer {head}.{claims}.{sig}")
}
