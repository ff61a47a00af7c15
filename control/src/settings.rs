//! An assistant's file-upload settings and the product page's rules for them: file upload
//! needs a plan with SMS, a trigger when enabled, and a short message with no link in it
//! (the link is appended). Pure functions, so the rules are tested without a server.

use serde::{Deserialize, Serialize};
use upgate_gateway::token::TOKEN_LEN;
use upgate_gateway::upload::sniff::Kind;

use crate::hidden_chars::{code_point, first_hidden, is_hidden};
use crate::sms::text::analyze;

/// The product page's limit on the message, in characters.
pub const MESSAGE_MAX_CHARS: usize = 100;
pub const TRIGGER_MAX_CHARS: usize = 500;
pub const MAX_FILES_LIMIT: u32 = 20;
pub const TTL_MIN_SECONDS: u64 = 60;
pub const TTL_MAX_SECONDS: u64 = 7 * 24 * 3600;
/// The longest retention an assistant may set: ten years.
pub const RETENTION_MAX_DAYS: u32 = 3650;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUploadSettings {
    #[serde(default)]
    pub enabled: bool,
    /// When the assistant should offer the link, in the caller's words.
    #[serde(default)]
    pub trigger: Option<String>,
    /// Sent before the link.
    #[serde(default = "default_message")]
    pub message: String,
    #[serde(default = "default_types")]
    pub allowed_types: Vec<String>,
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    #[serde(default = "default_max_files")]
    pub max_files: u32,
    #[serde(default = "default_ttl")]
    pub link_ttl_seconds: u64,
    /// Files of this assistant's calls are deleted this many days after they arrived
    /// (the retention worker, `service::lifecycle`); `None` keeps them until deleted.
    #[serde(default)]
    pub retention_days: Option<u32>,
}

fn default_message() -> String {
    "Please upload your documents using this link".into()
}
fn default_types() -> Vec<String> {
    vec!["application/pdf".into(), "image/jpeg".into(), "image/png".into()]
}
fn default_max_file_bytes() -> u64 {
    10 * 1024 * 1024
}
fn default_max_files() -> u32 {
    5
}
fn default_ttl() -> u64 {
    3600
}

impl Default for FileUploadSettings {
    fn default() -> Self {
        FileUploadSettings {
            enabled: false,
            trigger: None,
            message: default_message(),
            allowed_types: default_types(),
            max_file_bytes: default_max_file_bytes(),
            max_files: default_max_files(),
            link_ttl_seconds: default_ttl(),
            retention_days: None,
        }
    }
}

/// One rule broken, with the stable code the API reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleError {
    pub code: &'static str,
    pub field: &'static str,
    pub detail: String,
}

pub(crate) fn rule(code: &'static str, field: &'static str, detail: impl Into<String>) -> RuleError {
    RuleError {
        code,
        field,
        detail: detail.into(),
    }
}

/// Why file upload cannot be turned on for this account, if it cannot.
pub fn unavailable_reason(plan_has_sms: bool) -> Option<&'static str> {
    (!plan_has_sms).then_some(
        "Your plan doesn't include SMS, which file upload needs to text the link. Contact your account manager to upgrade your plan.",
    )
}

