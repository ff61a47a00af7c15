use std::io::{Read, Seek, SeekFrom};

use x25519_dalek::{PublicKey, StaticSecret};

use super::*;
use proptest::prelude::*;
use std::io::Cursor;

const TEST_SEGMENT_LEN: usize = 16;

fn recipient() -> RecipientSecretKey {
    RecipientSecretKey::from_bytes(7, [0x11; 32])
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn seal(sealer: Sealer, data: &[u8], chunks: &[usize]) -> (Vec<u8>, DataKey) {
    let mut sealer = sealer;
    let mut out = sealer.header().to_vec();
    let mut rest = data;
    let mut sizes = chunks.iter().copied().cycle();
    while !rest.is_empty() {
        let take = sizes.next().unwrap_or(rest.len()).max(1).min(rest.len());
        sealer.push(&rest[..take], &mut out);
        rest = &rest[take..];
    }
    let key = sealer.finish(&mut out);
    (out, key)
}

fn seal_small(file_id: &str, data: &[u8], seed: u8) -> Vec<u8> {
    let sealer = Sealer::deterministic(
        &recipient().public(),
        file_id,
        TEST_SEGMENT_LEN,
        [seed; 32],
        [seed.wrapping_add(1); 32],
    )
    .unwrap();
    seal(sealer, data, &[data.len().max(1)]).0
}

/// What a download does: header, unwrap, verify everything, then read.
fn open_all(object: &[u8], secret: &RecipientSecretKey) -> Result<Vec<u8>, OpenError> {
    let header = Header::parse(object)?;
    let key = unwrap_key(&header, secret)?;
    let opener = Opener::new(header, key);
    let len = object.len() as u64;
    verify_all(Cursor::new(object), len, &opener)?;
    let mut reader = DecryptReader::new(Cursor::new(object), len, opener)?;
    let mut plain = Vec::new();
    reader.read_to_end(&mut plain)?;
    Ok(plain)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn roundtrip_at_segment_boundaries() {
    let secret = RecipientSecretKey::generate(3);
    for len in [
        0,
        1,
        SEGMENT_LEN - 1,
        SEGMENT_LEN,
        SEGMENT_LEN + 1,
        2 * SEGMENT_LEN,
        3 * SEGMENT_LEN - 1,
        3 * SEGMENT_LEN,
    ] {
        let data = pattern(len, len as u64);
        let sealer = Sealer::new(&secret.public(), "obj-1").unwrap();
        let header_len = sealer.header().len() as u64;
        let (object, _) = seal(sealer, &data, &[SEGMENT_LEN]);
        let segments = len.div_ceil(SEGMENT_LEN).max(1) as u64;
        assert_eq!(
            object.len() as u64,
            header_len + len as u64 + segments * TAG_LEN as u64
        );
        assert_eq!(open_all(&object, &secret).unwrap(), data, "len {len}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn roundtrip_any_length_any_chunking(
        len in prop_oneof![
            0usize..300 * 1024,
            (0usize..=4).prop_map(|k| k * SEGMENT_LEN),
        ],
        chunks in prop::collection::vec(1usize..100_000, 1..6),
        seed in any::<u64>(),
    ) {
        let secret = recipient();
        let data = pattern(len, seed);
        let sealer = Sealer::new(&secret.public(), "roundtrip").unwrap();
        let (object, spool_key) = seal(sealer, &data, &chunks);
        prop_assert_eq!(&open_all(&object, &secret).unwrap(), &data);

        // The gateway re-reads its spool with the key finish() returned.
        let header = Header::parse(&object).unwrap();
        prop_assert_eq!(header.file_id(), "roundtrip");
        let opener = Opener::new(header, spool_key);
        prop_assert_eq!(opener.plaintext_len(object.len() as u64).unwrap(), len as u64);
        let mut reader =
            DecryptReader::new(Cursor::new(&object), object.len() as u64, opener).unwrap();
        let mut plain = Vec::new();
        reader.read_to_end(&mut plain).unwrap();
        prop_assert_eq!(plain, data);
    }

    #[test]
    fn any_flipped_byte_is_refused(position in 0usize..1000, mask in 1u8..=255) {
        let object = seal_small("flip", &pattern(40, 9), 5);
        let position = position % object.len();
        let mut tampered = object.clone();
        tampered[position] ^= mask;
        prop_assert!(open_all(&tampered, &recipient()).is_err());
    }

    #[test]
    fn seek_and_read_any_range(
        len in 0usize..200_000,
        start in 0u64..210_000,
        want in 0usize..70_000,
        small in any::<bool>(),
    ) {
        let data = pattern(len, 77);
        let secret = recipient();
        let sealer = if small {
            Sealer::deterministic(&secret.public(), "range", 1000, [1; 32], [2; 32]).unwrap()
        } else {
            Sealer::new(&secret.public(), "range").unwrap()
        };
        let (object, key) = seal(sealer, &data, &[4096]);
        let opener = Opener::new(Header::parse(&object).unwrap(), key);
        let mut reader =
            DecryptReader::new(Cursor::new(&object), object.len() as u64, opener).unwrap();
        prop_assert_eq!(reader.seek(SeekFrom::Start(start)).unwrap(), start);
        let mut got = Vec::new();
        (&mut reader).take(want as u64).read_to_end(&mut got).unwrap();
        let from = (start as usize).min(len);
        let to = (from + want).min(len);
        prop_assert_eq!(&got[..], &data[from..to]);
    }
}

#[test]
fn every_single_bit_flip_is_refused() {
    let object = seal_small("bits", &pattern(40, 9), 5);
    for position in 0..object.len() {
        for bit in 0..8 {
            let mut tampered = object.clone();
            tampered[position] ^= 1 << bit;
            assert!(
                open_all(&tampered, &recipient()).is_err(),
                "flip of bit {bit} at byte {position} went unnoticed"
            );
        }
    }
}

#[test]
fn seek_variants() {
    let data = pattern(100, 1);
    let object = seal_small("seek", &data, 1);
    let key = unwrap_key(&Header::parse(&object).unwrap(), &recipient()).unwrap();
    let opener = Opener::new(Header::parse(&object).unwrap(), key);
    let mut reader = DecryptReader::new(Cursor::new(&object), object.len() as u64, opener).unwrap();
    assert_eq!(reader.plaintext_len(), 100);
    let mut byte = [0u8; 1];
    assert_eq!(reader.seek(SeekFrom::End(-1)).unwrap(), 99);
    reader.read_exact(&mut byte).unwrap();
    assert_eq!(byte[0], data[99]);
    assert_eq!(reader.seek(SeekFrom::Current(-50)).unwrap(), 50);
    reader.read_exact(&mut byte).unwrap();
    assert_eq!(byte[0], data[50]);
    assert_eq!(reader.seek(SeekFrom::Start(500)).unwrap(), 500);
    assert_eq!(reader.read(&mut byte).unwrap(), 0);
    assert!(reader.seek(SeekFrom::Current(-501)).is_err());
    assert_eq!(reader.seek(SeekFrom::Start(3)).unwrap(), 3);
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, data[3..]);
}

// --- test vectors (the same hex is in docs/sealed-file-format.md) ---

const VEC_KEY_ID: u32 = 0x0102_0304;
const VEC_RECIPIENT_SECRET: &str = "a8abababababababababababababababababababababababababababababab6b";
const VEC_RECIPIENT_PUBLIC: &str = "e3712d851a0e5d79b831c5e34ab22b41a198171de209b8b8faca23a11c624859";
const VEC_EPHEMERAL_SECRET: &str = "4043434343434343434343434343434343434343434343434343434343434343";
const VEC_EPHEMERAL_PUBLIC: &str = "cdefd8783a91b446640e2e1f95599db35e484a0071bd2182b3b60d0812c10c70";
const VEC_SHARED_SECRET: &str = "5706688e1ebc3041ba709f9c85e724d1c3d4df658d302f86bf8555aa3ea8a619";
const VEC_WRAP_KEY: &str = "e3678c1a7f4d825a45fd3d622d066724c428d67d0c708f15bbef17c4cb406622";
const VEC_DATA_KEY: &str = "0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d";

struct Vector {
    file_id: &'static str,
    plaintext: &'static [u8],
    header_hash: &'static str,
    payload_key: &'static str,
    header: &'static str,
    body: &'static str,
}

const VECTORS: [Vector; 3] = [
    Vector {
        file_id: "",
        plaintext: b"",
        header_hash: "83a0bfd0bb6662c834bfa584b8911ed9d86538c8c2a06f6d6a75ec715bac5175",
        payload_key: "6c9b9addf830e25117b24b32c3ab9e8b474cd945e8adea01982245d03f912247",
        header: "5550475345414c010102030400000010cdefd8783a91b446640e2e1f95599db3\
                 5e484a0071bd2182b3b60d0812c10c700003d8b160fbfa0fd8322546b0660e08\
                 5a01da71004163c6a6849033e089e85c8ef7c2cb854c8fee9d8a4c0c2745f01f\
                 53",
        body: "d63d8f24bc0ceafb294debf76ef2b80d",
    },
    Vector {
        file_id: "f_01",
        plaintext: b"hello, upgate",
        header_hash: "a8d3e7f69f5c9c450638230423fc969ba7823c9bb800b3434076b94737b445ba",
        payload_key: "3b556651dcbe8a4b836829899055a242175531c7652e50f2edf4f18c44ec6f29",
        header: "5550475345414c010102030400000010cdefd8783a91b446640e2e1f95599db3\
                 5e484a0071bd2182b3b60d0812c10c7004665f303103d8b160fbfa0fd8322546\
                 b0660e085a01da71004163c6a6849033e089e85c8e037c36fec038c91e0dd874\
                 5c1737b515",
        body: "ea68bcfd38075d867e1c127c9cb413d5b6198421a73532fd775d551780",
    },
    Vector {
        file_id: "f_02",
        plaintext: b"The caller sent two photos.",
        header_hash: "e3a514dafbb2baa432fcb891ca0d333e089630768e5bf81c1da11b875ec100f3",
        payload_key: "1efa305a8f914e80cb7d563a9b4195f399389e1512c3261e5fb017da0f5eb6de",
        header: "5550475345414c010102030400000010cdefd8783a91b446640e2e1f95599db3\
                 5e484a0071bd2182b3b60d0812c10c7004665f303203d8b160fbfa0fd8322546\
                 b0660e085a01da71004163c6a6849033e089e85c8e07968fae5c627a40d2a705\
                 27866fe45a",
        body: "73fd1d88a8b9cba7bc4e38887e4433efc917e53d35b6fa3c46fce84b1111ef55\
               5873b0cc0e8aec52b5b82567c5b6b16d4f2335e421010c3a6e6590",
    },
];

fn bytes32(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&unhex(text));
    out
}

fn vector_secret() -> RecipientSecretKey {
    RecipientSecretKey::from_bytes(VEC_KEY_ID, bytes32(VEC_RECIPIENT_SECRET))
}

fn vector_sealer(file_id: &str) -> Sealer {
    Sealer::deterministic(
        &vector_secret().public(),
        file_id,
        TEST_SEGMENT_LEN,
        bytes32(VEC_DATA_KEY),
        bytes32(VEC_EPHEMERAL_SECRET),
    )
    .unwrap()
}

#[test]
fn vectors_key_agreement() {
    let secret = vector_secret();
    assert_eq!(hex(&secret.public().bytes), VEC_RECIPIENT_PUBLIC);
    let ephemeral = StaticSecret::from(bytes32(VEC_EPHEMERAL_SECRET));
    let ephemeral_public = PublicKey::from(&ephemeral);
    assert_eq!(hex(ephemeral_public.as_bytes()), VEC_EPHEMERAL_PUBLIC);
    let shared = ephemeral.diffie_hellman(&PublicKey::from(secret.public().bytes));
    assert_eq!(hex(shared.as_bytes()), VEC_SHARED_SECRET);
    let wrap = wrap_key_bytes(
        shared.as_bytes(),
        ephemeral_public.as_bytes(),
        &secret.public().bytes,
    );
    assert_eq!(hex(&wrap[..]), VEC_WRAP_KEY);
}

#[test]
fn vectors_seal_exactly() {
    for v in &VECTORS {
        // Byte-at-a-time pushing must not change the output.
        let (object, key) = seal(vector_sealer(v.file_id), v.plaintext, &[1]);
        let header = Header::parse(&object).unwrap();
        let hash = sha256(header.as_bytes());
        assert_eq!(hex(&hash), v.header_hash, "{}", v.file_id);
        assert_eq!(hex(&payload_key_bytes(&key, &hash)[..]), v.payload_key);
        assert_eq!(hex(&object[..header.len()]), unhex_normalized(v.header));
        assert_eq!(hex(&object[header.len()..]), unhex_normalized(v.body));
    }
}

/// The way the gateway drives the sealer: whole segments sealed as more data comes and
/// taken out of the buffer at once, so the next plaintext starts a fresh buffer.
#[test]
fn vectors_seal_exactly_when_sealed_segments_are_taken_out_as_they_complete() {
    for v in &VECTORS {
        let mut sealer = vector_sealer(v.file_id);
        let mut written = sealer.header().to_vec();
        let mut out = Vec::new();
        for byte in v.plaintext.chunks(1) {
            if sealer.is_full() {
                sealer.seal_full(&mut out);
                written.append(&mut out);
            }
            sealer.absorb(byte, &mut out);
        }
        sealer.finish(&mut out);
        written.append(&mut out);
        let header = Header::parse(&written).unwrap();
        assert_eq!(hex(&written[..header.len()]), unhex_normalized(v.header));
        assert_eq!(
            hex(&written[header.len()..]),
            unhex_normalized(v.body),
            "{}",
            v.file_id
        );
    }
}

#[test]
#[should_panic(expected = "more plaintext than the segment has room for")]
fn a_segment_takes_no_more_than_its_room() {
    let mut sealer = vector_sealer("x");
    let mut out = Vec::new();
    sealer.absorb(&[0; TEST_SEGMENT_LEN + 1], &mut out);
}

#[test]
fn vectors_open() {
    for v in &VECTORS {
        let object = [unhex(v.header), unhex(v.body)].concat();
        let header = Header::parse(&object).unwrap();
        assert_eq!(header.key_id(), VEC_KEY_ID);
        assert_eq!(header.segment_len(), TEST_SEGMENT_LEN);
        assert_eq!(header.file_id(), v.file_id);
        assert_eq!(open_all(&object, &vector_secret()).unwrap(), v.plaintext);
    }
}

#[test]
fn vectors_are_the_ones_in_the_doc() {
    let doc: String = include_str!("../../../docs/sealed-file-format.md")
        .split_whitespace()
        .collect();
    let mut expected = vec![
        VEC_RECIPIENT_SECRET,
        VEC_RECIPIENT_PUBLIC,
        VEC_EPHEMERAL_SECRET,
        VEC_EPHEMERAL_PUBLIC,
        VEC_SHARED_SECRET,
        VEC_WRAP_KEY,
        VEC_DATA_KEY,
    ];
    for v in &VECTORS {
        expected.extend([v.header_hash, v.payload_key, v.header, v.body]);
    }
    for text in expected {
        let text = unhex_normalized(text);
        assert!(doc.contains(&text), "docs lack {text}");
    }
}

fn unhex_normalized(text: &str) -> String {
    text.split_whitespace().collect()
}

// --- tampering ---

fn segments(object: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let header_len = Header::parse(object).unwrap().len();
    let body = &object[header_len..];
    let chunks = body
        .chunks(TEST_SEGMENT_LEN + TAG_LEN)
        .map(<[u8]>::to_vec)
        .collect();
    (object[..header_len].to_vec(), chunks)
}

fn assemble(header: &[u8], segs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = header.to_vec();
    for seg in segs {
        out.extend_from_slice(seg);
    }
    out
}

#[test]
fn truncation_is_refused() {
    // 40 bytes in 16-byte segments: 16 + 16 + 8.
    let object = seal_small("trunc", &pattern(40, 3), 4);
    let (header, segs) = segments(&object);
    assert_eq!(segs.len(), 3);
    assert!(open_all(&object, &recipient()).is_ok());
    // At a segment boundary: segment 1 is not sealed as final.
    let cut = assemble(&header, &segs[..2]);
    assert!(matches!(
        open_all(&cut, &recipient()),
        Err(OpenError::SegmentAuth { index: 1 })
    ));
    let cut = assemble(&header, &segs[..1]);
    assert!(open_all(&cut, &recipient()).is_err());
    // Header only, or nothing at all after it.
    assert!(matches!(
        open_all(&header, &recipient()),
        Err(OpenError::InvalidLength { .. })
    ));
    // Mid-segment, at every possible length.
    for len in header.len()..object.len() {
        assert!(open_all(&object[..len], &recipient()).is_err(), "len {len}");
    }
    // Appending bytes is refused as well.
    let mut long = object.clone();
    long.push(0);
    assert!(open_all(&long, &recipient()).is_err());
}

#[test]
fn reordered_and_duplicated_segments_are_refused() {
    let object = seal_small("order", &pattern(48, 5), 6);
    let (header, segs) = segments(&object);
    assert_eq!(segs.len(), 3);
    let swapped = assemble(&header, &[segs[1].clone(), segs[0].clone(), segs[2].clone()]);
    assert!(open_all(&swapped, &recipient()).is_err());
    let duplicated = assemble(&header, &[segs[0].clone(), segs[0].clone(), segs[2].clone()]);
    assert!(open_all(&duplicated, &recipient()).is_err());
    let inserted = assemble(
        &header,
        &[segs[0].clone(), segs[1].clone(), segs[1].clone(), segs[2].clone()],
    );
    assert!(open_all(&inserted, &recipient()).is_err());
    // The final segment moved to the front and marked last by position.
    let last_first = assemble(&header, &[segs[2].clone()]);
    assert!(open_all(&last_first, &recipient()).is_err());
}

#[test]
fn splicing_between_files_is_refused() {
    let data = pattern(40, 8);
    let a = seal_small("same-id", &data, 10);
    let b = seal_small("same-id", &data, 20);
    let (header_a, segs_a) = segments(&a);
    let (header_b, segs_b) = segments(&b);
    // Header of A with the whole body of B.
    assert!(open_all(&assemble(&header_a, &segs_b), &recipient()).is_err());
    // One segment of B inside A.
    let mixed = assemble(
        &header_a,
        &[segs_a[0].clone(), segs_b[1].clone(), segs_a[2].clone()],
    );
    assert!(open_all(&mixed, &recipient()).is_err());
    // B's header with A's header's wrapped key (same recipient): unwrap must fail.
    let mut grafted = header_b.clone();
    let n = grafted.len();
    grafted[n - WRAPPED_KEY_LEN..].copy_from_slice(&header_a[n - WRAPPED_KEY_LEN..]);
    assert!(open_all(&assemble(&grafted, &segs_a), &recipient()).is_err());
}

#[test]
fn file_id_is_bound_and_exposed() {
    let object = seal_small("file-A", b"contents of A", 1);
    let header = Header::parse(&object).unwrap();
    assert_eq!(header.file_id(), "file-A");
    assert!(header.check_file_id("file-A").is_ok());
    // Stored under B's id: the caller compares and refuses.
    assert!(matches!(
        header.check_file_id("file-B"),
        Err(OpenError::FileIdMismatch)
    ));
    // Rewriting the id in the header (same length) breaks the key wrap.
    let mut renamed = object.clone();
    let at = FIXED_LEN + 5;
    renamed[at] = b'B';
    let header = Header::parse(&renamed).unwrap();
    assert_eq!(header.file_id(), "file-B");
    assert!(matches!(
        unwrap_key(&header, &recipient()),
        Err(OpenError::UnwrapFailed)
    ));
}

#[test]
fn wrong_secret_key_is_refused() {
    let object = seal_small("k", b"secret", 2);
    let header = Header::parse(&object).unwrap();
    let other = RecipientSecretKey::from_bytes(7, [0x22; 32]);
    assert!(matches!(
        unwrap_key(&header, &other),
        Err(OpenError::UnwrapFailed)
    ));
    let rotated = RecipientSecretKey::from_bytes(8, [0x11; 32]);
    assert!(matches!(
        unwrap_key(&header, &rotated),
        Err(OpenError::KeyIdMismatch { file: 7, key: 8 })
    ));
}

#[test]
fn version_and_magic_are_checked() {
    let object = seal_small("v", b"x", 2);
    let mut bumped = object.clone();
    bumped[7] = 2;
    assert!(matches!(
        Header::parse(&bumped),
        Err(OpenError::UnsupportedVersion(2))
    ));
    bumped[7] = 0;
    assert!(matches!(
        Header::parse(&bumped),
        Err(OpenError::UnsupportedVersion(0))
    ));
    let mut garbled = object.clone();
    garbled[0] = b'X';
    assert!(matches!(Header::parse(&garbled), Err(OpenError::BadMagic)));
    assert!(matches!(
        Header::parse(b"%PDF-1.7 hello"),
        Err(OpenError::BadMagic)
    ));
    let mut bad_segment = object.clone();
    bad_segment[12..16].copy_from_slice(&0u32.to_be_bytes());
    assert!(matches!(
        Header::parse(&bad_segment),
        Err(OpenError::InvalidSegmentLength(0))
    ));
    bad_segment[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Header::parse(&bad_segment),
        Err(OpenError::InvalidSegmentLength(u32::MAX))
    ));
}

