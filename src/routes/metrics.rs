//! `/metrics` in Prometheus text format. Gauges that live in the database
//! (bytes stored, jobs by state) are read at scrape time, so every replica
//! reports the same totals.

use std::sync::Arc;

use rocket::http::ContentType;
use rocket::{Route, State, get, routes};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

use crate::error::Result;
use crate::metrics::{Metrics, StateLabels};
use crate::service::variants::Variants;

pub fn routes() -> Vec<Route> {
    routes![metrics]
}

#[get("/metrics")]
async fn metrics(
    metrics: &State<Arc<Metrics>>,
    db: &State<DatabaseConnection>,
    variants: &State<Arc<Variants>>,
) -> Result<(ContentType, String)> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT CAST(COALESCE((SELECT SUM(size) FROM images), 0) AS BIGINT) \
             + CAST(COALESCE((SELECT SUM(size) FROM variants), 0) AS BIGINT) AS n",
        ))
        .await?;
    if let Some(row) = row {
        metrics.stored_bytes.set(row.try_get::<i64>("", "n")?);
    }
    for (state, n) in variants.counts().await? {
        metrics
            .variant_jobs
            .get_or_create(&StateLabels { state })
            .set(n);
    }
    let text_format =
        ContentType::new("text", "plain").with_params([("version", "0.0.4"), ("charset", "utf-8")]);
    Ok((text_format, metrics.render()))
}
