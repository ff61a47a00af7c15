//! Cheap refusal of link guessing: each client address may fail the token check a few times
//! per window; past that its link requests are refused before any MAC is computed. Failures
//! across all addresses are counted too, and a spike is logged as an alert (blocking
//! everyone would hurt real callers more than it hurts a distributed guesser).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked at most, so an attacker with many addresses (or made-up emails) cannot grow
/// our memory. Beyond it, expired entries are dropped, then those still under budget, then
/// the oldest half of the blocked ones: flooding new keys never frees the keys it wants
/// freed before their window ends.
const MAX_TRACKED: usize = 100_000;

/// The unit a client is counted in: an IPv4 address, or an IPv6 /64 (one subscriber's
/// network usually holds a whole /64, so counting single IPv6 addresses counts nothing).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let seg = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(
                    seg[0], seg[1], seg[2], seg[3], 0, 0, 0, 0,
                ))
            }
        },
    }
}

/// Failures counted per key (a client address for links; an address or a user for the
/// console's sign-in) in fixed windows.
pub struct FailureLimiter<K = IpAddr> {
    window: Duration,
    per_ip: u32,
    global_alert: u32,
    alert: &'static str,
    state: Mutex<State<K>>,
}

struct State<K> {
    by_ip: HashMap<K, (Instant, u32)>,
    global: (Instant, u32),
}

impl FailureLimiter<IpAddr> {
    pub fn new(per_ip: u32, window: Duration) -> FailureLimiter<IpAddr> {
        FailureLimiter::with_alert(
            per_ip,
            window,
            "ALERT: many invalid link tokens from many addresses: someone may be guessing links",
        )
    }
}

impl<K: Hash + Eq + Clone> FailureLimiter<K> {
    /// `alert` is logged when failures across all keys reach 50 keys' budgets in a window.
    pub fn with_alert(per_key: u32, window: Duration, alert: &'static str) -> FailureLimiter<K> {
        FailureLimiter {
            window,
            per_ip: per_key,
            global_alert: per_key.saturating_mul(50),
            alert,
            state: Mutex::new(State {
                by_ip: HashMap::new(),
                global: (Instant::now(), 0),
            }),
        }
    }

    /// Has this key used up its failures for the current window?
    pub fn blocked(&self, ip: &K) -> bool {
        self.retry_after(ip).is_some()
    }

    /// How long until this key may try again, when it has used up its failures.
    pub fn retry_after(&self, ip: &K) -> Option<Duration> {
        let state = self.state.lock().expect("limiter lock");
        state
            .by_ip
            .get(ip)
            .filter(|(start, n)| start.elapsed() < self.window && *n >= self.per_ip)
            .map(|(start, _)| self.window.saturating_sub(start.elapsed()))
    }

    /// Counts a try against the key before it is checked, in one step with the budget check:
    /// tries sent at once cannot all pass it. `Err` with the wait when the budget is spent
    /// (nothing counted); give the try back with [`FailureLimiter::undo`] if it succeeds.
    pub fn charge(&self, key: K) -> Result<(), Duration> {
        let mut state = self.state.lock().expect("limiter lock");
        if let Some((start, n)) = state.by_ip.get(&key) {
            if start.elapsed() < self.window && *n >= self.per_ip {
                return Err(self.window.saturating_sub(start.elapsed()));
            }
        }
        self.count(&mut state, key);
        Ok(())
    }

    /// Gives back one failure counted for the key (a try counted before it was checked,
    /// which turned out right).
    pub fn undo(&self, ip: &K) {
        if let Some(entry) = self.state.lock().expect("limiter lock").by_ip.get_mut(ip) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    /// Forgets the key's failures (a success: the person behind it is who they said).
    pub fn forget(&self, ip: &K) {
        self.state.lock().expect("limiter lock").by_ip.remove(ip);
    }

    /// Records one failure for `ip`.
    pub fn failed(&self, ip: K) {
        let mut state = self.state.lock().expect("limiter lock");
        self.count(&mut state, ip);
    }

    fn count(&self, state: &mut State<K>, key: K) {
        let now = Instant::now();
        if state.by_ip.len() >= MAX_TRACKED {
            self.make_room(state, now);
        }
        let entry = state.by_ip.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if now.duration_since(state.global.0) >= self.window {
            state.global = (now, 0);
        }
        state.global.1 += 1;
        if state.global.1 == self.global_alert {
            tracing::warn!(failures = state.global.1, "{}", self.alert);
        }
    }

    /// Frees room for a new key, keeping the blocked keys as long as it can.
    fn make_room(&self, state: &mut State<K>, now: Instant) {
        let (window, budget) = (self.window, self.per_ip);
        state
            .by_ip
            .retain(|_, (start, _)| now.duration_since(*start) < window);
        if state.by_ip.len() >= MAX_TRACKED {
            state.by_ip.retain(|_, (_, n)| *n >= budget);
        }
        if state.by_ip.len() >= MAX_TRACKED {
            // Every key is blocked: the oldest windows end soonest anyway.
            let mut starts: Vec<Instant> = state.by_ip.values().map(|(start, _)| *start).collect();
            let (_, middle, _) = starts.select_nth_unstable(MAX_TRACKED / 2);
            let cut = *middle;
            state.by_ip.retain(|_, (start, _)| *start >= cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_budget_and_others_are_not() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert!(!limiter.blocked(&a));
            limiter.failed(a);
        }
        assert!(limiter.blocked(&a));
        assert!(!limiter.blocked(&b));
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn tries_charged_at_once_stop_at_the_budget() {
        let limiter = std::sync::Arc::new(FailureLimiter::<String>::with_alert(
            5,
            Duration::from_secs(60),
            "x",
        ));
        let passed: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    let limiter = limiter.clone();
                    s.spawn(move || limiter.charge("ana".to_string()).is_ok() as usize)
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(passed, 5, "{passed} of 16 passed a budget of 5");
        limiter.undo(&"ana".to_string());
        assert!(
            limiter.charge("ana".to_string()).is_ok(),
            "a success gives its try back"
        );
        assert!(limiter.charge("ana".to_string()).is_err());
    }

    #[test]
    fn the_window_ends() {
        let limiter = FailureLimiter::new(1, Duration::from_millis(30));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        limiter.failed(a);
        assert!(limiter.blocked(&a));
        std::thread::sleep(Duration::from_millis(40));
        assert!(!limiter.blocked(&a));
    }

    #[test]
    fn a_flood_of_new_keys_does_not_free_a_blocked_one() {
        let limiter = FailureLimiter::<u32>::with_alert(2, Duration::from_secs(60), "x");
        limiter.failed(0);
        limiter.failed(0);
        assert!(limiter.blocked(&0));
        for key in 1..=(MAX_TRACKED as u32 + 10) {
            limiter.failed(key);
        }
        assert!(limiter.blocked(&0), "still blocked after the flood");
        let tracked = limiter.state.lock().unwrap().by_ip.len();
        assert!(tracked <= MAX_TRACKED, "{tracked}");
    }
}
