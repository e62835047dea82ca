//! Why an upload was refused, in words its uploader can act on.

use crate::{Format, seconds_text};

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
    #[error("the animation has {frames} frames; the limit is {max_frames}")]
    TooManyFrames { frames: u32, max_frames: u32 },
    #[error(
        "the animation's frames add up to {pixels} pixels or more; the limit is {max_pixels} pixels"
    )]
    AnimationTooLarge { pixels: u64, max_pixels: u64 },
    #[error("the colour profile inflates past {max_bytes} bytes, the limit")]
    ProfileTooLarge { max_bytes: u64 },
    #[error(
        "the JPEG has {scans} scans; the limit is {max_scans} (limits.max_jpeg_scans): each scan is decoded over the whole picture"
    )]
    TooManyScans { scans: u32, max_scans: u32 },
    #[error(
        "decoding took longer than the limit of {} s (limits.decode_seconds)",
        seconds_text(*millis)
    )]
    TimedOut { millis: u64 },
    /// The client went away; nobody is waiting for the answer.
    #[error("the upload was abandoned while it was being checked")]
    Cancelled,
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
            Self::TooManyFrames { .. } => "too_many_frames",
            Self::AnimationTooLarge { .. } => "animation_too_large",
            Self::ProfileTooLarge { .. } => "profile_too_large",
            Self::TooManyScans { .. } => "too_many_scans",
            Self::TimedOut { .. } => "decode_timeout",
            Self::Cancelled => "cancelled",
            Self::Corrupt(_) => "corrupt_image",
        }
    }
}
