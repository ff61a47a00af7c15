//! The API in process, over an in-memory connection: the real handler, no sockets.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::{HeaderMap, Method};
use hyper_util::rt::TokioIo;
use upgate_gateway::metrics::Metrics;
use upgate_gateway::storage::LocalStore;

use super::*;
use crate::db::{DbError, Entry, Kv, Op, SledKv, Tree};
use crate::service::NewToken;

/// sled, with a switch that makes every call fail as a broken disk would.
struct Flaky {
    inner: SledKv,
    broken: AtomicBool,
}

impl Flaky {
    fn check(&self) -> Result<(), DbError> {
        if self.broken.load(Ordering::SeqCst) {
            Err(DbError::Engine("injected failure".into()))
        } else {
            Ok(())
        }
    }
}

impl Kv for Flaky {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, DbError> {
        self.check()?;
        self.inner.get(tree, key)
    }
    fn scan_prefix(&self, tree: Tree, prefix: &[u8]) -> Result<Vec<Entry>, DbError> {
        self.check()?;
        self.inner.scan_prefix(tree, prefix)
    }
    fn scan_rev_before(
        &self,
        tree: Tree,
        prefix: &[u8],
        before: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, DbError> {
        self.check()?;
        self.inner.scan_rev_before(tree, prefix, before, limit)
    }
    fn scan_from(
        &self,
        tree: Tree,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, DbError> {
        self.check()?;
        self.inner.scan_from(tree, prefix, start, limit)
    }
    fn write(&self, ops: Vec<Op>) -> Result<(), DbError> {
        self.check()?;
        self.inner.write(ops)
    }
    fn durable(&self) -> crate::db::Durable {
        match self.check() {
            Ok(()) => self.inner.durable(),
            Err(e) => crate::db::Durable::ready(Err(e)),
        }
    }
    fn next_id(&self) -> Result<u64, DbError> {
        self.check()?;
        self.inner.next_id()
    }
}

struct Harness {
    api: Api,
    db: Arc<Flaky>,
    metrics: Metrics,
    _dir: tempfile::TempDir,
}

fn harness(config_extra: &str) -> Harness {
    harness_with(config_extra, None)
}

/// A carrier that refuses every text, quoting what it was sent.
struct Parrot;

#[async_trait::async_trait]
impl crate::sms::SmsProvider for Parrot {
    fn name(&self) -> &'static str {
        "parrot"
    }
    async fn send(&self, to: &str, body: &str) -> Result<crate::sms::Accepted, crate::sms::SmsError> {
        Err(crate::sms::SmsError::Refused(format!(
            "cannot send {body:?} to {to}"
        )))
    }
}

fn harness_with(config_extra: &str, sms: Option<Arc<dyn crate::sms::SmsProvider>>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upgate.toml");
    std::fs::write(&path, config_extra).unwrap();
    let config = upgate_config::Config::load(Some(&path), Some(dir.path())).unwrap();
    crate::keys::ensure_keys(dir.path()).unwrap();
    let db = Arc::new(Flaky {
        inner: SledKv::open(&dir.path().join("meta")).unwrap(),
        broken: AtomicBool::new(false),
    });
    let metrics = Metrics::new();
    let service = Service::new(
        crate::repo::Repos::sled(db.clone()).unwrap(),
        config.plans.clone(),
        crate::keys::KeyRing::load(dir.path()).unwrap(),
        sms.unwrap_or_else(|| crate::sms::from_config(&config.sms, dir.path(), &config.gateway.public_url)),
        config.gateway.public_url.clone(),
        metrics.clone(),
        config.sms_limits,
    );
    let store = Arc::new(LocalStore::open(&dir.path().join("objects")).unwrap());
    Harness {
        api: Api {
            service: Arc::new(service),
            store,
            streams: crate::api::events::Streams::unstopped(std::time::Duration::from_secs(1), 4),
        },
        db,
        metrics,
        _dir: dir,
    }
}

impl Harness {
    async fn token(&self, account: &str, role: Role) -> String {
        self.api
            .service
            .create_token(account, role, NewToken::default(), "operator")
            .await
            .unwrap()
            .1
    }

    /// A client connection to the API through hyper's HTTP/1 on both ends of an in-memory
    /// pipe.
    async fn connect(&self) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let api = self.api.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, Infallible>(api.handle(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server), svc)
                .await;
        });
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(client))
            .await
            .unwrap();
        tokio::spawn(conn);
        sender
    }

    /// A GET whose answer may never end (an event stream): the response, body unread.
    async fn open(&self, path: &str, token: &str) -> http::Response<Incoming> {
        let mut sender = self.connect().await;
        let req = Request::builder()
            .uri(path)
            .header(header::HOST, "control")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        sender.send_request(req).await.unwrap()
    }

    /// One request through hyper's HTTP/1 on both ends of an in-memory pipe.
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut sender = self.connect().await;
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "control")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}

fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::RETRY_AFTER)?.to_str().ok()?.parse().ok()
}

#[test]
fn the_role_table() {
    assert!(allows(Role::Admin, Perm::SettingsWrite));
    assert!(
        !allows(Role::Admin, Perm::Download),
        "admins manage; reviewers see files"
    );
    assert!(allows(Role::Integration, Perm::Calls));
    assert!(!allows(Role::Integration, Perm::Download));
    assert!(!allows(Role::Integration, Perm::SettingsWrite));
    assert!(allows(Role::Reviewer, Perm::Download));
    assert!(allows(Role::Reviewer, Perm::Audit));
    assert!(!allows(Role::Reviewer, Perm::Calls));
    assert!(allows(Role::Reviewer, Perm::Revoke) && allows(Role::Admin, Perm::Revoke));
    assert!(!allows(Role::Integration, Perm::Revoke));
    for perm in [
        Perm::Revoke,
        Perm::SettingsWrite,
        Perm::Calls,
        Perm::Download,
        Perm::Audit,
        Perm::Tokens,
    ] {
        assert!(!allows(Role::Viewer, perm));
    }
    assert!(allows(Role::Viewer, Perm::Read));
}

