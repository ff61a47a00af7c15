//! Images: header limits, a walk to the format's end marker, then a bounded full decode.

use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::panic::{self, AssertUnwindSafe};

use super::*;

/// Limits for image proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Most pixels (width × height) an image may claim.
    pub max_pixels: u64,
    /// Most pixels along either side.
    pub max_side: u32,
    /// Most bytes the decoder may allocate, output buffer included.
    pub max_alloc: u64,
}

impl ImageLimits {
    /// 40 megapixels: above any phone camera's default, far below a pixel flood.
    pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;
    /// 12,000 px per side: panoramas fit, 100,000 × 1 tricks do not.
    pub const DEFAULT_MAX_SIDE: u32 = 12_000;
    /// 256 MiB: 40 MP of RGBA8 is 160 MiB, with room for decoder state.
    pub const DEFAULT_MAX_ALLOC: u64 = 256 * 1024 * 1024;

    fn check(&self, width: u32, height: u32) -> Result<(), ContentError> {
        if width == 0 || height == 0 {
            return Err(corrupt("image has no pixels"));
        }
        let pixels = u64::from(width) * u64::from(height);
        if width > self.max_side || height > self.max_side || pixels > self.max_pixels {
            return Err(ContentError::TooLarge(format!(
                "{width}x{height} over the limits of {} px per side and {} pixels",
                self.max_side, self.max_pixels
            )));
        }
        Ok(())
    }
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_pixels: Self::DEFAULT_MAX_PIXELS,
            max_side: Self::DEFAULT_MAX_SIDE,
            max_alloc: Self::DEFAULT_MAX_ALLOC,
        }
    }
}

/// What a proven image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Proves that `reader` (from its current position to its end) is a whole image of `kind`.
///
/// Blocking: callers run it on a blocking thread. In order: the magic number must be that of
/// `kind`; the file's blocks are walked to the format's end marker, allocating nothing
/// (truncated files are refused even where a decoder would be lenient, and so is
/// `GIF89a<script>`); the decoder reads the header and dimensions over `limits` are refused
/// before any pixel buffer exists (pixel floods); then the image is fully decoded with
/// `image::Limits` set (corrupt data and decoder bombs are refused).
/// Only the first frame of an animation is decoded, though every block is walked. Bytes after
/// the end marker are allowed, as phones store motion-photo video there.
pub fn prove_image<R: BufRead + Seek>(
    kind: Kind,
    reader: R,
    limits: &ImageLimits,
) -> Result<ImageInfo, ContentError> {
    prove_image_pixels(kind, reader, limits).map(|(info, _)| info)
}

/// [`prove_image`], keeping the decoded first frame (the previews are made from it, so the
/// image is decoded once, within the same limits).
pub fn prove_image_pixels<R: BufRead + Seek>(
    kind: Kind,
    mut reader: R,
    limits: &ImageLimits,
) -> Result<(ImageInfo, DynamicImage), ContentError> {
    let Some(format) = kind.image_format() else {
        return Err(ContentError::NotThisKind { expected: kind });
    };
    let start = reader.stream_position().map_err(ContentError::Read)?;
    let mut head = [0u8; 16];
    let got = read_up_to(&mut reader, &mut head)?;
    if got == 0 {
        return Err(ContentError::Empty);
    }
    match magic_of(kind, &head[..got]) {
        Magic::Full => {}
        Magic::Prefix => return Err(ContentError::Truncated),
        Magic::No => return Err(ContentError::NotThisKind { expected: kind }),
    }

    // Decoders are third-party code fed hostile bytes: a panic in one must become a refusal,
    // not a dead worker and a 500. The reader is not used again after a panic.
    let proven = panic::catch_unwind(AssertUnwindSafe(|| {
        let rewind = |r: &mut R| {
            r.seek(SeekFrom::Start(start))
                .map(drop)
                .map_err(ContentError::Read)
        };
        // The walk allocates nothing and refuses cut-off files and script polyglots
        // (`GIF89a<script>` has no valid block structure) before a decoder sees them.
        rewind(&mut reader)?;
        walk_to_end(kind, &mut reader)?;
        rewind(&mut reader)?;
        decode_bounded(format, &mut reader, limits)
    }));
    proven.unwrap_or_else(|_| Err(corrupt("the image decoder gave up on this file")))
}

