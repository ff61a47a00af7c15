//! The monitoring listener: `/metrics`, `/healthz`, `/readyz`, kept off the public one.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use upgate_gateway::server::boxed;
use upgate_gateway::Gateway;

use crate::api::{json_response, ApiResponse};

pub async fn handle(gw: Arc<Gateway>, req: Request<Incoming>) -> ApiResponse {
    match req.uri().path() {
        "/metrics" => {
            let mut resp = Response::new(boxed(Full::new(Bytes::from(gw.metrics.render()))));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            resp
        }
        "/healthz" => json_response(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        "/readyz" => {
            let (ready, body) = gw.readiness().await;
            if ready {
                return json_response(StatusCode::OK, &body);
            }
            let mut resp = json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
            // Like every 503 we answer: say when asking again makes sense.
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::problem::UNAVAILABLE_RETRY_SECONDS),
            );
            resp
        }
        _ => crate::api::problem_response(&crate::problem::Problem::not_found("resource")),
    }
}
