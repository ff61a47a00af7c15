//! Class 11, denials leave a trace: every control-API request writes exactly one log line
//! naming its route template (never the path), method, status and, once authenticated, the
//! account and token ids (never the token); every 401/403/404 on `/v1` is counted by template
//! and status; every 403 is in the audit log with the token id, the template and the
//! permission. Walked over every endpoint, every role, two accounts and bad tokens.

mod common;

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use common::files::pdf;
use common::logs::{control_requests, field};
use common::scene::settings;
use common::upgate::{upload_file, Api, Upgate};

const ROLES: [&str; 4] = ["admin", "integration", "reviewer", "viewer"];
const CALLER: &str = "+14155550142";

struct Account {
    id: String,
    /// role -> (client, token id)
    tokens: Vec<(&'static str, Api, String)>,
}

fn account(up: &Upgate, name: &str) -> Account {
    let id = up.create_account(name, "pro");
    let clients: Vec<(&str, Api)> = ROLES
        .iter()
        .map(|r| (*r, Api::new(&up.control, &up.create_token(&id, r))))
        .collect();
    // The operator's listing gives each role's token id (one token per role here).
    let (ok, out, err) = up.cli(&["token", "list", "--account", &id]);
    assert!(ok, "{err}");
    let ids: HashMap<String, String> = out
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["role"].as_str().unwrap().to_string(),
                v["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    Account {
        tokens: clients
            .into_iter()
            .map(|(r, api)| (r, api, ids[r].clone()))
            .collect(),
        id,
    }
}

/// One request as sent and answered.
struct Sent {
    template: &'static str,
    method: Method,
    status: StatusCode,
    /// (account id, token id) when the token was valid.
    who: Option<(String, String)>,
    bearer: String,
    path: String,
}

fn counter(metrics: &str, template: &str, status: u16) -> u64 {
    let prefix = format!("upgate_control_denied_total{{route=\"{template}\",status=\"{status}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_leaves_one_line_and_every_denial_a_count_and_403s_an_audit_entry() {
    let mut up = Upgate::configure("[sms]\nmax_per_number_per_hour = 100\n");
    up.start().await;
    let a = account(&up, "A");
    let b = account(&up, "B");
    let role = |acc: &Account, r: &str| acc.tokens.iter().find(|t| t.0 == r).unwrap().1.clone();

    role(&a, "admin")
        .put("/v1/assistants/desk", settings(5, 1_000_000))
        .await;
    let call = json!({"assistant_id": "desk", "caller_number": CALLER});
    role(&a, "integration")
        .put("/v1/calls/call-4155550142", call.clone())
        .await;
    let (_, link) = role(&a, "integration")
        .post("/v1/calls/call-4155550142/upload-links", None)
        .await;
    let url = link["url"].as_str().unwrap().to_string();
    let (status, stored) = upload_file(
        &up.gateway_client(),
        &url,
        "trace.pdf",
        "application/pdf",
        pdf("trace", 0),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let link_id = link["id"].as_str().unwrap().to_string();
    let file_id = stored["file"]["id"].as_str().unwrap().to_string();
    let (_, spare) = role(&a, "admin")
        .post("/v1/tokens", Some(json!({"role": "viewer", "name": "spare"})))
        .await;
    let spare_id = spare["id"].as_str().unwrap().to_string();

    let endpoints: Vec<(&'static str, Method, String, Option<Value>)> = vec![
        (
            "/v1/assistants/{assistant_id}",
            Method::GET,
            "/v1/assistants/desk".into(),
            None,
        ),
        (
            "/v1/assistants/{assistant_id}",
            Method::PUT,
            "/v1/assistants/desk".into(),
            Some(settings(5, 1_000_000)),
        ),
        (
            "/v1/calls/{call_id}",
            Method::GET,
            "/v1/calls/call-4155550142".into(),
            None,
        ),
        (
            "/v1/calls/{call_id}",
            Method::PUT,
            "/v1/calls/call-4155550142".into(),
            Some(call.clone()),
        ),
        (
            "/v1/calls/{call_id}/upload-links",
            Method::POST,
            "/v1/calls/call-4155550142/upload-links".into(),
            None,
        ),
        (
            "/v1/upload-links/{link_id}",
            Method::GET,
            format!("/v1/upload-links/{link_id}"),
            None,
        ),
        (
            "/v1/upload-links/{link_id}/resend",
            Method::POST,
            format!("/v1/upload-links/{link_id}/resend"),
            None,
        ),
        (
            "/v1/upload-links/{link_id}",
            Method::DELETE,
            format!("/v1/upload-links/{link_id}"),
            None,
        ),
        (
            "/v1/contacts/{number}/files",
            Method::GET,
            format!("/v1/contacts/{CALLER}/files"),
            None,
        ),
        (
            "/v1/contacts/{number}/files",
            Method::GET,
            "/v1/contacts/%2B14155550142/files".into(),
            None,
        ),
        (
            "/v1/files/{file_id}",
            Method::GET,
            format!("/v1/files/{file_id}"),
            None,
        ),
        (
            "/v1/files/{file_id}/content",
            Method::GET,
            format!("/v1/files/{file_id}/content"),
            None,
        ),
        ("/v1/audit", Method::GET, "/v1/audit".into(), None),
        ("/v1/tokens", Method::GET, "/v1/tokens".into(), None),
        (
            "/v1/tokens",
            Method::POST,
            "/v1/tokens".into(),
            Some(json!({"role": "reviewer"})),
        ),
        (
            "/v1/tokens/{token_id}",
            Method::GET,
            format!("/v1/tokens/{spare_id}"),
            None,
        ),
        (
            "/v1/tokens/{token_id}",
            Method::DELETE,
            format!("/v1/tokens/{spare_id}"),
            None,
        ),
        ("unmatched", Method::GET, format!("/v1/numbers/{CALLER}"), None),
        (
            "unmatched",
            Method::PATCH,
            "/v1/calls/call-4155550142".into(),
            None,
        ),
    ];

    let (_, revoked) = role(&a, "admin")
        .post("/v1/tokens", Some(json!({"role": "viewer"})))
        .await;
    let revoked_secret = revoked["token"].as_str().unwrap().to_string();
    let (status, _) = role(&a, "admin")
        .call(
            Method::DELETE,
            &format!("/v1/tokens/{}", revoked["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let before = control_requests(&up.logs()).len();
    let mut sent: Vec<Sent> = Vec::new();
    let send = |template: &'static str, method: Method, path: &str, body: Option<Value>, api: Api, who| {
        let path = path.to_string();
        async move {
            let (status, _) = api.call(method.clone(), &path, body).await;
            Sent {
                template,
                method,
                status,
                who,
                bearer: api.token.clone(),
                path,
            }
        }
    };
    // Both accounts, every role, on account A's ids.
    for acc in [&a, &b] {
        for (_, api, token_id) in &acc.tokens {
            for (template, method, path, body) in &endpoints {
                let who = Some((acc.id.clone(), token_id.clone()));
                sent.push(send(template, method.clone(), path, body.clone(), api.clone(), who).await);
            }
        }
    }
    // No token, a token of the right shape that does not exist, a revoked token.
    for bearer in [
        "",
        "upg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        revoked_secret.as_str(),
    ] {
        for (template, method, path, body) in &endpoints {
            let api = Api::new(&up.control, bearer);
            sent.push(send(template, method.clone(), path, body.clone(), api, None).await);
        }
    }
    for s in &sent {
        if s.who.is_none() {
            assert_eq!(s.status, StatusCode::UNAUTHORIZED, "{} {}", s.method, s.path);
        }
    }

    // --- one line per request, in order, with the template and never the path ----------
    let lines = control_requests(&up.logs());
    assert_eq!(lines.len() - before, sent.len(), "one line per request");
    for (line, s) in lines[before..].iter().zip(&sent) {
        assert_eq!(field(line, "route").as_deref(), Some(s.template), "{line}");
        assert_eq!(
            field(line, "method").as_deref(),
            Some(s.method.as_str()),
            "{line}"
        );
        assert_eq!(
            field(line, "status"),
            Some(s.status.as_u16().to_string()),
            "{line}"
        );
        assert!(field(line, "ms").is_some(), "{line}");
        match &s.who {
            Some((account, token)) => {
                assert_eq!(field(line, "account_id").as_ref(), Some(account), "{line}");
                assert_eq!(field(line, "token_id").as_ref(), Some(token), "{line}");
            }
            None => assert!(field(line, "auth").is_some(), "why it was refused: {line}"),
        }
        assert!(
            s.path == s.template || !line.contains(&s.path),
            "the raw path in {line}"
        );
        assert!(!line.contains("4155550142"), "a number in {line}");
        assert!(
            s.bearer.is_empty() || !line.contains(&s.bearer),
            "a token in {line}"
        );
        assert!(
            !line.contains(&link_id) && !line.contains(&file_id),
            "an id in {line}"
        );
    }
    let revoked_lines: Vec<&String> = lines[before..]
        .iter()
        .filter(|l| field(l, "auth").as_deref() == Some("revoked"))
        .collect();
    assert_eq!(revoked_lines.len(), endpoints.len());
    assert!(revoked_lines
        .iter()
        .all(|l| field(l, "token_id") == revoked["id"].as_str().map(str::to_string)));

    // --- every 401/403/404 under /v1 is counted by template and status ------------------
    let metrics = up.metrics().await;
    let mut expected: HashMap<(&str, u16), u64> = HashMap::new();
    for s in &sent {
        if matches!(s.status.as_u16(), 401 | 403 | 404) {
            *expected.entry((s.template, s.status.as_u16())).or_default() += 1;
        }
    }
    assert!(expected.keys().any(|(_, s)| *s == 401));
    assert!(expected.keys().any(|(_, s)| *s == 403));
    assert!(expected.keys().any(|(_, s)| *s == 404));
    for ((template, status), n) in &expected {
        assert_eq!(counter(&metrics, template, *status), *n, "{template} {status}");
    }
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("upgate_control_denied_total"))
    {
        assert!(!line.contains("4155550142") && !line.contains(&file_id), "{line}");
    }

    // --- every 403 is in its account's audit log ----------------------------------------
    for acc in [&a, &b] {
        let (_, audit) = role(acc, "reviewer").get("/v1/audit").await;
        let denied: Vec<&Value> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "access.denied")
            .collect();
        let forbidden: Vec<&Sent> = sent
            .iter()
            .filter(|s| s.status == StatusCode::FORBIDDEN && s.who.as_ref().is_some_and(|w| w.0 == acc.id))
            .collect();
        assert_eq!(denied.len(), forbidden.len(), "account {}", acc.id);
        // Newest first in the log; oldest first as sent.
        for (entry, s) in denied.iter().rev().zip(&forbidden) {
            assert_eq!(entry["actor"], s.who.as_ref().unwrap().1.as_str());
            assert_eq!(entry["target"], s.template);
            assert_eq!(entry["detail"]["method"], s.method.as_str());
            assert!(entry["detail"]["permission"]
                .as_str()
                .is_some_and(|p| !p.is_empty()));
            assert!(entry["detail"]["code"].is_string());
        }
        for entry in &denied {
            let text = entry.to_string();
            assert!(!text.contains("4155550142") && !text.contains(&link_id), "{text}");
        }
    }
}
