//! One id per request, carried by a tracing span so that every line logged for an upload
//! (the request line, the refusal or the stored file, the scanner's word) shares it, and
//! sent back as `X-Request-Id` so a caller or an integration can quote it to support.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use http::HeaderValue;

static NEXT: AtomicU64 = AtomicU64::new(0);
static BASE: OnceLock<u64> = OnceLock::new();

/// The next id: 16 hex digits, unique within the process and unlikely to repeat across
/// restarts (a random base). Not a secret, and it says nothing about the request.
pub fn next() -> String {
    let base = *BASE.get_or_init(|| {
        let mut bytes = [0u8; 8];
        // An id that repeats across restarts only makes logs harder to read.
        let _ = crate::sys::fill_random(&mut bytes);
        u64::from_le_bytes(bytes)
    });
    format!("{:016x}", base.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// The span every line of one request is logged in.
pub fn span(id: &str) -> tracing::Span {
    tracing::info_span!("request", id)
}

pub fn header(id: &str) -> HeaderValue {
    HeaderValue::from_str(id).expect("hex is a valid header value")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_distinct_and_plain() {
        let a = super::next();
        let b = super::next();
        assert_ne!(a, b);
        assert!(a.len() == 16 && a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
    }
}
