//! The multipart wrapper under arbitrary bodies: never a panic or a hang, every refusal a
//! client error (or our own I/O), and nothing left in the spool. Bodies are built from
//! pieces a broken or hostile client would send, cut into random chunks.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use tokio::sync::Semaphore;

use super::*;
use crate::seal::RecipientSecretKey;
use crate::upload::sniff::Kind;

const PIECES: &[&[u8]] = &[
    b"--B\r\n",
    b"--B--\r\n",
    b"--B",
    b"\r\n",
    b"\r\n\r\n",
    b"Content-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n",
    b"Content-Disposition: form-data; name=\"file\"\r\n",
    b"Content-Disposition: form-data; name=\"x\"; filename*=UTF-8''b\r\n",
    b"Content-Type: application/pdf\r\n",
    b" folded\r\n",
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
    b"xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Root 1 0 R >>\nstartxref\n9\n%%EOF\n",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"GIF89a<script>",
    b"PK\x03\x04",
    b"\0\0\0\0",
];

fn body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            proptest::sample::select(PIECES).prop_map(|p| p.to_vec()),
            proptest::collection::vec(any::<u8>(), 0..40),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

async fn run(bytes: Vec<u8>, cuts: Vec<usize>) -> (Result<(), UploadError>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut chunks = Vec::new();
    let mut rest = Bytes::from(bytes);
    for cut in cuts {
        if rest.is_empty() {
            break;
        }
        chunks.push(Ok(rest.split_to(cut.min(rest.len()).max(1))));
    }
    if !rest.is_empty() {
        chunks.push(Ok(rest));
    }
    let stream = futures_util::stream::iter(chunks);
    let limits = Limits {
        max_file_bytes: 400,
        allowed: vec![Kind::Pdf, Kind::Jpeg, Kind::Png],
        decoders: Arc::new(Semaphore::new(1)),
    };
    let recipient = RecipientSecretKey::from_bytes(1, [7; 32]).public();
    let mut seen = Seen::default();
    // A received file is dropped uncommitted here, which must remove its spool too.
    let result = receive(
        stream,
        "B".into(),
        &limits,
        dir.path(),
        Reservation::none(),
        &recipient,
        &mut seen,
    )
    .await
    .map(drop);
    (result, std::fs::read_dir(dir.path()).unwrap().count())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bodies_get_a_clear_answer_and_leave_nothing(
        bytes in body(),
        cuts in proptest::collection::vec(1usize..64, 0..16),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (result, left) = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), run(bytes, cuts)).await.expect("no hang")
        });
        if let Err(e) = &result {
            prop_assert!(e.status().is_client_error(), "{e:?} is not a client error");
        }
        // A refusal leaves nothing behind; so does a received file nobody committed.
        prop_assert_eq!(left, 0);
    }
}
