//! The control API under `/v1`: JSON in and out, bearer tokens, RFC 9457 problems.
//! Authentication, the role table and dispatch live here, routes in `route`, what each
//! request leaves behind in `observe`; the work is in `service`.

mod download;
pub mod events;
pub mod lists;
mod observe;
mod problems;
mod range;
pub mod route;
mod tokens;
mod users;
pub mod views;
mod webhooks;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use upgate_gateway::server::boxed;
use upgate_gateway::storage::ObjectStore;

use crate::ids::is_external_id;
use crate::model::Role;
use crate::problem::Problem;
use crate::service::{Actor, CallInput, Service};
use crate::settings::FileUploadSettings;
use lists::Takes;
pub use observe::Who;
pub use route::{Perm, Route};
use upgate_gateway::sys::now;

/// A file's download for a signed-in console user (the same path, audit and checks).
pub async fn download_for(
    api: &Api,
    actor: Actor,
    file_id: String,
    headers: &http::HeaderMap,
) -> Result<ApiResponse, Problem> {
    download::download(api, actor, file_id, headers).await
}

pub type ApiResponse = Response<BoxBody<Bytes, std::io::Error>>;

/// Largest JSON body the API reads.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// The role table: the one place a role's permissions are written down (`docs/api.md`,
/// "Roles", and the tenancy test's own copy must agree with it).
pub fn allows(role: Role, perm: Perm) -> bool {
    use Perm::*;
    match role {
        Role::Admin => matches!(
            perm,
            SettingsRead | SettingsWrite | Calls | Read | Audit | Tokens | Webhooks | Revoke | Access
        ),
        Role::Integration => matches!(perm, SettingsRead | Calls | Read),
        Role::Reviewer => matches!(
            perm,
            SettingsRead | Read | Download | Audit | Quarantine | Revoke | Access
        ),
        Role::Viewer => matches!(perm, SettingsRead | Read),
    }
}

#[derive(Clone)]
pub struct Api {
    pub service: Arc<Service>,
    pub store: Arc<dyn ObjectStore>,
    pub streams: events::Streams,
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
    if let Some(wait) = p.retry_after() {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    }
    if p.status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(allow) = p.allow.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
        resp.headers_mut().insert(header::ALLOW, allow);
    }
    resp
}

async fn read_json<T: DeserializeOwned>(body: Incoming) -> Result<T, Problem> {
    parse_json(&read_body(body).await?)
}

/// A JSON body that may be left out (an empty body reads as the default).
async fn read_optional_json<T: DeserializeOwned + Default>(body: Incoming) -> Result<T, Problem> {
    let bytes = read_body(body).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(&bytes)
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let invalid = |e: serde_json::Error| {
        Problem::bad_request("invalid_json", format!("The body is not the expected JSON: {e}"))
    };
    let mut value: serde_json::Value = serde_json::from_slice(bytes).map_err(invalid)?;
    integral_floats_as_integers(&mut value);
    serde_json::from_value(value).map_err(invalid)
}

