//! `POST /u/{token}/files` as a request: claim a slot, feed the multipart body to an upload
//! session, settle it (scan, store, record), and map the outcome to a response; the slot goes
//! back on every failure. The work runs in its own task: a caller who hangs
//! up mid-scan drops the connection's future, and the claim must still be settled.

use std::sync::Arc;

use http::{header, HeaderMap, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::{control_down, Answer, Form};
use crate::body;
use crate::control_link::{ControlError, LeaseKeeper, LinkState};
use crate::i18n::fill;
use crate::page;
use crate::respond::{self, Resp};
use crate::state::Gateway;
use crate::token::Claims;
use crate::upload::{self, UploadError};

/// Answers without reading a body we refused, draining it in the background so the
/// caller sees the answer (unless they asked to wait with `Expect: 100-continue`).
pub(super) fn refuse_body(gw: &Gateway, req: Request<Incoming>, resp: Resp) -> Resp {
    let (parts, body) = req.into_parts();
    refuse_unread(gw, &parts.headers, body, resp)
}

pub(super) fn refuse_unread(gw: &Gateway, headers: &HeaderMap, body: Incoming, resp: Resp) -> Resp {
    let expects_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !expects_continue {
        body::drain(body, gw.pace);
    }
    resp
}

pub(super) fn upload_problem(gw: &Gateway, e: &UploadError, how: &Answer) -> Resp {
    gw.metrics.uploads.with_label_values(&[e.code()]).inc();
    match e {
        UploadError::Internal(detail) | UploadError::ScannerUnavailable(detail) => {
            tracing::error!(code = e.code(), %detail, "upload failed on our side")
        }
        UploadError::DiskLow(low) => tracing::error!(%low, "upload refused: the disk is (nearly) full"),
        _ => tracing::info!(code = e.code(), reason = %e, "upload refused"),
    }
    let t = how.text();
    match how.form {
        Form::Json => respond::problem(e.status(), e.code(), &e.caller_message(t)),
        Form::Page => respond::html(
            e.status(),
            page::result_page(how.lang, t.title_not_sent, &e.caller_message(t), &how.page, true),
        ),
    }
}

/// The settling task asks for the body by handing over the sender to feed it through.
type WantBody = oneshot::Sender<mpsc::Sender<Result<body::Piece, body::BodyError>>>;

pub(super) async fn upload(gw: Arc<Gateway>, claims: Claims, req: Request<Incoming>, how: Answer) -> Resp {
    let (parts, body) = req.into_parts();
    let (want_tx, want_rx) = oneshot::channel();
    // The settling task logs in this request's span, so its lines carry the request id.
    let mut task = tokio::spawn({
        let (gw, headers) = (gw.clone(), parts.headers.clone());
        async move { settle(&gw, &claims, &headers, want_tx, &how).await }
            .instrument(tracing::Span::current())
    });
    // The body is read here, in the connection's own task, and only once the upload asks for
    // it: reading it is what sends `100 Continue`, which a refusal before that must not; and
    // hyper hands over frames to this task without a wake-up of another one per frame.
    let tx = tokio::select! {
        answer = &mut task => return refuse_unread(&gw, &parts.headers, body, joined(answer)),
        want = want_rx => match want {
            Ok(tx) => tx,
            Err(_) => return refuse_unread(&gw, &parts.headers, body, joined(task.await)),
        },
    };
    let mut feeding = Box::pin(body::Reader::new(body, gw.pace).feed(tx));
    tokio::select! {
        answer = &mut task => {
            // Answered before the body ended (a refusal mid-stream): drain the rest elsewhere.
            tokio::spawn(feeding.instrument(tracing::Span::current()));
            joined(answer)
        }
        () = &mut feeding => joined(task.await),
    }
}

fn joined(answer: Result<Resp, tokio::task::JoinError>) -> Resp {
    answer.unwrap_or_else(|e| {
        tracing::error!(error = %e, "upload task failed");
        respond::problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side. Please try again in a moment.",
        )
    })
}

