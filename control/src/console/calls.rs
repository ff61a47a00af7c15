//! Calls: the paginated, filtered list; a call's links (with their SMS and a resend
//! button), files, refused uploads and timeline, kept live by our script following the
//! call's event stream; a file's page, and its download for reviewers.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use maud::{html, Markup};
use serde_json::Value;

use super::assistants::enc;
use super::auth::service_error;
use super::http::{
    html, html_error, next_page, page_cursor, problem_page, query_pairs, redirect, signed_form,
};
use super::layout::{bytes, csrf, parse_date, time};
use super::{layout, Visit};
use crate::api::events::{self, Credential};
use crate::api::{views, Api, ApiResponse, Perm};
use crate::model::{CallEvent, Event, EventRecord, FileRecord};
use crate::repo::lists::CallFilter;
use crate::service::{CallDetails, Service, ServiceError};

const PAGE: usize = 25;
/// The most events a call's timeline shows (the first ones; the API's stream has all).
const TIMELINE: usize = 500;

pub async fn list(api: &Api, visit: &Visit, req: &Request<Incoming>) -> ApiResponse {
    if !visit.may(Perm::Read) {
        return html_error(visit, StatusCode::FORBIDDEN, "Your role cannot see calls.");
    }
    let q = query_pairs(req);
    let get = |k: &str| q.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
    let mut filter = CallFilter::default();
    if let Some(a) = get("assistant_id") {
        if !crate::ids::is_external_id(a) {
            return html_error(
                visit,
                StatusCode::BAD_REQUEST,
                "An assistant id is 1-128 of A-Z a-z 0-9 . _ : -",
            );
        }
        filter.assistant_id = Some(a.to_string());
    }
    for (key, slot, shift) in [("from", &mut filter.from, 0), ("to", &mut filter.to, 86_400)] {
        if let Some(day) = get(key) {
            match parse_date(day) {
                Some(t) => *slot = Some(t + shift),
                None => return html_error(visit, StatusCode::BAD_REQUEST, "Dates are written 2026-12-31."),
            }
        }
    }
    let has_files = get("has_files") == Some("on");
    let has_refusals = get("has_refusals") == Some("on");
    filter.has_files = has_files.then_some(true);
    filter.has_refusals = has_refusals.then_some(true);
    filter.sees_quarantine = visit.may(Perm::Quarantine);
    let cursor = match page_cursor(&q, "cursor") {
        Ok(c) => c,
        Err(p) => return html_error(visit, StatusCode::BAD_REQUEST, &p.detail),
    };
    let svc = &api.service;
    let page_ = match svc
        .repos()
        .lists
        .calls_page(&visit.actor.account_id, cursor, PAGE, filter)
        .await
    {
        Ok(p) => p,
        Err(e) => return service_error(e.into()),
    };
    // The page's calls with what they gathered (the filters ran in the store).
    let mut rows = Vec::new();
    for call in &page_.items {
        let mut d = match svc.call_details(call).await {
            Ok(d) => d,
            Err(e) => return service_error(e),
        };
        d.files.retain(|f| Service::may_see(&visit.actor, f));
        let refusals = refusals(&d.events).count();
        rows.push((d, refusals));
    }
    let next_href = page_
        .next
        .as_deref()
        .map(|next| next_page("/console/calls", &q, "cursor", next));
    let body = html! {
        form.filters method="get" action="/console/calls" aria-label="Filter calls" {
            div { label for="f-assistant" { "Assistant" } input id="f-assistant" name="assistant_id" value=[get("assistant_id")]; }
            div { label for="f-from" { "From" } input id="f-from" name="from" type="date" value=[get("from")]; }
            div { label for="f-to" { "To" } input id="f-to" name="to" type="date" value=[get("to")]; }
            div.check { input id="f-files" name="has_files" type="checkbox" checked[has_files]; label for="f-files" { "Has files" } }
            div.check { input id="f-refusals" name="has_refusals" type="checkbox" checked[has_refusals]; label for="f-refusals" { "Has refused uploads" } }
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p { "No calls to show." @if next_href.is_some() { " Older calls may match: one page reads at most 250 calls." } }
        } @else {
            div.scroll tabindex="0" role="region" aria-label="Calls" {
                table id="calls" {
                    thead { tr { th scope="col" { "Call" } th scope="col" { "Assistant" } th scope="col" { "Caller" } th scope="col" { "Started" } th scope="col" { "Files" } th scope="col" { "Refused" } } }
                    tbody {
                        @for (d, refused) in &rows {
                            tr {
                                td { a href=(format!("/console/calls/{}", enc(&d.call.id))) { (d.call.id) } }
                                td { (d.call.assistant_id) }
                                td { a href=(format!("/console/contacts/{}", enc(&d.call.caller_number))) { (d.call.caller_number) } }
                                td { (time(d.call.created_at)) }
                                td { (d.files.len()) }
                                td { (refused) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = &next_href {
            p { a rel="next" href=(next) { "Older calls" } }
        }
    };
    html(StatusCode::OK, layout::page(Some(visit), "Calls", body))
}

fn refusals(events: &[CallEvent]) -> impl Iterator<Item = (&CallEvent, &crate::model::UploadRefused)> {
    events.iter().filter_map(|e| match &e.event {
        Event::UploadRefused(r) => Some((e, r)),
        _ => None,
    })
}

fn verdict(f: &FileRecord) -> Markup {
    let scan = serde_json::to_value(&f.scan).unwrap_or_default();
    let text = |k: &str| scan.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    html! {
        span.verdict data-status=(text("status")) { (text("status").replace('_', " ")) }
        @if !text("engine").is_empty() { " · " span.engine { (text("engine")) } }
        @if !text("detail").is_empty() { " · " (text("detail")) }
    }
}

/// The file's thumbnail (re-encoded, never the upload itself), or an icon for a file
/// without one (a PDF: no renderer we would trust with a caller's PDF runs here).
fn thumb(f: &FileRecord) -> Markup {
    html! {
        @if f.previews {
            img src=(format!("/console/files/{}/thumb", f.id)) alt="" loading="lazy" width="64" height="64";
        } @else {
            img src="/console/assets/file.svg" alt="" width="48" height="48";
        }
    }
}

pub fn files_table(files: &[FileRecord]) -> Markup {
    html! {
        div.scroll tabindex="0" role="region" aria-label="Files" {
            table id="files" {
                thead { tr { th scope="col" { span.sr { "Picture" } } th scope="col" { "File" } th scope="col" { "Type" } th scope="col" { "Size" } th scope="col" { "Received" } th scope="col" { "Scan" } th scope="col" { "SHA-256" } th scope="col" { "Attestation" } } }
                tbody {
                    @for f in files {
                        tr {
                            td.thumb { (thumb(f)) }
                            td { a href=(format!("/console/files/{}", f.id)) { (f.name) } }
                            td { (f.kind.mime()) }
                            td { (bytes(f.size)) }
                            td { (time(f.received_at)) }
                            td { (verdict(f)) }
                            td { code.hash { (f.sha256) } }
                            td { @if f.attestation.is_some() { "signed" } @else { "none" } }
                        }
                    }
                }
            }
        }
    }
}

fn call_body(visit: &Visit, d: &CallDetails, log: &[EventRecord]) -> Markup {
    let now = upgate_gateway::sys::now();
    let may_resend = visit.may(Perm::Calls);
    html! {
        div id="call" data-events=(format!("/console/calls/{}/events", enc(&d.call.id)))
            data-kinds=(crate::model::EVENT_KINDS.join(" ")) aria-live="polite" {
            dl.facts {
                dt { "Assistant" } dd { (d.call.assistant_id) }
                dt { "Caller" } dd { a href=(format!("/console/contacts/{}", enc(&d.call.caller_number))) { (d.call.caller_number) } }
                dt { "Started" } dd { (time(d.call.created_at)) }
            }
            h2 { "Links" }
            @if d.links.is_empty() { p { "No link was sent on this call." } }
            @else {
                div.scroll tabindex="0" role="region" aria-label="Links" { table id="links" {
                    thead { tr { th scope="col" { "Link" } th scope="col" { "Status" } th scope="col" { "Expires" } th scope="col" { "Files" } th scope="col" { "SMS" } th scope="col" { span.sr { "Action" } } } }
                    tbody {
                        @for l in &d.links {
                            @let lj = views::link_json(l, now);
                            @let sms: Vec<Value> = d.sms.iter().filter(|m| m.link_id == l.id).map(views::sms_json).collect();
                            tr {
                                td { code { (l.id) } }
                                td.status { (lj["status"].as_str().unwrap_or("")) }
                                td { (time(l.expires_at)) }
                                td { (l.files_received) " of " (l.max_files) }
                                td {
                                    @for m in &sms {
                                        div.sms {
                                            (m["status"].as_str().unwrap_or(""))
                                            @if let Some(del) = m["delivery"].as_str() { " · " span.delivery { (del) } }
                                            @if let Some(err) = m["carrier_error"].as_str() { " · carrier error " code { (err) } }
                                            @if let Some(err) = m["error"].as_str() { " · " (err) }
                                        }
                                    }
                                }
                                td {
                                    @if may_resend {
                                        form method="post" action=(format!("/console/links/{}/resend", l.id)) {
                                            (csrf(visit))
                                            input type="hidden" name="call_id" value=(d.call.id);
                                            button type="submit" { "Resend link" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
            h2 { "Files" }
            @if d.files.is_empty() { p id="no-files" { "No files yet." } } @else { (files_table(&d.files)) }
            @let refused: Vec<_> = refusals(&d.events).collect();
            @if !refused.is_empty() {
                h2 { "Refused uploads" }
                ul id="refused" {
                    @for (e, r) in refused {
                        li { (time(e.at)) " · " (r.name) " · " (serde_json::to_value(r.code).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()) }
                    }
                }
            }
            h2 { "Timeline" }
            @if log.is_empty() { p { "Nothing has happened on this call yet." } }
            ol id="timeline" {
                @for e in log {
                    li { (time(e.at)) " · " span.kind { (e.event.kind().replace('_', " ")) } }
                }
            }
        }
    }
}

pub async fn page(api: &Api, visit: &Visit, id: &str) -> ApiResponse {
    if !visit.may(Perm::Read) {
        return html_error(visit, StatusCode::FORBIDDEN, "Your role cannot see calls.");
    }
    let svc = &api.service;
    let call = match svc.call(&visit.actor.account_id, id).await {
        Ok(c) => c,
        Err(ServiceError::NotFound(_)) => {
            return html_error(visit, StatusCode::NOT_FOUND, "There is no such call.")
        }
        Err(e) => return service_error(e),
    };
    let mut d = match svc.call_details(&call).await {
        Ok(d) => d,
        Err(e) => return service_error(e),
    };
    d.files.retain(|f| Service::may_see(&visit.actor, f));
    // The call's events from the account's log, the same the API's stream sends.
    let log = match svc
        .events_after(&visit.actor.account_id, Some(&call.id), 0, TIMELINE)
        .await
    {
        Ok(l) => l,
        Err(e) => return service_error(e),
    };
    html(
        StatusCode::OK,
        layout::page(Some(visit), &format!("Call {id}"), call_body(visit, &d, &log)),
    )
}

/// The call's event stream for our script, on the session (checked at each heartbeat).
pub async fn events(api: &Api, visit: &Visit, id: &str, req: &Request<Incoming>) -> ApiResponse {
    if !visit.may(Perm::Read) {
        return html_error(visit, StatusCode::FORBIDDEN, "Your role cannot see calls.");
    }
    let svc = api.service.clone();
    let result = async {
        let after = events::resume_after(req.headers(), None)?;
        let call = svc.call(&visit.actor.account_id, id).await?;
        let cred = Credential::Session(visit.secret.clone());
        events::open(
            svc,
            &api.streams,
            cred,
            visit.actor.account_id.clone(),
            Some(call),
            after,
        )
        .await
    }
    .await;
    result.unwrap_or_else(|p| crate::api::problem_response(&p))
}

pub async fn resend(api: &Api, visit: &Visit, link_id: &str, req: Request<Incoming>) -> ApiResponse {
    let form = match signed_form(visit, req).await {
        Ok(f) => f,
        Err(resp) => return *resp,
    };
    if !visit.may(Perm::Calls) {
        return html_error(visit, StatusCode::FORBIDDEN, "Your role cannot send links.");
    }
    let call_id = form.get("call_id").cloned().unwrap_or_default();
    match api
        .service
        .resend_link(visit.actor.clone(), link_id.to_string(), false, None)
        .await
    {
        Ok(_) => redirect(&format!("/console/calls/{}", enc(&call_id))),
        Err(e) => problem_page(visit, e),
    }
}

pub async fn file_page(api: &Api, visit: &Visit, id: &str) -> ApiResponse {
    if !visit.may(Perm::Read) {
        return html_error(visit, StatusCode::FORBIDDEN, "Your role cannot see files.");
    }
    let f = match api.service.visible_file(&visit.actor, id).await {
        Ok(f) => f,
        Err(ServiceError::NotFound(_)) => {
            return html_error(visit, StatusCode::NOT_FOUND, "There is no such file.")
        }
        Err(e) => return service_error(e),
    };
    let body = html! {
        @if f.previews {
            figure.picture {
                img id="preview" src=(format!("/console/files/{}/preview", f.id)) alt=(format!("Preview of {}", f.name));
                figcaption { "A re-encoded copy for viewing; the original is kept as it came." }
            }
        }
        dl.facts {
            dt { "Name" } dd { (f.name) }
            dt { "Type" } dd { (f.kind.mime()) }
            dt { "Size" } dd { (bytes(f.size)) " (" (f.size) " bytes)" }
            dt { "SHA-256" } dd { code.hash { (f.sha256) } }
            dt { "Scan" } dd { (verdict(&f)) }
            dt { "Received" } dd { (time(f.received_at)) }
            dt { "Call" } dd { a href=(format!("/console/calls/{}", enc(&f.call_id))) { (f.call_id) } }
            dt { "Attestation" } dd { @if let Some(a) = &f.attestation { "Signed (Ed25519, key " (a.key_id) ")" } @else { "None" } }
        }
        @if visit.may(Perm::Download) {
            p { a.button id="download" href=(format!("/console/files/{}/content", f.id)) download { "Download the original" } }
        } @else {
            p id="no-download" { "Downloads are for reviewers." }
        }
    };
    html(
        StatusCode::OK,
        layout::page(Some(visit), &format!("File {}", f.name), body),
    )
}

/// The original bytes, as the API serves them (decrypted here, audited with the user).
pub async fn download(api: &Api, visit: &Visit, id: &str, req: &Request<Incoming>) -> ApiResponse {
    if !visit.may(Perm::Download) {
        let _ = api
            .service
            .audit_denied(
                &visit.actor,
                "/console/files/{file_id}/content",
                "GET",
                Perm::Download.as_str(),
                "forbidden",
            )
            .await;
        return html_error(visit, StatusCode::FORBIDDEN, "Downloads are for reviewers.");
    }
    match crate::api::download_for(api, visit.actor.clone(), id.to_string(), req.headers()).await {
        Ok(resp) => resp,
        Err(p) => html_error(visit, p.status, &p.detail),
    }
}

/// A file's thumbnail or preview, as JPEG, for whoever may see the file.
pub async fn picture(
    api: &Api,
    visit: &Visit,
    id: &str,
    side: upgate_gateway::storage::Sidecar,
) -> ApiResponse {
    if !visit.may(Perm::Read) {
        return html_error(visit, StatusCode::FORBIDDEN, "Your role cannot see files.");
    }
    match api
        .service
        .preview(api.store.as_ref(), &visit.actor, id, side)
        .await
    {
        Ok(jpeg) => super::http::bytes_response(StatusCode::OK, "image/jpeg", jpeg),
        Err(ServiceError::NotFound(_)) => {
            html_error(visit, StatusCode::NOT_FOUND, "There is no such picture.")
        }
        Err(e) => service_error(e),
    }
}
