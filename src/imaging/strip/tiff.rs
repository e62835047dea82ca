//! The TIFF structure inside EXIF blocks: just enough to read the orientation.

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
