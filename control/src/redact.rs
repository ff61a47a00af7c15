//! Phone numbers as logs may show them: enough to tell two callers apart or find a carrier
//! problem by country and range, never enough to call anyone. Logs are read and shipped by
//! more people and systems than the call records are, so they carry no personal data.

/// Digits shown at the end of a masked number.
const TAIL: usize = 3;
/// At most this many leading digits (country code and range) are shown.
const HEAD_MAX: usize = 5;

/// `+4915112345678` -> `+49151*****678`. At least a third of the digits (and never fewer
/// than three) are hidden whatever the length; anything that is not a `+` and digits is
/// hidden whole, so a malformed value cannot slip through unmasked.
pub fn mask_phone(number: &str) -> String {
    let (plus, digits) = match number.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", number),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return "[hidden]".into();
    }
    let n = digits.len();
    let hidden = (n.div_ceil(3)).max(3).min(n);
    let tail = TAIL.min(n - hidden);
    let head = (n - hidden - tail).min(HEAD_MAX);
    let stars = n - head - tail;
    format!(
        "{plus}{}{}{}",
        &digits[..head],
        "*".repeat(stars),
        &digits[n - tail..]
    )
}

/// Free text (a provider's error message) with every run of seven or more digits, with or
/// without a leading `+`, masked by [`mask_phone`]. Carriers echo the number they refused.
pub fn mask_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit() || c == '+') {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let plus = usize::from(candidate.starts_with('+'));
        let digits = candidate[plus..].bytes().take_while(u8::is_ascii_digit).count();
        let end = plus + digits;
        if digits >= 7 {
            out.push_str(&mask_phone(&candidate[..end]));
        } else {
            out.push_str(&candidate[..end.max(1)]);
        }
        rest = &candidate[end.max(1)..];
    }
    out.push_str(rest);
    out
}

/// `text` with every occurrence of each `known` secret (longest first, so a link inside a
/// message body goes with the body) replaced by `[hidden]`. For a provider's error, which
/// might quote what it was sent: the SMS body holds the link token.
pub fn hide(text: &str, known: &[&str]) -> String {
    let mut known: Vec<&str> = known.iter().copied().filter(|k| !k.is_empty()).collect();
    known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    known
        .iter()
        .fold(text.to_string(), |acc, k| acc.replace(k, "[hidden]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_range_and_last_digits() {
        assert_eq!(mask_phone("+4915112345678"), "+49151*****678");
        assert_eq!(mask_phone("+14155550123"), "+1415****123");
        assert_eq!(mask_phone("+12345678"), "+12***678");
        assert_eq!(mask_phone("+123456789012345"), "+12345*******345");
    }

    #[test]
    fn every_length_hides_at_least_a_third_and_never_the_whole_middle_shows() {
        for n in 1..=20 {
            let digits: String = (0..n).map(|i| char::from(b'1' + (i % 9) as u8)).collect();
            let masked = mask_phone(&format!("+{digits}"));
            let stars = masked.matches('*').count();
            assert!(stars * 3 >= n && stars >= n.min(3), "{n}: {masked}");
            assert_eq!(masked.len(), n + 1, "{masked}");
            assert!(!masked.contains(&digits), "{masked}");
        }
    }

    #[test]
    fn anything_else_is_hidden_whole() {
        for bad in ["", "+", "garbage", "+49 151 1234", "+4915112345678\n"] {
            assert_eq!(mask_phone(bad), "[hidden]", "{bad:?}");
        }
    }

    #[test]
    fn known_secrets_are_hidden_longest_first() {
        let body = "Send it https://h/u/TOKEN123";
        let text = format!("refused: '{body}' (TOKEN123)");
        assert_eq!(
            hide(&text, &[body, "https://h/u/TOKEN123", "TOKEN123", ""]),
            "refused: '[hidden]' ([hidden])"
        );
    }

    #[test]
    fn numbers_inside_text_are_masked_and_the_rest_kept() {
        assert_eq!(
            mask_numbers("Twilio error 21211: The 'To' number +15005550001 is not a valid phone number."),
            "Twilio error 21211: The 'To' number +1500****001 is not a valid phone number."
        );
        assert_eq!(mask_numbers("to 4915112345678, again"), "to 49151*****678, again");
        assert_eq!(mask_numbers("a+b 1+2 ++ 123456"), "a+b 1+2 ++ 123456");
        assert_eq!(mask_numbers("HTTP 503"), "HTTP 503");
        let masked = mask_numbers("x+4915112345678y+14155550123z");
        assert!(
            !masked.contains("15112345678") && !masked.contains("4155550123"),
            "{masked}"
        );
    }
}
