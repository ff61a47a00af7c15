//! Caps on texts per caller number and per account over a sliding hour, against SMS pumping
//! (someone making us text premium numbers). In memory: a restart forgets the last hour,
//! which costs at most one extra hour's allowance.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use upgate_config::SmsLimits;

const HOUR: u64 = 3600;
/// Above this many tracked keys, empty windows are dropped so the map cannot grow unbounded.
const PRUNE_ABOVE: usize = 10_000;

pub struct SmsWindow {
    limits: SmsLimits,
    sent: Mutex<HashMap<String, VecDeque<u64>>>,
}

impl SmsWindow {
    pub fn new(limits: SmsLimits) -> SmsWindow {
        SmsWindow {
            limits,
            sent: Mutex::default(),
        }
    }

    /// Counts one more text to `number` for `account` at `now`, or returns the seconds until
    /// there is room (nothing counted then).
    pub fn admit(&self, account: &str, number: &str, now: u64) -> Result<(), u64> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        if sent.len() > PRUNE_ABOVE {
            sent.retain(|_, times| times.back().is_some_and(|t| now.saturating_sub(*t) < HOUR));
        }
        let keys = [
            (format!("{account}/{number}"), self.limits.per_number_per_hour),
            (account.to_string(), self.limits.per_account_per_hour),
        ];
        let mut wait = 0;
        for (key, limit) in &keys {
            let times = sent.entry(key.clone()).or_default();
            while times.front().is_some_and(|t| now.saturating_sub(*t) >= HOUR) {
                times.pop_front();
            }
            if times.len() >= *limit {
                let oldest = times.front().copied().unwrap_or(now);
                wait = wait.max(HOUR - now.saturating_sub(oldest));
            }
        }
        if wait > 0 {
            return Err(wait);
        }
        for (key, _) in keys {
            sent.entry(key).or_default().push_back(now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> SmsWindow {
        SmsWindow::new(SmsLimits {
            per_number_per_hour: 2,
            per_account_per_hour: 3,
        })
    }

    #[test]
    fn a_number_gets_its_allowance_then_waits_for_the_oldest_text_to_age_out() {
        let w = window();
        assert_eq!(w.admit("a", "+1", 1000), Ok(()));
        assert_eq!(w.admit("a", "+1", 1100), Ok(()));
        assert_eq!(w.admit("a", "+1", 1200), Err(3400));
        assert_eq!(w.admit("a", "+1", 1000 + HOUR), Ok(()));
    }

    #[test]
    fn the_account_cap_spans_numbers_and_accounts_are_separate() {
        let w = window();
        assert_eq!(w.admit("a", "+1", 10), Ok(()));
        assert_eq!(w.admit("a", "+2", 20), Ok(()));
        assert_eq!(w.admit("a", "+3", 30), Ok(()));
        assert!(w.admit("a", "+4", 40).is_err());
        assert_eq!(w.admit("b", "+1", 40), Ok(()));
    }

    #[test]
    fn a_refusal_counts_nothing() {
        let w = window();
        w.admit("a", "+1", 0).unwrap();
        w.admit("a", "+1", 0).unwrap();
        for t in 1..10 {
            assert!(w.admit("a", "+1", t).is_err());
        }
        // The account used 2 of 3: another number still gets one.
        assert_eq!(w.admit("a", "+2", 10), Ok(()));
    }
}
