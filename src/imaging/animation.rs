//! Animations, checked for what they cost before and while they decode.
//!
//! A GIF is walked twice with the `gif` crate. First without decoding any
//! pixel, to count frames and their pixels against `limits.max_frames` and
//! `limits.max_animation_pixels`: thousands of tiny frames or a thousand
//! huge ones are refused at once. Then every frame is decoded to its own
//! indexed pixels, which proves it sound: frames are never composed onto
//! the full logical screen, so a 1×1 frame costs one pixel, not the
//! 4000×4000 canvas a compositing decoder would paint for it.

use gif::{ColorOutput, DecodeOptions, MemoryLimit};

use super::guard::Stop;
use super::{ImagingError, Limits};

/// What an animation will cost: frames, and pixels across all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub frames: u32,
    pub pixels: u64,
    /// The largest single frame, in pixels.
    pub largest_frame: u64,
}

fn corrupt(e: gif::DecodingError) -> ImagingError {
    ImagingError::Corrupt(format!("GIF: {e}"))
}

fn options(limits: &Limits, decode: bool) -> DecodeOptions {
    let mut options = DecodeOptions::new();
    options.set_color_output(ColorOutput::Indexed);
    options.skip_frame_decoding(!decode);
    // One indexed byte per pixel of the largest frame allowed.
    let bytes = limits.max_pixels.saturating_add(1 << 20);
    if let Some(bytes) = std::num::NonZeroU64::new(bytes) {
        options.set_memory_limit(MemoryLimit::Bytes(bytes));
    }
    options
}

/// Checks one frame's size and adds it to the running cost.
fn count(cost: &mut Cost, width: u16, height: u16, limits: &Limits) -> Result<(), ImagingError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(ImagingError::TooManyPixels {
            width: u32::from(width),
            height: u32::from(height),
            pixels,
            max_pixels: limits.max_pixels,
        });
    }
    cost.frames = cost.frames.saturating_add(1);
    cost.pixels = cost.pixels.saturating_add(pixels);
    cost.largest_frame = cost.largest_frame.max(pixels);
    check(cost, limits)
}

/// Refuses an animation past the limits.
pub fn check(cost: &Cost, limits: &Limits) -> Result<(), ImagingError> {
    if cost.frames > limits.max_frames {
        return Err(ImagingError::TooManyFrames {
            frames: cost.frames,
            max_frames: limits.max_frames,
        });
    }
    if cost.pixels > limits.max_animation_pixels {
        return Err(ImagingError::AnimationTooLarge {
            pixels: cost.pixels,
            max_pixels: limits.max_animation_pixels,
        });
    }
    Ok(())
}

/// Frames and pixels of a GIF, from its block structure alone. Stops at the
/// first frame past a limit, so a million-frame file costs no more than a
/// thousand-frame one.
pub fn gif_cost(bytes: &[u8], limits: &Limits) -> Result<Cost, ImagingError> {
    let mut decoder = options(limits, false)
        .read_info(super::input(bytes, Stop::never()))
        .map_err(corrupt)?;
    let mut cost = Cost {
        frames: 0,
        pixels: 0,
        largest_frame: 0,
    };
    // With decoding skipped, a frame comes back with its compressed bytes.
    while let Some(frame) = decoder.read_next_frame().map_err(corrupt)? {
        let (width, height) = (frame.width, frame.height);
        count(&mut cost, width, height, limits)?;
    }
    if cost.frames == 0 {
        return Err(ImagingError::Corrupt("the GIF has no frames".into()));
    }
    Ok(cost)
}

/// Decodes every frame of a GIF to its own indexed pixels, checking the
/// stop between frames and on every read.
pub fn verify_gif(bytes: &[u8], limits: &Limits, stop: &Stop) -> Result<(), ImagingError> {
    // A read refused by the stop reaches us as an I/O error of the decoder.
    let failed = |e| stop.check().err().unwrap_or_else(|| corrupt(e));
    let mut decoder = options(limits, true)
        .read_info(super::input(bytes, stop.clone()))
        .map_err(failed)?;
    let mut cost = Cost {
        frames: 0,
        pixels: 0,
        largest_frame: 0,
    };
    loop {
        stop.check()?;
        let Some(frame) = decoder.read_next_frame().map_err(failed)? else {
            break;
        };
        let (width, height) = (frame.width, frame.height);
        let expected = usize::from(width) * usize::from(height);
        if frame.buffer.len() < expected {
            return Err(ImagingError::Corrupt(format!(
                "GIF frame {} decodes to {} of its {expected} pixels",
                cost.frames + 1,
                frame.buffer.len()
            )));
        }
        count(&mut cost, width, height, limits)?;
    }
    if cost.frames == 0 {
        return Err(ImagingError::Corrupt("the GIF has no frames".into()));
    }
    Ok(())
}
