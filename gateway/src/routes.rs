//! Request dispatch for the public listener. The token is checked (one MAC, no lookup)
//! before anything else touches state; a GET never spends a link.

use crate::sys::now;
use std::net::IpAddr;
use std::sync::Arc;

use http::{header, Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tracing::Instrument;

use crate::control_link::{ControlError, LinkState, Refusal};
use crate::i18n::{Lang, Text};
use crate::page;
use crate::request_id;
use crate::respond::{self, Resp};
use crate::state::Gateway;
use crate::token::{self, Claims, LinkId, TokenError};

mod report_route;
mod tus_route;
mod upload_route;

use crate::upload::{self, UploadError};
use upload_route::{refuse_body, upload};

/// Ambiguous framing is refused and the connection closed: the smuggling classes
/// (CL+TE, obfuscated TE) never reach a handler.
fn framing_is_ambiguous<B>(req: &Request<B>) -> bool {
    let h = req.headers();
    let te: Vec<_> = h.get_all(header::TRANSFER_ENCODING).iter().collect();
    if te.is_empty() {
        return false;
    }
    h.contains_key(header::CONTENT_LENGTH) || te.len() > 1 || te[0].as_bytes() != b"chunked"
}

/// One log line per request. The route is named, never the path: the path holds the token.
pub async fn handle(gw: Arc<Gateway>, req: Request<Incoming>, peer: IpAddr) -> Resp {
    let id = request_id::next();
    let span = request_id::span(&id);
    async move {
        let started = std::time::Instant::now();
        let method = req.method().clone();
        let route = route_name(req.uri().path());
        let mut resp = dispatch(gw, req, peer).await;
        tracing::info!(%method, route, status = resp.status().as_u16(), ms = started.elapsed().as_millis() as u64, "request");
        resp.headers_mut().insert("x-request-id", request_id::header(&id));
        resp
    }
    .instrument(span)
    .await
}

/// The path's segments, if the path is written the one way we serve it: one leading slash,
/// no empty, dot or percent-encoded segments. A proxy in front may read `//u/x`, `/u/./x` or
/// `/u%2Fx` differently from us, so those are not ours to answer (404), never normalised.
fn segments(path: &str) -> Option<Vec<&str>> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let plain = |s: &&str| {
        !s.is_empty()
            && !s.bytes().all(|b| b == b'.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    segments.iter().all(plain).then_some(segments)
}

fn route_name(path: &str) -> &'static str {
    match segments(path).as_deref() {
        Some(["u", "s", _]) => "/u/s/{link}",
        Some(["u", "s", _, "files"]) => "/u/s/{link}/files",
        Some(["u", "s", _, "done"]) => "/u/s/{link}/done",
        Some(["u", "s", _, "tus"]) => "/u/s/{link}/tus",
        Some(["u", "s", _, "tus", _]) => "/u/s/{link}/tus/{id}",
        Some(["u", _]) => "/u/{token}",
        Some(["u", _, "files"]) => "/u/{token}/files",
        Some(["u", _, "done"]) => "/u/{token}/done",
        Some(["u", _, "tus"]) => "/u/{token}/tus",
        Some(["u", _, "tus", _]) => "/u/{token}/tus/{id}",
        Some(["assets", _]) => "/assets",
        Some(["healthz"]) => "/healthz",
        Some(["readyz"]) => "/readyz",
        Some(["hooks", "sms", _]) => "/hooks/sms/{provider}",
        _ => "other",
    }
}

async fn dispatch(gw: Arc<Gateway>, req: Request<Incoming>, peer: IpAddr) -> Resp {
    if framing_is_ambiguous(&req) {
        return respond::closing(respond::problem(
            StatusCode::BAD_REQUEST,
            "ambiguous_framing",
            "The request could not be read. Please try again.",
        ));
    }
    let path = req.uri().path().to_string();
    let segments = segments(&path).unwrap_or_default();
    match (req.method(), segments.as_slice()) {
        (_, ["u", ..]) => link_request(gw, req, peer, &segments).await,
        (&Method::POST, ["hooks", "sms", provider]) => {
            let provider = provider.to_string();
            report_route::report(&gw, req, &provider).await
        }
        (&Method::GET, ["healthz"]) => respond::text(StatusCode::OK, "ok\n".into()),
        (&Method::GET, ["readyz"]) => {
            // For load balancers: the verdict only. Engine versions and failure details are
            // for the operator, on the monitoring listener.
            let (ready, _) = gw.readiness().await;
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            respond::json(status, &json!({ "ready": ready }))
        }
        (&Method::GET, ["assets", "upload.js"]) => {
            respond::asset("text/javascript; charset=utf-8", page::SCRIPT)
        }
        (&Method::GET, ["assets", "upload.css"]) => respond::asset("text/css; charset=utf-8", page::STYLE),
        _ => respond::problem(StatusCode::NOT_FOUND, "not_found", "There is nothing here."),
    }
}

/// The cookie that carries a link's token once its page moved it out of the address bar.
fn cookie_name(link_id: &str) -> String {
    format!("upgate_{link_id}")
}

/// The token in the cookie for link `id`, if the request carries one.
fn cookie_token(headers: &http::HeaderMap, id: &str) -> Option<String> {
    let name = cookie_name(id);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

/// Everything under `/u/`. A link is addressed by its token in the path (`/u/{token}/…`,
/// as texted, and as API and tus clients use it) or, once its page has moved the token
/// into a cookie, by its id (`/u/s/{id}/…`), which is what the caller's address bar shows.
async fn link_request(gw: Arc<Gateway>, req: Request<Incoming>, peer: IpAddr, segments: &[&str]) -> Resp {
    let (token, rest, page, by_cookie) = match segments {
        ["u", "s", id, rest @ ..] => (
            cookie_token(req.headers(), id).filter(|t| t.len() <= 128),
            rest,
            format!("/u/s/{id}"),
            Some(*id),
        ),
        ["u", tok, rest @ ..] => (Some(tok.to_string()), rest, format!("/u/{tok}"), None),
        _ => return respond::problem(StatusCode::NOT_FOUND, "not_found", "There is nothing here."),
    };
    let method = req.method().clone();
    let form = match (&method, rest) {
        (&Method::GET | &Method::HEAD, []) => Form::Page,
        (&Method::POST, ["files"] | ["done"]) => Form::asked(req.headers()),
        _ => Form::Json,
    };
    let how = Answer::new(form, &req, page);
    if method == Method::OPTIONS && rest == ["tus"] {
        return tus_route::options(&gw);
    }
    let known = matches!(
        (&method, rest),
        (&Method::GET | &Method::HEAD, [])
            | (&Method::POST, ["files"] | ["done"] | ["tus"])
            | (&Method::HEAD | &Method::PATCH | &Method::DELETE, ["tus", _])
    );
    if !known {
        return respond::problem(StatusCode::NOT_FOUND, "not_found", "There is nothing here.");
    }
    if method == Method::POST && rest == ["files"] && gw.is_draining() {
        let resp = answer(
            &how,
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            |t| (t.title_try_again, t.unavailable),
        );
        return refuse_body(&gw, req, respond::closing(resp));
    }
    // No cookie for this link (another browser, cookies off, a preview bot): nothing to
    // check, and no failed attempt counted against the address.
    let Some(token) = token else {
        return refuse_body(&gw, req, invalid_link(&how));
    };
    let claims = match check(&gw, &token, peer) {
        // A cookie is only good for the link it was set for.
        Ok(claims) if by_cookie.is_some_and(|id| claims.link_id.to_string() != id) => {
            return refuse_body(&gw, req, invalid_link(&how));
        }
        Ok(claims) => claims,
        Err(e) => return refuse_body(&gw, req, refused_link(e, &how)),
    };
    match (&method, rest) {
        (&Method::GET | &Method::HEAD, []) if by_cookie.is_none() => {
            hand_over(&gw, &claims, &token, &how).await
        }
        (&Method::GET | &Method::HEAD, []) => show(&gw, &claims, &how, method == Method::GET).await,
        (&Method::POST, ["files"]) => upload(gw.clone(), claims, req, how).await,
        (&Method::POST, ["done"]) => finish(&gw, &claims, &how).await,
        (&Method::POST, ["tus"]) => tus_route::create(gw.clone(), claims, req, how).await,
        (&Method::PATCH, ["tus", id]) => tus_route::patch(gw.clone(), claims, req, id.to_string(), how).await,
        (&Method::HEAD, ["tus", id]) => tus_route::head(gw.clone(), claims, req.headers(), id, how).await,
        (_, ["tus", id]) => tus_route::delete(gw.clone(), claims, req.headers(), id).await,
        _ => respond::problem(StatusCode::NOT_FOUND, "not_found", "There is nothing here."),
    }
}

/// The texted link, opened: for an active link, the token goes into an HttpOnly, Secure,
/// SameSite=Strict cookie for this link alone, and a page moves on to the token-free
/// address. It moves on by `meta refresh` rather than a `303`: after a redirect from a link
/// clicked on another site, browsers withhold SameSite=Strict cookies, while a navigation
/// our own page starts carries them. Link-preview bots see that plain page; nothing spends.
async fn hand_over(gw: &Gateway, claims: &Claims, token: &str, how: &Answer) -> Resp {
    match gw.link(&claims.link_id).await {
        Ok(view) if view.state == LinkState::Active => {
            let id = claims.link_id.to_string();
            let target = format!("/u/s/{id}?lang={}", how.lang.code());
            let max_age = claims.expires_at.saturating_sub(now());
            let cookie = format!(
                "{}={token}; Path=/u/s/{id}; Max-Age={max_age}; Secure; HttpOnly; SameSite=Strict",
                cookie_name(&id)
            );
            let mut resp = respond::html(StatusCode::OK, page::hand_over_page(how.lang, &target));
            if let Ok(v) = http::HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Ok(view) => link_gone(how, view.state),
        Err(e) => control_down(e, how),
    }
}

/// Verifies the token: every forgery gets the same answer after the same work. An address
/// that keeps failing is refused before any work at all.
fn check(gw: &Gateway, tok: &str, peer: IpAddr) -> Result<Claims, LinkRefusal> {
    if gw.link_failures.blocked(&peer) {
        gw.metrics.link_checks.with_label_values(&["rate_limited"]).inc();
        return Err(LinkRefusal::TooManyFailures);
    }
    // Without keys yet (a gateway that started before its control plane) no token can be
    // judged: the caller is asked to try again, and nothing counts as a failed attempt.
    let Some(keys) = gw.keys.current() else {
        return Err(LinkRefusal::NoKeysYet);
    };
    let result = token::verify(&keys.links, tok, now());
    let label = match &result {
        Ok(_) => "ok",
        Err(TokenError::Invalid) => "invalid",
        Err(TokenError::Expired(_)) => "expired",
    };
    gw.metrics.link_checks.with_label_values(&[label]).inc();
    if matches!(result, Err(TokenError::Invalid)) {
        gw.link_failures.failed(peer);
    }
    result.map_err(LinkRefusal::Token)
}

/// Why a link request did not get past the token check.
enum LinkRefusal {
    Token(TokenError),
    TooManyFailures,
    NoKeysYet,
}

/// The caller's page answers in HTML; the endpoints its script calls answer problem
/// documents carrying the same sentences, which the script shows. A plain form posted
/// without JavaScript asks for a page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Page,
    Json,
}

impl Form {
    /// A form posted by a browser names `text/html` in `Accept`; the page's script sends
    /// `*/*`, as every fetch does by default.
    fn asked(headers: &http::HeaderMap) -> Form {
        let html = headers
            .get_all(header::ACCEPT)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("text/html")));
        if html {
            Form::Page
        } else {
            Form::Json
        }
    }
}

