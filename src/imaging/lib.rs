//! Turning untrusted bytes into a safe image, in two halves. `inspect` is
//! cheap: detect the format from magic bytes, check the declared size and
//! the animation against the limits, remove personal metadata (an
//! allowlist), bound the colour profile, and reckon what decoding will
//! cost, all before any pixel is allocated. `decode_checked` then decodes
//! once in full to prove the file sound and honours EXIF orientation,
//! giving up when its `Stop` says so. Knows nothing of HTTP or the
//! database; callers run it off the async runtime.

pub mod animation;
mod error;
mod format;
pub mod guard;
pub mod resize;
pub mod strip;

use std::io::{Cursor, Read};

pub use error::ImagingError;
pub use format::{Format, sniff};
pub use guard::Stop;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageReader};
use sha2::{Digest, Sha256};

use strip::Container;

/// Size limits, checked against the header and the structure before
/// decoding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
    pub max_frames: u32,
    /// Pixels of all an animation's frames together.
    pub max_animation_pixels: u64,
    /// Bytes of a colour profile once inflated.
    pub max_icc_bytes: u64,
    /// Scans of a progressive JPEG: each is a pass over every coefficient.
    pub max_jpeg_scans: u32,
}

impl Default for Limits {
    /// The configuration's defaults.
    fn default() -> Self {
        Self {
            max_width: 16_384,
            max_height: 16_384,
            max_pixels: 60_000_000,
            max_frames: 1000,
            max_animation_pixels: 500_000_000,
            max_icc_bytes: 4 << 20,
            max_jpeg_scans: 100,
        }
    }
}

/// Milliseconds as seconds, without a fraction when there is none.
pub fn seconds_text(millis: u64) -> String {
    if millis.is_multiple_of(1000) {
        (millis / 1000).to_string()
    } else {
        format!("{:.3}", millis as f64 / 1000.0)
            .trim_end_matches('0')
            .to_string()
    }
}

/// An accepted image, ready to store.
#[derive(Debug, Clone)]
pub struct Processed {
    pub format: Format,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Lower-case hex sha256 of `bytes`.
    pub sha256: String,
}

/// What every decoder reads from. One type for all of them: each decoder
/// is generic over its reader, and a second reader type would compile every
/// decoder a second time (about 0.4 MB of the binary).
pub(crate) type Input<'a> = guard::Interruptible<Cursor<&'a [u8]>>;

pub(crate) fn input(bytes: &[u8], stop: Stop) -> Input<'_> {
    guard::Interruptible::new(Cursor::new(bytes), stop)
}

/// A reader of `bytes` for the `image` crate's decoder of `format`.
pub(crate) fn reader(bytes: &[u8], format: Format, stop: Stop) -> ImageReader<Input<'_>> {
    ImageReader::with_format(input(bytes, stop), format.image_format())
}

/// Reads the declared dimensions from the header only; no pixel is decoded.
pub fn dimensions(format: Format, bytes: &[u8]) -> Result<(u32, u32), ImagingError> {
    reader(bytes, format, Stop::never())
        .into_dimensions()
        .map_err(|e| ImagingError::Corrupt(e.to_string()))
}

