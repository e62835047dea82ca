//! How failures look over HTTP. A service error becomes one [`Problem`]
//! (status, code, message, details) in one match; where the route is
//! mounted decides how it is written: everything under `/api` answers JSON
//! ([`ApiError`]), the site's pages answer a page to browsers and JSON to
//! everything else ([`PageError`]). The cause of a 5xx is logged in full
//! with the request id and never shown.

use std::borrow::Cow;

use rocket::http::{ContentType, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket::serde::json::{Value, json};
use rocket::{Catcher, catch, catchers};

use crate::assets::Assets;
use crate::imaging::{Format, ImagingError};
use crate::routes::request_log::request_id;
use crate::routes::views;
use crate::service::Error;

/// A failure as HTTP shows it.
#[derive(Debug)]
pub struct Problem {
    pub status: Status,
    pub code: Cow<'static, str>,
    /// What the user is told.
    pub message: String,
    /// Machine-readable facts, such as the limit that was exceeded.
    pub details: serde_json::Map<String, Value>,
    /// Seconds after which a retry may succeed.
    pub retry_after: Option<u32>,
    /// Further headers the answer carries (`WWW-Authenticate`, the
    /// `RateLimit` pair).
    pub headers: Vec<(&'static str, String)>,
    /// For a 5xx: the whole chain of causes, logged and never shown.
    cause: Option<String>,
}

impl Problem {
    fn new(status: Status, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            details: serde_json::Map::new(),
            retry_after: None,
            headers: Vec::new(),
            cause: None,
        }
    }

    /// A problem that no service error names (a route's own check).
    pub fn with(status: Status, code: &'static str, message: impl Into<String>) -> Self {
        Self::new(status, code, message)
    }

    fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// A request for a host this server does not answer for.
    pub fn bad_host(host: &str) -> Self {
        let host: String = host.chars().take(100).collect();
        Self::new(
            Status::BadRequest,
            "unknown_host",
            format!(
                "this server does not answer for the host {host:?}: set server.public_url to the \
                 address people use (or add the name to server.allowed_hosts)"
            ),
        )
    }

    /// A request that reached the app's loopback port without the edge.
    pub fn not_through_the_edge() -> Self {
        Self::new(
            Status::MisdirectedRequest,
            "not_through_the_edge",
            "this port serves the edge only; connect to server.address and server.port",
        )
    }

    /// The app behind the edge did not answer (the edge says so).
    pub fn app_unreachable() -> Self {
        Self::new(
            Status::BadGateway,
            "app_unreachable",
            "the application did not answer; please try again",
        )
    }

    /// What a request that no route answered gets, by its status.
    fn for_status(status: Status, path: &str) -> Self {
        let message = match status.code {
            404 => format!("nothing lives at {path}"),
            413 => "the request body is larger than the server accepts".into(),
            _ => status.reason().unwrap_or("request failed").to_string(),
        };
        // `Payload Too Large` → `payload_too_large`.
        let code = status
            .reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .replace(' ', "_");
        Self::new(status, code, message)
    }

    fn json_body(&self, request_id: &str) -> String {
        let mut error = self.details.clone();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        error.insert("request_id".into(), json!(request_id));
        json!({ "error": error }).to_string()
    }

    fn log(&self, request_id: &str) {
        if let Some(cause) = &self.cause {
            tracing::error!(request_id, status = self.status.code, %cause, "request failed");
        }
    }

    /// The problem written out without Rocket, for the edge: a page when
    /// `page` gives the assets to draw one with, else JSON.
    pub fn written(self, request_id: &str, page: Option<&Assets>) -> Written {
        self.log(request_id);
        let (content_type, body) = match page {
            Some(assets) => (
                "text/html; charset=utf-8",
                views::error_page(assets, self.status, &self.message).0,
            ),
            None => ("application/json", self.json_body(request_id)),
        };
        Written {
            status: self.status.code,
            content_type,
            body,
            retry_after: self.retry_after,
            headers: self.headers,
        }
    }

    fn json(self, req: &Request<'_>) -> response::Result<'static> {
        let id = request_id(req);
        self.log(&id);
        let body = self.json_body(&id);
        let mut res = Response::build();
        if let Some(seconds) = self.retry_after {
            res.raw_header("Retry-After", seconds.to_string());
        }
        for (name, value) in self.headers {
            res.raw_header(name, value);
        }
        res.status(self.status)
            .header(ContentType::JSON)
            .sized_body(body.len(), std::io::Cursor::new(body))
            .ok()
    }

    /// A page for browsers, JSON for everything else (curl, scripts).
    fn negotiated(
        self,
        req: &Request<'_>,
        page: impl FnOnce(&Assets, &Self) -> views::Page,
    ) -> response::Result<'static> {
        if !wants_html(req) {
            return self.json(req);
        }
        self.log(&request_id(req));
        let status = self.status;
        let retry_after = self.retry_after;
        let html = page(&page_assets(req), &self);
        let mut res = Response::build_from(html.respond_to(req)?);
        if let Some(seconds) = retry_after {
            res.raw_header("Retry-After", seconds.to_string());
        }
        for (name, value) in self.headers {
            res.raw_header(name, value);
        }
        res.status(status).ok()
    }
}

/// A problem as bytes and headers, for a server that is not Rocket.
pub struct Written {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub retry_after: Option<u32>,
    pub headers: Vec<(&'static str, String)>,
}

/// The one place a service error becomes HTTP.
impl From<&Error> for Problem {
    fn from(e: &Error) -> Self {
        let p = |status| Problem::new(status, e.code(), e.to_string());
        match e {
            Error::MissingFile | Error::BadForm(_) => p(Status::BadRequest),
            Error::TooLarge { limit } => {
                p(Status::PayloadTooLarge).detail("limit_bytes", limit.as_u64())
            }
            Error::SlowBody(_) => p(Status::RequestTimeout),
            Error::DecodeTooBig { needed, limit } => p(Status::UnprocessableEntity)
                .detail("needed_bytes", *needed)
                .detail("limit_bytes", *limit),
            Error::Busy => Problem {
                retry_after: Some(5),
                ..p(Status::ServiceUnavailable)
            },
            Error::Image(ImagingError::Empty) => p(Status::BadRequest),
            Error::Image(ImagingError::Unsupported { found }) => p(Status::UnsupportedMediaType)
                .detail("found", *found)
                .detail(
                    "accepted",
                    [Format::Jpeg, Format::Png, Format::Gif, Format::WebP]
                        .map(Format::mime)
                        .to_vec(),
                ),
            Error::Image(ImagingError::TooLarge {
                width,
                height,
                max_width,
                max_height,
            }) => p(Status::UnprocessableEntity)
                .detail("width", *width)
                .detail("height", *height)
                .detail("max_width", *max_width)
                .detail("max_height", *max_height),
            Error::Image(ImagingError::TooManyPixels {
                width,
                height,
                pixels,
                max_pixels,
            }) => p(Status::UnprocessableEntity)
                .detail("width", *width)
                .detail("height", *height)
                .detail("pixels", *pixels)
                .detail("max_pixels", *max_pixels),
            Error::Image(ImagingError::TooManyFrames { frames, max_frames }) => {
                p(Status::UnprocessableEntity)
                    .detail("frames", *frames)
                    .detail("max_frames", *max_frames)
            }
            Error::Image(ImagingError::AnimationTooLarge { pixels, max_pixels }) => {
                p(Status::UnprocessableEntity)
                    .detail("pixels", *pixels)
                    .detail("max_pixels", *max_pixels)
            }
            Error::Image(ImagingError::ProfileTooLarge { max_bytes }) => {
                p(Status::UnprocessableEntity).detail("limit_bytes", *max_bytes)
            }
            Error::Image(ImagingError::TimedOut { millis }) => {
                let seconds: Value = if millis.is_multiple_of(1000) {
                    (millis / 1000).into()
                } else {
                    (*millis as f64 / 1000.0).into()
                };
                p(Status::UnprocessableEntity).detail("limit_seconds", seconds)
            }
            // Nobody reads this answer: the client has gone.
            Error::Image(ImagingError::Cancelled) => p(Status::RequestTimeout),
            Error::Image(ImagingError::Corrupt(_)) => p(Status::UnprocessableEntity),
            Error::NotFound(_) => p(Status::NotFound),
            Error::WrongDeleteToken => p(Status::Forbidden),
            Error::KeyRequired(_) | Error::KeyRevoked => Problem {
                headers: vec![("WWW-Authenticate", "Bearer realm=\"kitteh\"".into())],
                ..p(Status::Unauthorized)
            },
            Error::QuotaExceeded {
                used,
                quota,
                needed,
            } => p(Status::PayloadTooLarge)
                .detail("used_bytes", *used)
                .detail("quota_bytes", *quota)
                .detail("needed_bytes", *needed),
            Error::RateLimited(verdict) => Problem {
                retry_after: Some(u32::try_from(verdict.retry_after).unwrap_or(u32::MAX)),
                headers: crate::service::rate::headers(verdict).to_vec(),
                ..p(Status::TooManyRequests)
                    .detail("limit", verdict.name)
                    .detail("per_minute", verdict.limit.per_minute)
                    .detail("burst", verdict.limit.burst)
            },
            Error::BadExpiry(_) => p(Status::UnprocessableEntity),
            Error::ExpiryTooLong { max, .. } => {
                p(Status::UnprocessableEntity).detail("max_expiry", max.as_str())
            }
            Error::Expired(_) => p(Status::Gone),
            Error::Blocked => p(Status::UnavailableForLegalReasons),
            Error::Banned | Error::AdminOnly(_) | Error::Forged => p(Status::Forbidden),
            Error::BadReport(_) => p(Status::UnprocessableEntity),
            Error::StorageUnavailable(_) => Problem {
                message:
                    "image storage is unavailable right now; nothing was stored, please try again"
                        .into(),
                retry_after: Some(5),
                cause: Some(e.chain()),
                ..p(Status::ServiceUnavailable)
            },
            // An upload must never get a 201 that a restart would lose:
            // the client may retry once the database takes writes again.
            Error::DatabaseGone(_) => Problem {
                message: "the database cannot take writes right now; nothing was stored, please try again".into(),
                retry_after: Some(5),
                cause: Some(e.chain()),
                ..p(Status::ServiceUnavailable)
            },
            Error::Database(db) if crate::db::is_unavailable(db) => Problem {
                message: "the database cannot take writes right now; nothing was stored, please try again".into(),
                retry_after: Some(5),
                cause: Some(e.chain()),
                ..p(Status::ServiceUnavailable)
            },
            Error::ObjectMissing { .. }
            | Error::Database(_)
            | Error::NoFreeName(_)
            | Error::Task(_) => Problem {
                message: "something went wrong on our side; it has been logged".into(),
                cause: Some(e.chain()),
                ..p(Status::InternalServerError)
            },
        }
    }
}

/// The error of a route under `/api`: always JSON.
#[derive(Debug)]
pub struct ApiError(pub Problem);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(Problem::from(&e))
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        self.0.json(req)
    }
}

