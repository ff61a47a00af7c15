use super::images::*;
use super::pdf::*;
use super::*;
use image::{Rgb, RgbImage};
use proptest::prelude::*;
use std::io::Cursor;
use std::time::{Duration, Instant};

fn encoded(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x * 13) as u8, (y * 7) as u8, ((x + y) * 3) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .expect("encode test image");
    out.into_inner()
}

fn image_of(kind: Kind) -> Vec<u8> {
    encoded(kind.image_format().expect("image kind"), 24, 16)
}

fn prove(kind: Kind, bytes: &[u8]) -> Result<ImageInfo, ContentError> {
    prove_image(kind, Cursor::new(bytes), &ImageLimits::default())
}

/// A one-page PDF with a correct classic xref table; `extra` goes before the xref.
fn pdf_classic(extra: &[u8]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let bodies: [&[u8]; 3] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ];
    let mut offsets = Vec::new();
    for (n, body) in bodies.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", n + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    out.extend_from_slice(extra);
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", bodies.len() + 1).as_bytes());
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            bodies.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A PDF 1.5 whose cross-reference section is an (uncompressed) xref stream.
fn pdf_xref_stream() -> Vec<u8> {
    let mut out = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let o1 = out.len();
    out.extend_from_slice(b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    let o2 = out.len();
    out.extend_from_slice(b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n");
    let o3 = out.len();
    let mut rows = vec![0u8, 0, 0, 0xFF];
    for o in [o1, o2, o3] {
        let o = u16::try_from(o).expect("small test file");
        rows.extend_from_slice(&[1, (o >> 8) as u8, o as u8, 0]);
    }
    out.extend_from_slice(
        format!(
            "3 0 obj\n<< /Filter [] /Size 4 /W [1 2 1] /Root 1 0 R /Length {} /Type /XRef >>\nstream\n",
            rows.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&rows);
    out.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{o3}\n%%EOF").as_bytes());
    out
}

fn check_pdf(bytes: &[u8], chunk: usize) -> Result<(), ContentError> {
    let mut c = PdfCheck::new();
    for part in bytes.chunks(chunk.max(1)) {
        c.feed(part);
    }
    c.finish()
}

/// CRC-32 (ISO-HDLC), to build PNG chunks by hand.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, name: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = name.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A whole, well-formed PNG whose header claims `w` × `h` but holds almost no data.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    png_chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn kind_names_round_trip() {
    for kind in Kind::ALL {
        assert_eq!(Kind::from_mime(kind.mime()), Some(kind));
        assert_eq!(Kind::from_mime(&kind.mime().to_ascii_uppercase()), Some(kind));
        assert_eq!(kind.extensions()[0], kind.extension());
        assert_eq!(kind.is_image(), kind != Kind::Pdf);
    }
    for other in [
        "image/*",
        "image/jpg",
        " image/png",
        "image/png; q=1",
        "text/html",
        "image/svg+xml",
        "",
    ] {
        assert_eq!(Kind::from_mime(other), None, "{other:?}");
    }
}

#[test]
fn each_image_kind_is_sniffed_and_proven() {
    for kind in [Kind::Jpeg, Kind::Png, Kind::Gif, Kind::Webp] {
        let bytes = image_of(kind);
        assert_eq!(sniff(&bytes, true), Ok(Some(kind)), "{kind:?}");
        let info = prove(kind, &bytes).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(
            info,
            ImageInfo {
                width: 24,
                height: 16
            }
        );
        assert!(matches!(admit(&bytes, true, &[kind]), Ok(Ok(k)) if k == kind));
        assert!(
            matches!(admit(&bytes, true, &[Kind::Pdf]), Ok(Err(ContentError::NotAllowed(k))) if k == kind)
        );
    }
}

#[test]
fn animated_gif_is_walked_to_its_trailer() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, RgbaImage};
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        for i in 0..3u8 {
            let frame = RgbaImage::from_pixel(8, 8, image::Rgba([i * 80, 0, 0, 255]));
            enc.encode_frame(Frame::from_parts(frame, 0, 0, Delay::from_numer_denom_ms(100, 1)))
                .expect("encode frame");
        }
    }
    assert_eq!(prove(Kind::Gif, &out).expect("animated gif").width, 8);
    // Cut inside the last frame: the first frame still decodes, the walk refuses.
    let cut = &out[..out.len() - 6];
    assert!(prove(Kind::Gif, cut).is_err());
}

