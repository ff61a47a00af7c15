//! What a clamd must prove before we trust its "OK": that its database detects (the EICAR
//! test file is FOUND), that upgate's own depth signature is loaded, and that a stream as
//! large as our largest file is scanned to its last byte or its limit is reported. A clamd
//! with `AlertExceedsMax no` and limits below ours answers OK for files it never read; that
//! is the fault this catches.
//!
//! The depth is proved in steps. The first proof goes to `FIRST_DEPTH` at most (about a
//! second of clamd's time) and brings trust; a deeper ceiling (gigabytes, which take clamd
//! a minute to read) is proved afterwards by `deepen`, doubling, while smaller files are
//! already scanned. A file deeper than the proof so far waits for it.

use std::io::Read;

use crate::clamd::{Clamd, Verdict};

/// The marker upgate's depth signature (`config/clamav/upgate-canary.ndb`) matches anywhere.
pub const DEPTH_MARKER: &[u8] = b"UPGATE-SCAN-DEPTH-CANARY-5c1e07a9d3b24f68";
/// The smallest depth we accept: below this, clamd is too constrained to be useful.
const MIN_DEPTH: u64 = 64 * 1024;
/// A small depth canary, which tells "signature not loaded" apart from "limits too low".
const SMALL_DEPTH: u64 = 4 * 1024;
/// The deepest the first proof goes; deeper is proved after trust, by `deepen`.
pub const FIRST_DEPTH: u64 = 64 << 20;
/// Between a depth found and one refused, the search for clamd's limit stops when they are
/// this close (a sixteenth of the depth): each step scans gigabytes.
const CLOSE_ENOUGH: u64 = 16;
/// How the warning for a deeper canary clamd failed begins (it is given once).
const FAILED_DEEPER: &str = "clamd failed to scan a";

/// The EICAR test string, assembled at run time so this source file is not itself flagged.
pub fn eicar() -> Vec<u8> {
    let parts = [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
    ];
    parts.concat().into_bytes()
}

/// `len` bytes of filler (cheap pseudo-random bytes, which clamd reads at full speed, unlike
/// long runs of one byte) ending in the depth marker.
pub struct DepthCanary {
    left: u64,
    state: u64,
}

