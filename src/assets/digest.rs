//! Fingerprinting and pre-compressing static assets. Shared, through
//! `#[path]`, by build.rs (embedded assets, at compile time) and by the
//! server (an `assets.dir` folder, at startup), so both name and compress
//! files the same way.

use std::io::Write;

use sha2::{Digest, Sha256};

/// One asset, fingerprinted and with its compressed forms.
pub struct Digested {
    /// The name pages ask for: `app.css`.
    pub logical: String,
    /// The name it is served under: `app-3f9a1c2b.css`.
    pub digested: String,
    /// Strong ETag: the full sha256 of the content, quoted.
    pub etag: String,
    pub identity: Vec<u8>,
    /// Kept only where smaller than the identity bytes.
    pub gzip: Option<Vec<u8>>,
    pub brotli: Option<Vec<u8>>,
}

/// Files served at fixed, well-known paths rather than digested names.
pub const UNDIGESTED: &[&str] = &["favicon.ico", "robots.txt"];

/// A brotli compressor. build.rs passes one; the server does not, so the
/// brotli encoder stays out of the binary and `assets.dir` folders are
/// served with gzip only.
pub type Brotli = fn(&[u8]) -> Option<Vec<u8>>;

pub fn digest(logical: &str, bytes: &[u8], brotli: Option<Brotli>) -> Digested {
    let hash = hex(&Sha256::digest(bytes));
    let digested = if UNDIGESTED.contains(&logical) {
        logical.to_string()
    } else {
        match logical.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem}-{}.{ext}", &hash[..8]),
            None => format!("{logical}-{}", &hash[..8]),
        }
    };
    let gzip = gzip(bytes).filter(|g| g.len() < bytes.len());
    let brotli = brotli
        .and_then(|compress| compress(bytes))
        .filter(|b| b.len() < bytes.len());
    Digested {
        logical: logical.to_string(),
        digested,
        etag: format!("\"{hash}\""),
        identity: bytes.to_vec(),
        gzip,
        brotli,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).ok()?;
    enc.finish().ok()
}

/// The Content-Type for a file name, from its extension.
pub fn content_type(name: &str) -> &'static str {
    match name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .as_deref()
    {
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("txt") => "text/plain; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}
