//! When a failed delivery is tried again: 5 s after the first failure, then about four
//! times longer each time (20 s, 80 s, 5 min, 21 min, 85 min, 5.7 h), at most 10 h apart,
//! each pause moved by up to a fifth either way so that endpoints failing together do not
//! retry together; and never past `retry_for` after the first attempt, which is the last
//! one, so a delivery is retried for all of that window and then becomes a dead letter.

/// The first pause, and the longest.
const FIRST: u64 = 5;
const LONGEST: u64 = 10 * 3600;

/// When to try again after `attempts` failed attempts (at `now`), or `None` for a dead
/// letter. `jitter` is in [-1, 1].
pub fn next_attempt(first_at: u64, attempts: u32, now: u64, retry_for: u64, jitter: f64) -> Option<u64> {
    let end = first_at.saturating_add(retry_for);
    if now >= end {
        return None;
    }
    let exponent = attempts.saturating_sub(1).min(16);
    let pause = FIRST.saturating_mul(4u64.saturating_pow(exponent)).min(LONGEST);
    let moved = (pause as f64 * (1.0 + 0.2 * jitter.clamp(-1.0, 1.0))).round() as u64;
    Some(now.saturating_add(moved.max(1)).min(end))
}

/// A jitter in [-1, 1] from the system's randomness (0 if it has none to give).
pub fn jitter() -> f64 {
    let mut b = [0u8; 2];
    match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b) {
        Ok(()) => f64::from(u16::from_be_bytes(b)) / f64::from(u16::MAX) * 2.0 - 1.0,
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600;

    #[test]
    fn pauses_grow_fourfold_up_to_ten_hours() {
        let mut t = 1_000;
        let mut pauses = Vec::new();
        for attempts in 1..=8 {
            let next = next_attempt(1_000, attempts, t, DAY, 0.0).unwrap();
            pauses.push(next - t);
            t = next;
        }
        assert_eq!(&pauses[..7], &[5, 20, 80, 320, 1280, 5120, 20480]);
        assert_eq!(pauses[7], LONGEST);
    }

    #[test]
    fn retries_go_on_for_the_whole_window_then_stop() {
        let (first, mut t, mut attempts) = (1_000u64, 1_000u64, 1u32);
        while let Some(next) = next_attempt(first, attempts, t, DAY, 1.0) {
            assert!(next > t && next <= first + DAY);
            t = next;
            attempts += 1;
        }
        assert_eq!(t, first + DAY, "the last attempt is at the window's end");
        assert!(attempts <= 12, "{attempts}");
    }

    #[test]
    fn jitter_moves_a_pause_by_a_fifth_at_most() {
        assert_eq!(next_attempt(0, 3, 0, DAY, 1.0), Some(96));
        assert_eq!(next_attempt(0, 3, 0, DAY, -1.0), Some(64));
        for _ in 0..100 {
            let j = jitter();
            assert!((-1.0..=1.0).contains(&j));
        }
    }
}
