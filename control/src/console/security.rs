//! The account's people and its record: the audit log (filtered, a page at a time), the
//! users and API tokens (admins invite users, the one-time link shown once, here; admins and
//! reviewers disable users, whose sessions end at once, and revoke tokens), and, for
//! reviewers, quarantine.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use maud::html;

use super::auth::service_error;
use super::http::{html, html_error, next_page, page_cursor, query_pairs, redirect, signed_form};
use super::layout::{self, csrf, time};
use super::Visit;
use crate::api::{Api, ApiResponse, Perm};
use crate::model::Role;
use crate::repo::lists::AuditFilter;
use crate::service::{ServiceError, UserError};

const PAGE: usize = 50;

pub async fn audit(api: &Api, visit: &Visit, req: &Request<Incoming>) -> ApiResponse {
    if !visit.may(Perm::Audit) {
        return html_error(
            visit,
            StatusCode::FORBIDDEN,
            "Your role cannot read the audit log.",
        );
    }
    let q = query_pairs(req);
    let get = |k: &str| q.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
    let (action, actor) = (get("action"), get("actor"));
    let cursor = match page_cursor(&q, "cursor") {
        Ok(c) => c,
        Err(p) => return html_error(visit, StatusCode::BAD_REQUEST, &p.detail),
    };
    let users = api
        .service
        .users(&visit.actor.account_id)
        .await
        .unwrap_or_default();
    let who = |id: &str| {
        users
            .iter()
            .find(|u| u.id == id)
            .map_or_else(|| id.to_string(), |u| format!("{} ({id})", u.email))
    };
    // "By" is an id as it stands, or part of a user's email: the users it names.
    let actors = actor.as_ref().map(|a| {
        let mut ids: Vec<String> = users
            .iter()
            .filter(|u| u.email.contains(&a.to_lowercase()))
            .map(|u| u.id.clone())
            .collect();
        ids.push(a.clone());
        ids
    });
    let filter = AuditFilter {
        action: action.clone(),
        actors,
    };
    let page = match api
        .service
        .repos()
        .lists
        .audit_page(&visit.actor.account_id, cursor, PAGE, filter)
        .await
    {
        Ok(p) => p,
        Err(e) => return service_error(e.into()),
    };
    let entries = &page.items;
    let next = page
        .next
        .as_deref()
        .map(|n| next_page("/console/audit", &q, "cursor", n));
    let body = html! {
        form.filters method="get" action="/console/audit" aria-label="Filter the audit log" {
            div { label for="f-action" { "Action starts with" } input id="f-action" name="action" value=[action.as_deref()] placeholder="file."; }
            div { label for="f-actor" { "By (user, email or token id)" } input id="f-actor" name="actor" value=[actor.as_deref()]; }
            button type="submit" { "Filter" }
        }
        div.scroll tabindex="0" role="region" aria-label="Audit entries" { table id="audit" {
            thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Action" } th scope="col" { "On" } th scope="col" { "Detail" } } }
            tbody {
                @for e in entries {
                    tr {
                        td { (time(e.at)) }
                        td { (who(&e.actor)) }
                        td { code { (e.action) } }
                        td { code { (e.target) } }
                        td { code { (e.detail.to_string()) } }
                    }
                }
            }
        } }
        @if entries.is_empty() { p { "No entries match." @if next.is_some() { " Older entries may: the search stops after reading 500." } } }
        @if let Some(next) = &next { p { a rel="next" href=(next) { "Older entries" } } }
    };
    html(StatusCode::OK, layout::page(Some(visit), "Audit log", body))
}

fn role_options(selected: Option<Role>) -> maud::Markup {
    html! {
        @for role in [Role::Viewer, Role::Integration, Role::Admin] {
            option value=(role.as_str()) selected[selected == Some(role)] { (role.as_str()) }
        }
    }
}

