//! Test images made in code: good ones in every accepted format, and every
//! kind of bad input the uploader must refuse.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

/// A gradient, so encoders have real detail to work with.
pub fn rgb(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, 128])
    }))
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A PNG of noise, which no encoder can shrink: about 3 bytes a pixel.
pub fn noise_png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let img = RgbImage::from_fn(w, h, |_, _| {
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        };
        Rgb([next(), next(), next()])
    });
    encode(&DynamicImage::ImageRgb8(img), ImageFormat::Png)
}

pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    encode(&rgb(w, h), ImageFormat::Jpeg)
}

/// A progressive JPEG (spectral selection and successive approximation
/// scans), which the `image` crate cannot write.
pub fn progressive_jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = rgb(w, h).to_rgb8();
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 90);
    enc.set_progressive(true);
    enc.encode(
        img.as_raw(),
        w as u16,
        h as u16,
        jpeg_encoder::ColorType::Rgb,
    )
    .unwrap();
    out
}

/// Where a scan's entropy-coded data starts and ends (the next marker that
/// is not a stuffed 0xFF00 or a restart marker).
fn scan_data(jpeg: &[u8], sos: usize) -> (usize, usize) {
    let data = sos + 2 + (usize::from(jpeg[sos + 2]) << 8 | usize::from(jpeg[sos + 3]));
    let end = (data..jpeg.len() - 1)
        .find(|&i| jpeg[i] == 0xFF && jpeg[i + 1] != 0 && !(0xD0..=0xD7).contains(&jpeg[i + 1]))
        .expect("the scan ends at a marker");
    (data, end)
}

/// A JPEG whose first DC scan (`ac` false; a baseline file's only scan)
/// or first AC scan holds only stuffed 0xFF bytes: one bits, which no
/// Huffman code may be. Everything else, the end-of-image marker included,
/// is intact, so only decoding that scan can tell. (Random noise would not
/// do: the standard Huffman tables are nearly complete, so most noise
/// decodes to valid, meaningless coefficients, in every decoder.)
pub fn jpeg_with_broken_scan(jpeg: &[u8], ac: bool) -> Vec<u8> {
    let spectral_start = |sos: usize| jpeg[sos + 5 + 2 * usize::from(jpeg[sos + 4])];
    let sos = jpeg
        .windows(2)
        .enumerate()
        .filter(|(_, w)| *w == [0xFF, 0xDA])
        .map(|(i, _)| i)
        .find(|&sos| (spectral_start(sos) > 0) == ac)
        .expect("such a scan");
    let (data, end) = scan_data(jpeg, sos);
    let mut out = jpeg[..data].to_vec();
    out.extend([0xFF, 0x00].repeat(64));
    out.extend_from_slice(&jpeg[end..]);
    out
}

/// A grey progressive JPEG with `scans` scans, as a scan bomb is built:
/// after the encoder's own scans, a Huffman table of end-of-band runs and
/// then the same AC scan again and again. Each costs about fifteen bytes
/// (three end-of-band runs over every block of a 2048×2048 picture) and a
/// pass of the decoder over the whole picture.
pub fn scan_bomb(side: u32, scans: usize) -> Vec<u8> {
    let grey = image::GrayImage::from_pixel(side, side, image::Luma([128]));
    let mut jpeg = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, 90);
    enc.set_progressive(true);
    enc.encode(
        grey.as_raw(),
        side as u16,
        side as u16,
        jpeg_encoder::ColorType::Luma,
    )
    .unwrap();
    let soss: Vec<usize> = jpeg
        .windows(2)
        .enumerate()
        .filter(|(_, w)| *w == [0xFF, 0xDA])
        .map(|(i, _)| i)
        .collect();
    let last = *soss.last().unwrap();
    let component = jpeg[last + 5];
    let (_, end) = scan_data(&jpeg, last);
    let mut out = jpeg[..end].to_vec();
    // AC table 1: EOBRUN 2^14.. (symbol 0xE0) coded `0`, EOBRUN 2.. (0x10) `10`.
    let mut counts = [0u8; 16];
    counts[0] = 1;
    counts[1] = 1;
    out.extend_from_slice(&[0xFF, 0xC4, 0x00, 21, 0x11]);
    out.extend_from_slice(&counts);
    out.extend_from_slice(&[0xE0, 0x10]);
    // Runs that cover every block once: 32767-block runs, then the rest.
    let blocks = u32::div_ceil(side, 8).pow(2);
    let mut bits: Vec<bool> = Vec::new();
    let mut left = blocks;
    while left > 0 {
        if left >= 1 << 14 {
            let run = left.min((1 << 15) - 1);
            bits.push(false);
            bits.extend((0..14).rev().map(|i| (run - (1 << 14)) >> i & 1 == 1));
            left -= run;
        } else {
            // A run of 1 is a plain end of band; runs here are 2 or 3.
            let run = left.clamp(2, 3);
            bits.extend([true, false, run & 1 == 1]);
            left = left.saturating_sub(run);
        }
    }
    let mut data = Vec::new();
    for chunk in bits.chunks(8) {
        let mut byte = 0xFFu8;
        for (i, bit) in chunk.iter().enumerate() {
            if !bit {
                byte &= !(0x80 >> i);
            }
        }
        data.push(byte);
        if byte == 0xFF {
            data.push(0x00);
        }
    }
    let scan_header = [0xFF, 0xDA, 0x00, 0x08, 0x01, component, 0x01, 63, 63, 0x00];
    for _ in soss.len()..scans {
        out.extend_from_slice(&scan_header);
        out.extend_from_slice(&data);
    }
    out.extend_from_slice(&jpeg[end..]);
    out
}

