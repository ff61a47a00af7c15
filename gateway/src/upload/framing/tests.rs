use proptest::prelude::*;

use super::*;

const HEAD: &str =
    "Content-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf";

fn body(data: &[u8]) -> Vec<u8> {
    let mut b = format!("--B\r\n{HEAD}\r\n\r\n").into_bytes();
    b.extend_from_slice(data);
    b.extend_from_slice(b"\r\n--B--\r\n");
    b
}

/// The verdict on `bytes` fed in pieces of `size` (0 = all at once).
fn verdict(bytes: &[u8], size: usize, max_parts: usize) -> Result<(), Ambiguous> {
    let mut f = Framing::new("B", max_parts);
    if size == 0 {
        f.feed(bytes)?;
    } else {
        for piece in bytes.chunks(size) {
            f.feed(piece)?;
        }
    }
    f.finish()
}

/// Part data that looks like framing without being a delimiter.
const WELL_FORMED_DATA: &[&[u8]] = &[
    b"",
    b"%PDF-1.4 hello",
    b"\r\n--",
    b"--B",
    b"\r\n-B\r\n--A",
    b"x\r\n--",
    b"\r\n--A\r\n--",
    &[b'\r'; 40],
];

#[test]
fn well_formed_bodies_pass_however_they_are_cut() {
    for &data in WELL_FORMED_DATA {
        let b = body(data);
        for size in 0..b.len() {
            assert_eq!(
                verdict(&b, size, 1),
                Ok(()),
                "{:?} in {size}s",
                String::from_utf8_lossy(data)
            );
        }
        // Without the final line break too.
        assert_eq!(verdict(&b[..b.len() - 2], 3, 1), Ok(()));
    }
    let mut f = Framing::new("B", 1);
    f.feed(&body(b"x")).unwrap();
    assert_eq!(f.heads()[0].filename.as_deref(), Some("a.pdf"));
}

#[test]
fn ambiguous_framing_is_refused_however_it_is_cut() {
    let ok = String::from_utf8(body(b"%PDF")).unwrap();
    let second = ok.replace("--B--\r\n", &format!("--B\r\n{HEAD}\r\n\r\nmore\r\n--B--\r\n"));
    for bad in [
        format!("preamble\r\n{ok}"),
        format!("\r\n{ok}"),
        ok.replace("--B--\r\n", "--B--\r\nepilogue"),
        ok.replace("--B--\r\n", "--B--\r\n\r\n"),
        ok.replace("--B--\r\n", ""),
        ok.replace("--B--\r\n", "--B-"),
        ok.replace("%PDF", "%PDF\r\n--Bogus"),
        ok.replace("%PDF", "%PDF\r\n--B \r\n"),
        ok.replace("--B\r\nContent", "--B\r\n\r\nContent"),
        ok.replace("filename=\"a.pdf\"", "filename=a.pdf"),
        second,
        String::new(),
        "--B\r\n".into(),
        "--B\r\nContent-Disposition: form-data; name=\"file\"".into(),
    ] {
        for size in [0, 1, 2, 3, 7] {
            assert!(
                verdict(bad.as_bytes(), size, 1).is_err(),
                "{bad:?} in {size}s passed"
            );
        }
    }
}

/// The attack run's medium finding: a later part whose head never ends was buffered to the
/// end of the body. Every part's head is capped, whichever part it is, and a part beyond
/// the allowed count is refused as soon as its boundary line ends.
#[test]
fn memory_held_by_a_part_head_after_the_first_part() {
    let first = String::from_utf8(body(b"%PDF"))
        .unwrap()
        .replace("--B--\r\n", "--B\r\n");
    for max_parts in [1, 2, 5] {
        let mut f = Framing::new("B", max_parts);
        let refused = f.feed(first.as_bytes()).and_then(|()| {
            // 40 MiB of a head that never ends, fed in 64 KiB pieces.
            let piece = vec![b'a'; 64 * 1024];
            (0..640).try_for_each(|_| f.feed(&piece))
        });
        assert!(refused.is_err(), "max_parts {max_parts}");
        // What is held is one capped head, not the body.
        let held = match &f.state {
            State::Head(h) => h.capacity(),
            _ => 0,
        };
        assert!(held <= 2 * (MAX_PART_HEAD + 4), "{held}");
    }
    // The preamble is capped the same way: it is refused at its first byte.
    assert!(Framing::new("B", 1).feed(b"x").is_err());
}