/// How to answer one caller's request: in which form, in which language, and where the
/// link's page is (for the language switcher and the way back to it).
#[derive(Clone)]
pub(crate) struct Answer {
    pub form: Form,
    pub lang: Lang,
    pub page: String,
}

impl Answer {
    fn new<B>(form: Form, req: &Request<B>, page: String) -> Answer {
        Answer {
            form,
            lang: Lang::negotiate(req.uri().query(), req.headers()),
            page,
        }
    }

    pub fn text(&self) -> &'static Text {
        self.lang.text()
    }
}

/// An answer with a title and a sentence from the caller's catalogue.
pub(crate) fn answer(
    how: &Answer,
    status: StatusCode,
    code: &str,
    words: impl Fn(&'static Text) -> (&'static str, &'static str),
) -> Resp {
    let (title, sentence) = words(how.text());
    match how.form {
        Form::Page => respond::html(
            status,
            page::message_page(how.lang, Some(&how.page), title, sentence),
        ),
        Form::Json => respond::problem(status, code, sentence),
    }
}

/// The answer for a token that did not verify.
fn refused_link(e: LinkRefusal, how: &Answer) -> Resp {
    match e {
        LinkRefusal::Token(TokenError::Invalid) => invalid_link(how),
        LinkRefusal::Token(TokenError::Expired(_)) => link_gone(how, LinkState::Expired),
        LinkRefusal::TooManyFailures => {
            answer(how, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", |t| {
                (t.title_too_many, t.too_many)
            })
        }
        LinkRefusal::NoKeysYet => control_down(
            ControlError::Unavailable("no link keys from the control plane yet".into()),
            how,
        ),
    }
}

