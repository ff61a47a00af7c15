//! The one `Range` form downloads need: a single `bytes=` range (RFC 9110 §14). Several
//! ranges or an unreadable header mean "the whole file", which the RFC allows.

/// What to send for a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Whole,
    /// Inclusive byte positions.
    Part(u64, u64),
    /// 416: the range starts past the end.
    Unsatisfiable,
}

pub fn parse(header: Option<&str>, len: u64) -> Span {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Span::Whole;
    };
    if spec.contains(',') {
        return Span::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Span::Whole;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (num(a), num(b), a.is_empty()) {
        (None, Some(suffix), true) => {
            if suffix == 0 || len == 0 {
                Span::Unsatisfiable
            } else {
                Span::Part(len.saturating_sub(suffix), len - 1)
            }
        }
        (Some(start), end, false) if b.is_empty() || end.is_some() => {
            if start >= len {
                return Span::Unsatisfiable;
            }
            match end {
                Some(end) if end < start => Span::Whole,
                Some(end) => Span::Part(start, end.min(len - 1)),
                None => Span::Part(start, len - 1),
            }
        }
        _ => Span::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse(None, 100), Span::Whole);
        assert_eq!(parse(Some("bytes=0-9"), 100), Span::Part(0, 9));
        assert_eq!(parse(Some("bytes=90-"), 100), Span::Part(90, 99));
        assert_eq!(parse(Some("bytes=90-1000"), 100), Span::Part(90, 99));
        assert_eq!(parse(Some("bytes=-10"), 100), Span::Part(90, 99));
        assert_eq!(parse(Some("bytes=-1000"), 100), Span::Part(0, 99));
        assert_eq!(parse(Some("bytes=100-"), 100), Span::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 100), Span::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-1,5-6"), 100), Span::Whole);
        assert_eq!(parse(Some("bytes=5-2"), 100), Span::Whole);
        assert_eq!(parse(Some("items=0-1"), 100), Span::Whole);
        assert_eq!(parse(Some("bytes=a-b"), 100), Span::Whole);
        assert_eq!(parse(Some("bytes=+1-2"), 100), Span::Whole);
    }
}
