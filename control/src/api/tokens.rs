//! `/v1/tokens`: an admin creates its account's API tokens; admins and reviewers read and
//! revoke them (the list is in `lists`). The secret is in the creation answer only;
//! listings show ids, roles, names and times.

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::views::token_json;
use super::{json_response, Api, ApiResponse};
use crate::model::Role;
use crate::problem::Problem;
use crate::service::{Actor, NewToken};
use upgate_gateway::sys::now;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    role: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    expires_in_seconds: Option<u64>,
}

pub async fn create(api: &Api, actor: Actor, body: CreateBody) -> Result<ApiResponse, Problem> {
    let role = Role::parse(&body.role)
        .ok_or_else(|| Problem::bad_request("unknown_role", "role is one of admin, integration, viewer."))?;
    if role == Role::Reviewer {
        // Seeing callers' files is granted by the operator, not by an account admin (who
        // cannot download): `upgate token create --role reviewer`.
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "reviewer_by_operator",
            "Reviewer tokens are created by the operator with `upgate token create --role reviewer`.",
        ));
    }
    let new = NewToken {
        name: body.name,
        expires_in: body.expires_in_seconds,
        not_after: actor.expires_at,
    };
    let svc = api.service.clone();
    let (record, token) = svc
        .create_token(&actor.account_id, role, new, &actor.token_id)
        .await?;
    let mut view = token_json(&record, now());
    view["token"] = json!(token);
    Ok(json_response(StatusCode::CREATED, &view))
}

pub async fn get(api: &Api, actor: Actor, id: String) -> Result<ApiResponse, Problem> {
    let svc = api.service.clone();
    let token = svc.token(&actor.account_id, &id).await?;
    Ok(json_response(StatusCode::OK, &token_json(&token, now())))
}

pub async fn revoke(api: &Api, actor: Actor, id: String) -> Result<ApiResponse, Problem> {
    let svc = api.service.clone();
    let token = svc.revoke_token(&actor.token_id, &actor.account_id, &id).await?;
    Ok(json_response(StatusCode::OK, &token_json(&token, now())))
}
