//! `GET /v1/calls`, `GET /v1/files` and `GET /v1/audit`: the account's lists, newest
//! first, a page at a time. `?limit=` (1-500) and `?cursor=` (the `next_cursor` of the
//! page before, opaque) on each (`GET /v1/assistants` too, by id from the last); calls also take `assistant_id`, `from` and `to`.

use base64::Engine;
use serde_json::{json, Value};

use super::views;
use crate::model::Role;
use crate::problem::Problem;
use crate::repo::lists::{CallFilter, Page};
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

/// What a list request asked for.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub limit: Option<usize>,
    pub cursor: Option<Vec<u8>>,
    pub calls: CallFilter,
}

fn bad(code: &'static str, detail: &str) -> Problem {
    Problem::bad_request(code, detail.to_string())
}

/// Parses the query; `extra` says whether the call filters are taken.
pub fn parse(query: Option<&str>, filters: bool) -> Result<ListQuery, Problem> {
    let mut q = ListQuery::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let seconds = || {
            value
                .parse::<u64>()
                .map_err(|_| bad("invalid_query", "from and to are Unix seconds."))
        };
        match (key.as_ref(), filters) {
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
            ("assistant_id", true) if crate::ids::is_external_id(&value) => {
                q.calls.assistant_id = Some(value.into_owned());
            }
            ("assistant_id", true) => return Err(bad("invalid_query", "assistant_id is an assistant's id.")),
            ("from", true) => q.calls.from = Some(seconds()?),
            ("to", true) => q.calls.to = Some(seconds()?),
            _ => {
                return Err(bad(
                    "invalid_query",
                    "This list takes limit and cursor (calls also assistant_id, from and to).",
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
            q.cursor,
            q.limit.unwrap_or(DEFAULT_LIMIT),
            q.calls,
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
            q.cursor,
            q.limit.unwrap_or(DEFAULT_LIMIT),
            actor.role == Role::Reviewer,
        )
        .await?;
    Ok(page_json("files", page, views::file_json))
}

pub async fn assistants(svc: &Service, actor: &Actor, q: ListQuery) -> Result<Value, ServiceError> {
    let page = svc
        .repos()
        .lists
        .assistants_page(&actor.account_id, q.cursor, q.limit.unwrap_or(DEFAULT_LIMIT))
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
        .audit_page(&actor.account_id, q.cursor, q.limit.unwrap_or(MAX_LIMIT))
        .await?;
    Ok(page_json("entries", page, |e| {
        serde_json::to_value(e).unwrap_or_default()
    }))
}
