//! What a clamd must prove before we trust its "OK": that its database detects (the EICAR
//! test file is FOUND), that upgate's own depth signature is loaded, and that a stream as
//! large as our largest file is scanned to its last byte or its limit is reported. A clamd
//! with `AlertExceedsMax no` and limits below ours answers OK for files it never read; that
//! is the fault this catches.

use std::io::Read;

use crate::clamd::{Clamd, Verdict};

/// The marker upgate's depth signature (`config/clamav/upgate-canary.ndb`) matches anywhere.
pub const DEPTH_MARKER: &[u8] = b"UPGATE-SCAN-DEPTH-CANARY-5c1e07a9d3b24f68";
/// The smallest depth we accept: below this, clamd is too constrained to be useful.
const MIN_DEPTH: u64 = 64 * 1024;
/// A small depth canary, which tells "signature not loaded" apart from "limits too low".
const SMALL_DEPTH: u64 = 4 * 1024;

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
    /// Things an operator should fix that do not stop scanning.
    pub warnings: Vec<String>,
}

/// Runs the canaries against `clamd` (blocking). `Err` says, for the operator, why this
/// clamd cannot be trusted and which setting to fix.
pub fn prove(clamd: &Clamd, cap: u64) -> Result<Proven, String> {
    let engine = clamd.version().map_err(|e| e.to_string())?;
    detects(clamd)?;
    let depth = depth(clamd, cap)?;
    let mut warnings = Vec::new();
    if depth < cap {
        warnings.push(format!(
            "clamd scans files up to {depth} bytes, less than upgate's largest file ({cap} bytes): \
             larger files are refused as unscannable and settings above {depth} bytes are refused; \
             raise StreamMaxLength, MaxFileSize and MaxScanSize in clamd.conf to allow them"
        ));
    }
    // Every stream clamd scans is written to its temporary directory first, in plaintext.
    warnings.extend(super::tmpdir::warning(clamd.addr()));
    Ok(Proven {
        engine,
        depth,
        warnings,
    })
}

/// The database detects: the EICAR test file is FOUND, and so is upgate's depth marker in
/// a small stream (told apart, so the operator learns which of the two is missing).
pub fn detects(clamd: &Clamd) -> Result<(), String> {
    match clamd.scan(eicar().as_slice()) {
        Verdict::Infected(_) => {}
        Verdict::Unavailable(e) => return Err(format!("clamd did not answer the canary: {e}")),
        other => {
            return Err(format!(
                "canary not detected (clamd answered {other:?} for the EICAR test file): check clamd's signature database"
            ))
        }
    }
    match clamd.scan(DepthCanary::new(SMALL_DEPTH)) {
        Verdict::Infected(_) => Ok(()),
        Verdict::Unavailable(e) => Err(format!("clamd did not answer the canary: {e}")),
        _ => Err(
            "upgate's canary signature is not loaded: copy config/clamav/upgate-canary.ndb \
            into clamd's DatabaseDirectory and reload clamd (see docs/operations.md)"
                .into(),
        ),
    }
}

/// How deep clamd scans: our cap if it finds the marker at the end of a stream that long;
/// otherwise, if it reports its limit, the largest halving of the cap at which it still finds
/// it. A stream answered OK was never read to its end: that clamd cannot be trusted.
fn depth(clamd: &Clamd, cap: u64) -> Result<u64, String> {
    let mut size = cap;
    while size >= MIN_DEPTH {
        match clamd.scan(DepthCanary::new(size)) {
            Verdict::Infected(_) => return Ok(size),
            Verdict::NotScanned(_) => size /= 2,
            Verdict::Clean => {
                return Err(format!(
                    "clamd answered OK for a {size}-byte stream without finding the canary at its end: \
                     it silently skips what exceeds its limits. In clamd.conf set AlertExceedsMax yes, and \
                     StreamMaxLength, MaxFileSize and MaxScanSize to at least {}M",
                    cap.div_ceil(1024 * 1024) + 1
                ))
            }
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