/// Every kind of 503 and 429 the control API answers, each with a `Retry-After` a client can
/// act on: its own wait where it knows one, the status's default otherwise.
#[test]
fn every_503_and_429_kind_carries_retry_after() {
    let kinds = [
        Problem::from(DbError::Engine("disk gone".into())),
        Problem::from(DbError::Corrupt("calls: Data error at line 1 column 2".into())),
        Problem::unavailable("storage_unavailable", "Storage is unavailable; try again."),
        Problem::unavailable("no_randomness", "Try again."),
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "anything_new",
            "A 503 nobody gave a wait.",
        ),
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "anything_new",
            "A 429 nobody gave a wait.",
        ),
        Problem::new(StatusCode::TOO_MANY_REQUESTS, "sms_rate_limited", "Too many.").with_retry_after(1234),
    ];
    for p in &kinds {
        let resp = problem_response(p);
        let wait = retry_after(resp.headers());
        assert!(wait.is_some_and(|w| w > 0), "{} {}", p.status, p.code);
    }
    assert_eq!(retry_after(problem_response(&kinds[6]).headers()), Some(1234));
    for status in [
        StatusCode::BAD_REQUEST,
        StatusCode::NOT_FOUND,
        StatusCode::CONFLICT,
    ] {
        let resp = problem_response(&Problem::new(status, "x", "y"));
        assert!(resp.headers().get(header::RETRY_AFTER).is_none(), "{status}");
    }
}

/// Streams have places of their own (4 here): one more is told to come back, the
/// other API requests are answered all the while, and a closed stream's place comes back.
#[tokio::test]
async fn event_streams_beyond_their_places_are_told_to_retry() {
    let h = harness("");
    let acc = h.api.service.create_account("A", "pro").await.unwrap().id;
    let viewer = h.token(&acc, Role::Viewer).await;
    let mut open = Vec::new();
    for _ in 0..4 {
        let resp = h.open("/v1/events", &viewer).await;
        assert_eq!(resp.status(), StatusCode::OK);
        open.push(resp);
    }
    let (status, headers, body) = h.send(Method::GET, "/v1/events", &viewer, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "too_many_streams");
    assert_eq!(retry_after(&headers), Some(5));
    let (status, _, _) = h.send(Method::GET, "/v1/assistants/desk", &viewer, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "other requests are answered");
    assert_eq!(h.metrics.event_streams.get(), 4);

    // A client goes away: its place comes back once the server sees the connection close.
    drop(open.pop());
    let mut reopened = None;
    for _ in 0..100 {
        let resp = h.open("/v1/events", &viewer).await;
        if resp.status() == StatusCode::OK {
            reopened = Some(resp);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(reopened.is_some(), "the place was given back");
}

/// A stream is authorised again at every heartbeat (1 s here): revoking its token ends it.
#[tokio::test]
async fn revoking_a_token_ends_its_open_streams() {
    let h = harness("");
    let acc = h.api.service.create_account("A", "pro").await.unwrap().id;
    let (record, secret) = h
        .api
        .service
        .create_token(&acc, Role::Viewer, NewToken::default(), "operator")
        .await
        .unwrap();
    let resp = h.open("/v1/events", &secret).await;
    assert_eq!(resp.status(), StatusCode::OK);
    h.api
        .service
        .revoke_token("operator", &acc, &record.id)
        .await
        .unwrap();
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), resp.into_body().collect())
        .await
        .expect("the stream ended within a few heartbeats")
        .unwrap()
        .to_bytes();
    assert!(body.starts_with(b"retry: 3000\n\n"), "{body:?}");
    assert_eq!(h.metrics.event_streams.get(), 0);
}

