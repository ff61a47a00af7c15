//! What uploaded bytes really are, and proof that they are that. Magic numbers are only the
//! first gate (`GIF89a<script>` starts like a GIF): PDFs then pass a streaming structural
//! check and images a complete, bounded decode. Whatever cannot be proven is refused.

use std::io;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};

/// The kinds of content upgate can prove. Anything else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `application/pdf`, checked structurally by [`PdfCheck`].
    Pdf,
    /// `image/jpeg`, proven by [`prove_image`].
    Jpeg,
    /// `image/png`, proven by [`prove_image`].
    Png,
    /// `image/gif`, proven by [`prove_image`] (first frame decoded, every block walked).
    Gif,
    /// `image/webp`, proven by [`prove_image`].
    Webp,
}

// A kind travels as its media type (records, the internal API), never as a Rust name.
impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.mime())
    }
}

impl<'de> serde::Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Kind::from_mime(&text).ok_or_else(|| serde::de::Error::custom(format!("unknown file type {text:?}")))
    }
}

impl Kind {
    /// Every kind, in a stable order (settings, docs, tests).
    pub const ALL: [Kind; 5] = [Kind::Pdf, Kind::Jpeg, Kind::Png, Kind::Gif, Kind::Webp];

    /// The media type we serve this kind with.
    pub fn mime(self) -> &'static str {
        match self {
            Kind::Pdf => "application/pdf",
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Gif => "image/gif",
            Kind::Webp => "image/webp",
        }
    }

    /// The kind named by a settings entry such as `allowed_types = ["image/jpeg"]`.
    ///
    /// Case-insensitive but otherwise exact: no wildcards (`image/*`), parameters or aliases
    /// (`image/jpg`), so an operator's list means exactly what it says.
    pub fn from_mime(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.mime().eq_ignore_ascii_case(s))
    }

    /// The extension we give downloads of this kind, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Jpeg => "jpg",
            Kind::Png => "png",
            Kind::Gif => "gif",
            Kind::Webp => "webp",
        }
    }

    /// Every extension that already names this kind (lower case, canonical first), so a
    /// download keeps `photo.jpeg` as it is but `photo.html` becomes `photo.html.jpg`.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Kind::Pdf => &["pdf"],
            Kind::Jpeg => &["jpg", "jpeg", "jpe", "jfif"],
            Kind::Png => &["png"],
            Kind::Gif => &["gif"],
            Kind::Webp => &["webp"],
        }
    }

    /// Whether [`prove_image`] is the proof for this kind (otherwise [`PdfCheck`] is).
    pub fn is_image(self) -> bool {
        self.image_format().is_some()
    }

    fn image_format(self) -> Option<ImageFormat> {
        match self {
            Kind::Pdf => None,
            Kind::Jpeg => Some(ImageFormat::Jpeg),
            Kind::Png => Some(ImageFormat::Png),
            Kind::Gif => Some(ImageFormat::Gif),
            Kind::Webp => Some(ImageFormat::WebP),
        }
    }
}

/// Why content was refused. Logs get `Display` (with detail); callers get
/// [`ContentError::caller_message`].
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The upload has no bytes at all.
    #[error("empty file")]
    Empty,
    /// The bytes stop before the format says the file ends: only a magic number, no JPEG
    /// end-of-image, no PNG `IEND`, no GIF trailer, a RIFF chunk longer than the file, or no
    /// PDF `%%EOF` in the last KiB. Usually an interrupted transfer.
    #[error("file is truncated")]
    Truncated,
    /// The bytes start like an accepted kind but do not hold together: the decoder failed,
    /// or the PDF structure is broken or has junk where PDF syntax must be.
    #[error("damaged file: {0}")]
    Corrupt(String),
    /// The image claims (or would need) more pixels or memory than the limits allow: a
    /// pixel flood or decoder bomb, refused before its pixels are allocated.
    #[error("image too large: {0}")]
    TooLarge(String),
    /// The bytes are not the kind they were checked as (a proof was called for another kind,
    /// or the magic number does not match it).
    #[error("content is not {}", .expected.mime())]
    NotThisKind {
        /// The kind the proof was asked to establish.
        expected: Kind,
    },
    /// A kind we can prove, but not one this link allows.
    #[error("{} is not allowed for this link", .0.mime())]
    NotAllowed(Kind),
    /// Not a kind upgate accepts (HEIC, office documents, executables, unknown bytes).
    /// `detected` is what `infer` thinks it is, for logs.
    #[error("unsupported content type ({})", .detected.unwrap_or("unknown"))]
    Unsupported {
        /// What the magic number suggests, if anything.
        detected: Option<&'static str>,
    },
    /// HTML, SVG, XML or a script: content that can run code when opened, never accepted.
    #[error("script-capable content refused ({detected})")]
    ScriptCapable {
        /// What the first bytes look like.
        detected: &'static str,
    },
    /// An archive (zip, tar, 7z, gzip, ...): refused, since nothing here inspects members
    /// and scanners pass small archives holding large members.
    #[error("archive refused ({detected})")]
    Archive {
        /// Which archive format.
        detected: &'static str,
    },
    /// A real image of an accepted kind in a variant the decoder cannot handle (e.g.
    /// arithmetic-coded JPEG), so it cannot be proven.
    #[error("image variant not supported by the decoder: {0}")]
    Undecodable(String),
    /// Reading our own copy of the upload failed. Our fault, not the caller's.
    #[error("reading the upload failed: {0}")]
    Read(#[source] io::Error),
}