#[test]
fn short_header_asks_for_more() {
    let object = seal_small("some-file-id", b"x", 2);
    let header = Header::parse(&object).unwrap();
    assert!(header.len() <= MAX_HEADER_LEN);
    for len in 0..header.len() {
        match Header::parse(&object[..len]) {
            Err(OpenError::HeaderIncomplete { needed }) => {
                assert!(needed > len && needed <= header.len(), "len {len}");
            }
            other => panic!("prefix of {len} bytes gave {other:?}"),
        }
    }
    assert_eq!(Header::parse(&object[..header.len()]).unwrap(), header);
}

#[test]
fn header_read_from_stops_at_segment_zero() {
    let object = seal_small("read-from", &pattern(20, 2), 3);
    let mut cursor = Cursor::new(&object);
    let header = Header::read_from(&mut cursor).unwrap();
    assert_eq!(cursor.position(), header.len() as u64);
    assert_eq!(header, Header::parse(&object).unwrap());
    for len in [0, 10, FIXED_LEN, header.len() - 1] {
        assert!(matches!(
            Header::read_from(&mut Cursor::new(&object[..len])),
            Err(OpenError::HeaderIncomplete { .. })
        ));
    }
    assert!(matches!(
        Header::read_from(&mut Cursor::new(&[0u8; 200][..])),
        Err(OpenError::BadMagic)
    ));
}