/// The error of a page route: an error page for browsers, JSON otherwise.
#[derive(Debug)]
pub struct PageError(pub Problem);

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        Self(Problem::from(&e))
    }
}

impl<'r> Responder<'r, 'static> for PageError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        self.0.negotiated(req, |assets, p| {
            views::error_page(assets, p.status, &p.message)
        })
    }
}

/// The error of the upload form: the upload page again, with the message.
#[derive(Debug)]
pub struct FormError(pub Problem);

impl From<Error> for FormError {
    fn from(e: Error) -> Self {
        Self(Problem::from(&e))
    }
}

impl<'r> Responder<'r, 'static> for FormError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let key_refused = matches!(self.0.code.as_ref(), "key_required" | "key_revoked");
        let config = req
            .rocket()
            .state::<crate::config::Config>()
            .cloned()
            .unwrap_or_default();
        let page = crate::routes::access::upload_page(req, &config, key_refused);
        self.0.negotiated(req, |assets, p| {
            views::upload_page(assets, &page, Some(&p.message))
        })
    }
}

/// Whether the client asked for HTML, as browsers do.
pub(crate) fn wants_html(req: &Request<'_>) -> bool {
    req.headers().get("Accept").any(|a| a.contains("text/html"))
}

/// The managed assets, or the embedded ones for a request that failed
/// before the application state was reachable.
fn page_assets<'r>(req: &'r Request<'_>) -> std::borrow::Cow<'r, Assets> {
    match req.rocket().state::<Assets>() {
        Some(assets) => std::borrow::Cow::Borrowed(assets),
        None => std::borrow::Cow::Owned(Assets::embedded()),
    }
}

/// Requests under `/api` that no route answered: JSON.
pub fn api_catchers() -> Vec<Catcher> {
    catchers![api_default]
}

/// Requests elsewhere that no route answered: a page or JSON.
pub fn page_catchers() -> Vec<Catcher> {
    catchers![page_default]
}

#[catch(default)]
fn api_default(status: Status, req: &Request<'_>) -> ApiError {
    ApiError(Problem::for_status(status, req.uri().path().as_str()))
}

#[catch(default)]
fn page_default(status: Status, req: &Request<'_>) -> PageError {
    PageError(Problem::for_status(status, req.uri().path().as_str()))
}
