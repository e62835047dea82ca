//! JPEG: segments between SOI and the first scan are filtered by marker;
//! scan data and everything the decoder needs is copied as it is.

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

/// How many scans the first image of a JPEG stream has, counted from its
/// markers (None when its structure cannot be walked). A progressive file
/// is decoded once per scan, so this, not its size, is what it costs.
pub(super) fn scan_count(bytes: &[u8]) -> Option<u32> {
    let mut scans: u32 = 0;
    for part in Parts::new(bytes, false).ok()? {
        if let Part::Marker { marker: SOS, .. } = part.ok()? {
            scans = scans.saturating_add(1);
        }
    }
    Some(scans)
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