#[test]
fn longest_file_id_fits_max_header_len() {
    let secret = recipient();
    let id = "i".repeat(MAX_FILE_ID_LEN);
    let sealer = Sealer::new(&secret.public(), &id).unwrap();
    assert_eq!(sealer.header().len(), MAX_HEADER_LEN);
    let (object, _) = seal(sealer, b"data", &[4]);
    assert_eq!(open_all(&object, &secret).unwrap(), b"data");
    assert!(matches!(
        Sealer::new(&secret.public(), &"i".repeat(MAX_FILE_ID_LEN + 1)),
        Err(SealError::FileIdTooLong { len: 256 })
    ));
}

#[test]
fn non_utf8_file_id_is_refused() {
    let mut object = seal_small("ab", b"x", 2);
    object[FIXED_LEN] = 0xff;
    assert!(matches!(Header::parse(&object), Err(OpenError::InvalidFileId)));
}

#[test]
fn impossible_lengths_are_refused() {
    let object = seal_small("len", b"", 2);
    let header = Header::parse(&object).unwrap();
    let h = header.len() as u64;
    let opener = Opener::new(header, DataKey([0; 32]));
    let stride = (TEST_SEGMENT_LEN + TAG_LEN) as u64;
    for bad in [0, h - 1, h, h + 1, h + 15, h + stride + 1, h + stride + 16] {
        assert!(opener.plaintext_len(bad).is_err(), "{bad}");
    }
    assert_eq!(opener.plaintext_len(h + 16).unwrap(), 0);
    assert_eq!(opener.plaintext_len(h + 17).unwrap(), 1);
    assert_eq!(opener.plaintext_len(h + stride).unwrap(), 16);
    assert_eq!(opener.plaintext_len(h + stride + 17).unwrap(), 17);
    assert_eq!(opener.segment_count(h + 2 * stride).unwrap(), 2);
    assert_eq!(opener.segment_offset(0), h);
    assert_eq!(opener.segment_offset(2), h + 2 * stride);
    assert_eq!(opener.segment_offset(u64::MAX), u64::MAX);
    // Huge lengths are arithmetic, not panics.
    let _ = opener.plaintext_len(u64::MAX);
    let _ = opener.segment_count(u64::MAX);
}

