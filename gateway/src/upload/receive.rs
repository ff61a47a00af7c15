//! Reading one file out of a multipart body and through the stages, chunk by chunk:
//! size cap -> sniff the first bytes against the allowed types -> SHA-256 | PDF structure |
//! seal -> spool; then, after the last byte, prove images by a bounded decode.
//! Memory per upload stays at a few segment buffers whatever the file size.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Semaphore;

use bytes::Bytes;
use futures_util::Stream;
use ring::digest;

use super::framing::{Event, Parts, PartsError};
use super::sniff::{self, ImageLimits, Kind, PdfCheck};
use super::spool::Spool;
use super::UploadError;
use crate::body::{BodyCut, BodyError};
use crate::names::clean_display_name;
use crate::seal::{Header, Opener, RecipientPublicKey, Sealer, TAG_LEN};
use crate::storage::ObjectKey;

/// Room for the multipart framing around the one file.
pub const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// What the link allows for one file.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub allowed: Vec<Kind>,
    /// Image decodes at once: each may allocate up to `ImageLimits::max_alloc`, so their
    /// number, not the number of uploads, bounds memory.
    pub decoders: Arc<Semaphore>,
}

/// What was learned about a file before it was refused, so the refusal can be recorded on
/// the call with the name the caller gave it.
#[derive(Debug, Default)]
pub struct Seen {
    pub name: Option<String>,
    pub bytes: u64,
}

/// A file read to the end, sealed in the spool, proven to be what it claims.
pub struct Received {
    pub key: ObjectKey,
    pub spool: Spool,
    pub display_name: String,
    pub kind: Kind,
    pub size: u64,
    pub sha256: String,
    /// The data key stays in memory only, so the gateway can re-read its own spool for the scan.
    pub opener: Opener,
}

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

struct Stages {
    hasher: digest::Context,
    sealer: Sealer,
    pdf: Option<PdfCheck>,
    size: u64,
    out: Vec<u8>,
    spool: Spool,
}

impl Stages {
    /// The sealed bytes a spool write carries: the spool's segments per write with their
    /// tags, and the header before the first. `out` is given exactly this once the file is
    /// longer than a segment (a small file keeps its small buffer), and never grows past it:
    /// a doubling `Vec` held up to twice as much per upload (docs/performance.md, S3).
    fn write_capacity(&self) -> usize {
        self.sealer.header().len() + self.spool.segments_per_write() * (self.sealer.segment_len() + TAG_LEN)
    }

    async fn push(&mut self, mut bytes: &[u8]) -> Result<(), UploadError> {
        self.hasher.update(bytes);
        if let Some(pdf) = self.pdf.as_mut() {
            pdf.feed(bytes);
        }
        let segment = self.sealer.segment_len();
        while !bytes.is_empty() {
            // A full segment is sealed once more bytes come; when that completes a write's
            // worth, the write goes before the next byte, so `out` then holds only sealed
            // segments (the header waits for the first one): a small file reaches the
            // spool in one write, at the end. Fewer segments than a write are left for
            // `finish`, so the last one fits too.
            if self.sealer.is_full() {
                self.sealer.seal_full(&mut self.out);
                if self.out.len() >= self.spool.segments_per_write() * segment {
                    // The sealed segments go to the spool whole; the buffer it hands back
                    // (with its capacity) is refilled.
                    self.out = self
                        .spool
                        .write(std::mem::take(&mut self.out))
                        .await
                        .map_err(|e| UploadError::Internal(format!("spool write: {e}")))?;
                }
            }
            let take = self.sealer.room().min(bytes.len());
            self.size += take as u64;
            if self.out.len() + take + TAG_LEN > self.out.capacity() {
                if self.size > segment as u64 {
                    // Past a segment: the write's size, once, and never more.
                    self.out.reserve_exact(self.write_capacity() - self.out.len());
                } else {
                    self.out.reserve(take + TAG_LEN);
                }
            }
            self.sealer.absorb(&bytes[..take], &mut self.out);
            bytes = &bytes[take..];
        }
        Ok(())
    }
}

