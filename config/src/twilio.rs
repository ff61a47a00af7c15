//! The shapes of Twilio identifiers, checked at start so that a typo fails here with the
//! key's name rather than as a 4xx from Twilio on the first text a caller asks for.

use crate::Problem;

/// `AC` and 32 hex digits, as Twilio issues Account SIDs.
pub(crate) fn check_account_sid(sid: &str) -> Option<Problem> {
    // Empty: already reported as missing.
    if sid.is_empty() || is_sid(sid, "AC") {
        return None;
    }
    let hint = if is_sid(sid, "SK") {
        " (that is an API key SID; the Account SID starts with AC)"
    } else {
        ""
    };
    Some(Problem {
        key: "sms.twilio.account_sid".into(),
        problem: format!("{sid:?} is not an Account SID{hint}"),
        fix: "copy the Account SID from the Twilio console: AC followed by 32 hex digits".into(),
    })
}

/// What upgate can send as Twilio's `From` field: an E.164 number (`+`, then 8 to 15
/// digits, the first not 0) or an alphanumeric sender id (1 to 11 ASCII letters, digits
/// and spaces, at least one letter). A Messaging Service SID (`MG…`) is refused: Twilio
/// takes it as `MessagingServiceSid`, a field upgate does not send.
pub(crate) fn check_from(from: &str) -> Option<Problem> {
    if from.is_empty() || is_e164(from) || is_alphanumeric_sender(from) {
        return None;
    }
    let problem = if is_sid(from, "MG") {
        format!("{from:?} is a Messaging Service SID, which Twilio does not take as From")
    } else if from.starts_with('+') {
        format!("{from:?} is not an E.164 number (+, then 8 to 15 digits, no spaces)")
    } else if from.bytes().all(|b| b.is_ascii_digit()) {
        format!("{from:?} has no leading + (a number must be in E.164 form)")
    } else {
        format!("{from:?} is neither an E.164 number nor an alphanumeric sender id")
    };
    Some(Problem {
        key: "sms.twilio.from".into(),
        problem,
        fix:
            "write the sending number as \"+15005550006\", or a sender id of 1-11 letters, digits and spaces"
                .into(),
    })
}

fn is_sid(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

fn is_alphanumeric_sender(s: &str) -> bool {
    (1..=11).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.trim() == s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_sids() {
        assert!(check_account_sid("AC0123456789abcdef0123456789ABCDEF").is_none());
        for bad in [
            "AC1",
            "ac0123456789abcdef0123456789abcdef",
            "AC0123456789abcdef0123456789abcdeg",
            "AC0123456789abcdef0123456789abcdef0",
            "SK0123456789abcdef0123456789abcdef",
        ] {
            assert!(check_account_sid(bad).is_some(), "{bad}");
        }
        assert!(check_account_sid("SK0123456789abcdef0123456789abcdef")
            .unwrap()
            .problem
            .contains("API key"));
    }

    #[test]
    fn senders() {
        for ok in [
            "+15005550006",
            "+4412345678",
            "+123456789012345",
            "Clinic",
            "Dr Smith 24",
            "A",
        ] {
            assert!(check_from(ok).is_none(), "{ok}");
        }
        for bad in [
            "15005550006",
            "+1500",
            "+1234567890123456",
            "+0123456789",
            "+1 500 555 0006",
            "MG0123456789abcdef0123456789abcdef",
            "TwelveChars1",
            "12345",
            " Clinic",
            "Clinic!",
            "Cliníc",
        ] {
            assert!(check_from(bad).is_some(), "{bad}");
        }
    }
}
