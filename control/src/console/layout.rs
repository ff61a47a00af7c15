//! The page shell every console page shares: language, title, our stylesheet and script,
//! a skip link, the navigation for the user's role, and one `main` landmark.

use http::StatusCode;
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
                                @if v.may(Perm::Revoke) { li { a href="/console/users" { "Users" } } }
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

/// A Unix time as UTC, to the minute (the console shows times in one zone: UTC).
pub fn time(t: u64) -> Markup {
    let secs = t as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    let text = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    );
    html! { time datetime=(format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)) { (text) } }
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's `civil_from_days`.
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD` (a date input's value) to the Unix second it starts, UTC.
pub fn parse_date(text: &str) -> Option<u64> {
    let mut parts = text.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some()
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
        || !(1970..=9999).contains(&y)
    {
        return None;
    }
    let (yy, mm) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (civil(days) == (y, m as u32, d as u32)).then_some(days as u64 * 86_400)
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
        assert_eq!(civil(1_796_601_600 / 86_400), (2026, 12, 7));
        assert_eq!(
            parse_date("2024-02-29").map(|t| civil((t / 86_400) as i64)),
            Some((2024, 2, 29))
        );
        for bad in ["2023-02-29", "2026-13-01", "x", "2026-1", "2026-01-01-01"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
