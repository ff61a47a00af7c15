//! Where sealed objects live. One trait so a local directory and S3-compatible storage are
//! interchangeable; object keys are opaque ids, never names or phone numbers.

#[doc(hidden)]
pub mod conformance;
mod local;
pub mod s3;

use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::TryStreamExt;

pub use local::LocalStore;
pub use s3::S3Store;

/// An object's bytes as they arrive, in pieces of the backend's choosing.
pub type ByteStream = futures_util::stream::BoxStream<'static, Result<Bytes, StorageError>>;

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: ObjectKey,
    /// When it was written, in seconds since the epoch.
    pub modified: u64,
}

/// An object's key: `f_` followed by lowercase hex (a file, whose key is its id), or that
/// and a sidecar's suffix (`.thumb`, `.preview`: images made from the file), checked before
/// any storage call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

/// What the gateway makes beside an image it stored: re-encoded, never the original bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sidecar {
    /// A small picture for lists (at most 320 px a side).
    Thumb,
    /// A larger one to look at in the page (at most 1280 px a side).
    Preview,
}

impl Sidecar {
    pub const ALL: [Sidecar; 2] = [Sidecar::Thumb, Sidecar::Preview];

    fn suffix(self) -> &'static str {
        match self {
            Sidecar::Thumb => ".thumb",
            Sidecar::Preview => ".preview",
        }
    }
}

impl ObjectKey {
    /// A file's key (never a sidecar's): what file ids are checked against.
    pub fn parse(s: &str) -> Option<ObjectKey> {
        let hex = s.strip_prefix("f_")?;
        let ok = (16..=64).contains(&hex.len())
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| ObjectKey(s.to_string()))
    }

    /// A file's key or a sidecar's: what listings of the store return.
    pub fn parse_any(s: &str) -> Option<ObjectKey> {
        let file = Sidecar::ALL
            .iter()
            .find_map(|side| s.strip_suffix(side.suffix()))
            .unwrap_or(s);
        ObjectKey::parse(file).map(|_| ObjectKey(s.to_string()))
    }

    /// The key of this file's sidecar.
    pub fn sidecar(&self, side: Sidecar) -> ObjectKey {
        ObjectKey(format!("{}{}", self.owner().0, side.suffix()))
    }

    /// The file this object belongs to: itself, or the file a sidecar was made from.
    pub fn owner(&self) -> ObjectKey {
        let file = Sidecar::ALL
            .iter()
            .find_map(|side| self.0.strip_suffix(side.suffix()))
            .unwrap_or(&self.0);
        ObjectKey(file.to_string())
    }

    /// A fresh random key (128 bits).
    pub fn random() -> ObjectKey {
        let bytes: [u8; 16] = crate::sys::random().expect("the system random generator works");
        ObjectKey(format!("f_{}", hex::encode(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No object under that key.
    #[error("object not found")]
    NotFound,
    /// The backend failed; the detail is for logs only.
    #[error("storage failed: {0}")]
    Io(#[from] std::io::Error),
}

#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Makes a finished spool file durable under `key`, atomically: readers see the whole object
    /// or none. The spool file is consumed; its bytes must already be on disk (fsynced, as
    /// `Spool::finish` does), so a local store only renames and syncs the directory.
    async fn commit(&self, key: &ObjectKey, spool: &Path) -> Result<(), StorageError>;
    /// The object's length in bytes.
    async fn len(&self, key: &ObjectKey) -> Result<u64, StorageError>;
    /// Up to `len` bytes from `offset` as one read (one ranged GET on S3), streamed; fewer
    /// only at the end of the object.
    async fn read_range(&self, key: &ObjectKey, offset: u64, len: u64) -> Result<ByteStream, StorageError>;
    /// Up to `len` bytes from `offset`, gathered (fewer only at the end of the object).
    async fn read_at(&self, key: &ObjectKey, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        let mut out = Vec::with_capacity(len);
        let mut stream = self.read_range(key, offset, len as u64).await?;
        while let Some(piece) = stream.try_next().await? {
            out.extend_from_slice(&piece);
        }
        out.truncate(len);
        Ok(out)
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError>;
    /// Every object, for the start-up sweep of objects no record names.
    async fn list(&self) -> Result<Vec<Listed>, StorageError>;
    /// For readiness: can we write and read right now?
    async fn check(&self) -> Result<(), StorageError>;
}

/// Deletes a file's object and its sidecars (each delete is idempotent).
pub async fn delete_with_sidecars(store: &dyn ObjectStore, file: &ObjectKey) -> Result<(), StorageError> {
    for side in Sidecar::ALL {
        store.delete(&file.sidecar(side)).await?;
    }
    store.delete(file).await
}

#[cfg(test)]
mod tests;
