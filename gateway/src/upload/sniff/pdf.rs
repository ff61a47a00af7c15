//! PDF: a streaming structural check with bounded memory (see docs/content-checks.md).

use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::*;

/// `%%EOF` must be within this many bytes of the end (as readers require).
pub(super) const PDF_TAIL: usize = 1024;
/// The first object must start within this many bytes, after the header and comments.
pub(super) const PDF_HEAD: usize = 4096;
/// How far back from a keyword we look for the object number and leading whitespace.
pub(super) const LOOK_BEHIND: usize = 64;
/// How far after `obj` we look for `/Type /XRef` before giving up on that object.
pub(super) const LOOK_AHEAD: usize = 2048;
/// Pieces fed to the scanner, so a huge chunk does not mean a huge copy.
pub(super) const PIECE: usize = 64 * 1024;
/// Scanned bytes are dropped from the window once this many have piled up.
pub(super) const DROP_BATCH: usize = 4096;
/// Real files have one cross-reference section per revision; thousands is junk.
pub(super) const MAX_XREF_SITES: usize = 4096;

/// Where a cross-reference section could start: `startxref` may point at `at` or at any
/// whitespace just before it (`lead..=at`).
#[derive(Debug, Clone, Copy)]
pub(super) struct XrefSite {
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
    pub(super) head: Vec<u8>,
    pub(super) tail: Vec<u8>,
    /// Bytes not yet scanned, plus up to `LOOK_BEHIND` already scanned ones before them.
    pub(super) window: Vec<u8>,
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

pub(super) fn pdf_space(b: u8) -> bool {
    matches!(b, 0x00 | 0x09 | 0x0A | 0x0C | 0x0D | 0x20)
}

pub(super) fn pdf_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(super) fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
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
    /// Each keyword is searched on its own with memmem, which skips the bulk of a real file
    /// (compressed streams, image data) at memory speed; the order in which sites are
    /// found does not matter (only whether an offset is among them, and how many there are).
    fn scan(&mut self, limit: u64) {
        let (Ok(from), Ok(end)) = (
            usize::try_from(self.scanned_to.saturating_sub(self.window_start)),
            usize::try_from(limit.saturating_sub(self.window_start)),
        ) else {
            return;
        };
        let end = end.min(self.window.len());
        if self.scanned_to >= limit || from >= end {
            return;
        }
        static XREF: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"xref"));
        static OBJ: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"obj"));
        static ROOT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"/Root"));
        for (finder, on_hit) in [
            (&*XREF, PdfCheck::at_xref as fn(&mut PdfCheck, usize)),
            (&*OBJ, PdfCheck::at_obj),
            (&*ROOT, PdfCheck::at_root),
        ] {
            let mut at = from;
            // A keyword that starts before `end` is judged now, even if it runs past it.
            while let Some(hit) = finder.find(&self.window[at..]) {
                let i = at + hit;
                if i >= end {
                    break;
                }
                on_hit(self, i);
                at = i + 1;
            }
        }
        self.scanned_to = self.window_start + end as u64;
    }

    fn at_root(&mut self, i: usize) {
        if self.keyword_at(i, b"/Root") {
            self.saw_root = true;
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

/// Checks `%PDF-x.y` + end of line (or a comment); returns where the body starts.
pub(super) fn check_pdf_header(head: &[u8]) -> Result<usize, ContentError> {
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
pub(super) fn check_first_object(body: &[u8], whole_file: bool) -> Result<(), ContentError> {
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
pub(super) fn parse_startxref(s: &[u8]) -> Result<u64, ContentError> {
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
