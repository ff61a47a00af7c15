//! Sealed-file format: per-file envelope encryption of stored uploads (STREAM-style
//! AES-256-GCM segments, data key wrapped for the control plane's X25519 key).
//! The byte-level specification and test vectors are in `docs/sealed-file-format.md`.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::digest::{digest, SHA256};
use ring::hkdf::{KeyType, Salt, HKDF_SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

/// Plaintext bytes per segment in files the gateway writes.
pub const SEGMENT_LEN: usize = 64 * 1024;
/// Smallest plaintext segment length a header may record.
pub const MIN_SEGMENT_LEN: usize = 16;
/// Largest plaintext segment length a header may record. Bounds what a reader of an
/// untrusted header allocates for one segment.
pub const MAX_SEGMENT_LEN: usize = 1024 * 1024;
/// AES-GCM tag bytes appended to every segment.
pub const TAG_LEN: usize = 16;
/// First bytes of every sealed file.
pub const MAGIC: [u8; 7] = *b"UPGSEAL";
/// The only format version this module writes and reads.
pub const VERSION: u8 = 1;
/// Longest `file_id`, in bytes: its length is one byte in the header.
pub const MAX_FILE_ID_LEN: usize = 255;
/// Header length with an empty `file_id`.
pub const MIN_HEADER_LEN: usize = FIXED_LEN + WRAPPED_KEY_LEN;
/// Header length with the longest `file_id`: reading this many bytes (or the whole
/// object, if shorter) always suffices for [`Header::parse`].
pub const MAX_HEADER_LEN: usize = MIN_HEADER_LEN + MAX_FILE_ID_LEN;

/// magic, version, key id, segment length, ephemeral public key, file-id length.
const FIXED_LEN: usize = 7 + 1 + 4 + 4 + 32 + 1;
const DATA_KEY_LEN: usize = 32;
const WRAPPED_KEY_LEN: usize = DATA_KEY_LEN + TAG_LEN;
const WRAP_INFO: &[u8] = b"upgate-seal/v1/x25519-wrap";
const PAYLOAD_INFO: &[u8] = b"upgate-seal/v1/payload";

/// Why a file could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The `file_id` does not fit its one-byte length prefix.
    #[error("file_id is {len} bytes long; at most 255 bytes are allowed")]
    FileIdTooLong {
        /// Length of the rejected `file_id`, in bytes.
        len: usize,
    },
    /// A segment length outside `MIN_SEGMENT_LEN..=MAX_SEGMENT_LEN` was asked for.
    #[error("segment length {len} is outside the allowed range 16..=1048576")]
    InvalidSegmentLength {
        /// The rejected segment length.
        len: usize,
    },
    /// The recipient public key is a low-order point, so the key agreement would give
    /// an all-zero shared secret that anyone can compute.
    #[error("recipient public key (key id {key_id}) is a low-order point and cannot be used")]
    LowOrderRecipient {
        /// Key id of the rejected recipient key.
        key_id: u32,
    },
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// Why a sealed file (or part of one) could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Fewer bytes were given than the header needs; read at least `needed` bytes (never
    /// more than `MAX_HEADER_LEN`) and parse again.
    #[error("sealed-file header is incomplete: at least {needed} bytes are needed")]
    HeaderIncomplete {
        /// How many bytes the header needs at least, as far as can be told so far.
        needed: usize,
    },
    /// The bytes do not start with the sealed-file magic.
    #[error("not a sealed file: bad magic bytes")]
    BadMagic,
    /// The header names a format version this code does not know.
    #[error("unsupported sealed-file version {0}")]
    UnsupportedVersion(u8),
    /// The header records a segment length outside the allowed range.
    #[error("sealed-file header records an invalid segment length {0}")]
    InvalidSegmentLength(u32),
    /// The header's `file_id` is not UTF-8, so no sealer wrote it.
    #[error("sealed-file header has a file_id that is not UTF-8")]
    InvalidFileId,
    /// The header's `file_id` is not the one the caller expected: this ciphertext
    /// belongs to another file.
    #[error("sealed file belongs to another file id")]
    FileIdMismatch,
    /// The file was sealed for another recipient key id than the secret key given.
    #[error("file is sealed for key id {file}, but the secret key has key id {key}")]
    KeyIdMismatch {
        /// Key id named by the file's header.
        file: u32,
        /// Key id of the secret key that was offered.
        key: u32,
    },
    /// The header's ephemeral public key is a low-order point (all-zero shared secret).
    #[error("sealed-file header has a low-order ephemeral public key")]
    LowOrderPoint,
    /// The wrapped data key did not authenticate: wrong secret key, or the header was
    /// altered.
    #[error("data key could not be unwrapped: wrong secret key or tampered header")]
    UnwrapFailed,
    /// The object's header differs from the header the opener was built with.
    #[error("sealed object's header differs from the header it is being opened with")]
    HeaderMismatch,
    /// No sequence of segments has this ciphertext length: the file was cut or padded.
    #[error("ciphertext length {ciphertext_len} is impossible for this header (truncated or padded)")]
    InvalidLength {
        /// The rejected total object length, header included.
        ciphertext_len: u64,
    },
    /// A segment has a length its position does not allow.
    #[error("segment {index} has an impossible length of {len} bytes")]
    SegmentLength {
        /// Zero-based segment index.
        index: u64,
        /// Ciphertext bytes given for it, tag included.
        len: usize,
    },
    /// A segment did not authenticate: it was altered, moved, duplicated, cut short,
    /// is not the final segment it claims to be, or belongs to another file.
    #[error("segment {index} failed authentication (tampered, reordered, truncated or from another file)")]
    SegmentAuth {
        /// Zero-based segment index.
        index: u64,
    },
    /// Reading the sealed object failed.
    #[error("I/O error while reading the sealed object: {0}")]
    Io(#[from] io::Error),
}

/// The control plane's X25519 public key, which the gateway seals files for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecipientPublicKey {
    /// Recorded in every header so that files stay openable after the key rotates.
    pub key_id: u32,
    /// The X25519 public key (u-coordinate, little-endian, as in RFC 7748).
    pub bytes: [u8; 32],
}

/// The control plane's X25519 secret key. Only the control plane holds it.
#[derive(Clone)]
pub struct RecipientSecretKey {
    key_id: u32,
    secret: StaticSecret,
}

impl RecipientSecretKey {
    /// A new random key. Panics only if the operating system's RNG fails, which leaves
    /// nothing sensible to do; use [`RecipientSecretKey::try_generate`] to handle it.
    pub fn generate(key_id: u32) -> Self {
        match Self::try_generate(key_id) {
            Ok(key) => key,
            Err(err) => panic!("cannot generate a recipient key: {err}"),
        }
    }

