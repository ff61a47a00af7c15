//! Sealed-file format: per-file envelope encryption of stored uploads (STREAM-style
//! AES-256-GCM segments, data key wrapped for the control plane's X25519 key).
//! The byte-level specification and test vectors are in `docs/sealed-file-format.md`.

use std::io;

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

mod crypto;
mod header;
mod keys;
mod opener;
mod sealer;

use crypto::*;
pub use header::*;
pub use keys::*;
pub use opener::*;
pub use sealer::*;

#[cfg(test)]
mod tests;
