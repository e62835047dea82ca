//! Making the resized copies of an accepted image. The costly part of a
//! photo is decoding it, so a JPEG is decoded at a reduced DCT scale (1/2,
//! 1/4 or 1/8: libvips calls this "shrink on load") no smaller than the
//! largest size wanted, and each smaller size is resized from the one above
//! it rather than from the original.

use std::io::Cursor;

use fast_image_resize::images::{TypedImage, TypedImageRef};
use fast_image_resize::pixels::{U8x3, U8x4};
use fast_image_resize::{FilterType, PixelTrait, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, RgbImage, RgbaImage};

use super::{Format, ImagingError, Limits, Stop, encode_with_quality, strip};

/// One size to make: its name (used in URLs) and its target width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeSpec {
    pub name: String,
    pub width: u32,
}

/// A finished variant, encoded in the original's format.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

/// Pixels with the channel layout the encoders and resizer share.
enum Pixels {
    Rgb(RgbImage),
    Rgba(RgbaImage),
}

impl Pixels {
    fn width(&self) -> u32 {
        match self {
            Self::Rgb(i) => i.width(),
            Self::Rgba(i) => i.width(),
        }
    }

    fn height(&self) -> u32 {
        match self {
            Self::Rgb(i) => i.height(),
            Self::Rgba(i) => i.height(),
        }
    }

    fn from_dynamic(image: DynamicImage) -> Self {
        if image.color().has_alpha() {
            Self::Rgba(image.into_rgba8())
        } else {
            Self::Rgb(image.into_rgb8())
        }
    }

    fn into_dynamic(self) -> DynamicImage {
        match self {
            Self::Rgb(i) => DynamicImage::ImageRgb8(i),
            Self::Rgba(i) => DynamicImage::ImageRgba8(i),
        }
    }

    fn resize(&self, resizer: &mut Resizer, width: u32, height: u32) -> Result<Self, ImagingError> {
        let fail = |e: &dyn std::fmt::Display| ImagingError::Corrupt(format!("resize failed: {e}"));
        match self {
            Self::Rgb(src) => {
                let raw = resize_typed::<U8x3>(resizer, src, width, height)?;
                RgbImage::from_raw(width, height, raw)
                    .map(Self::Rgb)
                    .ok_or_else(|| fail(&"buffer size"))
            }
            Self::Rgba(src) => {
                let raw = resize_typed::<U8x4>(resizer, src, width, height)?;
                RgbaImage::from_raw(width, height, raw)
                    .map(Self::Rgba)
                    .ok_or_else(|| fail(&"buffer size"))
            }
        }
    }
}

/// Resizes packed pixels of one known layout. The typed call (rather than
/// one that dispatches on the pixel type at run time) keeps the code for
/// the dozen layouts Kitteh never uses out of the binary.
fn resize_typed<P: PixelTrait>(
    resizer: &mut Resizer,
    src: &image::ImageBuffer<impl image::Pixel<Subpixel = u8>, Vec<u8>>,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, ImagingError> {
    let fail = |e: &dyn std::fmt::Display| ImagingError::Corrupt(format!("resize failed: {e}"));
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    let src = TypedImageRef::<P>::from_buffer(src.width(), src.height(), src.as_raw())
        .map_err(|e| fail(&e))?;
    let mut raw = vec![0u8; width as usize * height as usize * P::size()];
    let mut dst = TypedImage::<P>::from_buffer(width, height, &mut raw).map_err(|e| fail(&e))?;
    resizer
        .resize_typed(&src, &mut dst, &options)
        .map_err(|e| fail(&e))?;
    Ok(raw)
}

/// The width and height a size has for an image of `w`×`h`: aspect ratio
/// kept, never upscaled, never below one pixel.
pub fn target_size(w: u32, h: u32, target_width: u32) -> (u32, u32) {
    let width = target_width.min(w).max(1);
    let height =
        ((u64::from(h) * u64::from(width) + u64::from(w) / 2) / u64::from(w.max(1))).max(1);
    (width, height.min(u64::from(u32::MAX)) as u32)
}

/// A decoded original, ready to be resized: pixels (perhaps at a reduced
/// DCT scale), the original's full size and format, and its ICC profile.
/// Made by the upload's own check (so the sizes need no second decode) or
/// by a resize job.
pub struct Decoded {
    pixels: Pixels,
    format: Format,
    width: u32,
    height: u32,
    icc: Option<Vec<u8>>,
}

impl Decoded {
    /// Pixels decoded at full size (the image upright), for `format`.
    pub(crate) fn full(image: DynamicImage, format: Format, icc: Option<Vec<u8>>) -> Self {
        let (width, height) = (image.width(), image.height());
        Self {
            pixels: Pixels::from_dynamic(image),
            format,
            width,
            height,
            icc,
        }
    }

    /// The original's full width and height.
    pub fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The width and height of the pixels held (smaller after a scaled decode).
    pub fn decoded_dimensions(&self) -> (u32, u32) {
        (self.pixels.width(), self.pixels.height())
    }
}

/// What a JPEG's header says about decoding it at a reduced scale.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JpegKind {
    /// 8-bit RGB or grey. CMYK and 16-bit JPEGs are rare in photos and
    /// take the general decoder, at full size.
    pub scalable: bool,
    /// Progressive: the decoder keeps every coefficient of the image (two
    /// bytes per pixel and component) until the last scan, whatever the
    /// output scale.
    pub progressive: bool,
}

