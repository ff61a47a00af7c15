//! The tus 1.0 transport (core, creation, creation-with-upload, termination, expiration,
//! checksum) under a link: `POST /u/{token}/tus` creates an upload, `HEAD`, `PATCH` and
//! `DELETE` on `/u/{token}/tus/{id}` resume, feed and end it. Every request is authorised
//! by the link again (a revoked or superseded link stops a running upload at once); bytes go
//! through the same upload session as a multipart POST, so a wrong type is refused at the
//! first bytes that show it, and nothing is visible before the verdict.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use hyper::body::Incoming;

use super::upload_route::{refuse_unread, upload_problem};
use super::{control_down, Answer};
use crate::body;
use crate::control_link::LinkState;
use crate::respond::{self, Resp};
use crate::state::Gateway;
use crate::sys::now;
use crate::token::Claims;
use crate::tus::{Expiry, Shared, TusUpload, IDLE_SECS};
use crate::upload::{self, Session, UploadError};

const VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration,checksum";
const OCTETS: &str = "application/offset+octet-stream";
/// A PATCH that carries `Upload-Checksum` is held whole before it is taken (a chunk that
/// fails its checksum must leave no trace), so it may carry at most this much.
pub const CHECKSUM_CHUNK_MAX: usize = 16 * 1024 * 1024;

/// Adds the headers every tus answer carries.
fn tus(mut resp: Resp) -> Resp {
    let h = resp.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(VERSION));
    resp
}

fn empty(status: StatusCode, headers: &[(&'static str, String)]) -> Resp {
    let mut resp = respond::text(status, String::new());
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().insert(*name, v);
        }
    }
    tus(resp)
}

fn problem(status: StatusCode, code: &str, sentence: &str) -> Resp {
    tus(respond::problem(status, code, sentence))
}

fn expires(at: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(at))
}

/// `OPTIONS /u/{token}/tus`: what this server speaks, and the deployment's largest file
/// (a link's own limit may be lower: its creation says so).
pub(super) fn options(gw: &Gateway) -> Resp {
    empty(
        StatusCode::NO_CONTENT,
        &[
            ("tus-version", VERSION.into()),
            ("tus-extension", EXTENSIONS.into()),
            ("tus-max-size", gw.max_file_bytes.to_string()),
            ("tus-checksum-algorithm", "sha1,sha256".into()),
        ],
    )
}

/// Requests other than OPTIONS must say which tus they speak: the refusal if not.
fn wrong_version(headers: &HeaderMap) -> Option<Resp> {
    match headers.get("tus-resumable") {
        Some(v) if v == VERSION => None,
        _ => {
            let mut resp = problem(
                StatusCode::PRECONDITION_FAILED,
                "tus_version",
                "This server speaks tus 1.0.0 (Tus-Resumable: 1.0.0).",
            );
            resp.headers_mut()
                .insert("tus-version", HeaderValue::from_static(VERSION));
            Some(resp)
        }
    }
}

fn number(headers: &HeaderMap, name: &str) -> Option<u64> {
    let v = headers.get(name)?.to_str().ok()?;
    // Digits only: no sign, no spaces, no leading `+`.
    (!v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse().ok())
        .flatten()
}

/// The file's name from `Upload-Metadata` (`filename` or `name`, base64), cleaned as a
/// multipart filename is.
fn file_name(headers: &HeaderMap) -> String {
    let name = headers
        .get("upload-metadata")
        .and_then(|v| v.to_str().ok())
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter_map(|pair| {
            let mut it = pair.trim().splitn(2, ' ');
            let key = it.next()?;
            let value = it.next().unwrap_or("");
            (key == "filename" || key == "name").then_some(value)
        })
        .find_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_default();
    crate::names::clean_display_name(if name.is_empty() { "file" } else { &name })
}

/// Drops expired uploads before anything else (a background sweep does too, every minute).
fn sweep(gw: &Arc<Gateway>) {
    gw.tus.drop_expired(&gw.control, now());
}

