//! The first part's head check (gateway/src/upload/part_head.rs): never panics, and the
//! verdict does not depend on how the body was cut into chunks, because the gateway calls
//! `check` again on a longer prefix each time a chunk arrives and stops at the first verdict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upgate_gateway::upload::part_head::{check, MAX_PART_HEAD};

fuzz_target!(|data: &[u8]| {
    // First byte: boundary length (1 to 70, RFC 2046); then the boundary; then the body.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 70) + 1;
    let Some((boundary, body)) = rest.split_at_checked(n) else {
        return;
    };
    let Ok(boundary) = std::str::from_utf8(boundary) else {
        return;
    };

    let whole = check(body, boundary);
    if whole == Ok(Some(())) {
        let opening = format!("--{boundary}\r\n");
        assert!(body.starts_with(opening.as_bytes()));
        let head_end = body.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
        assert!(
            head_end.is_some_and(|end| end <= MAX_PART_HEAD),
            "accepted a head over the limit"
        );
    }
    let len = body.len();
    for cut in [
        len / 4,
        len / 2,
        len * 3 / 4,
        MAX_PART_HEAD,
        MAX_PART_HEAD + 1,
        len.saturating_sub(1),
    ] {
        if cut >= len {
            continue;
        }
        let early = check(&body[..cut], boundary);
        if early != Ok(None) {
            assert_eq!(
                early, whole,
                "verdict at {cut} bytes differs from the verdict on all {len}"
            );
        }
    }
});
