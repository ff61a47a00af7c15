use super::*;

const CD: &str = "Content-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"";

fn head(lines: &str) -> Result<PartHead, Ambiguous> {
    check_head(lines.as_bytes())
}

#[test]
fn what_browsers_and_libraries_send_passes() {
    let ok = |s: &str| head(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
    assert_eq!(
        ok(CD),
        PartHead {
            name: "file".into(),
            filename: Some("a.pdf".into())
        }
    );
    ok(&format!("{CD}\r\nContent-Type: application/pdf"));
    ok(&format!("content-type: image/jpeg\r\n{CD}"));
    ok("Content-Disposition: form-data;name=\"file\";filename=\"a.pdf\"");
    ok("content-disposition: form-data; name=\"file\"; filename=\"Überweisung; März.pdf\"");
    ok("Content-Disposition: form-data; name=\"file\"; filename=\"C:\\fakepath\\x.pdf\"");
    assert_eq!(ok("Content-Disposition: form-data; name=\"note\"").filename, None);
}

#[test]
fn ambiguous_part_heads_are_refused() {
    for bad in [
        format!("{CD}\r\n{CD}"),
        format!("{CD}\r\nContent-Type: a/b\r\nContent-Type: c/d"),
        format!("{CD}\r\n X-Folded: yes"),
        format!("{CD}\r\n\tX-Folded: yes"),
        format!("{CD}\r\nX-Other: 1"),
        "Content-Type: application/pdf".into(),
        format!("{CD}\nContent-Type: a/b"),
        format!("{CD}\rContent-Type: a/b"),
        format!("{CD}\0"),
        format!("{CD}\r\nContent-Type:\x18application/pdf"),
        format!("{CD}\r\nContent-Type: application/pdf\x7f"),
        format!("{CD}\r\nContent Type: application/pdf"),
        format!("{CD}\r\n: application/pdf"),
        String::new(),
        // Two name= or filename= parameters.
        "Content-Disposition: form-data; name=\"file\"; name=\"x\"; filename=\"a.pdf\"".into(),
        "Content-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"; filename=\"b.exe\"".into(),
        // filename* beside (or instead of) filename.
        "Content-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"; filename*=UTF-8''b.exe".into(),
        "Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''b.exe".into(),
        // Dispositions other than form-data.
        "Content-Disposition: attachment; name=\"file\"; filename=\"a.pdf\"".into(),
        "Content-Disposition: inline; name=\"file\"; filename=\"a.pdf\"".into(),
        "Content-Disposition: form-data2; name=\"file\"; filename=\"a.pdf\"".into(),
        "Content-Disposition: ; name=\"file\"; filename=\"a.pdf\"".into(),
        "Content-Disposition: name=\"file\"; filename=\"a.pdf\"".into(),
        // Unquoted values, which two parsers split differently.
        "Content-Disposition: form-data; name=file; filename=a.pdf".into(),
        "Content-Disposition: form-data; name=\"file\"; filename=a b.pdf".into(),
        "Content-Disposition: form-data; name=\"file\"; filename='a.pdf'".into(),
        // Other parameters, order, spacing and escapes two parsers may read differently.
        "Content-Disposition: form-data; filename=\"a.pdf\"; name=\"file\"".into(),
        "Content-Disposition: form-data; name=\"file\"; size=\"3\"; filename=\"a.pdf\"".into(),
        "Content-Disposition: form-data; name = \"file\"; filename=\"a.pdf\"".into(),
        "Content-Disposition: form-data; NAME=\"file\"; filename=\"a.pdf\"".into(),
        "Content-Disposition: form-data; name=\"file\"; filename=\"a\\\"; x=\".pdf\"".into(),
        "Content-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"x".into(),
        "Content-Disposition: form-data; name=\"file\"; filename=\"a.pdf\";".into(),
        "Content-Disposition: form-data; name=\"x; filename=evil.exe\"; filename=\"a.pdf\"".into(),
        "Content-Disposition: form-data; name=\"file".into(),
    ] {
        let bad: String = bad;
        assert!(head(&bad).is_err(), "{bad:?} passed");
    }
    let huge = format!("{CD}\r\nContent-Type: {}", "a".repeat(MAX_PART_HEAD));
    assert_eq!(head(&huge), Err(Ambiguous("part head too large")));
    assert!(check_head(b"Content-Disposition: form-data; name=\"file\"; filename=\"\xff.pdf\"").is_err());
}

#[test]
fn the_boundary_parameter_is_read_strictly() {
    for (ct, want) in [
        (
            "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxk",
            "----WebKitFormBoundary7MA4YWxk",
        ),
        (
            "multipart/form-data; boundary=\"quoted boundary\"",
            "quoted boundary",
        ),
        ("Multipart/Form-Data;boundary=abc", "abc"),
        ("multipart/form-data; charset=utf-8; boundary=abc", "abc"),
    ] {
        assert_eq!(boundary(ct.as_bytes()).as_deref(), Ok(want), "{ct}");
    }
    let seventy = "b".repeat(70);
    assert!(boundary(format!("multipart/form-data; boundary={seventy}").as_bytes()).is_ok());
    for bad in [
        "multipart/form-data".to_string(),
        "multipart/mixed; boundary=abc".into(),
        "text/plain; boundary=abc".into(),
        "multipart/form-data; boundary=abc; boundary=def".into(),
        "multipart/form-data; boundary=abc; BOUNDARY=abc".into(),
        format!("multipart/form-data; boundary={seventy}b"),
        "multipart/form-data; boundary=".into(),
        "multipart/form-data; boundary=\"\"".into(),
        "multipart/form-data; boundary=\"ends with space \"".into(),
        "multipart/form-data; boundary=a\"b".into(),
        "multipart/form-data; boundary=\"a\\\"b\"".into(),
        "multipart/form-data; boundary=a b".into(),
        "multipart/form-data; boundary=a{b}".into(),
        "multipart/form-data; boundary".into(),
        "multipart/form-data; =abc".into(),
    ] {
        assert!(boundary(bad.as_bytes()).is_err(), "{bad:?} passed");
    }
    assert!(boundary(b"multipart/form-data; boundary=\xff").is_err());
}
