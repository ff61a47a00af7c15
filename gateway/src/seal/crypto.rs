//! The primitives the format is built from: key derivation, nonces, AES-GCM, randomness.

use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::digest::{digest, SHA256};
use ring::hkdf::{KeyType, Salt, HKDF_SHA256};
use zeroize::Zeroizing;

use super::*;

/// The key-wrap key: HKDF-SHA256 over the X25519 shared secret. The salt binds both
/// public keys (the raw header bytes, not just the points they decode to), so the wrap
/// key belongs to exactly this sender/recipient pair.
pub(super) fn wrap_key_bytes(
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
pub(super) fn payload_key_bytes(data_key: &DataKey, header_hash: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    hkdf_32(header_hash, &data_key.0, PAYLOAD_INFO)
}

pub(super) struct Len32;

impl KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

pub(super) fn hkdf_32(salt: &[u8], ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    Salt::new(HKDF_SHA256, salt)
        .extract(ikm)
        .expand(&[info], Len32)
        .and_then(|okm| okm.fill(&mut out[..]))
        // HKDF-SHA256 fails only for outputs over 8160 bytes.
        .expect("HKDF-SHA256 cannot fail for a 32-byte output");
    out
}

pub(super) fn seal_in_place(key: &LessSafeKey, nonce: Nonce, aad: &[u8], in_out: &mut [u8]) -> Tag {
    key.seal_in_place_separate_tag(nonce, Aad::from(aad), in_out)
        // Fails only above GCM's 64 GiB message limit; we seal at most one segment
        // (MAX_SEGMENT_LEN) or one 32-byte key at a time.
        .expect("AES-GCM refused a message far below its length limit")
}

pub(super) fn aes_key(bytes: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, bytes)
            // Fails only for a key of the wrong length.
            .expect("AES-256-GCM accepts any 32-byte key"),
    )
}

/// STREAM nonce (as in age): 11-byte big-endian segment counter, then the last-segment
/// flag. A u64 counter fills the low 8 of the 11 bytes.
pub(super) fn segment_nonce(index: u64, last: bool) -> Nonce {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[3..11].copy_from_slice(&index.to_be_bytes());
    nonce[11] = u8::from(last);
    Nonce::assume_unique_for_key(nonce)
}

/// The wrap key comes from a fresh ephemeral key per file and seals exactly one
/// message, so a fixed nonce is never reused under one key.
pub(super) fn wrap_nonce() -> Nonce {
    Nonce::assume_unique_for_key([0u8; NONCE_LEN])
}

pub(super) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

pub(super) fn random_32() -> Result<Zeroizing<[u8; 32]>, SealError> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    crate::sys::fill_random(&mut bytes[..]).map_err(|_| SealError::Random)?;
    Ok(bytes)
}
