//! Byte-exact tests of stripping, one container at a time, and seeded
//! corruption that must never panic.

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
        soi, &app0, &exif, &xmp, &icc1, &mpf, &icc2, &iptc, &adobe, &com, &app15, fill, &dqt, &sof,
        &dht, &sos,
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
    // Not named anywhere: dropped all the same, since it may carry anything.
    let unknown = riff_chunk(b"ABCD", b"GPS 51.5N");
    let input = riff(&[&vp8x(0x3C), &iccp, &vp8l, &exif, &xmp, &unknown]);
    let end = input.len();
    let input = cat(&[&input, b"EXIFtrailing Alice"]);
    let expected = riff(&[&vp8x(0x30), &iccp, &vp8l]);
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
fn png_keeps_only_display_chunks() {
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
fn webp_keeps_only_display_chunks_and_fixes_header() {
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
