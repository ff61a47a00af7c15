//! What uploaded bytes really are, and proof that they are that. Magic numbers are only the
//! first gate (`GIF89a<script>` starts like a GIF): PDFs then pass a streaming structural
//! check and images a complete, bounded decode. Whatever cannot be proven is refused.

use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::panic::{self, AssertUnwindSafe};

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
    pub fn caller_message(&self) -> &'static str {
        match self {
            ContentError::Empty => "This file is empty. Please choose the file again.",
            ContentError::Truncated => {
                "This file seems to be incomplete. Please try sending it again, or try another copy."
            }
            ContentError::Corrupt(_) => "This file seems to be damaged. Please try another copy.",
            ContentError::TooLarge(_) => {
                "This picture is too large to accept. Please send a smaller photo or a screenshot."
            }
            ContentError::NotThisKind { .. } => {
                "This file is not what its type says it is. Please send the original file."
            }
            ContentError::NotAllowed(_) => "This type of file is not accepted by this upload link.",
            ContentError::Unsupported { .. } => {
                "This type of file can't be accepted here. Please send a photo or a PDF."
            }
            ContentError::ScriptCapable { .. } => {
                "Web pages, drawings (SVG) and scripts can't be accepted. Please send a photo or a PDF."
            }
            ContentError::Archive { .. } => {
                "Compressed folders such as ZIP files can't be accepted. Please send each file on its own."
            }
            ContentError::Undecodable(_) => {
                "We couldn't open this picture. Please send it as a regular photo or a screenshot."
            }
            ContentError::Read(_) => "Something went wrong on our side. Please try again in a moment.",
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

// ---------------------------------------------------------------------------------------------
// PDF: a streaming structural check.

/// `%%EOF` must be within this many bytes of the end (as readers require).
const PDF_TAIL: usize = 1024;
/// The first object must start within this many bytes, after the header and comments.
const PDF_HEAD: usize = 4096;
/// How far back from a keyword we look for the object number and leading whitespace.
const LOOK_BEHIND: usize = 64;
/// How far after `obj` we look for `/Type /XRef` before giving up on that object.
const LOOK_AHEAD: usize = 2048;
/// Pieces fed to the scanner, so a huge chunk does not mean a huge copy.
const PIECE: usize = 64 * 1024;
/// Scanned bytes are dropped from the window once this many have piled up.
const DROP_BATCH: usize = 4096;
/// Real files have one cross-reference section per revision; thousands is junk.
const MAX_XREF_SITES: usize = 4096;

/// Where a cross-reference section could start: `startxref` may point at `at` or at any
/// whitespace just before it (`lead..=at`).
#[derive(Debug, Clone, Copy)]
struct XrefSite {
    lead: u64,
    at: u64,
}

/// Streaming structural check for PDF with bounded memory (under 200 KiB whatever the file
/// size): feed every chunk, then [`PdfCheck::finish`].
///
/// Structural, not a full parse. It requires: a `%PDF-1.0`..`%PDF-1.7` or `%PDF-2.0` header
/// at offset 0 followed by an end of line or a comment; the first object (`N G obj`) right after the
/// header comments; `%%EOF` in the last KiB with nothing but whitespace after it; a
/// `startxref` just before it whose offset is inside the file and lands on an `xref` table or
/// an `/XRef` stream object that we saw; and a `/Root`. It does not decompress streams, so it
/// says nothing about JavaScript or embedded files inside a PDF.
#[derive(Debug)]
pub struct PdfCheck {
    len: u64,
    head: Vec<u8>,
    tail: Vec<u8>,
    /// Bytes not yet scanned, plus up to `LOOK_BEHIND` already scanned ones before them.
    window: Vec<u8>,
    window_start: u64,
    scanned_to: u64,
    sites: Vec<XrefSite>,
    too_many_sites: bool,
    saw_root: bool,
}

impl Default for PdfCheck {
    fn default() -> Self {
        Self::new()
    }
}

fn pdf_space(b: u8) -> bool {
    matches!(b, 0x00 | 0x09 | 0x0A | 0x0C | 0x0D | 0x20)
}

fn pdf_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

impl PdfCheck {
    /// A check for one file, before its first byte.
    pub fn new() -> Self {
        PdfCheck {
            len: 0,
            head: Vec::new(),
            tail: Vec::new(),
            window: Vec::new(),
            window_start: 0,
            scanned_to: 0,
            sites: Vec::new(),
            too_many_sites: false,
            saw_root: false,
        }
    }

    /// Feeds the next chunk of the file, in order. Chunk boundaries do not matter.
    pub fn feed(&mut self, chunk: &[u8]) {
        for piece in chunk.chunks(PIECE) {
            self.feed_piece(piece);
        }
    }

    fn feed_piece(&mut self, piece: &[u8]) {
        if self.head.len() < PDF_HEAD {
            let take = (PDF_HEAD - self.head.len()).min(piece.len());
            self.head.extend_from_slice(&piece[..take]);
        }
        if piece.len() >= PDF_TAIL {
            self.tail.clear();
            self.tail.extend_from_slice(&piece[piece.len() - PDF_TAIL..]);
        } else {
            self.tail.extend_from_slice(piece);
            // Trim in batches so each byte is moved a bounded number of times.
            if self.tail.len() > 2 * PDF_TAIL {
                self.tail.drain(..self.tail.len() - PDF_TAIL);
            }
        }
        self.len += piece.len() as u64;
        self.window.extend_from_slice(piece);
        // Keep `LOOK_AHEAD` bytes unscanned so every keyword is judged with its context.
        self.scan(self.len.saturating_sub(LOOK_AHEAD as u64));
        let keep_from = self
            .scanned_to
            .saturating_sub(LOOK_BEHIND as u64)
            .max(self.window_start);
        let drop = usize::try_from(keep_from - self.window_start).unwrap_or(self.window.len());
        // Drop in batches: tiny chunks would otherwise move the whole window every time.
        if drop >= DROP_BATCH {
            self.window.drain(..drop.min(self.window.len()));
            self.window_start = keep_from;
        }
    }

    /// Scans window positions up to the absolute offset `limit` for `xref`, `obj` and `/Root`.
    fn scan(&mut self, limit: u64) {
        while self.scanned_to < limit {
            let Ok(i) = usize::try_from(self.scanned_to - self.window_start) else {
                break;
            };
            if i >= self.window.len() {
                break;
            }
            match self.window[i] {
                b'x' => self.at_xref(i),
                b'o' => self.at_obj(i),
                b'/' if self.keyword_at(i, b"/Root") => self.saw_root = true,
                _ => {}
            }
            self.scanned_to += 1;
        }
    }

    /// `word` at window index `i`, followed by whitespace, a delimiter or the end of file.
    fn keyword_at(&self, i: usize, word: &[u8]) -> bool {
        let w = &self.window;
        w[i..].starts_with(word)
            && w.get(i + word.len())
                .is_none_or(|&b| pdf_space(b) || pdf_delimiter(b))
    }

    /// Whether the byte before window index `j` ends a token (or `j` is the start of the
    /// file). Look-behind stops at `floor`, so the answer never depends on chunking.
    fn token_starts_at(&self, j: usize, floor: usize) -> bool {
        if self.window_start + j as u64 == 0 {
            return true;
        }
        j > floor && {
            let b = self.window[j - 1];
            pdf_space(b) || pdf_delimiter(b)
        }
    }

    /// The absolute offset where the whitespace run ending at window index `i` starts.
    fn lead(&self, i: usize, floor: usize) -> u64 {
        let mut j = i;
        while j > floor && pdf_space(self.window[j - 1]) {
            j -= 1;
        }
        self.window_start + j as u64
    }

    fn record(&mut self, at: usize, floor: usize) {
        if self.sites.len() >= MAX_XREF_SITES {
            self.too_many_sites = true;
            return;
        }
        let site = XrefSite {
            lead: self.lead(at, floor),
            at: self.window_start + at as u64,
        };
        self.sites.push(site);
    }

    fn at_xref(&mut self, i: usize) {
        let floor = i.saturating_sub(LOOK_BEHIND);
        // `token_starts_at` also rules out the `xref` inside `startxref`.
        if self.keyword_at(i, b"xref") && self.token_starts_at(i, floor) {
            self.record(i, floor);
        }
    }

    fn at_obj(&mut self, i: usize) {
        let floor = i.saturating_sub(LOOK_BEHIND);
        if !self.keyword_at(i, b"obj") || !self.token_starts_at(i, floor) {
            return;
        }
        // Walk back over `N G ` to where the object number starts.
        let w = &self.window;
        let back_over = |j: &mut usize, class: fn(u8) -> bool| {
            let from = *j;
            while *j > floor && class(w[*j - 1]) {
                *j -= 1;
            }
            *j < from
        };
        let digit = |b: u8| b.is_ascii_digit();
        let mut j = i;
        if !(back_over(&mut j, pdf_space)
            && back_over(&mut j, digit)
            && back_over(&mut j, pdf_space)
            && back_over(&mut j, digit))
        {
            return;
        }
        if !self.token_starts_at(j, floor) {
            return;
        }
        // Only cross-reference stream objects are recorded: their dictionary says /Type /XRef
        // before the stream data starts.
        let after = &w[i + 3..w.len().min(i + LOOK_AHEAD)];
        let dict_end = [find(after, b"stream"), find(after, b"endobj")]
            .into_iter()
            .flatten()
            .min();
        let dict = &after[..dict_end.unwrap_or(after.len())];
        let is_xref_stream = (0..dict.len()).any(|k| {
            dict[k..].starts_with(b"/XRef")
                && dict.get(k + 5).is_some_and(|&b| pdf_space(b) || pdf_delimiter(b))
        });
        if is_xref_stream {
            self.record(j, floor);
        }
    }

    /// Ends the check once the whole file has been fed.
    pub fn finish(mut self) -> Result<(), ContentError> {
        if self.len == 0 {
            return Err(ContentError::Empty);
        }
        self.scan(self.len);
        let body_start = check_pdf_header(&self.head)?;
        check_first_object(&self.head[body_start..], self.len as usize == self.head.len())?;

        let tail = &self.tail[self.tail.len().saturating_sub(PDF_TAIL)..];
        let eof = rfind(tail, b"%%EOF").ok_or(ContentError::Truncated)?;
        if !tail[eof + 5..].iter().all(|&b| pdf_space(b)) {
            return Err(corrupt("data after the final %%EOF"));
        }
        let before = &tail[..eof];
        let kw = rfind(before, b"startxref").ok_or_else(|| corrupt("no startxref before %%EOF"))?;
        let offset = parse_startxref(&before[kw + 9..])?;
        if offset == 0 || offset >= self.len {
            return Err(corrupt("startxref points outside the file"));
        }
        if self.too_many_sites {
            return Err(corrupt("too many cross-reference sections"));
        }
        if !self.sites.iter().any(|s| s.lead <= offset && offset <= s.at) {
            return Err(corrupt("startxref does not point at a cross-reference section"));
        }
        if !self.saw_root {
            return Err(corrupt("no document catalog (/Root)"));
        }
        Ok(())
    }
}

fn corrupt(why: &str) -> ContentError {
    ContentError::Corrupt(why.to_owned())
}

/// Checks `%PDF-x.y` + end of line (or a comment); returns where the body starts.
fn check_pdf_header(head: &[u8]) -> Result<usize, ContentError> {
    match magic_of(Kind::Pdf, head) {
        Magic::Full => {}
        Magic::Prefix => return Err(ContentError::Truncated),
        Magic::No => return Err(ContentError::NotThisKind { expected: Kind::Pdf }),
    }
    match head.get(8) {
        None => Err(ContentError::Truncated),
        Some(b'\r' | b'\n' | b' ' | b'\t') => Ok(9),
        // The binary-marker comment on the header line itself.
        Some(b'%') => Ok(8),
        Some(_) => Err(corrupt("junk after the %PDF header")),
    }
}

/// After the header, only whitespace and comments may come before the first `N G obj`.
/// This refuses web pages and other junk that merely start with `%PDF-`.
fn check_first_object(body: &[u8], whole_file: bool) -> Result<(), ContentError> {
    let mut i = 0;
    loop {
        match body.get(i) {
            Some(&b) if pdf_space(b) => i += 1,
            Some(b'%') => match body[i..].iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(n) => i += n,
                None => break,
            },
            _ => break,
        }
    }
    let rest = &body[i..];
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let spaces = |s: &[u8]| s.iter().take_while(|&&b| pdf_space(b)).count();
    let mut k = 0;
    let mut ok = true;
    for step in 0..4 {
        let n = match step {
            0 | 2 => digits(&rest[k..]),
            _ => spaces(&rest[k..]),
        };
        if n == 0 {
            ok = false;
            break;
        }
        k += n;
    }
    if ok && rest[k..].starts_with(b"obj") {
        return Ok(());
    }
    // Ran out of bytes before the object header finished: short file, or a header region
    // larger than we look at.
    if rest.len() < 32 && whole_file {
        return Err(ContentError::Truncated);
    }
    Err(corrupt("no PDF object after the header"))
}