/// Reads the single file of a `multipart/form-data` body into a sealed spool.
pub async fn receive<S>(
    body: S,
    boundary: String,
    limits: &Limits,
    spool_dir: &Path,
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

    // Sniff before anything is written: a refused type costs no disk and no crypto.
    let mut head = Vec::with_capacity(sniff::SNIFF_LEN);
    let mut kind = None;
    let mut stages: Option<Stages> = None;
    let key = ObjectKey::random();
    let mut size = 0u64;
    loop {
        // Only data follows the one part (the parser refuses a second): `None` is the end
        // of the body, its closing boundary checked.
        let chunk = match parts.next().await.map_err(fail)? {
            Some(Event::Data(chunk)) => Some(chunk),
            Some(Event::Part(_)) => return Err(UploadError::Malformed("one file per request")),
            None => None,
        };
        let done = chunk.is_none();
        let chunk = chunk.unwrap_or_default();
        size += chunk.len() as u64;
        seen.bytes = size;
        if size > limit {
            return Err(UploadError::TooLarge { limit });
        }
        if let Some(stages) = stages.as_mut() {
            stages.push(&chunk).await?;
        } else {
            head.extend_from_slice(&chunk);
            let k = match sniff::admit(&head, done, &limits.allowed) {
                Err(sniff::Incomplete) if !done => continue,
                Err(sniff::Incomplete) => return Err(UploadError::Content(sniff::ContentError::Truncated)),
                Ok(Ok(k)) => k,
                Ok(Err(
                    e @ (sniff::ContentError::NotAllowed(_)
                    | sniff::ContentError::Unsupported { .. }
                    | sniff::ContentError::ScriptCapable { .. }
                    | sniff::ContentError::Archive { .. }),
                )) => {
                    tracing::info!(reason = %e, "content type refused");
                    return Err(UploadError::TypeNotAllowed {
                        allowed: limits.allowed.clone(),
                    });
                }
                Ok(Err(e)) => return Err(UploadError::Content(e)),
            };
            kind = Some(k);
            let sealer = Sealer::new(recipient, key.as_str())
                .map_err(|e| UploadError::Internal(format!("seal: {e}")))?;
            let spool = Spool::new(spool_dir, key.as_str());
            let mut out = Vec::with_capacity(sealer.header().len() + sniff::SNIFF_LEN);
            out.extend_from_slice(sealer.header());
            let mut s = Stages {
                hasher: digest::Context::new(&digest::SHA256),
                sealer,
                pdf: (k == Kind::Pdf).then(PdfCheck::new),
                size: 0,
                out,
                spool,
            };
            s.push(&std::mem::take(&mut head)).await?;
            stages = Some(s);
        }
        if done {
            break;
        }
    }
    let (Some(kind), Some(stages)) = (kind, stages) else {
        return Err(UploadError::Content(sniff::ContentError::Empty));
    };
    debug_assert_eq!(stages.size, size);
    let Stages {
        hasher,
        sealer,
        pdf,
        mut out,
        mut spool,
        ..
    } = stages;
    let header =
        Header::parse(sealer.header()).map_err(|e| UploadError::Internal(format!("seal header: {e}")))?;
    let data_key = sealer.finish(&mut out);
    spool
        .finish(out)
        .await
        .map_err(|e| UploadError::Internal(format!("spool write: {e}")))?;
    let opener = Opener::new(header, data_key);
    if let Some(pdf) = pdf {
        pdf.finish()?;
    }
    if kind.is_image() {
        let _permit = limits
            .decoders
            .acquire()
            .await
            .map_err(|e| UploadError::Internal(e.to_string()))?;
        prove_image(kind, &spool, opener.clone()).await?;
    }
    let sha256 = hex::encode(hasher.finish());
    Ok(Received {
        key,
        spool,
        display_name,
        kind,
        size,
        sha256,
        opener,
    })
}

/// Decodes the image from the gateway's own spool on a blocking thread, with limits.
async fn prove_image(kind: Kind, spool: &Spool, opener: Opener) -> Result<(), UploadError> {
    let path = spool.path().to_path_buf();
    let len = spool.written();
    tokio::task::spawn_blocking(move || {
        let file =
            std::fs::File::open(&path).map_err(|e| UploadError::Internal(format!("spool read: {e}")))?;
        let reader = crate::seal::DecryptReader::new(std::io::BufReader::new(file), len, opener)
            .map_err(|e| UploadError::Internal(format!("spool read: {e}")))?;
        sniff::prove_image(kind, std::io::BufReader::new(reader), &ImageLimits::default())?;
        Ok(())
    })
    .await
    .map_err(|e| UploadError::Internal(format!("image check: {e}")))?
}

#[cfg(test)]
mod tests;
