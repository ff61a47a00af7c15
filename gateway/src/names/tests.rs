use super::*;
use percent_encoding::percent_decode_str;
use proptest::prelude::*;

/// The classes that must never survive cleaning.
fn forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}'..='\u{200F}')
        || matches!(
            c,
            '\u{2060}' | '\u{FEFF}' | '\u{00AD}' | '\u{061C}' | '/' | '\\' | '\r' | '\n'
        )
}

#[test]
fn keeps_only_the_last_path_component() {
    assert_eq!(clean_display_name("../../etc/passwd"), "passwd");
    assert_eq!(clean_display_name("C:\\Users\\ana\\Desktop\\cv.pdf"), "cv.pdf");
    assert_eq!(clean_display_name("..\\..\\windows/system32\\x.dll"), "x.dll");
    assert_eq!(clean_display_name("photos/"), "photos");
    assert_eq!(clean_display_name("/"), FALLBACK_NAME);
    assert_eq!(clean_display_name("../.."), FALLBACK_NAME);
}

#[test]
fn removes_bidi_invisible_and_control_characters() {
    assert_eq!(clean_display_name("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
    assert_eq!(
        clean_display_name("a\u{2066}b\u{2069}c\u{200B}d\u{FEFF}.pdf"),
        "abcd.pdf"
    );
    assert_eq!(clean_display_name("re\u{0}port\u{7}\r\n.pdf"), "report.pdf");
    assert_eq!(clean_display_name("tab\there.jpg"), "tabhere.jpg");
    assert_eq!(clean_display_name("\u{200B}\u{202E}"), FALLBACK_NAME);
    assert_eq!(clean_display_name("sp\u{2060}lit/\u{200D}"), "split");
}

#[test]
fn trims_dots_and_collapses_spaces() {
    assert_eq!(clean_display_name("  ..hidden. . "), "hidden");
    assert_eq!(clean_display_name(".htaccess"), "htaccess");
    assert_eq!(
        clean_display_name("photo.jpg\u{2003}\u{2003}\u{2003}   .exe"),
        "photo.jpg .exe"
    );
    assert_eq!(clean_display_name("line\u{2028}break.pdf"), "line break.pdf");
    assert_eq!(clean_display_name(""), FALLBACK_NAME);
    assert_eq!(clean_display_name("..."), FALLBACK_NAME);
    assert_eq!(clean_display_name("фото 1.jpg"), "фото 1.jpg");
}

#[test]
fn bounds_length_and_keeps_the_extension() {
    let long = format!("{}.pdf", "a".repeat(300));
    let cleaned = clean_display_name(&long);
    assert_eq!(cleaned.len(), MAX_NAME_BYTES);
    assert!(cleaned.ends_with("aaa.pdf"));

    // Two-byte chars: the cut lands on a boundary, one byte short of the limit.
    let wide = format!("{}.jpeg", "é".repeat(150));
    let cleaned = clean_display_name(&wide);
    assert!(cleaned.len() <= MAX_NAME_BYTES && cleaned.len() >= MAX_NAME_BYTES - 1);
    assert!(cleaned.ends_with("é.jpeg"));

    // No extension (or one too long to be one): a plain cut.
    let plain = "😀".repeat(100);
    let cleaned = clean_display_name(&plain);
    assert_eq!(cleaned.len(), MAX_NAME_BYTES);
    let odd = format!("{}.{}", "b".repeat(150), "c".repeat(100));
    assert_eq!(clean_display_name(&odd).len(), MAX_NAME_BYTES);

    // A cut that would end in a space or dot is trimmed.
    let spaced = format!("{} x.pdf", "d".repeat(195));
    assert_eq!(clean_display_name(&spaced), format!("{}.pdf", "d".repeat(195)));
}

#[test]
fn download_name_agrees_with_the_sniffed_kind() {
    assert_eq!(download_name("photo.JPEG", &["jpg", "jpeg"]), "photo.JPEG");
    assert_eq!(download_name("photo.jpg", &["jpg", "jpeg"]), "photo.jpg");
    assert_eq!(download_name("page.html", &["jpg", "jpeg"]), "page.html.jpg");
    assert_eq!(download_name("scan", &["pdf"]), "scan.pdf");
    assert_eq!(download_name("", &["pdf"]), "upload.pdf");
    assert_eq!(download_name("x.png", &[]), "x.png");
    let long = download_name(&"z".repeat(400), &["webp"]);
    assert_eq!(long.len(), MAX_NAME_BYTES);
    assert!(long.ends_with("z.webp"));
}

#[test]
fn disposition_for_plain_and_unicode_names() {
    assert_eq!(
        attachment_disposition("report.pdf"),
        "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    );
    assert_eq!(
        attachment_disposition("фото 1.jpg"),
        "attachment; filename=\"____ 1.jpg\"; filename*=UTF-8''%D1%84%D0%BE%D1%82%D0%BE%201.jpg"
    );
    assert_eq!(
        attachment_disposition("a\"b%41;c.pdf"),
        "attachment; filename=\"a_b_41;c.pdf\"; filename*=UTF-8''a%22b%2541%3Bc.pdf"
    );
    let injected = attachment_disposition("x.pdf\r\nSet-Cookie: a=b");
    assert!(!injected.contains('\r') && !injected.contains('\n'));
    assert_eq!(
        attachment_disposition(""),
        "attachment; filename=\"upload\"; filename*=UTF-8''upload"
    );
}

fn nasty_string() -> impl Strategy<Value = String> {
    let nasty = prop::sample::select(vec![
        '/',
        '\\',
        '.',
        ' ',
        '\r',
        '\n',
        '\t',
        '\0',
        '\u{7f}',
        '\u{85}',
        '\u{202E}',
        '\u{202A}',
        '\u{2066}',
        '\u{2069}',
        '\u{200B}',
        '\u{200D}',
        '\u{200F}',
        '\u{2060}',
        '\u{FEFF}',
        '\u{00AD}',
        '\u{2028}',
        '"',
        '%',
        ';',
        'é',
        '😀',
        '\u{E0041}',
        '\u{3000}',
    ]);
    prop::collection::vec(
        prop_oneof![any::<char>(), nasty, prop::char::range('a', 'z')],
        0..400,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn cleaned_names_hold_their_promises(raw in nasty_string()) {
        let name = clean_display_name(&raw);
        prop_assert!(!name.is_empty());
        prop_assert!(name.len() <= MAX_NAME_BYTES);
        prop_assert!(!name.chars().any(forbidden), "{:?}", name);
        prop_assert!(!name.chars().any(is_invisible));
        prop_assert!(!name.starts_with(['.', ' ']) && !name.ends_with(['.', ' ']));
        prop_assert!(!name.contains("  "));
        prop_assert_eq!(clean_display_name(&name), name.clone(), "idempotent");
    }

    #[test]
    fn disposition_is_one_safe_header_value(raw in nasty_string()) {
        let value = attachment_disposition(&raw);
        prop_assert!(value.bytes().all(|b| (0x20..0x7F).contains(&b)), "{:?}", value);
        let (head, encoded) = value.split_once("; filename*=UTF-8''").expect("filename* present");
        prop_assert!(head.starts_with("attachment; filename=\""));
        let fallback = &head["attachment; filename=\"".len()..head.len() - 1];
        prop_assert!(!fallback.contains(['"', '\\', '%']));
        prop_assert!(!encoded.contains([' ', ';', '"', '\'', ',']));
        let decoded = percent_decode_str(encoded).decode_utf8().expect("utf-8");
        prop_assert_eq!(decoded, clean_display_name(&raw));
    }

    #[test]
    fn download_names_end_in_the_kind(raw in nasty_string()) {
        let name = download_name(&raw, &["jpg", "jpeg"]);
        prop_assert!(name.len() <= MAX_NAME_BYTES);
        let lower = name.to_ascii_lowercase();
        prop_assert!(lower.ends_with(".jpg") || lower.ends_with(".jpeg"), "{:?}", name);
    }
}
