//! Turning untrusted bytes into a safe image: detect the format from magic
//! bytes, check the declared size against the limits before any pixel is
//! allocated, decode once in full to prove the file is sound, honour EXIF
//! orientation, and remove personal metadata. Knows nothing of HTTP or the
//! database; callers run it off the async runtime.

pub mod resize;
pub mod strip;

use std::io::Cursor;

use image::codecs::gif::GifDecoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::metadata::Orientation;
use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader};
use sha2::{Digest, Sha256};

use strip::Container;

/// The formats Kitteh accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Gif,
    WebP,
}

impl Format {
    pub const ACCEPTED: &'static str = "JPEG, PNG, GIF and WebP";

    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::WebP => "image/webp",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::WebP => "webp",
        }
    }

    pub fn from_mime(mime: &str) -> Option<Self> {
        match mime {
            "image/jpeg" => Some(Self::Jpeg),
            "image/png" => Some(Self::Png),
            "image/gif" => Some(Self::Gif),
            "image/webp" => Some(Self::WebP),
            _ => None,
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Png => ImageFormat::Png,
            Self::Gif => ImageFormat::Gif,
            Self::WebP => ImageFormat::WebP,
        }
    }

    fn container(self) -> Container {
        match self {
            Self::Jpeg => Container::Jpeg,
            Self::Png => Container::Png,
            Self::Gif => Container::Gif,
            Self::WebP => Container::WebP,
        }
    }
}

/// Size limits, checked against the header before decoding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImagingError {
    #[error("the file is empty")]
    Empty,
    #[error(
        "unsupported format: this looks like {found}; accepted formats are {}",
        Format::ACCEPTED
    )]
    Unsupported { found: &'static str },
    #[error("the image is {width}×{height} pixels; the limit is {max_width}×{max_height}")]
    TooLarge {
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
    },
    #[error("the image has {pixels} pixels ({width}×{height}); the limit is {max_pixels} pixels")]
    TooManyPixels {
        width: u32,
        height: u32,
        pixels: u64,
        max_pixels: u64,
    },
    #[error("the image is corrupt or truncated: {0}")]
    Corrupt(String),
}

impl ImagingError {
    /// A stable machine-readable name for the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty_file",
            Self::Unsupported { .. } => "unsupported_format",
            Self::TooLarge { .. } => "dimensions_too_large",
            Self::TooManyPixels { .. } => "too_many_pixels",
            Self::Corrupt(_) => "corrupt_image",
        }
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

/// Identifies the format from magic bytes, never from a name or Content-Type.
/// Formats we refuse are named in the error, so users know what they sent.
pub fn sniff(bytes: &[u8]) -> Result<Format, ImagingError> {
    if bytes.is_empty() {
        return Err(ImagingError::Empty);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Format::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(Format::Png);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok(Format::Gif);
    }
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(Format::WebP);
    }
    Err(ImagingError::Unsupported {
        found: describe_unsupported(bytes),
    })
}

fn describe_unsupported(bytes: &[u8]) -> &'static str {
    let head = &bytes[..bytes.len().min(512)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let trimmed = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    if bytes.starts_with(b"%PDF") {
        "PDF"
    } else if bytes.starts_with(b"BM") {
        "BMP"
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        "TIFF"
    } else if trimmed.contains("<svg") {
        "SVG (refused: it can carry script)"
    } else if trimmed.starts_with("<!doctype html") || trimmed.starts_with("<html") {
        "HTML"
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        "HEIF/AVIF or another ISO media file"
    } else if bytes.starts_with(&[0, 0, 1, 0]) {
        "ICO"
    } else if bytes.starts_with(b"PK\x03\x04") {
        "a ZIP archive"
    } else if trimmed.starts_with("<?xml") {
        "XML"
    } else {
        "an unknown format"
    }
}

/// Reads the declared dimensions from the header only; no pixel is decoded.
pub fn dimensions(format: Format, bytes: &[u8]) -> Result<(u32, u32), ImagingError> {
    ImageReader::with_format(Cursor::new(bytes), format.image_format())
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

/// Validates and cleans an upload: the whole pipeline in one call.
pub fn process(bytes: &[u8], limits: &Limits) -> Result<Processed, ImagingError> {
    let format = sniff(bytes)?;
    let (width, height) = dimensions(format, bytes)?;
    check_limits(width, height, limits)?;
    if format == Format::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImagingError::Corrupt(
            "the JPEG has no end-of-image marker (the file was cut short)".into(),
        ));
    }

    if format == Format::Gif {
        verify_gif(bytes, limits)?;
    } else {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format.image_format());
        reader.limits(decoder_limits(limits));
        let mut decoder = reader.into_decoder().map_err(corrupt)?;
        let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
        let icc = decoder.icc_profile().ok().flatten();
        let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
        if orientation != Orientation::NoTransforms {
            // Rotating needs the pixels: re-encode, this once.
            image.apply_orientation(orientation);
            let bytes = encode(&image, format, icc.as_deref())?;
            return Ok(finish(format, bytes, image.width(), image.height()));
        }
    }

    let cleaned = strip::strip(format.container(), bytes)
        .map_err(|e| ImagingError::Corrupt(e.to_string()))?;
    Ok(finish(format, cleaned, width, height))
}

/// Decodes every frame of a GIF, one at a time, to prove the file is sound.
fn verify_gif(bytes: &[u8], limits: &Limits) -> Result<(), ImagingError> {
    let mut decoder = GifDecoder::new(Cursor::new(bytes)).map_err(corrupt)?;
    decoder
        .set_limits(decoder_limits(limits))
        .map_err(corrupt)?;
    let mut frames = 0usize;
    for frame in decoder.into_frames() {
        frame.map_err(corrupt)?;
        frames += 1;
    }
    if frames == 0 {
        return Err(ImagingError::Corrupt("the GIF has no frames".into()));
    }
    Ok(())
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