/// Parses `<space> digits <space>` between `startxref` and `%%EOF`.
fn parse_startxref(s: &[u8]) -> Result<u64, ContentError> {
    let lead = s.iter().take_while(|&&b| pdf_space(b)).count();
    let digits = s[lead..].iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = &s[lead + digits..];
    if lead == 0 || digits == 0 || digits > 19 || !rest.iter().all(|&b| pdf_space(b)) || rest.is_empty() {
        return Err(corrupt("malformed startxref"));
    }
    s[lead..lead + digits]
        .iter()
        .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
        .ok_or_else(|| corrupt("malformed startxref"))
}

// ---------------------------------------------------------------------------------------------
// Images: header limits, a walk to the format's end marker, then a bounded full decode.

/// Limits for image proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Most pixels (width × height) an image may claim.
    pub max_pixels: u64,
    /// Most pixels along either side.
    pub max_side: u32,
    /// Most bytes the decoder may allocate, output buffer included.
    pub max_alloc: u64,
}

impl ImageLimits {
    /// 40 megapixels: above any phone camera's default, far below a pixel flood.
    pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;
    /// 12,000 px per side: panoramas fit, 100,000 × 1 tricks do not.
    pub const DEFAULT_MAX_SIDE: u32 = 12_000;
    /// 256 MiB: 40 MP of RGBA8 is 160 MiB, with room for decoder state.
    pub const DEFAULT_MAX_ALLOC: u64 = 256 * 1024 * 1024;

