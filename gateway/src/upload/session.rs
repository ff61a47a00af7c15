//! One upload, whatever carries its bytes: a transport (the multipart POST, the resumable
//! protocol) feeds it chunks in order and says when the last one came. The session owns
//! the stages every byte goes through: size cap -> sniff the first bytes against the allowed
//! types -> SHA-256 | PDF structure | seal -> spool; after the last byte, the PDF's end and
//! a bounded decode of images. [`settle`](super::settle) runs the rest (scan, commit,
//! record). Memory stays at a few segment buffers whatever the file size, and nothing is
//! written, nor any key made, before the type is known and allowed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::digest;
use tokio::sync::Semaphore;

use super::sniff::{self, ImageLimits, Kind, PdfCheck};
use super::spool::Spool;
use super::UploadError;
use crate::disk::Reservation;
use crate::seal::{Header, Opener, RecipientPublicKey, Sealer, TAG_LEN};
use crate::storage::ObjectKey;

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
use super::previews::Previews;

pub struct Received {
    pub key: ObjectKey,
    pub spool: Spool,
    pub display_name: String,
    pub kind: Kind,
    pub size: u64,
    pub sha256: String,
    /// The data key stays in memory only, so the gateway can re-read its own spool for the scan.
    pub opener: Opener,
    /// An image's thumbnail and preview, sealed (`previews`); none for other kinds.
    pub previews: Previews,
}

/// An upload in progress: fed in order, finished once.
pub struct Session {
    limits: Limits,
    spool_dir: PathBuf,
    /// The disk room promised to this file, handed to its spool when the first byte is written.
    room: Option<Reservation>,
    recipient: RecipientPublicKey,
    key: ObjectKey,
    display_name: String,
    size: u64,
    /// The first bytes, kept until they prove the type.
    head: Vec<u8>,
    kind: Option<Kind>,
    stages: Option<Stages>,
}

impl Session {
    /// An upload of a file the caller calls `display_name` (already cleaned), to be sealed
    /// for `recipient` into `spool_dir`, in the disk `room` promised to it.
    pub fn new(
        display_name: String,
        limits: Limits,
        spool_dir: &Path,
        room: Reservation,
        recipient: RecipientPublicKey,
    ) -> Session {
        Session {
            limits,
            spool_dir: spool_dir.to_path_buf(),
            room: Some(room),
            recipient,
            key: ObjectKey::random(),
            display_name,
            size: 0,
            head: Vec::new(),
            kind: None,
            stages: None,
        }
    }

    /// Bytes taken so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    /// What was learned about the file so far, for recording a refusal.
    pub fn seen(&self) -> Seen {
        Seen {
            name: Some(self.display_name.clone()),
            bytes: self.size,
        }
    }

    /// Takes the next bytes. Refuses them as soon as they are too many or the first ones
    /// show a type the link does not take; after a refusal the session is done with.
    pub async fn feed(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        self.size += chunk.len() as u64;
        if self.size > self.limits.max_file_bytes {
            return Err(UploadError::TooLarge {
                limit: self.limits.max_file_bytes,
            });
        }
        if let Some(stages) = self.stages.as_mut() {
            return stages.push(chunk).await;
        }
        self.head.extend_from_slice(chunk);
        self.sniff(false).await
    }

    /// Decides the type once the head shows it (or, at the end, that it never will), then
    /// starts the stages with what was held back.
    async fn sniff(&mut self, done: bool) -> Result<(), UploadError> {
        let kind = match sniff::admit(&self.head, done, &self.limits.allowed) {
            Err(sniff::Incomplete) if !done => return Ok(()),
            Err(sniff::Incomplete) => return Err(UploadError::Content(sniff::ContentError::Truncated)),
            Ok(Ok(kind)) => kind,
            Ok(Err(
                e @ (sniff::ContentError::NotAllowed(_)
                | sniff::ContentError::Unsupported { .. }
                | sniff::ContentError::ScriptCapable { .. }
                | sniff::ContentError::Archive { .. }),
            )) => {
                tracing::info!(reason = %e, "content type refused");
                return Err(UploadError::TypeNotAllowed {
                    allowed: self.limits.allowed.clone(),
                });
            }
            Ok(Err(e)) => return Err(UploadError::Content(e)),
        };
        self.kind = Some(kind);
        let sealer = Sealer::new(&self.recipient, self.key.as_str())
            .map_err(|e| UploadError::Internal(format!("seal: {e}")))?;
        let room = self.room.take().expect("the spool is made once");
        let spool = Spool::new(&self.spool_dir, self.key.as_str(), room);
        let mut out = Vec::with_capacity(sealer.header().len() + sniff::SNIFF_LEN);
        out.extend_from_slice(sealer.header());
        let mut stages = Stages {
            hasher: digest::Context::new(&digest::SHA256),
            sealer,
            pdf: (kind == Kind::Pdf).then(PdfCheck::new),
            size: 0,
            out,
            spool,
        };
        stages.push(&std::mem::take(&mut self.head)).await?;
        self.stages = Some(stages);
        Ok(())
    }

    /// The last byte came: seals the end, checks what can only be checked whole, and
    /// returns the file sealed in the spool.
    pub async fn finish(mut self) -> Result<Received, UploadError> {
        if self.stages.is_none() {
            self.sniff(true).await?;
        }
        let (Some(kind), Some(stages)) = (self.kind, self.stages) else {
            return Err(UploadError::Content(sniff::ContentError::Empty));
        };
        debug_assert_eq!(stages.size, self.size);
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
        let mut previews = Previews::default();
        if kind.is_image() {
            let _permit = self
                .limits
                .decoders
                .acquire()
                .await
                .map_err(|e| UploadError::Internal(e.to_string()))?;
            let target = (self.key.clone(), self.recipient);
            previews = prove_image(kind, &spool, opener.clone(), target).await?;
        }
        Ok(Received {
            key: self.key,
            spool,
            display_name: self.display_name,
            kind,
            size: self.size,
            sha256: hex::encode(hasher.finish()),
            opener,
            previews,
        })
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

/// Decodes the image from the gateway's own spool on a blocking thread, with limits, and
/// makes its previews from the pixels, sealed for `target`'s recipient. An image that
/// proves but cannot be previewed is still taken (the console shows an icon instead).
async fn prove_image(
    kind: Kind,
    spool: &Spool,
    opener: Opener,
    target: (ObjectKey, RecipientPublicKey),
) -> Result<Previews, UploadError> {
    let path = spool.path().to_path_buf();
    let len = spool.written();
    tokio::task::spawn_blocking(move || {
        let file =
            std::fs::File::open(&path).map_err(|e| UploadError::Internal(format!("spool read: {e}")))?;
        let reader = crate::seal::DecryptReader::new(std::io::BufReader::new(file), len, opener)
            .map_err(|e| UploadError::Internal(format!("spool read: {e}")))?;
        let (_, pixels) =
            sniff::prove_image_pixels(kind, std::io::BufReader::new(reader), &ImageLimits::default())?;
        Ok(
            super::previews::make(&pixels, &target.0, &target.1).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "no previews for this image");
                Previews::default()
            }),
        )
    })
    .await
    .map_err(|e| UploadError::Internal(format!("image check: {e}")))?
}

#[cfg(test)]
mod tests;
