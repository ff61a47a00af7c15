//! The staff console: server-rendered pages under `/console` on the control API's listener,
//! for the account's users (signed in with a session cookie, not a bearer token). Each page
//! asks the same service the API does, with the same role table (`api::allows`), so the
//! console can show nothing the API would not. Pages are HTML from `maud` (escaped by
//! construction); a little of our own JavaScript (`assets/console.js`) adds the live
//! counter, the SMS preview and the live call timeline. No asset leaves our origin, and
//! the CSP allows no inline script.

mod assistants;
mod auth;
mod calls;
mod followup;
mod http;
mod layout;
mod security;
mod sessions;

use ::http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use upgate_gateway::storage::Sidecar;

use crate::api::{allows, Api, ApiResponse, Perm};
use crate::model::{Session, User};
use crate::service::Actor;
pub use http::SESSION_COOKIE;
use http::{asset, html_error, redirect};

/// A signed-in request: who, through which session, and whether the form token it carried
/// (for a POST) was right.
pub struct Visit {
    pub user: User,
    pub session: Session,
    pub secret: String,
    pub actor: Actor,
}

impl Visit {
    pub fn may(&self, perm: Perm) -> bool {
        allows(self.user.role, perm)
    }
}

pub async fn serve(api: &Api, req: Request<Incoming>) -> ApiResponse {
    let path = req.uri().path().to_string();
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .skip(1)
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = segs
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    let method = req.method().clone();
    // Pages that need no session.
    match (&method, segs.as_slice()) {
        (&Method::GET, ["assets", name]) => return asset(name),
        (&Method::GET, ["sign-in"]) => return auth::sign_in_page(api, &req).await,
        (&Method::POST, ["sign-in"]) => return auth::sign_in(api, req).await,
        (&Method::GET, ["welcome"]) => return auth::welcome_page(&req),
        (&Method::POST, ["welcome"]) => return auth::welcome(api, req).await,
        _ => {}
    }
    let visit = match auth::visit(api, &req).await {
        Ok(Some(v)) => v,
        Ok(None) => return redirect("/console/sign-in"),
        Err(resp) => return *resp,
    };
    if method == Method::POST && !http::post_allowed(&req, Some(&visit.session.csrf)) {
        return http::forged();
    }
    // A reviewer without a second factor may only set one up (or leave).
    let enrolling = matches!(segs.as_slice(), ["account", ..] | ["sign-out"]);
    if visit.user.must_enrol_totp() && !enrolling {
        return redirect("/console/account?enrol=1");
    }
    match (&method, segs.as_slice()) {
        (&Method::GET, []) => redirect("/console/calls"),
        (&Method::POST, ["sign-out"]) => auth::sign_out(api, &visit, req).await,
        (&Method::GET, ["account"]) => auth::account_page(api, &visit, &req).await,
        (&Method::POST, ["account", "totp"]) => auth::totp_begin(api, &visit, req).await,
        (&Method::POST, ["account", "totp", "confirm"]) => auth::totp_confirm(api, &visit, req).await,
        (&Method::POST, ["sessions", id, "revoke"]) => auth::revoke(api, &visit, id, req).await,
        (&Method::GET, ["assistants"]) => assistants::list(api, &visit, &req).await,
        (&Method::GET, ["assistants", id]) => assistants::page(api, &visit, id, &req).await,
        (&Method::POST, ["assistants", id]) => assistants::save(api, &visit, id, req).await,
        (&Method::POST, ["assistants", id, "preview"]) => assistants::preview(api, &visit, id, req).await,
        (&Method::GET, ["calls"]) => calls::list(api, &visit, &req).await,
        (&Method::GET, ["calls", id]) => calls::page(api, &visit, id).await,
        (&Method::GET, ["calls", id, "events"]) => calls::events(api, &visit, id, &req).await,
        (&Method::POST, ["links", id, "resend"]) => calls::resend(api, &visit, id, req).await,
        (&Method::POST, ["calls", id, "resend"]) => followup::resend_call(api, &visit, id, req).await,
        (&Method::GET, ["audit"]) => security::audit(api, &visit, &req).await,
        (&Method::GET, ["users"]) => security::users(api, &visit, &http::query_pairs(&req), None, None).await,
        (&Method::POST, ["users"]) => security::invite(api, &visit, req).await,
        (&Method::POST, ["users", id, "disable"]) => {
            security::end_access(api, &visit, security::Ending::User(id), req).await
        }
        (&Method::GET, ["users", id, "sessions"]) => sessions::user_page(api, &visit, id, &req).await,
        (&Method::POST, ["users", user, "sessions", session, "revoke"]) => {
            let ending = security::Ending::Session { user, session };
            security::end_access(api, &visit, ending, req).await
        }
        (&Method::GET, ["quarantine"]) => security::quarantine(api, &visit, &req).await,
        (&Method::POST, ["quarantine", id]) => security::decide(api, &visit, id, req).await,
        (&Method::POST, ["tokens", id, "revoke"]) => {
            security::end_access(api, &visit, security::Ending::Token(id), req).await
        }
        (&Method::GET, ["follow-up"]) => followup::follow_up(api, &visit, &req).await,
        (&Method::GET, ["contacts", number]) => followup::contact(api, &visit, number, &req).await,
        (&Method::GET, ["files", id]) => calls::file_page(api, &visit, id).await,
        (&Method::GET, ["files", id, "content"]) => calls::download(api, &visit, id, &req).await,
        (&Method::GET, ["files", id, "thumb"]) => calls::picture(api, &visit, id, Sidecar::Thumb).await,
        (&Method::GET, ["files", id, "preview"]) => calls::picture(api, &visit, id, Sidecar::Preview).await,
        _ => html_error(&visit, StatusCode::NOT_FOUND, "There is no such page."),
    }
}
