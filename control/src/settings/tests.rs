use proptest::prelude::*;

use super::*;

const CEILING: u64 = upgate_config::DEFAULT_MAX_FILE_BYTES;

fn enabled() -> FileUploadSettings {
    FileUploadSettings {
        enabled: true,
        trigger: Some("When the caller has photos of the damaged product".into()),
        message: "Upload photos of the damage here".into(),
        ..FileUploadSettings::default()
    }
}

fn codes(s: &FileUploadSettings, sms: bool) -> Vec<&'static str> {
    validate(s, sms, CEILING).into_iter().map(|e| e.code).collect()
}

#[test]
fn a_complete_setting_on_an_sms_plan_is_valid() {
    assert!(validate(&enabled(), true, CEILING).is_empty());
    assert!(
        validate(&FileUploadSettings::default(), false, CEILING).is_empty(),
        "disabled is fine on any plan"
    );
}

#[test]
fn enabling_without_sms_is_refused_first() {
    assert_eq!(codes(&enabled(), false), ["plan_lacks_sms"]);
    assert!(unavailable_reason(false).is_some());
    assert!(unavailable_reason(true).is_none());
}

#[test]
fn a_trigger_is_required_when_enabled() {
    let mut s = enabled();
    s.trigger = Some("   ".into());
    assert_eq!(codes(&s, true), ["trigger_required"]);
    s.trigger = None;
    assert_eq!(codes(&s, true), ["trigger_required"]);
    s.enabled = false;
    assert!(codes(&s, true).is_empty());
}

#[test]
fn message_length_is_counted_in_characters() {
    let mut s = enabled();
    s.message = "é".repeat(100);
    assert!(codes(&s, true).is_empty());
    s.message = "é".repeat(101);
    assert_eq!(codes(&s, true), ["message_too_long"]);
    s.message = "".into();
    assert_eq!(codes(&s, true), ["message_empty"]);
}

#[test]
fn links_in_the_message_are_refused() {
    for with_link in [
        "Upload here: https://evil.example/x",
        "go to www.example.org",
        "see example.com",
        "bit.ly/abc please",
        "Send it (upload.example.co.uk).",
        "visit clinic.health today",
        "upgate.io/x",
    ] {
        assert!(contains_link(with_link), "{with_link}");
    }
    for without in [
        "Please send your sick leave certificate.",
        "Here's the link to upload your signed contract",
        "Photos, e.g. of the damage. Thanks!",
        "Upload v1.2 of the form",
        "Please upload invoice.pdf and photo.jpeg",
        "Dr.Smith needs your certificate",
    ] {
        assert!(!contains_link(without), "{without}");
    }
}

#[test]
fn types_and_limits_are_checked() {
    let mut s = enabled();
    s.allowed_types = vec!["image/svg+xml".into()];
    s.max_file_bytes = 0;
    s.max_files = 0;
    s.link_ttl_seconds = 1;
    assert_eq!(
        codes(&s, true),
        [
            "type_not_supported",
            "max_file_bytes_out_of_range",
            "max_files_out_of_range",
            "link_ttl_out_of_range"
        ]
    );
}

#[test]
fn the_preview_is_message_space_link() {
    let p = preview(
        "Please send your sick leave certificate",
        "https://up.example.com",
    );
    assert!(p
        .text
        .starts_with("Please send your sick leave certificate https://up.example.com/u/"));
    assert_eq!(
        p.text.len(),
        "Please send your sick leave certificate ".len() + "https://up.example.com/u/".len() + 44
    );
    assert_eq!(p.encoding, "GSM-7");
    assert_eq!(p.segments, 1);
    let p = preview(
        "Bitte laden Sie Ihre Krankmeldung hoch 📄",
        "https://up.example.com",
    );
    assert_eq!(p.encoding, "UCS-2");
    assert_eq!(p.segments, 2);
}

