//! `/metrics` in Prometheus text format.

use std::sync::Arc;

use rocket::http::ContentType;
use rocket::{Route, State, get, routes};

use crate::routes::error::PageError;
use crate::service::health::Health;

pub fn routes() -> Vec<Route> {
    routes![metrics]
}

#[get("/metrics")]
async fn metrics(health: &State<Arc<Health>>) -> Result<(ContentType, String), PageError> {
    let text = health.metrics_text().await?;
    let text_format =
        ContentType::new("text", "plain").with_params([("version", "0.0.4"), ("charset", "utf-8")]);
    Ok((text_format, text))
}
