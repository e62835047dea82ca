//! `/healthz` (the process is alive) and `/readyz` (it can do its job).

use rocket::http::Status;
use rocket::serde::json::{Json, Value, json};
use rocket::{Route, State, get, routes};
use sea_orm::DatabaseConnection;

use std::sync::Arc;

use crate::db;
use crate::service::images::Images;

/// Longest the storage probe of `/readyz` may take.
const STORAGE_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub fn routes() -> Vec<Route> {
    routes![healthz, readyz]
}

#[get("/healthz")]
fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when every check passes; 503 naming each failed check otherwise, so a
/// load balancer stops sending traffic and an operator sees why.
#[get("/readyz")]
async fn readyz(
    db: &State<DatabaseConnection>,
    images: &State<Arc<Images>>,
) -> (Status, Json<Value>) {
    let mut checks = serde_json::Map::new();
    let mut failed = Vec::new();

    match db.ping().await {
        Ok(()) => {
            checks.insert("database".into(), json!({ "ok": true }));
        }
        Err(e) => {
            checks.insert(
                "database".into(),
                json!({ "ok": false, "error": e.to_string() }),
            );
            failed.push("database");
        }
    }

    if failed.is_empty() {
        match db::schema_state(db).await {
            Ok(state) if state.is_current() => {
                checks.insert(
                    "schema".into(),
                    json!({ "ok": true, "migration": state.latest_applied() }),
                );
            }
            Ok(state) => {
                checks.insert(
                    "schema".into(),
                    json!({ "ok": false, "error": state.stale_message() }),
                );
                failed.push("schema");
            }
            Err(e) => {
                checks.insert(
                    "schema".into(),
                    json!({ "ok": false, "error": e.to_string() }),
                );
                failed.push("schema");
            }
        }
    }

    // A replica that cannot hear deletions made elsewhere could serve a
    // deleted image until its cache expires; it is ready once it listens.
    if let Some(hears) = images.cache.hears_deletions(db) {
        if hears {
            checks.insert("notifications".into(), json!({ "ok": true }));
        } else {
            checks.insert(
                "notifications".into(),
                json!({ "ok": false, "error": "not yet subscribed to deletion notices" }),
            );
            failed.push("notifications");
        }
    }

    // A load balancer's probe must get an answer in time even when the
    // bucket hangs; retries inside the client stay within this bound.
    let writable = tokio::time::timeout(STORAGE_PROBE_TIMEOUT, images.storage.check_writable())
        .await
        .map_err(|_| format!("no answer within {} s", STORAGE_PROBE_TIMEOUT.as_secs()))
        .and_then(|r| r.map_err(|e| e.to_string()));
    let backend = images.storage.describe();
    match writable {
        Ok(()) => {
            checks.insert("storage".into(), json!({ "ok": true, "backend": backend }));
        }
        Err(e) => {
            checks.insert(
                "storage".into(),
                json!({ "ok": false, "backend": backend, "error": e }),
            );
            failed.push("storage");
        }
    }

    if failed.is_empty() {
        (
            Status::Ok,
            Json(json!({ "status": "ready", "checks": checks })),
        )
    } else {
        (
            Status::ServiceUnavailable,
            Json(json!({ "status": "unavailable", "failed": failed, "checks": checks })),
        )
    }
}
