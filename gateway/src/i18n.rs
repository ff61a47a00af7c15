//! Every sentence a caller reads, in their language: one catalogue per language
//! (`i18n/en.rs`, `de.rs`, `es.rs`, `fr.rs`), the same fields in each, so a missing
//! translation does not compile. The language comes from `?lang=` (the page's switcher),
//! else the browser's `Accept-Language`, else English. The assistant's own message is shown
//! as written, in whatever language it was written.

mod de;
mod en;
mod es;
mod fr;

/// A language the caller's pages speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    De,
    Es,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::En, Lang::De, Lang::Es, Lang::Fr];

    /// The BCP 47 tag, for `lang=""` and `?lang=`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
            Lang::Es => "es",
            Lang::Fr => "fr",
        }
    }

    /// The language's name in itself, for the switcher.
    pub fn own_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::De => "Deutsch",
            Lang::Es => "Español",
            Lang::Fr => "Français",
        }
    }

    pub fn text(self) -> &'static Text {
        match self {
            Lang::En => &en::TEXT,
            Lang::De => &de::TEXT,
            Lang::Es => &es::TEXT,
            Lang::Fr => &fr::TEXT,
        }
    }

    /// `de`, `de-AT`, `DE`: the language of a tag, if we speak it.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?;
        Lang::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(primary))
    }

    /// The caller's language: `?lang=` first (a choice made on the page), then the best
    /// `Accept-Language` entry we speak (by q-value, ties in the order given), else English.
    pub fn negotiate(query: Option<&str>, headers: &http::HeaderMap) -> Lang {
        let chosen = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| pair.strip_prefix("lang="))
            .and_then(Lang::parse);
        if let Some(lang) = chosen {
            return lang;
        }
        let mut best: Option<(f32, Lang)> = None;
        for value in headers.get_all(http::header::ACCEPT_LANGUAGE) {
            let Ok(value) = value.to_str() else { continue };
            for entry in value.split(',') {
                let mut parts = entry.split(';');
                let Some(lang) = parts.next().and_then(Lang::parse) else {
                    continue;
                };
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())
                    .filter(|q| (0.0..=1.0).contains(q))
                    .unwrap_or(0.0);
                if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                    best = Some((q, lang));
                }
            }
        }
        best.map_or(Lang::En, |(_, lang)| lang)
    }
}

/// Fills `{name}` placeholders in a catalogue sentence.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// One language's sentences. Placeholders in braces are filled with [`fill`].
pub struct Text {
    // The upload page.
    pub send_your_files: &'static str,
    /// `{types}`, `{size}`, `{remaining}`.
    pub hint: &'static str,
    pub choose_a_file: &'static str,
    /// `{size}`: the plain form's own cap, shown when the link allows more.
    pub plain_limit: &'static str,
    pub send_this_file: &'static str,
    pub take_a_photo: &'static str,
    pub choose_files: &'static str,
    pub finished_button: &'static str,
    pub language: &'static str,
    // Page titles.
    pub title_used: &'static str,
    pub title_expired: &'static str,
    pub title_revoked: &'static str,
    pub title_superseded: &'static str,
    pub title_ready: &'static str,
    pub title_invalid: &'static str,
    pub title_too_many: &'static str,
    pub title_try_again: &'static str,
    pub title_thank_you: &'static str,
    pub title_received: &'static str,
    pub title_not_sent: &'static str,
    pub title_nothing_yet: &'static str,
    pub send_another: &'static str,
    // Sentences.
    pub invalid_link: &'static str,
    pub too_many: &'static str,
    pub unavailable: &'static str,
    pub nothing_yet: &'static str,
    pub thank_you: &'static str,
    /// `{name}`.
    pub received: &'static str,
    pub gone_active: &'static str,
    pub gone_used: &'static str,
    pub gone_expired: &'static str,
    pub gone_revoked: &'static str,
    pub gone_superseded: &'static str,
    // Why a file was not taken.
    pub malformed: &'static str,
    /// `{limit}`.
    pub too_large: &'static str,
    /// `{types}`.
    pub type_not_allowed: &'static str,
    pub infected: &'static str,
    pub unscannable: &'static str,
    pub scanner_unavailable: &'static str,
    pub interrupted: &'static str,
    pub too_slow: &'static str,
    pub not_saved: &'static str,
    pub empty: &'static str,
    pub truncated: &'static str,
    pub corrupt: &'static str,
    pub picture_too_large: &'static str,
    pub not_this_kind: &'static str,
    pub not_for_this_link: &'static str,
    pub unsupported: &'static str,
    pub script_capable: &'static str,
    pub archive: &'static str,
    pub undecodable: &'static str,
    pub our_side: &'static str,
    // Lists and sizes.
    pub or: &'static str,
    pub mb: &'static str,
    pub kb: &'static str,
    // The page's script.
    /// `{name}`: the progress bar's name.
    pub js_sending_name: &'static str,
    pub js_sending: &'static str,
    pub js_checking: &'static str,
    pub js_received: &'static str,
    pub js_not_sent: &'static str,
    pub js_connection_lost: &'static str,
    pub js_confirm_finish: &'static str,
    pub js_went_wrong: &'static str,
    /// The network dropped: the row waits and resumes by itself.
    pub js_waiting: &'static str,
    /// The button that resumes by hand.
    pub js_retry: &'static str,
    /// The moment between the texted link and the token-free page.
    pub opening: &'static str,
    pub continue_link: &'static str,
}

#[cfg(test)]
mod tests;
