//! The part-head and boundary checks (gateway/src/upload/part_head.rs): never panic, and
//! what they accept is the one shape we promise: a form-data disposition whose name and file
//! name hold no quote, a head within the cap, a boundary of RFC 2046's length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upgate_gateway::upload::part_head::{boundary, check_head, MAX_PART_HEAD};

fuzz_target!(|data: &[u8]| {
    if let Ok(head) = check_head(data) {
        assert!(data.len() <= MAX_PART_HEAD, "accepted a head over the cap");
        assert!(!head.name.contains('"') && !head.name.contains("filename"));
        if let Some(name) = &head.filename {
            assert!(!name.contains('"') && !name.ends_with('\\'));
        }
        let text = std::str::from_utf8(data).expect("accepted heads are UTF-8");
        assert!(!text.contains('\n') || text.contains("\r\n"), "a bare line feed passed");
    }
    if let Ok(b) = boundary(data) {
        assert!((1..=70).contains(&b.len()), "boundary of {} characters", b.len());
        assert!(!b.contains('"'));
    }
});
