//! The spool: sealed bytes of an upload in progress, on disk, never visible as a file.
//! The guard deletes the spool file on drop unless storage took it, so a failed or
//! abandoned upload leaves nothing; a crash's leftovers are cleared at start.
//!
//! Writes take the buffer they write (no copy) and run on the blocking pool, one at a time
//! per upload: the next segments are received and sealed while the last ones are written,
//! and an upload holds at most two buffers whatever its speed. The file is created by the
//! first write and the last write fsyncs it, so a small file costs one trip to the blocking
//! pool (profiled: `tokio::fs::File` copied every chunk into its own buffer and woke a
//! blocking thread per chunk, and create, header, body and fsync were four trips).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::task::JoinHandle;

/// Where the file stands: not yet created, idle between writes, or being written.
enum State {
    Idle(Option<File>),
    /// A write in flight: it hands the file back, and its buffer emptied for the next one.
    Writing(JoinHandle<std::io::Result<(File, Vec<u8>)>>),
    Finished,
}

pub struct Spool {
    path: PathBuf,
    state: State,
    len: u64,
    kept: bool,
}

fn write_all(path: &Path, file: Option<File>, bytes: &[u8]) -> std::io::Result<File> {
    let mut file = match file {
        Some(file) => file,
        None => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?,
    };
    file.write_all(bytes)?;
    Ok(file)
}

impl Spool {
    /// A spool for `name` in `dir`; nothing touches the disk until the first write.
    pub fn new(dir: &Path, name: &str) -> Spool {
        Spool {
            path: dir.join(format!("{name}.part")),
            state: State::Idle(None),
            len: 0,
            kept: false,
        }
    }

    /// Waits for the write in flight, if any: the file (if created) and a spare buffer.
    async fn idle(&mut self) -> std::io::Result<(Option<File>, Vec<u8>)> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Idle(file) => Ok((file, Vec::new())),
            State::Writing(task) => {
                let (file, spare) = task.await.map_err(std::io::Error::other)??;
                Ok((Some(file), spare))
            }
            State::Finished => Err(std::io::Error::other("spool already finished")),
        }
    }

    /// Starts writing `bytes` after whatever is being written, and returns an empty buffer
    /// to fill next (the one the previous write finished with, when there was one).
    pub async fn write(&mut self, mut bytes: Vec<u8>) -> std::io::Result<Vec<u8>> {
        let (file, spare) = self.idle().await?;
        if bytes.is_empty() {
            self.state = State::Idle(file);
            return Ok(bytes);
        }
        self.len += bytes.len() as u64;
        let path = self.path.clone();
        self.state = State::Writing(tokio::task::spawn_blocking(move || {
            let file = write_all(&path, file, &bytes)?;
            bytes.clear();
            Ok((file, bytes))
        }));
        Ok(spare)
    }

    /// Writes the last bytes and fsyncs: after this the whole file is on disk, ready to be
    /// read back and committed.
    pub async fn finish(&mut self, last: Vec<u8>) -> std::io::Result<()> {
        let (file, _) = self.idle().await?;
        self.len += last.len() as u64;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_all(&path, file, &last)?.sync_all())
            .await
            .map_err(std::io::Error::other)?
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
            // Best effort and synchronous: a leftover is also swept at the next start. A write
            // still in flight goes to the unlinked file and is freed with it.
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
