//! Errors as the control API answers them: RFC 9457 problem documents with a stable `code`.
//! Built in one place; the detail is for people, the code for programs.

use http::StatusCode;
use serde_json::json;

use crate::db::DbError;

#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Extra members (e.g. every broken settings rule).
    pub extra: Option<serde_json::Value>,
    /// Seconds for the `Retry-After` header. Every 503 and 429 carries one (see
    /// [`Problem::retry_after`]): a client told "try again" should be told when.
    pub retry_after: Option<u64>,
    /// The methods the path takes, for the `Allow` header of a 405.
    pub allow: Option<String>,
}

/// `Retry-After` of a 503 that does not say otherwise: store and storage failures are
/// usually over in seconds, and a client waiting longer loses a caller.
pub const UNAVAILABLE_RETRY_SECONDS: u64 = 5;
/// `Retry-After` of a 429 that does not say otherwise.
pub const RATE_LIMITED_RETRY_SECONDS: u64 = 60;

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            detail: detail.into(),
            extra: None,
            retry_after: None,
            allow: None,
        }
    }

    /// 405: the path is an endpoint, the method is not one it takes.
    pub fn method_not_allowed(allow: &[&str]) -> Problem {
        let mut p = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("This endpoint takes {}.", allow.join(", ")),
        );
        p.allow = Some(allow.join(", "));
        p
    }

    /// 503: our side failed, the request may succeed if repeated.
    pub fn unavailable(code: &'static str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
            .with_retry_after(UNAVAILABLE_RETRY_SECONDS)
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Problem {
        self.retry_after = Some(seconds);
        self
    }

    /// The `Retry-After` seconds this problem is answered with, if any: its own, or the
    /// default of its status for every 503 and 429.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after.or(match self.status {
            StatusCode::SERVICE_UNAVAILABLE => Some(UNAVAILABLE_RETRY_SECONDS),
            StatusCode::TOO_MANY_REQUESTS => Some(RATE_LIMITED_RETRY_SECONDS),
            _ => None,
        })
    }

    pub fn not_found(what: &str) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not_found", format!("No such {what}."))
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut body = json!({
            "type": format!("https://upgate.dev/problems/{}", self.code),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        if let (Some(extra), Some(obj)) = (
            self.extra.as_ref().and_then(|e| e.as_object()),
            body.as_object_mut(),
        ) {
            for (k, v) in extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        body
    }
}

impl From<DbError> for Problem {
    fn from(e: DbError) -> Problem {
        tracing::error!(error = %e, "metadata store failure");
        Problem::unavailable("store_unavailable", "The metadata store failed; try again.")
    }
}
