//! The control API under `/v1`: JSON in and out, bearer tokens, RFC 9457 problems.
//! Routing, authentication and the role table live here; the work is in `service`.

mod download;
mod range;

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use upgate_gateway::server::boxed;
use upgate_gateway::storage::ObjectStore;

use crate::ids::is_external_id;
use crate::model::Role;
use crate::problem::Problem;
use crate::service::{blocking, Actor, CallInput, Service};
use crate::settings::FileUploadSettings;

pub type ApiResponse = Response<BoxBody<Bytes, std::io::Error>>;

/// Largest JSON body the API reads.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// What a request needs permission for; roles map to these in one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    SettingsRead,
    SettingsWrite,
    Calls,
    Read,
    Download,
    Audit,
    Tokens,
}

pub fn allows(role: Role, perm: Perm) -> bool {
    use Perm::*;
    match role {
        Role::Admin => matches!(perm, SettingsRead | SettingsWrite | Calls | Read | Audit | Tokens),
        Role::Integration => matches!(perm, SettingsRead | Calls | Read),
        Role::Reviewer => matches!(perm, SettingsRead | Read | Download | Audit),
        Role::Viewer => matches!(perm, SettingsRead | Read),
    }
}

#[derive(Clone)]
pub struct Api {
    pub service: Arc<Service>,
    pub store: Arc<dyn ObjectStore>,
}

pub fn json_response(status: StatusCode, value: &Value) -> ApiResponse {
    let mut resp = Response::new(boxed(Full::new(Bytes::from(value.to_string()))));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn problem_response(p: &Problem) -> ApiResponse {
    let mut resp = json_response(p.status, &p.to_json());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if let Some(wait) = p.extra.as_ref().and_then(|e| e["retry_after_seconds"].as_u64()) {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    }
    if p.status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

async fn read_json<T: DeserializeOwned>(body: Incoming) -> Result<T, Problem> {
    let bytes = Limited::new(body, MAX_JSON_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "The JSON body is over 64 KiB.",
                )
            } else {
                Problem::bad_request("body_unreadable", "The request body could not be read.")
            }
        })?
        .to_bytes();
    serde_json::from_slice(&bytes)
        .map_err(|e| Problem::bad_request("invalid_json", format!("The body is not the expected JSON: {e}")))
}

/// PUT answers 201 when it created the resource, 200 when it replaced it.
fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// The `Idempotency-Key` header, if any (its format is checked by the service).
fn idempotency_key(req: &Request<Incoming>) -> Result<Option<String>, Problem> {
    req.headers()
        .get("idempotency-key")
        .map(|v| {
            v.to_str().map(str::to_string).map_err(|_| {
                Problem::bad_request(
                    "invalid_idempotency_key",
                    "Idempotency-Key is 1-255 visible ASCII characters.",
                )
            })
        })
        .transpose()
}

fn bearer(req: &Request<Incoming>) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

impl Api {
    pub async fn handle(self, req: Request<Incoming>) -> ApiResponse {
        match self.route(req).await {
            Ok(resp) => resp,
            Err(p) => problem_response(&p),
        }
    }

