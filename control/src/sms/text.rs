//! SMS text analysis for the settings preview and the sender: which encoding a body needs
//! (GSM-7 or UCS-2, per 3GPP TS 23.038, formerly GSM 03.38) and how many segments it costs.

use std::fmt;

/// Septets in a single-part GSM-7 message (140 octets * 8 / 7).
const GSM7_SINGLE: usize = 160;
/// Septets per part of a multipart GSM-7 message: the 6-octet concatenation header
/// leaves 134 octets = 1072 bits, i.e. 153 whole septets.
const GSM7_PART: usize = 153;
/// UTF-16 code units in a single-part UCS-2 message (140 octets / 2).
const UCS2_SINGLE: usize = 70;
/// UTF-16 code units per part of a multipart UCS-2 message (134 octets / 2).
const UCS2_PART: usize = 67;

/// How a body is encoded on the air interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The GSM 7-bit default alphabet with its extension table.
    Gsm7,
    /// UCS-2, in practice UTF-16: characters outside the BMP take two code units.
    Ucs2,
}

impl Encoding {
    /// The stable name used in API responses: `"GSM-7"` or `"UCS-2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a body costs to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsText {
    pub encoding: Encoding,
    /// Length in the encoding's units: septets for GSM-7 (an extension character is 2),
    /// UTF-16 code units for UCS-2 (a character outside the BMP, such as most emoji, is 2).
    pub units: usize,
    /// Number of SMS parts the body is sent (and billed) as.
    pub segments: usize,
    /// Unicode scalar values, i.e. what a person counts as the length (roughly: a
    /// combining sequence or a flag emoji counts as more than one).
    pub chars: usize,
}

/// Septets a character takes in GSM-7: 1 for the default alphabet, 2 for the extension
/// table (escape + code), `None` if GSM-7 cannot carry it at all.
///
/// The table is exact, not "looks like": `ç` is not in it (only `Ç` is, at 0x09), nor is
/// a backtick, a tab, `ê`, or a non-breaking space. Over-reporting UCS-2 is the safe
/// error: the preview then never promises fewer segments than the carrier will bill.
pub fn gsm7_septets(c: char) -> Option<usize> {
    match c {
        // Default alphabet, ASCII part: every printable ASCII character except ` and the
        // eight that live in the extension table, plus LF and CR.
        'A'..='Z' | 'a'..='z' | '0'..='9' => Some(1),
        ' ' | '!' | '"' | '#' | '$' | '%' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | '-' | '.' | '/'
        | ':' | ';' | '<' | '=' | '>' | '?' | '@' | '_' | '\n' | '\r' => Some(1),
        // Default alphabet, non-ASCII part (positions 0x01-0x1F, 0x24, 0x40, 0x5B-0x60,
        // 0x7B-0x7F of the table).
        '£' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | 'Ø' | 'ø' | 'Å' | 'å' | 'Δ' | 'Φ' | 'Γ' | 'Λ'
        | 'Ω' | 'Π' | 'Ψ' | 'Σ' | 'Θ' | 'Ξ' | 'Æ' | 'æ' | 'ß' | 'É' | '¤' | '¡' | 'Ä' | 'Ö' | 'Ñ' | 'Ü'
        | '§' | '¿' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à' => Some(1),
        // Extension table: sent as ESC (0x1B) + code.
        '\u{0C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        _ => None,
    }
}

/// Number of parts for a body whose characters take `sizes` units each (`total` in all);
/// a character is never split across parts.
///
/// Greedy packing is optimal here: parts are filled in order, and the only items that
/// don't fit are 2-unit ones (an escape pair, a surrogate pair), which must not be split
/// by the sender or the handset would show garbage at the part boundary.
fn pack(sizes: impl Iterator<Item = usize>, total: usize, single: usize, part: usize) -> usize {
    if total == 0 {
        return 0;
    }
    if total <= single {
        return 1;
    }
    let mut parts = 1;
    let mut used = 0;
    for size in sizes {
        if used + size > part {
            parts += 1;
            used = 0;
        }
        used += size;
    }
    parts
}

