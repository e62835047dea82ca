//! WebP: RIFF chunks are filtered by fourcc, and the VP8X flags fixed
//! to match what is left.

use super::{StripError, array_at, slice_at, u32_le, without_exif_prefix};

/// "RIFF", the RIFF size and "WEBP".
const HEADER_LEN: usize = 12;
const CHUNK_HEADER_LEN: usize = 8;
const EXIF_FLAG: u8 = 0x08;
const XMP_FLAG: u8 = 0x04;

const TRUNCATED: StripError = StripError("truncated WebP chunk");

struct Chunk<'a> {
    fourcc: [u8; 4],
    payload: &'a [u8],
    /// Header, payload and padding byte, exactly as in the input.
    raw: &'a [u8],
}

/// The chunks inside the RIFF extent; anything stored after it is ignored.
struct Chunks<'a> {
    body: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Chunks<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, StripError> {
        let bad_header = StripError("missing WebP RIFF header");
        if bytes.get(..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WEBP") {
            return Err(bad_header);
        }
        let riff_size = u32_le(bytes, 4).ok_or(bad_header)?;
        let riff_size = usize::try_from(riff_size).map_err(|_| bad_header)?;
        if riff_size < 4 {
            return Err(StripError("invalid WebP RIFF size"));
        }
        // The size counts from the "WEBP" tag, which starts at byte 8.
        let end = riff_size
            .checked_add(8)
            .ok_or(StripError("truncated WebP file"))?;
        let body = bytes
            .get(HEADER_LEN..end)
            .ok_or(StripError("truncated WebP file"))?;
        Ok(Self {
            body,
            pos: 0,
            done: false,
        })
    }

    fn step(&mut self) -> Result<Chunk<'a>, StripError> {
        let body = self.body;
        let fourcc: [u8; 4] = array_at(body, self.pos).ok_or(TRUNCATED)?;
        let size_at = self.pos.checked_add(4).ok_or(TRUNCATED)?;
        let size = u32_le(body, size_at).ok_or(TRUNCATED)?;
        let size = usize::try_from(size).map_err(|_| TRUNCATED)?;
        let payload_at = self.pos.checked_add(CHUNK_HEADER_LEN).ok_or(TRUNCATED)?;
        let payload = slice_at(body, payload_at, size).ok_or(TRUNCATED)?;
        // Odd-sized payloads are followed by one padding byte.
        let end = payload_at
            .checked_add(size)
            .and_then(|n| n.checked_add(size & 1))
            .ok_or(TRUNCATED)?;
        let raw = body.get(self.pos..end).ok_or(TRUNCATED)?;
        self.pos = end;
        Ok(Chunk {
            fourcc,
            payload,
            raw,
        })
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Result<Chunk<'a>, StripError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.body.len() {
            return None;
        }
        let chunk = self.step();
        if chunk.is_err() {
            self.done = true;
        }
        Some(chunk)
    }
}

fn find(bytes: &[u8], fourcc: [u8; 4]) -> Option<&[u8]> {
    Chunks::new(bytes)
        .into_iter()
        .flatten()
        .map_while(Result::ok)
        .find(|chunk| chunk.fourcc == fourcc)
        .map(|chunk| chunk.payload)
}

/// The chunks kept at the top level: the bitstreams, the extended header,
/// alpha, animation and the ICC profile. EXIF, XMP and every chunk nobody
/// has named yet (a C2PA manifest, say) go.
const KEPT: [&[u8; 4]; 7] = [
    b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP",
];
/// Inside an animation frame: its bitstream and alpha only.
const KEPT_IN_FRAME: [&[u8; 4]; 3] = [b"VP8 ", b"VP8L", b"ALPH"];
/// An ANMF payload starts with 16 bytes of frame geometry and timing.
const FRAME_HEADER_LEN: usize = 16;

/// Appends a chunk with `payload`, its header and padding.
fn push_chunk(out: &mut Vec<u8>, fourcc: &[u8; 4], payload: &[u8]) -> Result<(), StripError> {
    let size = u32::try_from(payload.len()).map_err(|_| StripError("WebP chunk too large"))?;
    out.extend_from_slice(fourcc);
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(payload);
    if payload.len() % 2 == 1 {
        out.push(0);
    }
    Ok(())
}

/// An animation frame with only its bitstream and alpha sub-chunks.
fn strip_frame(payload: &[u8]) -> Result<Vec<u8>, StripError> {
    let header = payload
        .get(..FRAME_HEADER_LEN)
        .ok_or(StripError("truncated WebP animation frame"))?;
    let mut frame = header.to_vec();
    let mut pos = FRAME_HEADER_LEN;
    while pos < payload.len() {
        let fourcc: [u8; 4] = array_at(payload, pos).ok_or(TRUNCATED)?;
        let size_at = pos.checked_add(4).ok_or(TRUNCATED)?;
        let size =
            usize::try_from(u32_le(payload, size_at).ok_or(TRUNCATED)?).map_err(|_| TRUNCATED)?;
        let data_at = pos.checked_add(CHUNK_HEADER_LEN).ok_or(TRUNCATED)?;
        let data = slice_at(payload, data_at, size).ok_or(TRUNCATED)?;
        if KEPT_IN_FRAME.contains(&&fourcc) {
            push_chunk(&mut frame, &fourcc, data)?;
        }
        pos = data_at
            .checked_add(size)
            .and_then(|n| n.checked_add(size & 1))
            .ok_or(TRUNCATED)?;
    }
    Ok(frame)
}

pub(super) fn strip(bytes: &[u8]) -> Result<Vec<u8>, StripError> {
    let mut body = Vec::with_capacity(bytes.len());
    for chunk in Chunks::new(bytes)? {
        let chunk = chunk?;
        match &chunk.fourcc {
            b"VP8X" => {
                let start = body.len();
                body.extend_from_slice(chunk.raw);
                // Readers trust these flags and would go looking for the
                // chunks just removed.
                if let Some(flags) = start
                    .checked_add(CHUNK_HEADER_LEN)
                    .and_then(|at| body.get_mut(at))
                {
                    *flags &= !(EXIF_FLAG | XMP_FLAG);
                }
            }
            b"ANMF" => push_chunk(&mut body, b"ANMF", &strip_frame(chunk.payload)?)?,
            kind if KEPT.contains(&kind) => body.extend_from_slice(chunk.raw),
            _ => {}
        }
    }
    let riff_size = body
        .len()
        .checked_add(4)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(StripError("WebP file too large"))?;
    let mut out = Vec::with_capacity(body.len().saturating_add(HEADER_LEN));
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&riff_size.to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&body);
    Ok(out)
}

/// The payloads of every top-level chunk of type `fourcc`.
pub(super) fn chunks(bytes: &[u8], fourcc: [u8; 4]) -> Vec<&[u8]> {
    Chunks::new(bytes)
        .into_iter()
        .flatten()
        .map_while(Result::ok)
        .filter(|chunk| chunk.fourcc == fourcc)
        .map(|chunk| chunk.payload)
        .collect()
}

/// The TIFF body of the `EXIF` chunk.
pub(super) fn exif(bytes: &[u8]) -> Option<&[u8]> {
    find(bytes, *b"EXIF").map(without_exif_prefix)
}

pub(super) fn icc_profile(bytes: &[u8]) -> Option<Vec<u8>> {
    find(bytes, *b"ICCP").map(<[u8]>::to_vec)
}
