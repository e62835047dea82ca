//! The fast path: `GET`/`HEAD` of `/img/…`, `/assets/…`, `/favicon.ico` and
//! `/robots.txt`, answered by the edge from the same services and caches
//! as the app (the cached bytes leave without a copy), with strong
//! caching, conditional GET, byte ranges, content negotiation, `?download`,
//! the 307 while a size is made, the 302 to a public bucket, and errors as
//! JSON or a page, like every other answer.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};

use crate::assets::{Asset, Assets};
use crate::http::Body;
use crate::http::headers::IMAGE_CSP;
use crate::http::links::BaseUrl;
use crate::service::Error;
use crate::service::images::{Content, Images, Served};

const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const SHORT: HeaderValue = HeaderValue::from_static("public, max-age=3600");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// What the fast path answers; anything else goes to the app.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Image(String),
    Asset(String),
    Favicon,
    Robots,
}

impl Route {
    /// The route a request names, for `GET` and `HEAD` only. A path with
    /// more segments, or one that is not UTF-8 once decoded, is left to the
    /// app (whose 404 it gets).
    pub fn of(method: &Method, path: &str) -> Option<Self> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        let segment = |rest: &str| {
            (!rest.is_empty() && !rest.contains('/'))
                .then(|| {
                    percent_encoding::percent_decode_str(rest)
                        .decode_utf8()
                        .ok()
                })
                .flatten()
                .map(Cow::into_owned)
        };
        match path {
            "/favicon.ico" => Some(Self::Favicon),
            "/robots.txt" => Some(Self::Robots),
            _ => {
                if let Some(rest) = path.strip_prefix("/img/") {
                    segment(rest).map(Self::Image)
                } else if let Some(rest) = path.strip_prefix("/assets/") {
                    segment(rest).map(Self::Asset)
                } else {
                    None
                }
            }
        }
    }

    /// The name the metrics and logs give it (the app's route names).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Image(_) => "image",
            Self::Asset(_) => "asset",
            Self::Favicon => "favicon",
            Self::Robots => "robots",
        }
    }

    /// The picture it names, for the log line.
    pub fn token(&self) -> Option<&str> {
        match self {
            Self::Image(token) => Some(token),
            _ => None,
        }
    }
}

/// Everything the fast path answers from.
pub struct FastPath {
    pub images: Arc<Images>,
    pub assets: Assets,
}

fn header(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl FastPath {
    /// The answer to `route`; an error is written by the edge like any
    /// other problem.
    pub async fn answer(
        &self,
        route: Route,
        req: &Parts,
        base: &BaseUrl,
    ) -> Result<Response<Body>, Error> {
        match route {
            // A stored object gone under a cached name (deleted by another
            // process) is looked up afresh once.
            Route::Image(token) => match self.image(&token, req, base).await {
                Err(Error::ObjectMissing { .. }) => {
                    self.images.forget(&token);
                    self.image(&token, req, base).await
                }
                other => other,
            },
            Route::Asset(name) => self.asset(&name, &req.headers, IMMUTABLE),
            Route::Favicon => self.asset("favicon.ico", &req.headers, SHORT),
            Route::Robots => self.asset("robots.txt", &req.headers, SHORT),
        }
    }

    async fn image(
        &self,
        token: &str,
        req: &Parts,
        base: &BaseUrl,
    ) -> Result<Response<Body>, Error> {
        let (download, size) = image_query(req.uri.query());
        let object = match self
            .images
            .open(token, size.as_deref(), wants_download(download.as_deref()))
            .await?
        {
            Served::Object(object) => object,
            // 307 keeps an <img> working until the size exists, and
            // no-store keeps anyone from caching the stand-in.
            Served::NotReady { original } => {
                return Ok(redirect(
                    StatusCode::TEMPORARY_REDIRECT,
                    &base.original(&original),
                    HeaderValue::from_static("no-store"),
                ));
            }
            // The object behind a name never changes, so the redirect may
            // be cached; a deleted image's object is gone at the bucket too.
            Served::Elsewhere(url) => {
                return Ok(redirect(StatusCode::FOUND, &url, SHORT));
            }
        };
        let mut res = Response::new(Body::empty());
        let etag = object_headers(res.headers_mut(), &object);
        if header(&req.headers, header::IF_NONE_MATCH).is_some_and(|inm| etag_matches(inm, &etag)) {
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            return Ok(res);
        }
        let len = object.len;
        let range = match header(&req.headers, header::RANGE).map(|r| parse_range(r, len)) {
            None | Some(RangeRequest::Full) => None,
            Some(RangeRequest::Partial(start, end)) => Some((start, end)),
            Some(RangeRequest::Unsatisfiable) => {
                res.headers_mut()
                    .insert(header::CONTENT_RANGE, value(&format!("bytes */{len}")));
                *res.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                return Ok(res);
            }
        };
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, value(&object.content_type));
        if let Some((start, end)) = range {
            headers.insert(
                header::CONTENT_RANGE,
                value(&format!("bytes {start}-{end}/{len}")),
            );
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
        }
        let head = req.method == Method::HEAD;
        *res.body_mut() = self.body(object.content, len, range, head).await?;
        Ok(res)
    }

    /// The bytes of an answer: from memory, or streamed from storage.
    async fn body(
        &self,
        content: Content,
        len: u64,
        range: Option<(u64, u64)>,
        head: bool,
    ) -> Result<Body, Error> {
        Ok(match content {
            Content::Memory(pinned) => {
                let bytes = Bytes::from_owner(pinned);
                match range {
                    None => Body::Full(bytes),
                    Some((start, end)) => Body::Full(bytes.slice(start as usize..=end as usize)),
                }
            }
            Content::Stored(stored) => {
                let sent = range.map_or(len, |(start, end)| end - start + 1);
                // HEAD sends the length alone: nothing to open.
                let chunks = if head {
                    Box::pin(futures_util::stream::empty())
                } else {
                    self.images.stream(&stored, range).await?
                };
                Body::stream(
                    Box::pin(chunks.map_err(|e| Box::new(e) as crate::http::BoxError)),
                    Some(sent),
                )
            }
        })
    }

    fn asset(
        &self,
        name: &str,
        headers: &HeaderMap,
        cache: HeaderValue,
    ) -> Result<Response<Body>, Error> {
        let asset = self
            .assets
            .get(name)
            .ok_or_else(|| Error::NotFound(format!("asset {name}")))?;
        Ok(asset_response(asset, headers, cache))
    }
}