pub fn jpeg_of(img: &DynamicImage) -> Vec<u8> {
    encode(img, ImageFormat::Jpeg)
}

pub fn png(w: u32, h: u32) -> Vec<u8> {
    encode(&rgb(w, h), ImageFormat::Png)
}

pub fn webp(w: u32, h: u32) -> Vec<u8> {
    let rgba = DynamicImage::ImageRgba8(rgb(w, h).to_rgba8());
    encode(&rgba, ImageFormat::WebP)
}

/// A stand-in colour profile: what matters is that its bytes survive.
pub fn icc_profile() -> Vec<u8> {
    let mut icc = b"kitteh-test-icc-profile:".to_vec();
    icc.extend((0..600u32).map(|i| (i % 251) as u8));
    icc
}

/// A picture in `format` carrying `icc` as its colour profile.
pub fn with_icc(w: u32, h: u32, format: ImageFormat, icc: &[u8]) -> Vec<u8> {
    use image::ImageEncoder;
    use image::codecs::jpeg::JpegEncoder;
    use image::codecs::png::PngEncoder;
    use image::codecs::webp::WebPEncoder;
    let img = rgb(w, h).to_rgb8();
    let mut out = Vec::new();
    match format {
        ImageFormat::Jpeg => {
            let mut enc = JpegEncoder::new_with_quality(&mut out, 90);
            enc.set_icc_profile(icc.to_vec()).unwrap();
            enc.write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
                .unwrap();
        }
        ImageFormat::Png => {
            let mut enc = PngEncoder::new(&mut out);
            enc.set_icc_profile(icc.to_vec()).unwrap();
            enc.write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
                .unwrap();
        }
        ImageFormat::WebP => {
            let mut enc = WebPEncoder::new_lossless(&mut out);
            enc.set_icc_profile(icc.to_vec()).unwrap();
            enc.write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
                .unwrap();
        }
        other => panic!("no ICC fixture for {other:?}"),
    }
    out
}

/// The colour profile a file carries, read by the image crate's decoder.
pub fn icc_of(bytes: &[u8]) -> Option<Vec<u8>> {
    use image::ImageDecoder;
    let mut decoder = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .unwrap()
        .into_decoder()
        .unwrap();
    decoder.icc_profile().unwrap()
}

/// The sum of the first quantisation table of a JPEG: larger means
/// coarser, lower quality.
pub fn jpeg_quantisation_sum(bytes: &[u8]) -> u32 {
    let at = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xDB])
        .expect("a DQT segment");
    // Marker (2), length (2), precision and table id (1), 64 entries.
    let precision = bytes[at + 4] >> 4;
    assert_eq!(precision, 0, "8-bit table");
    bytes[at + 5..at + 5 + 64]
        .iter()
        .map(|&b| u32::from(b))
        .sum()
}

