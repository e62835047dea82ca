//! The JSON API for scripts (curl, ShareX), mounted under `/api`.

use std::sync::Arc;

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::status::Created;
use rocket::serde::json::{Json, Value, json};
use rocket::{Route, State, delete, get, post, routes};

use crate::routes::access::Caller;
use crate::routes::error::ApiError;
use crate::routes::links::BaseUrl;
use crate::routes::request_log::LogToken;
use crate::routes::upload_form::UploadBody;
use crate::service::Error;
use crate::service::images::Images;
use crate::service::model::{ImageInfo, SizeInfo};
use crate::service::moderation::Moderation;

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
        "sizes": sizes,
    });
    if let Some(token) = delete_token {
        v["delete_token"] = json!(token);
        v["delete_url"] = json!(base.delete_page(image, token));
    }
    v
}

/// `201 Created` with the image's description and a `Location` header.
#[post("/images", data = "<body>")]
async fn create(
    body: Result<UploadBody, Error>,
    base: BaseUrl,
    images: &State<Arc<Images>>,
    log: &LogToken,
) -> Result<Created<Json<Value>>, ApiError> {
    let upload = body.map_err(|e| images.rejected(e))?;
    let uploaded = upload.store(images).await?;
    log.set(&uploaded.image.token);
    let location = base.api(&uploaded.image);
    Ok(Created::new(location).body(Json(describe(
        &uploaded.image,
        &uploaded.sizes,
        &base,
        Some(&uploaded.delete_token),
    ))))
}

#[get("/images/<token>")]
async fn show(
    token: &str,
    base: BaseUrl,
    images: &State<Arc<Images>>,
    log: &LogToken,
) -> Result<Json<Value>, ApiError> {
    log.set(token);
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
    images: &State<Arc<Images>>,
    moderation: &State<Arc<Moderation>>,
    log: &LogToken,
) -> Result<Status, ApiError> {
    log.set(token);
    let presented = header.0.as_deref().or(delete_token);
    crate::routes::pages::delete_checked(images, moderation, &caller, token, presented).await?;
    Ok(Status::NoContent)
}
