//! Signing in and out, the one-time welcome link, the second factor and the user's own
//! sessions.

use std::net::{IpAddr, Ipv4Addr};

use http::{header, Request, StatusCode};
use hyper::body::Incoming;
use maud::html;

use super::http::{
    bare_error, cookie, forged, html, html_error, post_allowed, read_form, redirect, session_cookie,
    signed_form,
};
use super::layout::{csrf, page};
use super::Visit;
use crate::api::{Api, ApiResponse};
use crate::service::users::SESSION_MAX_SECONDS;
use crate::service::{actor_for, ServiceError, SignInAttempt, SignedIn, UserError};
use crate::users::totp;

fn secure(api: &Api) -> bool {
    api.service.console_url().starts_with("https://")
}

fn agent(req: &Request<Incoming>) -> String {
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The address a sign-in is counted against. The control listener is loopback only, so
/// whatever connects is on this machine: the operator's TLS proxy, whose last
/// `X-Forwarded-For` entry is the address it saw. Without one, every try is from loopback.
fn address(req: &Request<Incoming>) -> IpAddr {
    req.headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|a| a.trim().parse().ok())
        .map(upgate_gateway::ratelimit::client_key)
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The signed-in user of this request, if its cookie names an active session.
pub async fn visit(api: &Api, req: &Request<Incoming>) -> Result<Option<Visit>, Box<ApiResponse>> {
    let name = super::http::session_cookie_name(secure(api));
    let Some(secret) = cookie(req, &name) else {
        return Ok(None);
    };
    match api.service.session(secret).await {
        Ok(Some((session, user))) => Ok(Some(Visit {
            actor: actor_for(&user, &session),
            user,
            session,
            secret: secret.to_string(),
        })),
        Ok(None) => Ok(None),
        Err(e) => Err(Box::new(service_error(e))),
    }
}

pub fn service_error(e: ServiceError) -> ApiResponse {
    let p = crate::problem::Problem::from(e);
    bare_error(p.status, &p.detail)
}

fn signed_in(api: &Api, s: SignedIn) -> ApiResponse {
    let mut resp = redirect(if s.user.must_enrol_totp() {
        "/console/account?enrol=1"
    } else {
        "/console"
    });
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(secure(api), &s.secret, SESSION_MAX_SECONDS),
    );
    resp
}

