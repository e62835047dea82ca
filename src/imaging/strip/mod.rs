//! Lossless removal of personal metadata from served images.
//!
//! Uploads routinely carry EXIF (GPS position, camera serial numbers, capture
//! dates), XMP, IPTC and free-text comments that the uploader never meant to
//! publish. Everything here works on the container structure alone and copies
//! pixel data byte for byte, so stripping costs no quality and needs no codec.
//! The ICC profile is kept on purpose: dropping it visibly shifts the colours
//! of wide-gamut photos.
//!
//! Input is treated as hostile: every read is bounds-checked, every offset sum
//! is checked, and malformed input yields a [`StripError`], never a panic.

mod gif;
mod jpeg;
mod png;
mod tiff;
mod webp;

use std::fmt;

/// The image container formats that can be stripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// JPEG (JFIF, Exif, Adobe), baseline or progressive.
    Jpeg,
    /// PNG, including animated PNG.
    Png,
    /// `GIF87a` or `GIF89a`, including animations.
    Gif,
    /// WebP in its RIFF container, simple or extended.
    WebP,
}

/// Why an image could not be stripped.
///
/// The reason is a short static phrase such as `"truncated JPEG segment"`, so
/// it is safe to log and never echoes attacker-controlled bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StripError(pub &'static str);

impl fmt::Display for StripError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for StripError {}

/// Returns the same image with metadata removed.
///
/// PNG, WebP and GIF keep only what display needs (an allowlist: chunks and
/// blocks nobody has named yet are dropped too); JPEG drops EXIF, XMP,
/// IPTC/Photoshop resources, comments and every other application segment.
/// Anything stored after the format's end marker (a JPEG's EOI, a PNG's
/// IEND, a GIF's trailer, the RIFF extent of a WebP) goes too. Kept:
/// everything needed to decode and display the image the same way,
/// including the ICC profile. Pixel data is never re-encoded.
///
/// Because EXIF goes, so does the EXIF orientation; read it first with
/// [`exif_orientation`] if the image must be displayed upright.
///
/// # Errors
///
/// Returns a [`StripError`] when `bytes` is not a well-formed file of the
/// given container: a missing signature, a truncated structure, or a length
/// field that points past the end of the input.
pub fn strip(container: Container, bytes: &[u8]) -> Result<Vec<u8>, StripError> {
    match container {
        Container::Jpeg => jpeg::strip(bytes),
        Container::Png => png::strip(bytes),
        Container::Gif => gif::strip(bytes),
        Container::WebP => webp::strip(bytes),
    }
}

/// EXIF Orientation (1..=8) from a JPEG's APP1 Exif segment, a WebP `EXIF`
/// chunk or a PNG `eXIf` chunk.
///
/// Returns `None` when the image has no EXIF, the EXIF has no orientation tag,
/// the tag is malformed or out of range, or the container is a GIF (which has
/// no standard EXIF carrier).
#[must_use]
/// The scans of a JPEG (None for anything else, or a JPEG whose markers
/// cannot be walked).
pub fn jpeg_scans(container: Container, bytes: &[u8]) -> Option<u32> {
    match container {
        Container::Jpeg => jpeg::scan_count(bytes),
        _ => None,
    }
}

pub fn exif_orientation(container: Container, bytes: &[u8]) -> Option<u16> {
    let tiff = match container {
        Container::Jpeg => jpeg::exif(bytes),
        Container::Png => png::exif(bytes),
        Container::WebP => webp::exif(bytes),
        Container::Gif => None,
    }?;
    tiff::orientation(tiff)
}

/// The embedded ICC profile bytes, or `None` when absent or unreadable.
///
/// - JPEG: the `ICC_PROFILE` APP2 chunks concatenated in sequence order;
///   `None` when a chunk is missing, duplicated or inconsistently numbered.
/// - WebP: the payload of the `ICCP` chunk.
/// - GIF: the data of the `ICCRGBG1012` application extension.
/// - PNG: always `None`, because `iCCP` stores the profile zlib-compressed and
///   this module deliberately carries no inflate implementation. [`strip`]
///   still keeps `iCCP`, so the profile survives stripping.
#[must_use]
pub fn icc_profile(container: Container, bytes: &[u8]) -> Option<Vec<u8>> {
    match container {
        Container::Jpeg => jpeg::icc_profile(bytes),
        Container::Png => None,
        Container::Gif => gif::icc_profile(bytes),
        Container::WebP => webp::icc_profile(bytes),
    }
}

/// The data of the first PNG chunk of type `kind` (`*b"acTL"`), or the
/// payloads of a WebP's top-level chunks of that type: what the imaging
/// pipeline needs to know about a file before it decodes it.
#[must_use]
pub fn chunk_payloads(container: Container, bytes: &[u8], kind: [u8; 4]) -> Vec<&[u8]> {
    match container {
        Container::Png => png::chunk(bytes, &kind).into_iter().collect(),
        Container::WebP => webp::chunks(bytes, kind),
        Container::Jpeg | Container::Gif => Vec::new(),
    }
}

/// `N` bytes starting at `at`, or `None` when they run past the end.
fn array_at<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// `len` bytes starting at `at`, or `None` when they run past the end.
fn slice_at(bytes: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    bytes.get(at..at.checked_add(len)?)
}

fn u16_be(bytes: &[u8], at: usize) -> Option<u16> {
    array_at(bytes, at).map(u16::from_be_bytes)
}

fn u32_be(bytes: &[u8], at: usize) -> Option<u32> {
    array_at(bytes, at).map(u32::from_be_bytes)
}

fn u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    array_at(bytes, at).map(u32::from_le_bytes)
}

/// Some writers put the JPEG-style `Exif\0\0` prefix in front of the TIFF
/// header even where the format says the chunk starts with the TIFF header.
fn without_exif_prefix(data: &[u8]) -> &[u8] {
    data.strip_prefix(b"Exif\0\0").unwrap_or(data)
}

#[cfg(test)]
mod tests;
