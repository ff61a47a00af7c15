//! The multipart wrapper (gateway/src/upload/framing.rs): never panics, its verdict does not
//! depend on how the body is cut into chunks, and whatever it accepts, multer reads as the
//! same single part (same field name, same file name, then the end): two parsers that agree.
#![no_main]

use futures_util::FutureExt;
use libfuzzer_sys::fuzz_target;
use upgate_gateway::upload::framing::Framing;

fuzz_target!(|data: &[u8]| {
    // First byte: the chunk size (1 to 64); the rest: a body whose boundary is "B".
    let Some((&c, body)) = data.split_first() else {
        return;
    };
    let size = usize::from(c % 64) + 1;
    let mut whole = Framing::new("B", 1);
    let verdict = whole.feed(body).and_then(|()| whole.finish());
    let mut pieces = Framing::new("B", 1);
    let chunked = body
        .chunks(size)
        .try_for_each(|p| pieces.feed(p))
        .and_then(|()| pieces.finish());
    assert_eq!(verdict.is_ok(), chunked.is_ok(), "{verdict:?} vs {chunked:?}");
    if verdict.is_err() {
        return;
    }
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
    field
        .bytes()
        .now_or_never()
        .expect("ready")
        .expect("multer reads the part's data");
    let next = multipart.next_field().now_or_never().expect("ready");
    assert!(matches!(next, Ok(None)), "multer saw more than one part");
});
