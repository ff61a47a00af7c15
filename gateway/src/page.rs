//! The caller's pages: small, mobile-first, no third-party anything. The upload page works
//! without JavaScript (a plain form that posts one file and answers with a page); its script
//! replaces the form with buttons that post one file per request, each with its progress.

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

/// The upload page of an active link, whose page is at `path`.
///
/// Without JavaScript it is a plain form for one file (`#plain`). The script hides that
/// form and shows `#enhanced`: real buttons that open the hidden file inputs (so keyboards
/// and screen readers reach them), one row per file, and "I'm finished" once a file is in.
pub fn upload_page(view: &LinkView, path: &str) -> String {
    let accept: Vec<&str> = view.allowed.iter().map(|k| k.mime()).collect();
    let accept = escape_html(&accept.join(","));
    let images_allowed = view.allowed.iter().any(|k| k.is_image());
    let remaining = view.max_files.saturating_sub(view.files_received);
    let camera = if images_allowed {
        "<button type=\"button\" class=\"button\" id=\"camera-button\">Take a photo</button>\
<input type=\"file\" id=\"camera\" accept=\"image/jpeg\" capture=\"environment\" hidden tabindex=\"-1\">"
    } else {
        ""
    };
    let path = escape_html(path);
    let done_hidden = if view.files_received > 0 { "" } else { " hidden" };
    let body = format!(
        "<h1>Send your files</h1>\
<p class=\"ask\">{message}</p>\
<p class=\"hint\">{types}, up to {size} each. You can send <span id=\"remaining\">{remaining}</span> more file(s).</p>\
<form id=\"plain\" method=\"post\" action=\"{path}/files\" enctype=\"multipart/form-data\">\
<p><label for=\"plain-file\">Choose a file</label><br><input type=\"file\" id=\"plain-file\" name=\"file\" accept=\"{accept}\" required></p>\
<p><button type=\"submit\" class=\"button primary\">Send this file</button></p></form>\
<div id=\"enhanced\" hidden>\
<div class=\"actions\">{camera}<button type=\"button\" class=\"button primary\" id=\"picker-button\">Choose files</button>\
<input type=\"file\" id=\"picker\" accept=\"{accept}\" multiple hidden tabindex=\"-1\"></div>\
<ul id=\"files\" aria-live=\"polite\"></ul>\
<button type=\"button\" id=\"done\" class=\"button\"{done_hidden}>I'm finished</button>\
<p id=\"status\" role=\"status\" aria-live=\"polite\"></p></div>\
<script src=\"/assets/upload.js\"></script>",
        message = escape_html(&view.message),
        types = escape_html(&allowed_list(&view.allowed)),
        size = human_size(view.max_file_bytes),
    );
    shell("Send your files", &body)
}

/// What a plain form post (no JavaScript) answers: the outcome, then a way on: another
/// file and "I'm finished" while the link takes more (`more`).
pub fn result_page(title: &str, sentence: &str, path: &str, more: bool) -> String {
    let path = escape_html(path);
    let next = if more {
        format!(
            "<p><a class=\"button primary\" href=\"{path}\">Send another file</a></p>\
<form method=\"post\" action=\"{path}/done\"><p><button type=\"submit\" class=\"button\">I'm finished</button></p></form>"
        )
    } else {
        String::new()
    };
    shell(
        title,
        &format!(
            "<h1>{}</h1><p role=\"status\">{}</p>{next}",
            escape_html(title),
            escape_html(sentence)
        ),
    )
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
/// Said when the caller finishes before any file came.
pub const NOTHING_YET: &str =
    "No file has arrived yet. Please send at least one file, then press \"I'm finished\".";
/// Said once the caller finished.
pub const THANK_YOU: &str = "Thank you. Your files have been received.";
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
