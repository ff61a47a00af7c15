use proptest::prelude::*;

use super::*;

/// Every code point the brief and Unicode's Cf category name, range by range.
fn named_ranges() -> Vec<std::ops::RangeInclusive<u32>> {
    vec![
        0x00..=0x1F,   // C0
        0x7F..=0x9F,   // DEL and C1
        0xAD..=0xAD,   // soft hyphen
        0x600..=0x605, // Arabic number signs
        0x61C..=0x61C,
        0x6DD..=0x6DD,
        0x70F..=0x70F,
        0x890..=0x891,
        0x8E2..=0x8E2,
        0x180E..=0x180E,
        0x200B..=0x200F, // zero-width, LRM, RLM
        0x2028..=0x2029, // line and paragraph separators
        0x202A..=0x202E, // embeddings and overrides
        0x2060..=0x2064, // word joiner, invisible operators
        0x2066..=0x2069, // isolates
        0x206A..=0x206F, // deprecated formats
        0xFEFF..=0xFEFF,
        0xFFF9..=0xFFFB,
        0x110BD..=0x110BD,
        0x110CD..=0x110CD,
        0x13430..=0x1343F,
        0x1BCA0..=0x1BCA3,
        0x1D173..=0x1D17A,
        0xE0001..=0xE0001,
        0xE0020..=0xE007F, // tags
        0x034F..=0x034F,   // blank marks and fillers
        0x115F..=0x1160,
        0x3164..=0x3164,
        0xFFA0..=0xFFA0,
        0x17B4..=0x17B5,
        0x2800..=0x2800,
        0xFE00..=0xFE0D,
        0xE0100..=0xE01EF,
    ]
}

#[test]
fn every_named_character_is_hidden() {
    let mut checked = 0;
    for range in named_ranges() {
        for cp in range {
            let Some(c) = char::from_u32(cp) else { continue };
            assert!(is_hidden(c), "{} not refused", code_point(c));
            assert_eq!(first_hidden(&format!("ab{c}cd")), Some(c));
            checked += 1;
        }
    }
    assert!(checked > 300, "{checked}");
}

#[test]
fn ordinary_text_in_many_scripts_and_emoji_is_visible() {
    for ok in [
        "Please upload your documents",
        "Bitte laden Sie Ihre Unterlagen hoch: Größe ≤ 10 MB",
        "Envoyez vos pièces justificatives, s'il vous plaît",
        "يرجى تحميل المستندات",
        "请上传您的文件",
        "Пожалуйста, загрузите документы",
        "ご提出ください 📷",
        "Thanks ❤️ 👍🏽", // U+FE0F and a skin tone modifier
        "tab-free, NBSP\u{00A0}and thin\u{2009}spaces are visible gaps",
    ] {
        assert_eq!(first_hidden(ok), None, "{ok}");
    }
}

#[test]
fn code_points_are_named_in_hex() {
    assert_eq!(code_point('\u{202E}'), "U+202E");
    assert_eq!(code_point('\u{E0041}'), "U+E0041");
}

proptest! {
    /// Any hidden character anywhere in otherwise plain text is found.
    #[test]
    fn a_hidden_character_is_found_wherever_it_sits(
        before in "[a-zA-Z ]{0,40}",
        after in "[a-zA-Z ]{0,40}",
        pick in 0usize..10_000,
    ) {
        let all: Vec<char> = named_ranges()
            .into_iter()
            .flatten()
            .filter_map(char::from_u32)
            .collect();
        let c = all[pick % all.len()];
        prop_assert_eq!(first_hidden(&format!("{before}{c}{after}")), Some(c));
    }
}
