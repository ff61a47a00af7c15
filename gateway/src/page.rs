//! The caller's pages: small, mobile-first, no third-party anything, in the caller's
//! language (`i18n`), with a switcher on every page. The upload page works without
//! JavaScript (a plain form that posts one file and answers with a page); its script
//! replaces the form with buttons that post one file per request, each with its progress.

use crate::control_link::{LinkState, LinkView};
use crate::i18n::{fill, Lang, Text};
use crate::respond::escape_html;
use crate::upload::{allowed_list, human_size, link_gone_message, MULTIPART_MAX_FILE_BYTES};

pub const SCRIPT: &str = include_str!("assets/upload.js");
pub const STYLE: &str = include_str!("assets/upload.css");

/// A whole page. `page` is the link's page, when known: the language switcher leads there
/// (a result page's own address answers only a POST).
fn shell(lang: Lang, page: Option<&str>, title: &str, body: &str) -> String {
    shell_with_head(lang, page, title, "", body)
}

fn shell_with_head(lang: Lang, page: Option<&str>, title: &str, head: &str, body: &str) -> String {
    let switcher = page.map_or(String::new(), |page| switcher(lang, page));
    format!(
        "<!doctype html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\"><meta name=\"robots\" content=\"noindex\">{head}\
<title>{title}</title><link rel=\"icon\" href=\"data:,\">\
<link rel=\"stylesheet\" href=\"/assets/upload.css\"></head>\
<body>{switcher}<main>{body}</main></body></html>\n",
        code = lang.code(),
        title = escape_html(title),
    )
}

/// Links to the page in every language, each named in itself.
fn switcher(lang: Lang, page: &str) -> String {
    let page = escape_html(page);
    let links: Vec<String> = Lang::ALL
        .into_iter()
        .map(|l| {
            let current = if l == lang { " aria-current=\"true\"" } else { "" };
            format!(
                "<a href=\"{page}?lang={code}\" hreflang=\"{code}\" lang=\"{code}\"{current}>{name}</a>",
                code = l.code(),
                name = l.own_name()
            )
        })
        .collect();
    format!(
        "<nav class=\"languages\" aria-label=\"{}\">{}</nav>",
        escape_html(lang.text().language),
        links.join(" ")
    )
}

/// The sentences the page's script shows, as a data block (never run: the page's CSP
/// allows only our own script file).
fn script_text(t: &Text) -> String {
    let strings = serde_json::json!({
        "sendingName": t.js_sending_name,
        "sending": t.js_sending,
        "checking": t.js_checking,
        "received": t.js_received,
        "notSent": t.js_not_sent,
        "connectionLost": t.js_connection_lost,
        "confirmFinish": t.js_confirm_finish,
        "wentWrong": t.js_went_wrong,
        "waiting": t.js_waiting,
        "retry": t.js_retry,
        "receivedName": t.received,
        "thankYouTitle": t.title_thank_you,
        "thankYou": t.thank_you,
    });
    // `<` escaped, so no sentence can close the block.
    let json = strings.to_string().replace('<', "\\u003c");
    format!("<script type=\"application/json\" id=\"text\">{json}</script>")
}

