//! Builds the Rocket instance from Kitteh's configuration. `serve` and the
//! tests use the same builder, so the tests run the real application.

use std::collections::HashSet;
use std::sync::Arc;

use rocket::config::{Ident, LogLevel, Shutdown, Sig};
use rocket::data::Limits;
use rocket::fairing::AdHoc;
use rocket::shield::Shield;
use rocket::{Build, Ignite, Rocket};
use sea_orm::DatabaseConnection;

use crate::assets::Assets;
use crate::config::Config;
use crate::imaging::Limits as ImageLimits;
use crate::logging::RequestLogger;
use crate::metrics::Metrics;
use crate::routes;
use crate::service::cache::ImageCache;
use crate::service::images::Images;
use crate::service::variants::Variants;
use crate::storage::Storage;

/// Rocket's own configuration, derived entirely from ours: operators never
/// need a Rocket.toml or `ROCKET_` variables, and those are not read.
pub fn rocket_config(config: &Config) -> rocket::Config {
    let body = config.server.body_limit;
    let limits = Limits::default()
        .limit("form", body)
        .limit("json", body)
        .limit("string", body)
        .limit("bytes", body);
    let mut signals = HashSet::new();
    signals.insert(Sig::Term);
    signals.insert(Sig::Int);
    rocket::Config {
        address: config.server.address,
        port: config.server.port,
        limits,
        ident: Ident::try_new("kitteh").unwrap_or_default(),
        shutdown: Shutdown {
            ctrlc: true,
            signals,
            grace: config.server.shutdown_grace,
            // After the grace period, connections get this long to close.
            mercy: 2,
            ..Shutdown::default()
        },
        // Our request logger replaces Rocket's launch banner and per-request lines.
        log_level: LogLevel::Off,
        cli_colors: false,
        ..rocket::Config::release_default()
    }
}

/// Headers every HTML page carries: no inline script or style can run, the
/// page cannot be framed, and full URLs do not leak to other sites.
const PAGE_CSP: &str = "default-src 'none'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

fn page_headers() -> AdHoc {
    AdHoc::on_response("page security headers", |_req, res| {
        Box::pin(async move {
            res.set_raw_header("X-Content-Type-Options", "nosniff");
            if res.content_type().is_some_and(|ct| ct.is_html()) {
                res.set_raw_header("Content-Security-Policy", PAGE_CSP);
                res.set_raw_header("X-Frame-Options", "DENY");
                res.set_raw_header("Referrer-Policy", "same-origin");
            }
        })
    })
}

/// A second, private listener that serves only `/metrics`, sharing the
/// main server's state.
pub fn build_metrics_rocket(main: &Rocket<Ignite>, addr: std::net::SocketAddr) -> Rocket<Build> {
    let config = rocket::Config {
        address: addr.ip(),
        port: addr.port(),
        log_level: LogLevel::Off,
        cli_colors: false,
        ..rocket::Config::release_default()
    };
    let mut metrics = rocket::custom(config).mount("/", routes::metrics::routes());
    if let Some(m) = main.state::<Arc<Metrics>>() {
        metrics = metrics.manage(Arc::clone(m));
    }
    if let Some(db) = main.state::<DatabaseConnection>() {
        metrics = metrics.manage(db.clone());
    }
    if let Some(v) = main.state::<Arc<Variants>>() {
        metrics = metrics.manage(Arc::clone(v));
    }
    metrics
}

pub fn image_limits(config: &Config) -> ImageLimits {
    ImageLimits {
        max_width: config.uploads.max_width,
        max_height: config.uploads.max_height,
        max_pixels: config.uploads.max_pixels,
    }
}

pub fn build_rocket(
    config: Config,
    db: DatabaseConnection,
    storage: Storage,
    assets: Assets,
) -> Rocket<Build> {
    let listen = format!("http://{}:{}", config.server.address, config.server.port);
    let limits = image_limits(&config);
    let metrics = Arc::new(Metrics::default());
    let variants = Arc::new(Variants::new(
        db.clone(),
        storage.clone(),
        config.variants.clone(),
        limits,
        Arc::clone(&metrics),
        Arc::new(ImageCache::new(&config.cache)),
    ));
    let serve_metrics = config.metrics.enabled && config.metrics.listen.is_empty();
    let images = Arc::new(Images::new(
        db.clone(),
        storage,
        limits,
        Arc::clone(&variants),
        std::time::Duration::from_secs(config.storage.sweep_min_age_seconds),
    ));
    rocket::custom(rocket_config(&config))
        .manage(config)
        .manage(db)
        .manage(images)
        .manage(variants)
        .manage(assets)
        .manage(Arc::clone(&metrics))
        // Rocket's default Shield would set its own X-Frame-Options; ours are
        // stricter and set above, so it gets no policies.
        .attach(Shield::new())
        .attach(RequestLogger { metrics })
        .attach(page_headers())
        .attach(AdHoc::on_liftoff("announce", move |rocket| {
            Box::pin(async move {
                let port = rocket.config().port;
                tracing::info!(%listen, port, "kitteh is listening");
            })
        }))
        .mount("/", routes::health::routes())
        .mount("/", routes::pages::routes())
        .mount("/", routes::images::routes())
        .mount("/", routes::api::routes())
        .mount("/", routes::assets::routes())
        .mount(
            "/",
            if serve_metrics {
                routes::metrics::routes()
            } else {
                Vec::new()
            },
        )
        .register("/", crate::error::catchers())
}