#[test]
fn pdfs_from_the_builder_pass_in_any_chunking() {
    for pdf in [pdf_classic(b""), pdf_xref_stream()] {
        assert_eq!(sniff(&pdf, true), Ok(Some(Kind::Pdf)));
        for chunk in [1, 2, 3, 7, 64, 4096, 1 << 20] {
            check_pdf(&pdf, chunk).unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
        }
    }
}

#[test]
fn large_pdf_with_far_away_xref_passes() {
    // Pushes the xref well past every internal buffer size.
    let filler = b"% padding comment line that is not an object\n".repeat(6000);
    let pdf = pdf_classic(&filler);
    assert!(pdf.len() > 3 * PIECE);
    for chunk in [1000, 65_537, 1 << 20] {
        check_pdf(&pdf, chunk).unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
    }
    // Memory stays bounded whatever the file size and chunking.
    let bound = PIECE + LOOK_AHEAD + DROP_BATCH + LOOK_BEHIND;
    for chunk in [7, 1000, 1 << 20] {
        let mut check = PdfCheck::new();
        for part in pdf.chunks(chunk) {
            check.feed(part);
            assert!(check.window.len() <= bound, "window {}", check.window.len());
            assert!(check.tail.len() <= 2 * PDF_TAIL && check.head.len() <= PDF_HEAD);
        }
        check.finish().expect("large pdf");
    }
}

#[test]
fn pdf_incremental_update_uses_the_last_startxref() {
    let mut pdf = pdf_classic(b"");
    let xref2 = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n{xref2}\n%%EOF\r\n")
            .as_bytes(),
    );
    check_pdf(&pdf, 100).expect("incremental update");
}

#[test]
fn pdf_structural_refusals() {
    let good = pdf_classic(b"");
    let xref = rfind(&good, b"\nxref\n").expect("xref") + 1;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("cut in half", good[..good.len() / 2].to_vec(), "truncated"),
        ("cut before %%EOF", good[..good.len() - 3].to_vec(), "truncated"),
        ("magic only", b"%PDF-1.7".to_vec(), "truncated"),
        ("header line only", b"%PDF-1.7\n".to_vec(), "truncated"),
        (
            "version 1.9",
            [b"%PDF-1.9".as_slice(), &good[8..]].concat(),
            "not_this_kind",
        ),
        ("not a pdf", image_of(Kind::Png), "not_this_kind"),
        (
            "junk after version",
            [b"%PDF-1.4<html>".as_slice(), &good[8..]].concat(),
            "corrupt",
        ),
        (
            "web page behind the header",
            b"%PDF-1.4\n<html><script>alert(1)</script></html>\nxref\nstartxref\n9\n%%EOF\n".to_vec(),
            "corrupt",
        ),
        (
            "data after %%EOF",
            [good.as_slice(), b"<script>x</script>"].concat(),
            "corrupt",
        ),
        (
            "startxref past the end",
            String::from_utf8_lossy(&good)
                .replace(&format!("startxref\n{xref}\n"), "startxref\n99999\n")
                .into_bytes(),
            "corrupt",
        ),
        (
            "startxref off target",
            String::from_utf8_lossy(&good)
                .replace(
                    &format!("startxref\n{xref}\n"),
                    &format!("startxref\n{}\n", xref + 2),
                )
                .into_bytes(),
            "corrupt",
        ),
        (
            "startxref zero",
            String::from_utf8_lossy(&good)
                .replace(&format!("startxref\n{xref}\n"), "startxref\n0\n")
                .into_bytes(),
            "corrupt",
        ),
        (
            "startxref not a number",
            String::from_utf8_lossy(&good)
                .replace(&format!("startxref\n{xref}\n"), "startxref\n12a\n")
                .into_bytes(),
            "corrupt",
        ),
        (
            "startxref overflows",
            String::from_utf8_lossy(&good)
                .replace(
                    &format!("startxref\n{xref}\n"),
                    "startxref\n99999999999999999999999\n",
                )
                .into_bytes(),
            "corrupt",
        ),
        (
            "no /Root",
            String::from_utf8_lossy(&good)
                .replace("/Root", "/Rooz")
                .into_bytes(),
            "corrupt",
        ),
    ];
    for (name, bytes, code) in cases {
        for chunk in [1, 5, 1 << 16] {
            match check_pdf(&bytes, chunk) {
                Ok(()) => panic!("{name}: accepted"),
                Err(e) => assert_eq!(e.code(), code, "{name} ({chunk}): {e}"),
            }
        }
    }
    assert!(matches!(check_pdf(b"", 1), Err(ContentError::Empty)));
    assert_eq!(check_pdf_header(b"%PDF-1.4%\xe2\xe3\xcf\xd3\n").ok(), Some(8));
    assert_eq!(check_pdf_header(b"%PDF-2.0\r\n").ok(), Some(9));
    // Whitespace and NULs after %%EOF are what real writers leave.
    check_pdf(&[good.as_slice(), b"\r\n\0\0 "].concat(), 10).expect("trailing whitespace");
}

