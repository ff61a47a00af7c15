use super::*;

fn accept(v: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(http::header::ACCEPT_LANGUAGE, v.parse().unwrap());
    h
}

#[test]
fn the_switcher_wins_then_the_best_accept_language_we_speak_then_english() {
    assert_eq!(Lang::negotiate(Some("lang=fr"), &accept("de")), Lang::Fr);
    assert_eq!(Lang::negotiate(Some("x=1&lang=es-MX"), &accept("de")), Lang::Es);
    assert_eq!(
        Lang::negotiate(Some("lang=xx"), &accept("de-AT,de;q=0.9")),
        Lang::De
    );
    assert_eq!(Lang::negotiate(None, &accept("nl,fr;q=0.8,de;q=0.9")), Lang::De);
    assert_eq!(Lang::negotiate(None, &accept("nl, pt-BR")), Lang::En);
    assert_eq!(Lang::negotiate(None, &accept("es;q=0,fr;q=0.1")), Lang::Fr);
    assert_eq!(Lang::negotiate(None, &accept("es;q=abc,fr;q=2")), Lang::En);
    assert_eq!(Lang::negotiate(None, &http::HeaderMap::new()), Lang::En);
}

/// Every field of every catalogue, by name, for the checks below.
fn fields(t: &Text) -> Vec<(&'static str, &'static str)> {
    let Text {
        send_your_files,
        hint,
        choose_a_file,
        plain_limit,
        send_this_file,
        take_a_photo,
        choose_files,
        finished_button,
        language,
        title_used,
        title_expired,
        title_revoked,
        title_superseded,
        title_ready,
        title_invalid,
        title_too_many,
        title_try_again,
        title_thank_you,
        title_received,
        title_not_sent,
        title_nothing_yet,
        send_another,
        invalid_link,
        too_many,
        unavailable,
        nothing_yet,
        thank_you,
        received,
        gone_active,
        gone_used,
        gone_expired,
        gone_revoked,
        gone_superseded,
        malformed,
        too_large,
        type_not_allowed,
        infected,
        unscannable,
        scanner_unavailable,
        interrupted,
        too_slow,
        not_saved,
        empty,
        truncated,
        corrupt,
        picture_too_large,
        not_this_kind,
        not_for_this_link,
        unsupported,
        script_capable,
        archive,
        undecodable,
        our_side,
        or,
        mb,
        kb,
        js_sending_name,
        js_sending,
        js_checking,
        js_received,
        js_not_sent,
        js_connection_lost,
        js_confirm_finish,
        js_went_wrong,
        js_waiting,
        js_retry,
        opening,
        continue_link,
    } = t;
    vec![
        ("send_your_files", send_your_files),
        ("hint", hint),
        ("choose_a_file", choose_a_file),
        ("plain_limit", plain_limit),
        ("send_this_file", send_this_file),
        ("take_a_photo", take_a_photo),
        ("choose_files", choose_files),
        ("finished_button", finished_button),
        ("language", language),
        ("title_used", title_used),
        ("title_expired", title_expired),
        ("title_revoked", title_revoked),
        ("title_superseded", title_superseded),
        ("title_ready", title_ready),
        ("title_invalid", title_invalid),
        ("title_too_many", title_too_many),
        ("title_try_again", title_try_again),
        ("title_thank_you", title_thank_you),
        ("title_received", title_received),
        ("title_not_sent", title_not_sent),
        ("title_nothing_yet", title_nothing_yet),
        ("send_another", send_another),
        ("invalid_link", invalid_link),
        ("too_many", too_many),
        ("unavailable", unavailable),
        ("nothing_yet", nothing_yet),
        ("thank_you", thank_you),
        ("received", received),
        ("gone_active", gone_active),
        ("gone_used", gone_used),
        ("gone_expired", gone_expired),
        ("gone_revoked", gone_revoked),
        ("gone_superseded", gone_superseded),
        ("malformed", malformed),
        ("too_large", too_large),
        ("type_not_allowed", type_not_allowed),
        ("infected", infected),
        ("unscannable", unscannable),
        ("scanner_unavailable", scanner_unavailable),
        ("interrupted", interrupted),
        ("too_slow", too_slow),
        ("not_saved", not_saved),
        ("empty", empty),
        ("truncated", truncated),
        ("corrupt", corrupt),
        ("picture_too_large", picture_too_large),
        ("not_this_kind", not_this_kind),
        ("not_for_this_link", not_for_this_link),
        ("unsupported", unsupported),
        ("script_capable", script_capable),
        ("archive", archive),
        ("undecodable", undecodable),
        ("our_side", our_side),
        ("or", or),
        ("mb", mb),
        ("kb", kb),
        ("js_sending_name", js_sending_name),
        ("js_sending", js_sending),
        ("js_checking", js_checking),
        ("js_received", js_received),
        ("js_not_sent", js_not_sent),
        ("js_connection_lost", js_connection_lost),
        ("js_confirm_finish", js_confirm_finish),
        ("js_went_wrong", js_went_wrong),
        ("js_waiting", js_waiting),
        ("js_retry", js_retry),
        ("opening", opening),
        ("continue_link", continue_link),
    ]
    .into_iter()
    .map(|(n, v)| (n, *v))
    .collect()
}

fn placeholders(s: &str) -> Vec<&str> {
    let mut found: Vec<&str> = s
        .split('{')
        .skip(1)
        .filter_map(|p| p.split_once('}').map(|(n, _)| n))
        .collect();
    found.sort_unstable();
    found
}

#[test]
fn every_language_has_every_sentence_with_the_same_placeholders() {
    let english = fields(Lang::En.text());
    for lang in Lang::ALL {
        for ((name, en), (_, text)) in english.iter().zip(fields(lang.text())) {
            assert!(!text.trim().is_empty(), "{lang:?} {name} is empty");
            assert_eq!(placeholders(en), placeholders(text), "{lang:?} {name}: {text}");
            assert!(!text.contains('<'), "{lang:?} {name} holds markup");
        }
    }
    // Translated, not copied: most sentences differ from the English.
    for lang in [Lang::De, Lang::Es, Lang::Fr] {
        let same = english
            .iter()
            .zip(fields(lang.text()))
            .filter(|((_, en), (_, t))| en == t)
            .count();
        assert!(same <= 3, "{lang:?} copies {same} English sentences");
    }
}

#[test]
fn fill_replaces_each_placeholder() {
    assert_eq!(
        fill(Lang::De.text().received, &[("name", "a.pdf")]),
        "a.pdf empfangen. Vielen Dank!"
    );
}