/// The upload page of an active link, whose page is at `path`.
///
/// Without JavaScript it is a plain form for one file (`#plain`). The script hides that
/// form and shows `#enhanced`: real buttons that open the hidden file inputs (so keyboards
/// and screen readers reach them), one row per file, and "I'm finished" once a file is in.
pub fn upload_page(view: &LinkView, path: &str, lang: Lang) -> String {
    let t = lang.text();
    let accept: Vec<&str> = view.allowed.iter().map(|k| k.mime()).collect();
    let accept = escape_html(&accept.join(","));
    let images_allowed = view.allowed.iter().any(|k| k.is_image());
    let remaining = view.max_files.saturating_sub(view.files_received);
    let camera = if images_allowed {
        format!(
            "<button type=\"button\" class=\"button\" id=\"camera-button\">{}</button>\
<input type=\"file\" id=\"camera\" accept=\"image/jpeg\" capture=\"environment\" hidden tabindex=\"-1\">",
            escape_html(t.take_a_photo)
        )
    } else {
        String::new()
    };
    let hint = fill(
        &escape_html(t.hint),
        &[
            ("types", &escape_html(&allowed_list(&view.allowed, t))),
            ("size", &escape_html(&human_size(view.max_file_bytes, t))),
            ("remaining", &format!("<span id=\"remaining\">{remaining}</span>")),
        ],
    );
    // The plain form posts the whole file at once, capped below what the script can send
    // resumably: said only where the link allows more.
    let plain_limit = if view.max_file_bytes > MULTIPART_MAX_FILE_BYTES {
        format!(
            "<p class=\"hint\">{}</p>",
            escape_html(&fill(
                t.plain_limit,
                &[("size", &human_size(MULTIPART_MAX_FILE_BYTES, t))]
            ))
        )
    } else {
        String::new()
    };
    let page = escape_html(path);
    let code = lang.code();
    let done_hidden = if view.files_received > 0 { "" } else { " hidden" };
    let body = format!(
        "<h1>{title}</h1>\
<p class=\"ask\">{message}</p>\
<p class=\"hint\">{hint}</p>\
<form id=\"plain\" method=\"post\" action=\"{page}/files?lang={code}\" enctype=\"multipart/form-data\">{plain_limit}\
<p><label for=\"plain-file\">{choose_a_file}</label><br><input type=\"file\" id=\"plain-file\" name=\"file\" accept=\"{accept}\" required></p>\
<p><button type=\"submit\" class=\"button primary\">{send_this_file}</button></p></form>\
<div id=\"enhanced\" hidden>\
<div class=\"actions\">{camera}<button type=\"button\" class=\"button primary\" id=\"picker-button\">{choose_files}</button>\
<input type=\"file\" id=\"picker\" accept=\"{accept}\" multiple hidden tabindex=\"-1\"></div>\
<ul id=\"files\" aria-live=\"polite\"></ul>\
<button type=\"button\" id=\"done\" class=\"button\"{done_hidden}>{finished}</button>\
<p id=\"status\" role=\"status\" aria-live=\"polite\"></p></div>\
{text}<script src=\"/assets/upload.js\"></script>",
        title = escape_html(t.send_your_files),
        message = escape_html(&view.message),
        choose_a_file = escape_html(t.choose_a_file),
        send_this_file = escape_html(t.send_this_file),
        choose_files = escape_html(t.choose_files),
        finished = escape_html(t.finished_button),
        text = script_text(t),
    );
    shell(lang, Some(path), t.send_your_files, &body)
}

/// What a plain form post (no JavaScript) answers: the outcome, then a way on: another
/// file and "I'm finished" while the link takes more (`more`).
pub fn result_page(lang: Lang, title: &str, sentence: &str, path: &str, more: bool) -> String {
    let t = lang.text();
    let page = escape_html(path);
    let code = lang.code();
    let next = if more {
        format!(
            "<p><a class=\"button primary\" href=\"{page}?lang={code}\">{another}</a></p>\
<form method=\"post\" action=\"{page}/done?lang={code}\"><p><button type=\"submit\" class=\"button\">{finished}</button></p></form>",
            another = escape_html(t.send_another),
            finished = escape_html(t.finished_button),
        )
    } else {
        String::new()
    };
    shell(
        lang,
        Some(path),
        title,
        &format!(
            "<h1>{}</h1><p role=\"status\">{}</p>{next}",
            escape_html(title),
            escape_html(sentence)
        ),
    )
}

/// A page for a link that takes no more files (`None`: it never existed), at `page`.
pub fn ended_page(lang: Lang, state: Option<LinkState>, page: Option<&str>) -> String {
    let t = lang.text();
    let (title, text) = match state {
        Some(state) => (
            match state {
                LinkState::Used => t.title_used,
                LinkState::Expired => t.title_expired,
                LinkState::Revoked => t.title_revoked,
                LinkState::Superseded => t.title_superseded,
                LinkState::Active => t.title_ready,
            },
            link_gone_message(state, t),
        ),
        None => (t.title_invalid, t.invalid_link),
    };
    message_page(lang, page, title, text)
}

/// Moves on to `target` at once (and says so, with a link, for whoever does not follow a
/// refresh). No script: the CSP allows none inline, and it works without JavaScript.
pub fn hand_over_page(lang: Lang, target: &str) -> String {
    let t = lang.text();
    let target = escape_html(target);
    let head = format!("<meta http-equiv=\"refresh\" content=\"0;url={target}\">");
    let body = format!(
        "<h1>{}</h1><p><a class=\"button primary\" href=\"{target}\">{}</a></p>",
        escape_html(t.opening),
        escape_html(t.continue_link)
    );
    shell_with_head(lang, None, t.send_your_files, &head, &body)
}

/// A page with one sentence under a heading.
pub fn message_page(lang: Lang, page: Option<&str>, title: &str, text: &str) -> String {
    shell(
        lang,
        page,
        title,
        &format!("<h1>{}</h1><p>{}</p>", escape_html(title), escape_html(text)),
    )
}

#[cfg(test)]
mod tests;
