//! Where a user is signed in: the table the Account page shows for one's own sessions and
//! the Users page's "Sessions" shows admins and reviewers for anyone's, each with a way to
//! end a session that is still active.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use maud::{html, Markup};

use super::auth::service_error;
use super::http::{html, html_error, next_page, page_cursor, problem_page, query_pairs};
use super::layout::{self, csrf, time};
use super::Visit;
use crate::api::{Api, ApiResponse, Perm};
use crate::model::Session;
use crate::service::users::SESSION_IDLE_SECONDS;

/// Sessions on one page (ended ones are forgotten after 30 days, so one page is nearly
/// always all).
const PAGE: usize = 50;

/// One page of a user's sessions, the active ones first, and the link to the next page.
pub async fn page(
    api: &Api,
    visit: &Visit,
    user_id: &str,
    path: &str,
    req: &Request<Incoming>,
) -> Result<(Vec<Session>, Option<String>), ApiResponse> {
    let q = query_pairs(req);
    let cursor =
        page_cursor(&q, "cursor").map_err(|p| html_error(visit, StatusCode::BAD_REQUEST, &p.detail))?;
    let listed = api
        .service
        .sessions(&visit.actor.account_id, user_id, cursor, PAGE)
        .await
        .map_err(service_error)?;
    let next = listed.next.as_deref().map(|n| next_page(path, &q, "cursor", n));
    let now = upgate_gateway::sys::now();
    let mut sessions = listed.items;
    sessions.sort_by_key(|s| {
        (
            !s.active_at(now, SESSION_IDLE_SECONDS),
            std::cmp::Reverse(s.created_at),
        )
    });
    Ok((sessions, next))
}

/// The sessions as a table; `end` is where the form that ends an active one posts.
pub fn table(
    visit: &Visit,
    sessions: &[Session],
    next: Option<&str>,
    end: impl Fn(&Session) -> String,
) -> Markup {
    let now = upgate_gateway::sys::now();
    html! {
        div.scroll tabindex="0" role="region" aria-label="Sessions" {
            table {
                thead { tr { th scope="col" { "Signed in" } th scope="col" { "Last used" } th scope="col" { "Browser" } th scope="col" { "State" } th scope="col" { span.sr { "Action" } } } }
                tbody {
                    @for s in sessions {
                        @let active = s.active_at(now, SESSION_IDLE_SECONDS);
                        @let this = s.id == visit.session.id;
                        tr data-session=(s.id) {
                            td { (time(s.created_at)) }
                            td { (time(s.last_seen_at)) }
                            td { (s.agent) }
                            td { @if this { "this browser" } @else if active { "active" } @else { "ended" } }
                            td {
                                @if active && !this {
                                    form method="post" action=(end(s)) {
                                        (csrf(visit))
                                        button type="submit" { "Sign out there" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if sessions.is_empty() { p { "No sessions in the last 30 days." } }
        @if let Some(href) = next { p { a rel="next" href=(href) { "More sessions" } } }
    }
}

/// A user's sessions, for admins and reviewers, who may end them.
pub async fn user_page(api: &Api, visit: &Visit, user_id: &str, req: &Request<Incoming>) -> ApiResponse {
    if !visit.may(Perm::Access) {
        return html_error(
            visit,
            StatusCode::FORBIDDEN,
            "Sessions are for admins and reviewers.",
        );
    }
    let user = match api.service.user(&visit.actor.account_id, user_id).await {
        Ok(u) => u,
        Err(e) => return problem_page(visit, e),
    };
    let path = format!("/console/users/{}/sessions", user.id);
    let (sessions, next) = match page(api, visit, &user.id, &path, req).await {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    // Seeing sessions (`access`) and ending them (`revoke`) go to the same roles.
    let body = html! {
        p { "Where " (user.email) " is signed in. Signing a session out ends it at its next request; disabling the user ends them all." }
        (table(visit, &sessions, next.as_deref(), |s| format!("{path}/{}/revoke", s.id)))
    };
    html(StatusCode::OK, layout::page(Some(visit), "Sessions", body))
}