/// The link must still take files: a revoked, superseded or finished link stops an
/// upload at its next request.
async fn link_active(
    gw: &Gateway,
    claims: &Claims,
    how: &Answer,
) -> Result<crate::control_link::LinkView, Resp> {
    match gw.link(&claims.link_id).await {
        Ok(view) if view.state == LinkState::Active => Ok(view),
        Ok(view) => Err(tus(upload_problem(gw, &UploadError::LinkGone(view.state), how))),
        Err(e) => Err(tus(control_down(e, how))),
    }
}

/// `POST /u/{token}/tus`: a new upload within the link's limits, with its first bytes if
/// they come along.
pub(super) async fn create(gw: Arc<Gateway>, claims: Claims, req: Request<Incoming>, how: Answer) -> Resp {
    sweep(&gw);
    let (parts, body) = req.into_parts();
    if let Some(resp) = wrong_version(&parts.headers) {
        return refuse_unread(&gw, &parts.headers, body, resp);
    }
    if parts.headers.contains_key("upload-defer-length") {
        let resp = problem(
            StatusCode::BAD_REQUEST,
            "defer_length",
            "Upload-Length is required here.",
        );
        return refuse_unread(&gw, &parts.headers, body, resp);
    }
    let Some(length) = number(&parts.headers, "upload-length") else {
        let resp = problem(
            StatusCode::BAD_REQUEST,
            "upload_length",
            "Upload-Length is required here.",
        );
        return refuse_unread(&gw, &parts.headers, body, resp);
    };
    let view = match link_active(&gw, &claims, &how).await {
        Ok(view) => view,
        Err(resp) => return refuse_unread(&gw, &parts.headers, body, resp),
    };
    // An empty file would be complete at once, with nothing to check: refused now.
    if length == 0 {
        let e = UploadError::Content(crate::upload::sniff::ContentError::Empty);
        return refuse_unread(&gw, &parts.headers, body, tus(upload_problem(&gw, &e, &how)));
    }
    // Over the limit: refused before any byte.
    if length > view.max_file_bytes {
        let e = UploadError::TooLarge {
            limit: view.max_file_bytes,
        };
        return refuse_unread(&gw, &parts.headers, body, tus(upload_problem(&gw, &e, &how)));
    }
    // Deeper than the trusted clamd proved it reads: it would be refused after the last byte.
    if let Some(depth) = gw.scanner.too_deep(length) {
        let e = UploadError::Unscannable(format!("larger than the {depth} bytes clamd proved it scans"));
        return refuse_unread(&gw, &parts.headers, body, tus(upload_problem(&gw, &e, &how)));
    }
    // The whole file's room, promised for as long as the upload lives (hours, on a bad line).
    let room = match gw.disk.reserve(length) {
        Ok(room) => room,
        Err(low) => {
            let e = UploadError::DiskLow(low);
            return refuse_unread(&gw, &parts.headers, body, tus(upload_problem(&gw, &e, &how)));
        }
    };
    let Some(keys) = gw.keys.current() else {
        let missing =
            crate::control_link::ControlError::Unavailable("no keys from the control plane yet".into());
        return refuse_unread(&gw, &parts.headers, body, tus(control_down(missing, &how)));
    };
    let claim = match gw.control.claim(&claims.link_id).await {
        Ok(Ok(claim)) => claim,
        Ok(Err(state)) => {
            let e = UploadError::LinkGone(state);
            return refuse_unread(&gw, &parts.headers, body, tus(upload_problem(&gw, &e, &how)));
        }
        Err(e) => return refuse_unread(&gw, &parts.headers, body, tus(control_down(e, &how))),
    };
    let limits = upload::Limits {
        max_file_bytes: view.max_file_bytes,
        allowed: view.allowed.clone(),
        decoders: gw.decoders.clone(),
    };
    let session = Session::new(
        file_name(&parts.headers),
        limits,
        &gw.spool_dir,
        room,
        claim.seal_for(keys.storage),
    );
    let expires_at = (now() + IDLE_SECS).min(claims.expires_at);
    let upload = TusUpload::new(
        claims.link_id,
        length,
        session,
        claim.seal_for(keys.storage).key_id,
        claim.clone(),
        gw.control.clone(),
        expires_at,
    );
    let Some((id, upload, expiry)) = gw.tus.insert(upload) else {
        gw.control.release(&claim).await;
        let resp = problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_randomness",
            how.text().not_saved,
        );
        return refuse_unread(&gw, &parts.headers, body, resp);
    };
    let location = format!("{}/tus/{id}", how.page);
    let with_body = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(OCTETS.as_bytes()));
    if !with_body {
        body::drain(body, gw.pace);
        return empty(
            StatusCode::CREATED,
            &[
                ("location", location),
                ("upload-offset", "0".into()),
                ("upload-expires", expires(expires_at)),
            ],
        );
    }
    // creation-with-upload: the first bytes come with the creation.
    let mut guard = upload.lock().await;
    let fed = take(&gw, &mut guard, body, None).await;
    match settle_if_whole(&gw, &claims, &id, &mut guard, fed, &expiry, &how).await {
        Ok(offset) => empty(
            StatusCode::CREATED,
            &[
                ("location", location),
                ("upload-offset", offset.to_string()),
                ("upload-expires", expires(expiry.load(Ordering::Relaxed))),
            ],
        ),
        Err(resp) => resp,
    }
}

