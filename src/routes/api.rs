//! The JSON API for scripts (curl, ShareX).

use std::sync::Arc;

use rocket::http::Status;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::status::Created;
use rocket::serde::json::{Json, Value, json};
use rocket::{Route, State, delete, get, post, routes};

use crate::db::entities::images;
use crate::error::{Error, Result};
use crate::logging::LogToken;
use crate::metrics::Metrics;
use crate::routes::links::BaseUrl;
use crate::routes::upload::UploadBody;
use crate::service::images::{Images, SizeStatus, Uploaded};

pub fn routes() -> Vec<Route> {
    routes![create, show, remove]
}

fn describe(
    image: &images::Model,
    sizes: &[SizeStatus],
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
                "state": s.state,
            });
            if let Some(error) = &s.error {
                v["error"] = json!(error);
            }
            if let Some(variant) = &s.variant {
                v["bytes"] = json!(variant.size);
            }
            v
        })
        .collect();
    let mut v = json!({
        "name": format!("{}{}", image.generated_name, image.kind),
        "token": image.token,
        "page_url": base.page(image),
        "image_url": base.image(image),
        "api_url": base.api(image),
        "width": image.width,
        "height": image.height,
        "bytes": image.size,
        "content_type": image.content_type,
        "sha256": image.sha256,
        "original_name": image.original_name,
        "created_at": image.inserted_at.to_rfc3339(),
        "sizes": sizes,
    });
    if let Some(token) = delete_token {
        v["delete_token"] = json!(token);
        v["delete_url"] = json!(base.delete_page(image, token));
    }
    v
}

/// `201 Created` with the image's description and a `Location` header.
#[post("/api/images", data = "<body>")]
async fn create(
    body: Result<UploadBody, Error>,
    base: BaseUrl,
    images: &State<Arc<Images>>,
    metrics: &State<Arc<Metrics>>,
    log: &LogToken,
) -> Result<Created<Json<Value>>> {
    let uploaded = upload(images, metrics, body).await?;
    log.set(&uploaded.image.token);
    let location = base.api(&uploaded.image);
    let sizes = images.sizes(&uploaded.image).await?;
    Ok(Created::new(location).body(Json(describe(
        &uploaded.image,
        &sizes,
        &base,
        Some(&uploaded.delete_token),
    ))))
}

/// Stores an upload and counts it as accepted or rejected (by reason).
pub async fn upload(
    images: &Arc<Images>,
    metrics: &Metrics,
    body: Result<UploadBody, Error>,
) -> Result<Uploaded> {
    let result = match body {
        Ok(body) => images.upload(body.bytes, body.file_name.as_deref()).await,
        Err(e) => Err(e),
    };
    metrics.record_upload(result.as_ref().map(|_| ()).map_err(Error::code));
    result
}

#[get("/api/images/<token>")]
async fn show(
    token: &str,
    base: BaseUrl,
    images: &State<Arc<Images>>,
    log: &LogToken,
) -> Result<Json<Value>> {
    log.set(token);
    let image = images.get(token).await?;
    let sizes = images.sizes(&image).await?;
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

#[delete("/api/images/<token>?<delete_token>")]
async fn remove(
    token: &str,
    delete_token: Option<&str>,
    header: DeleteTokenHeader,
    images: &State<Arc<Images>>,
    log: &LogToken,
) -> Result<Status> {
    log.set(token);
    let presented = header.0.as_deref().or(delete_token);
    images.delete(token, presented).await?;
    Ok(Status::NoContent)
}
