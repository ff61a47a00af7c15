//! Key material: the control plane's X25519 recipient keys and a file's data key.

use std::fmt;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroize;

use super::*;

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
    pub(super) key_id: u32,
    pub(super) secret: StaticSecret,
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
pub struct DataKey(pub(super) [u8; DATA_KEY_LEN]);

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