pub(super) fn read_up_to<R: Read>(reader: &mut R, buf: &mut [u8]) -> Result<usize, ContentError> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ContentError::Read(e)),
        }
    }
    Ok(got)
}

/// Builds the decoder (which reads only the header), refuses dimensions over `limits` before
/// any pixel buffer exists, then decodes everything within the allocation limit.
pub(super) fn decode_bounded<R: BufRead + Seek>(
    format: ImageFormat,
    reader: &mut R,
    limits: &ImageLimits,
) -> Result<(ImageInfo, DynamicImage), ContentError> {
    let mut full = image::Limits::default();
    full.max_image_width = Some(limits.max_side);
    full.max_image_height = Some(limits.max_side);
    full.max_alloc = Some(limits.max_alloc);
    // Construction gets only the allocation limit (the PNG decoder takes it there), so the
    // dimension check below is ours and its message names the dimensions.
    let mut construction = image::Limits::no_limits();
    construction.max_alloc = Some(limits.max_alloc);
    let mut r = ImageReader::with_format(reader, format);
    r.limits(construction);
    let mut decoder = r.into_decoder().map_err(from_image_error)?;
    let (width, height) = decoder.dimensions();
    limits.check(width, height)?;
    // As `ImageReader::decode` does: the output buffer counts against the allocation limit,
    // and the decoder gets what is left for its own state.
    full.reserve(decoder.total_bytes())
        .map_err(|e| ContentError::TooLarge(format!("{width}x{height}: {e}")))?;
    decoder.set_limits(full).map_err(from_image_error)?;
    let pixels = DynamicImage::from_decoder(decoder).map_err(from_image_error)?;
    Ok((ImageInfo { width, height }, pixels))
}

pub(super) fn from_io_error(e: io::Error) -> ContentError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => ContentError::Truncated,
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => ContentError::Corrupt(e.to_string()),
        _ => ContentError::Read(e),
    }
}

pub(super) fn from_image_error(e: ImageError) -> ContentError {
    match e {
        ImageError::Limits(l) => ContentError::TooLarge(l.to_string()),
        ImageError::IoError(io) => from_io_error(io),
        ImageError::Unsupported(u) => ContentError::Undecodable(u.to_string()),
        ImageError::Decoding(d) => {
            // Decoders wrap "ran out of bytes" in their own error types; find it.
            let mut source = std::error::Error::source(&d);
            while let Some(s) = source {
                if s.downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::UnexpectedEof)
                {
                    return ContentError::Truncated;
                }
                source = s.source();
            }
            ContentError::Corrupt(d.to_string())
        }
        ImageError::Parameter(p) => ContentError::Corrupt(p.to_string()),
        ImageError::Encoding(e) => ContentError::Corrupt(e.to_string()),
    }
}

/// Byte-level reading for the structure walks: end of input is `Truncated`.
pub(super) struct Walk<'r, R> {
    r: &'r mut R,
}

impl<R: BufRead> Walk<'_, R> {
    /// The reader's buffered bytes, never empty: end of input is `Truncated`.
    fn fill(&mut self) -> Result<&[u8], ContentError> {
        // Retry interrupted reads first; the buffer is borrowed for the caller after.
        loop {
            match self.r.fill_buf() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(from_io_error(e)),
                Ok(_) => break,
            }
        }
        match self.r.fill_buf().map_err(from_io_error)? {
            [] => Err(ContentError::Truncated),
            buf => Ok(buf),
        }
    }

    fn byte(&mut self) -> Result<u8, ContentError> {
        let b = *self.fill()?.first().ok_or(ContentError::Truncated)?;
        self.r.consume(1);
        Ok(b)
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], ContentError> {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.byte()?;
        }
        Ok(out)
    }

    fn skip(&mut self, mut n: u64) -> Result<(), ContentError> {
        while n > 0 {
            let have = self.fill()?.len();
            let take = usize::try_from(n).map_or(have, |n| n.min(have));
            self.r.consume(take);
            n -= take as u64;
        }
        Ok(())
    }

    /// Skips to the next 0xFF byte and consumes it.
    fn skip_past_ff(&mut self) -> Result<(), ContentError> {
        loop {
            let buf = self.fill()?;
            match buf.iter().position(|&b| b == 0xFF) {
                Some(p) => {
                    self.r.consume(p + 1);
                    return Ok(());
                }
                None => {
                    let n = buf.len();
                    self.r.consume(n);
                }
            }
        }
    }
}

