//! The page shell every console page shares: language, title, our stylesheet and script,
//! a skip link, the navigation for the user's role, and one `main` landmark.

use http::StatusCode;
use std::time::{Duration, UNIX_EPOCH};

use maud::{html, Markup, DOCTYPE};

use super::Visit;
use crate::api::Perm;

pub fn page(visit: Option<&Visit>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · upgate" }
                link rel="icon" href="/console/assets/icon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "upgate" }
                    @if let Some(v) = visit {
                        nav aria-label="Main" {
                            ul {
                                @if v.may(Perm::SettingsRead) { li { a href="/console/assistants" { "Assistants" } } }
                                @if v.may(Perm::Read) { li { a href="/console/calls" { "Calls" } } }
                                @if v.may(Perm::Read) { li { a href="/console/follow-up" { "Follow up" } } }
                                @if v.may(Perm::Quarantine) { li { a href="/console/quarantine" { "Quarantine" } } }
                                @if v.may(Perm::Audit) { li { a href="/console/audit" { "Audit log" } } }
                                @if v.may(Perm::Access) { li { a href="/console/users" { "Users" } } }
                                li { a href="/console/account" { "Account" } }
                            }
                        }
                        form.signout method="post" action="/console/sign-out" {
                            (csrf(v))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden form token every form of a signed-in page carries.
pub fn csrf(visit: &Visit) -> Markup {
    html! { input type="hidden" name="_csrf" value=(visit.session.csrf); }
}

pub fn message_page(visit: Option<&Visit>, status: StatusCode, text: &str) -> Markup {
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::TOO_MANY_REQUESTS => "Too many tries",
        s if s.is_server_error() => "Something failed",
        _ => "Cannot do that",
    };
    page(
        visit,
        title,
        html! { p role="alert" { (text) } p { a href="/console" { "Back to the console" } } },
    )
}

/// A Unix time as UTC, to the minute (the console shows times in one zone: UTC), with
/// the exact second in its `datetime`. humantime spells it, as the reports' days are.
pub fn time(t: u64) -> Markup {
    let exact = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t)).to_string();
    let text = format!("{} UTC", exact[..16].replacen('T', " ", 1));
    html! { time datetime=(exact) { (text) } }
}

/// `YYYY-MM-DD` (a date input's value) to the Unix second it starts, UTC; `None` for
/// anything else, an impossible day (`2023-02-29`) included.
pub fn parse_date(text: &str) -> Option<u64> {
    let shaped = text.len() == 10
        && text
            .bytes()
            .enumerate()
            .all(|(i, b)| matches!(i, 4 | 7) == (b == b'-'));
    if !shaped {
        return None;
    }
    let start = humantime::parse_rfc3339(&format!("{text}T00:00:00Z")).ok()?;
    start.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

pub fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / 1048576.0),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-12-07"), Some(1_796_601_600));
        assert!(time(1_796_601_600 + 3_723)
            .into_string()
            .contains(">2026-12-07 01:02 UTC<"));
        assert!(time(1_796_601_600 + 3_723)
            .into_string()
            .contains("\"2026-12-07T01:02:03Z\""));
        assert!(parse_date("2024-02-29").is_some_and(|t| time(t).into_string().contains("2024-02-29 00:00")));
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "x",
            "2026-1",
            "2026-01-01-01",
            "1969-12-31",
            "2026-1-011",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
