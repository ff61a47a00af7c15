//! Every list the control API answers, a page at a time: `?limit=` (1-500) and `?cursor=`
//! (the `next_cursor` of the page before, opaque) on each. Calls, files, a caller's files,
//! quarantine and the audit log come newest first; assistants, tokens, users and sessions
//! by id. Calls also take `assistant_id`, `from`, `to`, `has_files` and `has_refusals`
//! (filtered in the store; a filter that matches little gives short pages with a cursor).
//!
//! Lists that answered whole before they were paged (a caller's files, quarantine, tokens,
//! the audit log) give up to 500 when asked without `limit`, as close to their old answer
//! as a bounded page can be.

use base64::Engine;
use serde_json::{json, Value};

use super::views;
use crate::model::Role;
use crate::problem::Problem;
use crate::repo::lists::{AuditFilter, CallFilter, Page};
use crate::service::{Actor, Service, ServiceError};

pub const MAX_LIMIT: usize = 500;

/// Cursors are base64url without padding. Decoding forgives trailing bits, so every string
/// of the documented shape decodes: a cursor a client made up is a place in its own list,
/// never an error worth a different answer.
const CURSOR: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
);
const DEFAULT_LIMIT: usize = 100;

impl ListQuery {
    fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT)
    }

    /// The limit of a list that answered whole before it was paged.
    fn limit_or_max(&self) -> usize {
        self.limit.unwrap_or(MAX_LIMIT)
    }
}

/// What a list request asked for.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub limit: Option<usize>,
    pub cursor: Option<Vec<u8>>,
    pub calls: CallFilter,
    pub audit: AuditFilter,
}

/// Which parameters a list takes besides `limit` and `cursor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    Paging,
    /// `assistant_id`, `from`, `to`, `has_files`, `has_refusals`.
    Calls,
    /// `action` (a prefix), `actor`.
    Audit,
}

/// An audit filter's value: what actions and actors are spelled with, 1-128 characters.
fn audit_word(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn bad(code: &'static str, detail: &str) -> Problem {
    Problem::bad_request(code, detail.to_string())
}

/// Parses the query of a list that `takes` these filters.
pub fn parse(query: Option<&str>, takes: Takes) -> Result<ListQuery, Problem> {
    let mut q = ListQuery::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let seconds = || {
            value
                .parse::<u64>()
                .map_err(|_| bad("invalid_query", "from and to are Unix seconds."))
        };
        let (calls, audit) = (takes == Takes::Calls, takes == Takes::Audit);
        match (key.as_ref(), calls || audit) {
            ("limit", _) => {
                let n = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n));
                q.limit = Some(n.ok_or_else(|| bad("invalid_limit", "limit is from 1 to 500."))?);
            }
            ("cursor", _) => {
                let bytes = CURSOR
                    .decode(value.as_bytes())
                    .ok()
                    .filter(|b| !b.is_empty() && b.len() <= 300);
                q.cursor = Some(bytes.ok_or_else(|| {
                    bad(
                        "invalid_cursor",
                        "cursor is the next_cursor of an earlier page, as it was given.",
                    )
                })?);
            }
            ("action" | "actor", true) if audit && audit_word(&value) => {
                if key == "action" {
                    q.audit.action = Some(value.into_owned());
                } else {
                    q.audit.actors = Some(vec![value.into_owned()]);
                }
            }
            ("action" | "actor", true) if audit => {
                return Err(bad(
                    "invalid_query",
                    "action and actor are 1-128 of A-Z a-z 0-9 . _ : -.",
                ))
            }
            ("assistant_id", true) if calls && crate::ids::is_external_id(&value) => {
                q.calls.assistant_id = Some(value.into_owned());
            }
            ("assistant_id", true) if calls => return Err(bad("invalid_query", "assistant_id is an assistant's id.")),
            ("has_files" | "has_refusals", true) if calls => {
                let want = match value.as_ref() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad("invalid_query", "has_files and has_refusals are true or false.")),
                };
                if key == "has_files" {
                    q.calls.has_files = Some(want);
                } else {
                    q.calls.has_refusals = Some(want);
                }
            }
            ("from", true) if calls => q.calls.from = Some(seconds()?),
            ("to", true) if calls => q.calls.to = Some(seconds()?),
            _ => {
                return Err(bad(
                    "invalid_query",
                    "This list takes limit and cursor (calls also assistant_id, from, to, has_files and has_refusals; the audit log action and actor).",
                ))
            }
        }
    }
    Ok(q)
}

