//! Every endpoint × every role × two accounts: a role does what the role table says and no
//! more, and no token sees another account's data (404, not 403, for its ids).

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use common::files::pdf;
use common::scene::settings;
use common::upgate::{Api, Upgate};

const ROLES: [&str; 4] = ["admin", "integration", "reviewer", "viewer"];

/// The intended policy, written out independently of the code's table.
fn may(role: &str, endpoint: &str) -> bool {
    match endpoint {
        "assistant.get" | "call.get" | "link.get" | "contact.files" | "file.get" => true,
        "assistant.put" | "tokens.post" | "users.post" => role == "admin",
        // Who has access, and ending it: the security team's as well as the admins'.
        "tokens.get" | "token.get" | "token.delete" | "users.get" | "user.sessions" | "user.disable" => {
            matches!(role, "admin" | "reviewer")
        }
        "call.put" | "links.post" | "link.resend" | "link.delete" => matches!(role, "admin" | "integration"),
        "file.content" => role == "reviewer",
        "audit.get" => matches!(role, "admin" | "reviewer"),
        "quarantine.get" => role == "reviewer",
        other => panic!("unknown endpoint {other}"),
    }
}

struct Account {
    tokens: Vec<(&'static str, Api)>,
}

fn account(up: &Upgate, name: &str) -> Account {
    let id = up.create_account(name, "pro");
    Account {
        tokens: ROLES
            .iter()
            .map(|r| (*r, Api::new(&up.control, &up.create_token(&id, r))))
            .collect(),
    }
}

impl Account {
    fn as_role(&self, role: &str) -> &Api {
        &self.tokens.iter().find(|(r, _)| *r == role).unwrap().1
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_accounts_are_walled_off_on_every_endpoint() {
    let mut up = Upgate::configure("");
    up.start().await;
    let a = account(&up, "A");
    let b = account(&up, "B");
    let caller = "+14155550100";

    a.as_role("admin")
        .put("/v1/assistants/desk", settings(5, 1_000_000))
        .await;
    let call = json!({"assistant_id": "desk", "caller_number": caller});
    a.as_role("integration").put("/v1/calls/c1", call.clone()).await;
    let (_, link) = a
        .as_role("integration")
        .post("/v1/calls/c1/upload-links", None)
        .await;
    let url = link["url"].as_str().unwrap();
    let part = reqwest::multipart::Part::bytes(pdf("tenancy", 0))
        .file_name("t.pdf")
        .mime_str("application/pdf")
        .unwrap();
    let resp = up
        .gateway_client()
        .post(format!("{url}/files"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let file: Value = resp.json().await.unwrap();
    let (link_id, file_id) = (
        link["id"].as_str().unwrap().to_string(),
        file["file"]["id"].as_str().unwrap().to_string(),
    );
    // A token of A's to read and revoke; revoking it again is harmless.
    let (_, spare) = a
        .as_role("admin")
        .post("/v1/tokens", Some(json!({"role": "viewer", "name": "spare"})))
        .await;
    let spare_id = spare["id"].as_str().unwrap().to_string();
    // And a console user of A's.
    let (_, ana) = a
        .as_role("admin")
        .post(
            "/v1/users",
            Some(json!({"email": "ana@tenancy.example", "role": "viewer"})),
        )
        .await;
    let ana_id = ana["id"].as_str().unwrap().to_string();

    let endpoints: Vec<(&str, Method, String, Option<Value>)> = vec![
        ("assistant.get", Method::GET, "/v1/assistants/desk".into(), None),
        ("call.get", Method::GET, "/v1/calls/c1".into(), None),
        (
            "link.get",
            Method::GET,
            format!("/v1/upload-links/{link_id}"),
            None,
        ),
        ("file.get", Method::GET, format!("/v1/files/{file_id}"), None),
        (
            "file.content",
            Method::GET,
            format!("/v1/files/{file_id}/content"),
            None,
        ),
        (
            "link.resend",
            Method::POST,
            format!("/v1/upload-links/{link_id}/resend"),
            None,
        ),
        (
            "links.post",
            Method::POST,
            "/v1/calls/c1/upload-links".into(),
            None,
        ),
        (
            "link.delete",
            Method::DELETE,
            format!("/v1/upload-links/{link_id}"),
            None,
        ),
        ("token.get", Method::GET, format!("/v1/tokens/{spare_id}"), None),
        (
            "token.delete",
            Method::DELETE,
            format!("/v1/tokens/{spare_id}"),
            None,
        ),
        (
            "user.sessions",
            Method::GET,
            format!("/v1/users/{ana_id}/sessions"),
            None,
        ),
        (
            "user.disable",
            Method::POST,
            format!("/v1/users/{ana_id}/disable"),
            None,
        ),
    ];

    // Account B, every role, on A's ids: never A's data. A role allowed the action gets 404
    // (the id does not exist for it); a role not allowed gets 403 without learning more.
    for (role, api) in &b.tokens {
        for (name, method, path, body) in &endpoints {
            let (status, answer) = api.call(method.clone(), path, body.clone()).await;
            let want = if may(role, name) {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(status, want, "B {role} {name}: {answer}");
        }
        let (status, theirs) = api.get(&format!("/v1/contacts/{caller}/files")).await;
        assert_eq!(status, 200);
        assert_eq!(
            theirs["files"].as_array().unwrap().len(),
            0,
            "B {role} sees A's contact files"
        );
        if may(role, "audit.get") {
            let (_, audit) = api.get("/v1/audit").await;
            let text = audit.to_string();
            assert!(
                !text.contains(&file_id) && !text.contains(&link_id) && !text.contains(&spare_id),
                "B {role} sees A's audit"
            );
        }
        if may(role, "tokens.get") {
            let (_, tokens) = api.get("/v1/tokens").await;
            assert!(
                !tokens.to_string().contains(&spare_id),
                "B {role} lists A's tokens"
            );
            assert_eq!(tokens["tokens"].as_array().unwrap().len(), ROLES.len());
            let (_, users) = api.get("/v1/users").await;
            assert_eq!(users["users"], json!([]), "B {role} lists A's users");
        }
    }

    // Account A, every role, on its own ids: exactly what the table allows.
    let mut all = endpoints.clone();
    all.push((
        "contact.files",
        Method::GET,
        format!("/v1/contacts/{caller}/files"),
        None,
    ));
    all.push(("audit.get", Method::GET, "/v1/audit".into(), None));
    all.push(("quarantine.get", Method::GET, "/v1/quarantine".into(), None));
    all.push(("tokens.get", Method::GET, "/v1/tokens".into(), None));
    all.push(("users.get", Method::GET, "/v1/users".into(), None));
    all.push((
        "users.post",
        Method::POST,
        "/v1/users".into(),
        Some(json!({"email": "someone@tenancy.example", "role": "viewer"})),
    ));
    all.push((
        "tokens.post",
        Method::POST,
        "/v1/tokens".into(),
        Some(json!({"role": "viewer"})),
    ));
    all.push(("call.put", Method::PUT, "/v1/calls/c1".into(), Some(call.clone())));
    all.push((
        "assistant.put",
        Method::PUT,
        "/v1/assistants/desk".into(),
        Some(settings(5, 1_000_000)),
    ));
    for (role, api) in &a.tokens {
        for (name, method, path, body) in &all {
            let (status, answer) = api.call(method.clone(), path, body.clone()).await;
            if may(role, name) {
                // Allowed: any answer but 401/403/404 (a resend of a revoked link is a 409).
                assert!(
                    ![
                        StatusCode::UNAUTHORIZED,
                        StatusCode::FORBIDDEN,
                        StatusCode::NOT_FOUND
                    ]
                    .contains(&status),
                    "A {role} {name}: {status} {answer}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "A {role} {name}: {answer}");
            }
        }
    }

    let (status, body) = a
        .as_role("admin")
        .post("/v1/tokens", Some(json!({"role": "reviewer"})))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("reviewer_by_operator"))
    );

    // No token, a malformed token, a well-formed unknown token: 401 everywhere.
    for token in ["", "nope", "upg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let api = Api::new(&up.control, token);
        for (name, method, path, body) in &all {
            let (status, _) = api.call(method.clone(), path, body.clone()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?} {name}");
        }
    }
}
