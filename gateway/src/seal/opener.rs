//! Opening: per-segment decryption, a seekable plaintext reader, whole-object verification.

use ring::aead::{Aad, LessSafeKey};
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};
use zeroize::{Zeroize, Zeroizing};

use super::*;

/// Decrypts segments of one file, in any order.
#[derive(Clone)]
pub struct Opener {
    pub(super) header: Header,
    pub(super) header_hash: [u8; 32],
    pub(super) payload_key: LessSafeKey,
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// An opener for the file with this header and data key. The key is not checked
    /// here: a wrong key fails on the first segment.
    pub fn new(header: Header, key: DataKey) -> Opener {
        let header_hash = sha256(&header.bytes);
        let payload_key = aes_key(&payload_key_bytes(&key, &header_hash));
        Opener {
            header,
            header_hash,
            payload_key,
        }
    }

    /// The header this opener authenticates segments against.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Plaintext bytes per segment.
    pub fn segment_len(&self) -> usize {
        self.header.segment_len
    }

    /// Number of segments in an object of `ciphertext_len` bytes (header included).
    /// Refuses lengths no sealer produces, such as a final segment shorter than a tag
    /// or an empty final segment after other segments.
    pub fn segment_count(&self, ciphertext_len: u64) -> Result<u64, OpenError> {
        let invalid = OpenError::InvalidLength { ciphertext_len };
        let body = ciphertext_len
            .checked_sub(self.header.len() as u64)
            .ok_or(OpenError::InvalidLength { ciphertext_len })?;
        let stride = self.stride();
        let count = body.div_ceil(stride);
        if count == 0 {
            return Err(invalid);
        }
        let last = body - (count - 1) * stride;
        if last < TAG_LEN as u64 || (last == TAG_LEN as u64 && count > 1) {
            return Err(invalid);
        }
        Ok(count)
    }

    /// Plaintext length of an object of `ciphertext_len` bytes (header included).
    pub fn plaintext_len(&self, ciphertext_len: u64) -> Result<u64, OpenError> {
        let count = self.segment_count(ciphertext_len)?;
        Ok(ciphertext_len - self.header.len() as u64 - count * TAG_LEN as u64)
    }

    /// Byte offset of segment `index` in the object (saturating for absurd indices).
    pub fn segment_offset(&self, index: u64) -> u64 {
        index
            .saturating_mul(self.stride())
            .saturating_add(self.header.len() as u64)
    }

    /// Decrypts segment `index`; `is_last` must say whether it is the object's final
    /// segment, which is what makes truncation detectable.
    pub fn open_segment(&self, index: u64, is_last: bool, ciphertext: &[u8]) -> Result<Vec<u8>, OpenError> {
        let mut buf = ciphertext.to_vec();
        self.open_segment_in_place(index, is_last, &mut buf)?;
        Ok(buf)
    }

    /// Like [`Opener::open_segment`], decrypting in `buf` (ciphertext in, plaintext
    /// out) to avoid an allocation per segment. On error `buf` is wiped.
    pub fn open_segment_in_place(
        &self,
        index: u64,
        is_last: bool,
        buf: &mut Vec<u8>,
    ) -> Result<(), OpenError> {
        let len = buf.len();
        let full = self.header.segment_len + TAG_LEN;
        let length_ok = if is_last {
            // An empty final segment only ever stands alone (empty plaintext).
            len <= full && (len > TAG_LEN || (len == TAG_LEN && index == 0))
        } else {
            len == full
        };
        if !length_ok {
            buf.zeroize();
            return Err(OpenError::SegmentLength { index, len });
        }
        match self.payload_key.open_in_place(
            segment_nonce(index, is_last),
            Aad::from(self.header_hash),
            &mut buf[..],
        ) {
            Ok(plain) => {
                let plain_len = plain.len();
                buf.truncate(plain_len);
                Ok(())
            }
            Err(_) => {
                // ring leaves unspecified bytes behind on failure: release none of them.
                buf.zeroize();
                Err(OpenError::SegmentAuth { index })
            }
        }
    }

    fn stride(&self) -> u64 {
        (self.header.segment_len + TAG_LEN) as u64
    }

    fn segment_ciphertext_len(&self, index: u64, count: u64, ciphertext_len: u64) -> usize {
        if index + 1 == count {
            // Bounded by the stride, checked in segment_count.
            (ciphertext_len - self.segment_offset(index)) as usize
        } else {
            self.header.segment_len + TAG_LEN
        }
    }
}