pub(crate) fn jpeg_kind(bytes: &[u8]) -> Result<JpegKind, ImagingError> {
    let mut header = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    header
        .read_info()
        .map_err(|e| ImagingError::Corrupt(e.to_string()))?;
    let info = header
        .info()
        .ok_or_else(|| ImagingError::Corrupt("JPEG without a frame header".into()))?;
    Ok(JpegKind {
        scalable: matches!(
            info.pixel_format,
            jpeg_decoder::PixelFormat::RGB24 | jpeg_decoder::PixelFormat::L8
        ),
        progressive: info.coding_process == jpeg_decoder::CodingProcess::DctProgressive,
    })
}

/// Bytes `decode_jpeg_scaled` allocates at most for a `w`×`h` JPEG of
/// `file` bytes whose largest size is `largest` wide: three bytes a pixel
/// out at the scale it picks and the decoder's planes beside them, a
/// progressive file's coefficients (two bytes a pixel and component,
/// whatever the scale), and the copy of its DC scans (at most the file).
pub(crate) fn jpeg_scaled_cost(kind: JpegKind, w: u32, h: u32, largest: u32, file: usize) -> u64 {
    let (tw, th) = target_size(w, h, largest);
    let scale = jpeg_scale(w, h, tw, th);
    let out = u64::from(w.div_ceil(scale)) * u64::from(h.div_ceil(scale)) * 3 * 2;
    let coefficients = if kind.progressive {
        u64::from(w) * u64::from(h) * 2 * 3
    } else {
        0
    };
    out + coefficients + file as u64
}

/// Bytes the sizes themselves take while they are made and encoded.
pub(crate) fn sizes_cost(w: u32, h: u32, sizes: &[SizeSpec]) -> u64 {
    sizes
        .iter()
        .map(|s| {
            let (sw, sh) = target_size(w, h, s.width);
            u64::from(sw) * u64::from(sh) * 4 * 2
        })
        .sum()
}

/// The largest of 1/8, 1/4, 1/2 and 1/1 that still covers `tw`×`th`.
fn jpeg_scale(w: u32, h: u32, tw: u32, th: u32) -> u32 {
    [8u32, 4, 2, 1]
        .into_iter()
        .find(|s| w.div_ceil(*s) >= tw && h.div_ceil(*s) >= th)
        .unwrap_or(1)
}