/// An animated GIF with two frames.
pub fn gif(w: u32, h: u32) -> Vec<u8> {
    use image::codecs::gif::{GifEncoder, Repeat};
    use image::{Delay, Frame};
    let mut out = Vec::new();
    {
        let mut enc = GifEncoder::new(&mut out);
        enc.set_repeat(Repeat::Infinite).unwrap();
        for shade in [40u8, 200] {
            let buf = RgbaImage::from_pixel(w, h, Rgba([shade, 100, 50, 255]));
            enc.encode_frame(Frame::from_parts(
                buf,
                0,
                0,
                Delay::from_numer_denom_ms(100, 1),
            ))
            .unwrap();
        }
    }
    out
}

/// `gif` with a comment and an XMP application block (both carrying
/// `secret-location`) inserted before its first frame: what stripping must
/// remove, leaving every other byte as it was.
pub fn with_gif_metadata(gif: &[u8]) -> Vec<u8> {
    let packed = gif[10];
    let table = if packed & 0x80 != 0 {
        6usize << (packed & 0x07)
    } else {
        0
    };
    let screen_end = 13 + table;
    let mut out = gif[..screen_end].to_vec();
    // Comment extension: one sub-block of text.
    let comment = b"secret-location 52.31N";
    out.extend([0x21, 0xFE, comment.len() as u8]);
    out.extend(comment);
    out.push(0);
    // XMP application extension, as Photoshop writes it.
    let xmp = b"<x:xmpmeta>secret-location</x:xmpmeta>";
    out.extend([0x21, 0xFF, 11]);
    out.extend(b"XMP DataXMP");
    out.push(xmp.len() as u8);
    out.extend(xmp);
    out.push(0);
    out.extend(&gif[screen_end..]);
    out
}

/// A blue picture with a red block in its top-left corner, so that where
/// the block ends up shows how the picture was turned.
pub fn marked(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        if x < w / 4 && y < h / 4 {
            Rgb([230, 30, 30])
        } else {
            Rgb([40, 90, 200])
        }
    }))
}

/// A corner of a picture, named as a person looking at it would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corner {
    TopLeft,
    TopRight,
    BottomRight,
    BottomLeft,
}

/// The corner where the red block of [`marked`] is, judged by the mean
/// colour of a small patch in each corner (JPEG blurs edges, not patches).
pub fn red_corner(img: &DynamicImage) -> Corner {
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    let (pw, ph) = ((w / 10).max(1), (h / 10).max(1));
    let mean = |x0: u32, y0: u32| {
        let mut sum = [0u64; 3];
        for y in y0..y0 + ph {
            for x in x0..x0 + pw {
                let p = rgb.get_pixel(x, y);
                for c in 0..3 {
                    sum[c] += u64::from(p[c]);
                }
            }
        }
        let n = u64::from(pw * ph);
        [sum[0] / n, sum[1] / n, sum[2] / n]
    };
    let corners = [
        (Corner::TopLeft, mean(0, 0)),
        (Corner::TopRight, mean(w - pw, 0)),
        (Corner::BottomRight, mean(w - pw, h - ph)),
        (Corner::BottomLeft, mean(0, h - ph)),
    ];
    let red: Vec<Corner> = corners
        .iter()
        .filter(|(_, [r, _, b])| *r > 150 && *b < 100)
        .map(|(c, _)| *c)
        .collect();
    assert_eq!(red.len(), 1, "expected one red corner: {corners:?}");
    red[0]
}

/// A JPEG carrying an EXIF block with Orientation, an Artist and a GPS position.
pub fn jpeg_with_exif(w: u32, h: u32, orientation: u16, artist: &str) -> Vec<u8> {
    with_exif(&jpeg(w, h), orientation, artist)
}