#[test]
fn gif_with_a_script_sniffs_but_is_not_proven() {
    let polyglots: [&[u8]; 3] = [
        b"GIF89a<script>alert(document.cookie)</script>",
        b"GIF89a/*<svg onload=alert(1)>*/=1;alert(1)",
        // Tiny plausible screen, then HTML where the blocks should be.
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00<html><script>alert(1)</script></html>",
    ];
    for p in polyglots {
        assert_eq!(
            sniff(p, true),
            Ok(Some(Kind::Gif)),
            "the first gate alone is fooled"
        );
        let e = prove(Kind::Gif, p).expect_err("script polyglot accepted");
        assert_eq!(e.code(), "corrupt", "{}: {e}", String::from_utf8_lossy(p));
    }
}

#[test]
fn other_content_is_not_a_kind_and_says_why() {
    let heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heicmiaf".to_vec();
    let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
    elf.resize(64, 0);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("zip", b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec(), "archive"),
        ("gzip", b"\x1f\x8b\x08\x00\x00\x00\x00\x00".to_vec(), "archive"),
        (
            "html",
            b"<!DOCTYPE html><html><body>hi</body></html>".to_vec(),
            "script_capable",
        ),
        (
            "svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>1</script></svg>".to_vec(),
            "script_capable",
        ),
        (
            "xml svg",
            b"\xef\xbb\xbf<?xml version=\"1.0\"?>\n<svg></svg>".to_vec(),
            "script_capable",
        ),
        ("shell", b"#!/bin/sh\nrm -rf /\n".to_vec(), "script_capable"),
        ("elf", elf, "unsupported_type"),
        ("exe", b"MZ\x90\x00\x03\x00\x00\x00".to_vec(), "unsupported_type"),
        ("heic", heic, "unsupported_type"),
        ("text", b"hello".to_vec(), "unsupported_type"),
        ("bare GIF", b"GIF".to_vec(), "truncated"),
        ("bare %PDF", b"%PDF".to_vec(), "truncated"),
        ("bare PNG", b"\x89PNG".to_vec(), "truncated"),
    ];
    for (name, bytes, code) in cases {
        assert_eq!(sniff(&bytes, true), Ok(None), "{name}");
        let verdict = admit(&bytes, true, &Kind::ALL).expect("complete");
        assert_eq!(verdict.err().map(|e| e.code()), Some(code), "{name}");
    }
    assert!(matches!(
        refusal(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"),
        ContentError::Unsupported {
            detected: Some("image/heif")
        }
    ));
}

#[test]
fn polyglot_that_infer_reads_otherwise_is_refused() {
    // A JPEG head that `infer` takes for a Mobipocket book (checked before images).
    let mut jpeg = image_of(Kind::Jpeg);
    jpeg[60..68].copy_from_slice(b"BOOKMOBI");
    assert_eq!(sniff(&jpeg, true), Ok(None));
}

#[test]
fn empty_and_magic_only() {
    assert_eq!(sniff(b"", true), Ok(None));
    assert_eq!(sniff(b"", false), Err(Incomplete));
    assert!(matches!(refusal(b""), ContentError::Empty));
    assert!(matches!(
        admit(b"", true, &Kind::ALL),
        Ok(Err(ContentError::Empty))
    ));
    let magic_only: [(Kind, &[u8]); 4] = [
        (Kind::Jpeg, b"\xff\xd8\xff\xe0"),
        (Kind::Png, b"\x89PNG\r\n\x1a\n"),
        (Kind::Gif, b"GIF89a"),
        (Kind::Webp, b"RIFF\x04\x00\x00\x00WEBPVP8 "),
    ];
    for (kind, bytes) in magic_only {
        assert!(matches!(prove(kind, b""), Err(ContentError::Empty)), "{kind:?}");
        assert!(matches!(
            prove(kind, bytes),
            Err(ContentError::Truncated | ContentError::Corrupt(_))
        ));
        // Part of a magic number: not even a candidate once the stream has ended.
        assert_eq!(sniff(&bytes[..2], true), Ok(None));
        assert!(
            matches!(prove(kind, &bytes[..2]), Err(ContentError::Truncated)),
            "{kind:?}"
        );
    }
    assert!(matches!(
        prove(Kind::Pdf, b"%PDF-1.4\n"),
        Err(ContentError::NotThisKind { .. })
    ));
    assert!(matches!(
        prove(Kind::Png, &image_of(Kind::Jpeg)),
        Err(ContentError::NotThisKind { .. })
    ));
}

