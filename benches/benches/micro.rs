//! The pure stages of an upload, timed alone: what each costs per token, per head and per
//! GB, so a regression shows in the stage that caused it. `cargo bench -p upgate-bench`.

use std::io::{Cursor, Read};
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use upgate_bench::files::{pdf, Multipart};
use upgate_gateway::seal::{DecryptReader, Header, Opener, RecipientSecretKey, Sealer};
use upgate_gateway::token::{self, LinkId, LinkKey, LinkKeyring};
use upgate_gateway::upload::{
    self, part_head,
    sniff::{self, Kind},
};

const MIB: usize = 1024 * 1024;

fn token_verify(c: &mut Criterion) {
    let key = LinkKey::new(1, &[9; 32]);
    let ring = LinkKeyring::new(vec![key.clone()], 1).unwrap();
    let tok = token::issue(&key, &LinkId::random().unwrap(), 4_000_000_000);
    let forged = {
        let mut t = tok.clone().into_bytes();
        t[30] = if t[30] == b'A' { b'B' } else { b'A' };
        String::from_utf8(t).unwrap()
    };
    let mut g = c.benchmark_group("token");
    g.bench_function("verify_valid", |b| {
        b.iter(|| token::verify(&ring, &tok, 1_000).unwrap())
    });
    g.bench_function("verify_forged", |b| {
        b.iter(|| token::verify(&ring, &forged, 1_000).unwrap_err())
    });
    g.finish();
}