fn check_limits(width: u32, height: u32, limits: &Limits) -> Result<(), ImagingError> {
    if width == 0 || height == 0 {
        return Err(ImagingError::Corrupt(format!(
            "the header declares {width}×{height} pixels"
        )));
    }
    if width > limits.max_width || height > limits.max_height {
        return Err(ImagingError::TooLarge {
            width,
            height,
            max_width: limits.max_width,
            max_height: limits.max_height,
        });
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(ImagingError::TooManyPixels {
            width,
            height,
            pixels,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

fn decoder_limits(limits: &Limits) -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits.max_width);
    l.max_image_height = Some(limits.max_height);
    // Room for one 16-bit RGBA frame at the pixel limit, plus decoder state.
    l.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    l
}

/// JPEG's entropy-coded data can only contain 0xFF followed by 0x00 or a
/// restart marker, so an end-of-image marker after the first scan starts
/// means the file was not cut short. Decoders pad truncated scans with grey
/// instead of failing; this catches what they forgive. The walk skips the
/// header segments because an EXIF thumbnail carries markers of its own.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut pos = 2;
    while let (Some(&0xFF), Some(&marker)) = (bytes.get(pos), bytes.get(pos + 1)) {
        if marker == 0xFF {
            pos += 1;
            continue;
        }
        if marker == 0xDA {
            let scan = bytes.get(pos + 2..).unwrap_or_default();
            return scan.windows(2).any(|w| w == [0xFF, 0xD9]);
        }
        let len = match (bytes.get(pos + 2), bytes.get(pos + 3)) {
            (Some(&hi), Some(&lo)) => usize::from(hi) << 8 | usize::from(lo),
            _ => return false,
        };
        pos += 2 + len;
    }
    false
}

fn corrupt(e: image::ImageError) -> ImagingError {
    ImagingError::Corrupt(e.to_string())
}

/// What an upload is, learnt from its structure alone, and what decoding it
/// will cost: enough to reserve memory before a single pixel is decoded.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub format: Format,
    pub width: u32,
    pub height: u32,
    /// 1 for a still image.
    pub frames: u32,
    /// Bytes the decode will allocate at most (see `decode_cost`).
    pub cost: u64,
    /// The EXIF orientation of the original, read before stripping it.
    orientation: Orientation,
    /// A JPEG that needs no turning and that the scaled decoder reads: it
    /// is checked by a decode at a reduced DCT scale.
    scaled_jpeg: Option<resize::JpegKind>,
    /// The width of the largest size this image will get (`check_at`): a
    /// scaled JPEG is checked at the scale that size needs, the same one
    /// its resize job would decode at, so a job never meets data that the
    /// check did not read. 1 (the 1/8 scale) when none is set.
    check_largest: u32,
    /// The file with its metadata removed: what is decoded and stored.
    cleaned: Vec<u8>,
}

/// Bytes a scaled JPEG check allocates at most when its largest size is
/// `largest` wide: the scaled decode and slack.
fn scaled_check_cost(kind: resize::JpegKind, w: u32, h: u32, largest: u32, file: usize) -> u64 {
    resize::jpeg_scaled_cost(kind, w, h, largest, file) + (1 << 20)
}

impl Inspection {
    /// The file with its metadata removed.
    pub fn cleaned(&self) -> &[u8] {
        &self.cleaned
    }

    /// Checks the image as its sizes will need it: a scaled JPEG at the
    /// scale the largest of them (`largest` pixels wide) needs. Updates
    /// `cost` to match.
    pub fn check_at(&mut self, largest: u32) {
        self.check_largest = largest.max(1);
        if let Some(kind) = self.scaled_jpeg {
            self.cost = scaled_check_cost(
                kind,
                self.width,
                self.height,
                self.check_largest,
                self.cleaned.len(),
            );
        }
    }

    /// How the check can also yield the pixels `sizes` are made from, and
    /// what the check and the sizes cost together; None when the image has
    /// more than `max_pixels` (the sizes are then left to a resize job).
    /// A scaled JPEG is then decoded at the scale the largest size needs
    /// rather than 1/8; anything else keeps the pixels of its full decode.
    pub fn plan_sizes(&self, sizes: &[resize::SizeSpec], max_pixels: u64) -> Option<SizesPlan> {
        let largest = sizes.iter().map(|s| s.width).max()?;
        let (w, h) = (self.width, self.height);
        if u64::from(w) * u64::from(h) > max_pixels {
            return None;
        }
        const SLACK: u64 = 4 << 20;
        let made = resize::sizes_cost(w, h, sizes);
        if let Some(kind) = self.scaled_jpeg {
            let check = scaled_check_cost(kind, w, h, largest, self.cleaned.len());
            return Some(SizesPlan {
                largest,
                cost: check + made + SLACK,
            });
        }
        let pixels = u64::from(w) * u64::from(h);
        // The pixels as 8-bit RGBA for the resizer; a GIF's first frame is
        // painted on its whole logical screen as well.
        let rgba = pixels * 4;
        let screen = if self.format == Format::Gif { rgba } else { 0 };
        Some(SizesPlan {
            largest,
            cost: self.cost + rgba + screen + made + SLACK,
        })
    }
}

/// How an upload's check also yields the pixels its sizes are made from.
#[derive(Debug, Clone, Copy)]
pub struct SizesPlan {
    largest: u32,
    /// Bytes the check and the sizes allocate together at most.
    pub cost: u64,
}

