//! The internal API (`upgate control` only): gateways run apart call the control plane's
//! [`ControlLink`] here, over TLS, each with its credential as a bearer token. A request
//! without a live credential gets 401 and nothing else: no link, no key, no hint.
//! The messages are `upgate_gateway::control_link::wire`.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use upgate_gateway::control_link::wire::{self, Call};
use upgate_gateway::monitor::MonitorResponse;
use upgate_gateway::respond;

use crate::service::{InProcess, Service};

/// The largest call: a commit with a 255-byte name and its verdict is well under this.
const MAX_CALL_BYTES: usize = 64 * 1024;

fn answer(resp: respond::Resp) -> MonitorResponse {
    resp.map(|body| body.map_err(|never| match never {}).boxed())
}

fn bearer(req: &Request<Incoming>) -> Option<&str> {
    req.headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

pub async fn handle(svc: Arc<Service>, req: Request<Incoming>) -> MonitorResponse {
    // Who first: an unauthenticated caller learns nothing, not even which paths exist.
    let checked = match bearer(&req) {
        Some(presented) => Some(svc.check_gateway_credential(presented).await),
        None => None,
    };
    let gateway = match checked {
        Some(Ok(Some(name))) => name,
        Some(Err(e)) => {
            tracing::error!(error = %e, "could not check a gateway credential");
            return answer(respond::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "The metadata store failed; try again.",
            ));
        }
        _ => {
            svc.metrics.internal_api_refused.inc();
            return answer(respond::problem(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "A valid gateway credential is required.",
            ));
        }
    };
    if req.method() != Method::POST || req.uri().path() != wire::PATH {
        return answer(respond::problem(
            StatusCode::NOT_FOUND,
            "not_found",
            "No such resource.",
        ));
    }
    let body: Bytes = match Limited::new(req.into_body(), MAX_CALL_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return answer(respond::problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "call_too_large",
                "The call is too large.",
            ))
        }
    };
    let call: Call = match serde_json::from_slice(&body) {
        Ok(call) => call,
        Err(e) => {
            tracing::warn!(%gateway, error = %e.classify_name(), "a gateway sent a call that does not parse");
            return answer(respond::problem(
                StatusCode::BAD_REQUEST,
                "invalid_call",
                "The call does not parse as this version of the internal API.",
            ));
        }
    };
    let reply = wire::answer(&InProcess(svc), call).await;
    answer(respond::json(
        StatusCode::OK,
        &serde_json::to_value(&reply).expect("replies serialize"),
    ))
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    // The category only: serde's message can quote a value (a file name) from the call.
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "eof",
        }
    }
}
