//! How failures look over HTTP, whichever side answers. A service error
//! becomes one [`Problem`] (status, code, message, details) in one match;
//! it is written as JSON for API clients and as a page for browsers, by
//! the app's routes and by the edge alike ([`Problem::written`]). The
//! cause of a 5xx is logged in full with the request id and never shown.

use std::borrow::Cow;

use http::StatusCode;
use serde_json::{Value, json};

use crate::assets::Assets;
use crate::imaging::{Format, ImagingError};
use crate::service::Error;
use crate::views;

/// A failure as HTTP shows it.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
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
    fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
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

    /// A problem that no service error names (a route's or the edge's own
    /// check).
    pub fn with(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::new(status, code, message)
    }

    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// A request for a host this server does not answer for.
    pub fn bad_host(host: &str) -> Self {
        let host: String = host.chars().take(100).collect();
        Self::new(
            StatusCode::BAD_REQUEST,
            "unknown_host",
            format!(
                "this server does not answer for the host {host:?}: set server.public_url to the \
                 address people use (or add the name to server.allowed_hosts)"
            ),
        )
    }

    /// What a request that no route answered gets, by its status.
    pub fn for_status(status: StatusCode, path: &str) -> Self {
        let path: String = path.chars().take(200).collect();
        let message = match status.as_u16() {
            404 => format!("nothing lives at {path}"),
            413 => "the request body is larger than the server accepts".into(),
            _ => status
                .canonical_reason()
                .unwrap_or("request failed")
                .to_string(),
        };
        // `Payload Too Large` → `payload_too_large`.
        let code = status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .replace(' ', "_");
        Self::new(status, code, message)
    }

    /// The JSON body: `{"error": {"code", "message", "request_id", ...}}`.
    pub fn json_body(&self, request_id: &str) -> String {
        json!({ "error": self.error_object(Some(request_id)) }).to_string()
    }

    /// The `error` object (code, message, details), as the API writes it
    /// for each file of a request with several.
    pub fn error_object(&self, request_id: Option<&str>) -> serde_json::Map<String, Value> {
        let mut error = self.details.clone();
        error.insert("code".into(), json!(self.code));
        error.insert("message".into(), json!(self.message));
        if let Some(id) = request_id {
            error.insert("request_id".into(), json!(id));
        }
        error
    }

    /// Logs the cause of a 5xx, once, with the request id.
    pub fn log(&self, request_id: &str) {
        if let Some(cause) = &self.cause {
            tracing::error!(request_id, status = self.status.as_u16(), %cause, "request failed");
        }
    }

    /// The problem written out: a page when `page` gives the assets to draw
    /// one with (a browser asked), else JSON.
    pub fn written(self, request_id: &str, page: Option<&Assets>) -> Written {
        let (content_type, body) = match page {
            Some(assets) => (
                "text/html; charset=utf-8",
                views::error_page(assets, self.status, &self.message).0,
            ),
            None => ("application/json", self.json_body(request_id)),
        };
        self.written_as(request_id, content_type, body)
    }

    /// The problem with a body of the caller's making (a form page that
    /// shows the message), keeping its status and headers.
    pub fn written_as(self, request_id: &str, content_type: &'static str, body: String) -> Written {
        self.log(request_id);
        Written {
            status: self.status,
            content_type,
            body,
            retry_after: self.retry_after,
            headers: self.headers,
        }
    }
}