/// Seals 16 MiB fed in 64 KiB pieces (as the body arrives), then opens it again.
fn seal(c: &mut Criterion) {
    let secret = RecipientSecretKey::from_bytes(1, [7; 32]);
    let recipient = secret.public();
    let plain = pdf(16 * MIB);
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.sample_size(20);
    let sealed = |plain: &[u8]| {
        let mut sealer = Sealer::new(&recipient, "f_00112233445566778899aabbccddeeff").unwrap();
        let mut out = sealer.header().to_vec();
        for piece in plain.chunks(64 * 1024) {
            sealer.push(piece, &mut out);
        }
        let header = Header::parse(sealer.header()).unwrap();
        let key = sealer.finish(&mut out);
        (out, Opener::new(header, key))
    };
    g.bench_function("seal_16MiB", |b| b.iter(|| sealed(&plain).0.len()));
    g.finish();
    // Per file, whatever its size: a fresh data key, an X25519 agreement, the key wrap.
    c.bench_function("seal/header_per_file", |b| {
        b.iter(|| Sealer::new(&recipient, "f_00112233445566778899aabbccddeeff").unwrap())
    });
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.sample_size(20);
    let (ciphertext, opener) = sealed(&plain);
    g.bench_function("unseal_16MiB", |b| {
        b.iter_batched(
            || opener.clone(),
            |opener| {
                let len = ciphertext.len() as u64;
                let mut reader = DecryptReader::new(Cursor::new(&ciphertext[..]), len, opener).unwrap();
                let mut buf = vec![0; 64 * 1024];
                let mut total = 0;
                loop {
                    match reader.read(&mut buf).unwrap() {
                        0 => break total,
                        n => total += n,
                    }
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn sniff_and_heads(c: &mut Criterion) {
    let allowed = [Kind::Pdf, Kind::Jpeg, Kind::Png];
    let head = pdf(64 * 1024);
    let head = &head[..sniff::SNIFF_LEN.min(head.len())];
    let mut g = c.benchmark_group("gates");
    g.bench_function("sniff_pdf", |b| {
        b.iter(|| sniff::admit(head, false, &allowed).unwrap().unwrap())
    });
    let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".repeat(100);
    g.bench_function("sniff_refused_zip", |b| {
        b.iter(|| sniff::admit(&zip, true, &allowed))
    });
    // A head as the parser hands it over: up to, not including, the empty line.
    let block = b"Content-Disposition: form-data; name=\"file\"; filename=\"sick-note scan 2026.pdf\"\r\n\
Content-Type: application/pdf";
    g.bench_function("part_head", |b| b.iter(|| part_head::check_head(block).unwrap()));
    let ct = b"multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW";
    g.bench_function("boundary", |b| b.iter(|| part_head::boundary(ct).unwrap()));
    g.finish();
}

/// The whole receive path (multipart, sniff, PDF check, SHA-256, seal, spool write and
/// fsync) over a 16 MiB body in 64 KiB chunks, spooled to tmpfs where there is one.
fn multipart_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let form = Multipart::pdf("statement.pdf");
    let body = Bytes::from(form.body(&pdf(16 * MIB)));
    let boundary = part_head::boundary(form.content_type.as_bytes()).unwrap();
    let recipient = RecipientSecretKey::from_bytes(1, [7; 32]).public();
    let spool = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let limits = upload::Limits {
        max_file_bytes: upload::MULTIPART_MAX_FILE_BYTES,
        allowed: vec![Kind::Pdf],
        decoders: Arc::new(tokio::sync::Semaphore::new(1)),
    };
    let mut g = c.benchmark_group("multipart");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.sample_size(20);
    // The room ledger each upload goes through (no watermark: a benchmark is not a disk test).
    let disk = upgate_gateway::disk::DiskWatch::new(spool.path(), 0);
    g.bench_function("receive_16MiB", |b| {
        b.iter(|| {
            let chunks: Vec<Result<Bytes, upgate_gateway::body::BodyError>> = (0..body.len())
                .step_by(64 * 1024)
                .map(|at| Ok(body.slice(at..(at + 64 * 1024).min(body.len()))))
                .collect();
            let stream = futures_util::stream::iter(chunks);
            let mut seen = upload::Seen::default();
            runtime.block_on(async {
                let received = upload::receive(
                    stream,
                    boundary.clone(),
                    &limits,
                    spool.path(),
                    disk.reserve(body.len() as u64).unwrap(),
                    &recipient,
                    &mut seen,
                )
                .await
                .unwrap();
                received.size
            })
        })
    });
    g.finish();
}

/// An image upload's last stages: the bounded decode that proves it (always run), and the
/// thumbnail and preview made from its pixels (resize, JPEG, seal), at a phone photo's
/// size, so what previews add to an image upload is read as a ratio of the decode.
fn image_previews(c: &mut Criterion) {
    let (w, h) = (4000u32, 3000u32);
    // A smooth gradient with grain: compresses like a photo, not like noise or a flat fill.
    let photo = image::RgbImage::from_fn(w, h, |x, y| {
        let grain = ((x.wrapping_mul(2654435761) ^ y.wrapping_mul(40503)) >> 28) as u8;
        image::Rgb([
            (x * 255 / w) as u8 ^ grain,
            (y * 255 / h) as u8,
            128u8.wrapping_add(grain),
        ])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
        .encode_image(&photo)
        .unwrap();
    let limits = sniff::ImageLimits::default();
    let recipient = RecipientSecretKey::from_bytes(1, [7; 32]).public();
    let key = upgate_gateway::storage::ObjectKey::random();
    let mut g = c.benchmark_group("image_12MP");
    g.sample_size(10);
    g.bench_function("prove_decode", |b| {
        b.iter(|| {
            sniff::prove_image_pixels(Kind::Jpeg, Cursor::new(&jpeg), &limits)
                .unwrap()
                .0
        })
    });
    let (_, pixels) = sniff::prove_image_pixels(Kind::Jpeg, Cursor::new(&jpeg), &limits).unwrap();
    g.bench_function("previews", |b| {
        b.iter(|| {
            upload::previews::make(&pixels, &key, &recipient)
                .unwrap()
                .sealed
                .len()
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    token_verify,
    seal,
    sniff_and_heads,
    multipart_path,
    image_previews
);
criterion_main!(benches);