fn invalid_link(how: &Answer) -> Resp {
    answer(how, StatusCode::NOT_FOUND, "link_invalid", |t| {
        (t.title_invalid, t.invalid_link)
    })
}

/// The link takes no more files: 410 with the state's sentence.
fn link_gone(how: &Answer, state: LinkState) -> Resp {
    let t = how.text();
    match how.form {
        Form::Page => respond::html(
            StatusCode::GONE,
            page::ended_page(how.lang, Some(state), Some(&how.page)),
        ),
        Form::Json => respond::problem(StatusCode::GONE, "link_gone", upload::link_gone_message(state, t)),
    }
}

pub(crate) fn control_down(e: ControlError, how: &Answer) -> Resp {
    match e {
        ControlError::UnknownLink => invalid_link(how),
        ControlError::Unavailable(detail) => {
            tracing::error!(%detail, "control plane unavailable");
            answer(
                how,
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                |t| (t.title_try_again, t.unavailable),
            )
        }
    }
}

async fn show(gw: &Gateway, claims: &Claims, how: &Answer, shown: bool) -> Resp {
    match gw.link(&claims.link_id).await {
        Ok(view) if view.state == LinkState::Active => {
            // The page reached a browser that kept the link's cookie: the caller opened it.
            // Told on the side, so the page never waits on it (a HEAD shows nothing).
            if shown && gw.opened.first(claims.link_id) {
                let (control, id) = (gw.control.clone(), claims.link_id);
                tokio::spawn(async move { control.opened(&id).await });
            }
            respond::html(StatusCode::OK, page::upload_page(&view, &how.page, how.lang))
        }
        Ok(view) => link_gone(how, view.state),
        Err(e) => control_down(e, how),
    }
}