fn sign_in_form(error: Option<&str>, email: &str, ask_code: bool) -> maud::Markup {
    page(
        None,
        "Sign in",
        html! {
            @if let Some(e) = error { p.error role="alert" id="form-error" { (e) } }
            form method="post" action="/console/sign-in" {
                label for="email" { "Email" }
                input id="email" name="email" type="email" autocomplete="username" required value=(email);
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                label for="code" { "Code from your authenticator app" @if !ask_code { " (if you set one up)" } }
                input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}";
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub async fn sign_in_page(api: &Api, req: &Request<Incoming>) -> ApiResponse {
    if let Ok(Some(_)) = visit(api, req).await {
        return redirect("/console");
    }
    html(StatusCode::OK, sign_in_form(None, "", false))
}

pub async fn sign_in(api: &Api, req: Request<Incoming>) -> ApiResponse {
    if !post_allowed(&req, None) {
        return forged();
    }
    let (address, agent) = (address(&req), agent(&req));
    let Some(form) = read_form(req.into_body()).await else {
        return bare_error(StatusCode::BAD_REQUEST, "The form could not be read.");
    };
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let attempt = SignInAttempt {
        email: field("email"),
        password: field("password"),
        code: field("code"),
        address,
        agent: &agent,
    };
    match api.service.sign_in(attempt).await {
        Ok(s) => signed_in(api, s),
        Err(ServiceError::User(e)) => {
            let (status, text, ask_code) = match e {
                UserError::CodeNeeded => (
                    StatusCode::UNAUTHORIZED,
                    "Enter the 6-digit code from your authenticator app.",
                    true,
                ),
                UserError::CodeWrong => (
                    StatusCode::UNAUTHORIZED,
                    "That code is wrong or was already used. Wait for the next one.",
                    true,
                ),
                UserError::RateLimited { .. } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed sign-ins. Wait 15 minutes and try again.",
                    false,
                ),
                _ => (StatusCode::UNAUTHORIZED, "The email or password is wrong.", false),
            };
            html(status, sign_in_form(Some(text), field("email"), ask_code))
        }
        Err(e) => service_error(e),
    }
}

fn welcome_form(token: &str, error: Option<&str>) -> maud::Markup {
    page(
        None,
        "Choose your password",
        html! {
            p { "Welcome to upgate. Choose a password of at least 12 characters; you sign in with your email and this password." }
            @if let Some(e) = error { p.error role="alert" id="form-error" { (e) } }
            form method="post" action="/console/welcome" {
                input type="hidden" name="token" value=(token);
                label for="password" { "New password" }
                input id="password" name="password" type="password" autocomplete="new-password" minlength="12" required;
                button type="submit" { "Save and sign in" }
            }
        },
    )
}

pub fn welcome_page(req: &Request<Incoming>) -> ApiResponse {
    let token = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    html(StatusCode::OK, welcome_form(&token, None))
}

pub async fn welcome(api: &Api, req: Request<Incoming>) -> ApiResponse {
    if !post_allowed(&req, None) {
        return forged();
    }
    let agent = agent(&req);
    let Some(form) = read_form(req.into_body()).await else {
        return bare_error(StatusCode::BAD_REQUEST, "The form could not be read.");
    };
    let token = form.get("token").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    match api.service.redeem_signin_link(&token, &password, &agent).await {
        Ok(s) => signed_in(api, s),
        Err(ServiceError::User(UserError::WeakPassword(why))) => {
            html(StatusCode::UNPROCESSABLE_ENTITY, welcome_form(&token, Some(why)))
        }
        Err(ServiceError::User(UserError::SigninLinkInvalid)) => bare_error(
            StatusCode::BAD_REQUEST,
            "This sign-in link was used already or has expired. Ask your admin (or the operator) for a new one.",
        ),
        Err(e) => service_error(e),
    }
}

pub async fn sign_out(api: &Api, visit: &Visit, req: Request<Incoming>) -> ApiResponse {
    if let Err(resp) = signed_form(visit, req).await {
        return *resp;
    }
    if let Err(e) = api
        .service
        .end_session(&visit.user, &visit.session.id, true)
        .await
    {
        return service_error(e);
    }
    let mut resp = redirect("/console/sign-in");
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(secure(api), "", 0));
    resp
}

pub async fn account_page(api: &Api, visit: &Visit, req: &Request<Incoming>) -> ApiResponse {
    let user = &visit.user;
    let (sessions, next) = match super::sessions::page(api, visit, &user.id, "/console/account", req).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    let enrol = req.uri().query().is_some_and(|q| q.contains("enrol=1"));
    let body = html! {
        dl.facts {
            dt { "Email" } dd { (user.email) }
            dt { "Role" } dd { (user.role.as_str()) }
        }
        section aria-labelledby="totp-h" {
            h2 id="totp-h" { "Two-step sign-in" }
            @if enrol && user.must_enrol_totp() {
                p.notice role="alert" { "Reviewers must set up two-step sign-in before they can see files." }
            }
            @if user.totp_secret.is_some() {
                p id="totp-status" { "On: signing in asks for a code from your authenticator app." }
            } @else if let Some(secret) = &user.totp_pending {
                p { "Add this key to your authenticator app (type it in, or open the address on the phone), then enter the code it shows." }
                p { "Key: " code id="totp-secret" { (secret) } }
                p.uri { code { (totp::provisioning_uri(secret, "upgate", &user.email)) } }
                form method="post" action="/console/account/totp/confirm" {
                    (csrf(visit))
                    label for="totp-code" { "Code" }
                    input id="totp-code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" required;
                    button type="submit" { "Turn on" }
                }
            } @else {
                p id="totp-status" { "Off." }
                form method="post" action="/console/account/totp" {
                    (csrf(visit))
                    button type="submit" { "Set up two-step sign-in" }
                }
            }
        }
        section aria-labelledby="sessions-h" {
            h2 id="sessions-h" { "Where you are signed in" }
            (super::sessions::table(visit, &sessions, next.as_deref(), |s| format!("/console/sessions/{}/revoke", s.id)))
        }
    };
    html(StatusCode::OK, page(Some(visit), "Your account", body))
}

pub async fn totp_begin(api: &Api, visit: &Visit, req: Request<Incoming>) -> ApiResponse {
    if let Err(resp) = signed_form(visit, req).await {
        return *resp;
    }
    match api.service.totp_begin(&visit.user).await {
        Ok(_) => redirect("/console/account"),
        Err(e) => service_error(e),
    }
}

pub async fn totp_confirm(api: &Api, visit: &Visit, req: Request<Incoming>) -> ApiResponse {
    let form = match signed_form(visit, req).await {
        Ok(f) => f,
        Err(resp) => return *resp,
    };
    let code = form.get("code").map(String::as_str).unwrap_or("");
    match api.service.totp_confirm(&visit.user, code).await {
        Ok(()) => redirect("/console/account"),
        Err(ServiceError::User(_)) => html_error(
            visit,
            StatusCode::UNPROCESSABLE_ENTITY,
            "That code is not right for the key. Check the phone's clock and try the next code.",
        ),
        Err(e) => service_error(e),
    }
}

pub async fn revoke(api: &Api, visit: &Visit, id: &str, req: Request<Incoming>) -> ApiResponse {
    if let Err(resp) = signed_form(visit, req).await {
        return *resp;
    }
    match api.service.end_session(&visit.user, id, false).await {
        Ok(_) => redirect("/console/account"),
        Err(ServiceError::NotFound(_)) => {
            html_error(visit, StatusCode::NOT_FOUND, "There is no such session.")
        }
        Err(e) => service_error(e),
    }
}
