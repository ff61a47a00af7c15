//! `POST /hooks/sms/{provider}`: where SMS providers post delivery reports. The gateway is
//! the only part on the internet, so reports come here; it reads the small form body and
//! hands it, with the provider's signature headers, to the control plane, which holds the
//! provider's secret and verifies it. Nothing here trusts the report.

use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::control_link::{ReportOutcome, SmsReport, REPORT_HEADERS};
use crate::respond::{self, Resp};
use crate::state::Gateway;

/// Reports are a few hundred bytes of form fields.
const MAX_REPORT_BYTES: usize = 16 * 1024;
/// A report's body must arrive within this.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn report(gw: &Gateway, req: Request<Incoming>, provider: &str) -> Resp {
    let bad = |detail: &str| respond::problem(StatusCode::BAD_REQUEST, "malformed_report", detail);
    if provider.len() > 32 {
        return respond::problem(StatusCode::NOT_FOUND, "not_found", "There is nothing here.");
    }
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
    let headers: Vec<(String, String)> = REPORT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = req.headers().get(*name)?.to_str().ok()?;
            Some((name.to_string(), value.to_string()))
        })
        .collect();
    let body = match tokio::time::timeout(
        READ_TIMEOUT,
        Limited::new(req.into_body(), MAX_REPORT_BYTES).collect(),
    )
    .await
    {
        Ok(Ok(body)) => body.to_bytes(),
        Ok(Err(_)) => return bad("The report is over 16 KiB or could not be read."),
        Err(_) => return bad("The report did not arrive in time."),
    };
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return bad("The report is not UTF-8.");
    };
    let report = SmsReport {
        provider: provider.to_string(),
        path,
        body,
        headers,
    };
    match gw.control.sms_report(report).await {
        Ok(ReportOutcome::Applied) => respond::text(StatusCode::OK, "ok\n".into()),
        Ok(ReportOutcome::Stale) => respond::problem(
            StatusCode::CONFLICT,
            "stale_report",
            "This report says nothing newer than what is known (a replay?).",
        ),
        Ok(ReportOutcome::Forged) => respond::problem(
            StatusCode::FORBIDDEN,
            "forged_report",
            "The report's signature does not verify.",
        ),
        Ok(ReportOutcome::Unknown) => {
            respond::problem(StatusCode::NOT_FOUND, "not_found", "No such provider or message.")
        }
        Err(_) => respond::problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "Try again later.",
        ),
    }
}
