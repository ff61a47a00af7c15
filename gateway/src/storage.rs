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

/// An object's key: `f_` followed by lowercase hex, checked before any storage call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn parse(s: &str) -> Option<ObjectKey> {
        let hex = s.strip_prefix("f_")?;
        let ok = (16..=64).contains(&hex.len())
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| ObjectKey(s.to_string()))
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

#[cfg(test)]
mod tests;