    /// A new random key, reporting RNG failure instead of panicking.
    pub fn try_generate(key_id: u32) -> Result<Self, SealError> {
        let bytes = random_32()?;
        Ok(Self::from_bytes(key_id, *bytes))
    }

    /// Rebuilds a key from its stored bytes. Any 32 bytes are a valid X25519 scalar.
    pub fn from_bytes(key_id: u32, bytes: [u8; 32]) -> Self {
        Self {
            key_id,
            secret: StaticSecret::from(bytes),
        }
    }

    /// The secret bytes, for storing the key. The caller should zeroize them after use.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// The key id files sealed for this key carry.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The public half, which is all the gateway gets.
    pub fn public(&self) -> RecipientPublicKey {
        RecipientPublicKey {
            key_id: self.key_id,
            bytes: PublicKey::from(&self.secret).to_bytes(),
        }
    }
}

impl fmt::Debug for RecipientSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecipientSecretKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A file's 256-bit data key. Zeroized on drop; its bytes never leave this module.
#[derive(Clone)]
pub struct DataKey([u8; DATA_KEY_LEN]);

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Streaming encryptor for one file. Holds at most one plaintext segment.
pub struct Sealer {
    header: Vec<u8>,
    header_hash: [u8; 32],
    payload_key: LessSafeKey,
    data_key: DataKey,
    segment_len: usize,
    counter: u64,
    buf: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("header_len", &self.header.len())
            .field("segment_len", &self.segment_len)
            .field("segments_written", &self.counter)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// Starts sealing a file for `recipient`, bound to `file_id` (the storage id the
    /// object will live under, at most 255 bytes), with a fresh random data key.
    pub fn new(recipient: &RecipientPublicKey, file_id: &str) -> Result<Sealer, SealError> {
        let data_key = random_32()?;
        let ephemeral = random_32()?;
        Self::build(
            recipient,
            file_id,
            SEGMENT_LEN,
            DataKey(*data_key),
            StaticSecret::from(*ephemeral),
        )
    }

    /// Fixed keys, so that the test vectors are reproducible. Test-only: a repeated
    /// data key outside tests would be a repeated AES-GCM (key, nonce) pair.
    #[cfg(test)]
    fn deterministic(
        recipient: &RecipientPublicKey,
        file_id: &str,
        segment_len: usize,
        data_key: [u8; 32],
        ephemeral: [u8; 32],
    ) -> Result<Sealer, SealError> {
        Self::build(
            recipient,
            file_id,
            segment_len,
            DataKey(data_key),
            StaticSecret::from(ephemeral),
        )
    }

    fn build(
        recipient: &RecipientPublicKey,
        file_id: &str,
        segment_len: usize,
        data_key: DataKey,
        ephemeral: StaticSecret,
    ) -> Result<Sealer, SealError> {
        let file_id = file_id.as_bytes();
        let file_id_len =
            u8::try_from(file_id.len()).map_err(|_| SealError::FileIdTooLong { len: file_id.len() })?;
        let segment_len_u32 = u32::try_from(segment_len)
            .ok()
            .filter(|_| (MIN_SEGMENT_LEN..=MAX_SEGMENT_LEN).contains(&segment_len))
            .ok_or(SealError::InvalidSegmentLength { len: segment_len })?;

        let ephemeral_public = PublicKey::from(&ephemeral);
        let shared = ephemeral.diffie_hellman(&PublicKey::from(recipient.bytes));
        if !shared.was_contributory() {
            return Err(SealError::LowOrderRecipient {
                key_id: recipient.key_id,
            });
        }

        let mut header = Vec::with_capacity(MIN_HEADER_LEN + file_id.len());
        header.extend_from_slice(&MAGIC);
        header.push(VERSION);
        header.extend_from_slice(&recipient.key_id.to_be_bytes());
        header.extend_from_slice(&segment_len_u32.to_be_bytes());
        header.extend_from_slice(ephemeral_public.as_bytes());
        header.push(file_id_len);
        header.extend_from_slice(file_id);

        // The wrapped key is the header's last field, so the wrap can authenticate every
        // header byte before it as AAD (it cannot be its own AAD); its own bytes are
        // covered by its tag. Segments then authenticate the complete header.
        let wrap_key = aes_key(&wrap_key_bytes(
            shared.as_bytes(),
            ephemeral_public.as_bytes(),
            &recipient.bytes,
        ));
        let mut wrapped = Zeroizing::new(data_key.0);
        let tag = seal_in_place(&wrap_key, wrap_nonce(), &header, &mut wrapped[..]);
        header.extend_from_slice(&wrapped[..]);
        header.extend_from_slice(tag.as_ref());

        let header_hash = sha256(&header);
        let payload_key = aes_key(&payload_key_bytes(&data_key, &header_hash));
        Ok(Sealer {
            header,
            header_hash,
            payload_key,
            data_key,
            segment_len,
            counter: 0,
            buf: Zeroizing::new(Vec::with_capacity(segment_len)),
        })
    }

    /// The header: write these bytes before anything `push` or `finish` produces.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// Plaintext bytes per segment of this file.
    pub fn segment_len(&self) -> usize {
        self.segment_len
    }

    /// Adds plaintext; appends to `out` every segment that is now complete.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while !data.is_empty() {
            // A full buffer is sealed only once more data proves it is not the last
            // segment: the final segment must carry the last-segment flag, and a file
            // whose length is a multiple of the segment length ends in a full segment,
            // not an empty one, so that its ciphertext length has one reading.
            if self.buf.len() == self.segment_len {
                self.seal_segment(false, out);
            }
            let take = (self.segment_len - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
    }

    /// Seals the final segment into `out` and returns the data key, which lets the
    /// gateway re-read its own spool (for scanning) before it forgets the key.
    pub fn finish(mut self, out: &mut Vec<u8>) -> DataKey {
        self.seal_segment(true, out);
        self.data_key.clone()
    }

    fn seal_segment(&mut self, last: bool, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.buf);
        let tag = seal_in_place(
            &self.payload_key,
            segment_nonce(self.counter, last),
            &self.header_hash,
            &mut out[start..],
        );
        out.extend_from_slice(tag.as_ref());
        self.buf.zeroize();
        self.counter += 1;
    }
}

/// A parsed, not yet authenticated, sealed-file header. It is authenticated by
/// [`unwrap_key`] and again by every segment.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    bytes: Vec<u8>,
    key_id: u32,
    segment_len: usize,
    file_id: String,
}

