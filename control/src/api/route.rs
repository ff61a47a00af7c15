//! Which endpoint a request is for, decided once from its method and path: the handler
//! dispatches on it, the role table reads its permission, and the request log, metrics and
//! audit name it by its template (`/v1/calls/{call_id}`), never by its path, which can hold a
//! caller's number.

use http::Method;
use percent_encoding::percent_decode_str;

/// What a request needs permission for; roles map to these in one table (`allows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    SettingsRead,
    SettingsWrite,
    Calls,
    Read,
    Download,
    Audit,
    Tokens,
    Webhooks,
    /// Files kept in quarantine: the security team's.
    Quarantine,
    /// Ending access in the console: revoking an API token, disabling a user. The security
    /// team's as well as the admins': who finds a leak must be able to stop it.
    Revoke,
    /// Seeing who has access: the account's users, their sessions and its API tokens
    /// (never a secret). Whoever may end access must see what there is to end.
    Access,
}

impl Perm {
    /// The name the audit log gives a denied permission.
    pub fn as_str(self) -> &'static str {
        match self {
            Perm::SettingsRead => "settings_read",
            Perm::SettingsWrite => "settings_write",
            Perm::Calls => "calls",
            Perm::Read => "read",
            Perm::Download => "download",
            Perm::Audit => "audit",
            Perm::Tokens => "tokens",
            Perm::Webhooks => "webhooks",
            Perm::Quarantine => "quarantine",
            Perm::Revoke => "revoke",
            Perm::Access => "access",
        }
    }
}

/// An endpoint and the ids its path holds (percent-decoded, not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Healthz,
    /// The staff console's pages (`console`): one template for all of them.
    Console,
    AssistantList,
    AssistantGet(String),
    AssistantPut(String),
    CallPut(String),
    CallGet(String),
    LinkIssue(String),
    LinkGet(String),
    LinkResend(String),
    LinkRevoke(String),
    ContactFiles(String),
    FileGet(String),
    FileContent(String),
    FileAttestation(String),
    AttestationKeys,
    FollowUpReport,
    QuarantineList,
    CallEvents(String),
    Events,
    AuditList,
    CallList,
    FileList,
    TokenCreate,
    TokenList,
    TokenGet(String),
    TokenRevoke(String),
    UserList,
    UserCreate,
    UserDisable(String),
    UserSessions(String),
    UserSessionRevoke(String, String),
    WebhookCreate,
    WebhookList,
    WebhookGet(String),
    WebhookUpdate(String),
    WebhookDelete(String),
    WebhookRotate(String),
    WebhookDeliveries(String),
    WebhookReplay(String),
    /// No endpoint; `protected` when under `/v1`, where a token is asked for first.
    Unmatched {
        protected: bool,
    },
    /// An endpoint's path with a method it does not take: 405 with the ones it does.
    WrongMethod {
        allow: Vec<&'static str>,
        protected: bool,
    },
}

/// The methods any endpoint takes, in the order an `Allow` header lists them.
const METHODS: [(&str, Method); 5] = [
    ("GET", Method::GET),
    ("PUT", Method::PUT),
    ("POST", Method::POST),
    ("PATCH", Method::PATCH),
    ("DELETE", Method::DELETE),
];

