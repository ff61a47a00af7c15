//! Standard Webhooks signatures (https://www.standardwebhooks.com): a secret is `whsec_`
//! and the base64 of its key; a message is signed as HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}`, sent as `v1,<base64>`. While a rotated secret
//! overlaps its successor, the header carries one signature per live secret, space-separated,
//! so receivers holding either verify.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::hmac;

/// Bytes of key in a secret we generate (the spec asks for 24 to 64).
const KEY_BYTES: usize = 32;

/// A new secret, `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> Result<String, ring::error::Unspecified> {
    let mut key = [0u8; KEY_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)?;
    Ok(format!("whsec_{}", STANDARD.encode(key)))
}

/// The key inside a secret, or `None` when it is not one of ours.
fn key_of(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix("whsec_")?).ok()
}

/// The `webhook-signature` header for a message, signed with each of `secrets`.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    id: &str,
    timestamp: u64,
    body: &[u8],
) -> String {
    let mut signed = Vec::with_capacity(id.len() + body.len() + 24);
    signed.extend_from_slice(format!("{id}.{timestamp}.").as_bytes());
    signed.extend_from_slice(body);
    secrets
        .into_iter()
        .filter_map(key_of)
        .map(|key| {
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), &signed);
            format!("v1,{}", STANDARD.encode(tag.as_ref()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// How far a signed message's timestamp may be from now (the specification's tolerance):
/// an older capture is refused even with a good signature.
pub const TOLERANCE_SECONDS: u64 = 300;

/// Whether a received message is signed with `secret` and recent: `signature` may hold
/// several space-separated `v1,…` entries, one of which must match.
pub fn verify(secret: &str, id: &str, timestamp: &str, signature: &str, body: &[u8], now: u64) -> bool {
    let Ok(ts) = timestamp.parse::<u64>() else {
        return false;
    };
    if ts.abs_diff(now) > TOLERANCE_SECONDS {
        return false;
    }
    let want = signature_header([secret], id, ts, body);
    !want.is_empty()
        && signature
            .split(' ')
            .any(|given| upgate_gateway::sys::secrets_equal(given.as_bytes(), want.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_a_recent_message_under_any_of_its_signatures() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let (id, ts, body) = (
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(verify(secret, id, "1614265330", good, body, ts));
        assert!(verify(
            secret,
            id,
            "1614265330",
            &format!("v1,AAAA {good}"),
            body,
            ts + 299
        ));
        assert!(!verify(secret, id, "1614265330", good, body, ts + 301), "too old");
        assert!(!verify(secret, id, "1614265330", good, b"{}", ts), "another body");
        assert!(
            !verify(secret, "msg_other", "1614265330", good, body, ts),
            "another id"
        );
        assert!(!verify(
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            id,
            "1614265330",
            good,
            body,
            ts
        ));
        assert!(!verify(secret, id, "soon", good, body, ts));
    }

    /// The example of the Standard Webhooks reference libraries' own tests.
    #[test]
    fn signs_the_specification_s_example() {
        let header = signature_header(
            ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn overlapping_secrets_sign_once_each() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert!(a.starts_with("whsec_") && a != b);
        let both = signature_header([a.as_str(), b.as_str()], "m", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], signature_header([a.as_str()], "m", 1, b"{}"));
        assert!(signature_header(["not-a-secret"], "m", 1, b"{}").is_empty());
    }
}
