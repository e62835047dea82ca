//! The error type every route returns: each variant is one thing that went
//! wrong, in the user's terms, mapped to one status. API clients get
//! `{"error": {"code", "message", ...}}`; browsers get a page. Causes of a
//! 500 are logged in full with the request id and never shown.

use rocket::http::{ContentType, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket::serde::json::{Value, json};
use rocket::{Catcher, catch, catchers};

use crate::assets::Assets;
use crate::imaging::ImagingError;
use crate::logging::request_id;
use crate::pages;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the multipart body had no file in a field we read.
    #[error(
        "no file in the upload: send the image in the multipart field `file` (or `image[file]`)"
    )]
    MissingFile,
    /// 400: the request body is not the multipart form we expect.
    #[error("the upload is not a valid multipart form: {0}")]
    BadForm(String),
    /// 413: the body went past `uploads.max_bytes` while streaming in.
    #[error("the upload is larger than the limit of {limit}")]
    TooLarge { limit: rocket::data::ByteUnit },
    /// 400 / 415 / 422 depending on what is wrong with the image.
    #[error(transparent)]
    Image(#[from] ImagingError),
    /// 404: no image by that name or token.
    #[error("no image is called {0}")]
    NotFound(String),
    /// 403: the delete token is missing or wrong.
    #[error("the delete token is missing or wrong; nothing was deleted")]
    Forbidden,
    /// 503: the storage backend (a bucket, a disk) did not answer or
    /// refused; the client may retry. The cause is logged, not shown.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),
    /// 500: anything we did not expect. The cause is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    pub fn status(&self) -> Status {
        match self {
            Self::MissingFile | Self::BadForm(_) => Status::BadRequest,
            Self::TooLarge { .. } => Status::PayloadTooLarge,
            Self::Image(ImagingError::Empty) => Status::BadRequest,
            Self::Image(ImagingError::Unsupported { .. }) => Status::UnsupportedMediaType,
            Self::Image(_) => Status::UnprocessableEntity,
            Self::NotFound(_) => Status::NotFound,
            Self::Forbidden => Status::Forbidden,
            Self::StorageUnavailable(_) => Status::ServiceUnavailable,
            Self::Internal(_) => Status::InternalServerError,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingFile => "missing_file",
            Self::BadForm(_) => "bad_form",
            Self::TooLarge { .. } => "too_large",
            Self::Image(ImagingError::Empty) => "empty_file",
            Self::Image(ImagingError::Unsupported { .. }) => "unsupported_format",
            Self::Image(ImagingError::TooLarge { .. }) => "dimensions_too_large",
            Self::Image(ImagingError::TooManyPixels { .. }) => "too_many_pixels",
            Self::Image(ImagingError::Corrupt(_)) => "corrupt_image",
            Self::NotFound(_) => "not_found",
            Self::Forbidden => "forbidden",
            Self::StorageUnavailable(_) => "storage_unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// What the user is told. A 500 says only that it happened.
    pub fn public_message(&self) -> String {
        match self {
            Self::Internal(_) => "something went wrong on our side; it has been logged".into(),
            Self::StorageUnavailable(_) => {
                "image storage is unavailable right now; nothing was stored, please try again"
                    .into()
            }
            other => other.to_string(),
        }
    }

    /// Machine-readable details, such as the limit that was exceeded.
    fn details(&self) -> serde_json::Map<String, Value> {
        let mut map = serde_json::Map::new();
        match self {
            Self::TooLarge { limit } => {
                map.insert("limit_bytes".into(), json!(limit.as_u64()));
            }
            Self::Image(ImagingError::Unsupported { found }) => {
                map.insert("found".into(), json!(found));
                map.insert(
                    "accepted".into(),
                    json!(["image/jpeg", "image/png", "image/gif", "image/webp"]),
                );
            }
            Self::Image(ImagingError::TooLarge {
                width,
                height,
                max_width,
                max_height,
            }) => {
                map.insert("width".into(), json!(width));
                map.insert("height".into(), json!(height));
                map.insert("max_width".into(), json!(max_width));
                map.insert("max_height".into(), json!(max_height));
            }
            Self::Image(ImagingError::TooManyPixels {
                width,
                height,
                pixels,
                max_pixels,
            }) => {
                map.insert("width".into(), json!(width));
                map.insert("height".into(), json!(height));
                map.insert("pixels".into(), json!(pixels));
                map.insert("max_pixels".into(), json!(max_pixels));
            }
            _ => {}
        }
        map
    }

    fn json_body(&self, request_id: Option<&str>) -> Value {
        let mut error = self.details();
        error.insert("code".into(), json!(self.code()));
        error.insert("message".into(), json!(self.public_message()));
        if let Some(id) = request_id {
            error.insert("request_id".into(), json!(id));
        }
        json!({ "error": error })
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::internal(format!("database: {e}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::internal(format!("storage: {e}"))
    }
}

/// Whether to answer with JSON: every `/api/` route, and any client that
/// does not ask for HTML (curl, scripts).
pub fn wants_json(req: &Request<'_>) -> bool {
    if req.uri().path().as_str().starts_with("/api/") {
        return true;
    }
    let accepts_html = req.headers().get("Accept").any(|a| a.contains("text/html"));
    !accepts_html
}

impl<'r> Responder<'r, 'static> for Error {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        let request_id = Some(request_id(req));
        if let Self::Internal(cause) | Self::StorageUnavailable(cause) = &self {
            tracing::error!(request_id = request_id.as_deref().unwrap_or("-"), %cause, "request failed");
        }
        if wants_json(req) {
            let body = self.json_body(request_id.as_deref()).to_string();
            let mut response = Response::build();
            if matches!(self, Self::StorageUnavailable(_)) {
                response.raw_header("Retry-After", "5");
            }
            return response
                .status(status)
                .header(ContentType::JSON)
                .sized_body(body.len(), std::io::Cursor::new(body))
                .ok();
        }
        let assets = page_assets(req);
        let page = if req.uri().path().as_str() == "/upload" {
            pages::upload_page(&assets, Some(&self.public_message()))
        } else {
            pages::error_page(&assets, status, &self.public_message())
        };
        Response::build_from(page.respond_to(req)?)
            .status(status)
            .ok()
    }
}

/// The managed assets, or the embedded ones for a request that failed
/// before the application state was reachable.
fn page_assets<'r>(req: &'r Request<'_>) -> std::borrow::Cow<'r, Assets> {
    match req.rocket().state::<Assets>() {
        Some(assets) => std::borrow::Cow::Borrowed(assets),
        None => std::borrow::Cow::Owned(Assets::embedded()),
    }
}

pub fn catchers() -> Vec<Catcher> {
    catchers![default_catcher]
}

/// Anything no route answered (unknown paths, malformed requests): the same
/// JSON or page as route errors, keyed on the status.
#[catch(default)]
fn default_catcher(status: Status, req: &Request<'_>) -> CatcherResponse {
    CatcherResponse {
        status,
        path: req.uri().path().to_string(),
    }
}

pub struct CatcherResponse {
    status: Status,
    path: String,
}

impl<'r> Responder<'r, 'static> for CatcherResponse {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let message = match self.status.code {
            404 => format!("nothing lives at {}", self.path),
            413 => "the request body is larger than the server accepts".into(),
            _ => self.status.reason().unwrap_or("request failed").to_string(),
        };
        let code = self
            .status
            .reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .replace(' ', "_");
        if wants_json(req) {
            let body = json!({ "error": { "code": code, "message": message } }).to_string();
            return Response::build()
                .status(self.status)
                .header(ContentType::JSON)
                .sized_body(body.len(), std::io::Cursor::new(body))
                .ok();
        }
        let page = pages::error_page(&page_assets(req), self.status, &message);
        Response::build_from(page.respond_to(req)?)
            .status(self.status)
            .ok()
    }
}
