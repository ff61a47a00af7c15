//! What every control-API request leaves behind, whatever its outcome: one log line (route
//! template, method, status, time, and the account and token ids once known — never the
//! path, never the bearer token), a count of every 401/403/404 on `/v1`, and an audit entry
//! for every 403, so a token probing beyond its role shows up in the audit log.

use std::time::Duration;

use http::{Method, StatusCode};

use super::route::Route;
use super::Api;
use crate::problem::Problem;
use crate::service::{Actor, Refused};

/// Who a request turned out to be from.
#[derive(Debug, Clone)]
pub enum Who {
    /// No token was asked for (an open path, or no such path outside `/v1`).
    Anonymous,
    /// A token was needed and no `Bearer` one was sent.
    NoToken,
    /// A token was sent and refused.
    Refused(Refused),
    Actor(Actor),
}

/// A request as it ended.
pub struct Finished<'a> {
    pub route: &'a Route,
    pub method: &'a Method,
    pub who: &'a Who,
    pub status: StatusCode,
    pub problem: Option<&'a Problem>,
    pub elapsed: Duration,
}

/// Statuses that mean "not for you" on a protected resource.
fn is_denial(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
    )
}

pub async fn finish(api: &Api, f: Finished<'_>) {
    log_line(&f);
    let route = f.route.template();
    let metrics = &api.service.metrics;
    if !matches!(f.route, Route::Unmatched { .. } | Route::WrongMethod { .. }) {
        // Paths that are no endpoint are counted as denials only: their number is unbounded.
        metrics
            .control_requests
            .with_label_values(&[route, f.status.as_str()])
            .inc();
        metrics
            .control_request_seconds
            .with_label_values(&[route])
            .observe(f.elapsed.as_secs_f64());
    }
    if f.route.protected() && is_denial(f.status) {
        api.service
            .metrics
            .control_denied
            .with_label_values(&[route, f.status.as_str()])
            .inc();
    }
    if f.status == StatusCode::FORBIDDEN {
        if let Who::Actor(actor) = f.who {
            let method = f.method.to_string();
            let permission = f.route.perm().map_or("none", |p| p.as_str());
            let code = f.problem.map_or("forbidden", |p| p.code);
            let written = api
                .service
                .audit_denied(actor, route, &method, permission, code)
                .await;
            if let Err(p) = written {
                // The request is refused either way; a lost entry must still be noticed.
                tracing::error!(error = %p, route, "could not audit a denied request");
            }
        }
    }
}

fn log_line(f: &Finished<'_>) {
    let route = f.route.template();
    let method = f.method.as_str();
    let status = f.status.as_u16();
    let ms = u64::try_from(f.elapsed.as_millis()).unwrap_or(u64::MAX);
    let code = f.problem.map_or("-", |p| p.code);
    match f.who {
        Who::Actor(a) => tracing::info!(
            method,
            route,
            status,
            ms,
            code,
            account_id = %a.account_id,
            token_id = %a.token_id,
            "control request"
        ),
        Who::Refused(
            r @ (Refused::Revoked { token_id, account_id } | Refused::Expired { token_id, account_id }),
        ) => tracing::info!(
            method,
            route,
            status,
            ms,
            code,
            auth = r.as_str(),
            account_id = %account_id,
            token_id = %token_id,
            "control request"
        ),
        Who::Refused(r) => {
            tracing::info!(
                method,
                route,
                status,
                ms,
                code,
                auth = r.as_str(),
                "control request"
            )
        }
        Who::NoToken => {
            tracing::info!(
                method,
                route,
                status,
                ms,
                code,
                auth = "missing",
                "control request"
            )
        }
        Who::Anonymous => tracing::info!(method, route, status, ms, code, "control request"),
    }
}