/// `HEAD /u/{token}/tus/{id}`: where the upload stands.
pub(super) async fn head(
    gw: Arc<Gateway>,
    claims: Claims,
    headers: &HeaderMap,
    id: &str,
    how: Answer,
) -> Resp {
    sweep(&gw);
    if let Some(resp) = wrong_version(headers) {
        return resp;
    }
    if let Err(resp) = link_active(&gw, &claims, &how).await {
        if let Some(upload) = gw.tus.remove(id) {
            release(&gw, upload).await;
        }
        return resp;
    }
    let Some((upload, expiry)) = gw.tus.get(id, &claims.link_id) else {
        return unknown();
    };
    let upload = upload.lock().await;
    empty(
        StatusCode::OK,
        &[
            ("upload-offset", upload.offset.to_string()),
            ("upload-length", upload.length.to_string()),
            ("upload-expires", expires(expiry.load(Ordering::Relaxed))),
        ],
    )
}

fn unknown() -> Resp {
    problem(
        StatusCode::NOT_FOUND,
        "upload_unknown",
        "This upload is not known here (it ended, expired, or began elsewhere); start it again.",
    )
}

async fn release(gw: &Gateway, upload: Shared) {
    let claim = upload.lock().await.claim.clone();
    gw.control.release(&claim).await;
}

/// `DELETE /u/{token}/tus/{id}`: the caller gave up on this upload.
pub(super) async fn delete(gw: Arc<Gateway>, claims: Claims, headers: &HeaderMap, id: &str) -> Resp {
    sweep(&gw);
    if let Some(resp) = wrong_version(headers) {
        return resp;
    }
    if gw.tus.get(id, &claims.link_id).is_none() {
        return unknown();
    }
    if let Some(upload) = gw.tus.remove(id) {
        release(&gw, upload).await;
    }
    empty(StatusCode::NO_CONTENT, &[])
}

