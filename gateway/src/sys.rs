//! What the code takes from the system, each in one place: the clock, random bytes, and
//! comparing secrets. Both planes use these, so that a test, a second process or a later
//! change (a clock that tests can move, another random source) has one seam to go through.

use std::time::{SystemTime, UNIX_EPOCH};

use subtle::ConstantTimeEq;

/// Seconds since the Unix epoch, the unit of every expiry and record time (0 if the clock is
/// set before 1970).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The operating system's random generator failed: nothing secret may be made without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random generator failed")]
pub struct RandomError;

/// Fills `bytes` from the operating system's CSPRNG.
pub fn fill_random(bytes: &mut [u8]) -> Result<(), RandomError> {
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), bytes).map_err(|_| RandomError)
}

/// `N` random bytes from the operating system's CSPRNG.
pub fn random<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    fill_random(&mut bytes)?;
    Ok(bytes)
}

/// Compares secrets (MAC tags, token hashes) in time independent of where they differ,
/// with the `subtle` crate rather than by hand. Lengths are not secret: different lengths
/// are unequal at once.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_equal_only_when_every_byte_and_the_length_are() {
        assert!(secrets_equal(b"", b""));
        assert!(secrets_equal(b"tag-0123", b"tag-0123"));
        assert!(!secrets_equal(b"tag-0123", b"tag-0124"));
        assert!(!secrets_equal(b"xag-0123", b"tag-0123"));
        assert!(!secrets_equal(b"tag-0123", b"tag-012"));
        assert!(!secrets_equal(b"", b"t"));
    }

    #[test]
    fn random_bytes_differ_between_calls() {
        let (a, b) = (random::<32>().unwrap(), random::<32>().unwrap());
        assert_ne!(a, b);
        assert_ne!(a, [0; 32]);
    }

    #[test]
    fn the_clock_is_after_this_code_was_written() {
        // 2026-01-01: a clock at 0 (before 1970) or in seconds' wrong unit fails here.
        let t = now();
        assert!(t > 1_767_225_600 && t < 1_767_225_600 * 2, "{t}");
    }
}
