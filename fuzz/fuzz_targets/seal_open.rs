//! Opening sealed files (gateway/src/seal/opener.rs): any change to a sealed file (a flipped
//! bit, a cut, bytes added) is refused, and no reader ever releases a byte that is not the
//! original plaintext at that position. The input is the whole object; the seed corpus holds
//! the untouched file of test vector 3 in docs/sealed-file-format.md, which the fuzzer mutates.
#![no_main]

use std::io::{Cursor, Read, Seek, SeekFrom};

use libfuzzer_sys::fuzz_target;
use upgate_gateway::seal::{unwrap_key, verify_all, DecryptReader, Header, Opener, RecipientSecretKey};

const ORIGINAL: &[u8] = include_bytes!("../fixtures/vector3.sealed");
const PLAINTEXT: &[u8] = b"The caller sent two photos.";
const FILE_ID: &str = "f_02";

fn secret() -> RecipientSecretKey {
    let mut r = [0xab; 32];
    r[0] = 0xa8;
    r[31] = 0x6b;
    RecipientSecretKey::from_bytes(0x0102_0304, r)
}

/// Everything a reader releases from `from` on, until the end or the first error.
fn released(data: &[u8], opener: &Opener, from: u64) -> (Vec<u8>, bool) {
    let Ok(mut reader) = DecryptReader::new(Cursor::new(data), data.len() as u64, opener.clone()) else {
        return (Vec::new(), false);
    };
    if reader.seek(SeekFrom::Start(from)).is_err() {
        return (Vec::new(), false);
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let untouched = data == ORIGINAL;
    let opener = Header::parse(data).ok().and_then(|h| {
        h.check_file_id(FILE_ID).ok()?;
        let key = unwrap_key(&h, &secret()).ok()?;
        Some(Opener::new(h, key))
    });
    let Some(opener) = opener else {
        assert!(!untouched, "the untouched file did not open");
        return;
    };

    assert_eq!(
        verify_all(Cursor::new(data), data.len() as u64, &opener).is_ok(),
        untouched
    );

    for from in [0u64, 5, 16, 27] {
        let (bytes, to_the_end) = released(data, &opener, from);
        let start = usize::try_from(from).expect("small").min(PLAINTEXT.len());
        assert!(
            PLAINTEXT[start..].starts_with(&bytes),
            "released bytes that are not the plaintext"
        );
        if to_the_end {
            assert_eq!(bytes, &PLAINTEXT[start..]);
            // From the start every segment is read, so a change anywhere is met; a reader
            // that seeks past a segment never authenticates it (which is why downloads
            // run verify_all first), so only the bytes it releases are checked then.
            assert!(
                untouched || from > 0,
                "read a changed file to the end without an error"
            );
        }
    }
});