/// Decodes a JPEG at the smallest DCT scale (1/8, 1/4, 1/2 or 1/1) that
/// still covers `largest` pixels of width. The scale only shortens the
/// inverse DCT: a baseline file's entropy-coded data is decoded in full,
/// so a corrupt or cut stream fails here as it would at full size. At 1/8
/// a progressive file's DC scans alone are decoded (see `decode_checked`
/// for what that proves). None for a JPEG the scaled decoder does not
/// handle (`jpeg_kind`).
pub(crate) fn decode_jpeg_scaled(
    bytes: &[u8],
    largest: u32,
    stop: &Stop,
) -> Result<Option<Decoded>, ImagingError> {
    let (w, h) = super::dimensions(Format::Jpeg, bytes)?;
    let (tw, th) = target_size(w, h, largest);
    let clamp = |v: u32| v.min(u32::from(u16::MAX)) as u16;
    let failed = |e: jpeg_decoder::Error| {
        stop.check()
            .err()
            .unwrap_or_else(|| ImagingError::Corrupt(e.to_string()))
    };
    let mut decoder = jpeg_decoder::Decoder::new(super::input(bytes, stop.clone()));
    let (sw, sh) = decoder.scale(clamp(tw), clamp(th)).map_err(failed)?;
    // At 1/8 scale only the DC coefficients are used, so a progressive
    // JPEG's AC scans (most of its bytes) need not be decoded at all.
    let eighth = u32::from(sw) == w.div_ceil(8) && u32::from(sh) == h.div_ceil(8);
    let dc_only = if eighth {
        progressive_dc_scans(bytes)
    } else {
        None
    };
    if let Some(dc) = &dc_only {
        decoder = jpeg_decoder::Decoder::new(super::input(dc, stop.clone()));
        decoder.scale(clamp(tw), clamp(th)).map_err(failed)?;
    }
    let raw = decoder.decode().map_err(failed)?;
    let info = decoder
        .info()
        .ok_or_else(|| ImagingError::Corrupt("JPEG without a frame header".into()))?;
    let (dw, dh) = (u32::from(info.width), u32::from(info.height));
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => RgbImage::from_raw(dw, dh, raw),
        jpeg_decoder::PixelFormat::L8 => {
            let grey = image::GrayImage::from_raw(dw, dh, raw);
            grey.map(|g| DynamicImage::ImageLuma8(g).into_rgb8())
        }
        jpeg_decoder::PixelFormat::L16 | jpeg_decoder::PixelFormat::CMYK32 => return Ok(None),
    }
    .ok_or_else(|| ImagingError::Corrupt("decoded JPEG has the wrong size".into()))?;
    Ok(Some(Decoded {
        pixels: Pixels::Rgb(rgb),
        format: Format::Jpeg,
        width: w,
        height: h,
        icc: strip::icc_profile(strip::Container::Jpeg, bytes),
    }))
}

/// Decodes a stored original, at a reduced scale when that is enough for
/// `largest` pixels of width; gives up when `stop` says so.
pub(crate) fn decode(
    bytes: &[u8],
    format: Format,
    largest: u32,
    limits: &Limits,
    stop: &Stop,
) -> Result<Decoded, ImagingError> {
    let (w, h) = super::dimensions(format, bytes)?;
    super::check_limits(w, h, limits)?;
    if format == Format::Jpeg
        && let Some(decoded) = decode_jpeg_scaled(bytes, largest, stop)?
    {
        return Ok(decoded);
    }
    let (pixels, icc) = decode_general(bytes, format, limits, stop)?;
    Ok(Decoded {
        pixels,
        format,
        width: w,
        height: h,
        icc,
    })
}

