//! The appliance end to end, as its users meet it: the operator's CLI, the admin's and the
//! voice platform's API, the caller's phone over real TLS, a real clamd, the SMS carrier's
//! wire format, the reviewer's download and audit trail, the security team's metrics.

mod common;

use reqwest::StatusCode;
use serde_json::{json, Value};

use common::clamd::Clamd;
use common::files::{eicar, jpeg, pdf, png, sha256_hex};
use common::twilio::{self, TwilioStandIn};
use common::upgate::{fixture, upload_file as upload, Api, Upgate};

const CALLER: &str = "+14155550123";
const MESSAGE: &str = "Please send your sick leave certificate";

fn assert_caller_sentence(body: &Value) {
    let text = body["detail"].as_str().or(body["message"].as_str()).unwrap_or("");
    assert!(
        text.len() > 20 && text.ends_with('.') || text.ends_with('!'),
        "no sentence for the caller in {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_uploads_through_a_texted_link_and_staff_review_it() {
    let mut clamd = Clamd::start();
    let carrier = TwilioStandIn::start().await;
    let mut up = Upgate::configure("");
    let token_file = up.secret("twilio-token", twilio::AUTH_TOKEN);
    up.rewrite_config(&format!(
        "[scanner]\nclamd = \"unix:{}\"\ntimeout = \"20s\"\n[sms]\nprovider = \"twilio\"\n[sms.twilio]\naccount_sid = \"{}\"\n\
auth_token_file = {:?}\nfrom = \"{}\"\napi_base = \"{}\"\n",
        clamd.socket.display(),
        twilio::ACCOUNT_SID,
        token_file.display().to_string(),
        twilio::FROM,
        carrier.api_base(),
    ));
    let (ok, out, err) = up.cli(&["config", "check"]);
    assert!(ok, "config check: {out} {err}");

    // The operator works while nothing runs (direct store) and while upgate runs (socket).
    let acme = up.create_account("Acme Clinic", "pro");
    up.start().await;
    let admin = Api::new(&up.control, &up.create_token(&acme, "admin"));
    let integration = Api::new(&up.control, &up.create_token(&acme, "integration"));
    let reviewer = Api::new(&up.control, &up.create_token(&acme, "reviewer"));
    let small = up.create_account("Small Shop", "starter");
    let small_admin = Api::new(&up.control, &up.create_token(&small, "admin"));

    let ready = reqwest::get(format!("{}/readyz", up.monitor)).await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["scanner"]["status"], "up", "{ready}");
    assert!(ready["scanner"]["engine"]
        .as_str()
        .unwrap()
        .starts_with("ClamAV "));

    // --- the admin configures the assistant, within the product page's rules -------------
    let settings = json!({"file_upload": {
        "enabled": true,
        "trigger": "When the caller mentions they need to send a sick leave certificate",
        "message": MESSAGE,
        "allowed_types": ["application/pdf", "image/jpeg"],
        "max_file_bytes": 1_048_576,
        "max_files": 5,
        "link_ttl_seconds": 900,
    }});
    let (status, body) = small_admin
        .put("/v1/assistants/front-desk", settings.clone())
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("plan_lacks_sms")),
        "{body}"
    );
    let (status, _) = small_admin
        .put(
            "/v1/assistants/front-desk",
            json!({"file_upload": {"enabled": false}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, body) = small_admin.get("/v1/assistants/front-desk").await;
    assert_eq!(body["file_upload"]["available"], false);
    assert!(body["file_upload"]["unavailable_reason"]
        .as_str()
        .unwrap()
        .contains("plan"));

    let mut bad = settings.clone();
    bad["file_upload"]["message"] = json!("Upload here: https://example.com/x");
    let (status, body) = admin.put("/v1/assistants/front-desk", bad).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("message_contains_link"))
    );
    let mut bad = settings.clone();
    bad["file_upload"]["message"] = json!("x".repeat(101));
    let (_, body) = admin.put("/v1/assistants/front-desk", bad).await;
    assert_eq!(body["code"], "message_too_long");
    let mut bad = settings.clone();
    bad["file_upload"]["trigger"] = json!(null);
    let (_, body) = admin.put("/v1/assistants/front-desk", bad).await;
    assert_eq!(body["code"], "trigger_required");
    let (status, _) = integration
        .put("/v1/assistants/front-desk", settings.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only admins change settings");

    let (status, body) = admin.put("/v1/assistants/front-desk", settings.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["file_upload"]["available"], true);
    assert_eq!(body["sms_preview"]["encoding"], "GSM-7");
    let tool = body["tool"]["function"]["description"].as_str().unwrap();
    assert!(
        tool.contains("sick leave certificate"),
        "the voice platform's LLM gets the trigger: {tool}"
    );
    assert_eq!(body["sms_preview"]["segments"], 1);
    assert!(body["sms_preview"]["text"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{MESSAGE} https://127.0.0.1:")));

    // --- the voice platform creates the call and asks for a link --------------------------
    let (status, body) = integration
        .put(
            "/v1/calls/call-0001",
            json!({"assistant_id": "front-desk", "caller_number": "0155 555"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_phone_number"))
    );
    let (status, _) = integration
        .put(
            "/v1/calls/call-0001",
            json!({"assistant_id": "front-desk", "caller_number": CALLER}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, link) = integration.post("/v1/calls/call-0001/upload-links", None).await;
    assert_eq!(status, StatusCode::CREATED, "{link}");
    assert_eq!(link["status"], "active");
    assert_eq!(link["sms"]["status"], "sent");
    assert!(link["sms"]["provider_id"].as_str().unwrap().starts_with("SM"));
    let url = link["url"].as_str().unwrap().to_string();
    let token = url.rsplit('/').next().unwrap().to_string();
    assert!(token.len() <= 44);

    // The carrier got exactly "message + space + URL" for the caller, from our number.
    assert!(
        carrier.violations.lock().unwrap().is_empty(),
        "{:?}",
        carrier.violations
    );
    let sent = carrier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, CALLER);
    assert_eq!(sent[0].from, twilio::FROM);
    assert_eq!(sent[0].body, format!("{MESSAGE} {url}"));
    let url = sent[0].body.rsplit(' ').next().unwrap().to_string();

    // --- the caller opens the link: a page, and opening it spends nothing ----------------
    // The texted link hands its token to a cookie for this link alone and moves on to an
    // address without it; the page there needs the cookie.
    let phone = up.gateway_client();
    let token = url.rsplit('/').next().unwrap().to_string();
    let origin = url[..url.find("/u/").unwrap()].to_string();
    for _ in 0..3 {
        let opened = phone.get(&url).send().await.unwrap();
        assert_eq!(opened.status(), 200);
        let cookie = opened.headers()["set-cookie"].to_str().unwrap().to_string();
        for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/u/s/"] {
            assert!(cookie.contains(flag), "{cookie}");
        }
        let pair = cookie.split(';').next().unwrap().to_string();
        assert!(pair.ends_with(&format!("={token}")), "{cookie}");
        let html = opened.text().await.unwrap();
        let target = html
            .split("content=\"0;url=")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a refresh to the token-free page")
            .replace("&amp;", "&");
        assert!(
            target.starts_with("/u/s/") && !target.contains(&token),
            "{target}"
        );

        let page = phone
            .get(format!("{origin}{target}"))
            .header("cookie", &pair)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["referrer-policy"], "no-referrer");
        assert!(page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'"));
        let html = page.text().await.unwrap();
        assert!(html.contains(MESSAGE));
        assert!(!html.contains(&token), "the page never shows the token");
        assert!(html.contains("accept=\"application/pdf,image/jpeg\""));
        assert!(html.contains("capture=\"environment\""));
        // Without the cookie (a forwarded address, another browser): not a valid link.
        let bare = phone.get(format!("{origin}{target}")).send().await.unwrap();
        assert_eq!(bare.status(), 404);
    }
    let head = phone.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);

    // --- uploads: what is kept, what is refused, each with words for the caller ----------
    let certificate = pdf("Sick leave certificate: J. Doe, 24-28 Nov", 2000);
    let (status, body) = upload(
        &phone,
        &url,
        "certificate.pdf",
        "application/pdf",
        certificate.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}\n{}", up.logs());
    assert_eq!(body["file"]["type"], "application/pdf");
    assert_eq!(body["file"]["sha256"], sha256_hex(&certificate));
    assert_eq!(body["file"]["scan"]["status"], "clean");
    assert_caller_sentence(&body);
    let pdf_id = body["file"]["id"].as_str().unwrap().to_string();

    let photo = jpeg(640, 480);
    let (status, body) = upload(
        &phone,
        &url,
        "../../IMG_0042\u{202e}gpj.exe.jpg",
        "image/jpeg",
        photo.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let jpeg_id = body["file"]["id"].as_str().unwrap().to_string();
    let shown = body["file"]["name"].as_str().unwrap();
    assert!(!shown.contains('/') && !shown.contains('\u{202e}'), "{shown}");

    let infected = pdf(&eicar(), 0);
    let (status, body) = upload(&phone, &url, "scan.pdf", "application/pdf", infected).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("infected")),
        "{body}"
    );
    assert_caller_sentence(&body);
    let marked = pdf("UPGATE-TEST-SIGNATURE-7f3a9c", 0);
    let (_, body) = upload(&phone, &url, "marked.pdf", "application/pdf", marked).await;
    assert_eq!(
        body["code"], "infected",
        "our own signature is in clamd's database: {body}"
    );

    let (status, body) = upload(&phone, &url, "eicar.com", "application/pdf", eicar().into_bytes()).await;
    assert_eq!(
        status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "a bare EICAR file is no PDF: {body}"
    );
    let (status, body) = upload(&phone, &url, "screenshot.png", "image/png", png(64, 64)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("type_not_allowed"))
    );
    assert!(body["detail"].as_str().unwrap().contains("PDF or JPEG"), "{body}");
    let (status, body) = upload(&phone, &url, "page.jpg", "image/jpeg", fixture("html-named.jpg")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    let (status, body) = upload(&phone, &url, "broken.jpg", "image/jpeg", fixture("truncated.jpg")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = upload(&phone, &url, "big.pdf", "application/pdf", pdf("big", 1_500_000)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("file_too_large")),
        "{body}"
    );
    assert_caller_sentence(&body);

    // Nothing refused is on disk, in the spool or on the record; the link is still open.
    let spool: Vec<_> = std::fs::read_dir(up.data_dir().join("spool")).unwrap().collect();
    assert!(spool.is_empty(), "spool leftovers: {spool:?}");
    let (_, call) = integration.get("/v1/calls/call-0001").await;
    assert_eq!(call["links"][0]["status"], "active");
    assert_eq!(call["links"][0]["files_received"], 2);
    let files = call["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert!(files.iter().all(
        |f| f["scan"]["status"] == "clean" && f["scan"]["engine"].as_str().unwrap().starts_with("ClamAV")
    ));
    assert_eq!(call["sms"][0]["status"], "sent");
    let refused: Vec<&Value> = call["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "upload_refused")
        .collect();
    let codes: Vec<&str> = refused
        .iter()
        .map(|e| e["detail"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "infected",
            "infected",
            "type_not_allowed",
            "type_not_allowed",
            "type_not_allowed",
            "content_invalid"
        ],
        "every refused file is on the call: {call}"
    );
    assert_eq!(
        refused[0]["detail"]["scan"]["detail"],
        "Upgate.Test.EICAR.UNOFFICIAL"
    );
    assert_eq!(refused[0]["detail"]["name"], "scan.pdf");
    assert_eq!(refused[3]["detail"]["name"], "screenshot.png");
    let objects = walk(&up.data_dir().join("objects"));
    let is_sidecar = |p: &std::path::PathBuf| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        name.ends_with(".thumb") || name.ends_with(".preview")
    };
    let (sidecars, objects): (Vec<_>, Vec<_>) = objects.into_iter().partition(is_sidecar);
    assert_eq!(
        objects.len(),
        2,
        "only the two clean files are stored: {objects:?}"
    );
    // The image among them has its thumbnail and preview beside it; the PDF none.
    assert_eq!(sidecars.len(), 2, "{sidecars:?}");
    for object in &objects {
        let sealed = std::fs::read(object).unwrap();
        assert!(
            !contains(&sealed, b"Sick leave certificate"),
            "stored bytes are sealed"
        );
    }

    // --- staff: the contact's files, metadata, a byte-exact download, the audit trail -----
    let (_, contact) = reviewer.get(&format!("/v1/contacts/{CALLER}/files")).await;
    let ids: Vec<&str> = contact["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&pdf_id.as_str()) && ids.contains(&jpeg_id.as_str()));
    let (status, meta) = integration.get(&format!("/v1/files/{pdf_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(meta["size"], certificate.len());
    assert_eq!(meta["name"], "certificate.pdf");

    let (status, _) = integration.get(&format!("/v1/files/{pdf_id}/content")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "downloads are for reviewers");
    let resp = reviewer.fetch(&format!("/v1/files/{pdf_id}/content"), None).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-security-policy"].to_str().unwrap().contains("sandbox"));
    assert!(h["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        certificate.as_slice(),
        "byte-exact download"
    );
    let resp = reviewer
        .fetch(&format!("/v1/files/{jpeg_id}/content"), Some("bytes=100-4999"))
        .await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        resp.headers()["content-range"],
        format!("bytes 100-4999/{}", photo.len())
    );
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &photo[100..5000]);

    let (_, audit) = reviewer.get("/v1/audit").await;
    let downloads: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "file.download")
        .collect();
    assert_eq!(downloads.len(), 2, "{audit}");
    assert!(downloads.iter().any(|e| e["target"] == pdf_id.as_str()));
    assert!(downloads
        .iter()
        .all(|e| e["actor"].as_str().unwrap().starts_with("tok_")));

    // Another account sees none of it: 404, not 403.
    for path in [
        "/v1/calls/call-0001".to_string(),
        format!("/v1/files/{pdf_id}"),
        "/v1/assistants/front-desk-x".into(),
    ] {
        let (status, _) = small_admin.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (_, theirs) = small_admin.get(&format!("/v1/contacts/{CALLER}/files")).await;
    assert_eq!(theirs["files"].as_array().unwrap().len(), 0);

    // --- the caller finishes; the link is then used, and says so -------------------------
    let done = phone.post(format!("{url}/done")).send().await.unwrap();
    assert_eq!(done.status(), 200);
    let page = phone.get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::GONE);
    assert!(page.text().await.unwrap().contains("already been used"));
    let (status, body) = upload(&phone, &url, "late.pdf", "application/pdf", pdf("late", 0)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::GONE, Some("link_gone"))
    );

    // A newer link supersedes an older one; a revoked one says so; forgeries say "not valid".
    let (_, second) = integration.post("/v1/calls/call-0001/upload-links", None).await;
    let (_, third) = integration.post("/v1/calls/call-0001/upload-links", None).await;
    let second_url = second["url"].as_str().unwrap();
    let page = phone.get(second_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::GONE);
    assert!(page.text().await.unwrap().contains("newer link"));
    let (status, revoked) = integration
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/upload-links/{}", third["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        (status, revoked["status"].as_str()),
        (StatusCode::OK, Some("revoked"))
    );
    let page = phone.get(third["url"].as_str().unwrap()).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("cancelled"));
    let mut forged = token.clone().into_bytes();
    forged[20] = if forged[20] == b'A' { b'B' } else { b'A' };
    let forged = format!(
        "https://127.0.0.1:{}/u/{}",
        up.gateway_port,
        String::from_utf8(forged).unwrap()
    );
    let page = phone.get(&forged).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.text().await.unwrap().contains("Link not valid"));

    // A carrier refusal leaves the link issued and the failure visible on the call.
    integration
        .put(
            "/v1/calls/call-0002",
            json!({"assistant_id": "front-desk", "caller_number": twilio::INVALID_TO}),
        )
        .await;
    let (status, link2) = integration.post("/v1/calls/call-0002/upload-links", None).await;
    assert_eq!(status, StatusCode::CREATED, "{link2}");
    assert_eq!(link2["status"], "active");
    assert_eq!(link2["sms"]["status"], "failed");
    assert!(link2["sms"]["error"].as_str().unwrap().contains("21211"));
    let (_, call2) = integration.get("/v1/calls/call-0002").await;
    assert_eq!(call2["sms"][0]["status"], "failed");
    let (status, resent) = integration
        .post(
            &format!("/v1/upload-links/{}/resend", link2["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(resent["sms"]["status"], "failed");

    // --- the security team's metrics: counts by outcome, no secrets -----------------------
    let metrics = up.metrics().await;
    for line in [
        "upgate_uploads_total{outcome=\"stored\"} 2",
        "upgate_uploads_total{outcome=\"infected\"} 2",
        "upgate_uploads_total{outcome=\"file_too_large\"} 1",
        "upgate_scans_total{verdict=\"clean\"} 2",
        "upgate_scanner_up 1",
        "upgate_sms_total{status=\"sent\"} 3",
        "upgate_sms_total{status=\"failed\"} 2",
        "upgate_downloads_total 2",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    assert!(metrics.contains("upgate_link_checks_total{result=\"invalid\"}"));
    assert!(!metrics.contains(&token), "no token in metrics");

    // --- the scanner goes away: fail closed, the link stays usable ------------------------
    integration
        .put(
            "/v1/calls/call-0003",
            json!({"assistant_id": "front-desk", "caller_number": CALLER}),
        )
        .await;
    let (_, link3) = integration.post("/v1/calls/call-0003/upload-links", None).await;
    let url3 = link3["url"].as_str().unwrap().to_string();
    clamd.stop();
    let (status, body) = upload(&phone, &url3, "later.pdf", "application/pdf", pdf("later", 0)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("scanner_unavailable")),
        "{body}"
    );
    assert!(body["detail"].as_str().unwrap().contains("link still works"));
    let (_, call3) = integration.get("/v1/calls/call-0003").await;
    assert_eq!(call3["links"][0]["status"], "active");
    assert_eq!(call3["links"][0]["files_received"], 0);
    assert_eq!(call3["files"].as_array().unwrap().len(), 0);
    let ready = reqwest::get(format!("{}/readyz", up.monitor)).await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        ready.headers().contains_key("retry-after"),
        "every 503 says when to retry"
    );

    // No token or API secret ever reached the logs.
    up.stop();
    let logs = up.logs();
    assert!(logs.contains("upgate is running"));
    for secret in [token.as_str(), &admin.token, &reviewer.token, twilio::AUTH_TOKEN] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if !path.file_name().unwrap().to_string_lossy().starts_with('.') {
            out.push(path);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
