//! GIF: blocks are walked and only what display needs is kept.

use super::{StripError, slice_at};

const IMAGE: u8 = 0x2C;
const EXTENSION: u8 = 0x21;
const TRAILER: u8 = 0x3B;
const GRAPHIC_CONTROL: u8 = 0xF9;
const APPLICATION: u8 = 0xFF;
/// The 8-byte identifier plus 3-byte authentication code.
const APP_ID_LEN: u8 = 11;
/// Looping control (two spellings of the same thing) and the colour profile.
const KEPT_APPS: [&[u8]; 3] = [b"NETSCAPE2.0", b"ANIMEXTS1.0", b"ICCRGBG1012"];
const ICC_APP: &[u8] = b"ICCRGBG1012";
/// Header (6) plus logical screen descriptor (7).
const SCREEN_END: usize = 13;
const IMAGE_DESCRIPTOR_LEN: usize = 10;

const TRUNCATED: StripError = StripError("truncated GIF block");

enum Kind {
    Image,
    Extension(u8),
    Trailer,
}

struct Block<'a> {
    kind: Kind,
    /// The whole block from its introducer to its terminator.
    raw: &'a [u8],
}

/// Bytes taken by a colour table whose presence and size are given by the
/// low bits of a packed field.
const fn colour_table_len(packed: u8) -> usize {
    if packed & 0x80 == 0 {
        0
    } else {
        // 2^(n+1) entries of three bytes each.
        6 << (packed & 0x07)
    }
}

/// Skips a run of data sub-blocks starting at `pos`; returns the index
/// just past the zero-length terminator.
fn sub_blocks_end(bytes: &[u8], mut pos: usize) -> Result<usize, StripError> {
    loop {
        let size = usize::from(*bytes.get(pos).ok_or(TRUNCATED)?);
        pos = pos.checked_add(1).ok_or(TRUNCATED)?;
        if size == 0 {
            return Ok(pos);
        }
        pos = pos.checked_add(size).ok_or(TRUNCATED)?;
    }
}

/// Data sub-blocks starting at `pos`, concatenated.
fn sub_blocks_data(bytes: &[u8], mut pos: usize) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    loop {
        let size = usize::from(*bytes.get(pos)?);
        pos = pos.checked_add(1)?;
        if size == 0 {
            return Some(data);
        }
        data.extend_from_slice(slice_at(bytes, pos, size)?);
        pos = pos.checked_add(size)?;
    }
}

/// End of the header, logical screen descriptor and global colour table.
fn screen_end(bytes: &[u8]) -> Result<usize, StripError> {
    let signature = bytes.get(..6).ok_or(StripError("missing GIF signature"))?;
    if signature != b"GIF87a" && signature != b"GIF89a" {
        return Err(StripError("missing GIF signature"));
    }
    let packed = *bytes.get(10).ok_or(TRUNCATED)?;
    let end = SCREEN_END
        .checked_add(colour_table_len(packed))
        .ok_or(TRUNCATED)?;
    if end > bytes.len() {
        return Err(TRUNCATED);
    }
    Ok(end)
}

/// Walks the blocks after the global colour table, up to and including
/// the trailer.
struct Blocks<'a> {
    bytes: &'a [u8],
    pos: usize,
    seen_image: bool,
    done: bool,
}

impl<'a> Blocks<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, StripError> {
        Ok(Self {
            bytes,
            pos: screen_end(bytes)?,
            seen_image: false,
            done: false,
        })
    }

    fn step(&mut self) -> Result<Block<'a>, StripError> {
        let bytes = self.bytes;
        let start = self.pos;
        let Some(&introducer) = bytes.get(start) else {
            // Plenty of real GIFs end right after their last frame, and
            // every decoder accepts that; supply the trailer they forgot.
            if !self.seen_image {
                return Err(StripError("missing GIF trailer"));
            }
            self.done = true;
            return Ok(Block {
                kind: Kind::Trailer,
                raw: &[TRAILER],
            });
        };
        let (kind, end) = match introducer {
            IMAGE => {
                let descriptor = slice_at(bytes, start, IMAGE_DESCRIPTOR_LEN).ok_or(TRUNCATED)?;
                let packed = *descriptor.get(9).ok_or(TRUNCATED)?;
                // The LZW minimum code size byte sits between the local
                // colour table and the image data sub-blocks.
                let data_at = start
                    .checked_add(IMAGE_DESCRIPTOR_LEN)
                    .and_then(|n| n.checked_add(colour_table_len(packed)))
                    .and_then(|n| n.checked_add(1))
                    .ok_or(TRUNCATED)?;
                let end = sub_blocks_end(bytes, data_at)?;
                self.seen_image = true;
                (Kind::Image, end)
            }
            EXTENSION => {
                let label_at = start.checked_add(1).ok_or(TRUNCATED)?;
                let label = *bytes.get(label_at).ok_or(TRUNCATED)?;
                let data_at = label_at.checked_add(1).ok_or(TRUNCATED)?;
                (Kind::Extension(label), sub_blocks_end(bytes, data_at)?)
            }
            TRAILER => {
                self.done = true;
                (Kind::Trailer, start.checked_add(1).ok_or(TRUNCATED)?)
            }
            _ => return Err(StripError("invalid GIF block")),
        };
        let raw = bytes.get(start..end).ok_or(TRUNCATED)?;
        self.pos = end;
        Ok(Block { kind, raw })
    }
}

impl<'a> Iterator for Blocks<'a> {
    type Item = Result<Block<'a>, StripError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let block = self.step();
        if block.is_err() {
            self.done = true;
        }
        Some(block)
    }
}

/// The identifier and authentication code of an application extension.
fn app_id(raw: &[u8]) -> Option<&[u8]> {
    if raw.get(2) != Some(&APP_ID_LEN) {
        return None;
    }
    slice_at(raw, 3, usize::from(APP_ID_LEN))
}

fn keep(block: &Block<'_>) -> bool {
    match block.kind {
        Kind::Image | Kind::Trailer | Kind::Extension(GRAPHIC_CONTROL) => true,
        Kind::Extension(APPLICATION) => app_id(block.raw).is_some_and(|id| KEPT_APPS.contains(&id)),
        // Comments, plain text, and unknown labels that could hold anything.
        Kind::Extension(_) => false,
    }
}

pub(super) fn strip(bytes: &[u8]) -> Result<Vec<u8>, StripError> {
    let mut out = Vec::with_capacity(bytes.len());
    let blocks = Blocks::new(bytes)?;
    out.extend_from_slice(bytes.get(..blocks.pos).ok_or(TRUNCATED)?);
    for block in blocks {
        let block = block?;
        if keep(&block) {
            out.extend_from_slice(block.raw);
        }
    }
    Ok(out)
}

pub(super) fn icc_profile(bytes: &[u8]) -> Option<Vec<u8>> {
    let block = Blocks::new(bytes)
        .into_iter()
        .flatten()
        .map_while(Result::ok)
        .find(|block| {
            matches!(block.kind, Kind::Extension(APPLICATION)) && app_id(block.raw) == Some(ICC_APP)
        })?;
    // The profile follows the introducer, label and identifier sub-block.
    sub_blocks_data(block.raw, 3 + usize::from(APP_ID_LEN))
}