/// Everything about one upload but reading its bytes. Refusals before the body was wanted
/// return at once (the caller's task drains or leaves the body).
async fn settle(gw: &Gateway, claims: &Claims, headers: &HeaderMap, want: WantBody, how: &Answer) -> Resp {
    let started = std::time::Instant::now();
    // The link first: a caller on an ended link learns that, whatever else is wrong.
    let view = match gw.link(&claims.link_id).await {
        Ok(view) => view,
        Err(e) => return control_down(e, how),
    };
    if view.state != LinkState::Active {
        return upload_problem(gw, &UploadError::LinkGone(view.state), how);
    }
    let boundary = match upload::request_boundary(headers) {
        Ok(boundary) => boundary,
        Err(e) => return upload_problem(gw, &e, how),
    };
    // Content-Length over the limit: refused before reading the body.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let limit = view.max_file_bytes.min(upload::MULTIPART_MAX_FILE_BYTES);
    if declared.is_some_and(|len| len > limit + upload::MULTIPART_OVERHEAD) {
        return upload_problem(gw, &UploadError::TooLarge { limit }, how);
    }
    // Room for the whole file before a byte is read: a disk that fills mid-upload fails late.
    let room = match gw.disk.reserve(declared.unwrap_or(limit)) {
        Ok(room) => room,
        Err(low) => return upload_problem(gw, &UploadError::DiskLow(low), how),
    };
    // One key set for the whole upload: a rotation meanwhile takes effect with the next one.
    // (The token was checked with keys, and keys are never taken away once they came.)
    let Some(keys) = gw.keys.current() else {
        let missing = ControlError::Unavailable("no keys from the control plane yet".into());
        return control_down(missing, how);
    };
    let claim = match gw.control.claim(&claims.link_id).await {
        Ok(Ok(claim)) => claim,
        Ok(Err(state)) => return upload_problem(gw, &UploadError::LinkGone(state), how),
        Err(e) => return control_down(e, how),
    };
    let limits = upload::Limits {
        max_file_bytes: limit,
        allowed: view.allowed.clone(),
        decoders: gw.decoders.clone(),
    };
    let (tx, stream) = body::BodyStream::channel();
    if want.send(tx).is_err() {
        gw.control.release(&claim).await;
        return upload_problem(
            gw,
            &UploadError::Interrupted("the connection went away".into()),
            how,
        );
    }
    let recipient = claim.seal_for(keys.storage);
    let lease = LeaseKeeper::start(gw.control.clone(), claim.clone());
    let mut seen = upload::Seen::default();
    let received = upload::receive(
        stream,
        boundary,
        &limits,
        &gw.spool_dir,
        room,
        &recipient,
        &mut seen,
    )
    .await;
    let sinks = gw.sinks();
    let outcome = match received {
        Ok(received) => upload::settle(&sinks, &claim, recipient.key_id, received).await,
        Err(e) => {
            let refusal = upload::refusal_of(&e, seen);
            Err((e, refusal))
        }
    };
    drop(lease);
    match outcome {
        Ok((file, state)) => {
            gw.count_stored(file.size, started);
            tracing::info!(file_id = %file.file_id, kind = file.kind.mime(), size = file.size, "file stored");
            let t = how.text();
            let message = fill(t.received, &[("name", &file.display_name)]);
            match how.form {
                Form::Json => respond::json(
                    StatusCode::CREATED,
                    &json!({
                        "status": "stored",
                        "file": {"id": file.file_id, "name": file.display_name, "type": file.kind.mime(),
                                 "size": file.size, "sha256": file.sha256, "scan": &file.verdict},
                        "link_state": state.as_str(),
                        "message": message,
                    }),
                ),
                Form::Page => respond::html(
                    StatusCode::CREATED,
                    page::result_page(
                        how.lang,
                        t.title_received,
                        &message,
                        &how.page,
                        state == LinkState::Active,
                    ),
                ),
            }
        }
        Err((e, refusal)) => {
            gw.control.release(&claim).await;
            super::record_refusal(gw, &claims.link_id, &e, refusal, how).await;
            upload_problem(gw, &e, how)
        }
    }
}