/// The events of `bytes` fed in pieces of `size`: the heads, and each part's data joined.
fn parsed(bytes: &[u8], size: usize, max_parts: usize) -> Result<Vec<(PartHead, Vec<u8>)>, Ambiguous> {
    let mut f = Framing::new("B", max_parts);
    let mut events = Vec::new();
    for piece in bytes.chunks(size.max(1)) {
        f.parse(&Bytes::copy_from_slice(piece), &mut events)?;
    }
    f.finish()?;
    let mut parts: Vec<(PartHead, Vec<u8>)> = Vec::new();
    for event in events {
        match event {
            Event::Part(head) => parts.push((head, Vec::new())),
            Event::Data(data) => {
                assert!(!data.is_empty(), "no empty data events");
                parts
                    .last_mut()
                    .expect("a head before data")
                    .1
                    .extend_from_slice(&data);
            }
        }
    }
    Ok(parts)
}

#[test]
fn the_data_handed_on_is_exactly_the_parts_data_however_it_is_cut() {
    for &data in WELL_FORMED_DATA {
        let b = body(data);
        for size in 1..=b.len() {
            let parts = parsed(&b, size, 1).unwrap();
            assert_eq!(parts.len(), 1);
            assert_eq!(parts[0].0.filename.as_deref(), Some("a.pdf"));
            assert_eq!(parts[0].1, data, "{:?} in {size}s", String::from_utf8_lossy(data));
        }
    }
}

#[test]
fn whole_pieces_are_handed_on_without_a_copy() {
    let data = vec![7u8; 64 * 1024];
    let b = Bytes::from(body(&data));
    let mut f = Framing::new("B", 1);
    let mut events = Vec::new();
    f.parse(&b, &mut events).unwrap();
    let Event::Data(handed) = &events[1] else {
        panic!("data after the head: {events:?}")
    };
    assert_eq!(handed.len(), data.len());
    // The data event points into the piece it came in.
    let inside = b.as_ptr() as usize..b.as_ptr() as usize + b.len();
    assert!(inside.contains(&(handed.as_ptr() as usize)));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Two parts of any bytes, cut anywhere: each part's data comes out exactly.
    #[test]
    fn parts_data_survives_any_cut(
        first in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'-'), Just(b'B'), any::<u8>()], 0..80),
        second in proptest::collection::vec(any::<u8>(), 0..80),
        size in 1usize..20,
    ) {
        let mut b = format!("--B\r\n{HEAD}\r\n\r\n").into_bytes();
        b.extend_from_slice(&first);
        b.extend_from_slice(format!("\r\n--B\r\n{HEAD}\r\n\r\n").as_bytes());
        b.extend_from_slice(&second);
        b.extend_from_slice(b"\r\n--B--\r\n");
        match parsed(&b, size, 2) {
            // Data holding a delimiter of its own is refused (never read as data).
            Err(_) => prop_assert!(
                memchr::memmem::find(&first, b"\r\n--B").is_some()
                    || memchr::memmem::find(&second, b"\r\n--B").is_some()
                    || first.ends_with(b"\r") || first.ends_with(b"\r\n") || first.ends_with(b"\r\n-")
                    || first.ends_with(b"\r\n--") || second.ends_with(b"\r") || second.ends_with(b"\r\n")
                    || second.ends_with(b"\r\n-") || second.ends_with(b"\r\n--")
            ),
            Ok(parts) => {
                prop_assert_eq!(parts.len(), 2);
                prop_assert_eq!(&parts[0].1, &first);
                prop_assert_eq!(&parts[1].1, &second);
            }
        }
    }

    /// However a body is cut into chunks, the verdict is the same as all at once.
    #[test]
    fn the_verdict_does_not_depend_on_chunking(
        pieces in proptest::collection::vec(prop_oneof![
            Just(b"--B\r\n".to_vec()),
            Just(b"\r\n--B--\r\n".to_vec()),
            Just(b"\r\n--B".to_vec()),
            Just(b"\r\n\r\n".to_vec()),
            Just(HEAD.as_bytes().to_vec()),
            proptest::collection::vec(any::<u8>(), 0..12),
        ], 0..12),
        size in 1usize..9,
    ) {
        let bytes = pieces.concat();
        prop_assert_eq!(verdict(&bytes, 0, 2).is_ok(), verdict(&bytes, size, 2).is_ok());
    }
}
