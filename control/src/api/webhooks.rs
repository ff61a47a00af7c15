//! `/v1/webhooks`: an admin registers, reads, changes, rotates and deletes the account's
//! webhook endpoints, sees what failed, and replays dead letters. A secret is in the answer
//! that made it (creation, rotation) only.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{json_response, read_json, read_optional_json, Api, ApiResponse};
use crate::problem::Problem;
use crate::service::{Actor, WebhookInput, WebhookPatch};
use crate::webhooks::records::{Delivery, Endpoint};
use hyper::body::Incoming;
use upgate_gateway::sys::now;

/// An endpoint as the API shows it: never its secrets, only when each stops signing.
pub fn endpoint_json(e: &Endpoint) -> Value {
    let t = now();
    let secrets: Vec<Value> = e
        .secrets
        .iter()
        .filter(|s| s.expires_at.is_none_or(|end| t < end))
        .map(|s| json!({"created_at": s.created_at, "expires_at": s.expires_at}))
        .collect();
    json!({
        "id": e.id,
        "url": e.url,
        "event_types": e.event_types,
        "enabled": e.enabled,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
        "secrets": secrets,
        "stats": e.stats,
    })
}

fn delivery_json(d: &Delivery) -> Value {
    json!({
        "event_id": d.event_id,
        "webhook_id": crate::webhooks::records::message_id(&d.account_id, d.event_id),
        "state": d.state,
        "attempts": d.attempts,
        "first_at": d.first_at,
        "next_at": (d.state == crate::webhooks::records::DeliveryState::Pending).then_some(d.next_at),
        "last_failure": d.last_failure,
    })
}

pub async fn create(api: &Api, actor: Actor, body: Incoming) -> Result<ApiResponse, Problem> {
    let input: WebhookInput = read_json(body).await?;
    let (endpoint, secret) = api.service.create_webhook(&actor, input).await?;
    let mut view = endpoint_json(&endpoint);
    view["secret"] = json!(secret);
    Ok(json_response(StatusCode::CREATED, &view))
}

pub async fn list(api: &Api, actor: Actor) -> Result<ApiResponse, Problem> {
    let all = api.service.webhooks(&actor.account_id).await?;
    let views: Vec<Value> = all.iter().map(endpoint_json).collect();
    Ok(json_response(StatusCode::OK, &json!({ "webhooks": views })))
}

pub async fn get(api: &Api, actor: Actor, id: &str) -> Result<ApiResponse, Problem> {
    let endpoint = api.service.webhook(&actor.account_id, id).await?;
    Ok(json_response(StatusCode::OK, &endpoint_json(&endpoint)))
}

pub async fn update(api: &Api, actor: Actor, id: &str, body: Incoming) -> Result<ApiResponse, Problem> {
    let patch: WebhookPatch = read_json(body).await?;
    let endpoint = api.service.update_webhook(&actor, id, patch).await?;
    Ok(json_response(StatusCode::OK, &endpoint_json(&endpoint)))
}

pub async fn delete(api: &Api, actor: Actor, id: &str) -> Result<ApiResponse, Problem> {
    api.service.delete_webhook(&actor, id).await?;
    Ok(json_response(StatusCode::OK, &json!({"id": id, "deleted": true})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    overlap_seconds: Option<u64>,
}

/// A day, unless said otherwise: time for a receiver to pick up the new secret.
const DEFAULT_OVERLAP_SECONDS: u64 = 24 * 3600;

pub async fn rotate(api: &Api, actor: Actor, id: &str, body: Incoming) -> Result<ApiResponse, Problem> {
    let body: RotateBody = read_optional_json(body).await?;
    let overlap = body.overlap_seconds.unwrap_or(DEFAULT_OVERLAP_SECONDS);
    let (endpoint, secret) = api.service.rotate_webhook_secret(&actor, id, overlap).await?;
    let mut view = endpoint_json(&endpoint);
    view["secret"] = json!(secret);
    Ok(json_response(StatusCode::OK, &view))
}

pub async fn deliveries(api: &Api, actor: Actor, id: &str) -> Result<ApiResponse, Problem> {
    let list = api.service.webhook_deliveries(&actor.account_id, id).await?;
    let views: Vec<Value> = list.iter().map(delivery_json).collect();
    Ok(json_response(StatusCode::OK, &json!({ "deliveries": views })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    event_ids: Option<Vec<u64>>,
}

pub async fn replay(api: &Api, actor: Actor, id: &str, body: Incoming) -> Result<ApiResponse, Problem> {
    let body: ReplayBody = read_optional_json(body).await?;
    let n = api.service.replay_webhook(&actor, id, body.event_ids).await?;
    Ok(json_response(StatusCode::OK, &json!({"replayed": n})))
}
