//! Free space where uploads land. A disk that fills mid-upload fails that upload late and
//! can take the metadata store with it, so below a watermark readiness says "not ready" and
//! new uploads are refused before a byte is read.
//!
//! Room is promised, not only checked: each upload reserves its declared length when it
//! starts, and gives the reservation back as its bytes reach the spool (then they show in
//! the free space itself) or when it ends. Without that, ten uploads of a gigabyte each
//! pass the check at once on a disk with room for two.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Free space is below the watermark (or would be, with the incoming file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{free} bytes free, less than the {min_free} kept free")]
pub struct DiskLow {
    pub free: u64,
    pub min_free: u64,
}

pub struct DiskWatch {
    dir: PathBuf,
    min_free: u64,
    /// Bytes promised to uploads in flight and not yet written.
    promised: Arc<AtomicU64>,
}

/// Room promised to one upload: what it may still write. Shrinks as the upload's bytes are
/// written; what is left is given back when it is dropped.
#[derive(Debug)]
pub struct Reservation {
    promised: Arc<AtomicU64>,
    left: u64,
}

impl Reservation {
    /// `n` more bytes were written: they are in the disk's own count now.
    pub fn written(&mut self, n: u64) {
        let n = n.min(self.left);
        self.left -= n;
        self.promised.fetch_sub(n, Ordering::AcqRel);
    }

    /// A reservation that promises nothing, for tests of the stages alone.
    #[cfg(test)]
    pub fn none() -> Reservation {
        Reservation {
            promised: Arc::default(),
            left: 0,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.promised.fetch_sub(self.left, Ordering::AcqRel);
    }
}

impl DiskWatch {
    pub fn new(dir: &Path, min_free: u64) -> DiskWatch {
        DiskWatch {
            dir: dir.to_path_buf(),
            min_free,
            promised: Arc::default(),
        }
    }

    /// Bytes an unprivileged process may still write on the directory's filesystem.
    pub fn free(&self) -> std::io::Result<u64> {
        let stat = rustix::fs::statvfs(&self.dir)?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    /// Free bytes not promised to uploads in flight, if that leaves the watermark free. An
    /// unreadable filesystem answers no: we cannot promise a file a place.
    pub fn room(&self) -> Result<u64, DiskLow> {
        let free = self.free().map_err(|_| self.low(0))?;
        let unpromised = free.saturating_sub(self.promised.load(Ordering::Acquire));
        if unpromised < self.min_free {
            return Err(self.low(unpromised));
        }
        Ok(unpromised)
    }

    /// Promises `incoming` bytes to one upload, if they leave the watermark free on top of
    /// what is promised to the others.
    pub fn reserve(&self, incoming: u64) -> Result<Reservation, DiskLow> {
        // Promised first, checked after: two uploads racing for the last room cannot both
        // see it free (at worst both are refused).
        let others = self.promised.fetch_add(incoming, Ordering::AcqRel);
        let reservation = Reservation {
            promised: self.promised.clone(),
            left: incoming,
        };
        let free = self.free().map_err(|_| self.low(0))?;
        let unpromised = free.saturating_sub(others);
        if unpromised.saturating_sub(incoming) < self.min_free {
            return Err(self.low(unpromised));
        }
        Ok(reservation)
    }

    fn low(&self, free: u64) -> DiskLow {
        DiskLow {
            free,
            min_free: self.min_free,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_counts_the_incoming_file() {
        let dir = tempfile::tempdir().unwrap();
        let free = DiskWatch::new(dir.path(), 0).free().unwrap();
        assert!(free > 0);
        assert!(DiskWatch::new(dir.path(), 0).room().is_ok());
        assert!(DiskWatch::new(dir.path(), free / 2).room().is_ok());
        assert!(DiskWatch::new(dir.path(), u64::MAX).room().is_err());
        // Room now, but not once this file is in.
        assert!(DiskWatch::new(dir.path(), free / 2).reserve(free).is_err());
        // A directory that does not exist has no room.
        assert!(DiskWatch::new(Path::new("/nonexistent/upgate"), 0)
            .room()
            .is_err());
        assert!(DiskWatch::new(Path::new("/nonexistent/upgate"), 0)
            .reserve(1)
            .is_err());
    }

    #[test]
    fn room_promised_to_one_upload_is_not_promised_again() {
        let dir = tempfile::tempdir().unwrap();
        let free = DiskWatch::new(dir.path(), 0).free().unwrap();
        // Room for about two files of a third of the free space above the watermark.
        let disk = DiskWatch::new(dir.path(), free / 4);
        let third = free / 3;
        let mut first = disk.reserve(third).unwrap();
        let second = disk.reserve(third).unwrap();
        let refused = disk.reserve(third).unwrap_err();
        assert!(
            refused.free <= free - 2 * third,
            "the refusal counts what is promised: {refused}"
        );
        // A refusal promises nothing; an upload that ends gives its room back.
        drop(second);
        let second = disk.reserve(third).unwrap();
        // Bytes written leave the promise (the filesystem counts them now): here they were
        // not really written, so the room they free is real.
        first.written(third);
        assert!(disk.reserve(third).is_ok());
        drop((first, second));
        assert_eq!(
            disk.promised.load(Ordering::Acquire),
            0,
            "every promise came back"
        );
    }
}