/// `jpeg` with an EXIF block (Orientation, Artist, GPS position) inserted
/// after its SOI marker.
pub fn with_exif(jpeg: &[u8], orientation: u16, artist: &str) -> Vec<u8> {
    // Little-endian TIFF: IFD0 with Orientation, Artist, GPS pointer.
    let mut tiff: Vec<u8> = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes());
    let entries = 3u16;
    let ifd0_len = 2 + 12 * entries as u32 + 4;
    let artist_bytes = [artist.as_bytes(), b"\0"].concat();
    let artist_off = 8 + ifd0_len;
    let gps_off = artist_off + artist_bytes.len() as u32;
    tiff.extend(entries.to_le_bytes());
    // Orientation, SHORT, 1
    tiff.extend(0x0112u16.to_le_bytes());
    tiff.extend(3u16.to_le_bytes());
    tiff.extend(1u32.to_le_bytes());
    tiff.extend((orientation as u32).to_le_bytes());
    // Artist, ASCII
    tiff.extend(0x013Bu16.to_le_bytes());
    tiff.extend(2u16.to_le_bytes());
    tiff.extend((artist_bytes.len() as u32).to_le_bytes());
    tiff.extend(artist_off.to_le_bytes());
    // GPS IFD pointer, LONG
    tiff.extend(0x8825u16.to_le_bytes());
    tiff.extend(4u16.to_le_bytes());
    tiff.extend(1u32.to_le_bytes());
    tiff.extend(gps_off.to_le_bytes());
    tiff.extend(0u32.to_le_bytes());
    tiff.extend(&artist_bytes);
    // GPS IFD: LatitudeRef "N", Latitude 52/1 31/1 0/1
    let lat_off = gps_off + 2 + 12 * 2 + 4;
    tiff.extend(2u16.to_le_bytes());
    tiff.extend(0x0001u16.to_le_bytes());
    tiff.extend(2u16.to_le_bytes());
    tiff.extend(2u32.to_le_bytes());
    tiff.extend(*b"N\0\0\0");
    tiff.extend(0x0002u16.to_le_bytes());
    tiff.extend(5u16.to_le_bytes());
    tiff.extend(3u32.to_le_bytes());
    tiff.extend(lat_off.to_le_bytes());
    tiff.extend(0u32.to_le_bytes());
    for (n, d) in [(52u32, 1u32), (31, 1), (0, 1)] {
        tiff.extend(n.to_le_bytes());
        tiff.extend(d.to_le_bytes());
    }
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend(crc.finalize().to_be_bytes());
}

/// A decompression bomb: a few hundred KB of PNG whose pixels, once
/// decoded, would need gigabytes.
pub fn png_bomb(w: u32, h: u32) -> Vec<u8> {
    use std::io::Write;
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit greyscale
    png_chunk(&mut out, b"IHDR", &ihdr);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0u8; w as usize + 1];
    // About 300 MB of zero rows compress to a few hundred KB.
    let rows = (300_000_000 / row.len()).min(h as usize);
    for _ in 0..rows {
        z.write_all(&row).unwrap();
    }
    png_chunk(&mut out, b"IDAT", &z.finish().unwrap());
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A PNG with a sound header and checksums whose compressed pixel data is
/// garbage: only decoding it can tell.
pub fn png_with_garbage_pixels(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    // A zlib header followed by an invalid deflate block type (0b11).
    let mut idat = vec![0x78, 0x9C, 0xFF, 0xFF, 0xFF];
    idat.extend(random_bytes(64));
    png_chunk(&mut out, b"IDAT", &idat);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A WebP whose RIFF container is sound but whose VP8L bitstream is noise.
pub fn webp_with_garbage_pixels() -> Vec<u8> {
    let mut chunk = b"VP8L".to_vec();
    // Signature, then a 64×64 header, then noise.
    let mut data = vec![0x2F, 0x3F, 0xC0, 0x0F, 0x00];
    data.extend(std::iter::repeat_n(0xFFu8, 200));
    chunk.extend((data.len() as u32).to_le_bytes());
    chunk.extend(&data);
    let mut out = b"RIFF".to_vec();
    out.extend(((4 + chunk.len()) as u32).to_le_bytes());
    out.extend(b"WEBP");
    out.extend(chunk);
    out
}

/// A two-frame GIF whose first frame is fine and whose second frame's
/// compressed data is garbage inside well-formed blocks: the container is
/// sound, so only a decoder that reads every frame notices.
pub fn gif_with_bad_second_frame() -> Vec<u8> {
    let gif = gif(64, 64);
    let descriptors: Vec<usize> = gif
        .windows(10)
        .enumerate()
        .filter(|(_, w)| w[0] == 0x2C && w[1..5] == [0, 0, 0, 0] && w[5..9] == [64, 0, 64, 0])
        .map(|(i, _)| i)
        .collect();
    assert_eq!(descriptors.len(), 2, "two image descriptors");
    // Descriptor (10), its local colour table, the LZW minimum code size
    // (1), then one sub-block of codes that name table entries not yet
    // defined, its terminator and the trailer.
    let packed = gif[descriptors[1] + 9];
    let local_table = if packed & 0x80 != 0 {
        6usize << (packed & 0x07)
    } else {
        0
    };
    let start = descriptors[1] + 10 + local_table + 1;
    let mut out = gif[..start].to_vec();
    out.extend([
        0x08, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x3B,
    ]);
    out
}

/// A real JPEG whose SOF header is patched to claim other dimensions.
pub fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut bytes = jpeg(32, 32);
    let sof = bytes
        .windows(2)
        .position(|p| p[0] == 0xFF && (p[1] == 0xC0 || p[1] == 0xC2))
        .unwrap();
    bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    bytes
}

