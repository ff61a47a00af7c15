//! The spool: sealed bytes of an upload in progress, on disk, never visible as a file.
//! The guard deletes the spool file on drop unless storage took it, so a failed or
//! abandoned upload leaves nothing; a crash's leftovers are cleared at start.
//!
//! Writes go straight to the file from the upload's task while the disk takes them at once
//! (a write into the page cache costs microseconds, less than a trip to the blocking pool
//! and its wake-ups). Once one write is slow (the kernel throttles a writer when dirty pages
//! pile up on a slow disk), the rest of that upload's writes go to the blocking pool, one at
//! a time, so the worker thread never waits on the disk again: the next segments are
//! received and sealed while the last ones are written, with at most two buffers per upload.
//! The file is created by the first write and the last one fsyncs it on the blocking pool,
//! so a small file costs one trip there. (Profiled: `tokio::fs::File` copied every chunk and
//! woke a blocking thread per chunk; docs/performance.md.)

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::disk::Reservation;

/// A write that takes longer than this sends the upload's later writes to the blocking pool.
/// 64 KiB into the page cache takes ~10-30 µs; anything near a millisecond is the disk.
const SLOW_WRITE: Duration = Duration::from_millis(1);

/// Where the file stands: not yet created, idle between writes, or being written.
enum State {
    Idle(Option<File>),
    /// A write in flight: it hands the file back, and its buffer emptied for the next one.
    Writing(JoinHandle<std::io::Result<(File, Vec<u8>)>>),
    Finished,
}

pub struct Spool {
    path: PathBuf,
    /// The room promised to this file, given back as its bytes are written.
    room: Reservation,
    state: State,
    len: u64,
    kept: bool,
    /// Writes go to the blocking pool (a write was slow), not straight to the file.
    offload: bool,
    /// How long a write may take before the next ones are offloaded.
    slow_write: Duration,
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
    /// A spool for `name` in `dir`, filling `room`; nothing touches the disk until the
    /// first write.
    pub fn new(dir: &Path, name: &str, room: Reservation) -> Spool {
        Spool {
            path: dir.join(format!("{name}.part")),
            room,
            state: State::Idle(None),
            len: 0,
            kept: false,
            offload: false,
            slow_write: SLOW_WRITE,
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

    /// How many sealed segments to gather per write: one when writes go straight to the
    /// file (memory per upload stays at a segment), more once they go to the blocking pool,
    /// whose trips cost a wake-up each.
    pub fn segments_per_write(&self) -> usize {
        if self.offload {
            4
        } else {
            1
        }
    }

    /// Writes `bytes` after whatever was written, and returns an empty buffer to fill next:
    /// the same one when the write went straight to the file, otherwise the one the previous
    /// write finished with (empty the first time).
    pub async fn write(&mut self, mut bytes: Vec<u8>) -> std::io::Result<Vec<u8>> {
        if bytes.is_empty() {
            return Ok(bytes);
        }
        self.len += bytes.len() as u64;
        self.room.written(bytes.len() as u64);
        if !self.offload {
            let State::Idle(file) = std::mem::replace(&mut self.state, State::Finished) else {
                return Err(std::io::Error::other("spool already finished"));
            };
            let started = Instant::now();
            let file = write_all(&self.path, file, &bytes)?;
            self.offload = started.elapsed() > self.slow_write;
            self.state = State::Idle(Some(file));
            bytes.clear();
            return Ok(bytes);
        }
        let (file, spare) = self.idle().await?;
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
        self.room.written(last.len() as u64);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(n: u8) -> Vec<u8> {
        vec![n; 64 * 1024 + 16]
    }

    async fn write_three(spool: &mut Spool) -> Vec<u8> {
        let mut expected = Vec::new();
        let mut buf = Vec::new();
        for n in 1..=2 {
            buf.extend_from_slice(&segment(n));
            expected.extend_from_slice(&buf);
            buf = spool.write(buf).await.unwrap();
            assert!(buf.is_empty(), "the spool hands back an empty buffer");
        }
        expected.extend_from_slice(&segment(3));
        spool.finish(segment(3)).await.unwrap();
        expected
    }

    #[tokio::test]
    async fn fast_writes_go_straight_to_the_file_one_segment_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(dir.path(), "f", Reservation::none());
        assert!(!spool.path().exists(), "nothing on disk before the first write");
        spool.slow_write = Duration::from_secs(3600);
        let expected = write_three(&mut spool).await;
        assert_eq!(spool.segments_per_write(), 1);
        assert_eq!(std::fs::read(spool.path()).unwrap(), expected);
        assert_eq!(spool.written(), expected.len() as u64);
    }

    #[tokio::test]
    async fn after_a_slow_write_the_rest_go_to_the_blocking_pool_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(dir.path(), "f", Reservation::none());
        // Every write counts as slow: the first goes straight to the file, the rest are
        // offloaded, and the bytes still land in order.
        spool.slow_write = Duration::ZERO;
        let expected = write_three(&mut spool).await;
        assert_eq!(spool.segments_per_write(), 4);
        assert_eq!(std::fs::read(spool.path()).unwrap(), expected);
        assert_eq!(spool.written(), expected.len() as u64);
    }

    #[tokio::test]
    async fn a_spool_not_kept_leaves_nothing_and_a_kept_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let mut dropped = Spool::new(dir.path(), "dropped", Reservation::none());
        dropped.slow_write = Duration::ZERO;
        let mut buf = segment(1);
        buf = dropped.write(buf).await.unwrap();
        let _ = dropped.write(segment(2)).await.unwrap();
        let path = dropped.path().to_path_buf();
        drop((dropped, buf));
        assert!(
            !path.exists(),
            "an abandoned spool is deleted, a write in flight or not"
        );

        let mut kept = Spool::new(dir.path(), "kept", Reservation::none());
        kept.finish(segment(1)).await.unwrap();
        let path = kept.path().to_path_buf();
        kept.kept();
        assert!(path.exists());
    }
}