impl ContentError {
    /// One plain sentence for a caller on a phone.
    pub fn caller_message(&self, t: &crate::i18n::Text) -> &'static str {
        match self {
            ContentError::Empty => t.empty,
            ContentError::Truncated => t.truncated,
            ContentError::Corrupt(_) => t.corrupt,
            ContentError::TooLarge(_) => t.picture_too_large,
            ContentError::NotThisKind { .. } => t.not_this_kind,
            ContentError::NotAllowed(_) => t.not_for_this_link,
            ContentError::Unsupported { .. } => t.unsupported,
            ContentError::ScriptCapable { .. } => t.script_capable,
            ContentError::Archive { .. } => t.archive,
            ContentError::Undecodable(_) => t.undecodable,
            ContentError::Read(_) => t.our_side,
        }
    }

    /// A stable, machine-readable code for responses, metrics and the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            ContentError::Empty => "empty",
            ContentError::Truncated => "truncated",
            ContentError::Corrupt(_) => "corrupt",
            ContentError::TooLarge(_) => "too_large",
            ContentError::NotThisKind { .. } => "not_this_kind",
            ContentError::NotAllowed(_) => "type_not_allowed",
            ContentError::Unsupported { .. } => "unsupported_type",
            ContentError::ScriptCapable { .. } => "script_capable",
            ContentError::Archive { .. } => "archive",
            ContentError::Undecodable(_) => "undecodable",
            ContentError::Read(_) => "read_failed",
        }
    }

    /// False only when the failure is ours (the caller should retry, not fix the file).
    pub fn is_caller_fault(&self) -> bool {
        !matches!(self, ContentError::Read(_))
    }
}

// ---------------------------------------------------------------------------------------------
// First gate: magic numbers.

/// Bytes collected before deciding: [`sniff`] answers on exactly `min(SNIFF_LEN, file length)`
/// bytes, so the verdict does not depend on how the body happened to be chunked.
pub const SNIFF_LEN: usize = 8192;

/// [`sniff`] needs more bytes (up to [`SNIFF_LEN`] or the end of the stream) to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("need more bytes to tell the content type")]
pub struct Incomplete;

