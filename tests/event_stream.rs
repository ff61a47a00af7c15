//! The voice platform follows a call live: the real binary, a real clamd, real TLS to the
//! caller's page, and an SSE client on the control API. It hears each change as it
//! happens, resumes after the last id without gaps or duplicates, and the stream ends when
//! the call's links have.

mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::clamd::Clamd;
use common::files::{eicar, pdf, png};
use common::scene::{scene, settings, Scene};
use common::sse::{self, Frame, Sse};
use common::upgate::{upload_file, Api, Upgate};

const SOON: Duration = Duration::from_secs(10);

fn event(frame: &Frame) -> (u64, &str, &Value) {
    match frame {
        Frame::Event { id, event, data } => (id.expect("every logged event has an id"), event, data),
        other => panic!("not an event: {other:?}"),
    }
}

/// Reads events until one of `kind`; returns it and the ids of all read.
async fn until(stream: &mut Sse, kind: &str, ids: &mut Vec<u64>) -> Value {
    loop {
        let frame = stream
            .event(SOON)
            .await
            .unwrap_or_else(|| panic!("ended before {kind}"));
        let (id, event, data) = event(&frame);
        assert_eq!(data["kind"], event, "the event name is the record's kind");
        assert_eq!(data["id"], id, "the SSE id is the record's id");
        ids.push(id);
        if event == kind {
            return data.clone();
        }
    }
}

