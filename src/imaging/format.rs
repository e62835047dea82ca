//! The formats Kitteh accepts, told from their magic bytes.

use image::ImageFormat;

use crate::ImagingError;
use crate::strip::Container;

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

    pub(crate) fn image_format(self) -> ImageFormat {
        match self {
            Self::Jpeg => ImageFormat::Jpeg,
            Self::Png => ImageFormat::Png,
            Self::Gif => ImageFormat::Gif,
            Self::WebP => ImageFormat::WebP,
        }
    }

    pub(crate) fn container(self) -> Container {
        match self {
            Self::Jpeg => Container::Jpeg,
            Self::Png => Container::Png,
            Self::Gif => Container::Gif,
            Self::WebP => Container::WebP,
        }
    }
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
