//! Sealed-file headers (gateway/src/seal/header.rs) from untrusted bytes: parsing never
//! panics; a parsed header is exactly the bytes it came from and parses again to itself;
//! "incomplete" asks for more than was given and never more than MAX_HEADER_LEN; the
//! streaming parse agrees with the slice parse; unwrapping never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upgate_gateway::seal::{
    unwrap_key, Header, OpenError, RecipientSecretKey, MAX_HEADER_LEN, MAX_SEGMENT_LEN, MIN_HEADER_LEN,
    MIN_SEGMENT_LEN,
};

fuzz_target!(|data: &[u8]| {
    let parsed = Header::parse(data);
    match &parsed {
        Ok(h) => {
            assert!((MIN_HEADER_LEN..=MAX_HEADER_LEN).contains(&h.len()));
            assert_eq!(h.as_bytes(), &data[..h.len()]);
            assert!((MIN_SEGMENT_LEN..=MAX_SEGMENT_LEN).contains(&h.segment_len()));
            assert!(h.check_file_id(h.file_id()).is_ok());
            assert_eq!(Header::parse(h.as_bytes()).ok().as_ref(), Some(h));
        }
        Err(OpenError::HeaderIncomplete { needed }) => {
            assert!(
                *needed > data.len() && *needed <= MAX_HEADER_LEN,
                "needed {needed} of {}",
                data.len()
            );
        }
        Err(_) => {}
    }

    let streamed = Header::read_from(&mut &data[..]);
    match (&parsed, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => panic!("slice parse {parsed:?} but streaming parse {streamed:?}"),
    }

    // The secret of the test vectors in docs/sealed-file-format.md, under the header's own
    // key id so that the key agreement and the unwrap run rather than the id check.
    if let Ok(h) = parsed {
        let mut r = [0xab; 32];
        r[0] = 0xa8;
        r[31] = 0x6b;
        let _ = unwrap_key(&h, &RecipientSecretKey::from_bytes(h.key_id(), r));
    }
});
