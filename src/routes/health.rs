//! `/healthz` (the process is alive) and `/readyz` (it can do its job).

use std::sync::Arc;

use rocket::http::Status;
use rocket::serde::json::{Json, Value, json};
use rocket::{Route, State, get, routes};

use crate::service::health::Health;

pub fn routes() -> Vec<Route> {
    routes![healthz, readyz]
}

#[get("/healthz")]
fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when every check passes; 503 naming each failed check otherwise, so a
/// load balancer stops sending traffic. The body names checks only: what
/// failed and why (paths, endpoints, raw errors) goes to the log and to
/// `kitteh doctor`, not to whoever can reach this URL.
#[get("/readyz")]
async fn readyz(health: &State<Arc<Health>>) -> (Status, Json<Value>) {
    let checks = health.readiness().await;
    let failed: Vec<&str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
    let mut by_name = serde_json::Map::new();
    for check in &checks {
        by_name.insert(check.name.into(), json!({ "ok": check.ok }));
    }
    if failed.is_empty() {
        (
            Status::Ok,
            Json(json!({ "status": "ready", "checks": by_name })),
        )
    } else {
        (
            Status::ServiceUnavailable,
            Json(json!({ "status": "unavailable", "failed": failed, "checks": by_name })),
        )
    }
}