/// Every rule the settings break (empty = valid). `plan_lacks_sms` comes first: it is
/// what a UI greys the toggle out for. `ceiling` is the deployment's largest file
/// (`uploads.max_file_size`).
pub fn validate(s: &FileUploadSettings, plan_has_sms: bool, ceiling: u64) -> Vec<RuleError> {
    let mut errors = Vec::new();
    if s.enabled && !plan_has_sms {
        errors.push(rule(
            "plan_lacks_sms",
            "enabled",
            unavailable_reason(false).unwrap_or_default(),
        ));
    }
    let trigger = s.trigger.as_deref().map(str::trim).unwrap_or("");
    if s.enabled && trigger.is_empty() {
        errors.push(rule(
            "trigger_required",
            "trigger",
            "Describe when the assistant should offer the upload link, e.g. \"When the caller says they have photos of the damage\".",
        ));
    }
    if trigger.chars().count() > TRIGGER_MAX_CHARS {
        errors.push(rule(
            "trigger_too_long",
            "trigger",
            format!("Keep the trigger to {TRIGGER_MAX_CHARS} characters."),
        ));
    }
    // A trigger is written in a text box, so line breaks and tabs may stay; anything else
    // unseen would reach the voice platform's LLM without the admin having read it.
    let unseen = s.trigger.as_deref().and_then(|t| {
        t.chars()
            .find(|c| is_hidden(*c) && !matches!(c, '\n' | '\r' | '\t'))
    });
    if let Some(c) = unseen {
        errors.push(rule(
            "trigger_invalid",
            "trigger",
            format!(
                "The trigger cannot contain control characters, or invisible or direction-changing characters (it has {}).",
                code_point(c)
            ),
        ));
    }
    let chars = s.message.chars().count();
    if s.message.trim().is_empty() {
        errors.push(rule(
            "message_empty",
            "message",
            "Write a short message to send with the link.",
        ));
    } else if chars > MESSAGE_MAX_CHARS {
        errors.push(rule(
            "message_too_long",
            "message",
            format!("The message has {chars} characters; keep it to {MESSAGE_MAX_CHARS}."),
        ));
    }
    if contains_link(&s.message) {
        errors.push(rule(
            "message_contains_link",
            "message",
            "Don't include a link in the message: the upload link is added automatically.",
        ));
    }
    if let Some(c) = first_hidden(&s.message) {
        // What the admin reads in the settings must be what the caller's phone shows: no
        // bidi overrides reordering it, no zero-width or tag characters hiding text in it.
        errors.push(rule(
            "message_invalid",
            "message",
            format!(
                "The message cannot contain line breaks, control characters, or invisible or direction-changing characters (it has {}).",
                code_point(c)
            ),
        ));
    }
    if s.allowed_types.is_empty() {
        errors.push(rule(
            "allowed_types_empty",
            "allowed_types",
            "Allow at least one file type.",
        ));
    }
    for t in &s.allowed_types {
        if Kind::from_mime(t).is_none() {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.mime()).collect();
            errors.push(rule(
                "type_not_supported",
                "allowed_types",
                format!(
                    "{t:?} is not a type upgate can check; use some of: {}.",
                    known.join(", ")
                ),
            ));
        }
    }
    if !(1..=ceiling).contains(&s.max_file_bytes) {
        errors.push(rule(
            "max_file_bytes_out_of_range",
            "max_file_bytes",
            format!("Choose between 1 and {ceiling} bytes (this deployment's largest file)."),
        ));
    }
    if !(1..=MAX_FILES_LIMIT).contains(&s.max_files) {
        errors.push(rule(
            "max_files_out_of_range",
            "max_files",
            format!("Choose between 1 and {MAX_FILES_LIMIT} files."),
        ));
    }
    if !(TTL_MIN_SECONDS..=TTL_MAX_SECONDS).contains(&s.link_ttl_seconds) {
        errors.push(rule(
            "link_ttl_out_of_range",
            "link_ttl_seconds",
            format!("Choose between {TTL_MIN_SECONDS} seconds and {TTL_MAX_SECONDS} seconds (7 days)."),
        ));
    }
    if s.retention_days
        .is_some_and(|d| !(1..=RETENTION_MAX_DAYS).contains(&d))
    {
        errors.push(rule(
            "retention_days_out_of_range",
            "retention_days",
            format!("Choose between 1 and {RETENTION_MAX_DAYS} days, or null to keep files until they are deleted."),
        ));
    }
    errors
}