#[test]
fn open_segment_checks_flag_and_length() {
    let object = seal_small("seg", &pattern(20, 1), 3);
    let header = Header::parse(&object).unwrap();
    let key = unwrap_key(&header, &recipient()).unwrap();
    let opener = Opener::new(header, key);
    let (_, segs) = segments(&object);
    assert_eq!(
        opener.open_segment(0, false, &segs[0]).unwrap(),
        pattern(20, 1)[..16]
    );
    assert_eq!(
        opener.open_segment(1, true, &segs[1]).unwrap(),
        pattern(20, 1)[16..]
    );
    assert!(matches!(
        opener.open_segment(0, true, &segs[0]),
        Err(OpenError::SegmentAuth { index: 0 })
    ));
    assert!(matches!(
        opener.open_segment(1, false, &segs[1]),
        Err(OpenError::SegmentLength { index: 1, .. })
    ));
    assert!(opener.open_segment(2, true, &segs[1]).is_err());
    assert!(opener.open_segment(0, false, &segs[0][..31]).is_err());
}

#[test]
fn verify_all_refuses_before_any_plaintext() {
    let data = pattern(40, 12);
    let object = seal_small("verify", &data, 7);
    let header = Header::parse(&object).unwrap();
    let key = unwrap_key(&header, &recipient()).unwrap();
    let opener = Opener::new(header, key);
    let len = object.len() as u64;
    assert!(verify_all(Cursor::new(&object), len, &opener).is_ok());

    // Tamper with the last segment only: a streaming reader would already have
    // released the first two segments, verify_all releases nothing and fails.
    let mut tampered = object.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        verify_all(Cursor::new(&tampered), len, &opener),
        Err(OpenError::SegmentAuth { index: 2 })
    ));
    let mut reader = DecryptReader::new(Cursor::new(&tampered), len, opener.clone()).unwrap();
    let mut first = [0u8; 16];
    reader.read_exact(&mut first).unwrap();
    let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.get_ref().is_some_and(|e| e.is::<OpenError>()));

    // A tampered header in storage is caught even though the opener's is intact.
    let mut other_header = object.clone();
    other_header[20] ^= 1;
    assert!(matches!(
        verify_all(Cursor::new(&other_header), len, &opener),
        Err(OpenError::HeaderMismatch)
    ));
    // A stored object shorter than claimed.
    assert!(matches!(
        verify_all(Cursor::new(&object[..object.len() - 3]), len, &opener),
        Err(OpenError::Io(_))
    ));
}

