//! Assistants: the list, and the file-upload settings form as the product page walks
//! through it (toggle, trigger, message with counter and SMS preview, limits, retention),
//! with the server's own rules shown next to each field.

use std::collections::HashMap;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use maud::{html, Markup};
use serde_json::json;
use upgate_gateway::upload::sniff::Kind;

use super::auth::service_error;
use super::http::{html, html_error, json as json_response, redirect};
use super::layout::{csrf, time};
use super::{layout, Visit};
use crate::api::{lists, Api, ApiResponse, Perm};
use crate::service::{AssistantError, ServiceError};
use crate::settings::{self, FileUploadSettings, RuleError, MESSAGE_MAX_CHARS};

const PAGE: usize = 50;

pub async fn list(api: &Api, visit: &Visit, req: &Request<Incoming>) -> ApiResponse {
    if !visit.may(Perm::SettingsRead) {
        return html_error(visit, StatusCode::FORBIDDEN, "Your role cannot see assistants.");
    }
    let q = match lists::parse(req.uri().query(), lists::Takes::Paging) {
        Ok(q) => q,
        Err(p) => return html_error(visit, StatusCode::BAD_REQUEST, &p.detail),
    };
    let page_ = match api
        .service
        .repos()
        .lists
        .assistants_page(&visit.actor.account_id, q.cursor, q.limit.unwrap_or(PAGE))
        .await
    {
        Ok(p) => p,
        Err(e) => return service_error(e.into()),
    };
    let body = html! {
        form.inline method="get" action="/console/assistants/open" {
            label for="open-id" { "Open an assistant by its id" }
            input id="open-id" name="id" required pattern="[A-Za-z0-9._:\\-]{1,128}";
            button type="submit" { "Open" }
        }
        @if page_.items.is_empty() {
            p { "No assistant has file-upload settings yet. Open one by its id (the voice platform's assistant id) to set them." }
        } @else {
            div.scroll tabindex="0" role="region" aria-label="Assistants" {
                table {
                    thead { tr { th scope="col" { "Assistant" } th scope="col" { "File upload" } th scope="col" { "Changed" } } }
                    tbody {
                        @for a in &page_.items {
                            tr {
                                td { a href=(format!("/console/assistants/{}", enc(&a.id))) { (a.id) } }
                                td { @if a.file_upload.enabled { "On" } @else { "Off" } }
                                td { (time(a.updated_at)) }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = &page_.next {
            p { a rel="next" href=(super::http::next_page("/console/assistants", &[], "cursor", next)) { "Next page" } }
        }
    };
    html(StatusCode::OK, layout::page(Some(visit), "Assistants", body))
}

/// A path segment: ids keep the characters they are made of; anything else is escaped.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b':');

pub fn enc(id: &str) -> String {
    percent_encoding::utf8_percent_encode(id, SEGMENT).to_string()
}

pub async fn page(api: &Api, visit: &Visit, id: &str, req: &Request<Incoming>) -> ApiResponse {
    if id == "open" {
        let id = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == "id")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        return redirect(&format!("/console/assistants/{}", enc(&id)));
    }
    if !visit.may(Perm::SettingsRead) {
        return html_error(visit, StatusCode::FORBIDDEN, "Your role cannot see assistants.");
    }
    if !crate::ids::is_external_id(id) {
        return html_error(
            visit,
            StatusCode::NOT_FOUND,
            "An assistant id is 1-128 of A-Z a-z 0-9 . _ : -",
        );
    }
    let settings = match api.service.assistant(&visit.actor.account_id, id).await {
        Ok(a) => a.file_upload,
        Err(ServiceError::NotFound(_)) => FileUploadSettings::default(),
        Err(e) => return service_error(e),
    };
    let saved = req.uri().query().is_some_and(|q| q.contains("saved=1"));
    form_page(api, visit, id, &settings, &[], saved, StatusCode::OK).await
}

fn field_errors<'a>(errors: &'a [RuleError], field: &str) -> Vec<&'a RuleError> {
    errors.iter().filter(|e| e.field == field).collect()
}

/// The error paragraphs for a field, and the id inputs point `aria-describedby` at.
fn errors_for(errors: &[RuleError], field: &str) -> Markup {
    let list = field_errors(errors, field);
    html! {
        @if !list.is_empty() {
            p.error id=(format!("{field}-error")) { @for e in list { (e.detail) " " } }
        }
    }
}

fn described(errors: &[RuleError], field: &str, help: &str) -> String {
    if field_errors(errors, field).is_empty() {
        help.to_string()
    } else {
        format!("{help} {field}-error").trim().to_string()
    }
}

async fn form_page(
    api: &Api,
    visit: &Visit,
    id: &str,
    s: &FileUploadSettings,
    errors: &[RuleError],
    saved: bool,
    status: StatusCode,
) -> ApiResponse {
    let svc = &api.service;
    let available = match svc.plan_sms(&visit.actor.account_id).await {
        Ok(a) => a,
        Err(e) => return service_error(e),
    };
    let can_write = visit.may(Perm::SettingsWrite);
    let preview = settings::preview(&s.message, &svc.public_url);
    let tool = settings::tool_definition(s).map(|t| serde_json::to_string_pretty(&t).unwrap_or_default());
    let action = format!("/console/assistants/{}", enc(id));
    let has_link = settings::validate(s, true, u64::MAX)
        .iter()
        .any(|e| e.code == "message_contains_link");
    let body = html! {
        @if saved { p.saved role="status" { "Saved." } }
        @if !errors.is_empty() {
            div.error role="alert" id="form-errors" {
                p { "The settings were not saved:" }
                ul { @for e in errors { li { (e.detail) } } }
            }
        }
        @if !can_write { p.notice { "Your role can read these settings; an admin changes them." } }
        form method="post" action=(action) id="settings" data-preview=(format!("{action}/preview")) data-csrf=(visit.session.csrf) {
            (csrf(visit))
            fieldset disabled[!can_write] {
                legend { "Upload files" }
                div.toggle {
                    input type="checkbox" role="switch" id="enabled" name="enabled" value="on"
                        checked[s.enabled] disabled[!available]
                        aria-describedby=(described(errors, "enabled", if available { "" } else { "upgrade-notice" }));
                    label for="enabled" { "Allow uploading files" }
                }
                @if let Some(reason) = settings::unavailable_reason(available) {
                    p.notice id="upgrade-notice" { (reason) }
                }
                (errors_for(errors, "enabled"))

                label for="trigger" { "When to trigger file upload" }
                p.help id="trigger-help" {
                    "Describe, in the caller's terms, when the assistant should offer the link. Be specific about the situation. "
                    "Examples: \"When the caller wants to send photos of a damaged product\"; \"When the caller mentions a sick-leave certificate\"."
                }
                textarea id="trigger" name="trigger" rows="3" aria-describedby=(described(errors, "trigger", "trigger-help")) {
                    (s.trigger.as_deref().unwrap_or(""))
                }
                (errors_for(errors, "trigger"))

                label for="message" { "Message to user" }
                p.help id="message-help" { "Sent by SMS before the link, which is added for you. Under 100 characters, and no link of your own." }
                input id="message" name="message" value=(s.message) aria-describedby=(described(errors, "message", "message-help message-counter"));
                p.counter id="message-counter" aria-live="polite" data-max=(MESSAGE_MAX_CHARS) {
                    (s.message.chars().count()) " / " (MESSAGE_MAX_CHARS) " characters"
                }
                p.error id="link-warning" role="alert" hidden[!has_link] { "The message holds a link. upgate adds the upload link itself; remove yours." }
                (errors_for(errors, "message"))
                figure.preview {
                    figcaption { "The SMS the caller gets (with a sample link)" }
                    p id="preview-text" { (preview.text) }
                    p id="preview-meta" { (preview.characters) " characters · " (preview.encoding) " · " (preview.segments) " segment" @if preview.segments != 1 { "s" } }
                }

                fieldset {
                    legend { "Allowed file types" }
                    @for k in Kind::ALL {
                        div.check {
                            input type="checkbox" id=(format!("type-{}", k.extension())) name="allowed_types" value=(k.mime())
                                checked[s.allowed_types.iter().any(|t| t.eq_ignore_ascii_case(k.mime()))];
                            label for=(format!("type-{}", k.extension())) { (upgate_gateway::upload::label(k)) }
                        }
                    }
                }
                (errors_for(errors, "allowed_types"))
                label for="max_file_bytes" { "Largest file, in bytes" }
                input id="max_file_bytes" name="max_file_bytes" type="number" min="1" value=(s.max_file_bytes) aria-describedby=(described(errors, "max_file_bytes", ""));
                (errors_for(errors, "max_file_bytes"))
                label for="max_files" { "Files per link" }
                input id="max_files" name="max_files" type="number" min="1" max=(settings::MAX_FILES_LIMIT) value=(s.max_files) aria-describedby=(described(errors, "max_files", ""));
                (errors_for(errors, "max_files"))
                label for="link_ttl_seconds" { "Link lifetime, in seconds" }
                input id="link_ttl_seconds" name="link_ttl_seconds" type="number" min=(settings::TTL_MIN_SECONDS) max=(settings::TTL_MAX_SECONDS) value=(s.link_ttl_seconds) aria-describedby=(described(errors, "link_ttl_seconds", ""));
                (errors_for(errors, "link_ttl_seconds"))
                label for="retention_days" { "Delete files after this many days (empty: keep them)" }
                input id="retention_days" name="retention_days" type="number" min="1" max=(settings::RETENTION_MAX_DAYS) value=[s.retention_days] aria-describedby=(described(errors, "retention_days", ""));
                (errors_for(errors, "retention_days"))
                button type="submit" { "Save" }
            }
        }
        section aria-labelledby="tool-h" {
            h2 id="tool-h" { "Tool for the voice platform's LLM" }
            @if let Some(tool) = tool {
                pre id="tool" tabindex="0" { (tool) }
                button type="button" id="copy-tool" data-copy="tool" { "Copy" }
            } @else {
                p { "Turn file upload on and describe when to trigger it to get the tool definition." }
            }
        }
    };
    html(
        status,
        layout::page(Some(visit), &format!("Assistant {id}"), body),
    )
}

/// The settings a form describes; unknown or malformed numbers become values the rules
/// refuse, so the person sees why next to the field.
fn from_form(form: &[(String, String)], enabled_available: bool) -> FileUploadSettings {
    let get = |k: &str| {
        form.iter()
            .find(|(f, _)| f == k)
            .map(|(_, v)| v.trim().to_string())
    };
    let number = |k: &str| get(k).and_then(|v| v.parse::<u64>().ok());
    let trigger = get("trigger").filter(|t| !t.is_empty());
    FileUploadSettings {
        enabled: enabled_available && get("enabled").is_some_and(|v| v == "on"),
        trigger,
        message: get("message").unwrap_or_default(),
        allowed_types: form
            .iter()
            .filter(|(k, _)| k == "allowed_types")
            .map(|(_, v)| v.clone())
            .collect(),
        max_file_bytes: number("max_file_bytes").unwrap_or(0),
        max_files: number("max_files")
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        link_ttl_seconds: number("link_ttl_seconds").unwrap_or(0),
        retention_days: get("retention_days")
            .filter(|v| !v.is_empty())
            .map(|v| v.parse::<u32>().unwrap_or(0)),
    }
}

pub async fn save(api: &Api, visit: &Visit, id: &str, req: Request<Incoming>) -> ApiResponse {
    let raw = super::http::read_pairs(req.into_body()).await;
    let Some(pairs) = raw else {
        return html_error(visit, StatusCode::BAD_REQUEST, "The form could not be read.");
    };
    let map: HashMap<String, String> = pairs.iter().cloned().collect();
    if !super::http::form_token_ok(&map, visit) {
        return super::http::bare_error(
            StatusCode::FORBIDDEN,
            "This form did not come from the console's own page. Reload the page and try again.",
        );
    }
    if !visit.may(Perm::SettingsWrite) {
        return html_error(visit, StatusCode::FORBIDDEN, "Your role cannot change settings.");
    }
    if !crate::ids::is_external_id(id) {
        return html_error(
            visit,
            StatusCode::NOT_FOUND,
            "An assistant id is 1-128 of A-Z a-z 0-9 . _ : -",
        );
    }
    // A disabled toggle sends nothing: "off" is what it shows, and what is saved.
    let settings = from_form(&pairs, true);
    match api
        .service
        .put_assistant(&visit.actor, id, settings.clone())
        .await
    {
        Ok(_) => redirect(&format!("/console/assistants/{}?saved=1", enc(id))),
        Err(ServiceError::Assistant(AssistantError::Settings(errors))) => {
            form_page(
                api,
                visit,
                id,
                &settings,
                &errors,
                false,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => service_error(e),
    }
}

/// The live preview: what the SMS would be for a message being typed (our script asks as
/// the person types; the form token comes in a header).
pub async fn preview(api: &Api, visit: &Visit, _id: &str, req: Request<Incoming>) -> ApiResponse {
    // Only our script asks, with the form token in its header (checked with the origin by
    // `post_allowed`); a plain form post is not taken here.
    if !visit.may(Perm::SettingsRead) || !req.headers().contains_key("x-csrf-token") {
        return json_response(StatusCode::FORBIDDEN, &json!({"error": "forbidden"}));
    }
    let Some(form) = super::http::read_form(req.into_body()).await else {
        return json_response(StatusCode::BAD_REQUEST, &json!({"error": "unreadable"}));
    };
    let message = form.get("message").cloned().unwrap_or_default();
    let p = settings::preview(&message, &api.service.public_url);
    let probe = FileUploadSettings {
        message: message.clone(),
        ..FileUploadSettings::default()
    };
    let rules: Vec<&str> = settings::validate(&probe, true, u64::MAX)
        .into_iter()
        .filter(|e| e.field == "message")
        .map(|e| e.code)
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "text": p.text,
            "characters": p.characters,
            "message_characters": message.chars().count(),
            "encoding": p.encoding,
            "segments": p.segments,
            "has_link": rules.contains(&"message_contains_link"),
            "too_long": rules.contains(&"message_too_long"),
        }),
    )
}
