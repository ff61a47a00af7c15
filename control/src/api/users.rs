//! `/v1/users`: the console's staff, over the API. Admins invite (the one-time sign-in link
//! is in the creation answer only, as a token's secret is); admins and reviewers disable
//! users and end their sessions. The lists are in `lists`.

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::views::{session_json, user_json};
use super::{json_response, Api, ApiResponse};
use crate::model::Role;
use crate::problem::Problem;
use crate::service::Actor;
use upgate_gateway::sys::now;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    email: String,
    role: String,
}

pub async fn create(api: &Api, actor: Actor, body: CreateBody) -> Result<ApiResponse, Problem> {
    let role = Role::parse(&body.role)
        .ok_or_else(|| Problem::bad_request("unknown_role", "role is one of admin, integration, viewer."))?;
    let new = api
        .service
        .create_user(&actor.account_id, &body.email, role, Some(&actor))
        .await?;
    let mut view = user_json(&new.user);
    view["signin_url"] = json!(new.signin_url);
    Ok(json_response(StatusCode::CREATED, &view))
}

pub async fn disable(api: &Api, actor: Actor, user_id: &str) -> Result<ApiResponse, Problem> {
    let user = api.service.disable_user(&actor, user_id).await?;
    Ok(json_response(StatusCode::OK, &user_json(&user)))
}

pub async fn revoke_session(
    api: &Api,
    actor: Actor,
    user_id: &str,
    session_id: &str,
) -> Result<ApiResponse, Problem> {
    let session = api
        .service
        .revoke_user_session(&actor, user_id, session_id)
        .await?;
    Ok(json_response(StatusCode::OK, &session_json(&session, now())))
}