/// Walks the file's blocks to the end marker of its format.
pub(super) fn walk_to_end<R: BufRead>(kind: Kind, reader: &mut R) -> Result<(), ContentError> {
    let mut w = Walk { r: reader };
    match kind {
        Kind::Jpeg => walk_jpeg(&mut w),
        Kind::Png => walk_png(&mut w),
        Kind::Gif => walk_gif(&mut w),
        Kind::Webp => walk_webp(&mut w),
        Kind::Pdf => Err(ContentError::NotThisKind { expected: kind }),
    }
}

/// JPEG: segments up to each start-of-scan, entropy-coded data after it, until end-of-image.
pub(super) fn walk_jpeg<R: BufRead>(w: &mut Walk<'_, R>) -> Result<(), ContentError> {
    w.skip(2)?; // SOI, checked by the magic number
    let mut in_scan = false;
    loop {
        // Like libjpeg, tolerate stray bytes before a marker; the decoder judges the data.
        w.skip_past_ff()?;
        let mut m = w.byte()?;
        while m == 0xFF {
            m = w.byte()?;
        }
        match m {
            0xD9 => return Ok(()),
            // Stuffed 0xFF and restart markers belong to entropy-coded data.
            0x00 | 0xD0..=0xD7 if in_scan => {}
            0x01 | 0xD0..=0xD7 => {}
            0x00 | 0xD8 => return Err(corrupt("misplaced JPEG marker")),
            _ => {
                let [hi, lo] = w.bytes::<2>()?;
                let len = u16::from_be_bytes([hi, lo]);
                if len < 2 {
                    return Err(corrupt("JPEG segment length below 2"));
                }
                w.skip(u64::from(len - 2))?;
                in_scan = m == 0xDA;
            }
        }
    }
}

/// PNG: length-prefixed chunks from `IHDR` to `IEND`.
pub(super) fn walk_png<R: BufRead>(w: &mut Walk<'_, R>) -> Result<(), ContentError> {
    w.skip(8)?;
    let mut first = true;
    loop {
        let len = u32::from_be_bytes(w.bytes::<4>()?);
        let name = w.bytes::<4>()?;
        if len > 0x7FFF_FFFF || !name.iter().all(u8::is_ascii_alphabetic) {
            return Err(corrupt("malformed PNG chunk"));
        }
        if first && &name != b"IHDR" {
            return Err(corrupt("PNG does not start with IHDR"));
        }
        first = false;
        w.skip(u64::from(len) + 4)?; // data and CRC (the decoder checks CRCs)
        if &name == b"IEND" {
            return Ok(());
        }
    }
}

/// GIF: header, palettes, extension and image blocks as sub-block chains, then the trailer.
pub(super) fn walk_gif<R: BufRead>(w: &mut Walk<'_, R>) -> Result<(), ContentError> {
    fn sub_blocks<R: BufRead>(w: &mut Walk<'_, R>) -> Result<(), ContentError> {
        loop {
            match w.byte()? {
                0 => return Ok(()),
                n => w.skip(u64::from(n))?,
            }
        }
    }
    fn palette(flags: u8) -> u64 {
        if flags & 0x80 != 0 {
            3 << ((flags & 0x07) + 1)
        } else {
            0
        }
    }
    w.skip(6)?;
    let screen = w.bytes::<7>()?;
    w.skip(palette(screen[4]))?;
    loop {
        match w.byte()? {
            0x21 => {
                w.byte()?; // extension label
                sub_blocks(w)?;
            }
            0x2C => {
                let descriptor = w.bytes::<9>()?;
                w.skip(palette(descriptor[8]))?;
                w.byte()?; // LZW minimum code size
                sub_blocks(w)?;
            }
            0x3B => return Ok(()),
            _ => return Err(corrupt("unknown GIF block")),
        }
    }
}

/// WebP: the RIFF chunk must be whole; `image-webp` checks what is inside.
pub(super) fn walk_webp<R: BufRead>(w: &mut Walk<'_, R>) -> Result<(), ContentError> {
    let riff = w.bytes::<8>()?;
    let size = u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]]);
    if size < 4 {
        return Err(corrupt("RIFF chunk too small"));
    }
    // RIFF pads odd sizes to even.
    w.skip(u64::from(size) + u64::from(size & 1))
}