/// `3.0` is the integer 3 to JSON (and to JSON Schema's `integer`), and clients that keep
/// every number as a double send it so: such numbers are made integers before our typed
/// fields see them. `3.5` stays a float and is refused where an integer is expected.
fn integral_floats_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // Exactly representable and in range of the integer types we take.
            if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
                *value = serde_json::Value::from(f as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        serde_json::Value::Object(members) => members.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// The body, up to `MAX_JSON_BYTES`.
async fn read_body(body: Incoming) -> Result<Bytes, Problem> {
    Ok(Limited::new(body, MAX_JSON_BYTES)
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
        .to_bytes())
}

/// A report's window from `?from=&to=` (Unix seconds): by default the last 7 days, at most 31.
fn report_window(query: Option<&str>, now: u64) -> Result<(u64, u64), Problem> {
    let bad = |detail: &str| Problem::bad_request("invalid_window", detail.to_string());
    let mut from = None;
    let mut to = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let n: u64 = v.parse().map_err(|_| bad("from and to are Unix seconds."))?;
        match k {
            "from" => from = Some(n),
            "to" => to = Some(n),
            _ => return Err(bad("The report takes from and to only.")),
        }
    }
    let to = to.unwrap_or(now + 1);
    let from = from.unwrap_or(to.saturating_sub(7 * 24 * 3600));
    if from >= to || to - from > crate::service::MAX_REPORT_WINDOW_SECONDS {
        return Err(bad("from must be before to, at most 31 days apart."));
    }
    Ok((from, to))
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
    /// Every request: route, authenticate, check the role, run; then leave one log line,
    /// count a denial, audit a 403 (`observe`), whatever the outcome.
    pub async fn handle(self, req: Request<Incoming>) -> ApiResponse {
        let id = upgate_gateway::request_id::next();
        let span = upgate_gateway::request_id::span(&id);
        let mut resp = tracing::Instrument::instrument(self.handle_in_span(req), span).await;
        resp.headers_mut()
            .insert("x-request-id", upgate_gateway::request_id::header(&id));
        resp
    }

    async fn handle_in_span(self, req: Request<Incoming>) -> ApiResponse {
        let started = Instant::now();
        let method = req.method().clone();
        let route = Route::parse(&method, req.uri().path());
        let mut who = Who::Anonymous;
        let (resp, problem) = match self.serve(&route, req, &mut who).await {
            Ok(resp) => (resp, None),
            Err(p) => (problem_response(&p), Some(p)),
        };
        observe::finish(
            &self,
            observe::Finished {
                route: &route,
                method: &method,
                who: &who,
                status: resp.status(),
                problem: problem.as_ref(),
                elapsed: started.elapsed(),
            },
        )
        .await;
        resp
    }

    async fn authenticate(&self, req: &Request<Incoming>, who: &mut Who) -> Result<Actor, Problem> {
        let unauthorized = || {
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Send a valid API token as `Authorization: Bearer <token>`.",
            )
        };
        let Some(token) = bearer(req) else {
            *who = Who::NoToken;
            return Err(unauthorized());
        };
        // A read and a hash, and at most a write it does not wait for: no blocking thread.
        match self.service.authenticate(&token).await? {
            Ok(actor) => {
                *who = Who::Actor(actor.clone());
                Ok(actor)
            }
            Err(refused) => {
                *who = Who::Refused(refused);
                Err(unauthorized())
            }
        }
    }

    /// The checks in their documented order: token (401), role (403), then the endpoint's
    /// own (ids, body, existence).
    async fn serve(
        &self,
        route: &Route,
        req: Request<Incoming>,
        who: &mut Who,
    ) -> Result<ApiResponse, Problem> {
        if *route == Route::Healthz {
            return Ok(json_response(StatusCode::OK, &json!({"status": "ok"})));
        }
        if *route == Route::Console {
            return Ok(crate::console::serve(self, req).await);
        }
        let wrong_method = |allow: &[&str]| Err(Problem::method_not_allowed(allow));
        if !route.protected() {
            return match route {
                Route::WrongMethod { allow, .. } => wrong_method(allow),
                _ => Err(Problem::not_found("resource")),
            };
        }
        let actor = self.authenticate(&req, who).await?;
        let Some(perm) = route.perm() else {
            return match route {
                Route::WrongMethod { allow, .. } => wrong_method(allow),
                _ => Err(Problem::not_found("resource")),
            };
        };
        if !allows(actor.role, perm) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("The {} role cannot do this.", actor.role.as_str()),
            ));
        }
        self.dispatch(route, actor, req).await
    }

    async fn dispatch(
        &self,
        route: &Route,
        actor: Actor,
        req: Request<Incoming>,
    ) -> Result<ApiResponse, Problem> {
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
        // A list's query, read for the parameters that list `takes`.
        let query = req.uri().query().map(str::to_owned);
        let listed = |takes| lists::parse(query.as_deref(), takes);
        let ok = |v: Value| Ok(json_response(StatusCode::OK, &v));
        match route {
            Route::AssistantList => ok(lists::assistants(&svc, &actor, listed(Takes::Paging)?).await?),
            Route::AssistantGet(id) => {
                let id = ext_id(id)?;
                let public_url = svc.public_url.clone();
                let a = svc.assistant(&actor.account_id, &id).await?;
                let details = svc.assistant_details(a).await?;
                Ok(json_response(
                    StatusCode::OK,
                    &views::assistant_json(&details, &public_url),
                ))
            }
            Route::AssistantPut(id) => {
                let id = ext_id(id)?;
                #[derive(serde::Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Body {
                    file_upload: FileUploadSettings,
                }
                let body: Body = read_json(req.into_body()).await?;
                let public_url = svc.public_url.clone();
                let (a, created) = svc.put_assistant(&actor, &id, body.file_upload).await?;
                let details = svc.assistant_details(a).await?;
                Ok(json_response(
                    created_or_ok(created),
                    &views::assistant_json(&details, &public_url),
                ))
            }
            Route::CallPut(id) => {
                let id = ext_id(id)?;
                let input: CallInput = read_json(req.into_body()).await?;
                let (call, created) = svc.put_call(&actor, &id, input).await?;
                let mut details = svc.call_details(&call).await?;
                details.files.retain(|f| Service::may_see(&actor, f));
                svc.add_uploads_in_flight(&mut details).await?;
                Ok(json_response(
                    created_or_ok(created),
                    &views::call_json(&details, now()),
                ))
            }
            Route::CallGet(id) => {
                let id = ext_id(id)?;
                let call = svc.call(&actor.account_id, &id).await?;
                let mut details = svc.call_details(&call).await?;
                details.files.retain(|f| Service::may_see(&actor, f));
                svc.add_uploads_in_flight(&mut details).await?;
                Ok(json_response(StatusCode::OK, &views::call_json(&details, now())))
            }
            Route::LinkIssue(id) => {
                let id = ext_id(id)?;
                let issued = svc.issue_link(actor, id, idempotency_key(&req)?).await?;
                Ok(json_response(
                    StatusCode::CREATED,
                    &views::issued_link_json(&issued, now()),
                ))
            }
            Route::LinkGet(id) => {
                let link = svc.link_for(&actor.account_id, id).await?;
                Ok(json_response(StatusCode::OK, &views::link_json(&link, now())))
            }
            Route::LinkResend(id) => {
                #[derive(serde::Deserialize, Default)]
                #[serde(deny_unknown_fields)]
                struct Body {
                    #[serde(default)]
                    new_link: bool,
                }
                let key = idempotency_key(&req)?;
                let body: Body = read_optional_json(req.into_body()).await?;
                let issued = svc.resend_link(actor, id.clone(), body.new_link, key).await?;
                Ok(json_response(
                    StatusCode::CREATED,
                    &views::issued_link_json(&issued, now()),
                ))
            }
            Route::LinkRevoke(id) => {
                let link = svc.revoke_link(&actor, id).await?;
                Ok(json_response(StatusCode::OK, &views::link_json(&link, now())))
            }
            Route::ContactFiles(number) => {
                ok(lists::contact_files(&svc, &actor, number, listed(Takes::Paging)?).await?)
            }
            Route::FileGet(id) => {
                let id = id.clone();
                let file = svc.visible_file(&actor, &id).await?;
                Ok(json_response(StatusCode::OK, &views::file_json(&file)))
            }
            Route::FileContent(id) => download::download(self, actor, id.clone(), req.headers()).await,
            Route::FileAttestation(id) => {
                let (file, statement) = svc.attestation(&actor, id).await?;
                let a = file.attestation.expect("an attested file");
                Ok(json_response(
                    StatusCode::OK,
                    &json!({"algorithm": "Ed25519", "key_id": a.key_id, "statement": statement, "signature": a.signature}),
                ))
            }
            Route::QuarantineList => ok(lists::quarantine(&svc, &actor, listed(Takes::Paging)?).await?),
            Route::FollowUpReport => {
                let (from, to) = report_window(req.uri().query(), now())?;
                let report = svc.follow_up(&actor.account_id, from, to).await?;
                let value = serde_json::to_value(&report)
                    .map_err(|e| Problem::from(crate::service::ServiceError::Internal(e.to_string())))?;
                Ok(json_response(StatusCode::OK, &value))
            }
            Route::AttestationKeys => {
                let keys = svc.keys.current();
                let newest = keys.attestation.last().map(|k| k.id);
                let list: Vec<Value> = keys
                    .attestation
                    .iter()
                    .map(|k| {
                        json!({
                            "id": k.id,
                            "algorithm": "Ed25519",
                            "current": Some(k.id) == newest,
                            "public_key_pem": crate::attest::public_pem(&k.public()),
                        })
                    })
                    .collect();
                Ok(json_response(StatusCode::OK, &json!({ "keys": list })))
            }
            Route::CallEvents(id) => {
                let id = ext_id(id)?;
                let after = events::resume_after(req.headers(), req.uri().query())?;
                let call = svc.call(&actor.account_id, &id).await?;
                let token = events::Credential::Token(bearer(&req).unwrap_or_default());
                events::open(svc, &self.streams, token, actor.account_id, Some(call), after).await
            }
            Route::Events => {
                let after = events::resume_after(req.headers(), req.uri().query())?;
                let token = events::Credential::Token(bearer(&req).unwrap_or_default());
                events::open(svc, &self.streams, token, actor.account_id, None, after).await
            }
            Route::AuditList => ok(lists::audit(&svc, &actor, listed(Takes::Audit)?).await?),
            Route::CallList => ok(lists::calls(&svc, &actor, listed(Takes::Calls)?).await?),
            Route::FileList => ok(lists::files(&svc, &actor, listed(Takes::Paging)?).await?),
            Route::WebhookCreate => webhooks::create(self, actor, req.into_body()).await,
            Route::WebhookList => webhooks::list(self, actor).await,
            Route::WebhookGet(id) => webhooks::get(self, actor, id).await,
            Route::WebhookUpdate(id) => webhooks::update(self, actor, id, req.into_body()).await,
            Route::WebhookDelete(id) => webhooks::delete(self, actor, id).await,
            Route::WebhookRotate(id) => webhooks::rotate(self, actor, id, req.into_body()).await,
            Route::WebhookDeliveries(id) => webhooks::deliveries(self, actor, id).await,
            Route::WebhookReplay(id) => webhooks::replay(self, actor, id, req.into_body()).await,
            Route::TokenCreate => tokens::create(self, actor, read_json(req.into_body()).await?).await,
            Route::TokenList => ok(lists::tokens(&svc, &actor, listed(Takes::Paging)?).await?),
            Route::UserList => ok(lists::users(&svc, &actor, listed(Takes::Paging)?).await?),
            Route::UserCreate => users::create(self, actor, read_json(req.into_body()).await?).await,
            Route::UserDisable(id) => users::disable(self, actor, id).await,
            Route::UserSessionRevoke(user, session) => {
                users::revoke_session(self, actor, user, session).await
            }
            Route::UserSessions(id) => ok(lists::sessions(&svc, &actor, id, listed(Takes::Paging)?).await?),
            Route::TokenGet(id) => tokens::get(self, actor, id.clone()).await,
            Route::TokenRevoke(id) => tokens::revoke(self, actor, id.clone()).await,
            Route::Healthz | Route::Console | Route::Unmatched { .. } | Route::WrongMethod { .. } => {
                Err(Problem::not_found("resource"))
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod contract;
