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
/// Dropped: EXIF, XMP, IPTC/Photoshop resources, comments, text chunks,
/// timestamps, embedded thumbnails, and anything stored after the format's
/// end marker (a JPEG's EOI, a PNG's IEND, a GIF's trailer, the RIFF extent of
/// a WebP). Kept: everything needed to decode and display the image the same
/// way, including the ICC profile. Pixel data is never re-encoded.
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

mod tiff {
    use super::array_at;

    const ORIENTATION_TAG: u16 = 0x0112;
    const TYPE_SHORT: u16 = 3;
    const IFD_ENTRY_LEN: usize = 12;

    /// Orientation from IFD0 of a TIFF structure (the body of any EXIF block).
    pub(super) fn orientation(tiff: &[u8]) -> Option<u16> {
        let big_endian = match tiff.get(..2)? {
            [b'I', b'I'] => false,
            [b'M', b'M'] => true,
            _ => return None,
        };
        let u16_at = |at: usize| {
            array_at(tiff, at).map(|b| {
                if big_endian {
                    u16::from_be_bytes(b)
                } else {
                    u16::from_le_bytes(b)
                }
            })
        };
        let u32_at = |at: usize| {
            array_at(tiff, at).map(|b| {
                if big_endian {
                    u32::from_be_bytes(b)
                } else {
                    u32::from_le_bytes(b)
                }
            })
        };

        if u16_at(2)? != 42 {
            return None;
        }
        let ifd = usize::try_from(u32_at(4)?).ok()?;
        let count = usize::from(u16_at(ifd)?);
        let first_entry = ifd.checked_add(2)?;
        for index in 0..count {
            let entry = first_entry.checked_add(index.checked_mul(IFD_ENTRY_LEN)?)?;
            if u16_at(entry)? != ORIENTATION_TAG {
                continue;
            }
            if u16_at(entry.checked_add(2)?)? != TYPE_SHORT || u32_at(entry.checked_add(4)?)? == 0 {
                return None;
            }
            // A single SHORT is stored inline, left-justified in the value field.
            let value = u16_at(entry.checked_add(8)?)?;
            return (1..=8).contains(&value).then_some(value);
        }
        None
    }
}

mod jpeg {
    use super::{StripError, u16_be};

    const SOI: u8 = 0xD8;
    const EOI: u8 = 0xD9;
    const SOS: u8 = 0xDA;
    const TEM: u8 = 0x01;
    const APP0: u8 = 0xE0;
    const APP1: u8 = 0xE1;
    const APP2: u8 = 0xE2;
    const APP14: u8 = 0xEE;
    const APP15: u8 = 0xEF;
    const COM: u8 = 0xFE;

    const JFIF: &[u8] = b"JFIF\0";
    const JFXX: &[u8] = b"JFXX\0";
    const EXIF: &[u8] = b"Exif\0\0";
    const ICC_PROFILE: &[u8] = b"ICC_PROFILE\0";
    /// Identifier, version, units, densities and the two thumbnail dimensions.
    const JFIF_FIXED_LEN: usize = 14;

    const TRUNCATED: StripError = StripError("truncated JPEG segment");

    /// One piece of a JPEG stream, borrowed from the input.
    enum Part<'a> {
        /// A marker with its length-prefixed payload (empty for standalone
        /// markers); `raw` runs from the 0xFF before the marker code to the end
        /// of the payload, with any fill bytes before it left out.
        Marker {
            marker: u8,
            raw: &'a [u8],
            payload: &'a [u8],
        },
        /// Entropy-coded data after an SOS header, up to the next real marker.
        Scan(&'a [u8]),
    }

