//! The JSON API for scripts (curl, ShareX), mounted under `/api`.

use std::sync::Arc;

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::status::{Created, Custom};
use rocket::serde::json::{Json, Value, json};
use rocket::{Route, State, delete, get, post, routes};

use crate::http::Problem;
use crate::http::links::BaseUrl;
use crate::routes::access::Caller;
use crate::routes::error::ApiError;
use crate::routes::exchange::Reporter;
use crate::routes::upload_form::UploadBody;
use crate::service::Error;
use crate::service::images::Images;
use crate::service::model::{ImageInfo, SizeInfo};
use crate::service::removals::Removals;
use crate::service::uploads::{FileOutcome, Stored, Uploads};

/// Mounted at `/api`.
pub fn routes() -> Vec<Route> {
    routes![create, show, remove]
}

fn describe(
    image: &ImageInfo,
    sizes: &[SizeInfo],
    base: &BaseUrl,
    delete_token: Option<&str>,
) -> Value {
    let sizes: Vec<Value> = sizes
        .iter()
        .map(|s| {
            let mut v = json!({
                "name": s.name,
                "url": base.size_image(image, &s.name),
                "page_url": base.size_page(image, &s.name),
                "width": s.width,
                "height": s.height,
                "state": s.state.as_str(),
            });
            if let Some(error) = &s.error {
                v["error"] = json!(error);
            }
            if let Some(bytes) = s.bytes {
                v["bytes"] = json!(bytes);
            }
            v
        })
        .collect();
    let mut v = json!({
        "name": image.name,
        "token": image.token,
        "page_url": base.page(image),
        "image_url": base.image(image),
        "api_url": base.api(image),
        "width": image.width,
        "height": image.height,
        "bytes": image.bytes,
        "content_type": image.content_type,
        "sha256": image.sha256(),
        "original_name": image.original_name,
        "created_at": image.created_at.to_rfc3339(),
        "expires_at": image.expires_at.map(|at| at.to_rfc3339()),
        "blurhash": image.blurhash,
        "sizes": sizes,
    });
    if let Some(token) = delete_token {
        v["delete_token"] = json!(token);
        v["delete_url"] = json!(base.delete_page(image, token));
    }
    v
}

/// What an upload request gets: one image as always, or every image and
/// every per-file error when it sent several files.
#[derive(rocket::Responder)]
pub enum Answer {
    One(Created<Json<Value>>),
    Many(Custom<Json<Value>>),
}

/// `201 Created` with the image's description and a `Location` header; for
/// several files, `201` with `images` and `errors` when any was stored,
/// else the first error's status with the same body.
#[post("/images", data = "<body>")]
async fn create(
    body: Result<UploadBody, Error>,
    base: BaseUrl,
    uploads: &State<Arc<Uploads>>,
    log: &Reporter,
) -> Result<Answer, ApiError> {
    let uploaded = match body?.store(uploads).await? {
        Stored::Many(outcomes) => return Ok(Answer::Many(many(&outcomes, &base))),
        Stored::One(uploaded) => uploaded,
    };
    log.token(&uploaded.image.token);
    let location = base.api(&uploaded.image);
    Ok(Answer::One(Created::new(location).body(Json(describe(
        &uploaded.image,
        &uploaded.sizes,
        &base,
        Some(&uploaded.delete_token),
    )))))
}

/// The answer to a request with several files.
fn many(outcomes: &[FileOutcome], base: &BaseUrl) -> Custom<Json<Value>> {
    let mut stored = Vec::new();
    let mut errors = Vec::new();
    let mut first_error: Option<Status> = None;
    for (index, outcome) in outcomes.iter().enumerate() {
        match &outcome.result {
            Ok(uploaded) => {
                let mut v = describe(
                    &uploaded.image,
                    &uploaded.sizes,
                    base,
                    Some(&uploaded.delete_token),
                );
                v["index"] = json!(index);
                stored.push(v);
            }
            Err(e) => {
                let problem = Problem::from(e);
                first_error.get_or_insert(Status::new(problem.status.as_u16()));
                errors.push(json!({
                    "index": index,
                    "file_name": outcome.file_name,
                    "error": problem.error_object(None),
                }));
            }
        }
    }
    let status = if stored.is_empty() {
        first_error.unwrap_or(Status::BadRequest)
    } else {
        Status::Created
    };
    Custom(status, Json(json!({ "images": stored, "errors": errors })))
}

#[get("/images/<token>")]
async fn show(
    token: &str,
    base: BaseUrl,
    images: &State<Arc<Images>>,
    log: &Reporter,
) -> Result<Json<Value>, ApiError> {
    log.token(token);
    let (image, sizes) = images.describe(token).await?;
    Ok(Json(describe(&image, &sizes, &base, None)))
}

/// The delete token from the `X-Delete-Token` header.
pub struct DeleteTokenHeader(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for DeleteTokenHeader {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(DeleteTokenHeader(
            req.headers().get_one("X-Delete-Token").map(str::to_string),
        ))
    }
}

#[delete("/images/<token>?<delete_token>")]
async fn remove(
    token: &str,
    delete_token: Option<&str>,
    header: DeleteTokenHeader,
    caller: Caller,
    removals: &State<Arc<Removals>>,
    log: &Reporter,
) -> Result<Status, ApiError> {
    log.token(token);
    let presented = header.0.as_deref().or(delete_token);
    removals.with_token(caller.addr, token, presented).await?;
    Ok(Status::NoContent)
}
