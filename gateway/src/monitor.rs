//! The monitoring listener: `/metrics`, `/healthz`, `/readyz`, kept off the public one.
//! Both planes serve it; each says what "ready" means for itself.

use std::future::Future;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::metrics::Metrics;
use crate::respond;

pub type MonitorResponse = Response<BoxBody<Bytes, std::io::Error>>;

fn boxed(resp: respond::Resp) -> MonitorResponse {
    resp.map(|body| body.map_err(|never| match never {}).boxed())
}

/// Answers one monitoring request; `readiness` is asked only for `/readyz`.
pub async fn handle<R>(
    metrics: &Metrics,
    readiness: impl FnOnce() -> R,
    req: Request<Incoming>,
) -> MonitorResponse
where
    R: Future<Output = (bool, serde_json::Value)>,
{
    let resp = match req.uri().path() {
        "/metrics" => {
            let mut resp = respond::text(StatusCode::OK, metrics.render());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            resp
        }
        "/healthz" => respond::json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        "/readyz" => {
            let (ready, body) = readiness().await;
            // A 503 carries Retry-After like every 503 we answer.
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            respond::json(status, &body)
        }
        _ => respond::problem(StatusCode::NOT_FOUND, "not_found", "No such resource."),
    };
    boxed(resp)
}