    fn check(&self, width: u32, height: u32) -> Result<(), ContentError> {
        if width == 0 || height == 0 {
            return Err(corrupt("image has no pixels"));
        }
        let pixels = u64::from(width) * u64::from(height);
        if width > self.max_side || height > self.max_side || pixels > self.max_pixels {
            return Err(ContentError::TooLarge(format!(
                "{width}x{height} over the limits of {} px per side and {} pixels",
                self.max_side, self.max_pixels
            )));
        }
        Ok(())
    }
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_pixels: Self::DEFAULT_MAX_PIXELS,
            max_side: Self::DEFAULT_MAX_SIDE,
            max_alloc: Self::DEFAULT_MAX_ALLOC,
        }
    }
}

/// What a proven image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Proves that `reader` (from its current position to its end) is a whole image of `kind`.
///
/// Blocking: callers run it on a blocking thread. In order: the magic number must be that of
/// `kind`; the file's blocks are walked to the format's end marker, allocating nothing
/// (truncated files are refused even where a decoder would be lenient, and so is
/// `GIF89a<script>`); the decoder reads the header and dimensions over `limits` are refused
/// before any pixel buffer exists (pixel floods); then the image is fully decoded with
/// `image::Limits` set (corrupt data and decoder bombs are refused).
/// Only the first frame of an animation is decoded, though every block is walked. Bytes after
/// the end marker are allowed, as phones store motion-photo video there.
pub fn prove_image<R: BufRead + Seek>(
    kind: Kind,
    mut reader: R,
    limits: &ImageLimits,
) -> Result<ImageInfo, ContentError> {
    let Some(format) = kind.image_format() else {
        return Err(ContentError::NotThisKind { expected: kind });
    };
    let start = reader.stream_position().map_err(ContentError::Read)?;
    let mut head = [0u8; 16];
    let got = read_up_to(&mut reader, &mut head)?;
    if got == 0 {
        return Err(ContentError::Empty);
    }
    match magic_of(kind, &head[..got]) {
        Magic::Full => {}
        Magic::Prefix => return Err(ContentError::Truncated),
        Magic::No => return Err(ContentError::NotThisKind { expected: kind }),
    }

    // Decoders are third-party code fed hostile bytes: a panic in one must become a refusal,
    // not a dead worker and a 500. The reader is not used again after a panic.
    let proven = panic::catch_unwind(AssertUnwindSafe(|| {
        let rewind = |r: &mut R| {
            r.seek(SeekFrom::Start(start))
                .map(drop)
                .map_err(ContentError::Read)
        };
        // The walk allocates nothing and refuses cut-off files and script polyglots
        // (`GIF89a<script>` has no valid block structure) before a decoder sees them.
        rewind(&mut reader)?;
        walk_to_end(kind, &mut reader)?;
        rewind(&mut reader)?;
        decode_bounded(format, &mut reader, limits)
    }));
    proven.unwrap_or_else(|_| Err(corrupt("the image decoder gave up on this file")))
}

fn read_up_to<R: Read>(reader: &mut R, buf: &mut [u8]) -> Result<usize, ContentError> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ContentError::Read(e)),
        }
    }
    Ok(got)
}

/// Builds the decoder (which reads only the header), refuses dimensions over `limits` before
/// any pixel buffer exists, then decodes everything within the allocation limit.
fn decode_bounded<R: BufRead + Seek>(
    format: ImageFormat,
    reader: &mut R,
    limits: &ImageLimits,
) -> Result<ImageInfo, ContentError> {
    let mut full = image::Limits::default();
    full.max_image_width = Some(limits.max_side);
    full.max_image_height = Some(limits.max_side);
    full.max_alloc = Some(limits.max_alloc);
    // Construction gets only the allocation limit (the PNG decoder takes it there), so the
    // dimension check below is ours and its message names the dimensions.
    let mut construction = image::Limits::no_limits();
    construction.max_alloc = Some(limits.max_alloc);
    let mut r = ImageReader::with_format(reader, format);
    r.limits(construction);
    let mut decoder = r.into_decoder().map_err(from_image_error)?;
    let (width, height) = decoder.dimensions();
    limits.check(width, height)?;
    // As `ImageReader::decode` does: the output buffer counts against the allocation limit,
    // and the decoder gets what is left for its own state.
    full.reserve(decoder.total_bytes())
        .map_err(|e| ContentError::TooLarge(format!("{width}x{height}: {e}")))?;
    decoder.set_limits(full).map_err(from_image_error)?;
    let _pixels = DynamicImage::from_decoder(decoder).map_err(from_image_error)?;
    Ok(ImageInfo { width, height })
}