/// An accepted image and, when a `SizesPlan` asked for them, the decoded
/// pixels its sizes are made from.
pub struct Checked {
    pub processed: Processed,
    pub pixels: Option<resize::Decoded>,
}

/// Refuses a colour profile that inflates past `limits.max_icc_bytes`,
/// before any decoder inflates it (PNG's `iCCP` is zlib-compressed, and a
/// 1 MB chunk can hold a gigabyte of zeros).
fn check_png_profile(cleaned: &[u8], limits: &Limits) -> Result<(), ImagingError> {
    let Some(data) = strip::chunk_payloads(Container::Png, cleaned, *b"iCCP")
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    // Profile name, a NUL, the compression method, then the zlib stream.
    let Some(name_end) = data.iter().position(|&b| b == 0) else {
        return Err(ImagingError::Corrupt(
            "PNG iCCP chunk without a name".into(),
        ));
    };
    let stream = data.get(name_end + 2..).unwrap_or_default();
    let mut inflated = flate2::read::ZlibDecoder::new(stream).take(limits.max_icc_bytes + 1);
    let mut sink = std::io::sink();
    let len = std::io::copy(&mut inflated, &mut sink)
        .map_err(|e| ImagingError::Corrupt(format!("PNG iCCP chunk: {e}")))?;
    if len > limits.max_icc_bytes {
        return Err(ImagingError::ProfileTooLarge {
            max_bytes: limits.max_icc_bytes,
        });
    }
    Ok(())
}

/// Frames (and pixels across them) of an animated PNG or WebP, from their
/// chunks; a still image is one frame.
fn frames_of(container: Container, cleaned: &[u8], limits: &Limits) -> Result<u32, ImagingError> {
    let frames = match container {
        Container::Png => strip::chunk_payloads(container, cleaned, *b"acTL")
            .first()
            .and_then(|d| d.get(..4))
            .map_or(1, |n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]).max(1)),
        Container::WebP => {
            let frames = strip::chunk_payloads(container, cleaned, *b"ANMF");
            let mut cost = animation::Cost {
                frames: 0,
                pixels: 0,
                largest_frame: 0,
            };
            for frame in &frames {
                // Width and height minus one, 24-bit little-endian, at 6 and 9.
                let dim = |at: usize| {
                    frame.get(at..at + 3).map_or(0, |b| {
                        u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16
                    }) + 1
                };
                cost.frames += 1;
                cost.pixels = cost.pixels.saturating_add(dim(6).saturating_mul(dim(9)));
            }
            animation::check(&cost, limits)?;
            u32::try_from(frames.len()).unwrap_or(u32::MAX).max(1)
        }
        Container::Jpeg | Container::Gif => 1,
    };
    animation::check(
        &animation::Cost {
            frames,
            pixels: 0,
            largest_frame: 0,
        },
        limits,
    )?;
    Ok(frames)
}

/// Bytes a decode of `cleaned` allocates at most: the decoder's output
/// buffer for its real output type (bit depth and channels included), what
/// the decoder keeps beside it (JPEG's coefficient planes, WebP's YUV
/// planes), and the rotated copy and re-encode when the image must be
/// turned upright.
fn decode_cost(
    format: Format,
    cleaned: &[u8],
    limits: &Limits,
    orientation: Orientation,
    largest_gif_frame: u64,
) -> Result<u64, ImagingError> {
    const SLACK: u64 = 1 << 20;
    if format == Format::Gif {
        // Indexed frames, one byte per pixel, one frame at a time.
        return Ok(largest_gif_frame.saturating_add(SLACK));
    }
    let mut reader = reader(cleaned, format, Stop::never());
    reader.limits(decoder_limits(limits));
    let decoder = reader.into_decoder().map_err(corrupt)?;
    let output = decoder.total_bytes();
    let beside = match format {
        Format::Jpeg => output.saturating_mul(2),
        Format::WebP => output,
        Format::Png | Format::Gif => 0,
    };
    let turning = if orientation == Orientation::NoTransforms {
        0
    } else {
        output.saturating_mul(2)
    };
    Ok(output
        .saturating_add(beside)
        .saturating_add(turning)
        .saturating_add(SLACK))
}