/// A progressive JPEG with only its DC scans (spectral start 0) kept: the
/// same image at 1/8 scale, for a fraction of the decoding. None for a
/// baseline JPEG, or when the structure is not what we expect (the caller
/// then decodes the whole file).
pub fn progressive_dc_scans(bytes: &[u8]) -> Option<Vec<u8>> {
    let be16 = |at: usize| -> Option<usize> {
        Some(usize::from(*bytes.get(at)?) << 8 | usize::from(*bytes.get(at + 1)?))
    };
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut out = vec![0xFF, 0xD8];
    let mut pos = 2;
    let mut progressive = false;
    let mut kept_scans = 0;
    loop {
        if *bytes.get(pos)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(pos + 1)?;
        match marker {
            0xFF => {
                pos += 1;
                continue;
            }
            0xD9 => break,
            _ => {}
        }
        let len = be16(pos + 2)?;
        let segment_end = pos + 2 + len;
        let segment = bytes.get(pos..segment_end)?;
        match marker {
            0xC2 => progressive = true,
            // Baseline, extended or arithmetic: not for this shortcut.
            0xC0 | 0xC1 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            _ => {}
        }
        if marker != 0xDA {
            // Application segments carry nothing the decoder needs.
            if !(0xE0..=0xEF).contains(&marker) && marker != 0xFE {
                out.extend_from_slice(segment);
            }
            pos = segment_end;
            continue;
        }
        // A scan: its entropy-coded data runs to the next marker that is
        // neither a stuffed 0xFF00 nor a restart marker.
        let components = usize::from(*bytes.get(pos + 4)?);
        let spectral_start = *bytes.get(pos + 5 + 2 * components)?;
        let mut end = segment_end;
        loop {
            if *bytes.get(end)? == 0xFF {
                let next = *bytes.get(end + 1)?;
                if next != 0x00 && !(0xD0..=0xD7).contains(&next) {
                    break;
                }
                end += 2;
            } else {
                end += 1;
            }
        }
        if spectral_start == 0 {
            out.extend_from_slice(bytes.get(pos..end)?);
            kept_scans += 1;
        }
        pos = end;
    }
    if !progressive || kept_scans == 0 {
        return None;
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    Some(out)
}

/// Full decode through the `image` crate; a GIF yields its first frame.
fn decode_general(
    bytes: &[u8],
    format: Format,
    limits: &Limits,
    stop: &Stop,
) -> Result<(Pixels, Option<Vec<u8>>), ImagingError> {
    let mut reader = super::reader(bytes, format, stop.clone());
    reader.limits(super::decoder_limits(limits));
    let failed = |e: image::ImageError| stop.check().err().unwrap_or_else(|| super::corrupt(e));
    let mut decoder = reader.into_decoder().map_err(failed)?;
    let icc = decoder.icc_profile().ok().flatten();
    let image = DynamicImage::from_decoder(decoder).map_err(failed)?;
    Ok((Pixels::from_dynamic(image), icc))
}

/// Bytes making the sizes of a stored original allocates at most: the
/// decode (a JPEG at the DCT scale `decode` will pick, anything else at
/// full size in the decoder's own output type, a GIF's first frame painted
/// on its logical screen), the conversion to 8-bit RGB(A), and the sizes
/// themselves. Reads headers only.
pub fn decode_cost(
    original: &[u8],
    format: Format,
    sizes: &[SizeSpec],
    limits: &Limits,
) -> Result<u64, ImagingError> {
    const SLACK: u64 = 4 << 20;
    let (w, h) = super::dimensions(format, original)?;
    super::check_limits(w, h, limits)?;
    let largest = sizes.iter().map(|s| s.width).max().unwrap_or(1);
    let made = sizes_cost(w, h, sizes);
    if format == Format::Jpeg {
        let kind = jpeg_kind(original)?;
        let decode = if kind.scalable {
            jpeg_scaled_cost(kind, w, h, largest, original.len())
        } else {
            // CMYK and 16-bit JPEGs take the general decoder, at full size.
            u64::from(w) * u64::from(h) * 8 * 2
        };
        return Ok(decode + made + SLACK);
    }
    let mut reader = super::reader(original, format, super::Stop::never());
    reader.limits(super::decoder_limits(limits));
    let decoder = reader.into_decoder().map_err(super::corrupt)?;
    let output = decoder.total_bytes();
    let rgba = u64::from(w) * u64::from(h) * 4;
    Ok(output + rgba + made + SLACK)
}

/// Makes every size of a stored original, largest first, each resized from
/// the previous one. Sizes wider than the original keep its width. The
/// decode gives up when `stop` says so (a resize job's
/// `limits.decode_seconds`).
pub fn render(
    original: &[u8],
    format: Format,
    sizes: &[SizeSpec],
    jpeg_quality: u8,
    limits: &Limits,
    stop: &Stop,
) -> Result<Vec<Rendered>, ImagingError> {
    let Some(largest) = sizes.iter().map(|s| s.width).max() else {
        return Ok(Vec::new());
    };
    let decoded = decode(original, format, largest, limits, stop)?;
    render_decoded(decoded, sizes, jpeg_quality)
}

/// Makes every size from pixels already decoded, largest first, each
/// resized from the previous one, encoded in the original's format.
pub fn render_decoded(
    decoded: Decoded,
    sizes: &[SizeSpec],
    jpeg_quality: u8,
) -> Result<Vec<Rendered>, ImagingError> {
    let mut order: Vec<&SizeSpec> = sizes.iter().collect();
    order.sort_by_key(|s| std::cmp::Reverse(s.width));
    let Decoded {
        pixels: mut current,
        format,
        width: w,
        height: h,
        icc,
    } = decoded;
    let mut resizer = Resizer::new();
    let mut out = Vec::with_capacity(order.len());
    for size in order {
        let (tw, th) = target_size(w, h, size.width);
        if (current.width(), current.height()) != (tw, th) {
            current = current.resize(&mut resizer, tw, th)?;
        }
        let image = current.into_dynamic();
        let bytes = encode_with_quality(&image, format, icc.as_deref(), jpeg_quality)?;
        out.push(Rendered {
            name: size.name.clone(),
            width: tw,
            height: th,
            bytes,
        });
        current = Pixels::from_dynamic(image);
    }
    Ok(out)
}

/// A BlurHash (<https://blurha.sh>) of a picture, from the smallest of its
/// made sizes: a few dozen characters that pages paint while the picture
/// loads. None when there is no size, or it cannot be read back.
pub fn blurhash_of(rendered: &[Rendered]) -> Option<String> {
    let smallest = rendered.iter().min_by_key(|r| r.width)?;
    // A size is at most a few hundred pixels: decoding it again is cheap,
    // and 32 px is all a BlurHash of 4×3 components can show.
    let image = image::load_from_memory(&smallest.bytes).ok()?;
    let thumb = image.thumbnail(32, 32).to_rgba8();
    let (w, h) = thumb.dimensions();
    let (x, y) = if w >= h { (4, 3) } else { (3, 4) };
    blurhash::encode(x, y, w, h, thumb.as_raw()).ok()
}

/// A BlurHash painted as a small PNG of the picture's aspect ratio, for a
/// page to show (as a `data:` URL: no inline style or script needed).
pub fn blurhash_png(hash: &str, width: u32, height: u32) -> Option<Vec<u8>> {
    let (w, h) = if width >= height {
        (32, (32 * height / width.max(1)).clamp(1, 32))
    } else {
        ((32 * width / height.max(1)).clamp(1, 32), 32)
    };
    let pixels = blurhash::decode(hash, w, h, 1.0).ok()?;
    let image = RgbaImage::from_raw(w, h, pixels)?;
    let mut png = Vec::new();
    DynamicImage::ImageRgba8(image)
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .ok()?;
    Some(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blurhash_is_made_from_the_smallest_size_and_decodes_to_its_colour() {
        let red = RgbImage::from_pixel(120, 80, image::Rgb([200, 30, 30]));
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(red)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let rendered = vec![
            Rendered {
                name: "large".into(),
                width: 300,
                height: 200,
                bytes: Vec::new(),
            },
            Rendered {
                name: "tiny".into(),
                width: 120,
                height: 80,
                bytes: png,
            },
        ];
        let hash = blurhash_of(&rendered).expect("a hash from the tiny size");
        assert!((6..=40).contains(&hash.len()), "{hash}");
        let pixels = blurhash::decode(&hash, 4, 4, 1.0).unwrap();
        let (r, g, b) = (pixels[0], pixels[1], pixels[2]);
        assert!(r > 150 && g < 80 && b < 80, "{r} {g} {b}");
        assert_eq!(blurhash_of(&[]), None);
        let png = blurhash_png(&hash, 120, 80).unwrap();
        let painted = image::load_from_memory(&png).unwrap();
        assert_eq!((painted.width(), painted.height()), (32, 21));
        assert_eq!(blurhash_png("not a hash", 10, 10), None);
    }

    fn progressive_jpeg(w: u32, h: u32) -> Vec<u8> {
        // The image crate writes baseline JPEGs only, so build the
        // progressive one with jpeg-encoder, which writes spectral selection.
        let rgb = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 3 % 256) as u8,
                ((x ^ y) % 256) as u8,
            ])
        });
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
        enc.set_progressive(true);
        enc.encode(
            rgb.as_raw(),
            w as u16,
            h as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .unwrap();
        out
    }

    #[test]
    fn dc_scans_alone_decode_to_the_same_eighth_scale_image() {
        let jpeg = progressive_jpeg(640, 480);
        let dc = progressive_dc_scans(&jpeg).expect("progressive");
        assert!(dc.len() * 3 < jpeg.len(), "{} vs {}", dc.len(), jpeg.len());
        let eighth = |bytes: &[u8]| {
            let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
            d.scale(80, 60).unwrap();
            d.decode().unwrap()
        };
        assert_eq!(eighth(&dc), eighth(&jpeg));
    }

    /// `jpeg` with the entropy-coded data of its first DC scan (`ac`
    /// false) or first AC scan made of stuffed 0xFF bytes: a run of one
    /// bits, which no Huffman table may use as a code.
    fn broken_scan(jpeg: &[u8], ac: bool) -> Vec<u8> {
        let spectral_start = |sos: usize| jpeg[sos + 5 + 2 * usize::from(jpeg[sos + 4])];
        let sos = jpeg
            .windows(2)
            .enumerate()
            .filter(|(_, w)| *w == [0xFF, 0xDA])
            .map(|(i, _)| i)
            .find(|&sos| (spectral_start(sos) > 0) == ac)
            .unwrap();
        let data = sos + 2 + (usize::from(jpeg[sos + 2]) << 8 | usize::from(jpeg[sos + 3]));
        let mut out = jpeg[..data].to_vec();
        out.extend([0xFF, 0x00].repeat(64));
        let next = (data..jpeg.len() - 1)
            .find(|&i| jpeg[i] == 0xFF && jpeg[i + 1] != 0 && !(0xD0..=0xD7).contains(&jpeg[i + 1]))
            .unwrap();
        out.extend_from_slice(&jpeg[next..]);
        out
    }

    #[test]
    fn at_an_eighth_only_a_progressive_jpegs_dc_scans_are_read() {
        let jpeg = progressive_jpeg(640, 480);
        let stop = Stop::never();
        let broken_ac = broken_scan(&jpeg, true);
        // 1/8 scale (80×60): the AC scans are never read, so a broken one
        // passes unseen; that is all a DC-only decode can prove.
        let eighth = decode_jpeg_scaled(&broken_ac, 80, &stop).unwrap().unwrap();
        assert_eq!(eighth.decoded_dimensions(), (80, 60));
        // 1/4 scale needs the AC scans: the broken one is refused.
        let quarter = decode_jpeg_scaled(&broken_ac, 160, &stop);
        assert!(
            matches!(quarter, Err(ImagingError::Corrupt(_))),
            "{:?}",
            quarter.map(|d| d.map(|d| d.decoded_dimensions()))
        );
        // A broken DC scan is refused at every scale.
        let broken_dc = broken_scan(&jpeg, false);
        for largest in [80, 160, 640] {
            assert!(decode_jpeg_scaled(&broken_dc, largest, &stop).is_err());
        }
        // The sound file decodes to the scale the largest size needs.
        let sound = decode_jpeg_scaled(&jpeg, 300, &stop).unwrap().unwrap();
        assert_eq!(sound.decoded_dimensions(), (320, 240));
        assert_eq!(sound.dimensions(), (640, 480));
    }

    #[test]
    fn baseline_jpegs_are_left_alone() {
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(RgbImage::new(64, 64))
            .write_to(&mut out, image::ImageFormat::Jpeg)
            .unwrap();
        assert!(progressive_dc_scans(out.get_ref()).is_none());
        assert!(progressive_dc_scans(b"not a jpeg").is_none());
        let jpeg = progressive_jpeg(64, 64);
        for cut in 0..jpeg.len() {
            let _ = progressive_dc_scans(&jpeg[..cut]);
        }
    }

    #[test]
    fn target_sizes_keep_the_aspect_ratio_and_never_upscale() {
        assert_eq!(target_size(4000, 3000, 600), (600, 450));
        assert_eq!(target_size(3000, 4000, 90), (90, 120));
        assert_eq!(target_size(50, 20, 300), (50, 20));
        assert_eq!(target_size(1, 1, 90), (1, 1));
        assert_eq!(target_size(10_000, 1, 90), (90, 1));
    }
}