impl DepthCanary {
    pub fn new(len: u64) -> DepthCanary {
        DepthCanary {
            left: len.max(DEPTH_MARKER.len() as u64),
            state: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

impl Read for DepthCanary {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let marker = DEPTH_MARKER.len() as u64;
        let n = (buf.len() as u64).min(self.left) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let left = self.left - i as u64;
            *b = if left <= marker {
                DEPTH_MARKER[(marker - left) as usize]
            } else {
                // xorshift64: filler that no signature is written against.
                self.state ^= self.state << 13;
                self.state ^= self.state >> 7;
                self.state ^= self.state << 17;
                (self.state >> 24) as u8
            };
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// What the canaries proved about one clamd process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    /// clamd's `VERSION`: engine, and database version when clamd reports one.
    pub engine: String,
    /// Files up to this many bytes are scanned whole.
    pub depth: u64,
    /// Deeper proofs are still to run, toward the ceiling: a larger file waits for them.
    pub deepening: bool,
    /// The smallest size clamd refused (reported its limit for): the depth lies below it,
    /// and the proof searches between the two.
    pub refused: Option<u64>,
    /// Things an operator should fix that do not stop scanning.
    pub warnings: Vec<String>,
}

/// Runs the canaries against `clamd` (blocking). `Err` says, for the operator, why this
/// clamd cannot be trusted and which setting to fix.
pub fn prove(clamd: &Clamd, cap: u64, missed: &dyn Fn()) -> Result<Proven, String> {
    let engine = clamd.version().map_err(|e| e.to_string())?;
    detects(clamd, missed)?;
    let (depth, refused) = depth(clamd, cap.min(FIRST_DEPTH), cap)?;
    let mut proven = Proven {
        engine,
        depth,
        deepening: false,
        refused,
        // Every stream clamd scans is written to its temporary directory first, in plaintext.
        warnings: super::tmpdir::warning(clamd.addr()).into_iter().collect(),
    };
    settle(&mut proven, cap);
    Ok(proven)
}

/// Whether deeper proofs are due (toward the ceiling, or between the depth and a refused
/// size still far apart), and once they are not, the warning if the depth fell short.
fn settle(proven: &mut Proven, cap: u64) {
    proven.deepening = match proven.refused {
        Some(refused) => refused - proven.depth > proven.depth / CLOSE_ENOUGH,
        None => proven.depth < cap,
    };
    if !proven.deepening {
        short_of(proven, cap);
    }
}

/// One step of proving deeper, toward `cap`: twice the depth so far, or, once clamd has
/// refused a size, halfway to it. A canary clamd fails to scan (an error reply, a dropped
/// connection: most often a temporary directory too small for it) is a size it cannot
/// scan, not a reason to distrust it: the tether says whether clamd itself is gone, and
/// smaller files were proved.
pub fn deepen(clamd: &Clamd, proven: &mut Proven, cap: u64) {
    let size = match proven.refused {
        Some(refused) => proven.depth + (refused - proven.depth) / 2,
        None => proven.depth.saturating_mul(2).min(cap),
    };
    match clamd.scan(DepthCanary::new(size), size) {
        Verdict::Infected(_) => proven.depth = size,
        Verdict::NotScanned(_) => proven.refused = Some(size),
        Verdict::Clean => {
            // Read only in part, silently: nothing deeper can be trusted, what was proved stays.
            proven.refused = Some(proven.depth);
            proven.warnings.push(silent_skip(size, cap));
        }
        Verdict::Unavailable(e) => {
            proven.refused = Some(size);
            if !proven.warnings.iter().any(|w| w.starts_with(FAILED_DEEPER)) {
                proven.warnings.push(format!(
                    "{FAILED_DEEPER} {size}-byte canary ({e}): if clamd's log says 'No space left on \
                     device', its TemporaryDirectory (the tmpfs size=) is smaller than the files \
                     upgate takes; files above the depth proved are refused as unscannable"
                ));
            }
        }
    }
    settle(proven, cap);
}

/// The operator's warning when the depth proved is short of the ceiling.
fn short_of(proven: &mut Proven, cap: u64) {
    let depth = proven.depth;
    if depth < cap {
        proven.warnings.insert(
            0,
            format!(
                "clamd scans files up to {depth} bytes, less than upgate's largest file ({cap} bytes, \
                 uploads.max_file_size): larger files are refused as unscannable and settings above \
                 {depth} bytes are refused; raise StreamMaxLength, MaxFileSize and MaxScanSize in \
                 clamd.conf, and the tmpfs of its TemporaryDirectory, to allow them (clamd scans \
                 at most about 2 GiB)"
            ),
        );
    }
}

fn silent_skip(size: u64, cap: u64) -> String {
    format!(
        "clamd answered OK for a {size}-byte stream without finding the canary at its end: \
         it silently skips what exceeds its limits. In clamd.conf set AlertExceedsMax yes, and \
         StreamMaxLength, MaxFileSize and MaxScanSize to at least {}M",
        cap.div_ceil(1024 * 1024) + 1
    )
}

/// The database detects: the EICAR test file is FOUND, and so is upgate's depth marker in
/// a small stream (told apart, so the operator learns which of the two is missing).
/// `missed` is called when clamd answered and did not detect one (counted for alerts).
pub fn detects(clamd: &Clamd, missed: &dyn Fn()) -> Result<(), String> {
    match clamd.scan(eicar().as_slice(), eicar().len() as u64) {
        Verdict::Infected(_) => {}
        Verdict::Unavailable(e) => return Err(format!("clamd did not answer the canary: {e}")),
        other => {
            missed();
            return Err(format!(
                "canary not detected (clamd answered {other:?} for the EICAR test file): check clamd's signature database"
            ));
        }
    }
    match clamd.scan(DepthCanary::new(SMALL_DEPTH), SMALL_DEPTH) {
        Verdict::Infected(_) => Ok(()),
        Verdict::Unavailable(e) => Err(format!("clamd did not answer the canary: {e}")),
        _ => {
            missed();
            Err(
                "upgate's canary signature is not loaded: copy config/clamav/upgate-canary.ndb \
                into clamd's DatabaseDirectory and reload clamd (see docs/operations.md)"
                    .into(),
            )
        }
    }
}

/// How deep clamd scans, up to `first`: `first` if it finds the marker at the end of a
/// stream that long; otherwise, if it reports its limit, the largest halving of it at which
/// it still finds it, with the smallest size it refused (`deepen` searches between them).
/// A stream answered OK was never read to its end: that clamd cannot be trusted.
fn depth(clamd: &Clamd, first: u64, cap: u64) -> Result<(u64, Option<u64>), String> {
    let (mut size, mut refused) = (first, None);
    while size >= MIN_DEPTH {
        match clamd.scan(DepthCanary::new(size), size) {
            Verdict::Infected(_) => return Ok((size, refused)),
            Verdict::NotScanned(_) => {
                refused = Some(size);
                size /= 2;
            }
            Verdict::Clean => return Err(silent_skip(size, cap)),
            Verdict::Unavailable(e) => return Err(format!("clamd did not answer the canary: {e}")),
        }
    }
    Err(format!(
        "clamd scans less than {MIN_DEPTH} bytes: raise StreamMaxLength, MaxFileSize and MaxScanSize in clamd.conf"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_depth_canary_is_its_length_and_ends_in_the_marker() {
        for len in [0u64, 1, 41, 42, 100, 65_537, 1 << 20] {
            let mut out = Vec::new();
            DepthCanary::new(len).read_to_end(&mut out).unwrap();
            assert_eq!(out.len() as u64, len.max(DEPTH_MARKER.len() as u64));
            assert!(out.ends_with(DEPTH_MARKER), "{len}");
            // The marker is only at the end: a scan that stops early cannot find it.
            let body = &out[..out.len() - DEPTH_MARKER.len()];
            assert!(!body.windows(8).any(|w| w == &DEPTH_MARKER[..8]));
        }
    }

    #[test]
    fn the_shipped_signature_matches_the_marker() {
        let ndb = include_str!("../../../config/clamav/upgate-canary.ndb");
        let hex = ndb.trim().rsplit(':').next().unwrap();
        assert_eq!(hex, hex::encode(DEPTH_MARKER));
    }
}