/// A real GIF whose logical screen is patched to 65535×65535.
pub fn gif_claiming_huge_screen() -> Vec<u8> {
    let mut bytes = gif(8, 8);
    bytes[6..8].copy_from_slice(&65535u16.to_le_bytes());
    bytes[8..10].copy_from_slice(&65535u16.to_le_bytes());
    bytes
}

pub fn bmp() -> Vec<u8> {
    let mut out = b"BM".to_vec();
    out.extend([0u8; 60]);
    out
}

pub fn tiff() -> Vec<u8> {
    let mut out = b"II*\0\x08\0\0\0".to_vec();
    out.extend([0u8; 40]);
    out
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

/// A multipart/form-data body with one file field.
pub fn multipart(
    field: &str,
    file_name: &str,
    content_type: &str,
    bytes: &[u8],
) -> (String, Vec<u8>) {
    let boundary = format!("kittehtest{:016x}", rand::random::<u64>());
    let mut body = Vec::new();
    body.extend(format!("--{boundary}\r\n").as_bytes());
    body.extend(
        format!(
            "Content-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend(bytes);
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A GIF of `frames` frames of `w`×`h` pixels, all of one colour, built by
/// hand (the LZW stream is made once and reused), on a `screen`×`screen`
/// logical screen.
pub fn gif_frames(frames: u32, w: u16, h: u16, screen: u16) -> Vec<u8> {
    let data = vec![1u8; usize::from(w) * usize::from(h)];
    let lzw = weezl::encode::Encoder::new(weezl::BitOrder::Lsb, 2)
        .encode(&data)
        .unwrap();
    let at = |i: u32| (i as u16) % screen.saturating_sub(w).max(1);
    gif_of(screen, (0..frames).map(|i| (at(i), w, h)), &lzw)
}

/// A GIF on a `screen`×`screen` logical screen with a four-colour table,
/// looping, and one frame per `(x, w, h)` (at the top), each of them the
/// LZW stream `lzw` (minimum code size 2).
fn gif_of(screen: u16, frames: impl Iterator<Item = (u16, u16, u16)>, lzw: &[u8]) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend(screen.to_le_bytes());
    out.extend(screen.to_le_bytes());
    out.extend([0x81, 0, 0]); // global table of four colours
    out.extend([0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 255]);
    out.extend(b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00");
    for (x, w, h) in frames {
        out.extend([0x21, 0xF9, 0x04, 0x00, 0x02, 0x00, 0x00, 0x00]);
        out.push(0x2C);
        out.extend(x.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(w.to_le_bytes());
        out.extend(h.to_le_bytes());
        out.push(0);
        out.push(2); // LZW minimum code size
        for block in lzw.chunks(255) {
            out.push(block.len() as u8);
            out.extend(block);
        }
        out.push(0);
    }
    out.push(0x3B);
    out
}

/// A 16-bit RGBA PNG of `w`×`h`, all zeros: small on the wire, eight bytes
/// a pixel once decoded.
pub fn deep_png(w: u32, h: u32) -> Vec<u8> {
    use std::io::Write;
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([16, 6, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0u8; 1 + w as usize * 8];
    for _ in 0..h {
        z.write_all(&row).unwrap();
    }
    png_chunk(&mut out, b"IDAT", &z.finish().unwrap());
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A small PNG whose iCCP chunk (about 1 MB) inflates to about 1 GB.
pub fn icc_bomb_png() -> Vec<u8> {
    use std::io::Write;
    let sound = png(16, 16);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        z.write_all(&zeros).unwrap();
    }
    let mut iccp = b"bomb\0\0".to_vec();
    iccp.extend(z.finish().unwrap());
    with_png_chunk(&sound, b"iCCP", &iccp)
}

/// `png` with one more chunk inserted right after IHDR.
pub fn with_png_chunk(png: &[u8], kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    // Signature (8) + IHDR (4 + 4 + 13 + 4).
    let at = 8 + 25;
    let mut out = png[..at].to_vec();
    png_chunk(&mut out, kind, data);
    out.extend(&png[at..]);
    out
}

/// `webp` (a simple lossless WebP) turned into an extended one carrying
/// an extra top-level chunk `fourcc` with `data`.
pub fn with_webp_chunk(webp: &[u8], fourcc: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let img = image::load_from_memory(webp).unwrap();
    let (w, h) = (img.width(), img.height());
    let mut body = Vec::new();
    let chunk = |body: &mut Vec<u8>, kind: &[u8; 4], payload: &[u8]| {
        body.extend(kind);
        body.extend((payload.len() as u32).to_le_bytes());
        body.extend(payload);
        if payload.len() % 2 == 1 {
            body.push(0);
        }
    };
    let mut vp8x = vec![0x10u8, 0, 0, 0]; // alpha flag
    vp8x.extend(&(w - 1).to_le_bytes()[..3]);
    vp8x.extend(&(h - 1).to_le_bytes()[..3]);
    chunk(&mut body, b"VP8X", &vp8x);
    // The original's own chunks (after RIFF, size, WEBP).
    body.extend(&webp[12..]);
    chunk(&mut body, fourcc, data);
    let mut out = b"RIFF".to_vec();
    out.extend(((body.len() + 4) as u32).to_le_bytes());
    out.extend(b"WEBP");
    out.extend(body);
    out
}

/// A GIF of `frames` frames of `side`×`side` pixels of one colour, whose
/// LZW stream keeps its full code table instead of clearing it (a
/// "deferred clear", which decoders must accept): each 12-bit code then
/// stands for 4091 pixels, so a few KB decode to 16 MP, and the file
/// costs seconds of decoding per megabyte.
pub fn gif_dense_frames(frames: u32, side: u16) -> Vec<u8> {
    let pixels = u64::from(side) * u64::from(side);
    let mut bits = BitWriter::default();
    let mut width = 3;
    bits.put(4, width); // clear
    let mut left = pixels;
    // Code 1 is one pixel; code c (from 6 on, each one the entry the
    // decoder adds just before reading it) is c - 4 pixels.
    bits.put(1, width);
    left -= 1;
    let mut next = 6u32;
    while left > 0 {
        let code = if next < 4096 {
            let len = u64::from(next - 4);
            if len > left {
                break;
            }
            next
        } else {
            if left < 4091 {
                break;
            }
            4095
        };
        bits.put(code, width);
        left -= u64::from(code - 4);
        if next < 4096 {
            next += 1;
            if next == 1 << width && width < 12 {
                width += 1;
            }
        }
    }
    // The rest: one code of exactly that many pixels (each exists by now).
    if left >= 2 {
        bits.put(left as u32 + 4, width);
    } else if left == 1 {
        bits.put(1, width);
    }
    bits.put(5, width); // end
    let lzw = bits.finish();
    gif_of(side, (0..frames).map(|_| (0, side, side)), &lzw)
}

#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, code: u32, width: u32) {
        self.acc |= u64::from(code) << self.n;
        self.n += width;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

#[test]
fn a_dense_gif_frame_decodes_to_its_full_size() {
    let gif = gif_dense_frames(2, 3000);
    let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(&gif)).unwrap();
    use image::AnimationDecoder;
    let frames: Vec<_> = decoder.into_frames().collect::<Result<_, _>>().unwrap();
    assert_eq!(frames.len(), 2);
    let px = frames[1].buffer().get_pixel(2999, 2999);
    assert_eq!(px.0, [255, 255, 255, 255]);
    assert!(gif.len() < 20_000, "{}", gif.len());
}