/// The cheap half of an upload's check: format, header, limits, metadata
/// removed, animations counted, and the cost of decoding reckoned. Decodes
/// no pixel and allocates little beyond the cleaned copy.
pub fn inspect(bytes: &[u8], limits: &Limits) -> Result<Inspection, ImagingError> {
    let format = sniff(bytes)?;
    let container = format.container();
    // Read before stripping, which removes it.
    let orientation = strip::exif_orientation(container, bytes)
        .and_then(|o| u8::try_from(o).ok())
        .and_then(Orientation::from_exif)
        .unwrap_or(Orientation::NoTransforms);
    // Stripped before any decoder reads the header, so that chunks about
    // to be dropped are never inflated or parsed; the PNG decoder inflates
    // a colour profile while reading the header, so its size is checked
    // with a small cap first.
    let cleaned =
        strip::strip(container, bytes).map_err(|e| ImagingError::Corrupt(e.to_string()))?;
    if format == Format::Png {
        check_png_profile(&cleaned, limits)?;
    }
    let (width, height) = dimensions(format, &cleaned)?;
    check_limits(width, height, limits)?;
    if let Some(scans) = strip::jpeg_scans(container, &cleaned)
        && scans > limits.max_jpeg_scans
    {
        return Err(ImagingError::TooManyScans {
            scans,
            max_scans: limits.max_jpeg_scans,
        });
    }
    if format == Format::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImagingError::Corrupt(
            "the JPEG has no end-of-image marker (the file was cut short)".into(),
        ));
    }
    let mut largest_gif_frame = 0;
    let frames = match format {
        Format::Gif => {
            let cost = animation::gif_cost(&cleaned, limits)?;
            largest_gif_frame = cost.largest_frame;
            cost.frames
        }
        Format::Png | Format::WebP | Format::Jpeg => frames_of(container, &cleaned, limits)?,
    };
    let scaled_jpeg = if format == Format::Jpeg && orientation == Orientation::NoTransforms {
        // A header the scaled decoder cannot read is left to the full one.
        resize::jpeg_kind(&cleaned).ok().filter(|k| k.scalable)
    } else {
        None
    };
    let cost = match scaled_jpeg {
        // At 1/8 scale until `check_at` names the scale its sizes need.
        Some(kind) => scaled_check_cost(kind, width, height, 1, cleaned.len()),
        None => decode_cost(format, &cleaned, limits, orientation, largest_gif_frame)?,
    };
    Ok(Inspection {
        format,
        width,
        height,
        frames,
        cost,
        orientation,
        scaled_jpeg,
        check_largest: 1,
        cleaned,
    })
}

/// The expensive half: decodes the cleaned file to prove it sound, turns it
/// upright if its EXIF said so, and returns what to store, with the pixels
/// for its sizes when `plan` asks for them. Gives up when `stop` says so.
///
/// A JPEG that needs no turning is decoded at a reduced DCT scale (the one
/// its largest size needs, see `Inspection::check_at`; 1/8 without one),
/// the same scale its resize job would use. The scale only shortens the inverse
/// DCT: a baseline file's entropy-coded data is decoded in full, so a cut
/// or corrupt stream fails as it would at full size (and this decoder is
/// the stricter one: it refuses invalid Huffman codes that the full
/// decoder paints over). At 1/8, a progressive file's DC scans alone are
/// decoded: that proves its headers, every DC scan and the file's
/// structure (every scan delimited, the end-of-image marker present), and
/// nothing about the AC scans' coefficients, which no size made from this
/// decode uses and which a browser shows as blocky detail at worst. At
/// 1/4 and above every scan is decoded. A rotated JPEG is decoded in full,
/// since its original is re-encoded upright; PNG and WebP in full; a GIF
/// frame by frame.
pub fn decode_checked(
    inspection: Inspection,
    limits: &Limits,
    stop: &Stop,
    plan: Option<&SizesPlan>,
) -> Result<Checked, ImagingError> {
    let Inspection {
        format,
        width,
        height,
        orientation,
        scaled_jpeg,
        check_largest,
        cleaned,
        ..
    } = inspection;
    let largest = plan.map_or(check_largest, |p| p.largest);
    stop.check()?;
    if format == Format::Gif {
        animation::verify_gif(&cleaned, limits, stop)?;
        // The sizes show the first frame, painted on the logical screen:
        // a second, bounded decode of that frame alone.
        let pixels =
            plan.and_then(|_| resize::decode(&cleaned, format, largest, limits, stop).ok());
        return Ok(Checked {
            processed: finish(format, cleaned, width, height),
            pixels,
        });
    }
    if scaled_jpeg.is_some() {
        // Its memory was reserved for this decode alone, never a full one.
        let pixels = resize::decode_jpeg_scaled(&cleaned, largest, stop)?.ok_or_else(|| {
            ImagingError::Corrupt("the JPEG's frame disagrees with its header".into())
        })?;
        return Ok(Checked {
            processed: finish(format, cleaned, width, height),
            pixels: plan.map(|_| pixels),
        });
    }
    let mut reader = reader(&cleaned, format, stop.clone());
    reader.limits(decoder_limits(limits));
    let failed = |e: image::ImageError| stop.check().err().unwrap_or_else(|| corrupt(e));
    let mut decoder = reader.into_decoder().map_err(failed)?;
    let icc = decoder.icc_profile().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder).map_err(failed)?;
    stop.check()?;
    let processed = if orientation == Orientation::NoTransforms {
        finish(format, cleaned, width, height)
    } else {
        // Rotating needs the pixels: re-encode, this once.
        image.apply_orientation(orientation);
        drop(cleaned);
        let bytes = encode(&image, format, icc.as_deref())?;
        finish(format, bytes, image.width(), image.height())
    };
    let pixels = plan.map(|_| resize::Decoded::full(image, format, icc));
    Ok(Checked { processed, pixels })
}