/// Without the operator's switch, a webhook may not point at this machine, a private
/// network or a metadata service, whether by address or by a name that resolves there, and
/// a name that does not resolve is refused too.
#[tokio::test]
async fn webhooks_to_private_places_are_refused_at_registration() {
    let h = harness("");
    let acc = h.api.service.create_account("A", "pro").await.unwrap().id;
    let admin = h.token(&acc, Role::Admin).await;
    for url in [
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://10.0.0.7/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.1.1/hook",
        "https://localhost/hook",
        "https://no-such-host.invalid/hook",
        "http://hooks.example.com/hook",
    ] {
        let (status, _, body) = h
            .send(Method::POST, "/v1/webhooks", &admin, Some(json!({"url": url})))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert_eq!(body["code"], "invalid_webhook_url", "{url}");
    }
    let (status, _, body) = h
        .send(
            Method::POST,
            "/v1/webhooks",
            &admin,
            Some(json!({"url": "https://127.0.0.1/x", "event_types": ["file_eaten"]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _, list) = h.send(Method::GET, "/v1/webhooks", &admin, None).await;
    assert_eq!((status, list["webhooks"].clone()), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn a_failing_store_answers_503_with_retry_after_on_every_path() {
    let h = harness("");
    let acc = h.api.service.create_account("A", "pro").await.unwrap().id;
    let admin = h.token(&acc, Role::Admin).await;
    h.db.broken.store(true, Ordering::SeqCst);
    let settings = json!({"file_upload": {"enabled": false}});
    for (method, path, body) in [
        (Method::GET, "/v1/assistants/desk", None),
        (Method::PUT, "/v1/assistants/desk", Some(settings)),
        (Method::GET, "/v1/audit", None),
        (Method::GET, "/v1/tokens", None),
        (Method::POST, "/v1/calls/c1/upload-links", None),
    ] {
        let (status, headers, body) = h.send(method.clone(), path, &admin, body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method} {path}: {body}");
        assert_eq!(body["code"], "store_unavailable");
        assert_eq!(
            retry_after(&headers),
            Some(crate::problem::UNAVAILABLE_RETRY_SECONDS)
        );
    }
    h.db.broken.store(false, Ordering::SeqCst);
    let (status, _, _) = h.send(Method::GET, "/v1/tokens", &admin, None).await;
    assert_eq!(status, StatusCode::OK, "recovers by itself");
}

#[tokio::test]
async fn the_sms_limit_answers_429_with_its_own_retry_after() {
    let h = harness("[sms]\nmax_per_number_per_hour = 1\n");
    let acc = h.api.service.create_account("A", "pro").await.unwrap().id;
    let admin = h.token(&acc, Role::Admin).await;
    let settings =
        json!({"file_upload": {"enabled": true, "trigger": "When asked", "message": "Upload here"}});
    h.send(Method::PUT, "/v1/assistants/desk", &admin, Some(settings))
        .await;
    let call = json!({"assistant_id": "desk", "caller_number": "+14155550100"});
    h.send(Method::PUT, "/v1/calls/c1", &admin, Some(call)).await;
    let (status, _, _) = h
        .send(Method::POST, "/v1/calls/c1/upload-links", &admin, None)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, headers, body) = h
        .send(Method::POST, "/v1/calls/c1/upload-links", &admin, None)
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&headers).unwrap();
    assert_eq!(Some(wait), body["retry_after_seconds"].as_u64());
    assert!(wait > 3500 && wait <= 3600, "{wait}");
}

/// A resend texts the same link while it works, and a new one when it has ended or when
/// asked; either way the caller gets a link that opens.
#[tokio::test]
async fn a_resend_reuses_a_working_link_and_replaces_an_ended_one() {
    let h = harness("");
    let acc = h.api.service.create_account("A", "pro").await.unwrap().id;
    let admin = h.token(&acc, Role::Admin).await;
    let settings =
        json!({"file_upload": {"enabled": true, "trigger": "When asked", "message": "Upload here"}});
    h.send(Method::PUT, "/v1/assistants/desk", &admin, Some(settings))
        .await;
    let call = json!({"assistant_id": "desk", "caller_number": "+14155550100"});
    h.send(Method::PUT, "/v1/calls/c1", &admin, Some(call)).await;
    let (_, _, first) = h
        .send(Method::POST, "/v1/calls/c1/upload-links", &admin, None)
        .await;
    let first_id = first["id"].as_str().unwrap().to_string();
    let resend = |id: &str| format!("/v1/upload-links/{id}/resend");

    let (status, _, same) = h.send(Method::POST, &resend(&first_id), &admin, None).await;
    assert_eq!(status, StatusCode::CREATED, "{same}");
    assert_eq!(
        (same["id"].as_str(), same["url"].as_str()),
        (Some(first_id.as_str()), first["url"].as_str())
    );
    assert_ne!(same["sms"]["id"], first["sms"]["id"], "a new message");

    let ask = Some(json!({"new_link": true}));
    let (status, _, fresh) = h.send(Method::POST, &resend(&first_id), &admin, ask).await;
    assert_eq!(status, StatusCode::CREATED, "{fresh}");
    let fresh_id = fresh["id"].as_str().unwrap().to_string();
    assert_ne!(fresh_id, first_id);
    assert_eq!(fresh["status"], "active");
    let (_, _, old) = h
        .send(Method::GET, &format!("/v1/upload-links/{first_id}"), &admin, None)
        .await;
    assert_eq!(old["status"], "superseded");

    // Revoked, then resent: a new link, since the revoked one no longer opens.
    h.send(
        Method::DELETE,
        &format!("/v1/upload-links/{fresh_id}"),
        &admin,
        None,
    )
    .await;
    let (status, _, after) = h.send(Method::POST, &resend(&fresh_id), &admin, None).await;
    assert_eq!(status, StatusCode::CREATED, "{after}");
    assert_ne!(after["id"].as_str(), Some(fresh_id.as_str()));
    assert_eq!(after["status"], "active");

    let (status, _, body) = h
        .send(
            Method::POST,
            &resend(&first_id),
            &admin,
            Some(json!({"new": true})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
}

#[tokio::test]
async fn tokens_are_listed_without_secrets_and_revoked_at_once() {
    let h = harness("");
    let acc = h.api.service.create_account("A", "pro").await.unwrap().id;
    let admin = h.token(&acc, Role::Admin).await;
    let body = json!({"role": "integration", "name": "voice, prod", "expires_in_seconds": 86400});
    let (status, _, created) = h.send(Method::POST, "/v1/tokens", &admin, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["name"], "voice, prod");
    assert_eq!(
        created["expires_at"].as_u64().unwrap(),
        created["created_at"].as_u64().unwrap() + 86400
    );

    let (status, _, _) = h.send(Method::GET, "/v1/calls/none", &secret, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the new token works");
    let (status, _, listed) = h.send(Method::GET, "/v1/tokens", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    let tokens = listed["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    let text = listed.to_string();
    assert!(!text.contains(&secret) && !text.contains(&admin) && !text.contains("upg_"));
    assert!(!text.contains("hash"));
    let mine = tokens.iter().find(|t| t["id"] == id.as_str()).unwrap();
    assert_eq!(mine["status"], "active");
    assert!(mine["last_used_at"].as_u64().is_some(), "{mine}");
    let members: Vec<&String> = mine.as_object().unwrap().keys().collect();
    assert_eq!(
        members,
        [
            "created_at",
            "expires_at",
            "id",
            "last_used_at",
            "name",
            "revoked_at",
            "role",
            "status"
        ]
    );

    let (status, _, revoked) = h
        .send(Method::DELETE, &format!("/v1/tokens/{id}"), &admin, None)
        .await;
    assert_eq!(
        (status, revoked["status"].as_str()),
        (StatusCode::OK, Some("revoked"))
    );
    let (status, headers, body) = h.send(Method::GET, "/v1/calls/none", &secret, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    let (status, _, again) = h
        .send(Method::DELETE, &format!("/v1/tokens/{id}"), &admin, None)
        .await;
    assert_eq!(
        (status, again["revoked_at"].clone()),
        (StatusCode::OK, revoked["revoked_at"].clone())
    );
    let (_, _, one) = h
        .send(Method::GET, &format!("/v1/tokens/{id}"), &admin, None)
        .await;
    assert_eq!(one["status"], "revoked");

    for (body, code) in [
        (
            json!({"role": "viewer", "expires_in_seconds": 0}),
            "invalid_expiry",
        ),
        (json!({"role": "viewer", "name": "a\u{202E}b"}), "invalid_name"),
        (
            json!({"role": "viewer", "expires_in_seconds": -5}),
            "invalid_json",
        ),
        (json!({"role": "viewer", "secret": "x"}), "invalid_json"),
    ] {
        let (status, _, answer) = h
            .send(Method::POST, "/v1/tokens", &admin, Some(body.clone()))
            .await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}"
        );
    }
}

#[tokio::test]
async fn denials_are_counted_by_template_and_403s_audited() {
    let h = harness("");
    let a = h.api.service.create_account("A", "pro").await.unwrap().id;
    let b = h.api.service.create_account("B", "pro").await.unwrap().id;
    let viewer = h.token(&a, Role::Viewer).await;
    let admin_b = h.token(&b, Role::Admin).await;
    let (a_admin_id, _) = h
        .api
        .service
        .create_token(&a, Role::Admin, NewToken::default(), "operator")
        .await
        .unwrap();

    let cases = [
        (
            Method::DELETE,
            format!("/v1/tokens/{}", a_admin_id.id),
            viewer.clone(),
            403,
            "/v1/tokens/{token_id}",
        ),
        (
            Method::GET,
            "/v1/audit".to_string(),
            viewer.clone(),
            403,
            "/v1/audit",
        ),
        (
            Method::GET,
            "/v1/files/f_00000000000000000000000000000000/content".into(),
            viewer.clone(),
            403,
            "/v1/files/{file_id}/content",
        ),
        (
            Method::DELETE,
            format!("/v1/tokens/{}", a_admin_id.id),
            admin_b.clone(),
            404,
            "/v1/tokens/{token_id}",
        ),
        (
            Method::GET,
            "/v1/contacts/+14155550100/files".into(),
            "upg_nope".into(),
            401,
            "/v1/contacts/{number}/files",
        ),
        (
            Method::GET,
            "/v1/whatever/+14155550100".into(),
            viewer.clone(),
            404,
            "unmatched",
        ),
    ];
    for (method, path, token, want, _) in &cases {
        let (status, _, body) = h.send(method.clone(), path, token, None).await;
        assert_eq!(status.as_u16(), *want, "{method} {path}: {body}");
    }
    let metrics = h.metrics.render();
    for (_, _, _, status, template) in &cases {
        let line = format!("upgate_control_denied_total{{route=\"{template}\",status=\"{status}\"}}");
        assert!(metrics.contains(&line), "{line} missing in\n{metrics}");
    }
    assert!(!metrics.contains("4155550100"), "no number in a label");
    assert!(!metrics.contains(&a_admin_id.id), "no id in a label");

    let denied: Vec<_> = h
        .api
        .service
        .audit(&a, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "access.denied")
        .collect();
    assert_eq!(denied.len(), 3, "one entry per 403, none for 401/404");
    let viewer_id = match h.api.service.authenticate(&viewer).await.unwrap() {
        Ok(actor) => actor.token_id,
        Err(r) => panic!("{r:?}"),
    };
    for e in &denied {
        assert_eq!(e.actor, viewer_id);
        let templates: Vec<&str> = cases.iter().map(|c| c.4).collect();
        assert!(templates.contains(&e.target.as_str()), "{}", e.target);
        assert_eq!(e.detail["route"], e.target.as_str());
        assert_eq!(e.detail["role"], "viewer");
        assert!(e.detail["permission"].is_string());
    }
    let perms: Vec<&str> = denied
        .iter()
        .map(|e| e.detail["permission"].as_str().unwrap())
        .collect();
    assert_eq!(perms, ["download", "audit", "revoke"], "newest first");
}

#[tokio::test]
async fn a_message_with_hidden_characters_is_refused_over_the_api() {
    let h = harness("");
    let acc = h.api.service.create_account("A", "pro").await.unwrap().id;
    let admin = h.token(&acc, Role::Admin).await;
    for c in [
        '\u{202E}',
        '\u{2066}',
        '\u{200B}',
        '\u{200D}',
        '\u{2060}',
        '\u{2064}',
        '\u{FEFF}',
        '\u{00AD}',
        '\u{061C}',
        '\u{E0041}',
        '\u{0001}',
        '\u{001B}',
        '\u{0085}',
        '\u{009B}',
        '\u{2028}',
    ] {
        let settings = json!({"file_upload": {
            "enabled": true,
            "trigger": "When the caller has photos",
            "message": format!("Upload{c} your photos"),
        }});
        let (status, _, body) = h
            .send(Method::PUT, "/v1/assistants/desk", &admin, Some(settings))
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("message_invalid")),
            "U+{:04X}: {body}",
            c as u32
        );
    }
    let (status, _, _) = h.send(Method::GET, "/v1/assistants/desk", &admin, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing refused was saved");
}

#[tokio::test]
async fn a_provider_error_quoting_the_text_keeps_no_link_token_on_the_call() {
    let h = harness_with("", Some(Arc::new(Parrot)));
    let acc = h.api.service.create_account("A", "pro").await.unwrap().id;
    let admin = h.token(&acc, Role::Admin).await;
    let settings =
        json!({"file_upload": {"enabled": true, "trigger": "When asked", "message": "Upload here"}});
    h.send(Method::PUT, "/v1/assistants/desk", &admin, Some(settings))
        .await;
    let call = json!({"assistant_id": "desk", "caller_number": "+14155550100"});
    h.send(Method::PUT, "/v1/calls/c1", &admin, Some(call)).await;
    let (status, _, link) = h
        .send(Method::POST, "/v1/calls/c1/upload-links", &admin, None)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let url = link["url"].as_str().unwrap();
    let token = url.rsplit('/').next().unwrap();
    let error = link["sms"]["error"].as_str().unwrap();
    assert!(
        error.contains("[hidden]") && error.contains("+14155550100"),
        "{error}"
    );
    let (_, _, view) = h.send(Method::GET, "/v1/calls/c1", &admin, None).await;
    assert!(!view.to_string().contains(token), "{view}");
}

#[test]
fn integral_floats_are_integers_and_fractions_are_refused() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Body {
        n: u32,
        ids: Vec<u64>,
    }
    let body: Body = super::parse_json(br#"{"n": 16.0, "ids": [1.0, 2, 3e2]}"#).unwrap();
    assert_eq!(
        body,
        Body {
            n: 16,
            ids: vec![1, 2, 300]
        }
    );
    for bad in [
        r#"{"n": 16.5, "ids": []}"#,
        r#"{"n": -1.0, "ids": []}"#,
        r#"{"n": 1e30, "ids": []}"#,
    ] {
        let p = super::parse_json::<Body>(bad.as_bytes()).unwrap_err();
        assert_eq!(p.code, "invalid_json", "{bad}");
    }
}

#[test]
fn a_known_path_with_another_method_is_405_with_allow() {
    use super::route::Route;
    use http::Method;
    assert_eq!(
        Route::parse(&Method::TRACE, "/v1/tokens"),
        Route::WrongMethod {
            allow: vec!["GET", "POST"],
            protected: true
        }
    );
    assert_eq!(
        Route::parse(&Method::POST, "/healthz"),
        Route::WrongMethod {
            allow: vec!["GET"],
            protected: false
        }
    );
    assert!(matches!(
        Route::parse(&Method::TRACE, "/v1/nothing"),
        Route::Unmatched { protected: true }
    ));
    let p = crate::problem::Problem::method_not_allowed(&["GET", "PUT"]);
    let resp = super::problem_response(&p);
    assert_eq!(resp.status(), http::StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "GET, PUT");
}

/// Every page of a list, following `next_cursor`: the records' ids in order.
async fn all_pages(h: &Harness, token: &str, path: &str, key: &str, id: &str) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}cursor={c}"),
            None => path.to_string(),
        };
        let (status, _, body) = h.send(Method::GET, &url, token, None).await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        pages += 1;
        ids.extend(body[key].as_array().unwrap().iter().map(|r| r[id].to_string()));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return (ids, pages),
        }
    }
}

#[tokio::test]
async fn calls_files_and_audit_are_listed_newest_first_a_page_at_a_time() {
    use upgate_gateway::control_link::{ControlLink, NewFile, ScanVerdict};
    let h = harness("");
    let svc = &h.api.service;
    let acc = svc.create_account("A", "pro").await.unwrap().id;
    let other = svc.create_account("B", "pro").await.unwrap().id;
    let (admin, viewer, reviewer) = (
        h.token(&acc, Role::Admin).await,
        h.token(&acc, Role::Viewer).await,
        h.token(&acc, Role::Reviewer).await,
    );
    let other_admin = h.token(&other, Role::Admin).await;
    let settings = json!({"file_upload": {"enabled": true, "trigger": "When asked"}});
    for (token, assistant) in [(&admin, "desk"), (&admin, "claims"), (&other_admin, "desk")] {
        let path = format!("/v1/assistants/{assistant}");
        h.send(Method::PUT, &path, token, Some(settings.clone())).await;
    }
    for n in 0..7 {
        let assistant = if n < 5 { "desk" } else { "claims" };
        let call = json!({"assistant_id": assistant, "caller_number": "+14155550100"});
        h.send(Method::PUT, &format!("/v1/calls/c{n}"), &admin, Some(call))
            .await;
    }
    let call = json!({"assistant_id": "desk", "caller_number": "+14155550100"});
    h.send(Method::PUT, "/v1/calls/theirs", &other_admin, Some(call))
        .await;

    // Calls: three pages of three, each call once, newest first (same second: by id).
    let (ids, pages) = all_pages(&h, &viewer, "/v1/calls?limit=3", "calls", "id").await;
    assert_eq!(pages, 3);
    let want: Vec<String> = (0..7).rev().map(|n| format!("\"c{n}\"")).collect();
    assert_eq!(ids, want, "every call of the account once, none of another's");
    let (ids, _) = all_pages(
        &h,
        &viewer,
        "/v1/calls?assistant_id=claims&limit=1",
        "calls",
        "id",
    )
    .await;
    assert_eq!(ids, ["\"c6\"", "\"c5\""]);
    let later = upgate_gateway::sys::now() + 100;
    let (ids, _) = all_pages(&h, &viewer, &format!("/v1/calls?from={later}"), "calls", "id").await;
    assert!(ids.is_empty());
    let (ids, _) = all_pages(&h, &viewer, "/v1/calls?to=1", "calls", "id").await;
    assert!(ids.is_empty());
    // A cursor is a place in the caller's own list only: another account's cursor, or one
    // made up, never shows a record of another account.
    let (_, _, theirs) = h.send(Method::GET, "/v1/calls?limit=1", &other_admin, None).await;
    assert_eq!(theirs["calls"][0]["id"], "theirs");
    for forged in ["_____w", "AAAA", "zzzzzzzzzzzz"] {
        let (status, _, body) = h
            .send(Method::GET, &format!("/v1/calls?cursor={forged}"), &viewer, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(body["calls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != "theirs"));
    }
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=501", "invalid_limit"),
        ("cursor=a", "invalid_cursor"),
        ("cursor=%21", "invalid_cursor"),
        ("sort=asc", "invalid_query"),
        ("from=yesterday", "invalid_query"),
    ] {
        let (status, _, body) = h
            .send(Method::GET, &format!("/v1/calls?{query}"), &viewer, None)
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{query}"
        );
    }

    // Files: two on c1, one held in quarantine on c2; the held one for reviewers only.
    let gw = crate::service::InProcess(svc.clone());
    let mut stored = Vec::new();
    for (at, (call, held)) in [("c1", false), ("c1", false), ("c2", true)]
        .into_iter()
        .enumerate()
    {
        let (_, _, link) = h
            .send(
                Method::POST,
                &format!("/v1/calls/{call}/upload-links"),
                &admin,
                None,
            )
            .await;
        let id = link["id"].as_str().unwrap().parse().unwrap();
        let claim = gw.claim(&id).await.unwrap().unwrap();
        let mut file = NewFile {
            received_at: 1_700_000_000 + at as u64,
            ..crate::repo::links_suite::file()
        };
        if held {
            file = NewFile {
                verdict: ScanVerdict::unscanned("clamd is down".into(), 5),
                ..file
            };
        }
        stored.push(format!("\"{}\"", file.file_id));
        gw.commit(&claim, file).await.unwrap().unwrap();
    }
    let (ids, pages) = all_pages(&h, &reviewer, "/v1/files?limit=2", "files", "id").await;
    assert_eq!(pages, 2);
    assert_eq!(
        ids,
        stored.iter().rev().cloned().collect::<Vec<_>>(),
        "newest first"
    );
    let (ids, _) = all_pages(&h, &viewer, "/v1/files?limit=2", "files", "id").await;
    assert_eq!(
        ids,
        [stored[1].clone(), stored[0].clone()],
        "the held file is the reviewers'"
    );
    let (_, _, theirs) = h.send(Method::GET, "/v1/files", &other_admin, None).await;
    assert_eq!(theirs["files"], json!([]));

    // Calls with and without files, and with a refused upload, filtered in the store: c1
    // has files, c2 only the held one (a file for reviewers only), c4 a refusal.
    let (_, _, link) = h
        .send(Method::POST, "/v1/calls/c4/upload-links", &admin, None)
        .await;
    let refused = upgate_gateway::control_link::Refusal {
        code: upgate_gateway::control_link::RefusalCode::Infected,
        display_name: "x.pdf".into(),
        size: 1,
        verdict: None,
        message: String::new(),
        lang: String::new(),
    };
    gw.refused(&link["id"].as_str().unwrap().parse().unwrap(), refused)
        .await;
    for (token, query, want) in [
        (&viewer, "has_files=true", vec!["c1"]),
        (&reviewer, "has_files=true", vec!["c2", "c1"]),
        (
            &viewer,
            "has_files=false&assistant_id=desk",
            vec!["c4", "c3", "c2", "c0"],
        ),
        (&viewer, "has_refusals=true", vec!["c4"]),
        (&viewer, "has_refusals=true&has_files=true", vec![]),
    ] {
        let (ids, _) = all_pages(&h, token, &format!("/v1/calls?limit=1&{query}"), "calls", "id").await;
        let want: Vec<String> = want.iter().map(|c| format!("\"{c}\"")).collect();
        assert_eq!(ids, want, "{query}");
    }
    let (status, _, _) = h
        .send(Method::GET, "/v1/calls?has_files=yes", &viewer, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The caller's files: the same, newest first; the held one for reviewers only.
    let contact = "/v1/contacts/+14155550100/files";
    let (ids, pages) = all_pages(&h, &reviewer, &format!("{contact}?limit=2"), "files", "id").await;
    assert_eq!(pages, 2);
    assert_eq!(ids, stored.iter().rev().cloned().collect::<Vec<_>>());
    let (ids, _) = all_pages(&h, &viewer, &format!("{contact}?limit=1"), "files", "id").await;
    assert_eq!(ids, [stored[1].clone(), stored[0].clone()]);
    let (ids, _) = all_pages(&h, &other_admin, contact, "files", "id").await;
    assert!(ids.is_empty(), "another account's caller");
    let (ids, _) = all_pages(&h, &reviewer, "/v1/contacts/+14155550101/files", "files", "id").await;
    assert!(ids.is_empty(), "another caller");
    // Quarantine: the held file, for reviewers.
    let (ids, _) = all_pages(&h, &reviewer, "/v1/quarantine?limit=1", "files", "id").await;
    assert_eq!(ids, [stored[2].clone()]);
    let (status, _, _) = h.send(Method::GET, "/v1/quarantine", &admin, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Audit: pages of two cover the whole log once, highest seq first.
    let (seqs, _) = all_pages(&h, &admin, "/v1/audit?limit=2", "entries", "seq").await;
    let (_, _, whole) = h.send(Method::GET, "/v1/audit", &admin, None).await;
    let all: Vec<String> = whole["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].to_string())
        .collect();
    assert!(all.len() > 4 && whole["next_cursor"].is_null());
    assert_eq!(seqs, all);
    let numbers: Vec<u64> = seqs.iter().map(|s| s.parse().unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[0] > w[1]));

    // Filtered in the store, across pages: every entry that matches, and only those.
    let (_, _, whole) = h.send(Method::GET, "/v1/audit", &admin, None).await;
    let entries = whole["entries"].as_array().unwrap();
    for (query, keeps) in [
        (
            "action=file.",
            &(|e: &Value| e["action"].as_str().unwrap().starts_with("file.")) as &dyn Fn(&Value) -> bool,
        ),
        ("actor=gateway", &|e: &Value| e["actor"] == "gateway"),
        ("action=file.store&actor=gateway", &|e: &Value| {
            e["action"] == "file.store"
        }),
    ] {
        let want: Vec<String> = entries
            .iter()
            .filter(|e| keeps(e))
            .map(|e| e["seq"].to_string())
            .collect();
        assert!(!want.is_empty() && want.len() < entries.len(), "{query}");
        let (got, _) = all_pages(
            &h,
            &admin,
            &format!("/v1/audit?limit=1&{query}"),
            "entries",
            "seq",
        )
        .await;
        assert_eq!(got, want, "{query}");
    }
    for (path, code) in [
        ("/v1/audit?action=a%20b", "invalid_query"),
        ("/v1/audit?assistant_id=desk", "invalid_query"),
        ("/v1/calls?action=file.", "invalid_query"),
        ("/v1/files?actor=gateway", "invalid_query"),
    ] {
        let (status, _, body) = h.send(Method::GET, path, &admin, None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{path}"
        );
    }
}

#[tokio::test]
async fn tokens_users_and_sessions_are_paged_for_those_who_may_end_access() {
    let h = harness("");
    let svc = &h.api.service;
    let acc = svc.create_account("A", "pro").await.unwrap().id;
    let other = svc.create_account("B", "pro").await.unwrap().id;
    let admin = h.token(&acc, Role::Admin).await;
    let reviewer = h.token(&acc, Role::Reviewer).await;
    let integration = h.token(&acc, Role::Integration).await;
    let viewer = h.token(&acc, Role::Viewer).await;
    let other_admin = h.token(&other, Role::Admin).await;

    // Tokens: four, by id, two a page; the reviewer sees them as the admin does.
    let (ids, pages) = all_pages(&h, &reviewer, "/v1/tokens?limit=2", "tokens", "id").await;
    assert_eq!((ids.len(), pages), (4, 2));
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 4, "each once");
    let (admin_ids, _) = all_pages(&h, &admin, "/v1/tokens", "tokens", "id").await;
    assert_eq!(admin_ids, ids, "up to 500 without a limit, the same order");

    // Users: three, and one sign-in's session; never a secret.
    let mut made = Vec::new();
    for (email, role) in [
        ("ana@example.com", Role::Admin),
        ("bo@example.com", Role::Viewer),
        ("cy@example.com", Role::Viewer),
    ] {
        made.push(svc.create_user(&acc, email, role, None).await.unwrap());
    }
    svc.create_user(&other, "dee@example.com", Role::Admin, None)
        .await
        .unwrap();
    let token = made[0].signin_url.split_once("token=").unwrap().1;
    let signed = svc
        .redeem_signin_link(token, "correct horse battery staple", "Firefox")
        .await
        .unwrap();
    let (ids, pages) = all_pages(&h, &admin, "/v1/users?limit=1", "users", "id").await;
    assert_eq!(pages, 3);
    let mut want: Vec<String> = made.iter().map(|n| format!("\"{}\"", n.user.id)).collect();
    want.sort();
    let mut got = ids.clone();
    got.sort();
    assert_eq!(got, want, "every user of the account once, none of another's");
    let (_, _, listed) = h.send(Method::GET, "/v1/users", &reviewer, None).await;
    let text = listed.to_string();
    assert!(!text.contains("argon2") && !text.contains("password"), "{text}");
    let ana = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "ana@example.com")
        .unwrap();
    assert_eq!(
        (ana["status"].as_str(), ana["totp"].as_bool()),
        (Some("active"), Some(false))
    );
    let bo = listed["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "bo@example.com")
        .unwrap();
    assert_eq!(bo["status"], "invited");

    let sessions = format!("/v1/users/{}/sessions", made[0].user.id);
    let (_, _, page) = h.send(Method::GET, &sessions, &reviewer, None).await;
    let list = page["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{page}");
    assert_eq!(list[0]["id"], signed.session.id.as_str());
    assert_eq!(
        (list[0]["status"].as_str(), list[0]["browser"].as_str()),
        (Some("active"), Some("Firefox"))
    );
    assert!(!page.to_string().contains(&signed.secret), "never the secret");
    assert!(
        !page.to_string().contains(&signed.session.csrf),
        "never the form token"
    );
    let (_, _, none) = h
        .send(
            Method::GET,
            &format!("/v1/users/{}/sessions", made[1].user.id),
            &admin,
            None,
        )
        .await;
    assert_eq!(none["sessions"], json!([]));

    // Who may not: integration and viewer tokens; another account sees no such user.
    for token in [&integration, &viewer] {
        for path in ["/v1/tokens", "/v1/users", sessions.as_str()] {
            let (status, _, _) = h.send(Method::GET, path, token, None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        }
    }
    for path in [
        sessions.as_str(),
        "/v1/users/usr_00000000000000ff/sessions",
        "/v1/users/nope/sessions",
    ] {
        let (status, _, _) = h.send(Method::GET, path, &other_admin, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _, body) = h.send(Method::GET, "/v1/users?limit=0", &admin, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_limit"))
    );

    // A reviewer ends a session and disables a user over the API, audited as themselves.
    let revoke = format!("{sessions}/{}", signed.session.id);
    let (status, _, ended) = h.send(Method::DELETE, &revoke, &reviewer, None).await;
    assert_eq!(
        (status, ended["status"].as_str()),
        (StatusCode::OK, Some("revoked")),
        "{ended}"
    );
    let still = svc.session(&signed.secret).await.unwrap();
    assert!(still.is_none(), "the browser is signed out");
    for (path, token, want) in [
        (
            format!("{sessions}/ses_00000000000000ff"),
            &reviewer,
            StatusCode::NOT_FOUND,
        ),
        (revoke.clone(), &other_admin, StatusCode::NOT_FOUND),
        (revoke.clone(), &viewer, StatusCode::FORBIDDEN),
    ] {
        let (status, _, _) = h.send(Method::DELETE, &path, token, None).await;
        assert_eq!(status, want, "{path}");
    }
    let disable = format!("/v1/users/{}/disable", made[1].user.id);
    let (status, _, _) = h.send(Method::POST, &disable, &integration, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, bo) = h.send(Method::POST, &disable, &reviewer, None).await;
    assert_eq!(
        (status, bo["status"].as_str()),
        (StatusCode::OK, Some("disabled"))
    );
    let reviewer_id = match svc.authenticate(&reviewer).await.unwrap() {
        Ok(actor) => actor.token_id,
        Err(r) => panic!("{r:?}"),
    };
    let (_, _, log) = h
        .send(Method::GET, "/v1/audit?action=user.disable", &admin, None)
        .await;
    assert_eq!(log["entries"][0]["actor"], reviewer_id.as_str());
    let (_, _, log) = h
        .send(Method::GET, "/v1/audit?action=session.revoke", &admin, None)
        .await;
    assert_eq!(log["entries"][0]["actor"], reviewer_id.as_str());

    // Admins invite: the one-time link in the answer only; reviewers come from the operator.
    let invite = |email: &str, role: &str| json!({"email": email, "role": role});
    let (status, _, new) = h
        .send(
            Method::POST,
            "/v1/users",
            &admin,
            Some(invite("Eve@Example.com", "viewer")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{new}");
    assert_eq!(
        (new["email"].as_str(), new["status"].as_str()),
        (Some("eve@example.com"), Some("invited"))
    );
    assert!(new["signin_url"]
        .as_str()
        .unwrap()
        .contains("/console/welcome?token="));
    let (_, _, listed) = h.send(Method::GET, "/v1/users", &admin, None).await;
    assert!(!listed.to_string().contains("token="), "the link is shown once");
    for (token, body, want, code) in [
        (
            &reviewer,
            invite("f@example.com", "viewer"),
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            &admin,
            invite("f@example.com", "reviewer"),
            StatusCode::FORBIDDEN,
            "reviewer_by_operator",
        ),
        (
            &admin,
            invite("eve@example.com", "admin"),
            StatusCode::CONFLICT,
            "email_taken",
        ),
        (
            &admin,
            invite("not an address", "viewer"),
            StatusCode::BAD_REQUEST,
            "invalid_email",
        ),
        (
            &admin,
            invite("f@example.com", "owner"),
            StatusCode::BAD_REQUEST,
            "unknown_role",
        ),
        (
            &admin,
            json!({"email": "f@example.com"}),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
    ] {
        let (status, _, answer) = h.send(Method::POST, "/v1/users", token, Some(body.clone())).await;
        assert_eq!((status, answer["code"].as_str()), (want, Some(code)), "{body}");
    }

    // A reviewer who finds a leaked token revokes it over the API too.
    let (_, _, tokens) = h.send(Method::GET, "/v1/tokens", &reviewer, None).await;
    let leaked = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "integration")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _, revoked) = h
        .send(Method::DELETE, &format!("/v1/tokens/{leaked}"), &reviewer, None)
        .await;
    assert_eq!(
        (status, revoked["status"].as_str()),
        (StatusCode::OK, Some("revoked"))
    );
    let (status, _, _) = h.send(Method::GET, "/v1/calls/none", &integration, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = h
        .send(
            Method::POST,
            "/v1/tokens",
            &reviewer,
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "creating stays the admins'");
}
