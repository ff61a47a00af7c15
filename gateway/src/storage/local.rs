//! Local directory backend: temp file fsynced, renamed into place, directory fsynced, so a
//! crash leaves either the whole object or nothing under its name.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use bytes::Bytes;

use super::{ByteStream, Listed, ObjectKey, ObjectStore, StorageError};

/// How much one blocking read of a ranged read takes.
const READ_PIECE: usize = 256 << 10;

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Objects live in `root/<2 hex>/<key>`; the fan-out keeps directories small.
    pub fn open(root: &Path) -> std::io::Result<LocalStore> {
        std::fs::create_dir_all(root)?;
        Ok(LocalStore {
            root: root.to_path_buf(),
        })
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        let s = key.as_str();
        self.root.join(&s[2..4]).join(s)
    }
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Io(std::io::Error::other(e)))?
}

/// A copy from another filesystem (see `commit`) that a crash left half done: once it is
/// an hour old no commit can still be writing it.
fn remove_if_stale_copy(entry: &std::fs::DirEntry) {
    let name = entry.file_name();
    let is_copy = name
        .to_str()
        .is_some_and(|n| n.starts_with('.') && n.ends_with(".part"));
    let old = entry
        .metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 3600));
    if is_copy && old {
        let _ = std::fs::remove_file(entry.path());
    }
}

fn not_found(e: std::io::Error) -> StorageError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound
    } else {
        StorageError::Io(e)
    }
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn commit(&self, key: &ObjectKey, spool: &Path) -> Result<(), StorageError> {
        let dest = self.path(key);
        let spool = spool.to_path_buf();
        blocking(move || {
            let dir = dest.parent().expect("object paths have a parent");
            if !dir.exists() {
                std::fs::create_dir_all(dir)?;
                // A new fan-out directory's own name must survive a crash too.
                fsync_dir(dir.parent().expect("fan-out directories have a parent"))?;
            }
            // The spool fsynced the data as its last write (the trait's contract); the rename
            // publishes it whole, and the directory fsync makes the new name survive a crash.
            match std::fs::rename(&spool, &dest) {
                Ok(()) => {}
                // A gateway whose spool is on another filesystem than a shared objects
                // directory: copy beside the destination, sync, then rename there.
                Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
                    let partial = dir.join(format!(
                        ".{}.part",
                        dest.file_name().and_then(|n| n.to_str()).unwrap_or("object")
                    ));
                    let copied = std::fs::copy(&spool, &partial)
                        .and_then(|_| std::fs::File::open(&partial)?.sync_all())
                        .and_then(|()| std::fs::rename(&partial, &dest));
                    if let Err(e) = copied {
                        let _ = std::fs::remove_file(&partial);
                        return Err(e.into());
                    }
                    std::fs::remove_file(&spool)?;
                }
                Err(e) => return Err(e.into()),
            }
            fsync_dir(dir)?;
            Ok(())
        })
        .await
    }

    async fn len(&self, key: &ObjectKey) -> Result<u64, StorageError> {
        let path = self.path(key);
        blocking(move || Ok(std::fs::metadata(path).map_err(not_found)?.len())).await
    }

    async fn read_range(&self, key: &ObjectKey, offset: u64, len: u64) -> Result<ByteStream, StorageError> {
        let path = self.path(key);
        let file = blocking(move || {
            let mut file = std::fs::File::open(path).map_err(not_found)?;
            file.seek(SeekFrom::Start(offset))?;
            Ok(file.take(len))
        })
        .await?;
        // Pieces of 256 KiB, each read on the blocking pool.
        let pieces = futures_util::stream::try_unfold(file, |mut file| async move {
            let (file, piece) = blocking(move || {
                let mut piece = Vec::with_capacity(READ_PIECE);
                (&mut file).take(READ_PIECE as u64).read_to_end(&mut piece)?;
                Ok((file, piece))
            })
            .await?;
            Ok((!piece.is_empty()).then(|| (Bytes::from(piece), file)))
        });
        Ok(Box::pin(pieces))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        let path = self.path(key);
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(fsync_dir(path.parent().expect("object paths have a parent"))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        })
        .await
    }

    async fn list(&self) -> Result<Vec<Listed>, StorageError> {
        let root = self.root.clone();
        blocking(move || {
            let mut keys = Vec::new();
            for dir in std::fs::read_dir(&root)? {
                let dir = dir?;
                if !dir.file_type()?.is_dir() {
                    continue;
                }
                for entry in std::fs::read_dir(dir.path())? {
                    let entry = entry?;
                    remove_if_stale_copy(&entry);
                    if let Some(key) = entry.file_name().to_str().and_then(ObjectKey::parse_any) {
                        let modified = entry.metadata()?.modified()?;
                        let modified = modified
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs());
                        keys.push(Listed { key, modified });
                    }
                }
            }
            Ok(keys)
        })
        .await
    }

    async fn check(&self) -> Result<(), StorageError> {
        let probe = self.root.join(".ready-probe");
        blocking(move || {
            std::fs::write(&probe, b"ok")?;
            std::fs::remove_file(&probe)?;
            Ok(())
        })
        .await
    }
}
