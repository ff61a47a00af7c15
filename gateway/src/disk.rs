//! Free space where uploads land. A disk that fills mid-upload fails that upload late and
//! can take the metadata store with it, so below a watermark readiness says "not ready" and
//! new uploads are refused before a byte is read.

use std::path::{Path, PathBuf};

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
}

impl DiskWatch {
    pub fn new(dir: &Path, min_free: u64) -> DiskWatch {
        DiskWatch {
            dir: dir.to_path_buf(),
            min_free,
        }
    }

    /// Bytes an unprivileged process may still write on the directory's filesystem.
    pub fn free(&self) -> std::io::Result<u64> {
        let stat = rustix::fs::statvfs(&self.dir)?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    /// Whether `incoming` more bytes leave the watermark free. An unreadable filesystem
    /// answers no: we cannot promise the file a place.
    pub fn room_for(&self, incoming: u64) -> Result<u64, DiskLow> {
        let low = |free| DiskLow {
            free,
            min_free: self.min_free,
        };
        let free = self.free().map_err(|_| low(0))?;
        if free.saturating_sub(incoming) < self.min_free {
            return Err(low(free));
        }
        Ok(free)
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
        assert!(DiskWatch::new(dir.path(), 0).room_for(0).is_ok());
        assert!(DiskWatch::new(dir.path(), free / 2).room_for(0).is_ok());
        assert!(DiskWatch::new(dir.path(), u64::MAX).room_for(0).is_err());
        // Room now, but not once this file is in.
        assert!(DiskWatch::new(dir.path(), free / 2).room_for(free).is_err());
        // A directory that does not exist has no room.
        assert!(DiskWatch::new(Path::new("/nonexistent/upgate"), 0)
            .room_for(0)
            .is_err());
    }
}