fn from_io_error(e: io::Error) -> ContentError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => ContentError::Truncated,
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => ContentError::Corrupt(e.to_string()),
        _ => ContentError::Read(e),
    }
}

fn from_image_error(e: ImageError) -> ContentError {
    match e {
        ImageError::Limits(l) => ContentError::TooLarge(l.to_string()),
        ImageError::IoError(io) => from_io_error(io),
        ImageError::Unsupported(u) => ContentError::Undecodable(u.to_string()),
        ImageError::Decoding(d) => {
            // Decoders wrap "ran out of bytes" in their own error types; find it.
            let mut source = std::error::Error::source(&d);
            while let Some(s) = source {
                if s.downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::UnexpectedEof)
                {
                    return ContentError::Truncated;
                }
                source = s.source();
            }
            ContentError::Corrupt(d.to_string())
        }
        ImageError::Parameter(p) => ContentError::Corrupt(p.to_string()),
        ImageError::Encoding(e) => ContentError::Corrupt(e.to_string()),
    }
}

/// Byte-level reading for the structure walks: end of input is `Truncated`.
struct Walk<'r, R> {
    r: &'r mut R,
}

impl<R: BufRead> Walk<'_, R> {
    /// The reader's buffered bytes, never empty: end of input is `Truncated`.
    fn fill(&mut self) -> Result<&[u8], ContentError> {
        // Retry interrupted reads first; the buffer is borrowed for the caller after.
        loop {
            match self.r.fill_buf() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(from_io_error(e)),
                Ok(_) => break,
            }
        }
        match self.r.fill_buf().map_err(from_io_error)? {
            [] => Err(ContentError::Truncated),
            buf => Ok(buf),
        }
    }

    fn byte(&mut self) -> Result<u8, ContentError> {
        let b = *self.fill()?.first().ok_or(ContentError::Truncated)?;
        self.r.consume(1);
        Ok(b)
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], ContentError> {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.byte()?;
        }
        Ok(out)
    }

    fn skip(&mut self, mut n: u64) -> Result<(), ContentError> {
        while n > 0 {
            let have = self.fill()?.len();
            let take = usize::try_from(n).map_or(have, |n| n.min(have));
            self.r.consume(take);
            n -= take as u64;
        }
        Ok(())
    }

    /// Skips to the next 0xFF byte and consumes it.
    fn skip_past_ff(&mut self) -> Result<(), ContentError> {
        loop {
            let buf = self.fill()?;
            match buf.iter().position(|&b| b == 0xFF) {
                Some(p) => {
                    self.r.consume(p + 1);
                    return Ok(());
                }
                None => {
                    let n = buf.len();
                    self.r.consume(n);
                }
            }
        }
    }
}

/// Walks the file's blocks to the end marker of its format.
fn walk_to_end<R: BufRead>(kind: Kind, reader: &mut R) -> Result<(), ContentError> {
    let mut w = Walk { r: reader };
    match kind {
        Kind::Jpeg => walk_jpeg(&mut w),
        Kind::Png => walk_png(&mut w),
        Kind::Gif => walk_gif(&mut w),
        Kind::Webp => walk_webp(&mut w),
        Kind::Pdf => Err(ContentError::NotThisKind { expected: kind }),
    }
}

/// JPEG: segments up to each start-of-scan, entropy-coded data after it, until end-of-image.
fn walk_jpeg<R: BufRead>(w: &mut Walk<'_, R>) -> Result<(), ContentError> {
    w.skip(2)?; // SOI, checked by the magic number
    let mut in_scan = false;
    loop {
        // Like libjpeg, tolerate stray bytes before a marker; the decoder judges the data.
        w.skip_past_ff()?;
        let mut m = w.byte()?;
        while m == 0xFF {
            m = w.byte()?;
        }
        match m {
            0xD9 => return Ok(()),
            // Stuffed 0xFF and restart markers belong to entropy-coded data.
            0x00 | 0xD0..=0xD7 if in_scan => {}
            0x01 | 0xD0..=0xD7 => {}
            0x00 | 0xD8 => return Err(corrupt("misplaced JPEG marker")),
            _ => {
                let [hi, lo] = w.bytes::<2>()?;
                let len = u16::from_be_bytes([hi, lo]);
                if len < 2 {
                    return Err(corrupt("JPEG segment length below 2"));
                }
                w.skip(u64::from(len - 2))?;
                in_scan = m == 0xDA;
            }
        }
    }
}

/// PNG: length-prefixed chunks from `IHDR` to `IEND`.
fn walk_png<R: BufRead>(w: &mut Walk<'_, R>) -> Result<(), ContentError> {
    w.skip(8)?;
    let mut first = true;
    loop {
        let len = u32::from_be_bytes(w.bytes::<4>()?);
        let name = w.bytes::<4>()?;
        if len > 0x7FFF_FFFF || !name.iter().all(u8::is_ascii_alphabetic) {
            return Err(corrupt("malformed PNG chunk"));
        }
        if first && &name != b"IHDR" {
            return Err(corrupt("PNG does not start with IHDR"));
        }
        first = false;
        w.skip(u64::from(len) + 4)?; // data and CRC (the decoder checks CRCs)
        if &name == b"IEND" {
            return Ok(());
        }
    }
}