/// A problem as bytes and headers, ready for either side to send.
#[derive(Debug)]
pub struct Written {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: String,
    pub retry_after: Option<u32>,
    pub headers: Vec<(&'static str, String)>,
}

impl Written {
    /// Every header the answer carries besides its content type.
    pub fn extra_headers(&self) -> impl Iterator<Item = (&'static str, String)> + '_ {
        self.retry_after
            .map(|s| ("retry-after", s.to_string()))
            .into_iter()
            .chain(self.headers.iter().cloned())
    }
}

/// The one place a service error becomes HTTP.
impl From<&Error> for Problem {
    fn from(e: &Error) -> Self {
        let p = |status| Problem::new(status, e.code(), e.to_string());
        match e {
            Error::MissingFile | Error::BadForm(_) | Error::MalformedBody(_) => {
                p(StatusCode::BAD_REQUEST)
            }
            Error::TooLarge { limit } => {
                p(StatusCode::PAYLOAD_TOO_LARGE).detail("limit_bytes", limit.as_u64())
            }
            Error::SlowBody(_) => p(StatusCode::REQUEST_TIMEOUT),
            Error::DecodeTooBig { needed, limit } => p(StatusCode::UNPROCESSABLE_ENTITY)
                .detail("needed_bytes", *needed)
                .detail("limit_bytes", *limit),
            Error::Busy => Problem {
                retry_after: Some(5),
                ..p(StatusCode::SERVICE_UNAVAILABLE)
            },
            Error::Image(ImagingError::Empty) => p(StatusCode::BAD_REQUEST),
            Error::Image(ImagingError::Unsupported { found }) => p(StatusCode::UNSUPPORTED_MEDIA_TYPE)
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
            }) => p(StatusCode::UNPROCESSABLE_ENTITY)
                .detail("width", *width)
                .detail("height", *height)
                .detail("max_width", *max_width)
                .detail("max_height", *max_height),
            Error::Image(ImagingError::TooManyPixels {
                width,
                height,
                pixels,
                max_pixels,
            }) => p(StatusCode::UNPROCESSABLE_ENTITY)
                .detail("width", *width)
                .detail("height", *height)
                .detail("pixels", *pixels)
                .detail("max_pixels", *max_pixels),
            Error::Image(ImagingError::TooManyFrames { frames, max_frames }) => {
                p(StatusCode::UNPROCESSABLE_ENTITY)
                    .detail("frames", *frames)
                    .detail("max_frames", *max_frames)
            }
            Error::Image(ImagingError::AnimationTooLarge { pixels, max_pixels }) => {
                p(StatusCode::UNPROCESSABLE_ENTITY)
                    .detail("pixels", *pixels)
                    .detail("max_pixels", *max_pixels)
            }
            Error::Image(ImagingError::TooManyScans { scans, max_scans }) => {
                p(StatusCode::UNPROCESSABLE_ENTITY)
                    .detail("scans", *scans)
                    .detail("max_scans", *max_scans)
            }
            Error::Image(ImagingError::ProfileTooLarge { max_bytes }) => {
                p(StatusCode::UNPROCESSABLE_ENTITY).detail("limit_bytes", *max_bytes)
            }
            Error::Image(ImagingError::TimedOut { millis }) => {
                let seconds: Value = if millis.is_multiple_of(1000) {
                    (millis / 1000).into()
                } else {
                    (*millis as f64 / 1000.0).into()
                };
                p(StatusCode::UNPROCESSABLE_ENTITY).detail("limit_seconds", seconds)
            }
            // Nobody reads this answer: the client has gone.
            Error::Image(ImagingError::Cancelled) => p(StatusCode::REQUEST_TIMEOUT),
            Error::Image(ImagingError::Corrupt(_)) => p(StatusCode::UNPROCESSABLE_ENTITY),
            Error::NotFound(_) => p(StatusCode::NOT_FOUND),
            Error::WrongDeleteToken => p(StatusCode::FORBIDDEN),
            Error::KeyRequired(_) | Error::KeyRevoked => Problem {
                headers: vec![("WWW-Authenticate", "Bearer realm=\"kitteh\"".into())],
                ..p(StatusCode::UNAUTHORIZED)
            },
            Error::QuotaExceeded {
                used,
                quota,
                needed,
            } => p(StatusCode::PAYLOAD_TOO_LARGE)
                .detail("used_bytes", *used)
                .detail("quota_bytes", *quota)
                .detail("needed_bytes", *needed),
            Error::RateLimited(verdict) => Problem {
                retry_after: Some(u32::try_from(verdict.retry_after).unwrap_or(u32::MAX)),
                headers: crate::service::rate::headers(verdict).to_vec(),
                ..p(StatusCode::TOO_MANY_REQUESTS)
                    .detail("limit", verdict.name)
                    .detail("per_minute", verdict.limit.per_minute)
                    .detail("burst", verdict.limit.burst)
            },
            Error::BadExpiry(_) => p(StatusCode::UNPROCESSABLE_ENTITY),
            Error::ExpiryTooLong { max, .. } => {
                p(StatusCode::UNPROCESSABLE_ENTITY).detail("max_expiry", max.as_str())
            }
            Error::Expired(_) => p(StatusCode::GONE),
            Error::Blocked => p(StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS),
            Error::Banned | Error::AdminOnly(_) | Error::Forged => p(StatusCode::FORBIDDEN),
            Error::BadReport(_) => p(StatusCode::UNPROCESSABLE_ENTITY),
            Error::StorageUnavailable(_) => Problem {
                message:
                    "image storage is unavailable right now; nothing was stored, please try again"
                        .into(),
                retry_after: Some(5),
                cause: Some(e.chain()),
                ..p(StatusCode::SERVICE_UNAVAILABLE)
            },
            // An upload must never get a 201 that a restart would lose:
            // the client may retry once the database takes writes again.
            Error::DatabaseGone(_) => Problem {
                message: "the database cannot take writes right now; nothing was stored, please try again".into(),
                retry_after: Some(5),
                cause: Some(e.chain()),
                ..p(StatusCode::SERVICE_UNAVAILABLE)
            },
            Error::Database(db) if crate::db::is_unavailable(db) => Problem {
                message: "the database cannot take writes right now; nothing was stored, please try again".into(),
                retry_after: Some(5),
                cause: Some(e.chain()),
                ..p(StatusCode::SERVICE_UNAVAILABLE)
            },
            Error::ObjectMissing { .. }
            | Error::Database(_)
            | Error::NoFreeName(_)
            | Error::Task(_) => Problem {
                message: "something went wrong on our side; it has been logged".into(),
                cause: Some(e.chain()),
                ..p(StatusCode::INTERNAL_SERVER_ERROR)
            },
        }
    }
}