/// Records a refused file on the call, with the sentence the caller was shown: the
/// assistant on the line can say the same.
async fn record_refusal(
    gw: &Gateway,
    link: &LinkId,
    e: &UploadError,
    refusal: Option<Refusal>,
    how: &Answer,
) {
    if let Some(mut refusal) = refusal {
        refusal.message = e.caller_message(how.text());
        refusal.lang = how.lang.code().to_string();
        gw.control.refused(link, refusal).await;
    }
}

/// "I'm finished": ends the link, once at least one file came (pressing it first must not
/// spend the link on nothing).
async fn finish(gw: &Gateway, claims: &Claims, how: &Answer) -> Resp {
    let view = match gw.link(&claims.link_id).await {
        Ok(view) => view,
        Err(e) => return control_down(e, how),
    };
    let t = how.text();
    if view.state == LinkState::Active && view.files_received == 0 {
        return match how.form {
            Form::Json => respond::problem(StatusCode::CONFLICT, "nothing_received", t.nothing_yet),
            Form::Page => respond::html(
                StatusCode::CONFLICT,
                page::result_page(how.lang, t.title_nothing_yet, t.nothing_yet, &how.page, true),
            ),
        };
    }
    match gw.control.finish(&claims.link_id).await {
        Ok(LinkState::Used) => match how.form {
            Form::Json => respond::json(StatusCode::OK, &json!({"status": "used", "message": t.thank_you})),
            Form::Page => respond::html(
                StatusCode::OK,
                page::message_page(how.lang, Some(&how.page), t.title_thank_you, t.thank_you),
            ),
        },
        Ok(state) => link_gone(how, state),
        Err(e) => control_down(e, how),
    }
}
