//! PNG: chunks are filtered by type; pixel data is copied as it is.

use super::{StripError, array_at, slice_at, u32_be, without_exif_prefix};

const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
/// The chunks kept: what a decoder needs to show the image as its author
/// saw it (header, palette, transparency, pixel data, colour space: gamma,
/// chromaticities, sRGB, ICC, CICP, HDR mastering and light levels,
/// significant bits) and APNG's animation. Everything else goes, text,
/// EXIF and timestamps as much as private chunks nobody has named yet.
const KEPT: [&[u8; 4]; 18] = [
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"cICP",
    b"mDCV", b"mDCv", b"cLLI", b"cLLi", b"sBIT", b"acTL", b"fcTL", b"fdAT",
];
/// The PNG spec caps chunk lengths at 2^31 - 1.
const MAX_CHUNK_LEN: u32 = 0x7FFF_FFFF;

const TRUNCATED: StripError = StripError("truncated PNG chunk");

struct Chunk<'a> {
    kind: [u8; 4],
    data: &'a [u8],
    /// Length, type, data and CRC, exactly as in the input.
    raw: &'a [u8],
}

/// Walks the chunks after the signature, up to and including IEND.
struct Chunks<'a> {
    bytes: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Chunks<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, StripError> {
        if !bytes.starts_with(&SIGNATURE) {
            return Err(StripError("missing PNG signature"));
        }
        Ok(Self {
            bytes,
            pos: SIGNATURE.len(),
            done: false,
        })
    }

    fn step(&mut self) -> Result<Chunk<'a>, StripError> {
        let bytes = self.bytes;
        if self.pos >= bytes.len() {
            return Err(StripError("missing PNG IEND chunk"));
        }
        let len = u32_be(bytes, self.pos).ok_or(TRUNCATED)?;
        if len > MAX_CHUNK_LEN {
            return Err(StripError("invalid PNG chunk length"));
        }
        let len = usize::try_from(len).map_err(|_| TRUNCATED)?;
        let kind_at = self.pos.checked_add(4).ok_or(TRUNCATED)?;
        let kind: [u8; 4] = array_at(bytes, kind_at).ok_or(TRUNCATED)?;
        if !kind.iter().all(u8::is_ascii_alphabetic) {
            return Err(StripError("invalid PNG chunk type"));
        }
        let data_at = kind_at.checked_add(4).ok_or(TRUNCATED)?;
        let data = slice_at(bytes, data_at, len).ok_or(TRUNCATED)?;
        // Length, type and CRC fields take 12 bytes around the data.
        let end = data_at
            .checked_add(len)
            .and_then(|n| n.checked_add(4))
            .ok_or(TRUNCATED)?;
        let raw = bytes.get(self.pos..end).ok_or(TRUNCATED)?;
        self.pos = end;
        if &kind == b"IEND" {
            self.done = true;
        }
        Ok(Chunk { kind, data, raw })
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Result<Chunk<'a>, StripError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let chunk = self.step();
        if chunk.is_err() {
            self.done = true;
        }
        Some(chunk)
    }
}

pub(super) fn strip(bytes: &[u8]) -> Result<Vec<u8>, StripError> {
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&SIGNATURE);
    for chunk in Chunks::new(bytes)? {
        let chunk = chunk?;
        if KEPT.contains(&&chunk.kind) {
            out.extend_from_slice(chunk.raw);
        }
    }
    Ok(out)
}

/// The TIFF body of the first `eXIf` chunk.
pub(super) fn exif(bytes: &[u8]) -> Option<&[u8]> {
    Chunks::new(bytes)
        .into_iter()
        .flatten()
        .map_while(Result::ok)
        .find(|chunk| &chunk.kind == b"eXIf")
        .map(|chunk| without_exif_prefix(chunk.data))
}

/// The data of the first chunk of type `kind`.
pub(super) fn chunk<'a>(bytes: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    Chunks::new(bytes)
        .into_iter()
        .flatten()
        .map_while(Result::ok)
        .find(|chunk| &chunk.kind == kind)
        .map(|chunk| chunk.data)
}
