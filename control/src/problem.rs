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
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            detail: detail.into(),
            extra: None,
        }
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
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "The metadata store failed; try again.",
        )
    }
}
