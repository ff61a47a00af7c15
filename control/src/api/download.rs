//! `GET /v1/files/{id}/content`: the decrypted bytes, as an attachment that no browser will
//! render or sniff. The whole object is authenticated before the first byte leaves (one
//! streamed read), then the segments of the requested range are read again in one ranged
//! read (one ranged GET on S3) and opened one by one as they arrive.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use upgate_gateway::names::{attachment_disposition, download_name};
use upgate_gateway::seal::{Header, Opener, MAX_HEADER_LEN, TAG_LEN};
use upgate_gateway::storage::{ObjectKey, ObjectStore, StorageError};

use super::range::{self, Span};
use super::{Api, ApiResponse};
use crate::problem::Problem;
use crate::service::Actor;

fn integrity(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "stored object failed its check");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "file_integrity_failed",
        "The stored file failed its integrity check.",
    )
}

fn storage(e: StorageError) -> Problem {
    match e {
        StorageError::NotFound => integrity("object missing"),
        StorageError::Io(e) => {
            tracing::error!(error = %e, "storage failure on download");
            Problem::unavailable("storage_unavailable", "Storage is unavailable; try again.")
        }
    }
}

/// Segments `first..=last` of a sealed object, read in one ranged read and opened (each
/// authenticated) as they arrive.
struct Segments {
    stream: upgate_gateway::storage::ByteStream,
    buf: Vec<u8>,
    next: u64,
    last: u64,
    count: u64,
    opener: Opener,
}

impl Segments {
    async fn read(
        store: &dyn ObjectStore,
        key: &ObjectKey,
        opener: Opener,
        (first, last): (u64, u64),
        count: u64,
    ) -> Result<Segments, Problem> {
        let whole = (opener.segment_len() + TAG_LEN) as u64;
        let stream = store
            .read_range(key, opener.segment_offset(first), (last - first + 1) * whole)
            .await
            .map_err(storage)?;
        Ok(Segments {
            stream,
            buf: Vec::with_capacity(whole as usize),
            next: first,
            last,
            count,
            opener,
        })
    }

    /// The next segment's plaintext, or `None` after the last.
    async fn next(&mut self) -> Option<Result<Vec<u8>, Problem>> {
        use futures_util::TryStreamExt;
        if self.next > self.last {
            return None;
        }
        let whole = self.opener.segment_len() + TAG_LEN;
        while self.buf.len() < whole {
            match self.stream.try_next().await {
                Ok(Some(piece)) => self.buf.extend_from_slice(&piece),
                Ok(None) => break,
                Err(e) => return Some(Err(storage(e))),
            }
        }
        let take = whole.min(self.buf.len());
        let index = self.next;
        self.next += 1;
        let opened = self
            .opener
            .open_segment(index, index + 1 == self.count, &self.buf[..take])
            .map_err(integrity);
        self.buf.drain(..take);
        Some(opened)
    }
}

pub async fn download(
    api: &Api,
    actor: Actor,
    file_id: String,
    headers: &HeaderMap,
) -> Result<ApiResponse, Problem> {
    let svc = api.service.clone();
    let file = svc.visible_file(&actor, &file_id).await?;
    let key = ObjectKey::parse(&file.id).ok_or_else(|| Problem::not_found("file"))?;
    let store = api.store.clone();
    let ct_len = store.len(&key).await.map_err(storage)?;
    let head = store
        .read_at(&key, 0, MAX_HEADER_LEN.min(ct_len as usize))
        .await
        .map_err(storage)?;
    let header = Header::parse(&head).map_err(integrity)?;
    let opener = api.service.opener(&file, header)?;
    let len = opener.plaintext_len(ct_len).map_err(integrity)?;
    let count = opener.segment_count(ct_len).map_err(integrity)?;

    let span = range::parse(headers.get(header::RANGE).and_then(|v| v.to_str().ok()), len);
    if span == Span::Unsatisfiable {
        let mut resp = super::problem_response(&Problem::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            format!("The file has {len} bytes."),
        ));
        resp.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
        );
        return Ok(resp);
    }
    // Authenticate every segment first: a tampered file is refused before any plaintext leaves.
    if count > 0 {
        let mut all = Segments::read(&*store, &key, opener.clone(), (0, count - 1), count).await?;
        while let Some(segment) = all.next().await {
            segment?;
        }
    }
    let (start, end) = match span {
        Span::Part(a, b) => (a, b),
        _ => (0, len.saturating_sub(1)),
    };
    let part = matches!(span, Span::Part(..)).then_some((start, end));
    api.service.audit_download(&actor, &file, part).await?;

    let body_len = if len == 0 { 0 } else { end - start + 1 };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(2);
    if body_len > 0 {
        let seg = opener.segment_len() as u64;
        tokio::spawn(async move {
            let (first, last) = (start / seg, end / seg);
            let mut segments = match Segments::read(&*store, &key, opener, (first, last), count).await {
                Ok(s) => s,
                Err(p) => {
                    let _ = tx.send(Err(std::io::Error::other(p.detail))).await;
                    return;
                }
            };
            let mut i = first;
            while let Some(data) = segments.next().await {
                let data = match data {
                    Ok(d) => d,
                    Err(p) => {
                        let _ = tx.send(Err(std::io::Error::other(p.detail))).await;
                        return;
                    }
                };
                let base = i * seg;
                i += 1;
                let from = start.saturating_sub(base) as usize;
                let to = ((end + 1 - base) as usize).min(data.len());
                if tx
                    .send(Ok(Frame::data(Bytes::copy_from_slice(&data[from..to]))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut resp = Response::new(StreamBody::new(stream).boxed());
    *resp.status_mut() = if part.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set(h, header::CONTENT_TYPE, file.kind.mime().to_string());
    // The saved name's extension agrees with the sniffed type, so the file never opens as
    // something else from the reviewer's disk.
    let extensions = file.kind.extensions();
    set(
        h,
        header::CONTENT_DISPOSITION,
        attachment_disposition(&download_name(&file.name, extensions)),
    );
    set(h, header::CONTENT_LENGTH, body_len.to_string());
    if part.is_some() {
        set(h, header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_failure_is_a_503_with_retry_after_and_a_missing_object_is_not() {
        let resp =
            super::super::problem_response(&storage(StorageError::Io(std::io::Error::other("disk gone"))));
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(resp.headers().contains_key(header::RETRY_AFTER));
        let resp = super::super::problem_response(&storage(StorageError::NotFound));
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!resp.headers().contains_key(header::RETRY_AFTER));
    }
}