    async fn authenticate(&self, req: &Request<Incoming>) -> Result<Actor, Problem> {
        let unauthorized = || {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Send a valid API token as `Authorization: Bearer <token>`.",
            )
        };
        let token = bearer(req).ok_or_else(unauthorized)?;
        let svc = self.service.clone();
        blocking(move || svc.authenticate(&token))
            .await?
            .ok_or_else(unauthorized)
    }

    async fn route(&self, req: Request<Incoming>) -> Result<ApiResponse, Problem> {
        let path = req.uri().path().to_string();
        let raw: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let segments: Vec<String> = raw
            .iter()
            .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        if req.method() == Method::GET && segs == ["healthz"] {
            return Ok(json_response(StatusCode::OK, &json!({"status": "ok"})));
        }
        if segs.first() != Some(&"v1") {
            return Err(Problem::not_found("resource"));
        }
        let actor = self.authenticate(&req).await?;
        let need = |perm: Perm| -> Result<(), Problem> {
            if allows(actor.role, perm) {
                Ok(())
            } else {
                Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("The {} role cannot do this.", actor.role.as_str()),
                ))
            }
        };
        let ext_id = |id: &str| -> Result<String, Problem> {
            if is_external_id(id) {
                Ok(id.to_string())
            } else {
                Err(Problem::bad_request(
                    "invalid_id",
                    "Ids use 1-128 of A-Z a-z 0-9 . _ : -",
                ))
            }
        };
        let svc = self.service.clone();
        let method = req.method().clone();
        match (&method, &segs[1..]) {
            (&Method::GET, ["assistants", id]) => {
                need(Perm::SettingsRead)?;
                let id = ext_id(id)?;
                let view = blocking(move || {
                    let a = svc.assistant(&actor.account_id, &id)?;
                    svc.assistant_view(&a)
                })
                .await?;
                Ok(json_response(StatusCode::OK, &view))
            }
            (&Method::PUT, ["assistants", id]) => {
                need(Perm::SettingsWrite)?;
                let id = ext_id(id)?;
                #[derive(serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Body {
                    file_upload: FileUploadSettings,
                }
                let body: Body = read_json(req.into_body()).await?;
                let (view, created) = blocking(move || {
                    let (a, created) = svc.put_assistant(&actor, &id, body.file_upload)?;
                    Ok((svc.assistant_view(&a)?, created))
                })
                .await?;
                Ok(json_response(created_or_ok(created), &view))
            }
            (&Method::PUT, ["calls", id]) => {
                need(Perm::Calls)?;
                let id = ext_id(id)?;
                let input: CallInput = read_json(req.into_body()).await?;
                let (view, created) = blocking(move || {
                    let (call, created) = svc.put_call(&actor, &id, input)?;
                    Ok((svc.call_view(&call)?, created))
                })
                .await?;
                Ok(json_response(created_or_ok(created), &view))
            }
            (&Method::GET, ["calls", id]) => {
                need(Perm::Read)?;
                let id = ext_id(id)?;
                let view = blocking(move || svc.call_view(&svc.call(&actor.account_id, &id)?)).await?;
                Ok(json_response(StatusCode::OK, &view))
            }
            (&Method::POST, ["calls", id, "upload-links"]) => {
                need(Perm::Calls)?;
                let id = ext_id(id)?;
                let link = svc.issue_link(actor, id, idempotency_key(&req)?).await?;
                Ok(json_response(StatusCode::CREATED, &link))
            }
            (&Method::GET, ["upload-links", id]) => {
                need(Perm::Read)?;
                let id = id.to_string();
                let link = blocking(move || svc.link_for(&actor.account_id, &id)).await?;
                Ok(json_response(
                    StatusCode::OK,
                    &crate::service::link_json(&link, upgate_gateway::routes::now()),
                ))
            }
            (&Method::POST, ["upload-links", id, "resend"]) => {
                need(Perm::Calls)?;
                let link = svc
                    .resend_link(actor, id.to_string(), idempotency_key(&req)?)
                    .await?;
                Ok(json_response(StatusCode::CREATED, &link))
            }
            (&Method::DELETE, ["upload-links", id]) => {
                need(Perm::Calls)?;
                let id = id.to_string();
                let link = blocking(move || svc.revoke_link(&actor, &id)).await?;
                Ok(json_response(StatusCode::OK, &link))
            }
            (&Method::GET, ["contacts", number, "files"]) => {
                need(Perm::Read)?;
                let number = number.to_string();
                let files = blocking(move || svc.contact_files(&actor.account_id, &number)).await?;
                let files: Vec<Value> = files.iter().map(crate::service::file_json).collect();
                Ok(json_response(StatusCode::OK, &json!({ "files": files })))
            }
            (&Method::GET, ["files", id]) => {
                need(Perm::Read)?;
                let id = id.to_string();
                let file = blocking(move || svc.file_for(&actor.account_id, &id)).await?;
                Ok(json_response(StatusCode::OK, &crate::service::file_json(&file)))
            }
            (&Method::GET, ["files", id, "content"]) => {
                need(Perm::Download)?;
                download::download(self, actor, id.to_string(), req.headers()).await
            }
            (&Method::GET, ["audit"]) => {
                need(Perm::Audit)?;
                let entries = blocking(move || svc.audit(&actor.account_id, 500)).await?;
                Ok(json_response(StatusCode::OK, &json!({ "entries": entries })))
            }
            (&Method::POST, ["tokens"]) => {
                need(Perm::Tokens)?;
                #[derive(serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Body {
                    role: String,
                }
                let body: Body = read_json(req.into_body()).await?;
                let role = Role::parse(&body.role).ok_or_else(|| {
                    Problem::bad_request("unknown_role", "role is one of admin, integration, viewer.")
                })?;
                if role == Role::Reviewer {
                    // Seeing callers' files is granted by the operator, not by an account
                    // admin (who cannot download): `upgate token create --role reviewer`.
                    return Err(Problem::new(
                        StatusCode::FORBIDDEN,
                        "reviewer_by_operator",
                        "Reviewer tokens are created by the operator with `upgate token create --role reviewer`.",
                    ));
                }
                let (record, token) =
                    blocking(move || svc.create_token(&actor.account_id, role, &actor.token_id)).await?;
                Ok(json_response(
                    StatusCode::CREATED,
                    &json!({"id": record.id, "role": role.as_str(), "token": token}),
                ))
            }
            _ => Err(Problem::not_found("resource")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_table() {
        assert!(allows(Role::Admin, Perm::SettingsWrite));
        assert!(
            !allows(Role::Admin, Perm::Download),
            "admins manage; reviewers see files"
        );
        assert!(allows(Role::Integration, Perm::Calls));
        assert!(!allows(Role::Integration, Perm::Download));
        assert!(!allows(Role::Integration, Perm::SettingsWrite));
        assert!(allows(Role::Reviewer, Perm::Download));
        assert!(allows(Role::Reviewer, Perm::Audit));
        assert!(!allows(Role::Reviewer, Perm::Calls));
        for perm in [
            Perm::SettingsWrite,
            Perm::Calls,
            Perm::Download,
            Perm::Audit,
            Perm::Tokens,
        ] {
            assert!(!allows(Role::Viewer, perm));
        }
        assert!(allows(Role::Viewer, Perm::Read));
    }
}
