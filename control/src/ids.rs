//! Identifiers from outside, checked against strict alphabets before any storage call.

/// Random ids of our own records (accounts, tokens, SMS): a prefix and 16 hex chars (64 bits).
/// File ids are storage object keys (`f_` + 32 hex, see `ObjectKey`).
pub fn new_id(prefix: &str) -> String {
    let bytes: [u8; 8] = upgate_gateway::sys::random().expect("system random works");
    format!("{prefix}_{}", hex::encode(bytes))
}

/// The voice platform's own ids (calls, assistants): 1-128 of `A-Z a-z 0-9 . _ : -`.
pub fn is_external_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Our own ids: `prefix_` + 16 lowercase hex.
pub fn is_own_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .is_some_and(|h| {
            h.len() == 16
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// E.164: `+`, a non-zero country digit, 8 to 15 digits in all. We check the shape, not
/// the numbering plan: the carrier is the authority on whether a number exists.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164() {
        for good in ["+14155550123", "+4915123456789", "+33612345678"] {
            assert!(is_e164(good), "{good}");
        }
        for bad in [
            "",
            "+",
            "14155550123",
            "+0155550123",
            "+1415555012345678",
            "+1 415 555 0123",
            "+1415555012a",
            "+1234567",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn external_ids() {
        assert!(is_external_id("call-2026.11.24:abc_1"));
        for bad in ["", "a/b", "../x", "a b", "é", &"x".repeat(129)] {
            assert!(!is_external_id(bad), "{bad}");
        }
    }

    #[test]
    fn own_ids() {
        let id = new_id("acc");
        assert!(is_own_id(&id, "acc"));
        assert!(!is_own_id(&id, "tok"));
        assert!(!is_own_id("acc_0123", "acc"));
        assert!(!is_own_id("acc_0123456789ABCDEF", "acc"));
    }
}
