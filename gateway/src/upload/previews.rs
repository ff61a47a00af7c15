//! The pictures staff look at instead of an upload: a thumbnail and a preview, re-encoded
//! as baseline JPEG from the pixels the bounded decode already produced. Nothing of the
//! original file (its metadata, trailing bytes, embedded profiles or scripts) survives a
//! decode to pixels and an encode of them, so a browser never renders a caller's bytes.
//! Each is sealed like the file itself, for the same recipient, under its own key
//! (`ObjectKey::sidecar`), and its header names that key, so one cannot pass for another.

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, RgbImage};

use crate::seal::{RecipientPublicKey, SealError, Sealer};
use crate::storage::{ObjectKey, Sidecar};

/// Longest side of a thumbnail, and of a preview, in pixels.
pub const THUMB_SIDE: u32 = 320;
pub const PREVIEW_SIDE: u32 = 1280;
const QUALITY: u8 = 82;

/// The sidecars of one file, sealed and ready to store.
#[derive(Debug, Default)]
pub struct Previews {
    pub sealed: Vec<(ObjectKey, Vec<u8>)>,
}

/// The picture as RGB: borrowed when it is already (JPEG), else with transparent pixels laid
/// on white (JPEG has no alpha, and a black background would hide dark drawings on
/// transparent PNGs).
fn rgb(image: &DynamicImage) -> std::borrow::Cow<'_, RgbImage> {
    if let Some(rgb) = image.as_rgb8() {
        return std::borrow::Cow::Borrowed(rgb);
    }
    let rgba = image.to_rgba8();
    std::borrow::Cow::Owned(RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = u16::from(p[3]);
        let mix = |c: u8| ((u16::from(c) * a + 255 * (255 - a)) / 255) as u8;
        image::Rgb([mix(p[0]), mix(p[1]), mix(p[2])])
    }))
}

/// The image scaled (never up) to fit `side` × `side`. `thumbnail` averages the source
/// pixels under each target pixel in one pass: half the cost of a filtered resize on a
/// phone photo, and as smooth when shrinking (docs/performance.md, "Previews").
fn scale(image: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    let long = w.max(h);
    if long <= side {
        return image.clone();
    }
    // The aspect ratio kept: the longer side becomes `side`, the other in proportion.
    let fit =
        |n: u32| ((u64::from(n) * u64::from(side) + u64::from(long) / 2) / u64::from(long)).max(1) as u32;
    image::imageops::thumbnail(image, fit(w), fit(h))
}

fn jpeg(image: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, QUALITY).encode_image(image)?;
    Ok(out)
}

/// The image scaled (never up) to fit `side` × `side`, as JPEG.
pub fn encode(image: &DynamicImage, side: u32) -> Result<Vec<u8>, image::ImageError> {
    jpeg(&scale(&rgb(image), side))
}

fn seal(recipient: &RecipientPublicKey, key: &ObjectKey, plain: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut sealer = Sealer::new(recipient, key.as_str())?;
    let mut out = sealer.header().to_vec();
    sealer.push(plain, &mut out);
    sealer.finish(&mut out);
    Ok(out)
}

/// Both sidecars of `file`, sealed for `recipient`. Blocking (resize and encode): run it on
/// the blocking pool, where the decode ran.
pub fn make(
    image: &DynamicImage,
    file: &ObjectKey,
    recipient: &RecipientPublicKey,
) -> Result<Previews, String> {
    // The thumbnail is made from the preview, not from the full image again: one pass over
    // the photo's pixels, not two.
    let preview = scale(&rgb(image), PREVIEW_SIDE);
    let thumb = scale(&preview, THUMB_SIDE);
    let mut sealed = Vec::with_capacity(2);
    for (side, picture) in [(Sidecar::Thumb, &thumb), (Sidecar::Preview, &preview)] {
        let bytes = jpeg(picture).map_err(|e| format!("encode {side:?}: {e}"))?;
        let key = file.sidecar(side);
        let bytes = seal(recipient, &key, &bytes).map_err(|e| format!("seal {side:?}: {e}"))?;
        sealed.push((key, bytes));
    }
    Ok(Previews { sealed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GenericImageView, Rgba, RgbaImage};

    #[test]
    fn a_large_image_is_scaled_to_fit_and_a_small_one_is_not_enlarged() {
        let big = DynamicImage::ImageRgba8(RgbaImage::from_pixel(2000, 1000, Rgba([10, 20, 30, 255])));
        let thumb = image::load_from_memory(&encode(&big, THUMB_SIDE).unwrap()).unwrap();
        assert_eq!(thumb.dimensions(), (320, 160));
        let small = DynamicImage::ImageRgba8(RgbaImage::from_pixel(40, 30, Rgba([10, 20, 30, 255])));
        let same = image::load_from_memory(&encode(&small, PREVIEW_SIDE).unwrap()).unwrap();
        assert_eq!(same.dimensions(), (40, 30));
    }

    #[test]
    fn transparency_becomes_white_and_the_result_is_a_plain_jpeg() {
        let clear = DynamicImage::ImageRgba8(RgbaImage::from_pixel(16, 16, Rgba([0, 0, 0, 0])));
        let jpeg = encode(&clear, THUMB_SIDE).unwrap();
        assert_eq!(&jpeg[..3], &[0xFF, 0xD8, 0xFF]);
        let back = image::load_from_memory(&jpeg).unwrap().to_rgb8();
        assert!(
            back.pixels().all(|p| p.0.iter().all(|c| *c > 245)),
            "white, not black"
        );
    }

    #[test]
    fn sidecars_are_sealed_under_their_own_keys() {
        let secret = crate::seal::RecipientSecretKey::generate(7);
        let file = ObjectKey::random();
        let image = DynamicImage::ImageRgba8(RgbaImage::from_pixel(600, 400, Rgba([200, 10, 10, 255])));
        let made = make(&image, &file, &secret.public()).unwrap();
        let keys: Vec<&str> = made.sealed.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                file.sidecar(Sidecar::Thumb).as_str(),
                file.sidecar(Sidecar::Preview).as_str()
            ]
        );
        for (key, bytes) in &made.sealed {
            let header = crate::seal::Header::parse(bytes).unwrap();
            header.check_file_id(key.as_str()).unwrap();
            assert!(header.check_file_id(file.as_str()).is_err());
            let data_key = crate::seal::unwrap_key(&header, &secret).unwrap();
            let opener = crate::seal::Opener::new(header, data_key);
            let mut reader = crate::seal::DecryptReader::new(
                std::io::Cursor::new(bytes.clone()),
                bytes.len() as u64,
                opener,
            )
            .unwrap();
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut reader, &mut plain).unwrap();
            assert!(image::load_from_memory(&plain).is_ok());
        }
    }
}