    /// Walks a JPEG after its SOI.
    ///
    /// Walking continues through the scans rather than stopping at the first
    /// SOS because progressive files may carry APPn/COM segments between scans,
    /// and because phones append whole extra JPEGs (MPF depth maps, gain maps,
    /// each with its own EXIF) or videos after the EOI.
    struct Parts<'a> {
        bytes: &'a [u8],
        pos: usize,
        stop_at_sos: bool,
        next: Next,
        seen_scan: bool,
    }

    /// What the walker expects at `pos`.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Next {
        Marker,
        Scan,
        Done,
    }

    impl<'a> Parts<'a> {
        fn new(bytes: &'a [u8], stop_at_sos: bool) -> Result<Self, StripError> {
            if !bytes.starts_with(&[0xFF, SOI]) {
                return Err(StripError("missing JPEG SOI marker"));
            }
            Ok(Self {
                bytes,
                pos: 2,
                stop_at_sos,
                next: Next::Marker,
                seen_scan: false,
            })
        }

        fn step(&mut self) -> Result<Option<Part<'a>>, StripError> {
            let bytes = self.bytes;
            if self.next == Next::Scan {
                self.next = Next::Marker;
                self.seen_scan = true;
                let end = scan_end(bytes, self.pos);
                let data = bytes.get(self.pos..end).ok_or(TRUNCATED)?;
                self.pos = end;
                return Ok(Some(Part::Scan(data)));
            }
            if self.seen_scan && self.pos >= bytes.len() {
                // Cut off after whole scans without an EOI: decoders still show
                // what is there, so this counts as the end rather than an error.
                return Ok(None);
            }

            let (ff, marker) = read_marker(bytes, self.pos)?;
            let after = ff.checked_add(2).ok_or(TRUNCATED)?;
            match marker {
                EOI => {
                    self.next = Next::Done;
                    let raw = bytes.get(ff..after).ok_or(TRUNCATED)?;
                    Ok(Some(Part::Marker {
                        marker,
                        raw,
                        payload: &[],
                    }))
                }
                TEM | 0xD0..=0xD7 => {
                    self.pos = after;
                    let raw = bytes.get(ff..after).ok_or(TRUNCATED)?;
                    Ok(Some(Part::Marker {
                        marker,
                        raw,
                        payload: &[],
                    }))
                }
                0x00 | SOI => Err(StripError("unexpected JPEG marker")),
                _ => {
                    let len = usize::from(u16_be(bytes, after).ok_or(TRUNCATED)?);
                    if len < 2 {
                        return Err(StripError("invalid JPEG segment length"));
                    }
                    let end = after.checked_add(len).ok_or(TRUNCATED)?;
                    let raw = bytes.get(ff..end).ok_or(TRUNCATED)?;
                    let payload = raw.get(4..).ok_or(TRUNCATED)?;
                    self.pos = end;
                    if marker == SOS {
                        self.next = if self.stop_at_sos {
                            Next::Done
                        } else {
                            Next::Scan
                        };
                    }
                    Ok(Some(Part::Marker {
                        marker,
                        raw,
                        payload,
                    }))
                }
            }
        }
    }

    impl<'a> Iterator for Parts<'a> {
        type Item = Result<Part<'a>, StripError>;

        fn next(&mut self) -> Option<Self::Item> {
            if self.next == Next::Done {
                return None;
            }
            match self.step() {
                Ok(Some(part)) => Some(Ok(part)),
                Ok(None) => {
                    self.next = Next::Done;
                    None
                }
                Err(err) => {
                    self.next = Next::Done;
                    Some(Err(err))
                }
            }
        }
    }

    /// Finds the marker at `pos`: returns the index of the 0xFF directly before
    /// the marker code (fill bytes skipped) and the code itself.
    fn read_marker(bytes: &[u8], pos: usize) -> Result<(usize, u8), StripError> {
        match bytes.get(pos) {
            Some(0xFF) => {}
            Some(_) => return Err(StripError("expected JPEG marker")),
            None => return Err(StripError("JPEG ends before its image data")),
        }
        let mut ff = pos;
        loop {
            let next = ff.checked_add(1).ok_or(TRUNCATED)?;
            match bytes.get(next) {
                Some(0xFF) => ff = next,
                Some(&marker) => return Ok((ff, marker)),
                None => return Err(TRUNCATED),
            }
        }
    }

    /// Index of the first real marker at or after `from`, or the input length.
    fn scan_end(bytes: &[u8], from: usize) -> usize {
        let mut at = from;
        loop {
            let Some(offset) = bytes
                .get(at..)
                .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
            else {
                return bytes.len();
            };
            // Indices stay within `bytes.len()`, so saturation never kicks in.
            let ff = at.saturating_add(offset);
            match bytes.get(ff.saturating_add(1)) {
                // Byte stuffing and restart markers belong to the scan.
                Some(0x00 | 0xD0..=0xD7) => at = ff.saturating_add(2),
                // A fill byte: the marker, if any, follows it.
                Some(0xFF) => at = ff.saturating_add(1),
                Some(_) => return ff,
                None => return bytes.len(),
            }
        }
    }

    /// Whether a segment is needed to decode or colour-manage the image.
    fn keep(marker: u8, payload: &[u8]) -> bool {
        match marker {
            // JFXX exists only to hold a thumbnail, which may show the uncropped original.
            APP0 => !payload.starts_with(JFXX),
            APP2 => payload.starts_with(ICC_PROFILE),
            // Adobe's transform flag decides between RGB/YCbCr and CMYK/YCCK;
            // without it decoders guess and may show the wrong colours.
            APP14 => true,
            APP1..=APP15 | COM => false,
            _ => true,
        }
    }

    pub(super) fn strip(bytes: &[u8]) -> Result<Vec<u8>, StripError> {
        let mut out = Vec::with_capacity(bytes.len());
        out.extend_from_slice(&[0xFF, SOI]);
        for part in Parts::new(bytes, false)? {
            match part? {
                Part::Scan(data) => out.extend_from_slice(data),
                Part::Marker {
                    marker,
                    raw,
                    payload,
                } => {
                    if !keep(marker, payload) {
                        continue;
                    }
                    match jfif_without_thumbnail(marker, payload) {
                        Some(fixed) => {
                            // A JFIF thumbnail can show what a later crop removed.
                            out.extend_from_slice(&[0xFF, APP0, 0, 16]);
                            out.extend_from_slice(fixed);
                            out.extend_from_slice(&[0, 0]);
                        }
                        None => out.extend_from_slice(raw),
                    }
                }
            }
        }
        Ok(out)
    }

    /// The leading part of a JFIF APP0 that carries a thumbnail, without the
    /// thumbnail dimensions; `None` for any other segment.
    fn jfif_without_thumbnail(marker: u8, payload: &[u8]) -> Option<&[u8]> {
        if marker != APP0 || !payload.starts_with(JFIF) {
            return None;
        }
        let has_thumbnail = payload.len() > JFIF_FIXED_LEN
            || payload
                .get(JFIF_FIXED_LEN - 2..JFIF_FIXED_LEN)
                .is_some_and(|dims| dims != [0, 0]);
        if has_thumbnail {
            payload.get(..JFIF_FIXED_LEN - 2)
        } else {
            None
        }
    }

    /// Header segments up to the first SOS, stopping quietly at the first
    /// malformed one so readable metadata before it is still found.
    fn header(bytes: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
        Parts::new(bytes, true)
            .into_iter()
            .flatten()
            .map_while(Result::ok)
            .filter_map(|part| match part {
                Part::Marker {
                    marker, payload, ..
                } => Some((marker, payload)),
                Part::Scan(_) => None,
            })
    }

    /// The TIFF body of the first APP1 Exif segment.
    pub(super) fn exif(bytes: &[u8]) -> Option<&[u8]> {
        header(bytes).find_map(|(marker, payload)| {
            if marker == APP1 {
                payload.strip_prefix(EXIF)
            } else {
                None
            }
        })
    }

    pub(super) fn icc_profile(bytes: &[u8]) -> Option<Vec<u8>> {
        // Each chunk is: sequence number (1-based), chunk count, profile bytes.
        let mut chunks: Vec<(u8, u8, &[u8])> = header(bytes)
            .filter(|&(marker, _)| marker == APP2)
            .filter_map(|(_, payload)| {
                let rest = payload.strip_prefix(ICC_PROFILE)?;
                let (&seq, rest) = rest.split_first()?;
                let (&count, data) = rest.split_first()?;
                Some((seq, count, data))
            })
            .collect();
        let &(_, count, _) = chunks.first()?;
        if usize::from(count) != chunks.len() || chunks.iter().any(|&(_, c, _)| c != count) {
            return None;
        }
        chunks.sort_unstable_by_key(|&(seq, _, _)| seq);
        let mut profile = Vec::new();
        for (expected, &(seq, _, data)) in (1..=count).zip(&chunks) {
            if seq != expected {
                return None;
            }
            profile.extend_from_slice(data);
        }
        Some(profile)
    }
}