#[test]
fn empty_file_reader_authenticates_its_only_segment() {
    let object = seal_small("empty", b"", 9);
    let header = Header::parse(&object).unwrap();
    let key = unwrap_key(&header, &recipient()).unwrap();
    let opener = Opener::new(header, key);
    let len = object.len() as u64;
    let mut reader = DecryptReader::new(Cursor::new(&object), len, opener.clone()).unwrap();
    assert_eq!(reader.read(&mut [0u8; 8]).unwrap(), 0);
    let mut tampered = object.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x80;
    let mut reader = DecryptReader::new(Cursor::new(&tampered), len, opener).unwrap();
    assert!(reader.read(&mut [0u8; 8]).is_err());
}

// --- key separation ---

#[test]
fn gateway_material_cannot_open() {
    let control = RecipientSecretKey::generate(1);
    let gateway_holds = control.public();
    let data = b"a photo of a passport".to_vec();
    let sealer = Sealer::new(&gateway_holds, "obj").unwrap();
    let (object, key) = seal(sealer, &data, &[5]);
    let header = Header::parse(&object).unwrap();

    // The data key never appears in the stored bytes.
    assert!(!object.windows(32).any(|w| w == key.0));
    // Everything the gateway and storage have, used as a secret key, fails.
    let ephemeral = header.ephemeral_public();
    for candidate in [gateway_holds.bytes, ephemeral, sha256(&object)] {
        let fake = RecipientSecretKey::from_bytes(1, candidate);
        assert!(matches!(unwrap_key(&header, &fake), Err(OpenError::UnwrapFailed)));
    }
    // Only the control plane's secret opens it.
    assert_eq!(open_all(&object, &control).unwrap(), data);
}

