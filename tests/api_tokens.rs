//! API tokens over their life, as the operator and an account admin meet them: created with a
//! name and an expiry (CLI and API), listed without secrets, their last use recorded, revoked
//! from the API or the CLI (through the running server's socket, or the store when nothing
//! runs) and refused at once; expired tokens refused on time; another account's tokens are
//! not found.

mod common;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use common::upgate::{Api, Upgate};

fn listed(up: &Upgate, account: &str) -> Vec<Value> {
    let (ok, out, err) = up.cli(&["token", "list", "--account", account]);
    assert!(ok, "{err}");
    assert!(!out.contains("upg_"), "a secret in the listing: {out}");
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn by_id<'a>(tokens: &'a [Value], id: &str) -> &'a Value {
    tokens.iter().find(|t| t["id"] == id).unwrap()
}

/// Any request that needs nothing but a valid token of any role.
async fn works(api: &Api) -> StatusCode {
    api.get("/v1/assistants/none").await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_listed_and_revoked_and_expire_also_in_the_running_server() {
    let mut up = Upgate::configure("");
    let acc = up.create_account("A", "pro");

    // --- with nothing running: the CLI opens the store -----------------------------------
    let (ok, admin, err) = up.cli(&[
        "token",
        "create",
        "--account",
        &acc,
        "--role",
        "admin",
        "--name",
        "ops laptop",
        "--expires-in",
        "30d",
    ]);
    assert!(ok, "{err}");
    let admin = Api::new(&up.control, admin.trim());
    let offline_victim = Api::new(&up.control, &up.create_token(&acc, "viewer"));
    let tokens = listed(&up, &acc);
    assert_eq!(tokens.len(), 2);
    let admin_view = tokens.iter().find(|t| t["role"] == "admin").unwrap().clone();
    assert_eq!(admin_view["name"], "ops laptop");
    assert_eq!(
        admin_view["expires_at"].as_u64().unwrap() - admin_view["created_at"].as_u64().unwrap(),
        30 * 86_400
    );
    assert_eq!(admin_view["status"], "active");
    assert_eq!(admin_view["last_used_at"], Value::Null);
    let victim_id = tokens.iter().find(|t| t["role"] == "viewer").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, out, err) = up.cli(&["token", "revoke", &victim_id]);
    assert!(ok, "{err}");
    let out: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(out["status"], "revoked");

    for (args, says) in [
        (vec!["--expires-in", "soon"], "expires-in"),
        (vec!["--expires-in", "0s"], "expire"),
        (vec!["--expires-in", "20years"], "expire"),
        (vec!["--name", "a\u{202E}b"], "name"),
    ] {
        let mut cmd = vec!["token", "create", "--account", &acc, "--role", "viewer"];
        cmd.extend(args.iter());
        let (ok, out, err) = up.cli(&cmd);
        assert!(!ok && out.is_empty() && err.contains(says), "{args:?}: {err}");
    }
    let (ok, _, err) = up.cli(&["token", "revoke", "tok_0000000000000000"]);
    assert!(!ok && err.contains("token"), "{err}");
    let (ok, _, err) = up.cli(&["token", "list", "--account", "acc_0000000000000000"]);
    assert!(!ok && err.contains("account"), "{err}");

    // --- while serving: the CLI goes through the socket, refusals hold at once ----------
    up.start().await;
    assert_eq!(works(&offline_victim).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        works(&admin).await,
        StatusCode::NOT_FOUND,
        "the admin token works"
    );

    let (ok, short, err) = up.cli(&[
        "token",
        "create",
        "--account",
        &acc,
        "--role",
        "viewer",
        "--expires-in",
        "2s",
    ]);
    assert!(ok, "{err}");
    let short = Api::new(&up.control, short.trim());
    let (status, made) = admin
        .post(
            "/v1/tokens",
            Some(json!({"role": "viewer", "expires_in_seconds": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let short_api = Api::new(&up.control, made["token"].as_str().unwrap());
    let (_, integration) = admin
        .post(
            "/v1/tokens",
            Some(json!({"role": "integration", "name": "voice"})),
        )
        .await;
    let integration_id = integration["id"].as_str().unwrap().to_string();
    let integration = Api::new(&up.control, integration["token"].as_str().unwrap());
    for api in [&short, &short_api, &integration] {
        assert_eq!(works(api).await, StatusCode::NOT_FOUND);
    }

    // Revoked by the operator while serving: refused on the very next request.
    let (ok, _, err) = up.cli(&["token", "revoke", &integration_id]);
    assert!(ok, "{err}");
    assert_eq!(works(&integration).await, StatusCode::UNAUTHORIZED);

    // Revoked through the API: the same.
    let (_, spare) = admin.post("/v1/tokens", Some(json!({"role": "viewer"}))).await;
    let spare_api = Api::new(&up.control, spare["token"].as_str().unwrap());
    assert_eq!(works(&spare_api).await, StatusCode::NOT_FOUND);
    let spare_path = format!("/v1/tokens/{}", spare["id"].as_str().unwrap());
    let (status, answer) = admin.call(Method::DELETE, &spare_path, None).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::OK, Some("revoked"))
    );
    assert_eq!(works(&spare_api).await, StatusCode::UNAUTHORIZED);

    // Expired: refused once the second has passed, by the same running server.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(works(&short).await, StatusCode::UNAUTHORIZED);
    assert_eq!(works(&short_api).await, StatusCode::UNAUTHORIZED);

    let (status, all) = admin.get("/v1/tokens").await;
    assert_eq!(status, StatusCode::OK);
    let all = all["tokens"].as_array().unwrap().clone();
    assert!(!serde_json::to_string(&all).unwrap().contains("upg_"));
    assert_eq!(by_id(&all, &victim_id)["status"], "revoked");
    assert_eq!(by_id(&all, &integration_id)["status"], "revoked");
    assert_eq!(by_id(&all, made["id"].as_str().unwrap())["status"], "expired");
    let admin_now = by_id(&all, admin_view["id"].as_str().unwrap());
    assert!(admin_now["last_used_at"].as_u64().is_some(), "{admin_now}");
    assert_eq!(listed(&up, &acc).len(), all.len(), "CLI and API list the same");

    // --- another account's admin: never sees or touches these --------------------------
    let other = up.create_account("B", "pro");
    let other_admin = Api::new(&up.control, &up.create_token(&other, "admin"));
    let (_, theirs) = other_admin.get("/v1/tokens").await;
    assert_eq!(theirs["tokens"].as_array().unwrap().len(), 1);
    let admin_id = admin_view["id"].as_str().unwrap();
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = other_admin
            .call(method.clone(), &format!("/v1/tokens/{admin_id}"), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {body}");
    }
    assert_eq!(
        works(&admin).await,
        StatusCode::NOT_FOUND,
        "A's admin still works"
    );
}
