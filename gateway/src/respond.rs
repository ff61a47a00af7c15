//! The one place gateway answers are built: problem documents, JSON, pages, and the
//! security headers every answer carries.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

pub type Resp = Response<Full<Bytes>>;

/// Pages load only our own script and style; nothing may frame them; no Referer leaves
/// with the token in it.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// When a caller turned away for our state or their pace may ask again: every 503 and 507
/// says soon, every 429 a minute (the link-guessing window).
pub const RETRY_UNAVAILABLE_SECONDS: u32 = 10;
pub const RETRY_RATE_LIMITED_SECONDS: u32 = 60;

fn base(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let retry = match status {
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::INSUFFICIENT_STORAGE => Some(RETRY_UNAVAILABLE_SECONDS),
        StatusCode::TOO_MANY_REQUESTS => Some(RETRY_RATE_LIMITED_SECONDS),
        _ => None,
    };
    if let Some(seconds) = retry {
        h.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    resp
}

/// RFC 9457 problem; `detail` is the sentence the page shows to the caller.
pub fn problem(status: StatusCode, code: &str, detail: &str) -> Resp {
    let body = serde_json::json!({
        "type": format!("https://upgate.dev/problems/{code}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "code": code,
        "detail": detail,
    });
    base(status, "application/problem+json", body.to_string())
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Resp {
    base(status, "application/json", value.to_string())
}

pub fn html(status: StatusCode, page: String) -> Resp {
    base(status, "text/html; charset=utf-8", page)
}

pub fn asset(content_type: &'static str, body: &'static str) -> Resp {
    let mut resp = base(StatusCode::OK, content_type, body);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

pub fn text(status: StatusCode, body: String) -> Resp {
    base(status, "text/plain; charset=utf-8", body)
}

/// Marks the connection to be closed after this answer (ambiguous framing, refused bodies).
pub fn closing(mut resp: Resp) -> Resp {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Text safe inside HTML element content and double-quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
