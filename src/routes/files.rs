//! `/img/{token}`: the stored bytes, with strong caching, conditional GET,
//! byte ranges and HEAD (Rocket answers HEAD through this GET route).

use std::io::Cursor;
use std::sync::Arc;

use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rocket::{Route, State, get, routes};

use crate::routes::error::PageError;
use crate::routes::links::BaseUrl;
use crate::service::images::{Images, Served};

pub fn routes() -> Vec<Route> {
    routes![image]
}

/// Rocket copies a body through a buffer of its chunk size, allocated per
/// response: the body's own length (so a typical image leaves in one write,
/// not Rocket's default 4 KiB chunks, and a 20 KB size does not allocate
/// 1 MiB), bounded so a huge original streams in 1 MiB pieces.
pub fn chunk_size(len: usize) -> usize {
    len.clamp(4096, 1 << 20)
}

/// The request headers that shape an image response.
pub struct Conditions {
    if_none_match: Option<String>,
    range: Option<String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Conditions {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Conditions {
            if_none_match: req.headers().get_one("If-None-Match").map(str::to_string),
            range: req.headers().get_one("Range").map(str::to_string),
        })
    }
}

/// What `/img/...` answers besides the bytes themselves.
pub enum ImageReply {
    Bytes(ImageResponse),
    /// A temporary redirect to the original while a size is still made.
    NotReady(String),
    /// The object is public at the bucket or a CDN (`storage.s3.public_url`).
    Elsewhere(String),
}

impl<'r> Responder<'r, 'static> for ImageReply {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        match self {
            Self::Bytes(r) => r.respond_to(req),
            // 307 keeps an <img> working until the size exists, and no-store
            // keeps anyone from caching the stand-in.
            Self::NotReady(location) => Response::build()
                .status(Status::TemporaryRedirect)
                .header(Header::new("Location", location))
                .header(Header::new("Cache-Control", "no-store"))
                .ok(),
            // The object behind a name never changes, so the redirect may be
            // cached; a deleted image's object is gone at the bucket too.
            Self::Elsewhere(location) => Response::build()
                .status(Status::Found)
                .header(Header::new("Location", location))
                .header(Header::new("Cache-Control", "public, max-age=3600"))
                .ok(),
        }
    }
}

/// `?download` asks for an attachment unless its value says no.
fn wants_download(download: Option<&str>) -> bool {
    download.is_some_and(|v| !matches!(v, "0" | "false" | "no" | "off"))
}

#[get("/img/<token>?<download>&<size>")]
async fn image(
    token: &str,
    download: Option<&str>,
    size: Option<&str>,
    conditions: Conditions,
    base: BaseUrl,
    images: &State<Arc<Images>>,
) -> Result<ImageReply, PageError> {
    let object = match images.open(token, size, wants_download(download)).await? {
        Served::Object(object) => object,
        Served::NotReady { original } => {
            return Ok(ImageReply::NotReady(base.original(&original)));
        }
        Served::Elsewhere(url) => return Ok(ImageReply::Elsewhere(url)),
    };
    let etag = format!("\"{}\"", object.sha256);
    let base = ImageResponse {
        status: Status::Ok,
        content_type: object.content_type,
        etag: etag.clone(),
        download_name: object.download_name,
        body: Arc::from(Vec::new()),
        content_range: None,
    };
    if conditions
        .if_none_match
        .as_deref()
        .is_some_and(|inm| etag_matches(inm, &etag))
    {
        return Ok(ImageReply::Bytes(ImageResponse {
            status: Status::NotModified,
            ..base
        }));
    }
    let bytes = object.bytes;
    let len = bytes.len() as u64;
    let reply = match conditions.range.as_deref().map(|r| parse_range(r, len)) {
        None | Some(RangeRequest::Full) => ImageResponse {
            body: bytes,
            ..base
        },
        Some(RangeRequest::Partial(start, end)) => ImageResponse {
            status: Status::PartialContent,
            body: Arc::from(bytes.get(start as usize..=end as usize).unwrap_or_default()),
            content_range: Some(format!("bytes {start}-{end}/{len}")),
            ..base
        },
        Some(RangeRequest::Unsatisfiable) => ImageResponse {
            status: Status::RangeNotSatisfiable,
            content_range: Some(format!("bytes */{len}")),
            ..base
        },
    };
    Ok(ImageReply::Bytes(reply))
}