impl Header {
    /// Parses the header at the start of `bytes`; bytes after it are ignored. Too few
    /// bytes give [`OpenError::HeaderIncomplete`]: reading `MAX_HEADER_LEN` bytes (or the
    /// whole object) always suffices.
    pub fn parse(bytes: &[u8]) -> Result<Header, OpenError> {
        let magic_seen = bytes.len().min(MAGIC.len());
        if bytes[..magic_seen] != MAGIC[..magic_seen] {
            return Err(OpenError::BadMagic);
        }
        let version = *bytes.get(MAGIC.len()).ok_or(OpenError::HeaderIncomplete {
            needed: MIN_HEADER_LEN,
        })?;
        if version != VERSION {
            return Err(OpenError::UnsupportedVersion(version));
        }
        let fixed = bytes.get(..FIXED_LEN).ok_or(OpenError::HeaderIncomplete {
            needed: MIN_HEADER_LEN,
        })?;
        let total = MIN_HEADER_LEN + usize::from(fixed[FIXED_LEN - 1]);
        let bytes = bytes
            .get(..total)
            .ok_or(OpenError::HeaderIncomplete { needed: total })?;

        let key_id = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let segment_len_u32 = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        let segment_len = usize::try_from(segment_len_u32)
            .ok()
            .filter(|len| (MIN_SEGMENT_LEN..=MAX_SEGMENT_LEN).contains(len))
            .ok_or(OpenError::InvalidSegmentLength(segment_len_u32))?;
        let file_id = std::str::from_utf8(&bytes[FIXED_LEN..total - WRAPPED_KEY_LEN])
            .map_err(|_| OpenError::InvalidFileId)?
            .to_owned();
        Ok(Header {
            bytes: bytes.to_vec(),
            key_id,
            segment_len,
            file_id,
        })
    }

    /// Reads exactly the header's bytes from the start of a sealed object, leaving
    /// `reader` at segment 0. An object that ends inside the header is
    /// [`OpenError::HeaderIncomplete`].
    pub fn read_from<R: Read>(reader: &mut R) -> Result<Header, OpenError> {
        let mut bytes = vec![0u8; FIXED_LEN];
        read_header_part(reader, &mut bytes[..], MIN_HEADER_LEN)?;
        // Checks magic and version before trusting the length byte.
        match Header::parse(&bytes) {
            Err(OpenError::HeaderIncomplete { needed }) => {
                bytes.resize(needed, 0);
                read_header_part(reader, &mut bytes[FIXED_LEN..], needed)?;
                Header::parse(&bytes)
            }
            other => other,
        }
    }

    /// Header length in bytes: segment 0 starts here.
    #[allow(clippy::len_without_is_empty)] // a header is never empty
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// The header's bytes, exactly as stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Id of the recipient key the data key is wrapped for.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Plaintext bytes per segment.
    pub fn segment_len(&self) -> usize {
        self.segment_len
    }

    /// The file id the sealer bound this file to. Authenticated only once
    /// [`unwrap_key`] has succeeded.
    pub fn file_id(&self) -> &str {
        &self.file_id
    }

    /// Refuses a file sealed under another id than the one it is stored under, which is
    /// how a ciphertext copied from another file is caught.
    pub fn check_file_id(&self, expected: &str) -> Result<(), OpenError> {
        if self.file_id == expected {
            Ok(())
        } else {
            Err(OpenError::FileIdMismatch)
        }
    }

    fn ephemeral_public(&self) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(&self.bytes[16..48]);
        key
    }

    fn wrap_aad(&self) -> &[u8] {
        &self.bytes[..self.bytes.len() - WRAPPED_KEY_LEN]
    }

    fn wrapped_key(&self) -> &[u8] {
        &self.bytes[self.bytes.len() - WRAPPED_KEY_LEN..]
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("key_id", &self.key_id)
            .field("segment_len", &self.segment_len)
            .field("file_id", &self.file_id)
            .field("len", &self.bytes.len())
            .finish()
    }
}

fn read_header_part<R: Read>(reader: &mut R, buf: &mut [u8], needed: usize) -> Result<(), OpenError> {
    reader.read_exact(buf).map_err(|err| match err.kind() {
        io::ErrorKind::UnexpectedEof => OpenError::HeaderIncomplete { needed },
        _ => OpenError::Io(err),
    })
}

/// Recovers a file's data key with the control plane's secret key. Success also
/// authenticates every header byte, `file_id` included.
pub fn unwrap_key(header: &Header, secret: &RecipientSecretKey) -> Result<DataKey, OpenError> {
    if header.key_id != secret.key_id {
        return Err(OpenError::KeyIdMismatch {
            file: header.key_id,
            key: secret.key_id,
        });
    }
    let ephemeral_public = header.ephemeral_public();
    let shared = secret.secret.diffie_hellman(&PublicKey::from(ephemeral_public));
    if !shared.was_contributory() {
        return Err(OpenError::LowOrderPoint);
    }
    let recipient_public = PublicKey::from(&secret.secret).to_bytes();
    let wrap_key = aes_key(&wrap_key_bytes(
        shared.as_bytes(),
        &ephemeral_public,
        &recipient_public,
    ));
    let mut in_out = Zeroizing::new([0u8; WRAPPED_KEY_LEN]);
    in_out.copy_from_slice(header.wrapped_key());
    let plain = wrap_key
        .open_in_place(wrap_nonce(), Aad::from(header.wrap_aad()), &mut in_out[..])
        .map_err(|_| OpenError::UnwrapFailed)?;
    let mut key = DataKey([0u8; DATA_KEY_LEN]);
    key.0.copy_from_slice(plain);
    Ok(key)
}

/// Decrypts segments of one file, in any order.
#[derive(Clone)]
pub struct Opener {
    header: Header,
    header_hash: [u8; 32],
    payload_key: LessSafeKey,
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
    inner: R,
    opener: Opener,
    ciphertext_len: u64,
    plaintext_len: u64,
    segment_count: u64,
    pos: u64,
    inner_pos: Option<u64>,
    segment: Zeroizing<Vec<u8>>,
    segment_index: Option<u64>,
    last_verified: bool,
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

/// The key-wrap key: HKDF-SHA256 over the X25519 shared secret. The salt binds both
/// public keys (the raw header bytes, not just the points they decode to), so the wrap
/// key belongs to exactly this sender/recipient pair.
fn wrap_key_bytes(
    shared: &[u8; 32],
    ephemeral_public: &[u8; 32],
    recipient_public: &[u8; 32],
) -> Zeroizing<[u8; 32]> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral_public);
    salt[32..].copy_from_slice(recipient_public);
    hkdf_32(&salt, shared, WRAP_INFO)
}

