//! Following up: the calls whose links brought no file (with a one-click resend), and a
//! caller's files across every call they made.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use maud::html;

use super::assistants::enc;
use super::auth::service_error;
use super::http::{html, html_error, next_page, page_cursor, query_pairs, redirect, signed_form};
use super::layout::{self, csrf, parse_date, time};
use super::{calls, Visit};
use crate::api::{Api, ApiResponse, Perm};
use crate::service::ServiceError;

const DAY: u64 = 86_400;
/// Files on a caller's page.
const PAGE: usize = 50;

pub async fn follow_up(api: &Api, visit: &Visit, req: &Request<Incoming>) -> ApiResponse {
    if !visit.may(Perm::Read) {
        return html_error(visit, StatusCode::FORBIDDEN, "Your role cannot see calls.");
    }
    let now = upgate_gateway::sys::now();
    let day = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "from")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty());
    // A week ending now, or the week from the day asked for.
    let (from, to) = match day.as_deref().map(parse_date) {
        None => (now.saturating_sub(7 * DAY), now + 1),
        Some(Some(t)) => (t, t + 7 * DAY),
        Some(None) => return html_error(visit, StatusCode::BAD_REQUEST, "Dates are written 2026-12-31."),
    };
    let report = match api.service.follow_up(&visit.actor.account_id, from, to).await {
        Ok(r) => r,
        Err(e) => return service_error(e),
    };
    let may_resend = visit.may(Perm::Calls);
    let body = html! {
        p { "Callers who were texted a link and sent nothing back, in the week from " (time(from)) "." }
        form.filters method="get" action="/console/follow-up" aria-label="Choose the week" {
            div { label for="f-week" { "Week from" } input id="f-week" name="from" type="date" value=[day.as_deref()]; }
            button type="submit" { "Show" }
        }
        @if report.groups.is_empty() {
            p id="nothing" { "Nobody to follow up." }
        }
        @for g in &report.groups {
            h2 { (g.assistant_id) ", " (g.day) }
            div.scroll tabindex="0" role="region" aria-label=(format!("Calls to follow up: {}, {}", g.assistant_id, g.day)) { table.followup {
                thead { tr { th scope="col" { "Call" } th scope="col" { "Caller" } th scope="col" { "Texts" } th scope="col" { "Link" } th scope="col" { "Opened" } th scope="col" { "Delivery" } th scope="col" { span.sr { "Action" } } } }
                tbody {
                    @for c in &g.calls {
                        tr {
                            td { a href=(format!("/console/calls/{}", enc(&c.call_id))) { (c.call_id) } }
                            td { a href=(format!("/console/contacts/{}", enc(&c.caller_number))) { (c.caller_number) } }
                            td { (c.links_sent) ", last " (time(c.last_sent_at)) }
                            td { (c.last_link_status) }
                            td { @if c.opened { "yes" } @else { "no" } }
                            td { (c.last_delivery.and_then(|d| serde_json::to_value(d).ok()).and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| "not reported".into())) }
                            td {
                                @if may_resend {
                                    form method="post" action=(format!("/console/calls/{}/resend", enc(&c.call_id))) {
                                        (csrf(visit))
                                        input type="hidden" name="back" value="follow-up";
                                        button type="submit" { "Resend link" }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
        }
    };
    html(StatusCode::OK, layout::page(Some(visit), "Follow up", body))
}

/// Texts the call's newest link again (a new link if it ended): the follow-up's one click.
pub async fn resend_call(api: &Api, visit: &Visit, call_id: &str, req: Request<Incoming>) -> ApiResponse {
    let form = match signed_form(visit, req).await {
        Ok(f) => f,
        Err(resp) => return *resp,
    };
    if !visit.may(Perm::Calls) {
        return html_error(visit, StatusCode::FORBIDDEN, "Your role cannot send links.");
    }
    let svc = &api.service;
    let newest = match svc.call(&visit.actor.account_id, call_id).await {
        Ok(call) => match svc.call_details(&call).await {
            Ok(d) => d.links.last().map(|l| l.id.clone()),
            Err(e) => return service_error(e),
        },
        Err(ServiceError::NotFound(_)) => {
            return html_error(visit, StatusCode::NOT_FOUND, "There is no such call.")
        }
        Err(e) => return service_error(e),
    };
    let Some(link_id) = newest else {
        return html_error(
            visit,
            StatusCode::CONFLICT,
            "No link was sent on this call; the voice platform issues the first.",
        );
    };
    match svc.resend_link(visit.actor.clone(), link_id, false, None).await {
        Ok(_) if form.get("back").map(String::as_str) == Some("follow-up") => {
            redirect("/console/follow-up?resent=1")
        }
        Ok(_) => redirect(&format!("/console/calls/{}", enc(call_id))),
        Err(e) => super::http::problem_page(visit, e),
    }
}

pub async fn contact(api: &Api, visit: &Visit, number: &str, req: &Request<Incoming>) -> ApiResponse {
    if !visit.may(Perm::Read) {
        return html_error(visit, StatusCode::FORBIDDEN, "Your role cannot see files.");
    }
    let q = query_pairs(req);
    let cursor = match page_cursor(&q, "cursor") {
        Ok(c) => c,
        Err(p) => return html_error(visit, StatusCode::BAD_REQUEST, &p.detail),
    };
    let page = match api
        .service
        .contact_files(&visit.actor, number, cursor, PAGE)
        .await
    {
        Ok(f) => f,
        Err(ServiceError::NotFound(_)) => {
            return html_error(visit, StatusCode::NOT_FOUND, "There is no such caller.")
        }
        Err(e) => return service_error(e),
    };
    let path = format!("/console/contacts/{}", enc(number));
    let body = html! {
        p { "Every file this caller sent, newest first, across all their calls." }
        @if page.items.is_empty() { p { "No files from this caller." } } @else { (calls::files_table(&page.items)) }
        @if let Some(next) = &page.next {
            p { a rel="next" href=(next_page(&path, &q, "cursor", next)) { "Next page" } }
        }
    };
    html(
        StatusCode::OK,
        layout::page(Some(visit), &format!("Caller {number}"), body),
    )
}