#[test]
fn settings_json_refuses_unknown_fields() {
    assert!(serde_json::from_str::<FileUploadSettings>(r#"{"enabled": true, "colour": 1}"#).is_err());
    let s: FileUploadSettings = serde_json::from_str(r#"{"enabled": false}"#).unwrap();
    assert_eq!(s, FileUploadSettings::default());
}

#[test]
fn the_tool_carries_the_trigger_and_exists_only_when_enabled() {
    let tool = tool_definition(&enabled()).unwrap();
    assert_eq!(tool["function"]["name"], "send_upload_link");
    let description = tool["function"]["description"].as_str().unwrap();
    assert!(
        description.contains("When the caller has photos of the damaged product"),
        "{description}"
    );
    assert!(description.contains("PDF, JPEG, PNG"), "{description}");
    assert_eq!(tool["invoke"]["path"], "/v1/calls/{call_id}/upload-links");
    assert!(tool_definition(&FileUploadSettings::default()).is_none());
}

proptest! {
    #[test]
    fn any_message_over_100_chars_is_refused(msg in "[a-zA-Z ]{101,300}") {
        let mut s = enabled();
        s.message = msg;
        prop_assert!(codes(&s, true).contains(&"message_too_long"));
    }

    #[test]
    fn plain_words_are_never_links(words in proptest::collection::vec("[a-zA-Z]{1,12}", 1..20)) {
        prop_assert!(!contains_link(&words.join(" ")));
    }

    #[test]
    fn a_valid_message_previews_within_two_segments(msg in "[a-zA-Z ]{1,100}") {
        prop_assume!(!msg.trim().is_empty());
        let p = preview(&msg, "https://upload.example.com");
        prop_assert!(p.segments <= 2);
        prop_assert_eq!(p.encoding, "GSM-7");
    }
}

/// One of each kind the issue names (bidi embeddings, overrides and isolates, zero-width and
/// direction marks, invisible operators, BOM, soft hyphen, other format characters, C0 and C1
/// controls), and the line separators and blank fillers beside them.
const UNSEEN: &[char] = &[
    '\u{202A}',
    '\u{202B}',
    '\u{202C}',
    '\u{202D}',
    '\u{202E}', // embeddings, overrides
    '\u{2066}',
    '\u{2067}',
    '\u{2068}',
    '\u{2069}', // isolates
    '\u{200B}',
    '\u{200C}',
    '\u{200D}',
    '\u{200E}',
    '\u{200F}', // zero-width, LRM, RLM
    '\u{2060}',
    '\u{2061}',
    '\u{2062}',
    '\u{2063}',
    '\u{2064}', // word joiner, invisible operators
    '\u{FEFF}',
    '\u{00AD}', // BOM, soft hyphen
    '\u{061C}',
    '\u{180E}',
    '\u{0600}',
    '\u{06DD}',
    '\u{FFF9}',
    '\u{1D173}', // other Cf
    '\u{E0001}',
    '\u{E0041}',
    '\u{E007F}', // tags
    '\u{0000}',
    '\u{0007}',
    '\u{0009}',
    '\u{000A}',
    '\u{000D}',
    '\u{001B}',
    '\u{007F}', // C0, DEL
    '\u{0080}',
    '\u{0085}',
    '\u{009B}',
    '\u{009F}', // C1
    '\u{2028}',
    '\u{2029}', // line and paragraph separators
    '\u{3164}',
    '\u{115F}',
    '\u{034F}',
    '\u{2800}',
    '\u{FE00}',
    '\u{E0100}', // blank fillers, selectors
];

#[test]
fn a_message_with_bidi_invisible_or_control_characters_is_invalid() {
    for &c in UNSEEN {
        for message in [
            format!("{c}Upload your photos here"),
            format!("Upload your{c} photos here"),
            format!("Upload your photos here{c}"),
        ] {
            let mut s = enabled();
            s.message = message;
            let errors = validate(&s, true, CEILING);
            assert_eq!(
                errors.iter().map(|e| e.code).collect::<Vec<_>>(),
                ["message_invalid"],
                "U+{:04X}",
                c as u32
            );
            assert!(
                errors[0].detail.contains(&format!("U+{:04X}", c as u32)),
                "the problem names the character: {}",
                errors[0].detail
            );
        }
    }
}

#[test]
fn emoji_and_other_scripts_stay_valid_messages() {
    for ok in [
        "Bitte laden Sie Ihre Krankmeldung hoch 📄",
        "Thanks ❤️ please upload 👍🏽",
        "يرجى تحميل المستندات",
        "请上传您的文件",
    ] {
        let mut s = enabled();
        s.message = ok.into();
        assert!(validate(&s, true, CEILING).is_empty(), "{ok}");
    }
}

#[test]
fn a_trigger_with_hidden_characters_is_invalid_but_may_break_lines() {
    for &c in UNSEEN.iter().filter(|c| !matches!(c, '\n' | '\r' | '\t')) {
        let mut s = enabled();
        s.trigger = Some(format!("When the caller{c} has photos"));
        assert_eq!(codes(&s, true), ["trigger_invalid"], "U+{:04X}", c as u32);
    }
    let mut s = enabled();
    s.trigger = Some("When the caller has photos\r\nor\tscans of the damage".into());
    assert!(codes(&s, true).is_empty());
}

proptest! {
    #[test]
    fn any_unseen_character_anywhere_makes_the_message_invalid(
        before in "[a-zA-Z ]{0,40}",
        after in "[a-zA-Z ]{1,40}",
        c in prop::sample::select(UNSEEN.to_vec()),
    ) {
        let mut s = enabled();
        s.message = format!("{before}{c}{after}");
        prop_assert!(codes(&s, true).contains(&"message_invalid"));
    }

    #[test]
    fn any_code_point_the_rule_lets_through_is_visible(c in any::<char>()) {
        let mut s = enabled();
        s.message = format!("Upload {c} here");
        let invalid = codes(&s, true).contains(&"message_invalid");
        prop_assert_eq!(invalid, crate::hidden_chars::is_hidden(c));
    }
}

#[test]
fn the_largest_file_is_the_deployments_ceiling() {
    let mut s = enabled();
    for ceiling in [64 << 10, 50 << 20, 4u64 << 30] {
        s.max_file_bytes = ceiling;
        assert!(validate(&s, true, ceiling).is_empty(), "{ceiling}");
        s.max_file_bytes = ceiling + 1;
        let codes: Vec<_> = validate(&s, true, ceiling).into_iter().map(|e| e.code).collect();
        assert_eq!(codes, ["max_file_bytes_out_of_range"], "{ceiling}");
    }
}

#[test]
fn retention_is_one_day_to_ten_years_or_none() {
    let mut s = enabled();
    for (days, ok) in [
        (None, true),
        (Some(1), true),
        (Some(3650), true),
        (Some(0), false),
        (Some(3651), false),
    ] {
        s.retention_days = days;
        let want: Vec<&str> = if ok {
            vec![]
        } else {
            vec!["retention_days_out_of_range"]
        };
        assert_eq!(codes(&s, true), want, "{days:?}");
    }
    let parsed: FileUploadSettings = serde_json::from_str(r#"{"retention_days": 30}"#).unwrap();
    assert_eq!(parsed.retention_days, Some(30));
    let absent: FileUploadSettings = serde_json::from_str("{}").unwrap();
    assert_eq!(absent.retention_days, None);
}