/// Encoding and cost of an SMS body.
///
/// Uses GSM-7 if every character is in the GSM 03.38 default alphabet (1 septet) or its
/// extension table (`^ { } \ [ ~ ] | €` and form feed: 2 septets each); anything else
/// forces UCS-2 for the whole body, counted in UTF-16 code units.
///
/// Segments: up to 160 septets (GSM-7) or 70 code units (UCS-2) is one segment; longer
/// bodies are split into parts of at most 153 septets or 67 code units, by packing, so
/// that no escape pair or surrogate pair straddles two parts (which can cost one more
/// part than plain division).
///
/// An empty body is 0 segments. A carrier would bill one segment for it, but upgate never
/// sends an empty body (the message is 1–100 characters and the link is appended), so 0
/// is more useful to callers: "nothing to send".
pub fn analyze(text: &str) -> SmsText {
    let chars = text.chars().count();
    let septets: Option<usize> = text.chars().map(gsm7_septets).sum();
    match septets {
        Some(units) => SmsText {
            encoding: Encoding::Gsm7,
            units,
            segments: pack(
                text.chars().filter_map(gsm7_septets),
                units,
                GSM7_SINGLE,
                GSM7_PART,
            ),
            chars,
        },
        None => {
            let units = text.encode_utf16().count();
            SmsText {
                encoding: Encoding::Ucs2,
                units,
                segments: pack(text.chars().map(char::len_utf16), units, UCS2_SINGLE, UCS2_PART),
                chars,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Code 0x1B, the escape to the extension table: a placeholder in `BASIC`.
    const ESC: char = '\u{1B}';
    /// The default alphabet by code position, as printed in TS 23.038 §6.2.1, written
    /// out independently of the `match` above so that the two can check each other.
    const BASIC: [char; 128] = [
        '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
        'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', ESC, 'Æ', 'æ', 'ß', 'É', //
        ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
        '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
        '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
        'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
        '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
        'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
    ];
    /// The extension table's characters with their codes after the escape.
    const EXTENSION: [(u8, char); 10] = [
        (0x0A, '\u{0C}'),
        (0x14, '^'),
        (0x28, '{'),
        (0x29, '}'),
        (0x2F, '\\'),
        (0x3C, '['),
        (0x3D, '~'),
        (0x3E, ']'),
        (0x40, '|'),
        (0x65, '€'),
    ];

    fn table_septets(c: char) -> Option<usize> {
        if c == ESC {
            None
        } else if BASIC.contains(&c) {
            Some(1)
        } else if EXTENSION.iter().any(|&(_, e)| e == c) {
            Some(2)
        } else {
            None
        }
    }

    fn gsm_char() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => prop::sample::select(BASIC.iter().copied().filter(|&c| c != ESC).collect::<Vec<_>>()),
            1 => prop::sample::select(EXTENSION.iter().map(|&(_, c)| c).collect::<Vec<_>>()),
        ]
    }

    fn non_gsm_char() -> impl Strategy<Value = char> {
        any::<char>().prop_filter("not GSM-7", |&c| table_septets(c).is_none())
    }

    #[test]
    fn match_agrees_with_positional_table() {
        // Every BMP character and a slice of the astral planes.
        for cp in (0..=0xFFFFu32).chain(0x1F000..0x1FB00) {
            if let Some(c) = char::from_u32(cp) {
                assert_eq!(gsm7_septets(c), table_septets(c), "U+{cp:04X}");
            }
        }
        let basic: std::collections::HashSet<char> = BASIC.iter().copied().collect();
        assert_eq!(basic.len(), 128, "positions must be distinct characters");
    }

    #[test]
    fn spot_checks_against_the_standard() {
        assert_eq!(gsm7_septets('é'), Some(1)); // 0x05
        assert_eq!(gsm7_septets('É'), Some(1)); // 0x1F
        assert_eq!(gsm7_septets('ù'), Some(1)); // 0x06
        assert_eq!(gsm7_septets('¤'), Some(1)); // 0x24: not the dollar position
        assert_eq!(gsm7_septets('$'), Some(1)); // 0x02
        assert_eq!(gsm7_septets('€'), Some(2));
        for c in [
            'ê', 'ç', 'ú', 'á', 'í', 'ó', 'Ê', '`', '\t', '\u{A0}', '\u{1B}', '\0',
        ] {
            assert_eq!(gsm7_septets(c), None, "{c:?}");
        }
    }

    #[test]
    fn gsm7_lengths() {
        let t = |n: usize| analyze(&"a".repeat(n));
        assert_eq!(t(1).segments, 1);
        assert_eq!(t(160), analyze_expect(Encoding::Gsm7, 160, 1, 160));
        assert_eq!(t(161).segments, 2);
        assert_eq!(t(153 * 2).segments, 2);
        assert_eq!(t(153 * 2 + 1).segments, 3);
        assert_eq!(t(153 * 3).segments, 3);
    }

    fn analyze_expect(encoding: Encoding, units: usize, segments: usize, chars: usize) -> SmsText {
        SmsText {
            encoding,
            units,
            segments,
            chars,
        }
    }

    #[test]
    fn extension_characters_count_two() {
        assert_eq!(analyze("€"), analyze_expect(Encoding::Gsm7, 2, 1, 1));
        assert_eq!(
            analyze("{[x]}~^|\\\u{0C}"),
            analyze_expect(Encoding::Gsm7, 19, 1, 10)
        );
        // 159 + 2 = 161 septets: no longer one segment.
        let s = format!("{}€", "a".repeat(158));
        assert_eq!(analyze(&s), analyze_expect(Encoding::Gsm7, 160, 1, 159));
        let s = format!("{}€", "a".repeat(159));
        assert_eq!(analyze(&s), analyze_expect(Encoding::Gsm7, 161, 2, 160));
    }

    #[test]
    fn escape_pair_is_not_split() {
        // 152 + 2 + 152 = 306 septets = 2 * 153, but the € cannot straddle the boundary,
        // so part 1 holds 152 septets and the body needs 3 parts.
        let s = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(analyze(&s), analyze_expect(Encoding::Gsm7, 306, 3, 305));
        // The € one position earlier fits and division holds.
        let s = format!("{}€{}", "a".repeat(151), "a".repeat(153));
        assert_eq!(analyze(&s).segments, 2);
    }

    #[test]
    fn ucs2_lengths() {
        assert_eq!(analyze("ê"), analyze_expect(Encoding::Ucs2, 1, 1, 1));
        let t = |n: usize| analyze(&format!("ê{}", "a".repeat(n - 1)));
        assert_eq!(t(70), analyze_expect(Encoding::Ucs2, 70, 1, 70));
        assert_eq!(t(71), analyze_expect(Encoding::Ucs2, 71, 2, 71));
        assert_eq!(t(134).segments, 2);
        assert_eq!(t(135).segments, 3);
    }

    #[test]
    fn one_non_gsm_char_switches_everything() {
        let s = format!("{}ê", "a".repeat(100));
        assert_eq!(analyze(&s), analyze_expect(Encoding::Ucs2, 101, 2, 101));
        // In UCS-2 an extension character is one code unit, not two.
        assert_eq!(analyze("€ê"), analyze_expect(Encoding::Ucs2, 2, 1, 2));
    }

    #[test]
    fn emoji_count_two_units() {
        assert_eq!(analyze("😀"), analyze_expect(Encoding::Ucs2, 2, 1, 1));
        let s = "😀".repeat(35);
        assert_eq!(analyze(&s), analyze_expect(Encoding::Ucs2, 70, 1, 35));
        let s = format!("{}a", "😀".repeat(35));
        assert_eq!(analyze(&s).segments, 2);
    }

    #[test]
    fn surrogate_pair_is_not_split() {
        // 66 + 2 + 66 = 134 units = 2 * 67, but the emoji cannot straddle the boundary.
        let s = format!("ê{}😀ê{}", "a".repeat(65), "a".repeat(65));
        assert_eq!(analyze(&s), analyze_expect(Encoding::Ucs2, 134, 3, 133));
        let s = format!("ê{}😀ê{}", "a".repeat(64), "a".repeat(66));
        assert_eq!(analyze(&s).segments, 2);
    }

    #[test]
    fn empty_is_zero_segments() {
        assert_eq!(analyze(""), analyze_expect(Encoding::Gsm7, 0, 0, 0));
    }

    #[test]
    fn encoding_names() {
        assert_eq!(Encoding::Gsm7.as_str(), "GSM-7");
        assert_eq!(Encoding::Ucs2.as_str(), "UCS-2");
        assert_eq!(Encoding::Ucs2.to_string(), "UCS-2");
    }

    /// Reference count: fill parts one unit-sized item at a time, written differently
    /// from `pack` (by cumulative offsets) to cross-check it.
    fn reference_segments(sizes: &[usize], single: usize, part: usize) -> usize {
        let total: usize = sizes.iter().sum();
        if total == 0 {
            return 0;
        }
        if total <= single {
            return 1;
        }
        let mut start = 0; // offset where the current part begins
        let mut offset = 0;
        let mut parts = 1;
        for &s in sizes {
            if offset + s - start > part {
                start = offset;
                parts += 1;
            }
            offset += s;
        }
        parts
    }

    proptest! {
        #[test]
        fn prop_gsm_only_is_gsm7(s in prop::collection::vec(gsm_char(), 0..400)) {
            let text: String = s.iter().collect();
            let a = analyze(&text);
            prop_assert_eq!(a.encoding, Encoding::Gsm7);
            prop_assert_eq!(a.chars, s.len());
            let sizes: Vec<usize> = s.iter().map(|&c| table_septets(c).unwrap()).collect();
            prop_assert_eq!(a.units, sizes.iter().sum::<usize>());
            prop_assert_eq!(a.segments, reference_segments(&sizes, 160, 153));
        }

        #[test]
        fn prop_any_non_gsm_char_forces_ucs2(
            prefix in prop::collection::vec(gsm_char(), 0..200),
            bad in non_gsm_char(),
            suffix in "\\PC{0,100}",
        ) {
            let text: String = prefix.iter().copied().chain([bad]).chain(suffix.chars()).collect();
            let a = analyze(&text);
            prop_assert_eq!(a.encoding, Encoding::Ucs2);
            prop_assert_eq!(a.units, text.encode_utf16().count());
            let sizes: Vec<usize> = text.chars().map(char::len_utf16).collect();
            prop_assert_eq!(a.segments, reference_segments(&sizes, 70, 67));
        }

        #[test]
        fn prop_segments_monotone_in_length(s in "\\PC{0,400}", extra in "\\PC{1,20}") {
            // Appending text never lowers the cost, whatever it does to the encoding.
            let a = analyze(&s);
            let b = analyze(&format!("{s}{extra}"));
            prop_assert!(b.segments >= a.segments);
            prop_assert!(b.chars > a.chars);
        }

        #[test]
        fn prop_segments_monotone_gsm(s in prop::collection::vec(gsm_char(), 1..500)) {
            let text: String = s.iter().collect();
            let mut prev = 0;
            for (end, _) in text.char_indices().skip(1).chain([(text.len(), ' ')]) {
                let seg = analyze(&text[..end]).segments;
                prop_assert!(seg >= prev);
                prev = seg;
            }
        }

        #[test]
        fn prop_segment_bounds(s in "\\PC{0,600}") {
            // Packing never beats division, and costs at most one extra part per
            // boundary where a pair was pushed forward.
            let a = analyze(&s);
            let (single, part) = match a.encoding {
                Encoding::Gsm7 => (160, 153),
                Encoding::Ucs2 => (70, 67),
            };
            if a.units == 0 {
                prop_assert_eq!(a.segments, 0);
            } else if a.units <= single {
                prop_assert_eq!(a.segments, 1);
            } else {
                let min = a.units.div_ceil(part);
                prop_assert!(a.segments >= min);
                prop_assert!(a.segments <= a.units.div_ceil(part - 1));
            }
        }
    }
}
