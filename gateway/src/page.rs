//! The caller's pages: small, mobile-first, no third-party anything. The upload page's
//! script posts one file per request and shows one progress bar per file.

use crate::control_link::{LinkState, LinkView};
use crate::respond::escape_html;
use crate::upload::{allowed_list, human_size, link_gone_message};

pub const SCRIPT: &str = include_str!("assets/upload.js");
pub const STYLE: &str = include_str!("assets/upload.css");

fn shell(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><meta name=\"robots\" content=\"noindex\">\
<title>{}</title><link rel=\"icon\" href=\"data:,\">\
<link rel=\"stylesheet\" href=\"/assets/upload.css\"></head>\
<body><main>{body}</main></body></html>\n",
        escape_html(title)
    )
}

/// The upload page of an active link.
pub fn upload_page(view: &LinkView) -> String {
    let accept: Vec<&str> = view.allowed.iter().map(|k| k.mime()).collect();
    let accept = accept.join(",");
    let images_allowed = view.allowed.iter().any(|k| k.is_image());
    let remaining = view.max_files.saturating_sub(view.files_received);
    let camera = if images_allowed {
        "<label class=\"button\">Take a photo<input type=\"file\" id=\"camera\" accept=\"image/jpeg\" capture=\"environment\" hidden></label>"
    } else {
        ""
    };
    let body = format!(
        "<h1>Send your files</h1>\
<p class=\"ask\">{message}</p>\
<p class=\"hint\">{types}, up to {size} each. You can send <span id=\"remaining\">{remaining}</span> more file(s).</p>\
<div class=\"actions\">{camera}<label class=\"button primary\">Choose files\
<input type=\"file\" id=\"picker\" accept=\"{accept}\" multiple hidden></label></div>\
<ul id=\"files\" aria-live=\"polite\"></ul>\
<button id=\"done\" class=\"button\" hidden>I'm finished</button>\
<p id=\"status\" role=\"status\"></p>\
<script src=\"/assets/upload.js\"></script>",
        message = escape_html(&view.message),
        types = escape_html(&allowed_list(&view.allowed)),
        size = human_size(view.max_file_bytes),
        accept = escape_html(&accept),
    );
    shell("Send your files", &body)
}

/// A page for a link that takes no more files, or never existed.
pub fn ended_page(state: Option<LinkState>) -> String {
    let (title, text) = match state {
        Some(state) => (
            match state {
                LinkState::Used => "Already used",
                LinkState::Expired => "Link expired",
                LinkState::Revoked => "Link cancelled",
                LinkState::Superseded => "A newer link was sent",
                LinkState::Active => "Ready",
            },
            link_gone_message(state),
        ),
        None => ("Link not valid", INVALID_LINK),
    };
    shell(
        title,
        &format!("<h1>{}</h1><p>{}</p>", escape_html(title), escape_html(text)),
    )
}

/// Said to a caller whose link did not verify.
pub const INVALID_LINK: &str =
    "This link isn't valid. Please check that you opened the whole link from your text message.";
/// Said to an address that failed the link check too often.
pub const TOO_MANY: &str =
    "Too many links that aren't valid were opened from this network. Please wait a minute, then open the link from your text message again.";
/// Said when the control plane cannot answer.
pub const UNAVAILABLE: &str =
    "We can't take files just now. Please try again in a few minutes; your link still works.";

/// A page with one sentence under a heading.
pub fn message_page(title: &str, text: &str) -> String {
    shell(
        title,
        &format!("<h1>{}</h1><p>{}</p>", escape_html(title), escape_html(text)),
    )
}