fn page_json<T>(key: &str, page: Page<T>, item: impl Fn(&T) -> Value) -> Value {
    let items: Vec<Value> = page.items.iter().map(item).collect();
    let next = page.next.map(|n| CURSOR.encode(n));
    json!({ key: items, "next_cursor": next })
}

pub async fn calls(svc: &Service, actor: &Actor, q: ListQuery) -> Result<Value, ServiceError> {
    let page = svc
        .repos()
        .lists
        .calls_page(
            &actor.account_id,
            q.cursor.clone(),
            q.limit(),
            CallFilter {
                sees_quarantine: actor.role == Role::Reviewer,
                ..q.calls.clone()
            },
        )
        .await?;
    Ok(page_json("calls", page, |c| {
        json!({
            "id": c.id,
            "assistant_id": c.assistant_id,
            "caller_number": c.caller_number,
            "created_at": c.created_at,
        })
    }))
}

pub async fn files(svc: &Service, actor: &Actor, q: ListQuery) -> Result<Value, ServiceError> {
    let page = svc
        .repos()
        .lists
        .files_page(
            &actor.account_id,
            q.cursor.clone(),
            q.limit(),
            actor.role == Role::Reviewer,
        )
        .await?;
    Ok(page_json("files", page, views::file_json))
}

pub async fn assistants(svc: &Service, actor: &Actor, q: ListQuery) -> Result<Value, ServiceError> {
    let page = svc
        .repos()
        .lists
        .assistants_page(&actor.account_id, q.cursor.clone(), q.limit())
        .await?;
    Ok(page_json("assistants", page, |a| {
        json!({
            "id": a.id,
            "file_upload_enabled": a.file_upload.enabled,
            "updated_at": a.updated_at,
        })
    }))
}

/// A page's `next`, as a `cursor` the list takes back (the console's links carry it).
pub fn encode_cursor(next: &[u8]) -> String {
    CURSOR.encode(next)
}

/// The audit log keeps its answer of before pagination when asked without `limit`: the
/// newest 500.
pub async fn audit(svc: &Service, actor: &Actor, q: ListQuery) -> Result<Value, ServiceError> {
    let page = svc
        .repos()
        .lists
        .audit_page(&actor.account_id, q.cursor.clone(), q.limit_or_max(), q.audit)
        .await?;
    Ok(page_json("entries", page, |e| {
        serde_json::to_value(e).unwrap_or_default()
    }))
}

/// `GET /v1/contacts/{number}/files`.
pub async fn contact_files(
    svc: &Service,
    actor: &Actor,
    number: &str,
    q: ListQuery,
) -> Result<Value, ServiceError> {
    let page = svc
        .contact_files(actor, number, q.cursor.clone(), q.limit_or_max())
        .await?;
    Ok(page_json("files", page, views::file_json))
}

/// `GET /v1/quarantine`.
pub async fn quarantine(svc: &Service, actor: &Actor, q: ListQuery) -> Result<Value, ServiceError> {
    let page = svc
        .quarantine(&actor.account_id, q.cursor.clone(), q.limit_or_max())
        .await?;
    Ok(page_json("files", page, views::file_json))
}

/// `GET /v1/tokens`.
pub async fn tokens(svc: &Service, actor: &Actor, q: ListQuery) -> Result<Value, ServiceError> {
    let page = svc
        .tokens_page(&actor.account_id, q.cursor.clone(), q.limit_or_max())
        .await?;
    let t = upgate_gateway::sys::now();
    Ok(page_json("tokens", page, |r| views::token_json(r, t)))
}

/// `GET /v1/users`.
pub async fn users(svc: &Service, actor: &Actor, q: ListQuery) -> Result<Value, ServiceError> {
    let page = svc
        .users_page(&actor.account_id, q.cursor.clone(), q.limit())
        .await?;
    Ok(page_json("users", page, views::user_json))
}

/// `GET /v1/users/{user_id}/sessions`.
pub async fn sessions(
    svc: &Service,
    actor: &Actor,
    user_id: &str,
    q: ListQuery,
) -> Result<Value, ServiceError> {
    let page = svc
        .sessions(&actor.account_id, user_id, q.cursor.clone(), q.limit())
        .await?;
    let t = upgate_gateway::sys::now();
    Ok(page_json("sessions", page, |s| views::session_json(s, t)))
}