mod png {
    use super::{StripError, array_at, slice_at, u32_be, without_exif_prefix};

    const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    /// Text, EXIF and modification time: none is needed to render the image.
    const DROPPED: [&[u8; 4]; 5] = [b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"];
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
            if !DROPPED.contains(&&chunk.kind) {
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
}

mod gif {
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
                    let descriptor =
                        slice_at(bytes, start, IMAGE_DESCRIPTOR_LEN).ok_or(TRUNCATED)?;
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
            Kind::Extension(APPLICATION) => {
                app_id(block.raw).is_some_and(|id| KEPT_APPS.contains(&id))
            }
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
                matches!(block.kind, Kind::Extension(APPLICATION))
                    && app_id(block.raw) == Some(ICC_APP)
            })?;
        // The profile follows the introducer, label and identifier sub-block.
        sub_blocks_data(block.raw, 3 + usize::from(APP_ID_LEN))
    }
}

mod webp {
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

    pub(super) fn strip(bytes: &[u8]) -> Result<Vec<u8>, StripError> {
        let mut body = Vec::with_capacity(bytes.len());
        for chunk in Chunks::new(bytes)? {
            let chunk = chunk?;
            match &chunk.fourcc {
                b"EXIF" | b"XMP " => {}
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
                _ => body.extend_from_slice(chunk.raw),
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

    /// The TIFF body of the `EXIF` chunk.
    pub(super) fn exif(bytes: &[u8]) -> Option<&[u8]> {
        find(bytes, *b"EXIF").map(without_exif_prefix)
    }

    pub(super) fn icc_profile(bytes: &[u8]) -> Option<Vec<u8>> {
        find(bytes, *b"ICCP").map(<[u8]>::to_vec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn cat(pieces: &[&[u8]]) -> Vec<u8> {
        pieces.concat()
    }

    /// A TIFF block with Make, Orientation and a GPS IFD holding a latitude ref.
    fn tiff(big_endian: bool, orientation: u16) -> Vec<u8> {
        let w16 = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w32 = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let entry = |tag: u16, kind: u16, count: u32, value: [u8; 4]| {
            [&w16(tag)[..], &w16(kind), &w32(count), &value].concat()
        };
        let short = w16(orientation);
        // Header (8) + count (2) + three entries (36) + next-IFD offset (4).
        let gps_ifd = 50;
        cat(&[
            if big_endian { b"MM" } else { b"II" },
            &w16(42),
            &w32(8),
            &w16(3),
            &entry(0x010F, 2, 4, *b"Cam\0"),
            &entry(0x0112, 3, 1, [short[0], short[1], 0, 0]),
            &entry(0x8825, 4, 1, w32(gps_ifd)),
            &w32(0),
            &w16(1),
            &entry(0x0001, 2, 2, *b"N\0\0\0"),
            &w32(0),
        ])
    }

    fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
        let Ok(len) = u16::try_from(payload.len() + 2) else {
            panic!("test segment too long");
        };
        cat(&[&[0xFF, marker], &len.to_be_bytes(), payload])
    }

    const JFIF_APP0: &[u8] = b"JFIF\0\x01\x02\x00\x00\x01\x00\x01\x00\x00";

    struct JpegSample {
        input: Vec<u8>,
        expected: Vec<u8>,
        /// Length of the input up to the first entropy-coded data.
        header_len: usize,
        /// Length of the expected output up to the first entropy-coded data.
        kept_header_len: usize,
    }

    fn jpeg_sample() -> JpegSample {
        let soi: &[u8] = &[0xFF, 0xD8];
        let app0 = segment(0xE0, JFIF_APP0);
        let exif = segment(0xE1, &cat(&[b"Exif\0\0", &tiff(false, 6)]));
        let xmp = segment(
            0xE1,
            b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>Alice</x:xmpmeta>",
        );
        let icc1 = segment(0xE2, b"ICC_PROFILE\0\x01\x02first-half;");
        let mpf = segment(0xE2, b"MPF\0II*\0\x08\0\0\0");
        let icc2 = segment(0xE2, b"ICC_PROFILE\0\x02\x02second-half");
        let iptc = segment(0xED, b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\x05Alice");
        let adobe = segment(0xEE, b"Adobe\0\x64\0\0\0\0\x01");
        let com = segment(0xFE, b"shot by Alice");
        let app15 = segment(0xEF, b"vendor junk");
        let dqt = segment(0xDB, &[0u8; 65]);
        let sof = segment(0xC2, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]);
        let dht = segment(
            0xC4,
            &[0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5],
        );
        let sos = segment(0xDA, &[1, 1, 0, 0, 63, 0]);
        // Stuffed 0xFF00, a restart marker and a fill byte before another restart.
        let scan1: &[u8] = &[
            0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF, 0xD1, 0x78,
        ];
        let com_between = segment(0xFE, b"between scans");
        let scan2: &[u8] = &[0x9A, 0xBC];
        let eoi: &[u8] = &[0xFF, 0xD9];
        let appended = cat(&[soi, &exif, &sos, &[1, 2, 3], eoi]);
        let fill: &[u8] = &[0xFF, 0xFF];

        let head = cat(&[
            soi, &app0, &exif, &xmp, &icc1, &mpf, &icc2, &iptc, &adobe, &com, &app15, fill, &dqt,
            &sof, &dht, &sos,
        ]);
        let input = cat(&[
            &head,
            scan1,
            &com_between,
            &dht,
            &sos,
            scan2,
            eoi,
            &appended,
        ]);
        let kept_head = cat(&[soi, &app0, &icc1, &icc2, &adobe, &dqt, &sof, &dht, &sos]);
        let expected = cat(&[&kept_head, scan1, &dht, &sos, scan2, eoi]);
        JpegSample {
            input,
            expected,
            header_len: head.len(),
            kept_header_len: kept_head.len(),
        }
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let Ok(len) = u32::try_from(data.len()) else {
            panic!("test chunk too long");
        };
        let crc = crc32(&cat(&[kind, data]));
        cat(&[&len.to_be_bytes(), kind, data, &crc.to_be_bytes()])
    }

    const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

    /// Returns the input, the expected output, and the length up to IEND.
    fn png_sample() -> (Vec<u8>, Vec<u8>, usize) {
        let ihdr = chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
        let iccp = chunk(b"iCCP", b"Display P3\0\0\x78\x01compressed");
        let srgb = chunk(b"sRGB", &[0]);
        let gama = chunk(b"gAMA", &45455u32.to_be_bytes());
        let text = chunk(b"tEXt", b"Author\0Alice");
        let ztxt = chunk(b"zTXt", b"Comment\0\0\x78\x01secret");
        let itxt = chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta/>");
        let exif = chunk(b"eXIf", &tiff(true, 3));
        let time = chunk(b"tIME", &[0x07, 0xE8, 1, 2, 3, 4, 5]);
        let phys = chunk(b"pHYs", &[0, 0, 0x0B, 0x13, 0, 0, 0x0B, 0x13, 1]);
        let actl = chunk(b"acTL", &[0, 0, 0, 1, 0, 0, 0, 0]);
        let idat = chunk(
            b"IDAT",
            &[0x78, 0x01, 0x63, 0x60, 0x60, 0x60, 0, 0, 0, 4, 0, 1],
        );
        let iend = chunk(b"IEND", &[]);
        let after = chunk(b"tEXt", b"Trailing\0Alice");
        let input = cat(&[
            PNG_SIGNATURE,
            &ihdr,
            &iccp,
            &srgb,
            &gama,
            &text,
            &ztxt,
            &itxt,
            &exif,
            &time,
            &phys,
            &actl,
            &idat,
            &iend,
            &after,
        ]);
        let expected = cat(&[
            PNG_SIGNATURE,
            &ihdr,
            &iccp,
            &srgb,
            &gama,
            &phys,
            &actl,
            &idat,
            &iend,
        ]);
        let end = input.len() - after.len();
        (input, expected, end)
    }

    fn app_extension(id: &[u8; 11], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x21, 0xFF, 11];
        out.extend_from_slice(id);
        for block in data.chunks(255) {
            let Ok(len) = u8::try_from(block.len()) else {
                panic!("sub-block too long");
            };
            out.push(len);
            out.extend_from_slice(block);
        }
        out.push(0);
        out
    }

    /// Returns the input, the expected output, and the length up to the trailer.
    fn gif_sample() -> (Vec<u8>, Vec<u8>, usize) {
        let screen: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xFF\xFF\xFF";
        let netscape = app_extension(b"NETSCAPE2.0", &[1, 0, 0]);
        let xmp = app_extension(b"XMP DataXMP", b"<x:xmpmeta>Alice</x:xmpmeta>");
        let icc = app_extension(b"ICCRGBG1012", &[7u8; 300]);
        let comment: &[u8] = b"\x21\xFE\x05Alice\x00";
        let gce: &[u8] = &[0x21, 0xF9, 4, 0, 0, 0, 0, 0];
        let plain_text: &[u8] = &[
            0x21, 0x01, 12, 0, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 3, b'a', b'b', b'c', 0,
        ];
        let unknown: &[u8] = &[0x21, 0xAB, 2, 9, 9, 0];
        let image: &[u8] = &[
            0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0x80, 0, 0, 0, 0xFF, 0xFF, 0xFF, 2, 2, 0x44, 0x01, 0,
        ];
        let trailer: &[u8] = &[0x3B];
        let after: &[u8] = b"\x21\xFE\x05Alice\x00";
        let input = cat(&[
            screen, &netscape, &xmp, &icc, comment, gce, plain_text, unknown, image, trailer, after,
        ]);
        let expected = cat(&[screen, &netscape, &icc, gce, image, trailer]);
        let end = input.len() - after.len();
        (input, expected, end)
    }

    fn riff_chunk(fourcc: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let Ok(len) = u32::try_from(payload.len()) else {
            panic!("test chunk too long");
        };
        let mut out = cat(&[fourcc, &len.to_le_bytes(), payload]);
        if payload.len() % 2 == 1 {
            out.push(0);
        }
        out
    }

    fn riff(chunks: &[&[u8]]) -> Vec<u8> {
        let body = chunks.concat();
        let Ok(size) = u32::try_from(body.len() + 4) else {
            panic!("test file too long");
        };
        cat(&[b"RIFF", &size.to_le_bytes(), b"WEBP", &body])
    }

    /// Returns the input, the expected output, and the RIFF extent.
    fn webp_sample() -> (Vec<u8>, Vec<u8>, usize) {
        // ICC, alpha, EXIF and XMP flags; 1x1 canvas.
        let vp8x = |flags: u8| riff_chunk(b"VP8X", &[flags, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let iccp = riff_chunk(b"ICCP", b"ICC!!");
        let vp8l = riff_chunk(b"VP8L", &[0x2F, 0, 0, 0, 0x10, 0x07, 0x10]);
        let exif = riff_chunk(b"EXIF", &tiff(true, 8));
        let xmp = riff_chunk(b"XMP ", b"<x:xmpmeta>Alice</x:xmpmeta>!");
        let unknown = riff_chunk(b"ABCD", b"keep");
        let input = riff(&[&vp8x(0x3C), &iccp, &vp8l, &exif, &xmp, &unknown]);
        let end = input.len();
        let input = cat(&[&input, b"EXIFtrailing Alice"]);
        let expected = riff(&[&vp8x(0x30), &iccp, &vp8l, &unknown]);
        (input, expected, end)
    }

    #[test]
    fn jpeg_keeps_image_and_colour_segments_only() {
        let sample = jpeg_sample();
        let out = strip(Container::Jpeg, &sample.input);
        assert_eq!(out.as_deref(), Ok(&sample.expected[..]));
        let out = out.unwrap_or_default();
        assert!(!contains(&out, b"Exif\0\0"));
        assert!(!contains(&out, b"Alice"));
        assert!(!contains(&out, b"MPF\0"));
        assert!(!contains(&out, &[0xFF, 0xFE]), "COM marker survived");
        assert_eq!(
            strip(Container::Jpeg, &out),
            Ok(out.clone()),
            "not idempotent"
        );
    }

    #[test]
    fn jpeg_drops_jfif_thumbnail_and_jfxx() {
        let thumbnail = cat(&[&JFIF_APP0[..12], &[2, 1], &[0xAA; 6]]);
        let jfxx = segment(0xE0, b"JFXX\0\x13\xAA\xBB");
        let sos = segment(0xDA, &[1, 1, 0, 0, 63, 0]);
        let input = cat(&[
            &[0xFF, 0xD8],
            &segment(0xE0, &thumbnail),
            &jfxx,
            &sos,
            &[1, 2],
            &[0xFF, 0xD9],
        ]);
        let expected = cat(&[
            &[0xFF, 0xD8],
            &segment(0xE0, &cat(&[&JFIF_APP0[..12], &[0, 0]])),
            &sos,
            &[1, 2],
            &[0xFF, 0xD9],
        ]);
        assert_eq!(strip(Container::Jpeg, &input), Ok(expected));
    }

    #[test]
    fn jpeg_rejects_malformed_input() {
        let sos = segment(0xDA, &[1, 1, 0, 0, 63, 0]);
        let no_soi = cat(&[&segment(0xE0, JFIF_APP0), &sos]);
        assert_eq!(
            strip(Container::Jpeg, &no_soi),
            Err(StripError("missing JPEG SOI marker"))
        );
        let overlong = cat(&[&[0xFF, 0xD8, 0xFF, 0xE1, 0x01, 0x00], b"Exif\0\0"]);
        assert_eq!(
            strip(Container::Jpeg, &overlong),
            Err(StripError("truncated JPEG segment"))
        );
        let short_len = [0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x01, 0xFF, 0xDA];
        assert_eq!(
            strip(Container::Jpeg, &short_len),
            Err(StripError("invalid JPEG segment length"))
        );
        let junk = cat(&[&[0xFF, 0xD8, 0x00], &sos]);
        assert_eq!(
            strip(Container::Jpeg, &junk),
            Err(StripError("expected JPEG marker"))
        );
        let stuffed = cat(&[&[0xFF, 0xD8, 0xFF, 0x00], &sos]);
        assert!(strip(Container::Jpeg, &stuffed).is_err());
    }

    #[test]
    fn jpeg_truncated_in_scan_keeps_what_is_there() {
        let sample = jpeg_sample();
        let cut = sample.header_len + 3;
        let expected = &sample.expected[..sample.kept_header_len + 3];
        assert_eq!(
            strip(Container::Jpeg, &sample.input[..cut]).as_deref(),
            Ok(expected)
        );
    }

    #[test]
    fn png_drops_text_exif_and_time() {
        let (input, expected, _) = png_sample();
        let out = strip(Container::Png, &input);
        assert_eq!(out.as_deref(), Ok(&expected[..]));
        let out = out.unwrap_or_default();
        assert!(contains(&out, b"iCCP"));
        for kind in [b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"] {
            assert!(!contains(&out, kind), "{kind:?} survived");
        }
        assert_eq!(
            strip(Container::Png, &out),
            Ok(out.clone()),
            "not idempotent"
        );
    }

    #[test]
    fn png_rejects_malformed_input() {
        let (input, _, end) = png_sample();
        assert_eq!(
            strip(Container::Png, &input[1..]),
            Err(StripError("missing PNG signature"))
        );
        let iend_len = 12;
        assert_eq!(
            strip(Container::Png, &input[..end - iend_len]),
            Err(StripError("missing PNG IEND chunk"))
        );
        let overlong = cat(&[PNG_SIGNATURE, &[0, 0, 1, 0], b"IHDR", &[0; 20]]);
        assert_eq!(
            strip(Container::Png, &overlong),
            Err(StripError("truncated PNG chunk"))
        );
        let huge = cat(&[PNG_SIGNATURE, &[0xFF; 4], b"IHDR", &[0; 20]]);
        assert_eq!(
            strip(Container::Png, &huge),
            Err(StripError("invalid PNG chunk length"))
        );
    }

    #[test]
    fn gif_keeps_frames_looping_and_profile_only() {
        let (input, expected, _) = gif_sample();
        let out = strip(Container::Gif, &input);
        assert_eq!(out.as_deref(), Ok(&expected[..]));
        let out = out.unwrap_or_default();
        assert!(!contains(&out, b"Alice"));
        assert!(!contains(&out, b"XMP DataXMP"));
        assert!(!contains(&out, &[0x21, 0xFE]), "comment extension survived");
        assert_eq!(
            strip(Container::Gif, &out),
            Ok(out.clone()),
            "not idempotent"
        );
    }

    #[test]
    fn gif_without_trailer_after_frames_gets_one() {
        let (input, expected, end) = gif_sample();
        assert_eq!(strip(Container::Gif, &input[..end - 1]), Ok(expected));
    }

    #[test]
    fn gif_rejects_malformed_input() {
        assert_eq!(
            strip(Container::Gif, b"GIF90a\x01\x00\x01\x00\x00\x00\x00\x3B"),
            Err(StripError("missing GIF signature"))
        );
        assert_eq!(
            strip(
                Container::Gif,
                b"GIF89a\x01\x00\x01\x00\x00\x00\x00\x21\xFE\x01a\x00"
            ),
            Err(StripError("missing GIF trailer"))
        );
        assert_eq!(
            strip(
                Container::Gif,
                b"GIF89a\x01\x00\x01\x00\x00\x00\x00\x21\xFE\x09ab\x00\x3B"
            ),
            Err(StripError("truncated GIF block"))
        );
        assert_eq!(
            strip(
                Container::Gif,
                b"GIF89a\x01\x00\x01\x00\x00\x00\x00\x99\x3B"
            ),
            Err(StripError("invalid GIF block"))
        );
    }

    #[test]
    fn webp_drops_exif_and_xmp_and_fixes_header() {
        let (input, expected, _) = webp_sample();
        let out = strip(Container::WebP, &input);
        assert_eq!(out.as_deref(), Ok(&expected[..]));
        let out = out.unwrap_or_default();
        assert_eq!(
            out.get(4..8),
            Some(&u32::try_from(out.len() - 8).unwrap_or(0).to_le_bytes()[..])
        );
        assert_eq!(out.get(20), Some(&0x30), "VP8X EXIF/XMP flags not cleared");
        assert!(!contains(&out, b"EXIF"));
        assert!(!contains(&out, b"XMP "));
        assert!(!contains(&out, b"Alice"));
        assert_eq!(
            strip(Container::WebP, &out),
            Ok(out.clone()),
            "not idempotent"
        );
    }

    #[test]
    fn webp_rejects_malformed_input() {
        let (input, _, end) = webp_sample();
        assert_eq!(
            strip(Container::WebP, &input[..end - 1]),
            Err(StripError("truncated WebP file"))
        );
        assert_eq!(
            strip(Container::WebP, b"RIFX\x04\x00\x00\x00WEBP"),
            Err(StripError("missing WebP RIFF header"))
        );
        let overlong = riff(&[b"VP8L\x20\x00\x00\x00abc"]);
        assert_eq!(
            strip(Container::WebP, &overlong),
            Err(StripError("truncated WebP chunk"))
        );
        let missing_pad = riff(&[b"VP8L\x03\x00\x00\x00abc"]);
        assert_eq!(
            strip(Container::WebP, &missing_pad),
            Err(StripError("truncated WebP chunk"))
        );
    }

    #[test]
    fn orientation_from_each_container_and_byte_order() {
        assert_eq!(
            exif_orientation(Container::Jpeg, &jpeg_sample().input),
            Some(6)
        );
        assert_eq!(exif_orientation(Container::Png, &png_sample().0), Some(3));
        assert_eq!(exif_orientation(Container::WebP, &webp_sample().0), Some(8));
        assert_eq!(exif_orientation(Container::Gif, &gif_sample().0), None);
        for big_endian in [false, true] {
            for value in 1..=8 {
                assert_eq!(tiff::orientation(&tiff(big_endian, value)), Some(value));
            }
            assert_eq!(tiff::orientation(&tiff(big_endian, 0)), None);
            assert_eq!(tiff::orientation(&tiff(big_endian, 9)), None);
        }
        // Prefix tolerated where the spec says the TIFF header comes first.
        let prefixed = cat(&[b"Exif\0\0", &tiff(false, 5)]);
        let webp = riff(&[&riff_chunk(b"EXIF", &prefixed)]);
        assert_eq!(exif_orientation(Container::WebP, &webp), Some(5));
    }

    #[test]
    fn orientation_rejects_bad_tiff() {
        let good = tiff(true, 6);
        // Orientation stored as LONG instead of SHORT.
        let mut wrong_type = good.clone();
        if let Some(kind) = wrong_type.get_mut(24..26) {
            kind.copy_from_slice(&[0, 4]);
        }
        assert_eq!(tiff::orientation(&wrong_type), None);
        let mut bad_magic = good.clone();
        if let Some(magic) = bad_magic.get_mut(3) {
            *magic = 43;
        }
        assert_eq!(tiff::orientation(&bad_magic), None);
        let mut far_ifd = good.clone();
        if let Some(offset) = far_ifd.get_mut(4..8) {
            offset.copy_from_slice(&[0xFF; 4]);
        }
        assert_eq!(tiff::orientation(&far_ifd), None);
        assert_eq!(tiff::orientation(b"XX\0*\0\0\0\x08"), None);
        for len in 0..good.len() {
            let found = good.get(..len).and_then(tiff::orientation);
            // The orientation value ends at byte 32 (8 + 2 + 12 + 10).
            assert_eq!(found, (len >= 32).then_some(6), "prefix {len}");
        }
        let stripped = strip(Container::Jpeg, &jpeg_sample().input).unwrap_or_default();
        assert_eq!(exif_orientation(Container::Jpeg, &stripped), None);
    }

    #[test]
    fn icc_profile_per_container() {
        let sample = jpeg_sample();
        let expected = b"first-half;second-half".to_vec();
        assert_eq!(
            icc_profile(Container::Jpeg, &sample.input),
            Some(expected.clone())
        );
        let stripped = strip(Container::Jpeg, &sample.input).unwrap_or_default();
        assert_eq!(icc_profile(Container::Jpeg, &stripped), Some(expected));
        assert_eq!(
            icc_profile(Container::WebP, &webp_sample().0),
            Some(b"ICC!!".to_vec())
        );
        assert_eq!(
            icc_profile(Container::Gif, &gif_sample().0),
            Some(vec![7u8; 300])
        );
        assert_eq!(icc_profile(Container::Png, &png_sample().0), None);
    }

    #[test]
    fn jpeg_icc_chunks_are_ordered_and_validated() {
        let sos = segment(0xDA, &[1, 1, 0, 0, 63, 0]);
        let jpeg = |chunks: &[&[u8]]| {
            let segments: Vec<Vec<u8>> = chunks
                .iter()
                .map(|c| segment(0xE2, &cat(&[b"ICC_PROFILE\0", c])))
                .collect();
            cat(&[&[0xFF, 0xD8], &segments.concat(), &sos, &[0xFF, 0xD9]])
        };
        let reversed = jpeg(&[b"\x02\x02BB", b"\x01\x02AA"]);
        assert_eq!(
            icc_profile(Container::Jpeg, &reversed),
            Some(b"AABB".to_vec())
        );
        let missing = jpeg(&[b"\x01\x03AA", b"\x02\x03BB"]);
        assert_eq!(icc_profile(Container::Jpeg, &missing), None);
        let duplicate = jpeg(&[b"\x01\x02AA", b"\x01\x02BB"]);
        assert_eq!(icc_profile(Container::Jpeg, &duplicate), None);
        let mixed_counts = jpeg(&[b"\x01\x02AA", b"\x02\x03BB"]);
        assert_eq!(icc_profile(Container::Jpeg, &mixed_counts), None);
        assert_eq!(icc_profile(Container::Jpeg, &jpeg(&[])), None);
    }

    const CONTAINERS: [Container; 4] = [
        Container::Jpeg,
        Container::Png,
        Container::Gif,
        Container::WebP,
    ];

    fn exercise(bytes: &[u8]) {
        for container in CONTAINERS {
            if let Ok(out) = strip(container, bytes) {
                assert_eq!(strip(container, &out), Ok(out.clone()), "not idempotent");
            }
            let _ = exif_orientation(container, bytes);
            let _ = icc_profile(container, bytes);
        }
    }

    #[test]
    fn every_truncation_is_handled() {
        let jpeg = jpeg_sample();
        let (png, _, png_end) = png_sample();
        let (gif, _, gif_end) = gif_sample();
        let (webp, _, webp_end) = webp_sample();
        // A JPEG cut inside scan data is still usable, but one cut inside a
        // segment between scans is not, so past its header only no-panic holds.
        let cases = [
            (Container::Jpeg, &jpeg.input, jpeg.header_len, false),
            (Container::Png, &png, png_end, true),
            // A GIF cut right after its last frame only lacks the trailer.
            (Container::Gif, &gif, gif_end - 1, true),
            (Container::WebP, &webp, webp_end, true),
        ];
        for (container, bytes, complete_at, ok_once_complete) in cases {
            for len in 0..=bytes.len() {
                let prefix = &bytes[..len];
                exercise(prefix);
                let ok = strip(container, prefix).is_ok();
                if len < complete_at {
                    assert!(!ok, "{container:?} prefix of {len} bytes accepted");
                } else if ok_once_complete || len == bytes.len() {
                    assert!(ok, "{container:?} prefix of {len} bytes rejected");
                }
            }
        }
    }

    #[test]
    fn random_corruption_never_panics() {
        let jpeg = jpeg_sample();
        let samples = [jpeg.input, png_sample().0, gif_sample().0, webp_sample().0];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Per sample: how many corrupted copies its own container still
        // accepted and how many it refused. Both must happen, or the
        // corruption never reached the structure (or broke every file).
        let mut outcomes = Vec::new();
        for (sample, container) in samples.iter().zip(CONTAINERS) {
            let (mut accepted, mut refused) = (0, 0);
            for _ in 0..3000 {
                let mut bytes = sample.clone();
                for _ in 0..=(next() % 4) {
                    let at = usize::try_from(next() % bytes.len() as u64).unwrap_or(0);
                    let value = next().to_le_bytes()[0];
                    if let Some(byte) = bytes.get_mut(at) {
                        // Lengths and markers are where parsers break, so favour extremes.
                        *byte = match value % 4 {
                            0 => 0x00,
                            1 => 0xFF,
                            _ => value,
                        };
                    }
                }
                exercise(&bytes);
                match strip(container, &bytes) {
                    Ok(_) => accepted += 1,
                    Err(_) => refused += 1,
                }
            }
            outcomes.push((container, accepted, refused));
        }
        for (container, accepted, refused) in outcomes {
            assert!(
                accepted > 0 && refused > 0,
                "{container:?}: {accepted} accepted, {refused} refused"
            );
        }
    }
}
