//! What every console response carries (the CSP and friends), cookies, forms and the check
//! every POST passes: same origin (Fetch metadata, or Origin against Host) and, once signed
//! in, the session's form token compared in constant time.

use std::collections::HashMap;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use maud::Markup;
use upgate_gateway::server::boxed;

use super::Visit;
use crate::api::ApiResponse;

/// The cookie's name. `__Host-` (Secure, no Domain, Path=/) when the console is on https.
pub const SESSION_COOKIE: &str = "upgate_session";
const FORM_MAX_BYTES: usize = 64 * 1024;

/// No script but our own file, no style but our own file, no frames, forms only to us.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn with_headers(mut resp: ApiResponse) -> ApiResponse {
    let h = resp.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    // `same-origin`, not `no-referrer`: with no referrer at all, Chromium sends `Origin: null`
    // on our own form posts, and the origin check below would refuse them.
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

pub fn bytes_response(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> ApiResponse {
    let mut resp = Response::new(boxed(Full::new(body.into())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    with_headers(resp)
}

pub fn html(status: StatusCode, page: Markup) -> ApiResponse {
    bytes_response(status, "text/html; charset=utf-8", page.into_string())
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> ApiResponse {
    bytes_response(status, "application/json", value.to_string())
}

pub fn redirect(to: &str) -> ApiResponse {
    let mut resp = bytes_response(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

pub fn html_error(visit: &Visit, status: StatusCode, text: &str) -> ApiResponse {
    html(status, super::layout::message_page(Some(visit), status, text))
}

/// A page for someone not signed in (a refused form, an unknown link).
pub fn bare_error(status: StatusCode, text: &str) -> ApiResponse {
    html(status, super::layout::message_page(None, status, text))
}

/// A service failure as a page: the same status and words the API's problem would carry.
pub fn problem_page(visit: &Visit, e: crate::service::ServiceError) -> ApiResponse {
    let p = crate::problem::Problem::from(e);
    html_error(visit, p.status, &p.detail)
}

/// A list page's query: its parameters that have a value.
pub fn query_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// The cursor a list page's link carries under `key` (`cursor`, or a list's own name when
/// a page shows two lists), read as the API's lists read theirs.
pub fn page_cursor(q: &[(String, String)], key: &str) -> Result<Option<Vec<u8>>, crate::problem::Problem> {
    match q.iter().find(|(k, _)| k == key) {
        None => Ok(None),
        Some((_, c)) => Ok(crate::api::lists::parse(
            Some(&format!("cursor={c}")),
            crate::api::lists::Takes::Paging,
        )?
        .cursor),
    }
}

/// The link to the page after this one: the same query, the cursor under `key` moved on
/// to `next`.
pub fn next_page(path: &str, q: &[(String, String)], key: &str, next: &[u8]) -> String {
    let mut pairs: Vec<(String, String)> = q.iter().filter(|(k, _)| k != key).cloned().collect();
    pairs.push((key.into(), crate::api::lists::encode_cursor(next)));
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    format!("{path}?{query}")
}

/// The stylesheet and the script, built in: no file to lose, nothing from elsewhere.
pub fn asset(name: &str) -> ApiResponse {
    let (kind, body): (&'static str, &'static str) = match name {
        "console.css" => ("text/css; charset=utf-8", include_str!("assets/console.css")),
        "console.js" => (
            "text/javascript; charset=utf-8",
            include_str!("assets/console.js"),
        ),
        "icon.svg" => ("image/svg+xml", include_str!("assets/icon.svg")),
        "file.svg" => ("image/svg+xml", include_str!("assets/file.svg")),
        _ => return bare_error(StatusCode::NOT_FOUND, "There is no such file."),
    };
    let mut resp = bytes_response(StatusCode::OK, kind, body);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// The cookie `name` (exactly: the session cookie's name says whether it must be Secure).
pub fn cookie<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The session cookie's name: with `__Host-` on https, so only a Secure cookie set by this
/// host for the whole site is read (a sibling subdomain or a plain-http page cannot plant
/// one that shadows it).
pub fn session_cookie_name(secure: bool) -> String {
    if secure {
        format!("__Host-{SESSION_COOKIE}")
    } else {
        SESSION_COOKIE.to_string()
    }
}

/// The session cookie: HttpOnly, SameSite=Strict, Secure with `__Host-` when on https.
pub fn session_cookie(secure: bool, value: &str, max_age: u64) -> HeaderValue {
    let secure_attr = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure_attr}",
        session_cookie_name(secure)
    ))
    .expect("cookie is ASCII")
}

/// A form's fields in order, repeated names kept (checkbox groups), up to 64 KiB.
pub async fn read_pairs(body: Incoming) -> Option<Vec<(String, String)>> {
    let bytes = Limited::new(body, FORM_MAX_BYTES)
        .collect()
        .await
        .ok()?
        .to_bytes();
    Some(form_urlencoded::parse(&bytes).into_owned().collect())
}

/// A form's fields by name (the last of a repeated name).
pub async fn read_form(body: Incoming) -> Option<HashMap<String, String>> {
    Some(read_pairs(body).await?.into_iter().collect())
}

/// Refuses a POST that did not come from our own pages: another site's form or script
/// (Fetch metadata says cross-site, or Origin is not this host), or, signed in, a missing
/// or wrong form token (field `_csrf`, or header `x-csrf-token` for our script's calls).
pub fn post_allowed(req: &Request<Incoming>, csrf: Option<&str>) -> bool {
    let refuse = || false;
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return refuse();
        }
    }
    if let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        let origin_host = origin.split_once("://").map(|(_, h)| h);
        if origin_host != Some(host) {
            return refuse();
        }
    }
    let Some(expected) = csrf else { return true };
    // The token is read from the header here; forms are checked by `form_token_ok` once
    // their body is read.
    if let Some(given) = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return upgate_gateway::sys::secrets_equal(given.as_bytes(), expected.as_bytes());
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    form
}

/// The answer to a post `post_allowed` refused, or one without its form token.
pub fn forged() -> ApiResponse {
    bare_error(
        StatusCode::FORBIDDEN,
        "This form did not come from the console's own page. Reload the page and try again.",
    )
}

/// The form's `_csrf` field against the session's token.
pub fn form_token_ok(form: &HashMap<String, String>, visit: &Visit) -> bool {
    form.get("_csrf")
        .is_some_and(|t| upgate_gateway::sys::secrets_equal(t.as_bytes(), visit.session.csrf.as_bytes()))
}

/// A form read and its token checked, or the answer to give instead.
pub async fn signed_form(
    visit: &Visit,
    req: Request<Incoming>,
) -> Result<HashMap<String, String>, Box<ApiResponse>> {
    let form = read_form(req.into_body())
        .await
        .ok_or_else(|| Box::new(bare_error(StatusCode::BAD_REQUEST, "The form could not be read.")))?;
    if form_token_ok(&form, visit) {
        return Ok(form);
    }
    Err(Box::new(forged()))
}
