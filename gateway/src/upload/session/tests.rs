//! The session alone, fed as any transport would: chunk sizes change nothing, a refusal
//! comes at the chunk that shows it (not at the end), and a refused session leaves nothing.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::*;
use crate::seal::RecipientSecretKey;

fn limits(max: u64, allowed: &[Kind]) -> Limits {
    Limits {
        max_file_bytes: max,
        allowed: allowed.to_vec(),
        decoders: Arc::new(Semaphore::new(1)),
    }
}

/// A well-formed PDF of about `len` bytes: one catalog, comment filler, an xref that its
/// `startxref` points at.
fn pdf(len: usize) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let catalog = out.len();
    out.extend_from_slice(b"1 0 obj\n<< /Type /Catalog >>\nendobj\n");
    while out.len() + 120 < len {
        out.extend_from_slice(b"% filler filler filler filler filler filler filler filler\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 2\n0000000000 65535 f \n{catalog:010} 00000 n \n").as_bytes());
    out.extend_from_slice(
        format!("trailer\n<< /Size 2 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    out
}

fn recipient() -> RecipientPublicKey {
    RecipientSecretKey::generate(1).public()
}

fn spooled(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

async fn fed(bytes: &[u8], chunk: usize, l: Limits, dir: &Path) -> Result<Received, UploadError> {
    let mut s = Session::new("a.pdf".into(), l, dir, Reservation::none(), recipient());
    for piece in bytes.chunks(chunk.max(1)) {
        s.feed(piece).await?;
    }
    s.finish().await
}

#[tokio::test]
async fn chunk_sizes_change_nothing_in_what_is_received() {
    let file = pdf(300_000);
    let mut seen = Vec::new();
    for chunk in [1, 7, 4096, 65_536, file.len()] {
        let dir = tempfile::tempdir().unwrap();
        let r = fed(&file, chunk, limits(1 << 20, &[Kind::Pdf]), dir.path())
            .await
            .unwrap();
        assert_eq!((r.kind, r.size), (Kind::Pdf, file.len() as u64));
        assert_eq!(
            r.spool.written(),
            std::fs::metadata(r.spool.path()).unwrap().len()
        );
        seen.push(r.sha256);
    }
    let expected = hex::encode(ring::digest::digest(&ring::digest::SHA256, &file));
    assert!(seen.iter().all(|s| *s == expected), "{seen:?}");
}

#[tokio::test]
async fn a_wrong_type_is_refused_at_its_first_bytes_and_nothing_is_spooled() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Session::new(
        "a.png".into(),
        limits(1 << 30, &[Kind::Pdf]),
        dir.path(),
        Reservation::none(),
        recipient(),
    );
    // The first chunk that covers the sniffed head is enough: the refusal does not wait for
    // the rest of a file declared to be a gigabyte.
    let mut head = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    head.resize(sniff::SNIFF_LEN, 0);
    let e = s.feed(&head).await.unwrap_err();
    assert!(matches!(e, UploadError::TypeNotAllowed { .. }), "{e:?}");
    assert_eq!(spooled(dir.path()), 0);
}

#[tokio::test]
async fn the_size_cap_refuses_the_chunk_that_crosses_it_and_the_spool_goes() {
    let dir = tempfile::tempdir().unwrap();
    let file = pdf(10_000);
    let mut s = Session::new(
        "a.pdf".into(),
        limits(5_000, &[Kind::Pdf]),
        dir.path(),
        Reservation::none(),
        recipient(),
    );
    s.feed(&file[..4_000]).await.unwrap();
    assert_eq!(
        spooled(dir.path()),
        0,
        "a small head is held in memory, not yet written"
    );
    let e = s.feed(&file[4_000..6_000]).await.unwrap_err();
    assert!(matches!(e, UploadError::TooLarge { limit: 5_000 }), "{e:?}");
    assert_eq!(s.seen().bytes, 6_000);
    drop(s);
    assert_eq!(spooled(dir.path()), 0);
}

#[tokio::test]
async fn an_empty_or_cut_file_is_refused_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let l = || limits(1 << 20, &[Kind::Pdf]);
    let empty = Session::new("a.pdf".into(), l(), dir.path(), Reservation::none(), recipient());
    let e = empty.finish().await.err().expect("refused");
    assert_eq!(e.code(), "empty_file");
    let e = fed(b"%PD", 1, l(), dir.path()).await.err().expect("refused");
    assert_eq!(e.code(), "content_invalid");
    let file = pdf(100_000);
    let e = fed(&file[..50_000], 4096, l(), dir.path())
        .await
        .err()
        .expect("refused");
    assert_eq!(e.code(), "content_invalid");
    assert_eq!(spooled(dir.path()), 0);
}
