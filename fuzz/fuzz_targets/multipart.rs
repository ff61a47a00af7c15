//! The multipart parser (gateway/src/upload/framing.rs): never panics, its verdict and the
//! data it hands on do not depend on how the body is cut into chunks, and whatever it
//! accepts, multer (a parser written by others) reads as the same single part: the same
//! field name, file name and data, then the end.
#![no_main]

use futures_util::FutureExt;
use libfuzzer_sys::fuzz_target;
use upgate_gateway::upload::framing::{Event, Framing};

/// The verdict on `body` cut into pieces of `size`, and the data the parser handed on.
fn parse(body: &[u8], size: usize) -> (Result<(), String>, Framing, Vec<u8>) {
    let mut framing = Framing::new("B", 1);
    let mut events = Vec::new();
    let verdict = body
        .chunks(size)
        .try_for_each(|p| framing.parse(&bytes::Bytes::copy_from_slice(p), &mut events))
        .and_then(|()| framing.finish())
        .map_err(|e| e.to_string());
    let mut data = Vec::new();
    for event in events {
        if let Event::Data(d) = event {
            data.extend_from_slice(&d);
        }
    }
    (verdict, framing, data)
}

fuzz_target!(|data: &[u8]| {
    // First byte: the chunk size (1 to 64); the rest: a body whose boundary is "B".
    let Some((&c, body)) = data.split_first() else {
        return;
    };
    let size = usize::from(c % 64) + 1;
    let (verdict, whole, data) = parse(body, body.len().max(1));
    let (chunked, _, chunked_data) = parse(body, size);
    assert_eq!(verdict.is_ok(), chunked.is_ok(), "{verdict:?} vs {chunked:?}");
    if verdict.is_err() {
        return;
    }
    assert_eq!(data, chunked_data, "the data depends on the cut");
    let head = &whole.heads()[0];
    let stream = futures_util::stream::iter(
        body.chunks(size)
            .map(|p| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(p)))
            .collect::<Vec<_>>(),
    );
    let mut multipart = multer::Multipart::new(stream, "B");
    let field = multipart
        .next_field()
        .now_or_never()
        .expect("an in-memory body is always ready")
        .expect("multer reads what the wrapper accepted")
        .expect("a part");
    assert_eq!(field.name(), Some(head.name.as_str()), "field names differ");
    assert_eq!(field.file_name(), head.filename.as_deref(), "file names differ");
    let theirs = field
        .bytes()
        .now_or_never()
        .expect("ready")
        .expect("multer reads the part's data");
    assert_eq!(&theirs[..], &data[..], "the data differs");
    let next = multipart.next_field().now_or_never().expect("ready");
    assert!(matches!(next, Ok(None)), "multer saw more than one part");
});
