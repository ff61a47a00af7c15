//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA1, 30-second steps,
//! six digits, the parameters every authenticator app defaults to. Written on ring's HMAC,
//! which we already trust for everything else, rather than a crate that would bring a
//! second SHA-1 and HMAC; the RFC's own vectors hold it to the standard.

use ring::hmac;

/// Seconds per code.
pub const STEP: u64 = 30;
/// How many steps either side of now a code is still taken: a phone's clock a little off,
/// or a code typed as it turned over.
const SKEW_STEPS: u64 = 1;
/// Length of a new secret: 160 bits, RFC 4226's recommendation.
const SECRET_BYTES: usize = 20;

/// A new shared secret, in the base32 form authenticator apps take.
pub fn new_secret() -> String {
    let bytes: [u8; SECRET_BYTES] = upgate_gateway::sys::random().expect("system random works");
    data_encoding::BASE32_NOPAD.encode(&bytes)
}

/// The `otpauth://` address an authenticator app reads (typed in, or pasted).
pub fn provisioning_uri(secret: &str, issuer: &str, account: &str) -> String {
    let enc =
        |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits=6&period={STEP}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

/// The code for counter `counter` (RFC 4226's HOTP), six digits.
fn hotp(key: &[u8], counter: u64) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let binary =
        u32::from_be_bytes([mac[offset], mac[offset + 1], mac[offset + 2], mac[offset + 3]]) & 0x7fff_ffff;
    binary % 1_000_000
}

/// The step a code was accepted for, if `code` is right for `secret` at `now` (one step of
/// skew either way). The caller refuses a step it has seen before, so a code works once.
pub fn verify(secret: &str, code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let key = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).ok()?;
    let step = now / STEP;
    let mut found = None;
    // Every candidate is computed and compared in constant time, so timing tells nothing
    // about which step (if any) matched.
    for candidate in step.saturating_sub(SKEW_STEPS)..=step + SKEW_STEPS {
        let expected = format!("{:06}", hotp(&key, candidate));
        if upgate_gateway::sys::secrets_equal(expected.as_bytes(), code.as_bytes()) {
            found = Some(candidate);
        }
    }
    found
}

/// The current code, for tests that play the authenticator app.
#[cfg(test)]
pub fn code_at(secret: &str, now: u64) -> String {
    let key = data_encoding::BASE32_NOPAD.decode(secret.as_bytes()).unwrap();
    format!("{:06}", hotp(&key, now / STEP))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows: the 8-digit values' last six digits.
    #[test]
    fn rfc6238_vectors() {
        let key = b"12345678901234567890";
        for (t, eight) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(format!("{:06}", hotp(key, t / STEP)), eight[2..], "T = {t}");
        }
    }

    #[test]
    fn a_code_is_taken_one_step_either_side_and_not_further() {
        let secret = new_secret();
        let now = 1_700_000_015;
        let code = code_at(&secret, now);
        assert_eq!(verify(&secret, &code, now), Some(now / STEP));
        assert!(verify(&secret, &code, now + STEP).is_some());
        assert!(verify(&secret, &code, now - STEP).is_some());
        assert_eq!(verify(&secret, &code, now + 2 * STEP), None);
        assert_eq!(verify(&secret, &code, now - 2 * STEP), None);
    }

    #[test]
    fn malformed_codes_and_secrets_are_refused() {
        let secret = new_secret();
        for code in ["", "12345", "1234567", "12a456", "١٢٣٤٥٦"] {
            assert_eq!(verify(&secret, code, 1_700_000_000), None, "{code:?}");
        }
        assert_eq!(verify("not base32!", "123456", 1_700_000_000), None);
    }

    #[test]
    fn the_provisioning_uri_names_the_issuer_and_escapes_the_account() {
        let uri = provisioning_uri("ABC", "upgate", "ana@example.com");
        assert!(
            uri.starts_with("otpauth://totp/upgate:ana%40example%2Ecom?secret=ABC&issuer=upgate"),
            "{uri}"
        );
    }
}