/// The segment key is derived rather than being the data key itself because: the data
/// key leaves the sealer (the gateway keeps it to re-read its spool) and may gain other
/// uses later, and a derived key with its own label keeps those uses apart; and the salt
/// is the header hash, which contains the per-file random ephemeral key, so even if a
/// data key were ever reused the counter nonces would run under a different AES key.
fn payload_key_bytes(data_key: &DataKey, header_hash: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    hkdf_32(header_hash, &data_key.0, PAYLOAD_INFO)
}

struct Len32;

impl KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn hkdf_32(salt: &[u8], ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    Salt::new(HKDF_SHA256, salt)
        .extract(ikm)
        .expand(&[info], Len32)
        .and_then(|okm| okm.fill(&mut out[..]))
        // HKDF-SHA256 fails only for outputs over 8160 bytes.
        .expect("HKDF-SHA256 cannot fail for a 32-byte output");
    out
}

fn seal_in_place(key: &LessSafeKey, nonce: Nonce, aad: &[u8], in_out: &mut [u8]) -> Tag {
    key.seal_in_place_separate_tag(nonce, Aad::from(aad), in_out)
        // Fails only above GCM's 64 GiB message limit; we seal at most one segment
        // (MAX_SEGMENT_LEN) or one 32-byte key at a time.
        .expect("AES-GCM refused a message far below its length limit")
}

fn aes_key(bytes: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, bytes)
            // Fails only for a key of the wrong length.
            .expect("AES-256-GCM accepts any 32-byte key"),
    )
}

/// STREAM nonce (as in age): 11-byte big-endian segment counter, then the last-segment
/// flag. A u64 counter fills the low 8 of the 11 bytes.
fn segment_nonce(index: u64, last: bool) -> Nonce {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[3..11].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    Nonce::assume_unique_for_key(nonce)
}

