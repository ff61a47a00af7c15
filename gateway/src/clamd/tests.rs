use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::time::Duration;

use super::*;

#[test]
fn only_an_exact_ok_is_clean() {
    assert_eq!(parse_reply("stream: OK"), Verdict::Clean);
    for not_clean in [
        "",
        "OK",
        "stream: OK ",
        "stream: OK\n",
        "stream: OK\0",
        "stream: OK\r\n",
        " stream: OK",
        "stream: ok",
        "stream:OK",
        "stream: OKAY",
        "1: stream: OK",
        "stream: OK\0stream: OK",
        "INSTREAM size limit exceeded. ERROR",
        "stream: FOUND",
    ] {
        assert!(
            matches!(
                parse_reply(not_clean),
                Verdict::NotScanned(_) | Verdict::Unavailable(_)
            ),
            "{not_clean:?}"
        );
    }
}

#[test]
fn found_is_infected_unless_a_limit_was_hit() {
    assert_eq!(
        parse_reply("stream: Eicar-Test-Signature FOUND"),
        Verdict::Infected("Eicar-Test-Signature".into())
    );
    assert!(matches!(
        parse_reply("stream: Heuristics.Limits.Exceeded.MaxFileSize FOUND"),
        Verdict::NotScanned(_)
    ));
}

#[test]
fn a_verdict_about_the_file_is_told_apart_from_a_scanner_failure() {
    // About the file: retrying it will not help, and the scanner is fine.
    assert!(matches!(
        parse_reply("INSTREAM size limit exceeded. ERROR"),
        Verdict::NotScanned(_)
    ));
    assert!(matches!(
        parse_reply("stream: Heuristics.Limits.Exceeded.MaxScanSize FOUND"),
        Verdict::NotScanned(_)
    ));
    // About the scanner: nothing was learned about the file.
    for broken in [
        "",
        "stream:",
        "stream: FOUND",
        "stream: a b FOUND",
        "stream: x\nstream: OK FOUND",
        "HTTP/1.1 400 Bad Request",
        // clamd's own trouble, not the file's: try again later.
        "Error writing to temporary file ERROR",
        "stream: Can't create temporary file ERROR",
    ] {
        assert!(
            matches!(parse_reply(broken), Verdict::Unavailable(_)),
            "{broken:?}"
        );
    }
}

#[test]
fn an_unreachable_clamd_is_not_scanned_never_clean() {
    let clamd = Clamd::new(
        ClamdAddr::Unix("/nonexistent/clamd.sock".into()),
        Duration::from_secs(1),
    );
    assert!(matches!(clamd.scan(&b"hello"[..], 5), Verdict::Unavailable(_)));
    assert!(clamd.ping().is_err());
}

/// A socket that reads one INSTREAM request and answers `reply` as given, then closes
/// (or, with `hang`, keeps the connection open without a word).
fn fake_clamd(reply: &'static [u8], hang: bool) -> (Clamd, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clamd.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        // Read the command and every chunk up to the zero-length one.
        let mut cmd = [0u8; 10];
        conn.read_exact(&mut cmd).unwrap();
        loop {
            let mut len = [0u8; 4];
            if conn.read_exact(&mut len).is_err() {
                return;
            }
            let n = u32::from_be_bytes(len) as usize;
            if n == 0 {
                break;
            }
            let mut chunk = vec![0u8; n];
            conn.read_exact(&mut chunk).unwrap();
        }
        let _ = conn.write_all(reply);
        if hang {
            std::thread::sleep(Duration::from_secs(5));
        }
    });
    (Clamd::new(ClamdAddr::Unix(path), Duration::from_millis(500)), dir)
}

#[test]
fn malformed_clamd_replies_are_never_clean() {
    let (clamd, _dir) = fake_clamd(b"stream: OK\0", false);
    assert_eq!(
        clamd.scan(&b"hello"[..], 5),
        Verdict::Clean,
        "the one clean reply"
    );
    for (reply, hang) in [
        (&b"stream: OK"[..], false),               // no NUL terminator
        (&b"stream: OK\n"[..], false),             // newline instead of NUL
        (&b"stream: OK\n\0"[..], false),           // newline before the NUL
        (&b"stream: OK\0junk"[..], false),         // bytes after the reply
        (&b"stream: OK\0stream: OK\0"[..], false), // two replies
        (&b"1: stream: OK\0"[..], false),          // a session reply on a one-shot connection
        (&b"stream: \xffOK\0"[..], false),         // not UTF-8
        (&b""[..], false),                         // closed without a word
        (&b"stream: OK"[..], true),                // no NUL, connection left open: our deadline
        (&b""[..], true),                          // silence: our deadline
    ] {
        let (clamd, _dir) = fake_clamd(reply, hang);
        let verdict = clamd.scan(&b"hello"[..], 5);
        assert!(
            matches!(verdict, Verdict::Unavailable(_)),
            "{:?} (hang {hang}) gave {verdict:?}",
            String::from_utf8_lossy(reply)
        );
    }
    let long: &'static [u8] = Box::leak(vec![b'a'; MAX_REPLY + 10].into_boxed_slice());
    let (clamd, _dir) = fake_clamd(long, false);
    assert!(matches!(clamd.scan(&b"hello"[..], 5), Verdict::Unavailable(_)));
}
