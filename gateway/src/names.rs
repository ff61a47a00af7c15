//! File names that came from a caller's browser: cleaned for display (no paths, no control,
//! bidi or invisible characters, bounded length) and served back only through an RFC 6266
//! `Content-Disposition` that no name can break out of.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Longest display name, in UTF-8 bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// What a name that cleans down to nothing becomes.
pub const FALLBACK_NAME: &str = "upload";

/// Longest tail after the last dot that we treat as an extension worth keeping.
const MAX_EXTENSION_BYTES: usize = 16;

/// Characters that display as nothing or change how the text around them displays. Names
/// are shown to reviewers, so these could hide or reorder parts of a name
/// (`invoice\u{202E}fdp.exe` displays as `invoiceexe.pdf`). The shared list, but line and
/// paragraph separators, which a name keeps as spaces; plus what a file name never needs:
/// the emoji presentation selectors, unassigned specials, and every tag-plane code point.
fn is_invisible(c: char) -> bool {
    (crate::hidden_chars::is_hidden(c) && !matches!(c, '\u{2028}' | '\u{2029}'))
        || matches!(
            c,
            '\u{FE0E}' | '\u{FE0F}' | '\u{FFF0}'..='\u{FFF8}' | '\u{E0000}'..='\u{E0FFF}'
        )
}

fn is_separator(c: char) -> bool {
    c == '/' || c == '\\'
}

fn trim_dots_and_spaces(s: &str) -> &str {
    s.trim_matches(|c: char| c == '.' || c == ' ')
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn prefix_within(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `(stem, ".ext")` when the name ends in a short alphanumeric extension after a non-empty stem.
fn split_extension(name: &str) -> Option<(&str, &str)> {
    let dot = name.rfind('.')?;
    let ext = &name[dot..];
    let is_ext = dot > 0
        && (2..=MAX_EXTENSION_BYTES + 1).contains(&ext.len())
        && ext[1..].bytes().all(|b| b.is_ascii_alphanumeric());
    is_ext.then(|| (&name[..dot], ext))
}

/// Cuts `name` to `max` bytes at a char boundary, keeping its extension when it has one.
fn bound(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    if let Some((stem, ext)) = split_extension(name) {
        let stem = prefix_within(stem, max.saturating_sub(ext.len())).trim_end_matches(['.', ' ']);
        if !stem.is_empty() {
            return format!("{stem}{ext}");
        }
    }
    prefix_within(name, max).trim_end_matches(['.', ' ']).to_owned()
}

/// Display name from what the caller's browser sent.
///
/// Keeps only the last path component (`/` and `\` both separate, as old browsers send
/// `C:\Users\...\x.pdf`); removes control characters, bidi overrides and isolates, zero-width
/// and other invisible characters; turns other whitespace into single spaces (runs of
/// spaces can push a real extension out of view); trims dots and spaces at both ends (no
/// hidden or extension-only names); bounds the result to [`MAX_NAME_BYTES`] at a char
/// boundary, keeping the extension when possible. An empty result becomes [`FALLBACK_NAME`].
///
/// Cleaning is idempotent: a cleaned name cleans to itself.
pub fn clean_display_name(raw: &str) -> String {
    let mut visible = String::with_capacity(raw.len().min(4 * MAX_NAME_BYTES));
    for c in raw.chars() {
        if is_invisible(c) {
            continue;
        }
        let c = if c.is_whitespace() { ' ' } else { c };
        if c == ' ' && visible.ends_with(' ') {
            continue;
        }
        visible.push(c);
    }
    let last = visible
        .split(is_separator)
        .map(trim_dots_and_spaces)
        .rfind(|part| !part.is_empty())
        .unwrap_or("");
    let bounded = bound(last, MAX_NAME_BYTES);
    // Trimming after the cut too: the cut may leave a trailing space or dot.
    let name = trim_dots_and_spaces(&bounded);
    if name.is_empty() {
        FALLBACK_NAME.to_owned()
    } else {
        name.to_owned()
    }
}

/// The name a download is saved under: the cleaned display name, with `extensions[0]`
/// appended unless it already ends in one of `extensions` (case-insensitive).
///
/// The served type is the sniffed one; the saved name must agree with it, or a proven JPEG
/// named `x.html` would open in a browser from the reviewer's disk, where `nosniff` and the
/// sandbox CSP no longer apply.
pub fn download_name(display: &str, extensions: &[&str]) -> String {
    let name = clean_display_name(display);
    let Some(canonical) = extensions
        .first()
        .filter(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_alphanumeric()))
    else {
        return name;
    };
    let already = split_extension(&name)
        .is_some_and(|(_, ext)| extensions.iter().any(|e| ext[1..].eq_ignore_ascii_case(e)));
    if already {
        return name;
    }
    let suffix = format!(".{canonical}");
    let stem = prefix_within(&name, MAX_NAME_BYTES.saturating_sub(suffix.len())).trim_end_matches(['.', ' ']);
    let stem = if stem.is_empty() { FALLBACK_NAME } else { stem };
    format!("{stem}{suffix}")
}

/// Everything but RFC 8187 `attr-char` is percent-encoded in `filename*`.
const NOT_ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `attachment; filename="<ascii fallback>"; filename*=UTF-8''<percent-encoded>` (RFC 6266
/// section 4.3, RFC 8187).
///
/// The name is cleaned first, so this is safe on any input. The ASCII fallback, for clients
/// that ignore `filename*`, replaces non-ASCII, control characters, `"`, `\` and `%` (which
/// some clients decode) with `_`. The output is visible ASCII only: no CR or LF can reach a
/// header through it.
pub fn attachment_disposition(name: &str) -> String {
    let name = clean_display_name(name);
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if !matches!(c, '"' | '\\' | '%') => c,
            _ => '_',
        })
        .collect();
    let encoded = utf8_percent_encode(&name, NOT_ATTR_CHAR);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests;