impl Route {
    pub fn parse(method: &Method, path: &str) -> Route {
        if path == "/" {
            return Route::Console;
        }
        // Matched exactly, as the gateway does: `//v1/x`, `/v1/./x`, `/v1//x`, a trailing
        // slash or an encoded slash is not a route (a proxy in front may read it otherwise).
        let raw: Vec<&str> = path.strip_prefix('/').unwrap_or("").split('/').collect();
        let segments: Vec<String> = raw
            .iter()
            .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let exact = path.starts_with('/')
            && segments
                .iter()
                .all(|s| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\']));
        if !exact {
            return Route::Unmatched {
                protected: path.starts_with("/v1/") || path.starts_with("//"),
            };
        }
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        if let Some(route) = Route::endpoint(method, &segs) {
            return route;
        }
        let protected = segs.first() == Some(&"v1");
        let allow: Vec<&'static str> = METHODS
            .iter()
            .filter(|(_, m)| Route::endpoint(m, &segs).is_some())
            .map(|(name, _)| *name)
            .collect();
        if allow.is_empty() {
            Route::Unmatched { protected }
        } else {
            Route::WrongMethod { allow, protected }
        }
    }

    /// The endpoint `method` and the path's segments name, if any.
    fn endpoint(method: &Method, segs: &[&str]) -> Option<Route> {
        let id = |s: &str| s.to_string();
        Some(match (method, segs) {
            (&Method::GET, ["healthz"]) => Route::Healthz,
            (_, ["console", ..]) => Route::Console,
            (_, ["v1", rest @ ..]) => match (method, rest) {
                (&Method::GET, ["assistants"]) => Route::AssistantList,
                (&Method::GET, ["assistants", a]) => Route::AssistantGet(id(a)),
                (&Method::PUT, ["assistants", a]) => Route::AssistantPut(id(a)),
                (&Method::PUT, ["calls", c]) => Route::CallPut(id(c)),
                (&Method::GET, ["calls", c]) => Route::CallGet(id(c)),
                (&Method::GET, ["calls", c, "events"]) => Route::CallEvents(id(c)),
                (&Method::GET, ["events"]) => Route::Events,
                (&Method::POST, ["calls", c, "upload-links"]) => Route::LinkIssue(id(c)),
                (&Method::GET, ["upload-links", l]) => Route::LinkGet(id(l)),
                (&Method::POST, ["upload-links", l, "resend"]) => Route::LinkResend(id(l)),
                (&Method::DELETE, ["upload-links", l]) => Route::LinkRevoke(id(l)),
                (&Method::GET, ["contacts", n, "files"]) => Route::ContactFiles(id(n)),
                (&Method::GET, ["files", f]) => Route::FileGet(id(f)),
                (&Method::GET, ["files", f, "content"]) => Route::FileContent(id(f)),
                (&Method::GET, ["files", f, "attestation"]) => Route::FileAttestation(id(f)),
                (&Method::GET, ["attestation-keys"]) => Route::AttestationKeys,
                (&Method::GET, ["reports", "follow-up"]) => Route::FollowUpReport,
                (&Method::GET, ["quarantine"]) => Route::QuarantineList,
                (&Method::GET, ["audit"]) => Route::AuditList,
                (&Method::GET, ["calls"]) => Route::CallList,
                (&Method::GET, ["files"]) => Route::FileList,
                (&Method::POST, ["tokens"]) => Route::TokenCreate,
                (&Method::GET, ["tokens"]) => Route::TokenList,
                (&Method::GET, ["tokens", t]) => Route::TokenGet(id(t)),
                (&Method::DELETE, ["tokens", t]) => Route::TokenRevoke(id(t)),
                (&Method::GET, ["users"]) => Route::UserList,
                (&Method::POST, ["users"]) => Route::UserCreate,
                (&Method::POST, ["users", u, "disable"]) => Route::UserDisable(id(u)),
                (&Method::GET, ["users", u, "sessions"]) => Route::UserSessions(id(u)),
                (&Method::DELETE, ["users", u, "sessions", x]) => Route::UserSessionRevoke(id(u), id(x)),
                (&Method::POST, ["webhooks"]) => Route::WebhookCreate,
                (&Method::GET, ["webhooks"]) => Route::WebhookList,
                (&Method::GET, ["webhooks", w]) => Route::WebhookGet(id(w)),
                (&Method::PATCH, ["webhooks", w]) => Route::WebhookUpdate(id(w)),
                (&Method::DELETE, ["webhooks", w]) => Route::WebhookDelete(id(w)),
                (&Method::POST, ["webhooks", w, "rotate-secret"]) => Route::WebhookRotate(id(w)),
                (&Method::GET, ["webhooks", w, "deliveries"]) => Route::WebhookDeliveries(id(w)),
                (&Method::POST, ["webhooks", w, "replay"]) => Route::WebhookReplay(id(w)),
                _ => return None,
            },
            _ => return None,
        })
    }

    /// Every template an endpoint has (a test holds it equal to what `template` says), for
    /// the metrics made at start.
    pub const TEMPLATES: [&'static str; 31] = [
        "/healthz",
        "/console",
        "/v1/assistants",
        "/v1/assistants/{assistant_id}",
        "/v1/calls/{call_id}",
        "/v1/calls/{call_id}/events",
        "/v1/events",
        "/v1/calls/{call_id}/upload-links",
        "/v1/upload-links/{link_id}",
        "/v1/upload-links/{link_id}/resend",
        "/v1/contacts/{number}/files",
        "/v1/files/{file_id}",
        "/v1/files/{file_id}/content",
        "/v1/files/{file_id}/attestation",
        "/v1/attestation-keys",
        "/v1/reports/follow-up",
        "/v1/quarantine",
        "/v1/audit",
        "/v1/calls",
        "/v1/files",
        "/v1/tokens",
        "/v1/tokens/{token_id}",
        "/v1/users",
        "/v1/users/{user_id}/disable",
        "/v1/users/{user_id}/sessions",
        "/v1/users/{user_id}/sessions/{session_id}",
        "/v1/webhooks",
        "/v1/webhooks/{webhook_id}",
        "/v1/webhooks/{webhook_id}/rotate-secret",
        "/v1/webhooks/{webhook_id}/deliveries",
        "/v1/webhooks/{webhook_id}/replay",
    ];

    /// The path template: what logs, metric labels and the audit log say instead of the path.
    pub fn template(&self) -> &'static str {
        match self {
            Route::Healthz => "/healthz",
            Route::Console => "/console",
            Route::AssistantList => "/v1/assistants",
            Route::AssistantGet(_) | Route::AssistantPut(_) => "/v1/assistants/{assistant_id}",
            Route::CallPut(_) | Route::CallGet(_) => "/v1/calls/{call_id}",
            Route::CallEvents(_) => "/v1/calls/{call_id}/events",
            Route::Events => "/v1/events",
            Route::LinkIssue(_) => "/v1/calls/{call_id}/upload-links",
            Route::LinkGet(_) | Route::LinkRevoke(_) => "/v1/upload-links/{link_id}",
            Route::LinkResend(_) => "/v1/upload-links/{link_id}/resend",
            Route::ContactFiles(_) => "/v1/contacts/{number}/files",
            Route::FileGet(_) => "/v1/files/{file_id}",
            Route::FileContent(_) => "/v1/files/{file_id}/content",
            Route::FileAttestation(_) => "/v1/files/{file_id}/attestation",
            Route::AttestationKeys => "/v1/attestation-keys",
            Route::FollowUpReport => "/v1/reports/follow-up",
            Route::QuarantineList => "/v1/quarantine",
            Route::AuditList => "/v1/audit",
            Route::CallList => "/v1/calls",
            Route::FileList => "/v1/files",
            Route::TokenCreate | Route::TokenList => "/v1/tokens",
            Route::TokenGet(_) | Route::TokenRevoke(_) => "/v1/tokens/{token_id}",
            Route::UserList | Route::UserCreate => "/v1/users",
            Route::UserDisable(_) => "/v1/users/{user_id}/disable",
            Route::UserSessions(_) => "/v1/users/{user_id}/sessions",
            Route::UserSessionRevoke(..) => "/v1/users/{user_id}/sessions/{session_id}",
            Route::WebhookCreate | Route::WebhookList => "/v1/webhooks",
            Route::WebhookGet(_) | Route::WebhookUpdate(_) | Route::WebhookDelete(_) => {
                "/v1/webhooks/{webhook_id}"
            }
            Route::WebhookRotate(_) => "/v1/webhooks/{webhook_id}/rotate-secret",
            Route::WebhookDeliveries(_) => "/v1/webhooks/{webhook_id}/deliveries",
            Route::WebhookReplay(_) => "/v1/webhooks/{webhook_id}/replay",
            Route::Unmatched { .. } | Route::WrongMethod { .. } => "unmatched",
        }
    }