#[test]
fn low_order_points_are_refused() {
    let zero = RecipientPublicKey {
        key_id: 1,
        bytes: [0; 32],
    };
    assert!(matches!(
        Sealer::new(&zero, "x"),
        Err(SealError::LowOrderRecipient { key_id: 1 })
    ));
    let mut one = [0u8; 32];
    one[0] = 1;
    let one = RecipientPublicKey {
        key_id: 1,
        bytes: one,
    };
    assert!(Sealer::new(&one, "x").is_err());

    let mut object = seal_small("lo", b"x", 2);
    object[16..48].fill(0);
    let header = Header::parse(&object).unwrap();
    assert!(matches!(
        unwrap_key(&header, &recipient()),
        Err(OpenError::LowOrderPoint)
    ));
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let secret = RecipientSecretKey::from_bytes(4, [0xab; 32]);
    assert_eq!(format!("{secret:?}"), "RecipientSecretKey { key_id: 4, .. }");
    let key = DataKey([0xcd; 32]);
    assert_eq!(format!("{key:?}"), "DataKey(<redacted>)");
    let sealer = Sealer::new(&secret.public(), "dbg").unwrap();
    assert!(format!("{sealer:?}").starts_with("Sealer { header_len: 100,"));
    let opener = Opener::new(Header::parse(sealer.header()).unwrap(), key);
    assert_eq!(
        format!("{opener:?}"),
        r#"Opener { header: Header { key_id: 4, segment_len: 65536, file_id: "dbg", len: 100 }, .. }"#
    );
    let roundtrip = RecipientSecretKey::from_bytes(4, secret.to_bytes());
    assert_eq!(roundtrip.public(), secret.public());
    assert_eq!(secret.key_id(), 4);
}

#[test]
fn deterministic_constructor_refuses_bad_segment_lengths() {
    let public = recipient().public();
    for len in [0, MIN_SEGMENT_LEN - 1, MAX_SEGMENT_LEN + 1] {
        assert!(matches!(
            Sealer::deterministic(&public, "x", len, [1; 32], [2; 32]),
            Err(SealError::InvalidSegmentLength { .. })
        ));
    }
}