/// The wrap key comes from a fresh ephemeral key per file and seals exactly one
/// message, so a fixed nonce is never reused under one key.
fn wrap_nonce() -> Nonce {
    Nonce::assume_unique_for_key([0u8; NONCE_LEN])
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

fn random_32() -> Result<Zeroizing<[u8; 32]>, SealError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(&mut bytes[..])
        .map_err(|_| SealError::Random)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    const TEST_SEGMENT_LEN: usize = 16;

    fn recipient() -> RecipientSecretKey {
        RecipientSecretKey::from_bytes(7, [0x11; 32])
    }

    fn pattern(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    fn seal(sealer: Sealer, data: &[u8], chunks: &[usize]) -> (Vec<u8>, DataKey) {
        let mut sealer = sealer;
        let mut out = sealer.header().to_vec();
        let mut rest = data;
        let mut sizes = chunks.iter().copied().cycle();
        while !rest.is_empty() {
            let take = sizes.next().unwrap_or(rest.len()).max(1).min(rest.len());
            sealer.push(&rest[..take], &mut out);
            rest = &rest[take..];
        }
        let key = sealer.finish(&mut out);
        (out, key)
    }

    fn seal_small(file_id: &str, data: &[u8], seed: u8) -> Vec<u8> {
        let sealer = Sealer::deterministic(
            &recipient().public(),
            file_id,
            TEST_SEGMENT_LEN,
            [seed; 32],
            [seed.wrapping_add(1); 32],
        )
        .unwrap();
        seal(sealer, data, &[data.len().max(1)]).0
    }

    /// What a download does: header, unwrap, verify everything, then read.
    fn open_all(object: &[u8], secret: &RecipientSecretKey) -> Result<Vec<u8>, OpenError> {
        let header = Header::parse(object)?;
        let key = unwrap_key(&header, secret)?;
        let opener = Opener::new(header, key);
        let len = object.len() as u64;
        verify_all(Cursor::new(object), len, &opener)?;
        let mut reader = DecryptReader::new(Cursor::new(object), len, opener)?;
        let mut plain = Vec::new();
        reader.read_to_end(&mut plain)?;
        Ok(plain)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(text: &str) -> Vec<u8> {
        let text: String = text.split_whitespace().collect();
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn roundtrip_at_segment_boundaries() {
        let secret = RecipientSecretKey::generate(3);
        for len in [
            0,
            1,
            SEGMENT_LEN - 1,
            SEGMENT_LEN,
            SEGMENT_LEN + 1,
            2 * SEGMENT_LEN,
            3 * SEGMENT_LEN - 1,
            3 * SEGMENT_LEN,
        ] {
            let data = pattern(len, len as u64);
            let sealer = Sealer::new(&secret.public(), "obj-1").unwrap();
            let header_len = sealer.header().len() as u64;
            let (object, _) = seal(sealer, &data, &[SEGMENT_LEN]);
            let segments = len.div_ceil(SEGMENT_LEN).max(1) as u64;
            assert_eq!(
                object.len() as u64,
                header_len + len as u64 + segments * TAG_LEN as u64
            );
            assert_eq!(open_all(&object, &secret).unwrap(), data, "len {len}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn roundtrip_any_length_any_chunking(
            len in prop_oneof![
                0usize..300 * 1024,
                (0usize..=4).prop_map(|k| k * SEGMENT_LEN),
            ],
            chunks in prop::collection::vec(1usize..100_000, 1..6),
            seed in any::<u64>(),
        ) {
            let secret = recipient();
            let data = pattern(len, seed);
            let sealer = Sealer::new(&secret.public(), "roundtrip").unwrap();
            let (object, spool_key) = seal(sealer, &data, &chunks);
            prop_assert_eq!(&open_all(&object, &secret).unwrap(), &data);

            // The gateway re-reads its spool with the key finish() returned.
            let header = Header::parse(&object).unwrap();
            prop_assert_eq!(header.file_id(), "roundtrip");
            let opener = Opener::new(header, spool_key);
            prop_assert_eq!(opener.plaintext_len(object.len() as u64).unwrap(), len as u64);
            let mut reader =
                DecryptReader::new(Cursor::new(&object), object.len() as u64, opener).unwrap();
            let mut plain = Vec::new();
            reader.read_to_end(&mut plain).unwrap();
            prop_assert_eq!(plain, data);
        }

        #[test]
        fn any_flipped_byte_is_refused(position in 0usize..1000, mask in 1u8..=255) {
            let object = seal_small("flip", &pattern(40, 9), 5);
            let position = position % object.len();
            let mut tampered = object.clone();
            tampered[position] ^= mask;
            prop_assert!(open_all(&tampered, &recipient()).is_err());
        }

        #[test]
        fn seek_and_read_any_range(
            len in 0usize..200_000,
            start in 0u64..210_000,
            want in 0usize..70_000,
            small in any::<bool>(),
        ) {
            let data = pattern(len, 77);
            let secret = recipient();
            let sealer = if small {
                Sealer::deterministic(&secret.public(), "range", 1000, [1; 32], [2; 32]).unwrap()
            } else {
                Sealer::new(&secret.public(), "range").unwrap()
            };
            let (object, key) = seal(sealer, &data, &[4096]);
            let opener = Opener::new(Header::parse(&object).unwrap(), key);
            let mut reader =
                DecryptReader::new(Cursor::new(&object), object.len() as u64, opener).unwrap();
            prop_assert_eq!(reader.seek(SeekFrom::Start(start)).unwrap(), start);
            let mut got = Vec::new();
            (&mut reader).take(want as u64).read_to_end(&mut got).unwrap();
            let from = (start as usize).min(len);
            let to = (from + want).min(len);
            prop_assert_eq!(&got[..], &data[from..to]);
        }
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let object = seal_small("bits", &pattern(40, 9), 5);
        for position in 0..object.len() {
            for bit in 0..8 {
                let mut tampered = object.clone();
                tampered[position] ^= 1 << bit;
                assert!(
                    open_all(&tampered, &recipient()).is_err(),
                    "flip of bit {bit} at byte {position} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn seek_variants() {
        let data = pattern(100, 1);
        let object = seal_small("seek", &data, 1);
        let key = unwrap_key(&Header::parse(&object).unwrap(), &recipient()).unwrap();
        let opener = Opener::new(Header::parse(&object).unwrap(), key);
        let mut reader = DecryptReader::new(Cursor::new(&object), object.len() as u64, opener).unwrap();
        assert_eq!(reader.plaintext_len(), 100);
        let mut byte = [0u8; 1];
        assert_eq!(reader.seek(SeekFrom::End(-1)).unwrap(), 99);
        reader.read_exact(&mut byte).unwrap();
        assert_eq!(byte[0], data[99]);
        assert_eq!(reader.seek(SeekFrom::Current(-50)).unwrap(), 50);
        reader.read_exact(&mut byte).unwrap();
        assert_eq!(byte[0], data[50]);
        assert_eq!(reader.seek(SeekFrom::Start(500)).unwrap(), 500);
        assert_eq!(reader.read(&mut byte).unwrap(), 0);
        assert!(reader.seek(SeekFrom::Current(-501)).is_err());
        assert_eq!(reader.seek(SeekFrom::Start(3)).unwrap(), 3);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, data[3..]);
    }

    // --- test vectors (the same hex is in docs/sealed-file-format.md) ---

    const VEC_KEY_ID: u32 = 0x0102_0304;
    const VEC_RECIPIENT_SECRET: &str = "a8abababababababababababababababababababababababababababababab6b";
    const VEC_RECIPIENT_PUBLIC: &str = "e3712d851a0e5d79b831c5e34ab22b41a198171de209b8b8faca23a11c624859";
    const VEC_EPHEMERAL_SECRET: &str = "4043434343434343434343434343434343434343434343434343434343434343";
    const VEC_EPHEMERAL_PUBLIC: &str = "cdefd8783a91b446640e2e1f95599db35e484a0071bd2182b3b60d0812c10c70";
    const VEC_SHARED_SECRET: &str = "5706688e1ebc3041ba709f9c85e724d1c3d4df658d302f86bf8555aa3ea8a619";
    const VEC_WRAP_KEY: &str = "e3678c1a7f4d825a45fd3d622d066724c428d67d0c708f15bbef17c4cb406622";
    const VEC_DATA_KEY: &str = "0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d";

    struct Vector {
        file_id: &'static str,
        plaintext: &'static [u8],
        header_hash: &'static str,
        payload_key: &'static str,
        header: &'static str,
        body: &'static str,
    }

    const VECTORS: [Vector; 3] = [
        Vector {
            file_id: "",
            plaintext: b"",
            header_hash: "83a0bfd0bb6662c834bfa584b8911ed9d86538c8c2a06f6d6a75ec715bac5175",
            payload_key: "6c9b9addf830e25117b24b32c3ab9e8b474cd945e8adea01982245d03f912247",
            header: "5550475345414c010102030400000010cdefd8783a91b446640e2e1f95599db3\
                     5e484a0071bd2182b3b60d0812c10c700003d8b160fbfa0fd8322546b0660e08\
                     5a01da71004163c6a6849033e089e85c8ef7c2cb854c8fee9d8a4c0c2745f01f\
                     53",
            body: "d63d8f24bc0ceafb294debf76ef2b80d",
        },
        Vector {
            file_id: "f_01",
            plaintext: b"hello, upgate",
            header_hash: "a8d3e7f69f5c9c450638230423fc969ba7823c9bb800b3434076b94737b445ba",
            payload_key: "3b556651dcbe8a4b836829899055a242175531c7652e50f2edf4f18c44ec6f29",
            header: "5550475345414c010102030400000010cdefd8783a91b446640e2e1f95599db3\
                     5e484a0071bd2182b3b60d0812c10c7004665f303103d8b160fbfa0fd8322546\
                     b0660e085a01da71004163c6a6849033e089e85c8e037c36fec038c91e0dd874\
                     5c1737b515",
            body: "ea68bcfd38075d867e1c127c9cb413d5b6198421a73532fd775d551780",
        },
        Vector {
            file_id: "f_02",
            plaintext: b"The caller sent two photos.",
            header_hash: "e3a514dafbb2baa432fcb891ca0d333e089630768e5bf81c1da11b875ec100f3",
            payload_key: "1efa305a8f914e80cb7d563a9b4195f399389e1512c3261e5fb017da0f5eb6de",
            header: "5550475345414c010102030400000010cdefd8783a91b446640e2e1f95599db3\
                     5e484a0071bd2182b3b60d0812c10c7004665f303203d8b160fbfa0fd8322546\
                     b0660e085a01da71004163c6a6849033e089e85c8e07968fae5c627a40d2a705\
                     27866fe45a",
            body: "73fd1d88a8b9cba7bc4e38887e4433efc917e53d35b6fa3c46fce84b1111ef55\
                   5873b0cc0e8aec52b5b82567c5b6b16d4f2335e421010c3a6e6590",
        },
    ];

    fn bytes32(text: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&unhex(text));
        out
    }

    fn vector_secret() -> RecipientSecretKey {
        RecipientSecretKey::from_bytes(VEC_KEY_ID, bytes32(VEC_RECIPIENT_SECRET))
    }

    fn vector_sealer(file_id: &str) -> Sealer {
        Sealer::deterministic(
            &vector_secret().public(),
            file_id,
            TEST_SEGMENT_LEN,
            bytes32(VEC_DATA_KEY),
            bytes32(VEC_EPHEMERAL_SECRET),
        )
        .unwrap()
    }

    #[test]
    fn vectors_key_agreement() {
        let secret = vector_secret();
        assert_eq!(hex(&secret.public().bytes), VEC_RECIPIENT_PUBLIC);
        let ephemeral = StaticSecret::from(bytes32(VEC_EPHEMERAL_SECRET));
        let ephemeral_public = PublicKey::from(&ephemeral);
        assert_eq!(hex(ephemeral_public.as_bytes()), VEC_EPHEMERAL_PUBLIC);
        let shared = ephemeral.diffie_hellman(&PublicKey::from(secret.public().bytes));
        assert_eq!(hex(shared.as_bytes()), VEC_SHARED_SECRET);
        let wrap = wrap_key_bytes(
            shared.as_bytes(),
            ephemeral_public.as_bytes(),
            &secret.public().bytes,
        );
        assert_eq!(hex(&wrap[..]), VEC_WRAP_KEY);
    }

    #[test]
    fn vectors_seal_exactly() {
        for v in &VECTORS {
            // Byte-at-a-time pushing must not change the output.
            let (object, key) = seal(vector_sealer(v.file_id), v.plaintext, &[1]);
            let header = Header::parse(&object).unwrap();
            let hash = sha256(header.as_bytes());
            assert_eq!(hex(&hash), v.header_hash, "{}", v.file_id);
            assert_eq!(hex(&payload_key_bytes(&key, &hash)[..]), v.payload_key);
            assert_eq!(hex(&object[..header.len()]), unhex_normalized(v.header));
            assert_eq!(hex(&object[header.len()..]), unhex_normalized(v.body));
        }
    }

    #[test]
    fn vectors_open() {
        for v in &VECTORS {
            let object = [unhex(v.header), unhex(v.body)].concat();
            let header = Header::parse(&object).unwrap();
            assert_eq!(header.key_id(), VEC_KEY_ID);
            assert_eq!(header.segment_len(), TEST_SEGMENT_LEN);
            assert_eq!(header.file_id(), v.file_id);
            assert_eq!(open_all(&object, &vector_secret()).unwrap(), v.plaintext);
        }
    }

    #[test]
    fn vectors_are_the_ones_in_the_doc() {
        let doc: String = include_str!("../../docs/sealed-file-format.md")
            .split_whitespace()
            .collect();
        let mut expected = vec![
            VEC_RECIPIENT_SECRET,
            VEC_RECIPIENT_PUBLIC,
            VEC_EPHEMERAL_SECRET,
            VEC_EPHEMERAL_PUBLIC,
            VEC_SHARED_SECRET,
            VEC_WRAP_KEY,
            VEC_DATA_KEY,
        ];
        for v in &VECTORS {
            expected.extend([v.header_hash, v.payload_key, v.header, v.body]);
        }
        for text in expected {
            let text = unhex_normalized(text);
            assert!(doc.contains(&text), "docs lack {text}");
        }
    }

    fn unhex_normalized(text: &str) -> String {
        text.split_whitespace().collect()
    }

    // --- tampering ---

    fn segments(object: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let header_len = Header::parse(object).unwrap().len();
        let body = &object[header_len..];
        let chunks = body
            .chunks(TEST_SEGMENT_LEN + TAG_LEN)
            .map(<[u8]>::to_vec)
            .collect();
        (object[..header_len].to_vec(), chunks)
    }

    fn assemble(header: &[u8], segs: &[Vec<u8>]) -> Vec<u8> {
        let mut out = header.to_vec();
        for seg in segs {
            out.extend_from_slice(seg);
        }
        out
    }

    #[test]
    fn truncation_is_refused() {
        // 40 bytes in 16-byte segments: 16 + 16 + 8.
        let object = seal_small("trunc", &pattern(40, 3), 4);
        let (header, segs) = segments(&object);
        assert_eq!(segs.len(), 3);
        assert!(open_all(&object, &recipient()).is_ok());
        // At a segment boundary: segment 1 is not sealed as final.
        let cut = assemble(&header, &segs[..2]);
        assert!(matches!(
            open_all(&cut, &recipient()),
            Err(OpenError::SegmentAuth { index: 1 })
        ));
        let cut = assemble(&header, &segs[..1]);
        assert!(open_all(&cut, &recipient()).is_err());
        // Header only, or nothing at all after it.
        assert!(matches!(
            open_all(&header, &recipient()),
            Err(OpenError::InvalidLength { .. })
        ));
        // Mid-segment, at every possible length.
        for len in header.len()..object.len() {
            assert!(open_all(&object[..len], &recipient()).is_err(), "len {len}");
        }
        // Appending bytes is refused as well.
        let mut long = object.clone();
        long.push(0);
        assert!(open_all(&long, &recipient()).is_err());
    }

    #[test]
    fn reordered_and_duplicated_segments_are_refused() {
        let object = seal_small("order", &pattern(48, 5), 6);
        let (header, segs) = segments(&object);
        assert_eq!(segs.len(), 3);
        let swapped = assemble(&header, &[segs[1].clone(), segs[0].clone(), segs[2].clone()]);
        assert!(open_all(&swapped, &recipient()).is_err());
        let duplicated = assemble(&header, &[segs[0].clone(), segs[0].clone(), segs[2].clone()]);
        assert!(open_all(&duplicated, &recipient()).is_err());
        let inserted = assemble(
            &header,
            &[segs[0].clone(), segs[1].clone(), segs[1].clone(), segs[2].clone()],
        );
        assert!(open_all(&inserted, &recipient()).is_err());
        // The final segment moved to the front and marked last by position.
        let last_first = assemble(&header, &[segs[2].clone()]);
        assert!(open_all(&last_first, &recipient()).is_err());
    }

    #[test]
    fn splicing_between_files_is_refused() {
        let data = pattern(40, 8);
        let a = seal_small("same-id", &data, 10);
        let b = seal_small("same-id", &data, 20);
        let (header_a, segs_a) = segments(&a);
        let (header_b, segs_b) = segments(&b);
        // Header of A with the whole body of B.
        assert!(open_all(&assemble(&header_a, &segs_b), &recipient()).is_err());
        // One segment of B inside A.
        let mixed = assemble(
            &header_a,
            &[segs_a[0].clone(), segs_b[1].clone(), segs_a[2].clone()],
        );
        assert!(open_all(&mixed, &recipient()).is_err());
        // B's header with A's header's wrapped key (same recipient): unwrap must fail.
        let mut grafted = header_b.clone();
        let n = grafted.len();
        grafted[n - WRAPPED_KEY_LEN..].copy_from_slice(&header_a[n - WRAPPED_KEY_LEN..]);
        assert!(open_all(&assemble(&grafted, &segs_a), &recipient()).is_err());
    }

    #[test]
    fn file_id_is_bound_and_exposed() {
        let object = seal_small("file-A", b"contents of A", 1);
        let header = Header::parse(&object).unwrap();
        assert_eq!(header.file_id(), "file-A");
        assert!(header.check_file_id("file-A").is_ok());
        // Stored under B's id: the caller compares and refuses.
        assert!(matches!(
            header.check_file_id("file-B"),
            Err(OpenError::FileIdMismatch)
        ));
        // Rewriting the id in the header (same length) breaks the key wrap.
        let mut renamed = object.clone();
        let at = FIXED_LEN + 5;
        renamed[at] = b'B';
        let header = Header::parse(&renamed).unwrap();
        assert_eq!(header.file_id(), "file-B");
        assert!(matches!(
            unwrap_key(&header, &recipient()),
            Err(OpenError::UnwrapFailed)
        ));
    }

    #[test]
    fn wrong_secret_key_is_refused() {
        let object = seal_small("k", b"secret", 2);
        let header = Header::parse(&object).unwrap();
        let other = RecipientSecretKey::from_bytes(7, [0x22; 32]);
        assert!(matches!(
            unwrap_key(&header, &other),
            Err(OpenError::UnwrapFailed)
        ));
        let rotated = RecipientSecretKey::from_bytes(8, [0x11; 32]);
        assert!(matches!(
            unwrap_key(&header, &rotated),
            Err(OpenError::KeyIdMismatch { file: 7, key: 8 })
        ));
    }

    #[test]
    fn version_and_magic_are_checked() {
        let object = seal_small("v", b"x", 2);
        let mut bumped = object.clone();
        bumped[7] = 2;
        assert!(matches!(
            Header::parse(&bumped),
            Err(OpenError::UnsupportedVersion(2))
        ));
        bumped[7] = 0;
        assert!(matches!(
            Header::parse(&bumped),
            Err(OpenError::UnsupportedVersion(0))
        ));
        let mut garbled = object.clone();
        garbled[0] = b'X';
        assert!(matches!(Header::parse(&garbled), Err(OpenError::BadMagic)));
        assert!(matches!(
            Header::parse(b"%PDF-1.7 hello"),
            Err(OpenError::BadMagic)
        ));
        let mut bad_segment = object.clone();
        bad_segment[12..16].copy_from_slice(&0u32.to_be_bytes());
        assert!(matches!(
            Header::parse(&bad_segment),
            Err(OpenError::InvalidSegmentLength(0))
        ));
        bad_segment[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Header::parse(&bad_segment),
            Err(OpenError::InvalidSegmentLength(u32::MAX))
        ));
    }

    #[test]
    fn short_header_asks_for_more() {
        let object = seal_small("some-file-id", b"x", 2);
        let header = Header::parse(&object).unwrap();
        assert!(header.len() <= MAX_HEADER_LEN);
        for len in 0..header.len() {
            match Header::parse(&object[..len]) {
                Err(OpenError::HeaderIncomplete { needed }) => {
                    assert!(needed > len && needed <= header.len(), "len {len}");
                }
                other => panic!("prefix of {len} bytes gave {other:?}"),
            }
        }
        assert_eq!(Header::parse(&object[..header.len()]).unwrap(), header);
    }

    #[test]
    fn header_read_from_stops_at_segment_zero() {
        let object = seal_small("read-from", &pattern(20, 2), 3);
        let mut cursor = Cursor::new(&object);
        let header = Header::read_from(&mut cursor).unwrap();
        assert_eq!(cursor.position(), header.len() as u64);
        assert_eq!(header, Header::parse(&object).unwrap());
        for len in [0, 10, FIXED_LEN, header.len() - 1] {
            assert!(matches!(
                Header::read_from(&mut Cursor::new(&object[..len])),
                Err(OpenError::HeaderIncomplete { .. })
            ));
        }
        assert!(matches!(
            Header::read_from(&mut Cursor::new(&[0u8; 200][..])),
            Err(OpenError::BadMagic)
        ));
    }

    #[test]
    fn longest_file_id_fits_max_header_len() {
        let secret = recipient();
        let id = "i".repeat(MAX_FILE_ID_LEN);
        let sealer = Sealer::new(&secret.public(), &id).unwrap();
        assert_eq!(sealer.header().len(), MAX_HEADER_LEN);
        let (object, _) = seal(sealer, b"data", &[4]);
        assert_eq!(open_all(&object, &secret).unwrap(), b"data");
        assert!(matches!(
            Sealer::new(&secret.public(), &"i".repeat(MAX_FILE_ID_LEN + 1)),
            Err(SealError::FileIdTooLong { len: 256 })
        ));
    }

    #[test]
    fn non_utf8_file_id_is_refused() {
        let mut object = seal_small("ab", b"x", 2);
        object[FIXED_LEN] = 0xff;
        assert!(matches!(Header::parse(&object), Err(OpenError::InvalidFileId)));
    }

    #[test]
    fn impossible_lengths_are_refused() {
        let object = seal_small("len", b"", 2);
        let header = Header::parse(&object).unwrap();
        let h = header.len() as u64;
        let opener = Opener::new(header, DataKey([0; 32]));
        let stride = (TEST_SEGMENT_LEN + TAG_LEN) as u64;
        for bad in [0, h - 1, h, h + 1, h + 15, h + stride + 1, h + stride + 16] {
            assert!(opener.plaintext_len(bad).is_err(), "{bad}");
        }
        assert_eq!(opener.plaintext_len(h + 16).unwrap(), 0);
        assert_eq!(opener.plaintext_len(h + 17).unwrap(), 1);
        assert_eq!(opener.plaintext_len(h + stride).unwrap(), 16);
        assert_eq!(opener.plaintext_len(h + stride + 17).unwrap(), 17);
        assert_eq!(opener.segment_count(h + 2 * stride).unwrap(), 2);
        assert_eq!(opener.segment_offset(0), h);
        assert_eq!(opener.segment_offset(2), h + 2 * stride);
        assert_eq!(opener.segment_offset(u64::MAX), u64::MAX);
        // Huge lengths are arithmetic, not panics.
        let _ = opener.plaintext_len(u64::MAX);
        let _ = opener.segment_count(u64::MAX);
    }

    #[test]
    fn open_segment_checks_flag_and_length() {
        let object = seal_small("seg", &pattern(20, 1), 3);
        let header = Header::parse(&object).unwrap();
        let key = unwrap_key(&header, &recipient()).unwrap();
        let opener = Opener::new(header, key);
        let (_, segs) = segments(&object);
        assert_eq!(
            opener.open_segment(0, false, &segs[0]).unwrap(),
            pattern(20, 1)[..16]
        );
        assert_eq!(
            opener.open_segment(1, true, &segs[1]).unwrap(),
            pattern(20, 1)[16..]
        );
        assert!(matches!(
            opener.open_segment(0, true, &segs[0]),
            Err(OpenError::SegmentAuth { index: 0 })
        ));
        assert!(matches!(
            opener.open_segment(1, false, &segs[1]),
            Err(OpenError::SegmentLength { index: 1, .. })
        ));
        assert!(opener.open_segment(2, true, &segs[1]).is_err());
        assert!(opener.open_segment(0, false, &segs[0][..31]).is_err());
    }

    #[test]
    fn verify_all_refuses_before_any_plaintext() {
        let data = pattern(40, 12);
        let object = seal_small("verify", &data, 7);
        let header = Header::parse(&object).unwrap();
        let key = unwrap_key(&header, &recipient()).unwrap();
        let opener = Opener::new(header, key);
        let len = object.len() as u64;
        assert!(verify_all(Cursor::new(&object), len, &opener).is_ok());

        // Tamper with the last segment only: a streaming reader would already have
        // released the first two segments, verify_all releases nothing and fails.
        let mut tampered = object.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(
            verify_all(Cursor::new(&tampered), len, &opener),
            Err(OpenError::SegmentAuth { index: 2 })
        ));
        let mut reader = DecryptReader::new(Cursor::new(&tampered), len, opener.clone()).unwrap();
        let mut first = [0u8; 16];
        reader.read_exact(&mut first).unwrap();
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.get_ref().is_some_and(|e| e.is::<OpenError>()));

        // A tampered header in storage is caught even though the opener's is intact.
        let mut other_header = object.clone();
        other_header[20] ^= 1;
        assert!(matches!(
            verify_all(Cursor::new(&other_header), len, &opener),
            Err(OpenError::HeaderMismatch)
        ));
        // A stored object shorter than claimed.
        assert!(matches!(
            verify_all(Cursor::new(&object[..object.len() - 3]), len, &opener),
            Err(OpenError::Io(_))
        ));
    }

    #[test]
    fn empty_file_reader_authenticates_its_only_segment() {
        let object = seal_small("empty", b"", 9);
        let header = Header::parse(&object).unwrap();
        let key = unwrap_key(&header, &recipient()).unwrap();
        let opener = Opener::new(header, key);
        let len = object.len() as u64;
        let mut reader = DecryptReader::new(Cursor::new(&object), len, opener.clone()).unwrap();
        assert_eq!(reader.read(&mut [0u8; 8]).unwrap(), 0);
        let mut tampered = object.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x80;
        let mut reader = DecryptReader::new(Cursor::new(&tampered), len, opener).unwrap();
        assert!(reader.read(&mut [0u8; 8]).is_err());
    }

    // --- key separation ---

    #[test]
    fn gateway_material_cannot_open() {
        let control = RecipientSecretKey::generate(1);
        let gateway_holds = control.public();
        let data = b"a photo of a passport".to_vec();
        let sealer = Sealer::new(&gateway_holds, "obj").unwrap();
        let (object, key) = seal(sealer, &data, &[5]);
        let header = Header::parse(&object).unwrap();

        // The data key never appears in the stored bytes.
        assert!(!object.windows(32).any(|w| w == key.0));
        // Everything the gateway and storage have, used as a secret key, fails.
        let ephemeral = header.ephemeral_public();
        for candidate in [gateway_holds.bytes, ephemeral, sha256(&object)] {
            let fake = RecipientSecretKey::from_bytes(1, candidate);
            assert!(matches!(unwrap_key(&header, &fake), Err(OpenError::UnwrapFailed)));
        }
        // Only the control plane's secret opens it.
        assert_eq!(open_all(&object, &control).unwrap(), data);
    }

    #[test]
    fn low_order_points_are_refused() {
        let zero = RecipientPublicKey {
            key_id: 1,
            bytes: [0; 32],
        };
        assert!(matches!(
            Sealer::new(&zero, "x"),
            Err(SealError::LowOrderRecipient { key_id: 1 })
        ));
        let mut one = [0u8; 32];
        one[0] = 1;
        let one = RecipientPublicKey {
            key_id: 1,
            bytes: one,
        };
        assert!(Sealer::new(&one, "x").is_err());

        let mut object = seal_small("lo", b"x", 2);
        object[16..48].fill(0);
        let header = Header::parse(&object).unwrap();
        assert!(matches!(
            unwrap_key(&header, &recipient()),
            Err(OpenError::LowOrderPoint)
        ));
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let secret = RecipientSecretKey::from_bytes(4, [0xab; 32]);
        assert_eq!(format!("{secret:?}"), "RecipientSecretKey { key_id: 4, .. }");
        let key = DataKey([0xcd; 32]);
        assert_eq!(format!("{key:?}"), "DataKey(<redacted>)");
        let sealer = Sealer::new(&secret.public(), "dbg").unwrap();
        assert!(format!("{sealer:?}").starts_with("Sealer { header_len: 100,"));
        let opener = Opener::new(Header::parse(sealer.header()).unwrap(), key);
        assert_eq!(
            format!("{opener:?}"),
            r#"Opener { header: Header { key_id: 4, segment_len: 65536, file_id: "dbg", len: 100 }, .. }"#
        );
        let roundtrip = RecipientSecretKey::from_bytes(4, secret.to_bytes());
        assert_eq!(roundtrip.public(), secret.public());
        assert_eq!(secret.key_id(), 4);
    }

    #[test]
    fn deterministic_constructor_refuses_bad_segment_lengths() {
        let public = recipient().public();
        for len in [0, MIN_SEGMENT_LEN - 1, MAX_SEGMENT_LEN + 1] {
            assert!(matches!(
                Sealer::deterministic(&public, "x", len, [1; 32], [2; 32]),
                Err(SealError::InvalidSegmentLength { .. })
            ));
        }
    }
}