#[test]
fn truncated_images_are_refused() {
    for kind in [Kind::Jpeg, Kind::Png, Kind::Gif, Kind::Webp] {
        let bytes = image_of(kind);
        for cut in [
            20,
            bytes.len() / 3,
            bytes.len() / 2,
            bytes.len() - 2,
            bytes.len() - 1,
        ] {
            match prove(kind, &bytes[..cut]) {
                Err(ContentError::Truncated) => {}
                other => panic!("{kind:?} cut at {cut}/{}: {other:?}", bytes.len()),
            }
        }
    }
}

#[test]
fn half_a_jpeg_is_refused_although_the_decoder_would_accept_it() {
    // zune-jpeg fills missing scan data with grey instead of failing; the walk to
    // end-of-image is what refuses it.
    let jpeg = encoded(ImageFormat::Jpeg, 200, 200);
    let half = &jpeg[..jpeg.len() / 2];
    assert!(image::load_from_memory_with_format(half, ImageFormat::Jpeg).is_ok());
    assert!(matches!(prove(Kind::Jpeg, half), Err(ContentError::Truncated)));
}

#[test]
fn jpeg_walk_skips_an_embedded_thumbnail() {
    // An EXIF-style APP1 segment holding a whole JPEG, end-of-image marker included.
    let thumb = image_of(Kind::Jpeg);
    let main = encoded(ImageFormat::Jpeg, 40, 30);
    let len = u16::try_from(thumb.len() + 8).expect("small thumbnail");
    let mut with_thumb = main[..2].to_vec();
    with_thumb.extend_from_slice(&[0xFF, 0xE1]);
    with_thumb.extend_from_slice(&len.to_be_bytes());
    with_thumb.extend_from_slice(b"Exif\0\0");
    with_thumb.extend_from_slice(&thumb);
    with_thumb.extend_from_slice(&main[2..]);
    assert_eq!(prove(Kind::Jpeg, &with_thumb).map(|i| i.width).ok(), Some(40));
    // The thumbnail's end-of-image does not stand in for the main image's.
    let cut = &with_thumb[..with_thumb.len() - 40];
    assert!(matches!(prove(Kind::Jpeg, cut), Err(ContentError::Truncated)));
}

#[test]
fn bytes_after_the_end_marker_are_allowed() {
    // Phones keep motion-photo video after a JPEG's end-of-image.
    for kind in [Kind::Jpeg, Kind::Png, Kind::Gif, Kind::Webp] {
        let bytes = [
            image_of(kind),
            b"\x00\x00\x00\x18ftypmp42 trailing video".to_vec(),
        ]
        .concat();
        prove(kind, &bytes).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    }
}