/// `attachment` with the file name twice (RFC 6266): a plain ASCII copy
/// for old clients, every character the uploader's name cannot carry
/// safely in a quoted string replaced, and the exact name percent-encoded
/// as UTF-8 for the rest.
fn attachment(name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let exact: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{plain}\"; filename*=UTF-8''{exact}")
}

fn etag_matches(header: &str, etag: &str) -> bool {
    header.trim() == "*"
        || header
            .split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == etag)
}

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// Absent, malformed or multi-range: answer with the whole file, as
    /// RFC 9110 allows.
    Full,
    Partial(u64, u64),
    Unsatisfiable,
}

fn parse_range(header: &str, len: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (start, end) = (start.trim(), end.trim());
    let parsed = match (start.is_empty(), end.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match end.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(n) if len > 0 => Some((len.saturating_sub(n), len - 1)),
            Ok(_) => return RangeRequest::Unsatisfiable,
            Err(_) => None,
        },
        (false, true) => start
            .parse::<u64>()
            .ok()
            .map(|s| (s, len.saturating_sub(1))),
        (false, false) => match (start.parse::<u64>(), end.parse::<u64>()) {
            (Ok(s), Ok(e)) if s <= e => Some((s, e.min(len.saturating_sub(1)))),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        None => RangeRequest::Full,
        Some((start, _)) if start >= len => RangeRequest::Unsatisfiable,
        Some((start, end)) => RangeRequest::Partial(start, end),
    }
}

pub struct ImageResponse {
    status: Status,
    content_type: String,
    etag: String,
    download_name: Option<String>,
    body: Arc<[u8]>,
    content_range: Option<String>,
}

impl<'r> Responder<'r, 'static> for ImageResponse {
    fn respond_to(self, _req: &'r Request<'_>) -> response::Result<'static> {
        let mut res = Response::build();
        res.status(self.status)
            .header(Header::new("ETag", self.etag))
            .header(Header::new(
                "Cache-Control",
                "public, max-age=31536000, immutable",
            ))
            .header(Header::new("Accept-Ranges", "bytes"))
            .header(Header::new("X-Content-Type-Options", "nosniff"))
            // An image opened directly must not be able to run anything.
            .header(Header::new(
                "Content-Security-Policy",
                "default-src 'none'; sandbox",
            ));
        if let Some(range) = self.content_range {
            res.header(Header::new("Content-Range", range));
        }
        if self.status == Status::NotModified {
            return res.ok();
        }
        if let Some(name) = self.download_name {
            res.header(Header::new("Content-Disposition", attachment(&name)));
        }
        if self.status != Status::RangeNotSatisfiable {
            if let Some(ct) = ContentType::parse_flexible(&self.content_type) {
                res.header(ct);
            }
            let len = self.body.len();
            res.sized_body(len, Cursor::new(self.body))
                .max_chunk_size(chunk_size(len));
        }
        res.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_parsed_as_rfc_9110_says() {
        use RangeRequest::*;
        let cases = [
            ("bytes=0-9", 100, Partial(0, 9)),
            ("bytes=90-", 100, Partial(90, 99)),
            ("bytes=-10", 100, Partial(90, 99)),
            ("bytes=-500", 100, Partial(0, 99)),
            ("bytes=50-5000", 100, Partial(50, 99)),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=200-300", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=9-0", 100, Full),
            ("bytes=0-1,5-6", 100, Full),
            ("items=0-1", 100, Full),
            ("bytes=abc", 100, Full),
        ];
        for (header, len, expected) in cases {
            assert_eq!(parse_range(header, len), expected, "{header}");
        }
    }

    #[test]
    fn etags_match_strong_weak_lists_and_star() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\"", "\"abc\""));
        assert!(etag_matches("\"x\", \"abc\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }
}

#[cfg(test)]
mod attachment_tests {
    use super::attachment;

    #[test]
    fn a_download_name_cannot_break_out_of_its_header() {
        assert_eq!(
            attachment("a\"b\\c\r\nSet-Cookie: x.jpg"),
            "attachment; filename=\"a_b_c__Set-Cookie: x.jpg\"; \
             filename*=UTF-8''a%22b%5Cc%0D%0ASet-Cookie%3A%20x.jpg"
        );
        assert_eq!(
            attachment("чай.png"),
            "attachment; filename=\"___.png\"; filename*=UTF-8''%D1%87%D0%B0%D0%B9.png"
        );
    }
}
