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

pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    encode(&rgb(w, h), ImageFormat::Jpeg)
}

pub fn png(w: u32, h: u32) -> Vec<u8> {
    encode(&rgb(w, h), ImageFormat::Png)
}

pub fn webp(w: u32, h: u32) -> Vec<u8> {
    let rgba = DynamicImage::ImageRgba8(rgb(w, h).to_rgba8());
    encode(&rgba, ImageFormat::WebP)
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

/// A JPEG carrying an EXIF block with Orientation, an Artist and a GPS position.
pub fn jpeg_with_exif(w: u32, h: u32, orientation: u16, artist: &str) -> Vec<u8> {
    let jpeg = jpeg(w, h);
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