#[test]
fn pixel_flood_is_refused_from_the_header_fast() {
    let started = Instant::now();
    for (w, h) in [(100_000, 100_000), (12_001, 10), (12_000, 12_000), (1, 0)] {
        let flood = png_claiming(w, h);
        assert_eq!(sniff(&flood, true), Ok(Some(Kind::Png)));
        let e = prove(Kind::Png, &flood).expect_err("flood accepted");
        let expected = if h == 0 { "corrupt" } else { "too_large" };
        assert_eq!(e.code(), expected, "{w}x{h}: {e}");
    }
    // A GIF whose screen is tiny but whose frame claims 65535 x 65535.
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff\
        ,\x00\x00\x00\x00\xff\xff\xff\xff\x00\x02\x02\x44\x01\x00;";
    let e = prove(Kind::Gif, gif);
    assert!(matches!(e, Err(ContentError::TooLarge(_))), "{e:?}");
    // Only the header of a flood arrived: refused without decoding either way.
    let flood = png_claiming(100_000, 100_000);
    assert!(prove(Kind::Png, &flood[..33]).is_err());
    // A JPEG whose frame header claims 60000 x 60000.
    let mut jpeg = b"\xff\xd8\xff\xdb\x00\x43\x00".to_vec();
    jpeg.extend_from_slice(&[1u8; 64]);
    jpeg.extend_from_slice(b"\xff\xc0\x00\x0b\x08\xea\x60\xea\x60\x01\x01\x11\x00\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\x12\x34\xff\xd9");
    let e = prove(Kind::Jpeg, &jpeg);
    assert!(matches!(e, Err(ContentError::TooLarge(_))), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn allocation_limit_is_enforced() {
    let bytes = encoded(ImageFormat::Png, 64, 64);
    let tight = ImageLimits {
        max_alloc: 1000,
        ..ImageLimits::default()
    };
    let e = prove_image(Kind::Png, Cursor::new(&bytes), &tight).expect_err("over max_alloc");
    assert_eq!(e.code(), "too_large");
    let few_pixels = ImageLimits {
        max_pixels: 100,
        ..ImageLimits::default()
    };
    assert!(matches!(
        prove_image(Kind::Png, Cursor::new(&bytes), &few_pixels),
        Err(ContentError::TooLarge(_))
    ));
}

#[test]
fn prove_image_starts_at_the_reader_position() {
    let mut bytes = b"prefix".to_vec();
    bytes.extend_from_slice(&image_of(Kind::Png));
    let mut cursor = Cursor::new(bytes);
    cursor.set_position(6);
    assert_eq!(
        prove_image(Kind::Png, cursor, &ImageLimits::default())
            .map(|i| i.width)
            .ok(),
        Some(24)
    );
}

#[test]
fn sniff_waits_for_sniff_len_or_the_end() {
    let png = encoded(ImageFormat::Png, 200, 200);
    assert!(png.len() > SNIFF_LEN);
    assert_eq!(sniff(&png[..100], false), Err(Incomplete));
    assert_eq!(sniff(&png[..SNIFF_LEN - 1], false), Err(Incomplete));
    assert_eq!(sniff(&png[..SNIFF_LEN], false), Ok(Some(Kind::Png)));
    assert_eq!(sniff(&png, false), Ok(Some(Kind::Png)));
    assert_eq!(sniff(&png[..100], true), Ok(Some(Kind::Png)));
    // A prefix of a magic number waits; a head that can never match refuses at once.
    assert_eq!(sniff(b"%PD", false), Err(Incomplete));
    assert_eq!(sniff(b"RIFF\0\0\0\0WE", false), Err(Incomplete));
    assert_eq!(sniff(b"PK\x03\x04", false), Ok(None));
    assert_eq!(sniff(b"<", false), Ok(None));
    assert!(matches!(admit(b"\x89P", false, &Kind::ALL), Err(Incomplete)));
}

#[test]
fn messages_are_plain_sentences() {
    let all = [
        ContentError::Empty,
        ContentError::Truncated,
        ContentError::Corrupt(String::new()),
        ContentError::TooLarge(String::new()),
        ContentError::NotThisKind { expected: Kind::Pdf },
        ContentError::NotAllowed(Kind::Gif),
        ContentError::Unsupported { detected: None },
        ContentError::ScriptCapable {
            detected: "text/html",
        },
        ContentError::Archive {
            detected: "application/zip",
        },
        ContentError::Undecodable(String::new()),
        ContentError::Read(io::Error::other("disk")),
    ];
    let mut codes = std::collections::HashSet::new();
    for e in &all {
        let m = e.caller_message(crate::i18n::Lang::En.text());
        assert!(m.ends_with('.') && m.len() < 120 && m.is_ascii(), "{m}");
        for lang in crate::i18n::Lang::ALL {
            let m = e.caller_message(lang.text());
            assert!(m.ends_with('.') && m.chars().count() < 160, "{lang:?}: {m}");
        }
        assert!(codes.insert(e.code()));
        assert_eq!(e.is_caller_fault(), !matches!(e, ContentError::Read(_)));
    }
}

fn arbitrary_kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(Kind::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sniff_and_refusal_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..10_000), complete: bool) {
        let _ = sniff(&bytes, complete);
        let _ = admit(&bytes, complete, &Kind::ALL);
        let _ = refusal(&bytes);
    }

    #[test]
    fn prove_image_never_panics_on_arbitrary_bytes(kind in arbitrary_kind(), bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = prove(kind, &bytes);
    }

    #[test]
    fn prove_image_never_panics_on_damaged_images(
        kind in prop::sample::select(vec![Kind::Jpeg, Kind::Png, Kind::Gif, Kind::Webp]),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = image_of(kind);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let keep = cut.index(bytes.len() + 1).max(bytes.len() / 2);
        let _ = prove(kind, &bytes[..keep]);
    }

    #[test]
    fn pdf_check_never_panics_and_ignores_chunking(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..3000),
            (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(at, v)| {
                let mut p = pdf_classic(b"");
                let i = at.index(p.len());
                p[i] = v;
                p
            }),
        ],
        chunk in 1usize..300,
    ) {
        let whole = check_pdf(&bytes, bytes.len()).map_err(|e| e.code());
        let chunked = check_pdf(&bytes, chunk).map_err(|e| e.code());
        prop_assert_eq!(whole, chunked);
    }
}
