//! The multipart transport: reads the one file of a `multipart/form-data` body and feeds
//! its bytes to an upload [`Session`], chunk by chunk as they arrive.

use std::path::Path;

use bytes::Bytes;
use futures_util::Stream;

use super::framing::{Event, Parts, PartsError};
use super::session::{Limits, Received, Seen, Session};
use super::UploadError;
use crate::body::{BodyCut, BodyError};
use crate::disk::Reservation;
use crate::names::clean_display_name;
use crate::seal::RecipientPublicKey;

/// Room for the multipart framing around the one file.
pub const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// What a body that could not be read to its end means for the upload.
fn parts_error(e: PartsError, limit: u64) -> UploadError {
    match e {
        PartsError::TooLong => UploadError::TooLarge { limit },
        PartsError::Ambiguous(a) => UploadError::Malformed(a.0),
        PartsError::Body(inner) => match inner.downcast_ref::<BodyCut>() {
            Some(BodyCut::TooSlow) => UploadError::TooSlow,
            Some(BodyCut::Fragmented) => UploadError::Malformed("the body arrived in pieces too small"),
            Some(BodyCut::Idle) => UploadError::Interrupted("body idle".into()),
            None => UploadError::Interrupted(inner.to_string()),
        },
    }
}

/// Reads the single file of a `multipart/form-data` body into a sealed spool.
pub async fn receive<S>(
    body: S,
    boundary: String,
    limits: &Limits,
    spool_dir: &Path,
    room: Reservation,
    recipient: &RecipientPublicKey,
    seen: &mut Seen,
) -> Result<Received, UploadError>
where
    S: Stream<Item = Result<Bytes, BodyError>> + Send + Unpin + 'static,
{
    let limit = limits.max_file_bytes;
    let mut parts = Parts::new(body, &boundary, 1, limit + MULTIPART_OVERHEAD);
    let fail = |e| parts_error(e, limit);
    // The parser hands out a part's head before any of its data.
    let part = match parts.next().await.map_err(fail)? {
        Some(Event::Part(part)) => part,
        Some(Event::Data(_)) | None => return Err(UploadError::Malformed("no file in the request")),
    };
    if part.name != "file" {
        return Err(UploadError::Malformed("unexpected form field"));
    }
    let display_name = clean_display_name(
        part.filename
            .as_deref()
            .ok_or(UploadError::Malformed("the part is not a file"))?,
    );
    seen.name = Some(display_name.clone());
    let mut session = Session::new(display_name, limits.clone(), spool_dir, room, *recipient);
    // Only data follows the one part (the parser refuses a second): `None` is the end of
    // the body, its closing boundary checked.
    loop {
        let fed = match parts.next().await.map_err(fail)? {
            Some(Event::Data(chunk)) => session.feed(&chunk).await,
            Some(Event::Part(_)) => return Err(UploadError::Malformed("one file per request")),
            None => break,
        };
        seen.bytes = session.size();
        fed?;
    }
    session.finish().await
}

#[cfg(test)]
mod tests;
