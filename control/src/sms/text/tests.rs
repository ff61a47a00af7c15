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