    /// Whether the request needs a token (everything under `/v1`).
    pub fn protected(&self) -> bool {
        !matches!(
            self,
            Route::Healthz
                | Route::Console
                | Route::Unmatched { protected: false }
                | Route::WrongMethod { protected: false, .. }
        )
    }

    /// The permission the endpoint needs; `None` for the open ones and for no endpoint.
    pub fn perm(&self) -> Option<Perm> {
        Some(match self {
            Route::Healthz | Route::Console | Route::Unmatched { .. } | Route::WrongMethod { .. } => {
                return None
            }
            Route::AssistantList | Route::AssistantGet(_) => Perm::SettingsRead,
            Route::AssistantPut(_) => Perm::SettingsWrite,
            Route::CallPut(_) | Route::LinkIssue(_) | Route::LinkResend(_) | Route::LinkRevoke(_) => {
                Perm::Calls
            }
            Route::CallGet(_)
            | Route::CallEvents(_)
            | Route::Events
            | Route::LinkGet(_)
            | Route::ContactFiles(_)
            | Route::FileGet(_)
            | Route::FileAttestation(_)
            | Route::AttestationKeys
            | Route::CallList
            | Route::FileList
            | Route::FollowUpReport => Perm::Read,
            Route::FileContent(_) => Perm::Download,
            Route::QuarantineList => Perm::Quarantine,
            Route::AuditList => Perm::Audit,
            Route::TokenCreate | Route::UserCreate => Perm::Tokens,
            Route::TokenList | Route::TokenGet(_) | Route::UserList | Route::UserSessions(_) => Perm::Access,
            Route::TokenRevoke(_) | Route::UserDisable(_) | Route::UserSessionRevoke(..) => Perm::Revoke,
            Route::WebhookCreate
            | Route::WebhookList
            | Route::WebhookGet(_)
            | Route::WebhookUpdate(_)
            | Route::WebhookDelete(_)
            | Route::WebhookRotate(_)
            | Route::WebhookDeliveries(_)
            | Route::WebhookReplay(_) => Perm::Webhooks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_never_carry_the_path_s_values() {
        let cases = [
            (
                Method::GET,
                "/v1/calls/call-%2B4915112345678",
                "/v1/calls/{call_id}",
            ),
            (
                Method::GET,
                "/v1/contacts/%2B4915112345678/files",
                "/v1/contacts/{number}/files",
            ),
            (
                Method::GET,
                "/v1/contacts/+4915112345678/files",
                "/v1/contacts/{number}/files",
            ),
            (
                Method::POST,
                "/v1/upload-links/0123456789abcdef01234567/resend",
                "/v1/upload-links/{link_id}/resend",
            ),
            (
                Method::DELETE,
                "/v1/tokens/tok_0123456789abcdef",
                "/v1/tokens/{token_id}",
            ),
            (Method::GET, "/v1/nothing/+4915112345678", "unmatched"),
            (Method::PATCH, "/v1/calls/x", "unmatched"),
            (Method::GET, "/+4915112345678", "unmatched"),
        ];
        for (method, path, template) in cases {
            let route = Route::parse(&method, path);
            assert_eq!(route.template(), template, "{method} {path}");
            assert!(!route.template().contains("4915112345678"));
        }
    }

    #[test]
    fn ids_are_percent_decoded() {
        assert_eq!(
            Route::parse(&Method::GET, "/v1/contacts/%2B4915112345678/files"),
            Route::ContactFiles("+4915112345678".into())
        );
    }

    #[test]
    fn everything_under_v1_is_protected_and_only_that() {
        assert!(Route::parse(&Method::GET, "/v1/audit").protected());
        assert!(Route::parse(&Method::GET, "/v1/whatever").protected());
        assert!(!Route::parse(&Method::GET, "/healthz").protected());
        assert!(!Route::parse(&Method::GET, "/metrics").protected());
    }

    #[test]
    fn every_endpoint_needs_a_permission() {
        // The console's pages are not API endpoints: its own tests cover them.
        let mut seen = std::collections::BTreeSet::from(["/healthz", "/console"]);
        for (method, path) in [
            (Method::GET, "/v1/assistants"),
            (Method::GET, "/v1/assistants/a"),
            (Method::PUT, "/v1/assistants/a"),
            (Method::PUT, "/v1/calls/c"),
            (Method::GET, "/v1/calls/c"),
            (Method::GET, "/v1/calls/c/events"),
            (Method::GET, "/v1/events"),
            (Method::POST, "/v1/calls/c/upload-links"),
            (Method::GET, "/v1/upload-links/l"),
            (Method::POST, "/v1/upload-links/l/resend"),
            (Method::DELETE, "/v1/upload-links/l"),
            (Method::GET, "/v1/contacts/n/files"),
            (Method::GET, "/v1/files/f"),
            (Method::GET, "/v1/files/f/content"),
            (Method::GET, "/v1/files/f/attestation"),
            (Method::GET, "/v1/attestation-keys"),
            (Method::GET, "/v1/reports/follow-up"),
            (Method::GET, "/v1/quarantine"),
            (Method::GET, "/v1/audit"),
            (Method::GET, "/v1/calls"),
            (Method::GET, "/v1/files"),
            (Method::POST, "/v1/tokens"),
            (Method::GET, "/v1/tokens"),
            (Method::GET, "/v1/tokens/t"),
            (Method::DELETE, "/v1/tokens/t"),
            (Method::GET, "/v1/users"),
            (Method::GET, "/v1/users/u/sessions"),
            (Method::POST, "/v1/users"),
            (Method::POST, "/v1/users/u/disable"),
            (Method::DELETE, "/v1/users/u/sessions/s"),
            (Method::POST, "/v1/webhooks"),
            (Method::GET, "/v1/webhooks"),
            (Method::GET, "/v1/webhooks/w"),
            (Method::PATCH, "/v1/webhooks/w"),
            (Method::DELETE, "/v1/webhooks/w"),
            (Method::POST, "/v1/webhooks/w/rotate-secret"),
            (Method::GET, "/v1/webhooks/w/deliveries"),
            (Method::POST, "/v1/webhooks/w/replay"),
        ] {
            let route = Route::parse(&method, path);
            assert!(route.perm().is_some(), "{method} {path}");
            assert_ne!(route.template(), "unmatched", "{method} {path}");
            assert!(Route::TEMPLATES.contains(&route.template()), "{method} {path}");
            seen.insert(route.template());
        }
        assert_eq!(seen.len(), Route::TEMPLATES.len(), "a template no endpoint has");
    }

    #[test]
    fn paths_that_a_proxy_would_read_differently_are_no_route() {
        for path in [
            "//v1/calls/c1",
            "/v1//calls/c1",
            "/v1/calls/c1/",
            "/v1/calls/./c1",
            "/v1/calls/../calls/c1",
            "/v1/calls/%2e%2e",
            "/v1/calls/a%2Fb",
            "/v1/calls/a%5Cb",
            "v1/calls/c1",
            "//healthz",
        ] {
            assert!(
                matches!(Route::parse(&Method::GET, path), Route::Unmatched { .. }),
                "{path}"
            );
        }
        assert!(matches!(
            Route::parse(&Method::GET, "/v1/calls/c1"),
            Route::CallGet(_)
        ));
    }
}
