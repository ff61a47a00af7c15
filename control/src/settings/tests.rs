use proptest::prelude::*;

use super::*;

fn enabled() -> FileUploadSettings {
    FileUploadSettings {
        enabled: true,
        trigger: Some("When the caller has photos of the damaged product".into()),
        message: "Upload photos of the damage here".into(),
        ..FileUploadSettings::default()
    }
}

fn codes(s: &FileUploadSettings, sms: bool) -> Vec<&'static str> {
    validate(s, sms).into_iter().map(|e| e.code).collect()
}

#[test]
fn a_complete_setting_on_an_sms_plan_is_valid() {
    assert!(validate(&enabled(), true).is_empty());
    assert!(
        validate(&FileUploadSettings::default(), false).is_empty(),
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