fn asset_response(asset: &Asset, req: &HeaderMap, cache: HeaderValue) -> Response<Body> {
    let mut res = Response::new(Body::empty());
    let headers = res.headers_mut();
    headers.insert(header::ETAG, value(&asset.etag));
    headers.insert(header::CACHE_CONTROL, cache);
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    let fresh = header(req, header::IF_NONE_MATCH).is_some_and(|inm| {
        inm.split(',')
            .any(|t| t.trim().trim_start_matches("W/") == asset.etag || t.trim() == "*")
    });
    if fresh {
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        return res;
    }
    let (body, coding) = match (&asset.brotli, &asset.gzip) {
        (Some(br), _) if accepts(req, "br") => (br, Some("br")),
        (_, Some(gz)) if accepts(req, "gzip") => (gz, Some("gzip")),
        _ => (&asset.identity, None),
    };
    if let Some(coding) = coding {
        res.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    *res.body_mut() = Body::Full(Bytes::from_owner(Arc::clone(body)));
    res
}

/// Whether `Accept-Encoding` allows `coding` (`br;q=0` means "not br").
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .any(|h| {
            h.split(',').any(|part| {
                let mut bits = part.split(';');
                let name = bits.next().unwrap_or_default().trim();
                let refused = bits.any(|b| {
                    b.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q == 0.0)
                });
                (name.eq_ignore_ascii_case(coding) || name == "*") && !refused
            })
        })
}

/// `?download` and `?size=` of an image request (the first of each).
fn image_query(query: Option<&str>) -> (Option<String>, Option<String>) {
    let (mut download, mut size) = (None, None);
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "download" if download.is_none() => download = Some(value.into_owned()),
            "size" if size.is_none() => size = Some(value.into_owned()),
            _ => {}
        }
    }
    (download, size)
}

/// The headers every answer with an object carries; returns its ETag.
fn object_headers(headers: &mut HeaderMap, object: &crate::service::images::Object) -> String {
    let etag = format!("\"{}\"", object.sha256);
    headers.insert(header::ETAG, value(&etag));
    let cache_control = match object.max_age {
        None => IMMUTABLE,
        Some(seconds) => value(&format!("public, max-age={seconds}")),
    };
    headers.insert(header::CACHE_CONTROL, cache_control);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(IMAGE_CSP),
    );
    if let Some(name) = &object.download_name {
        headers.insert(header::CONTENT_DISPOSITION, value(&attachment(name)));
    }
    etag
}

/// A header value from text built here; bytes a header cannot carry (none
/// of what is built here has any) become an empty value rather than a panic.
fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn redirect(status: StatusCode, location: &str, cache: HeaderValue) -> Response<Body> {
    let mut res = Response::new(Body::empty());
    *res.status_mut() = status;
    res.headers_mut().insert(header::LOCATION, value(location));
    res.headers_mut().insert(header::CACHE_CONTROL, cache);
    res
}

/// `?download` asks for an attachment unless its value says no.
fn wants_download(download: Option<&str>) -> bool {
    download.is_some_and(|v| !matches!(v, "0" | "false" | "no" | "off"))
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

    #[test]
    fn only_single_segment_gets_and_heads_take_the_fast_path() {
        assert_eq!(
            Route::of(&Method::GET, "/img/abc.jpg"),
            Some(Route::Image("abc.jpg".into()))
        );
        assert_eq!(
            Route::of(&Method::HEAD, "/assets/app%2D1.css"),
            Some(Route::Asset("app-1.css".into()))
        );
        assert_eq!(Route::of(&Method::GET, "/robots.txt"), Some(Route::Robots));
        assert_eq!(Route::of(&Method::POST, "/img/abc"), None);
        assert_eq!(Route::of(&Method::GET, "/img/"), None);
        assert_eq!(Route::of(&Method::GET, "/img/a/b"), None);
        assert_eq!(Route::of(&Method::GET, "/img/%FF"), None);
        assert_eq!(Route::of(&Method::GET, "/api/images"), None);
    }
}
