//! The versioned header: parsing, and unwrapping the data key it carries.

use ring::aead::Aad;
use std::fmt;
use std::io::{self, Read};
use x25519_dalek::PublicKey;
use zeroize::Zeroizing;

use super::*;

/// A parsed, not yet authenticated, sealed-file header. It is authenticated by
/// [`unwrap_key`] and again by every segment.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    pub(super) bytes: Vec<u8>,
    pub(super) key_id: u32,
    pub(super) segment_len: usize,
    pub(super) file_id: String,
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

    pub(super) fn ephemeral_public(&self) -> [u8; 32] {
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

pub(super) fn read_header_part<R: Read>(
    reader: &mut R,
    buf: &mut [u8],
    needed: usize,
) -> Result<(), OpenError> {
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