/// GIF: header, palettes, extension and image blocks as sub-block chains, then the trailer.
fn walk_gif<R: BufRead>(w: &mut Walk<'_, R>) -> Result<(), ContentError> {
    fn sub_blocks<R: BufRead>(w: &mut Walk<'_, R>) -> Result<(), ContentError> {
        loop {
            match w.byte()? {
                0 => return Ok(()),
                n => w.skip(u64::from(n))?,
            }
        }
    }
    fn palette(flags: u8) -> u64 {
        if flags & 0x80 != 0 {
            3 << ((flags & 0x07) + 1)
        } else {
            0
        }
    }
    w.skip(6)?;
    let screen = w.bytes::<7>()?;
    w.skip(palette(screen[4]))?;
    loop {
        match w.byte()? {
            0x21 => {
                w.byte()?; // extension label
                sub_blocks(w)?;
            }
            0x2C => {
                let descriptor = w.bytes::<9>()?;
                w.skip(palette(descriptor[8]))?;
                w.byte()?; // LZW minimum code size
                sub_blocks(w)?;
            }
            0x3B => return Ok(()),
            _ => return Err(corrupt("unknown GIF block")),
        }
    }
}

/// WebP: the RIFF chunk must be whole; `image-webp` checks what is inside.
fn walk_webp<R: BufRead>(w: &mut Walk<'_, R>) -> Result<(), ContentError> {
    let riff = w.bytes::<8>()?;
    let size = u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]]);
    if size < 4 {
        return Err(corrupt("RIFF chunk too small"));
    }
    // RIFF pads odd sizes to even.
    w.skip(u64::from(size) + u64::from(size & 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};
    use proptest::prelude::*;
    use std::io::Cursor;
    use std::time::{Duration, Instant};

    fn encoded(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 13) as u8, (y * 7) as u8, ((x + y) * 3) as u8])
        });
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut out, format)
            .expect("encode test image");
        out.into_inner()
    }

    fn image_of(kind: Kind) -> Vec<u8> {
        encoded(kind.image_format().expect("image kind"), 24, 16)
    }

    fn prove(kind: Kind, bytes: &[u8]) -> Result<ImageInfo, ContentError> {
        prove_image(kind, Cursor::new(bytes), &ImageLimits::default())
    }

    /// A one-page PDF with a correct classic xref table; `extra` goes before the xref.
    fn pdf_classic(extra: &[u8]) -> Vec<u8> {
        let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let bodies: [&[u8]; 3] = [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        ];
        let mut offsets = Vec::new();
        for (n, body) in bodies.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n", n + 1).as_bytes());
            out.extend_from_slice(body);
            out.extend_from_slice(b"\nendobj\n");
        }
        out.extend_from_slice(extra);
        let xref = out.len();
        out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", bodies.len() + 1).as_bytes());
        for o in offsets {
            out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                bodies.len() + 1
            )
            .as_bytes(),
        );
        out
    }

    /// A PDF 1.5 whose cross-reference section is an (uncompressed) xref stream.
    fn pdf_xref_stream() -> Vec<u8> {
        let mut out = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let o1 = out.len();
        out.extend_from_slice(b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
        let o2 = out.len();
        out.extend_from_slice(b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n");
        let o3 = out.len();
        let mut rows = vec![0u8, 0, 0, 0xFF];
        for o in [o1, o2, o3] {
            let o = u16::try_from(o).expect("small test file");
            rows.extend_from_slice(&[1, (o >> 8) as u8, o as u8, 0]);
        }
        out.extend_from_slice(
            format!(
                "3 0 obj\n<< /Filter [] /Size 4 /W [1 2 1] /Root 1 0 R /Length {} /Type /XRef >>\nstream\n",
                rows.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&rows);
        out.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{o3}\n%%EOF").as_bytes());
        out
    }

    fn check_pdf(bytes: &[u8], chunk: usize) -> Result<(), ContentError> {
        let mut c = PdfCheck::new();
        for part in bytes.chunks(chunk.max(1)) {
            c.feed(part);
        }
        c.finish()
    }

    /// CRC-32 (ISO-HDLC), to build PNG chunks by hand.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn png_chunk(out: &mut Vec<u8>, name: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = name.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }

    /// A whole, well-formed PNG whose header claims `w` × `h` but holds almost no data.
    fn png_claiming(w: u32, h: u32) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        png_chunk(&mut out, b"IHDR", &ihdr);
        png_chunk(
            &mut out,
            b"IDAT",
            &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        );
        png_chunk(&mut out, b"IEND", &[]);
        out
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_mime(kind.mime()), Some(kind));
            assert_eq!(Kind::from_mime(&kind.mime().to_ascii_uppercase()), Some(kind));
            assert_eq!(kind.extensions()[0], kind.extension());
            assert_eq!(kind.is_image(), kind != Kind::Pdf);
        }
        for other in [
            "image/*",
            "image/jpg",
            " image/png",
            "image/png; q=1",
            "text/html",
            "image/svg+xml",
            "",
        ] {
            assert_eq!(Kind::from_mime(other), None, "{other:?}");
        }
    }

    #[test]
    fn each_image_kind_is_sniffed_and_proven() {
        for kind in [Kind::Jpeg, Kind::Png, Kind::Gif, Kind::Webp] {
            let bytes = image_of(kind);
            assert_eq!(sniff(&bytes, true), Ok(Some(kind)), "{kind:?}");
            let info = prove(kind, &bytes).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!(
                info,
                ImageInfo {
                    width: 24,
                    height: 16
                }
            );
            assert!(matches!(admit(&bytes, true, &[kind]), Ok(Ok(k)) if k == kind));
            assert!(
                matches!(admit(&bytes, true, &[Kind::Pdf]), Ok(Err(ContentError::NotAllowed(k))) if k == kind)
            );
        }
    }

    #[test]
    fn animated_gif_is_walked_to_its_trailer() {
        use image::codecs::gif::GifEncoder;
        use image::{Delay, Frame, RgbaImage};
        let mut out = Vec::new();
        {
            let mut enc = GifEncoder::new(&mut out);
            for i in 0..3u8 {
                let frame = RgbaImage::from_pixel(8, 8, image::Rgba([i * 80, 0, 0, 255]));
                enc.encode_frame(Frame::from_parts(frame, 0, 0, Delay::from_numer_denom_ms(100, 1)))
                    .expect("encode frame");
            }
        }
        assert_eq!(prove(Kind::Gif, &out).expect("animated gif").width, 8);
        // Cut inside the last frame: the first frame still decodes, the walk refuses.
        let cut = &out[..out.len() - 6];
        assert!(prove(Kind::Gif, cut).is_err());
    }

    #[test]
    fn pdfs_from_the_builder_pass_in_any_chunking() {
        for pdf in [pdf_classic(b""), pdf_xref_stream()] {
            assert_eq!(sniff(&pdf, true), Ok(Some(Kind::Pdf)));
            for chunk in [1, 2, 3, 7, 64, 4096, 1 << 20] {
                check_pdf(&pdf, chunk).unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
            }
        }
    }

    #[test]
    fn large_pdf_with_far_away_xref_passes() {
        // Pushes the xref well past every internal buffer size.
        let filler = b"% padding comment line that is not an object\n".repeat(6000);
        let pdf = pdf_classic(&filler);
        assert!(pdf.len() > 3 * PIECE);
        for chunk in [1000, 65_537, 1 << 20] {
            check_pdf(&pdf, chunk).unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
        }
        // Memory stays bounded whatever the file size and chunking.
        let bound = PIECE + LOOK_AHEAD + DROP_BATCH + LOOK_BEHIND;
        for chunk in [7, 1000, 1 << 20] {
            let mut check = PdfCheck::new();
            for part in pdf.chunks(chunk) {
                check.feed(part);
                assert!(check.window.len() <= bound, "window {}", check.window.len());
                assert!(check.tail.len() <= 2 * PDF_TAIL && check.head.len() <= PDF_HEAD);
            }
            check.finish().expect("large pdf");
        }
    }

    #[test]
    fn pdf_incremental_update_uses_the_last_startxref() {
        let mut pdf = pdf_classic(b"");
        let xref2 = pdf.len();
        pdf.extend_from_slice(
            format!("xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n{xref2}\n%%EOF\r\n")
                .as_bytes(),
        );
        check_pdf(&pdf, 100).expect("incremental update");
    }

    #[test]
    fn pdf_structural_refusals() {
        let good = pdf_classic(b"");
        let xref = rfind(&good, b"\nxref\n").expect("xref") + 1;
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("cut in half", good[..good.len() / 2].to_vec(), "truncated"),
            ("cut before %%EOF", good[..good.len() - 3].to_vec(), "truncated"),
            ("magic only", b"%PDF-1.7".to_vec(), "truncated"),
            ("header line only", b"%PDF-1.7\n".to_vec(), "truncated"),
            (
                "version 1.9",
                [b"%PDF-1.9".as_slice(), &good[8..]].concat(),
                "not_this_kind",
            ),
            ("not a pdf", image_of(Kind::Png), "not_this_kind"),
            (
                "junk after version",
                [b"%PDF-1.4<html>".as_slice(), &good[8..]].concat(),
                "corrupt",
            ),
            (
                "web page behind the header",
                b"%PDF-1.4\n<html><script>alert(1)</script></html>\nxref\nstartxref\n9\n%%EOF\n".to_vec(),
                "corrupt",
            ),
            (
                "data after %%EOF",
                [good.as_slice(), b"<script>x</script>"].concat(),
                "corrupt",
            ),
            (
                "startxref past the end",
                String::from_utf8_lossy(&good)
                    .replace(&format!("startxref\n{xref}\n"), "startxref\n99999\n")
                    .into_bytes(),
                "corrupt",
            ),
            (
                "startxref off target",
                String::from_utf8_lossy(&good)
                    .replace(
                        &format!("startxref\n{xref}\n"),
                        &format!("startxref\n{}\n", xref + 2),
                    )
                    .into_bytes(),
                "corrupt",
            ),
            (
                "startxref zero",
                String::from_utf8_lossy(&good)
                    .replace(&format!("startxref\n{xref}\n"), "startxref\n0\n")
                    .into_bytes(),
                "corrupt",
            ),
            (
                "startxref not a number",
                String::from_utf8_lossy(&good)
                    .replace(&format!("startxref\n{xref}\n"), "startxref\n12a\n")
                    .into_bytes(),
                "corrupt",
            ),
            (
                "startxref overflows",
                String::from_utf8_lossy(&good)
                    .replace(
                        &format!("startxref\n{xref}\n"),
                        "startxref\n99999999999999999999999\n",
                    )
                    .into_bytes(),
                "corrupt",
            ),
            (
                "no /Root",
                String::from_utf8_lossy(&good)
                    .replace("/Root", "/Rooz")
                    .into_bytes(),
                "corrupt",
            ),
        ];
        for (name, bytes, code) in cases {
            for chunk in [1, 5, 1 << 16] {
                match check_pdf(&bytes, chunk) {
                    Ok(()) => panic!("{name}: accepted"),
                    Err(e) => assert_eq!(e.code(), code, "{name} ({chunk}): {e}"),
                }
            }
        }
        assert!(matches!(check_pdf(b"", 1), Err(ContentError::Empty)));
        assert_eq!(check_pdf_header(b"%PDF-1.4%\xe2\xe3\xcf\xd3\n").ok(), Some(8));
        assert_eq!(check_pdf_header(b"%PDF-2.0\r\n").ok(), Some(9));
        // Whitespace and NULs after %%EOF are what real writers leave.
        check_pdf(&[good.as_slice(), b"\r\n\0\0 "].concat(), 10).expect("trailing whitespace");
    }

    #[test]
    fn gif_with_a_script_sniffs_but_is_not_proven() {
        let polyglots: [&[u8]; 3] = [
            b"GIF89a<script>alert(document.cookie)</script>",
            b"GIF89a/*<svg onload=alert(1)>*/=1;alert(1)",
            // Tiny plausible screen, then HTML where the blocks should be.
            b"GIF89a\x01\x00\x01\x00\x00\x00\x00<html><script>alert(1)</script></html>",
        ];
        for p in polyglots {
            assert_eq!(
                sniff(p, true),
                Ok(Some(Kind::Gif)),
                "the first gate alone is fooled"
            );
            let e = prove(Kind::Gif, p).expect_err("script polyglot accepted");
            assert_eq!(e.code(), "corrupt", "{}: {e}", String::from_utf8_lossy(p));
        }
    }

    #[test]
    fn other_content_is_not_a_kind_and_says_why() {
        let heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heicmiaf".to_vec();
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(64, 0);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec(), "archive"),
            ("gzip", b"\x1f\x8b\x08\x00\x00\x00\x00\x00".to_vec(), "archive"),
            (
                "html",
                b"<!DOCTYPE html><html><body>hi</body></html>".to_vec(),
                "script_capable",
            ),
            (
                "svg",
                b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>1</script></svg>".to_vec(),
                "script_capable",
            ),
            (
                "xml svg",
                b"\xef\xbb\xbf<?xml version=\"1.0\"?>\n<svg></svg>".to_vec(),
                "script_capable",
            ),
            ("shell", b"#!/bin/sh\nrm -rf /\n".to_vec(), "script_capable"),
            ("elf", elf, "unsupported_type"),
            ("exe", b"MZ\x90\x00\x03\x00\x00\x00".to_vec(), "unsupported_type"),
            ("heic", heic, "unsupported_type"),
            ("text", b"hello".to_vec(), "unsupported_type"),
            ("bare GIF", b"GIF".to_vec(), "truncated"),
            ("bare %PDF", b"%PDF".to_vec(), "truncated"),
            ("bare PNG", b"\x89PNG".to_vec(), "truncated"),
        ];
        for (name, bytes, code) in cases {
            assert_eq!(sniff(&bytes, true), Ok(None), "{name}");
            let verdict = admit(&bytes, true, &Kind::ALL).expect("complete");
            assert_eq!(verdict.err().map(|e| e.code()), Some(code), "{name}");
        }
        assert!(matches!(
            refusal(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"),
            ContentError::Unsupported {
                detected: Some("image/heif")
            }
        ));
    }

    #[test]
    fn polyglot_that_infer_reads_otherwise_is_refused() {
        // A JPEG head that `infer` takes for a Mobipocket book (checked before images).
        let mut jpeg = image_of(Kind::Jpeg);
        jpeg[60..68].copy_from_slice(b"BOOKMOBI");
        assert_eq!(sniff(&jpeg, true), Ok(None));
    }

    #[test]
    fn empty_and_magic_only() {
        assert_eq!(sniff(b"", true), Ok(None));
        assert_eq!(sniff(b"", false), Err(Incomplete));
        assert!(matches!(refusal(b""), ContentError::Empty));
        assert!(matches!(
            admit(b"", true, &Kind::ALL),
            Ok(Err(ContentError::Empty))
        ));
        let magic_only: [(Kind, &[u8]); 4] = [
            (Kind::Jpeg, b"\xff\xd8\xff\xe0"),
            (Kind::Png, b"\x89PNG\r\n\x1a\n"),
            (Kind::Gif, b"GIF89a"),
            (Kind::Webp, b"RIFF\x04\x00\x00\x00WEBPVP8 "),
        ];
        for (kind, bytes) in magic_only {
            assert!(matches!(prove(kind, b""), Err(ContentError::Empty)), "{kind:?}");
            assert!(matches!(
                prove(kind, bytes),
                Err(ContentError::Truncated | ContentError::Corrupt(_))
            ));
            // Part of a magic number: not even a candidate once the stream has ended.
            assert_eq!(sniff(&bytes[..2], true), Ok(None));
            assert!(
                matches!(prove(kind, &bytes[..2]), Err(ContentError::Truncated)),
                "{kind:?}"
            );
        }
        assert!(matches!(
            prove(Kind::Pdf, b"%PDF-1.4\n"),
            Err(ContentError::NotThisKind { .. })
        ));
        assert!(matches!(
            prove(Kind::Png, &image_of(Kind::Jpeg)),
            Err(ContentError::NotThisKind { .. })
        ));
    }

    #[test]
    fn truncated_images_are_refused() {
        for kind in [Kind::Jpeg, Kind::Png, Kind::Gif, Kind::Webp] {
            let bytes = image_of(kind);
            for cut in [
                20,
                bytes.len() / 3,
                bytes.len() / 2,
                bytes.len() - 2,
                bytes.len() - 1,
            ] {
                match prove(kind, &bytes[..cut]) {
                    Err(ContentError::Truncated) => {}
                    other => panic!("{kind:?} cut at {cut}/{}: {other:?}", bytes.len()),
                }
            }
        }
    }

    #[test]
    fn half_a_jpeg_is_refused_although_the_decoder_would_accept_it() {
        // zune-jpeg fills missing scan data with grey instead of failing; the walk to
        // end-of-image is what refuses it.
        let jpeg = encoded(ImageFormat::Jpeg, 200, 200);
        let half = &jpeg[..jpeg.len() / 2];
        assert!(image::load_from_memory_with_format(half, ImageFormat::Jpeg).is_ok());
        assert!(matches!(prove(Kind::Jpeg, half), Err(ContentError::Truncated)));
    }

    #[test]
    fn jpeg_walk_skips_an_embedded_thumbnail() {
        // An EXIF-style APP1 segment holding a whole JPEG, end-of-image marker included.
        let thumb = image_of(Kind::Jpeg);
        let main = encoded(ImageFormat::Jpeg, 40, 30);
        let len = u16::try_from(thumb.len() + 8).expect("small thumbnail");
        let mut with_thumb = main[..2].to_vec();
        with_thumb.extend_from_slice(&[0xFF, 0xE1]);
        with_thumb.extend_from_slice(&len.to_be_bytes());
        with_thumb.extend_from_slice(b"Exif\0\0");
        with_thumb.extend_from_slice(&thumb);
        with_thumb.extend_from_slice(&main[2..]);
        assert_eq!(prove(Kind::Jpeg, &with_thumb).map(|i| i.width).ok(), Some(40));
        // The thumbnail's end-of-image does not stand in for the main image's.
        let cut = &with_thumb[..with_thumb.len() - 40];
        assert!(matches!(prove(Kind::Jpeg, cut), Err(ContentError::Truncated)));
    }

    #[test]
    fn bytes_after_the_end_marker_are_allowed() {
        // Phones keep motion-photo video after a JPEG's end-of-image.
        for kind in [Kind::Jpeg, Kind::Png, Kind::Gif, Kind::Webp] {
            let bytes = [
                image_of(kind),
                b"\x00\x00\x00\x18ftypmp42 trailing video".to_vec(),
            ]
            .concat();
            prove(kind, &bytes).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        }
    }

    #[test]
    fn pixel_flood_is_refused_from_the_header_fast() {
        let started = Instant::now();
        for (w, h) in [(100_000, 100_000), (12_001, 10), (12_000, 12_000), (1, 0)] {
            let flood = png_claiming(w, h);
            assert_eq!(sniff(&flood, true), Ok(Some(Kind::Png)));
            let e = prove(Kind::Png, &flood).expect_err("flood accepted");
            let expected = if h == 0 { "corrupt" } else { "too_large" };
            assert_eq!(e.code(), expected, "{w}x{h}: {e}");
        }
        // A GIF whose screen is tiny but whose frame claims 65535 x 65535.
        let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff\
            ,\x00\x00\x00\x00\xff\xff\xff\xff\x00\x02\x02\x44\x01\x00;";
        let e = prove(Kind::Gif, gif);
        assert!(matches!(e, Err(ContentError::TooLarge(_))), "{e:?}");
        // Only the header of a flood arrived: refused without decoding either way.
        let flood = png_claiming(100_000, 100_000);
        assert!(prove(Kind::Png, &flood[..33]).is_err());
        // A JPEG whose frame header claims 60000 x 60000.
        let mut jpeg = b"\xff\xd8\xff\xdb\x00\x43\x00".to_vec();
        jpeg.extend_from_slice(&[1u8; 64]);
        jpeg.extend_from_slice(b"\xff\xc0\x00\x0b\x08\xea\x60\xea\x60\x01\x01\x11\x00\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\x12\x34\xff\xd9");
        let e = prove(Kind::Jpeg, &jpeg);
        assert!(matches!(e, Err(ContentError::TooLarge(_))), "{e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn allocation_limit_is_enforced() {
        let bytes = encoded(ImageFormat::Png, 64, 64);
        let tight = ImageLimits {
            max_alloc: 1000,
            ..ImageLimits::default()
        };
        let e = prove_image(Kind::Png, Cursor::new(&bytes), &tight).expect_err("over max_alloc");
        assert_eq!(e.code(), "too_large");
        let few_pixels = ImageLimits {
            max_pixels: 100,
            ..ImageLimits::default()
        };
        assert!(matches!(
            prove_image(Kind::Png, Cursor::new(&bytes), &few_pixels),
            Err(ContentError::TooLarge(_))
        ));
    }

    #[test]
    fn prove_image_starts_at_the_reader_position() {
        let mut bytes = b"prefix".to_vec();
        bytes.extend_from_slice(&image_of(Kind::Png));
        let mut cursor = Cursor::new(bytes);
        cursor.set_position(6);
        assert_eq!(
            prove_image(Kind::Png, cursor, &ImageLimits::default())
                .map(|i| i.width)
                .ok(),
            Some(24)
        );
    }

    #[test]
    fn sniff_waits_for_sniff_len_or_the_end() {
        let png = encoded(ImageFormat::Png, 200, 200);
        assert!(png.len() > SNIFF_LEN);
        assert_eq!(sniff(&png[..100], false), Err(Incomplete));
        assert_eq!(sniff(&png[..SNIFF_LEN - 1], false), Err(Incomplete));
        assert_eq!(sniff(&png[..SNIFF_LEN], false), Ok(Some(Kind::Png)));
        assert_eq!(sniff(&png, false), Ok(Some(Kind::Png)));
        assert_eq!(sniff(&png[..100], true), Ok(Some(Kind::Png)));
        // A prefix of a magic number waits; a head that can never match refuses at once.
        assert_eq!(sniff(b"%PD", false), Err(Incomplete));
        assert_eq!(sniff(b"RIFF\0\0\0\0WE", false), Err(Incomplete));
        assert_eq!(sniff(b"PK\x03\x04", false), Ok(None));
        assert_eq!(sniff(b"<", false), Ok(None));
        assert!(matches!(admit(b"\x89P", false, &Kind::ALL), Err(Incomplete)));
    }

    #[test]
    fn messages_are_plain_sentences() {
        let all = [
            ContentError::Empty,
            ContentError::Truncated,
            ContentError::Corrupt(String::new()),
            ContentError::TooLarge(String::new()),
            ContentError::NotThisKind { expected: Kind::Pdf },
            ContentError::NotAllowed(Kind::Gif),
            ContentError::Unsupported { detected: None },
            ContentError::ScriptCapable {
                detected: "text/html",
            },
            ContentError::Archive {
                detected: "application/zip",
            },
            ContentError::Undecodable(String::new()),
            ContentError::Read(io::Error::other("disk")),
        ];
        let mut codes = std::collections::HashSet::new();
        for e in &all {
            let m = e.caller_message();
            assert!(m.ends_with('.') && m.len() < 120 && m.is_ascii(), "{m}");
            assert!(codes.insert(e.code()));
            assert_eq!(e.is_caller_fault(), !matches!(e, ContentError::Read(_)));
        }
    }

    fn arbitrary_kind() -> impl Strategy<Value = Kind> {
        prop::sample::select(Kind::ALL.to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn sniff_and_refusal_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..10_000), complete: bool) {
            let _ = sniff(&bytes, complete);
            let _ = admit(&bytes, complete, &Kind::ALL);
            let _ = refusal(&bytes);
        }

        #[test]
        fn prove_image_never_panics_on_arbitrary_bytes(kind in arbitrary_kind(), bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let _ = prove(kind, &bytes);
        }

        #[test]
        fn prove_image_never_panics_on_damaged_images(
            kind in prop::sample::select(vec![Kind::Jpeg, Kind::Png, Kind::Gif, Kind::Webp]),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = image_of(kind);
            for (at, value) in flips {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            let keep = cut.index(bytes.len() + 1).max(bytes.len() / 2);
            let _ = prove(kind, &bytes[..keep]);
        }

        #[test]
        fn pdf_check_never_panics_and_ignores_chunking(
            bytes in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..3000),
                (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(at, v)| {
                    let mut p = pdf_classic(b"");
                    let i = at.index(p.len());
                    p[i] = v;
                    p
                }),
            ],
            chunk in 1usize..300,
        ) {
            let whole = check_pdf(&bytes, bytes.len()).map_err(|e| e.code());
            let chunked = check_pdf(&bytes, chunk).map_err(|e| e.code());
            prop_assert_eq!(whole, chunked);
        }
    }
}