/// Top-level domains a phone would turn a bare `word.tld` into a link for, besides every
/// two-letter country code. File extensions (`.pdf`, `.jpg`) are not among them, so
/// "Please upload invoice.pdf" is not a link.
const GENERIC_TLDS: &[&str] = &[
    "com",
    "net",
    "org",
    "info",
    "biz",
    "edu",
    "gov",
    "mil",
    "int",
    "app",
    "dev",
    "io",
    "ai",
    "xyz",
    "online",
    "site",
    "link",
    "click",
    "top",
    "shop",
    "store",
    "live",
    "page",
    "web",
    "website",
    "cloud",
    "tech",
    "blog",
    "news",
    "email",
    "help",
    "support",
    "health",
    "care",
    "clinic",
    "insurance",
    "law",
    "legal",
    "me",
    "tv",
];

/// Does the text hold something a phone would turn into a link? Schemes, `www.`, and
/// host-like words whose last label is a top-level domain (`example.com`, `bit.ly/x`).
pub fn contains_link(text: &str) -> bool {
    let lower = text.to_lowercase();
    if lower.contains("://") || lower.contains("www.") {
        return true;
    }
    lower
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '<' | '>' | '"' | '\'' | ','))
        .any(|word| {
            let word = word.trim_end_matches(['.', '!', '?', ':', ';']);
            let host = word.split('/').next().unwrap_or("");
            let labels: Vec<&str> = host.split('.').collect();
            let Some(tld) = labels.last() else { return false };
            labels.len() >= 2
                && labels
                    .iter()
                    .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'))
                && ((tld.len() == 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
                    || GENERIC_TLDS.contains(tld))
        })
}

/// What the caller will receive: the full text with a sample link, its encoding and segments.
#[derive(Debug, Clone, Serialize)]
pub struct SmsPreview {
    pub text: String,
    pub characters: usize,
    pub encoding: &'static str,
    pub segments: usize,
}

/// The text sent is "message + space + URL"; the sample token has the real token's length.
pub fn preview(message: &str, public_url: &str) -> SmsPreview {
    let text = sms_body(message, &format!("{public_url}/u/{}", "x".repeat(TOKEN_LEN)));
    let info = analyze(&text);
    SmsPreview {
        characters: info.chars,
        encoding: info.encoding.as_str(),
        segments: info.segments,
        text,
    }
}

pub fn sms_body(message: &str, url: &str) -> String {
    format!("{} {url}", message.trim())
}

/// The tool the voice platform gives its LLM so the assistant offers the link when the
/// trigger happens (the product page's "When to trigger file upload"). `None` while file
/// upload is off. The platform answers a call of it with
/// `POST /v1/calls/{call_id}/upload-links`, with an `Idempotency-Key` per tool call.
pub fn tool_definition(s: &FileUploadSettings) -> Option<serde_json::Value> {
    let trigger = s.trigger.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let (true, Some(trigger)) = (s.enabled, trigger) else {
        return None;
    };
    let kinds: Vec<&str> = allowed_kinds(&s.allowed_types)
        .into_iter()
        .map(upgate_gateway::upload::label)
        .collect();
    Some(serde_json::json!({
        "type": "function",
        "function": {
            "name": "send_upload_link",
            "description": format!(
                "Text the caller a secure, short-lived link to upload files ({}) from their phone. \
    Use it when: {trigger}. Afterwards tell the caller the text is on its way.",
                kinds.join(", ")
            ),
            "parameters": {"type": "object", "properties": {}, "additionalProperties": false},
        },
        "invoke": {
            "method": "POST",
            "path": "/v1/calls/{call_id}/upload-links",
            "headers": {"Idempotency-Key": "one per tool call"},
        },
    }))
}

/// The allowed kinds, in the order given, without duplicates.
pub fn allowed_kinds(types: &[String]) -> Vec<Kind> {
    let mut kinds = Vec::new();
    for k in types.iter().filter_map(|t| Kind::from_mime(t)) {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds
}

#[cfg(test)]
mod tests;