/// `PATCH /u/{token}/tus/{id}`: the next bytes, at the offset the server has.
pub(super) async fn patch(
    gw: Arc<Gateway>,
    claims: Claims,
    req: Request<Incoming>,
    id: String,
    how: Answer,
) -> Resp {
    sweep(&gw);
    let (parts, body) = req.into_parts();
    if let Some(resp) = wrong_version(&parts.headers) {
        return refuse_unread(&gw, &parts.headers, body, resp);
    }
    let octets = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(OCTETS.as_bytes()));
    if !octets {
        let resp = problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            "A PATCH carries Content-Type: application/offset+octet-stream.",
        );
        return refuse_unread(&gw, &parts.headers, body, resp);
    }
    if let Err(resp) = link_active(&gw, &claims, &how).await {
        if let Some(upload) = gw.tus.remove(&id) {
            release(&gw, upload).await;
        }
        return refuse_unread(&gw, &parts.headers, body, resp);
    }
    let Some((upload, expiry)) = gw.tus.get(&id, &claims.link_id) else {
        return refuse_unread(&gw, &parts.headers, body, unknown());
    };
    let checksum = match parts.headers.get("upload-checksum").map(Checksum::parse) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(why)) => {
            let resp = problem(StatusCode::BAD_REQUEST, "checksum_algorithm", why);
            return refuse_unread(&gw, &parts.headers, body, resp);
        }
    };
    // One PATCH at a time per upload: a second waits, then finds the offset moved.
    let mut guard = upload.lock().await;
    if number(&parts.headers, "upload-offset") != Some(guard.offset) {
        let resp = empty(
            StatusCode::CONFLICT,
            &[("upload-offset", guard.offset.to_string())],
        );
        return refuse_unread(&gw, &parts.headers, body, resp);
    }
    let fed = take(&gw, &mut guard, body, checksum).await;
    match settle_if_whole(&gw, &claims, &id, &mut guard, fed, &expiry, &how).await {
        Ok(offset) => empty(
            StatusCode::NO_CONTENT,
            &[
                ("upload-offset", offset.to_string()),
                ("upload-expires", expires(expiry.load(Ordering::Relaxed))),
            ],
        ),
        Err(resp) => resp,
    }
}

/// What reading a request's bytes into the upload came to.
enum Fed {
    /// Every byte of the request was taken.
    All,
    /// The connection broke or stalled: what came before is kept, the client resumes.
    Cut(UploadError),
    /// The bytes themselves were refused, or went past `Upload-Length`.
    Refused(UploadError),
    /// The chunk failed its checksum: nothing of it was taken.
    ChecksumMismatch,
    /// The chunk with a checksum was larger than we hold.
    ChunkTooLarge,
}

/// Reads the body into the upload's session, advancing its offset by what was taken.
async fn take(gw: &Gateway, upload: &mut TusUpload, body: Incoming, checksum: Option<Checksum>) -> Fed {
    let mut reader = body::Reader::new(body, gw.pace);
    let Some(session) = upload.session.as_mut() else {
        return Fed::Refused(UploadError::Interrupted("the upload ended".into()));
    };
    let room = upload.length - upload.offset;
    if let Some(checksum) = checksum {
        let mut held: Vec<Bytes> = Vec::new();
        let mut len = 0usize;
        while let Some(piece) = reader.next().await {
            match piece {
                Ok(piece) => {
                    for b in piece {
                        len += b.len();
                        if len > CHECKSUM_CHUNK_MAX {
                            return Fed::ChunkTooLarge;
                        }
                        held.push(b);
                    }
                }
                Err(e) => return Fed::Cut(UploadError::Interrupted(e.to_string())),
            }
        }
        if len as u64 > room {
            return Fed::Refused(UploadError::Malformed("more bytes than Upload-Length"));
        }
        if !checksum.matches(&held) {
            return Fed::ChecksumMismatch;
        }
        for b in held {
            if let Err(e) = session.feed(&b).await {
                return Fed::Refused(e);
            }
            upload.offset += b.len() as u64;
        }
        return Fed::All;
    }
    while let Some(piece) = reader.next().await {
        match piece {
            Ok(piece) => {
                for b in piece {
                    if upload.offset + b.len() as u64 > upload.length {
                        return Fed::Refused(UploadError::Malformed("more bytes than Upload-Length"));
                    }
                    if let Err(e) = session.feed(&b).await {
                        return Fed::Refused(e);
                    }
                    upload.offset += b.len() as u64;
                }
            }
            Err(e) => return Fed::Cut(UploadError::Interrupted(e.to_string())),
        }
    }
    Fed::All
}