/// The account's users and API tokens, each list paged on its own (`users` and `tokens`
/// carry their cursors).
pub async fn users(
    api: &Api,
    visit: &Visit,
    q: &[(String, String)],
    invited: Option<(&str, &str)>,
    error: Option<&str>,
) -> ApiResponse {
    if !visit.may(Perm::Access) {
        return html_error(
            visit,
            StatusCode::FORBIDDEN,
            "Users and tokens are for admins and reviewers.",
        );
    }
    let may_invite = visit.may(Perm::Tokens);
    let (users_at, tokens_at) = match (page_cursor(q, "users"), page_cursor(q, "tokens")) {
        (Ok(u), Ok(t)) => (u, t),
        (Err(p), _) | (_, Err(p)) => return html_error(visit, StatusCode::BAD_REQUEST, &p.detail),
    };
    let account = &visit.actor.account_id;
    let (users, tokens) = match (
        api.service.users_page(account, users_at, PAGE).await,
        api.service.tokens_page(account, tokens_at, PAGE).await,
    ) {
        (Ok(u), Ok(t)) => (u, t),
        (Err(e), _) | (_, Err(e)) => return service_error(e),
    };
    let more =
        |key: &str, next: &Option<Vec<u8>>| next.as_deref().map(|n| next_page("/console/users", q, key, n));
    let (more_users, more_tokens) = (more("users", &users.next), more("tokens", &tokens.next));
    let now = upgate_gateway::sys::now();
    let body = html! {
        @if let Some((email, url)) = invited {
            div.saved role="status" id="invited" {
                p { "Send this one-time sign-in link to " (email) ". It works once, for 24 hours, and is not shown again." }
                p { code.hash id="invite-link" { (url) } }
            }
        }
        @if let Some(e) = error { p.error role="alert" id="form-error" { (e) } }
        @if may_invite {
            h2 { "Invite someone" }
            form method="post" action="/console/users" {
                (csrf(visit))
                label for="invite-email" { "Email" }
                input id="invite-email" name="email" type="email" required;
                label for="invite-role" { "Role" }
                select id="invite-role" name="role" { (role_options(Some(Role::Viewer))) }
                p.help { "Reviewers, who see downloads, are granted by the operator." }
                button type="submit" { "Create the sign-in link" }
            }
        }
        h2 { "Users" }
        div.scroll tabindex="0" role="region" aria-label="Users" { table id="users" {
            thead { tr { th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Two-step" } th scope="col" { "Since" } th scope="col" { "State" } th scope="col" { span.sr { "Sessions" } } th scope="col" { span.sr { "Action" } } } }
            tbody {
                @for u in &users.items {
                    tr {
                        td { (u.email) }
                        td { (u.role.as_str()) }
                        td { @if u.totp_secret.is_some() { "on" } @else { "off" } }
                        td { (time(u.created_at)) }
                        td { @if u.disabled_at.is_some() { "disabled" } @else if u.password_hash.is_none() { "invited" } @else { "active" } }
                        td { a href=(format!("/console/users/{}/sessions", u.id)) aria-label=(format!("Sessions of {}", u.email)) { "Sessions" } }
                        td {
                            @if u.disabled_at.is_none() && u.id != visit.user.id {
                                form method="post" action=(format!("/console/users/{}/disable", u.id)) {
                                    (csrf(visit))
                                    button type="submit" { "Disable" }
                                }
                            }
                        }
                    }
                }
            }
        } }
        @if let Some(href) = more_users { p { a rel="next" href=(href) { "More users" } } }
        h2 { "API tokens" }
        p.help { "Tokens are created by the API or the operator and shown once then; here they can only be revoked." }
        div.scroll tabindex="0" role="region" aria-label="API tokens" { table id="tokens" {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Id" } th scope="col" { "Role" } th scope="col" { "Last used" } th scope="col" { "State" } th scope="col" { span.sr { "Action" } } } }
            tbody {
                @for t in &tokens.items {
                    @let status = t.status_at(now).as_str();
                    tr {
                        td { (t.name.as_deref().unwrap_or("(no name)")) }
                        td { code { (t.id) } }
                        td { (t.role.as_str()) }
                        td { @if let Some(at) = t.last_used_at { (time(at)) } @else { "never" } }
                        td { (status) }
                        td {
                            @if status == "active" {
                                form method="post" action=(format!("/console/tokens/{}/revoke", t.id)) {
                                    (csrf(visit))
                                    button type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        } }
        @if let Some(href) = more_tokens { p { a rel="next" href=(href) { "More tokens" } } }
    };
    html(StatusCode::OK, layout::page(Some(visit), "Users", body))
}

pub async fn invite(api: &Api, visit: &Visit, req: Request<Incoming>) -> ApiResponse {
    let form = match signed_form(visit, req).await {
        Ok(f) => f,
        Err(resp) => return *resp,
    };
    if !visit.may(Perm::Tokens) {
        return html_error(visit, StatusCode::FORBIDDEN, "Only admins manage users.");
    }
    let email = form.get("email").cloned().unwrap_or_default();
    let Some(role) = form.get("role").and_then(|r| Role::parse(r)) else {
        return users(api, visit, &[], None, Some("Choose a role.")).await;
    };
    match api
        .service
        .create_user(&visit.actor.account_id, &email, role, Some(&visit.actor))
        .await
    {
        Ok(new) => users(api, visit, &[], Some((&new.user.email, &new.signin_url)), None).await,
        Err(ServiceError::User(e)) => {
            let text = match e {
                UserError::InvalidEmail => "That is not an email address we can use.",
                UserError::EmailTaken => "Someone already signs in with that email address.",
                UserError::ReviewerByOperator => "Reviewers are granted by the operator.",
                _ => "The user could not be created.",
            };
            let mut resp = users(api, visit, &[], None, Some(text)).await;
            *resp.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            resp
        }
        Err(e) => service_error(e),
    }
}

/// Files in quarantine, for reviewers: release one to the call, or block it for good.
pub async fn quarantine(api: &Api, visit: &Visit, req: &Request<Incoming>) -> ApiResponse {
    if !visit.may(Perm::Quarantine) {
        return html_error(visit, StatusCode::FORBIDDEN, "Quarantine is for reviewers.");
    }
    let q = query_pairs(req);
    let cursor = match page_cursor(&q, "cursor") {
        Ok(c) => c,
        Err(p) => return html_error(visit, StatusCode::BAD_REQUEST, &p.detail),
    };
    let page = match api
        .service
        .quarantine(&visit.actor.account_id, cursor, PAGE)
        .await
    {
        Ok(f) => f,
        Err(e) => return service_error(e),
    };
    let next = page
        .next
        .as_deref()
        .map(|n| next_page("/console/quarantine", &q, "cursor", n));
    let files = page.items;
    let body = html! {
        p { "Files that came in while no trusted virus scanner could check them, and files a scan kept out. "
            "Releasing puts a file on its call for everyone, with its verdict as it is: release only what you have checked." }
        @if files.is_empty() { p id="empty" { "Nothing is in quarantine." } }
        @else {
            div.scroll tabindex="0" role="region" aria-label="Quarantine" { table id="quarantine" {
                thead { tr { th scope="col" { "File" } th scope="col" { "Call" } th scope="col" { "Since" } th scope="col" { "State" } th scope="col" { "Why" } th scope="col" { span.sr { "Actions" } } } }
                tbody {
                    @for f in &files {
                        @let q = f.quarantine.as_ref();
                        @let state = q.map(|q| q.state.as_str()).unwrap_or("");
                        tr {
                            td { a href=(format!("/console/files/{}", f.id)) { (f.name) } }
                            td { a href=(format!("/console/calls/{}", super::assistants::enc(&f.call_id))) { (f.call_id) } }
                            td { @if let Some(q) = q { (time(q.since)) } }
                            td.state { (state) }
                            td { @if let Some(q) = q { (q.reason) } }
                            td {
                                @if matches!(state, "held" | "unscannable") {
                                    form.inline-actions method="post" action=(format!("/console/quarantine/{}", f.id)) {
                                        (csrf(visit))
                                        button type="submit" name="decision" value="release" { "Release" }
                                        " "
                                        button type="submit" name="decision" value="block" { "Block" }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
        }
        @if let Some(href) = next { p { a rel="next" href=(href) { "Next page" } } }
    };
    html(StatusCode::OK, layout::page(Some(visit), "Quarantine", body))
}

pub async fn decide(api: &Api, visit: &Visit, file_id: &str, req: Request<Incoming>) -> ApiResponse {
    let form = match signed_form(visit, req).await {
        Ok(f) => f,
        Err(resp) => return *resp,
    };
    if !visit.may(Perm::Quarantine) {
        return html_error(visit, StatusCode::FORBIDDEN, "Quarantine is for reviewers.");
    }
    let release = match form.get("decision").map(String::as_str) {
        Some("release") => true,
        Some("block") => false,
        _ => return html_error(visit, StatusCode::BAD_REQUEST, "Choose release or block."),
    };
    match api
        .service
        .review_quarantined(&visit.actor, file_id, release)
        .await
    {
        Ok(_) => redirect("/console/quarantine"),
        Err(ServiceError::NotFound(_)) => html_error(
            visit,
            StatusCode::CONFLICT,
            "That file is not waiting in quarantine any more (a scan or another reviewer decided).",
        ),
        Err(e) => service_error(e),
    }
}

/// What an admin or a reviewer ends from the Users pages.
pub enum Ending<'a> {
    User(&'a str),
    Token(&'a str),
    Session { user: &'a str, session: &'a str },
}

/// Ends access (admins and reviewers: whoever finds a leak must be able to stop it): a
/// user disabled, whose sessions end at once; an API token revoked; one session ended.
pub async fn end_access(api: &Api, visit: &Visit, ending: Ending<'_>, req: Request<Incoming>) -> ApiResponse {
    if let Err(resp) = signed_form(visit, req).await {
        return *resp;
    }
    if !visit.may(Perm::Revoke) {
        return html_error(
            visit,
            StatusCode::FORBIDDEN,
            "Only admins and reviewers end access.",
        );
    }
    let svc = &api.service;
    let (done, back, missing) = match ending {
        Ending::User(id) if id == visit.user.id => {
            return html_error(visit, StatusCode::CONFLICT, "You cannot disable yourself.")
        }
        Ending::User(id) => (
            svc.disable_user(&visit.actor, id).await.map(drop),
            "/console/users".to_string(),
            "There is no such user.",
        ),
        Ending::Token(id) => (
            svc.revoke_token(&visit.actor.token_id, &visit.actor.account_id, id)
                .await
                .map(drop),
            "/console/users".to_string(),
            "There is no such token.",
        ),
        Ending::Session { user, session } => (
            svc.revoke_user_session(&visit.actor, user, session)
                .await
                .map(drop),
            format!("/console/users/{}/sessions", super::assistants::enc(user)),
            "There is no such session.",
        ),
    };
    match done {
        Ok(()) => redirect(&back),
        Err(ServiceError::NotFound(_)) => html_error(visit, StatusCode::NOT_FOUND, missing),
        Err(e) => service_error(e),
    }
}