/// Opens the texted link as a phone's browser does: the hand-over, then the page with the
/// link's cookie.
async fn open_page(up: &Upgate, url: &str) {
    let phone = up.gateway_client();
    let opened = phone.get(url).send().await.unwrap();
    assert_eq!(opened.status(), 200);
    let pair = opened.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = opened.text().await.unwrap();
    let target = html
        .split("content=\"0;url=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let origin = &url[..url.find("/u/").unwrap()];
    let page = phone
        .get(format!("{origin}{target}"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
}

async fn started(clamd: &Clamd, extra: &str) -> (Upgate, Scene) {
    let mut up = Upgate::configure("");
    // A heartbeat every second, so the test sees one soon.
    let text = std::fs::read_to_string(&up.config).unwrap();
    std::fs::write(
        &up.config,
        text.replace("[control]\n", "[control]\nevent_heartbeat = \"1s\"\n"),
    )
    .unwrap();
    up.rewrite_config(&format!(
        "[scanner]\nclamd = \"unix:{}\"\ntimeout = \"20s\"\n{extra}",
        clamd.socket.display()
    ));
    up.start().await;
    let scene = scene(&up, settings(3, 5 << 20)).await;
    (up, scene)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assistant_hears_each_file_stored_or_refused_while_the_caller_uploads() {
    let clamd = Clamd::start();
    let (up, scene) = started(&clamd, "").await;
    let (url, link_id) = scene.link("call-1").await;
    let phone = up.gateway_client();

    let (status, stream) = sse::open(&scene.integration, "/v1/calls/call-1/events", None).await;
    assert_eq!(status, 200);
    let mut stream = stream.unwrap();
    assert!(matches!(stream.next(SOON).await, Some(Frame::Retry(3000))));
    let mut ids = Vec::new();
    // What happened before the stream opened comes first.
    let issued = until(&mut stream, "link_issued", &mut ids).await;
    assert_eq!(issued["detail"]["link_id"], link_id);
    assert_eq!(issued["call_id"], "call-1");
    until(&mut stream, "sms_sent", &mut ids).await;
    // Nothing happens: a heartbeat keeps the connection (1 s here).
    match stream.next(Duration::from_secs(5)).await {
        Some(Frame::Comment(c)) => assert_eq!(c, "heartbeat"),
        other => panic!("expected a heartbeat, got {other:?}"),
    }

    // The caller opens the page twice: opened once.
    open_page(&up, &url).await;
    open_page(&up, &url).await;
    let opened = until(&mut stream, "link_opened", &mut ids).await;
    assert_eq!(opened["detail"]["link_id"], link_id);

    // A clean PDF: started, then stored, before or as the caller is answered.
    let (status, body) = upload_file(
        &phone,
        &url,
        "sick-note.pdf",
        "application/pdf",
        pdf("note", 20_000),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let answered = Instant::now();
    until(&mut stream, "upload_started", &mut ids).await;
    let stored = until(&mut stream, "file_stored", &mut ids).await;
    let heard_after = answered.elapsed();
    assert_eq!(stored["detail"]["file_id"], body["file"]["id"]);
    assert_eq!(stored["detail"]["type"], "application/pdf");
    assert_eq!(stored["detail"]["scan"]["status"], "clean");
    let stored_id = *ids.last().unwrap();

    // EICAR: refused as infected, with the very sentence the caller was shown.
    let (status, refusal) =
        upload_file(&phone, &url, "invoice.pdf", "application/pdf", pdf(&eicar(), 0)).await;
    assert_eq!(status, 422, "{refusal}");
    let refused = until(&mut stream, "upload_refused", &mut ids).await;
    assert_eq!(refused["detail"]["code"], "infected");
    assert_eq!(refused["detail"]["message"], refusal["detail"], "{refused}");
    assert_eq!(refused["detail"]["lang"], "en");
    assert_eq!(refused["detail"]["name"], "invoice.pdf");
    // A type the assistant does not take: the reason the caller read, too.
    let (status, refusal) = upload_file(&phone, &url, "photo.png", "image/png", png(40, 40)).await;
    assert_eq!(status, 415, "{refusal}");
    let refused = until(&mut stream, "upload_refused", &mut ids).await;
    assert_eq!(refused["detail"]["code"], "type_not_allowed");
    assert_eq!(refused["detail"]["message"], refusal["detail"]);
    assert!(
        refused["detail"]["message"].as_str().unwrap().contains("PDF"),
        "{refused}"
    );

    // "I'm finished": the link ends, and with it the call's stream.
    let done = phone
        .post(format!("{url}/done"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    until(&mut stream, "link_finished", &mut ids).await;
    match stream.next(SOON).await {
        Some(Frame::Event {
            id: None,
            event,
            data,
        }) => {
            assert_eq!(event, "end");
            assert_eq!(data["reason"], "links_ended");
        }
        other => panic!("expected the end, got {other:?}"),
    }
    assert!(stream.next(SOON).await.is_none(), "the server closes the stream");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids ascend: {ids:?}");
    println!("file_stored reached the stream {heard_after:?} after the caller's answer");

    // Resumed after the stored file: exactly the rest, no gap, no repeat; then the end.
    let (_, resumed) = sse::open(&scene.integration, "/v1/calls/call-1/events", Some(stored_id)).await;
    let mut resumed = resumed.unwrap();
    let mut rest = Vec::new();
    until(&mut resumed, "link_finished", &mut rest).await;
    let after: Vec<u64> = ids.iter().copied().filter(|&i| i > stored_id).collect();
    assert_eq!(rest, after);
    assert_eq!(resumed.event(SOON).await.unwrap().kind(), "end");
    // Resumed after the last: nothing more will come, and 204 tells an EventSource so.
    let (status, _) = sse::open(&scene.integration, "/v1/calls/call-1/events", ids.last().copied()).await;
    assert_eq!(status, 204);

    // The account's stream holds the same events under the same ids.
    let (_, account) = sse::open(&scene.reviewer, "/v1/events", None).await;
    let mut account = account.unwrap();
    let mut all = Vec::new();
    until(&mut account, "link_finished", &mut all).await;
    assert_eq!(all, ids);
    drop(account);

    // Who may follow, and what a bad resume point gets.
    let other = up.create_account("Other", "pro");
    let stranger = Api::new(&up.control, &up.create_token(&other, "integration"));
    assert_eq!(sse::open(&stranger, "/v1/calls/call-1/events", None).await.0, 404);
    let nobody = Api::new(&up.control, "not-a-token");
    assert_eq!(sse::open(&nobody, "/v1/events", None).await.0, 401);
    let bad = scene
        .integration
        .http
        .get(format!("{}/v1/events", up.control))
        .bearer_auth(&scene.integration.token)
        .header("last-event-id", "seven")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let problem: Value = bad.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_last_event_id");
}

/// A call the caller never acts on: its stream ends when the link's lifetime runs out
/// (the shortest an assistant may set, 60 s), with the expiry marked unused. Another
/// account's stream, open all along, hears none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_link_expires_into_the_stream_and_ends_it() {
    let clamd = Clamd::start();
    let (up, scene) = started(&clamd, "").await;
    let mut quick = settings(1, 1 << 20);
    quick["file_upload"]["link_ttl_seconds"] = json!(60);
    let (status, body) = scene.admin.put("/v1/assistants/desk", quick).await;
    assert!(status.is_success(), "{body}");
    let other = up.create_account("Other", "pro");
    let theirs = Api::new(&up.control, &up.create_token(&other, "viewer"));
    let (_, their_stream) = sse::open(&theirs, "/v1/events", None).await;
    let mut their_stream = their_stream.unwrap();

    let (_, link_id) = scene.link("quiet").await;
    let (_, stream) = sse::open(&scene.integration, "/v1/calls/quiet/events", None).await;
    let mut stream = stream.unwrap();
    let mut ids = Vec::new();
    until(&mut stream, "sms_sent", &mut ids).await;
    let waited = Instant::now();
    let expired = loop {
        match stream.next(Duration::from_secs(90)).await {
            Some(Frame::Event { event, data, .. }) if event == "link_expired" => break data,
            Some(Frame::Comment(_)) => continue,
            other => panic!("expected the expiry, got {other:?}"),
        }
    };
    assert_eq!(expired["detail"]["link_id"], link_id);
    assert_eq!(expired["detail"]["unused"], true);
    assert_eq!(expired["detail"]["files_stored"], 0);
    assert!(
        waited.elapsed() < Duration::from_secs(70),
        "{:?}",
        waited.elapsed()
    );
    assert_eq!(stream.event(SOON).await.unwrap().kind(), "end");
    assert!(stream.next(SOON).await.is_none());
    let (_, view) = scene
        .integration
        .get(&format!("/v1/upload-links/{link_id}"))
        .await;
    assert_eq!(view["status"], "expired", "{view}");

    // Heartbeats only: not one of the other account's events.
    for _ in 0..2 {
        assert!(matches!(
            their_stream.next(SOON).await,
            Some(Frame::Retry(_) | Frame::Comment(_))
        ));
    }
}