/// After a request's bytes: when the whole file is in, the same last stages as a multipart
/// upload (scan, store, record); a refusal ends the upload, gives its slot back and records
/// the refusal on the call. Returns the offset to report.
async fn settle_if_whole(
    gw: &Gateway,
    claims: &Claims,
    id: &str,
    upload: &mut TusUpload,
    fed: Fed,
    expiry: &Expiry,
    how: &Answer,
) -> Result<u64, Resp> {
    let end = |upload: &mut TusUpload| {
        gw.tus.remove(id);
        upload.session.take()
    };
    match fed {
        Fed::All => {}
        Fed::Cut(e) => {
            // The client is gone or will resume: keep what came.
            tracing::info!(reason = %e, offset = upload.offset, "resumable upload paused");
            return Err(tus(upload_problem(gw, &e, how)));
        }
        Fed::ChecksumMismatch => {
            return Err(problem(
                StatusCode::from_u16(460).expect("valid status"),
                "checksum_mismatch",
                "The chunk did not match its checksum and was not kept; send it again.",
            ));
        }
        Fed::ChunkTooLarge => {
            return Err(problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "chunk_too_large",
                "A chunk with Upload-Checksum may carry at most 16 MiB.",
            ));
        }
        Fed::Refused(e) => {
            let seen = upload.session.as_ref().map(|s| s.seen()).unwrap_or_default();
            end(upload);
            gw.control.release(&upload.claim).await;
            let refusal = upload::refusal_of(&e, seen);
            super::record_refusal(gw, &claims.link_id, &e, refusal, how).await;
            return Err(tus(upload_problem(gw, &e, how)));
        }
    }
    expiry.store((now() + IDLE_SECS).min(claims.expires_at), Ordering::Relaxed);
    if upload.offset < upload.length {
        return Ok(upload.offset);
    }
    let Some(session) = end(upload) else {
        return Err(unknown());
    };
    let seen = session.seen();
    let received = session.finish().await;
    let sinks = gw.sinks();
    let outcome = match received {
        Ok(received) => upload::settle(&sinks, &upload.claim, upload.key_id, received).await,
        Err(e) => {
            let refusal = upload::refusal_of(&e, seen);
            Err((e, refusal))
        }
    };
    match outcome {
        Ok((file, _state)) => {
            gw.count_stored(file.size, upload.started);
            tracing::info!(file_id = %file.file_id, kind = file.kind.mime(), size = file.size, "file stored (resumable)");
            Ok(upload.offset)
        }
        Err((e, refusal)) => {
            gw.control.release(&upload.claim).await;
            super::record_refusal(gw, &claims.link_id, &e, refusal, how).await;
            Err(tus(upload_problem(gw, &e, how)))
        }
    }
}

/// `Upload-Checksum: sha256 <base64>` (or sha1).
struct Checksum {
    algorithm: &'static ring::digest::Algorithm,
    digest: Vec<u8>,
}

impl Checksum {
    /// The header, or the sentence that says what is wrong with it.
    fn parse(v: &HeaderValue) -> Result<Checksum, &'static str> {
        const SHAPE: &str = "Upload-Checksum is `sha256 <base64>` or `sha1 <base64>`.";
        let v = v.to_str().map_err(|_| SHAPE)?;
        let (name, b64) = v.split_once(' ').ok_or(SHAPE)?;
        let algorithm = match name {
            "sha256" => &ring::digest::SHA256,
            "sha1" => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            _ => return Err("The checksum algorithms here are sha1 and sha256."),
        };
        let digest = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| "Upload-Checksum's digest is base64.")?;
        Ok(Checksum { algorithm, digest })
    }

    fn matches(&self, chunk: &[Bytes]) -> bool {
        let mut ctx = ring::digest::Context::new(self.algorithm);
        for b in chunk {
            ctx.update(b);
        }
        crate::sys::secrets_equal(ctx.finish().as_ref(), &self.digest)
    }
}