/// Validates and cleans an upload: the whole pipeline in one call, with no
/// budget and no stop (benchmarks and tests).
pub fn process(bytes: &[u8], limits: &Limits) -> Result<Processed, ImagingError> {
    let inspection = inspect(bytes, limits)?;
    decode_checked(inspection, limits, &Stop::never(), None).map(|c| c.processed)
}

/// Encodes pixels in the given format, keeping the ICC profile.
pub fn encode(
    image: &DynamicImage,
    format: Format,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, ImagingError> {
    encode_with_quality(image, format, icc, 92)
}

pub fn encode_with_quality(
    image: &DynamicImage,
    format: Format,
    icc: Option<&[u8]>,
    jpeg_quality: u8,
) -> Result<Vec<u8>, ImagingError> {
    let mut out = Vec::new();
    let encode_err = |e: image::ImageError| ImagingError::Corrupt(format!("cannot encode: {e}"));
    match format {
        Format::Jpeg => {
            // JPEG has no alpha channel.
            let rgb = image.to_rgb8();
            let mut enc = JpegEncoder::new_with_quality(&mut out, jpeg_quality);
            if let Some(icc) = icc {
                let _ = enc.set_icc_profile(icc.to_vec());
            }
            enc.write_image(
                rgb.as_raw(),
                rgb.width(),
                rgb.height(),
                image::ExtendedColorType::Rgb8,
            )
            .map_err(encode_err)?;
        }
        Format::Png => {
            let mut enc = PngEncoder::new(&mut out);
            if let Some(icc) = icc {
                let _ = enc.set_icc_profile(icc.to_vec());
            }
            image.write_with_encoder(enc).map_err(encode_err)?;
        }
        Format::WebP => {
            let rgba = image.to_rgba8();
            let mut enc = WebPEncoder::new_lossless(&mut out);
            if let Some(icc) = icc {
                let _ = enc.set_icc_profile(icc.to_vec());
            }
            enc.write_image(
                rgba.as_raw(),
                rgba.width(),
                rgba.height(),
                image::ExtendedColorType::Rgba8,
            )
            .map_err(encode_err)?;
        }
        Format::Gif => {
            let rgba = image.to_rgba8();
            let mut enc = image::codecs::gif::GifEncoder::new(&mut out);
            enc.encode(
                rgba.as_raw(),
                rgba.width(),
                rgba.height(),
                image::ExtendedColorType::Rgba8,
            )
            .map_err(encode_err)?;
        }
    }
    Ok(out)
}

/// Lower-case hex sha256, used as ETag and integrity check.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn finish(format: Format, bytes: Vec<u8>, width: u32, height: u32) -> Processed {
    let sha256 = sha256_hex(&bytes);
    Processed {
        format,
        bytes,
        width,
        height,
        sha256,
    }
}