// Stricter than `infer`'s matchers on purpose (full PNG signature, GIF and PDF versions,
// WebP chunk name), so that a bare `GIF` or `%PDF` is not even a candidate. `?` is any byte.
const MAGICS: &[(Kind, &[u8])] = &[
    (Kind::Pdf, b"%PDF-1.0"),
    (Kind::Pdf, b"%PDF-1.1"),
    (Kind::Pdf, b"%PDF-1.2"),
    (Kind::Pdf, b"%PDF-1.3"),
    (Kind::Pdf, b"%PDF-1.4"),
    (Kind::Pdf, b"%PDF-1.5"),
    (Kind::Pdf, b"%PDF-1.6"),
    (Kind::Pdf, b"%PDF-1.7"),
    (Kind::Pdf, b"%PDF-2.0"),
    (Kind::Jpeg, b"\xFF\xD8\xFF"),
    (Kind::Png, b"\x89PNG\r\n\x1A\n"),
    (Kind::Gif, b"GIF87a"),
    (Kind::Gif, b"GIF89a"),
    (Kind::Webp, b"RIFF????WEBPVP8 "),
    (Kind::Webp, b"RIFF????WEBPVP8L"),
    (Kind::Webp, b"RIFF????WEBPVP8X"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Magic {
    /// The whole magic number is there.
    Full,
    /// What is there agrees, but the magic number is longer than the bytes we have.
    Prefix,
    /// It is not this magic number.
    No,
}

fn match_magic(head: &[u8], pattern: &[u8]) -> Magic {
    if pattern.iter().zip(head).any(|(&p, &b)| p != b'?' && p != b) {
        Magic::No
    } else if head.len() >= pattern.len() {
        Magic::Full
    } else {
        Magic::Prefix
    }
}

/// How `head` compares with the magic numbers of one kind.
fn magic_of(kind: Kind, head: &[u8]) -> Magic {
    let mut best = Magic::No;
    for (_, pattern) in MAGICS.iter().filter(|(k, _)| *k == kind) {
        match match_magic(head, pattern) {
            Magic::Full => return Magic::Full,
            Magic::Prefix => best = Magic::Prefix,
            Magic::No => {}
        }
    }
    best
}

/// Pure: what the first bytes say. `Ok(None)` = not a kind we accept (zip, html, svg, exe,
/// heic, ...). `Err(Incomplete)` = fewer than [`SNIFF_LEN`] bytes and the stream is not
/// finished (pass `complete = true` at end of stream). Bytes past [`SNIFF_LEN`] are ignored.
///
/// A kind is returned only when our strict magic number and `infer` agree; a head that
/// `infer` reads as something else as well (a polyglot) is refused rather than guessed.
/// This is a first gate only: the kind still has to be proven by [`PdfCheck`] or
/// [`prove_image`].
pub fn sniff(head: &[u8], complete: bool) -> Result<Option<Kind>, Incomplete> {
    let head = &head[..head.len().min(SNIFF_LEN)];
    let mut found = None;
    let mut could_be = false;
    for (kind, pattern) in MAGICS {
        match match_magic(head, pattern) {
            Magic::Full => found = Some(*kind),
            Magic::Prefix => could_be = true,
            Magic::No => {}
        }
    }
    match found {
        // Nothing can become one of our kinds any more: refuse now, without waiting.
        None if !could_be || complete => Ok(None),
        None => Err(Incomplete),
        // `infer` looks further in (e.g. offset 257 for tar), so decide on a fixed length.
        Some(_) if !complete && head.len() < SNIFF_LEN => Err(Incomplete),
        Some(kind) => {
            let agrees = infer::get(head).is_some_and(|t| t.mime_type() == kind.mime());
            Ok(agrees.then_some(kind))
        }
    }
}

/// What the first bytes look like, for logs and refusal reasons (`infer`'s media type, plus
/// SVG, which `infer` does not know).
pub fn describe(head: &[u8]) -> Option<&'static str> {
    let head = &head[..head.len().min(SNIFF_LEN)];
    if starts_like_svg(head) {
        return Some("image/svg+xml");
    }
    infer::get(head).map(|t| t.mime_type())
}

const ARCHIVES: &[&str] = &[
    "application/zip",
    "application/x-tar",
    "application/vnd.rar",
    "application/gzip",
    "application/x-bzip2",
    "application/vnd.bzip3",
    "application/x-7z-compressed",
    "application/x-xz",
    "application/zstd",
    "application/x-lz4",
    "application/x-lzip",
    "application/x-compress",
    "application/vnd.ms-cab-compressed",
    "application/x-cpio",
    "application/x-unix-archive",
    "application/vnd.debian.binary-package",
    "application/x-rpm",
];

const SCRIPT_CAPABLE: &[&str] = &["text/html", "text/xml", "image/svg+xml", "text/x-shellscript"];

/// Skips byte-order marks and ASCII whitespace, as browsers do before sniffing markup.
fn skip_bom_and_space(mut head: &[u8]) -> &[u8] {
    loop {
        head = match head {
            [0xEF, 0xBB, 0xBF, rest @ ..] | [0xFE, 0xFF, rest @ ..] | [0xFF, 0xFE, rest @ ..] => rest,
            [b' ' | b'\t' | b'\n' | b'\r' | 0x0C, rest @ ..] => rest,
            _ => return head,
        }
    }
}

fn starts_like_svg(head: &[u8]) -> bool {
    let head = skip_bom_and_space(head);
    let window = &head[..head.len().min(1024)];
    head.first() == Some(&b'<') && window.windows(4).any(|w| w.eq_ignore_ascii_case(b"<svg"))
}

/// The refusal for a head that [`sniff`] did not accept, so the caller hears why.
pub fn refusal(head: &[u8]) -> ContentError {
    if head.is_empty() {
        return ContentError::Empty;
    }
    // `GIF`, `%PDF`, `\x89PNG`: the start of one of our magic numbers and nothing more.
    if head.len() >= 3 && Kind::ALL.into_iter().any(|k| magic_of(k, head) == Magic::Prefix) {
        return ContentError::Truncated;
    }
    let detected = describe(head);
    if let Some(d) = detected.and_then(|d| SCRIPT_CAPABLE.iter().find(|s| **s == d)) {
        return ContentError::ScriptCapable { detected: d };
    }
    // Anything that opens like markup may be run by a browser, whatever `infer` says.
    if skip_bom_and_space(head).first() == Some(&b'<') {
        return ContentError::ScriptCapable {
            detected: "text/markup",
        };
    }
    if let Some(d) = detected.and_then(|d| ARCHIVES.iter().find(|a| **a == d)) {
        return ContentError::Archive { detected: d };
    }
    ContentError::Unsupported { detected }
}

/// The upload pipeline's first gate in one call: [`sniff`], then the link's allowed kinds.
/// The outer `Err` means "collect more bytes"; the inner result is the verdict.
pub fn admit(
    head: &[u8],
    complete: bool,
    allowed: &[Kind],
) -> Result<Result<Kind, ContentError>, Incomplete> {
    Ok(match sniff(head, complete)? {
        Some(kind) if allowed.contains(&kind) => Ok(kind),
        Some(kind) => Err(ContentError::NotAllowed(kind)),
        None => Err(refusal(head)),
    })
}

pub(super) fn corrupt(why: &str) -> ContentError {
    ContentError::Corrupt(why.to_owned())
}

mod images;
mod pdf;

pub use images::*;
pub use pdf::*;

#[cfg(test)]
mod tests;
