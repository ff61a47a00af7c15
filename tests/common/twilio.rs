//! The one stand-in: a loopback server speaking Twilio's Messages API wire format. It checks
//! every request exactly as Twilio would (path, Basic auth, form fields) and records it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use super::loopback::json;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "twilio-test-auth-token-5d1f";
pub const FROM: &str = "+15005550006";
/// Twilio's magic test number for "invalid To": answered with error 21211.
pub const INVALID_TO: &str = "+15005550001";

#[derive(Debug, Clone)]
pub struct Sent {
    pub to: String,
    pub from: String,
    pub body: String,
    /// Where Twilio would post this message's status reports.
    pub status_callback: Option<String>,
    pub sid: String,
}

#[derive(Clone)]
pub struct TwilioStandIn {
    pub addr: SocketAddr,
    pub sent: Arc<Mutex<Vec<Sent>>>,
    /// Requests that broke the wire contract (wrong path, auth, fields): must stay empty.
    pub violations: Arc<Mutex<Vec<String>>>,
}

/// What Twilio puts in `X-Twilio-Signature`: base64 HMAC-SHA1, under the auth token, of the
/// URL and every form field's name and value, sorted by name.
pub fn twilio_signature(token: &str, url: &str, fields: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = fields.iter().collect();
    sorted.sort();
    let signed: String = std::iter::once(url.to_string())
        .chain(sorted.iter().map(|(k, v)| format!("{k}{v}")))
        .collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes());
    base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        ring::hmac::sign(&key, signed.as_bytes()),
    )
}

/// The fields of a status report for message `sent`, as Twilio posts them.
pub fn report_fields(sent: &Sent, status: &str, error_code: Option<&str>) -> Vec<(String, String)> {
    let mut fields = vec![
        ("AccountSid", ACCOUNT_SID.to_string()),
        ("ApiVersion", "2010-04-01".to_string()),
        ("From", sent.from.clone()),
        ("MessageSid", sent.sid.clone()),
        ("MessageStatus", status.to_string()),
        ("SmsSid", sent.sid.clone()),
        ("SmsStatus", status.to_string()),
        ("To", sent.to.clone()),
    ];
    if let Some(code) = error_code {
        fields.push(("ErrorCode", code.to_string()));
    }
    fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Posts a report as Twilio does: the form, signed for `url` with `token`. Returns the status.
pub async fn post_report(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    fields: &[(String, String)],
) -> reqwest::StatusCode {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", twilio_signature(token, url, fields))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

impl TwilioStandIn {
    pub async fn start() -> TwilioStandIn {
        let mut this = TwilioStandIn {
            addr: ([127, 0, 0, 1], 0).into(),
            sent: Arc::default(),
            violations: Arc::default(),
        };
        // The server's copy needs no address: it only records.
        this.addr = super::loopback::serve(this.clone(), |state: TwilioStandIn, req| async move {
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
            json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"code": 0, "message": what}),
            )
        };
        let expected_path = format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json");
        if req.method() != hyper::Method::POST || req.uri().path() != expected_path {
            return violation(format!("{} {}", req.method(), req.uri().path()));
        }
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let want = format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{ACCOUNT_SID}:{AUTH_TOKEN}")
            )
        );
        if auth != want {
            return json(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"code": 20003, "message": "Authenticate", "status": 401}),
            );
        }
        let ct = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if ct != "application/x-www-form-urlencoded" {
            return violation(format!("content-type {ct}"));
        }
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        let field = |name: &str| {
            fields
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        let (to, from, text, callback) = (field("To"), field("From"), field("Body"), field("StatusCallback"));
        if to.len() != 1
            || from.len() != 1
            || text.len() != 1
            || callback.len() > 1
            || fields.len() != 3 + callback.len()
        {
            return violation(format!("fields {fields:?}"));
        }
        if to[0] == INVALID_TO {
            return json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"code": 21211, "message": format!("The 'To' number {} is not a valid phone number.", to[0]), "status": 400}),
            );
        }
        let mut sent = self.sent.lock().unwrap();
        let sid = format!("SM{:032x}", sent.len() + 1);
        sent.push(Sent {
            to: to[0].clone(),
            from: from[0].clone(),
            body: text[0].clone(),
            status_callback: callback.first().cloned(),
            sid: sid.clone(),
        });
        json(
            StatusCode::CREATED,
            serde_json::json!({"sid": sid, "status": "queued", "to": to[0], "from": from[0], "body": text[0], "account_sid": ACCOUNT_SID}),
        )
    }
}