/// Sequential + seekable plaintext view of a sealed object, for code that needs `Read +
/// Seek` (the `image` decoder reading the gateway's own spool, the clamd feeder).
/// Decrypts one segment at a time; memory bounded by one segment. Authentication errors
/// surface as `io::Error` (kind `InvalidData`) wrapping [`OpenError`].
///
/// Plaintext of a segment is released once that segment authenticates, before later
/// segments are read: callers that must not release anything from a tampered file run
/// [`verify_all`] first. Reading to the end always authenticates the final segment, so
/// a sequential reader that reaches EOF has seen no truncation.
pub struct DecryptReader<R: Read + Seek> {
    pub(super) inner: R,
    pub(super) opener: Opener,
    pub(super) ciphertext_len: u64,
    pub(super) plaintext_len: u64,
    pub(super) segment_count: u64,
    pub(super) pos: u64,
    pub(super) inner_pos: Option<u64>,
    pub(super) segment: Zeroizing<Vec<u8>>,
    pub(super) segment_index: Option<u64>,
    pub(super) last_verified: bool,
}

impl<R: Read + Seek> fmt::Debug for DecryptReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptReader")
            .field("plaintext_len", &self.plaintext_len)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl<R: Read + Seek> DecryptReader<R> {
    /// A reader over `inner`, the whole sealed object (header included) of
    /// `ciphertext_len` bytes. Nothing is read until the first `read`.
    pub fn new(inner: R, ciphertext_len: u64, opener: Opener) -> Result<Self, OpenError> {
        let segment_count = opener.segment_count(ciphertext_len)?;
        let plaintext_len = opener.plaintext_len(ciphertext_len)?;
        let capacity = opener.segment_len() + TAG_LEN;
        Ok(DecryptReader {
            inner,
            opener,
            ciphertext_len,
            plaintext_len,
            segment_count,
            pos: 0,
            inner_pos: None,
            segment: Zeroizing::new(Vec::with_capacity(capacity)),
            segment_index: None,
            last_verified: false,
        })
    }

    /// Total plaintext bytes.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Gives back the underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn load(&mut self, index: u64) -> io::Result<()> {
        self.segment_index = None;
        let offset = self.opener.segment_offset(index);
        let len = self
            .opener
            .segment_ciphertext_len(index, self.segment_count, self.ciphertext_len);
        if self.inner_pos != Some(offset) {
            self.inner_pos = None;
            self.inner.seek(SeekFrom::Start(offset))?;
        }
        self.inner_pos = None;
        self.segment.clear();
        self.segment.resize(len, 0);
        self.inner.read_exact(&mut self.segment[..])?;
        self.inner_pos = Some(offset + len as u64);
        let is_last = index + 1 == self.segment_count;
        self.opener
            .open_segment_in_place(index, is_last, &mut self.segment)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
        self.segment_index = Some(index);
        if is_last {
            self.last_verified = true;
        }
        Ok(())
    }
}

impl<R: Read + Seek> Read for DecryptReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.plaintext_len {
            // Without this an empty file, which has no plaintext to read, would never
            // have its only segment authenticated.
            if !self.last_verified {
                self.load(self.segment_count - 1)?;
            }
            return Ok(0);
        }
        let segment_len = self.opener.segment_len() as u64;
        let index = self.pos / segment_len;
        if self.segment_index != Some(index) {
            self.load(index)?;
        }
        let within = (self.pos - index * segment_len) as usize;
        let available = self.segment.get(within..).unwrap_or_default();
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for DecryptReader<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.plaintext_len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.pos.checked_add_signed(delta),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )
        })?;
        self.pos = target;
        Ok(target)
    }
}

/// Verifies every segment (decrypt and discard) without releasing plaintext: downloads call this
/// first so that a tampered file is refused before any plaintext leaves.
///
/// `inner` is the whole object (header included) of `ciphertext_len` bytes; its header
/// must be byte-for-byte the opener's.
pub fn verify_all<R: Read + Seek>(
    mut inner: R,
    ciphertext_len: u64,
    opener: &Opener,
) -> Result<(), OpenError> {
    let count = opener.segment_count(ciphertext_len)?;
    inner.seek(SeekFrom::Start(0))?;
    // Sized for the largest segment up front so that no reallocation leaves a copy
    // of plaintext behind in freed memory.
    let mut buf = Zeroizing::new(Vec::with_capacity(
        opener.header.len().max(opener.segment_len() + TAG_LEN),
    ));
    buf.resize(opener.header.len(), 0);
    inner.read_exact(&mut buf[..])?;
    if buf[..] != opener.header.bytes[..] {
        return Err(OpenError::HeaderMismatch);
    }
    for index in 0..count {
        let len = opener.segment_ciphertext_len(index, count, ciphertext_len);
        buf.clear();
        buf.resize(len, 0);
        inner.read_exact(&mut buf[..])?;
        opener.open_segment_in_place(index, index + 1 == count, &mut buf)?;
    }
    Ok(())
}
