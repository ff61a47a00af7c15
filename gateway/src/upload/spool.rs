//! The spool: sealed bytes of an upload in progress, on disk, never visible as a file.
//! The guard deletes the spool file on drop unless storage took it, so a failed or
//! abandoned upload leaves nothing; a crash's leftovers are cleared at start.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

pub struct Spool {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    len: u64,
    kept: bool,
}

impl Spool {
    pub async fn create(dir: &Path, name: &str) -> std::io::Result<Spool> {
        let path = dir.join(format!("{name}.part"));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(Spool {
            path,
            file: Some(file),
            len: 0,
            kept: false,
        })
    }

    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("spool already finished"))?;
        file.write_all(bytes).await?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Flushes and fsyncs: after this the bytes are on disk, ready to be read back and committed.
    pub async fn finish(&mut self) -> std::io::Result<()> {
        if let Some(mut file) = self.file.take() {
            file.flush().await?;
            file.sync_all().await?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Ciphertext bytes written.
    pub fn written(&self) -> u64 {
        self.len
    }

    /// Storage consumed the file (renamed or uploaded it): nothing to delete.
    pub fn kept(mut self) {
        self.kept = true;
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.kept {
            // Best effort and synchronous: a leftover is also swept at the next start.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes what a crash left in the spool directory and makes sure it exists.
pub fn sweep(dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(".part") {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}
