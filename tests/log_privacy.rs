//! Class 10, personal data in logs: a whole flow (accounts and tokens, an assistant, a call
//! with a caller number, a texted link, an upload with a distinctive name, a download, a
//! resend, a revoke, a refused upload, token listing and revocation) with the log at `trace`,
//! then the server's whole output is searched for the number, the link token, every API
//! token, the file names and the message, in every encoding a log line could carry them.
//! Run once with the outbox provider and once with the Twilio stand-in (including a number
//! the carrier refuses, whose error echoes it).

mod common;

use reqwest::StatusCode;
use serde_json::{json, Value};

use common::files::pdf;
use common::logs::{control_requests, leaks, plain};
use common::twilio::{self, TwilioStandIn};
use common::upgate::{upload_file, Api, Upgate};

const NUMBER: &str = "+4915112345678";
const MESSAGE: &str = "Kindly send the Zebra paperwork";
const FILE_NAME: &str = "Quokka-Passport-Scan.pdf";
const REFUSED_NAME: &str = "Wombat-Tax-Return.pdf";

/// What must never reach the log, by label.
struct Secrets {
    personal: Vec<(&'static str, String)>,
    tokens: Vec<(&'static str, String)>,
}

async fn flow(up: &Upgate, number: &str, also_refused_number: Option<&str>) -> Secrets {
    let acc = up.create_account("Privacy Ltd", "pro");
    let admin = Api::new(&up.control, &up.create_token(&acc, "admin"));
    let reviewer = Api::new(&up.control, &up.create_token(&acc, "reviewer"));
    let (status, made) = admin
        .post(
            "/v1/tokens",
            Some(json!({"role": "integration", "name": "voice platform", "expires_in_seconds": 3600})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let integration = Api::new(&up.control, made["token"].as_str().unwrap());
    let (status, body) = admin
        .put(
            "/v1/assistants/desk",
            json!({"file_upload": {
                "enabled": true,
                "trigger": "When the caller has the paperwork",
                "message": MESSAGE,
                "allowed_types": ["application/pdf"],
                "max_file_bytes": 1_000_000,
                "max_files": 3,
                "link_ttl_seconds": 600,
            }}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = integration
        .put(
            "/v1/calls/call-1",
            json!({"assistant_id": "desk", "caller_number": number}),
        )
        .await;
    assert!(status.is_success(), "{body}");

    let issue = |key: &'static str| {
        let api = integration.clone();
        async move {
            let resp = api
                .http
                .post(format!("{}/v1/calls/call-1/upload-links", api.base))
                .bearer_auth(&api.token)
                .header("idempotency-key", key)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::CREATED);
            resp.json::<Value>().await.unwrap()
        }
    };
    let link = issue("privacy-key-1").await;
    assert_eq!(issue("privacy-key-1").await["id"], link["id"], "replayed");
    assert_eq!(link["sms"]["status"], "sent", "{link}");
    let url = link["url"].as_str().unwrap().to_string();
    let link_id = link["id"].as_str().unwrap().to_string();

    let phone = up.gateway_client();
    let page = phone.get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let (status, stored) = upload_file(&phone, &url, FILE_NAME, "application/pdf", pdf("privacy", 0)).await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let (status, _) = upload_file(
        &phone,
        &url,
        REFUSED_NAME,
        "application/pdf",
        b"GIF89a not a pdf".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let file_id = stored["file"]["id"].as_str().unwrap().to_string();

    let (status, files) = reviewer.get(&format!("/v1/contacts/{number}/files")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(files["files"][0]["name"], FILE_NAME);
    let encoded = number.replace('+', "%2B");
    let (status, _) = reviewer.get(&format!("/v1/contacts/{encoded}/files")).await;
    assert_eq!(status, StatusCode::OK);
    let download = reviewer
        .fetch(&format!("/v1/files/{file_id}/content"), None)
        .await;
    assert_eq!(download.status(), StatusCode::OK);
    assert!(download
        .headers()
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("Quokka"));
    let ranged = reviewer
        .fetch(&format!("/v1/files/{file_id}/content"), Some("bytes=0-7"))
        .await;
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    let (status, resent) = integration
        .post(&format!("/v1/upload-links/{link_id}/resend"), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resent}");
    let (_, call) = reviewer.get("/v1/calls/call-1").await;
    assert_eq!(call["caller_number"], number);
    let (status, _) = integration
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/upload-links/{link_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let gone = phone.get(&url).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::GONE);

    // The carrier refuses a number and says which in its error.
    if let Some(refused) = also_refused_number {
        integration
            .put(
                "/v1/calls/call-2",
                json!({"assistant_id": "desk", "caller_number": refused}),
            )
            .await;
        let (status, failed) = integration.post("/v1/calls/call-2/upload-links", None).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(failed["sms"]["status"], "failed", "{failed}");
        assert!(
            failed["sms"]["error"].as_str().unwrap().contains(refused),
            "the call shows it"
        );
    }

    // Denied and refused tokens: none of them may be logged either.
    let stranger = "upg_Zm9yZ2VkLXRva2VuLXRoYXQtZG9lcy1ub3QtZXhpc3Q";
    let (status, _) = Api::new(&up.control, stranger).get("/v1/calls/call-1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = integration.get("/v1/audit").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, listed) = admin.get("/v1/tokens").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 3);
    let (status, _) = admin
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/tokens/{}", made["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = integration.get("/v1/calls/call-1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked at once");
    let (ok, out, err) = up.cli(&["token", "list", "--account", &acc]);
    assert!(ok && out.lines().count() == 3, "{out} {err}");
    let (ok, _, err) = up.cli(&["token", "revoke", made["id"].as_str().unwrap()]);
    assert!(ok, "{err}");

    let token = url.rsplit('/').next().unwrap().to_string();
    let mut personal = vec![
        ("caller number", number.to_string()),
        ("caller number without +", number[1..].to_string()),
        ("national part", number[3..].to_string()),
        ("file name", FILE_NAME.to_string()),
        ("file name stem", FILE_NAME.trim_end_matches(".pdf").to_string()),
        (
            "refused file name",
            REFUSED_NAME.trim_end_matches(".pdf").to_string(),
        ),
        ("message", MESSAGE.to_string()),
        ("message words", "Zebra paperwork".to_string()),
    ];
    if let Some(refused) = also_refused_number {
        personal.push(("refused number", refused.to_string()));
        personal.push(("refused number without +", refused[1..].to_string()));
    }
    Secrets {
        personal,
        tokens: vec![
            ("link token", token),
            ("admin token", admin.token.clone()),
            ("reviewer token", reviewer.token.clone()),
            ("integration token", integration.token.clone()),
            ("unknown token", stranger.to_string()),
        ],
    }
}

fn assert_nothing_leaked(up: &Upgate, secrets: &Secrets, extra: &[(&'static str, String)]) {
    let log = up.logs();
    let text = plain(&log);
    // The test means something only if the log really was at trace and the flow ran.
    assert!(text.contains("TRACE"), "the log is not at trace level");
    assert!(control_requests(&log).len() > 15, "too few request lines");
    assert!(text.contains("SMS"), "no SMS line at all");
    let mut found = leaks(&log, &secrets.personal, None);
    found.extend(leaks(&log, &secrets.tokens, Some(16)));
    found.extend(leaks(&log, extra, Some(12)));
    assert!(
        found.is_empty(),
        "personal data or secrets in the log:\n{}",
        found.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_personal_or_secret_is_logged_even_at_trace_with_the_outbox() {
    let mut up = Upgate::configure("");
    up.start_logging("trace").await;
    let secrets = flow(&up, NUMBER, None).await;
    up.stop();
    let outbox = std::fs::read_to_string(up.data_dir().join("sms-outbox.jsonl")).unwrap();
    assert!(
        outbox.contains(NUMBER) && outbox.contains(MESSAGE),
        "the outbox has them"
    );
    // Where the log must say which number, it says it masked.
    assert!(
        plain(&up.logs()).contains("+49151*****678"),
        "no masked number in the log"
    );
    assert_nothing_leaked(&up, &secrets, &[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_personal_or_secret_is_logged_even_at_trace_with_twilio() {
    let carrier = TwilioStandIn::start().await;
    let mut up = Upgate::configure("");
    let token_file = up.secret("twilio-token", twilio::AUTH_TOKEN);
    up.rewrite_config(&format!(
        "[sms]\nprovider = \"twilio\"\n[sms.twilio]\naccount_sid = \"{}\"\nauth_token_file = {:?}\nfrom = \"{}\"\napi_base = \"{}\"\n",
        twilio::ACCOUNT_SID,
        token_file.display().to_string(),
        twilio::FROM,
        carrier.api_base(),
    ));
    up.start_logging("trace").await;
    let secrets = flow(&up, NUMBER, Some(twilio::INVALID_TO)).await;
    up.stop();
    assert!(carrier
        .sent()
        .iter()
        .any(|m| m.to == NUMBER && m.body.starts_with(MESSAGE)));
    assert!(carrier.violations.lock().unwrap().is_empty());
    let log = plain(&up.logs());
    assert!(log.contains("SMS not sent"), "the failure is logged");
    assert!(log.contains("+1500****001"), "with the number masked");
    assert_nothing_leaked(
        &up,
        &secrets,
        &[("twilio auth token", twilio::AUTH_TOKEN.to_string())],
    );
}
