//! Assembling Kitteh: [`Services`] are built once from the configuration;
//! [`build_rocket`] mounts the routes over them (`serve` and the tests use
//! the same builder, so the tests run the real application); [`serve`]
//! owns the runtime around the server: schema check, sweep, workers, cache
//! listener, metrics listener and shutdown.

use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rocket::config::{Ident, LogLevel, Shutdown};
use rocket::data::Limits;
use rocket::shield::Shield;
use rocket::{Build, Rocket};
use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::watch;

use crate::assets::Assets;
use crate::config::{Config, StorageBackend};
use crate::db::{self, DbError, SqliteFile};
use crate::edge::{self, Edge};
use crate::imaging::Limits as ImageLimits;
use crate::metrics::Metrics;
use crate::routes;
use crate::service::budget::{DecodeBudget, Decoding};
use crate::service::cache::ImageCache;
use crate::service::health::Health;
use crate::service::images::Images;
use crate::service::installation::Installation;
use crate::service::moderation::Moderation;
use crate::service::removals::Removals;
use crate::service::sizes::Sizes;
use crate::service::uploads::Uploads;
use crate::service::{sweep, upkeep};
use crate::storage::Storage;

/// Why Kitteh could not be assembled or started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbError),
    /// Migrations are pending and nobody asked to apply them.
    #[error("{0}")]
    StaleSchema(String),
    #[error("applying migrations")]
    Migrate(#[source] DbErr),
    #[error("cannot create the uploads folder {path}")]
    UploadsDir {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
    /// The `[storage.s3]` settings do not describe a usable bucket.
    #[error("storage.s3")]
    S3Settings(#[source] io::Error),
    #[error("cannot read assets.dir {dir}")]
    Assets {
        dir: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the server")]
    Server(#[source] Box<rocket::Error>),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the metrics listener on {addr}")]
    MetricsListener {
        addr: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },
}

impl StartError {
    /// Whether the operator must fix the configuration (exit status 2)
    /// rather than something in the environment (exit status 1).
    pub fn is_config(&self) -> bool {
        matches!(self, Self::S3Settings(_))
    }
}

/// The limits every decode is held to, from `[uploads]` and `[limits]`.
pub fn image_limits(config: &Config) -> ImageLimits {
    ImageLimits {
        max_width: config.uploads.max_width,
        max_height: config.uploads.max_height,
        max_pixels: config.uploads.max_pixels,
        max_frames: config.limits.max_frames,
        max_animation_pixels: config.limits.max_animation_pixels,
        max_icc_bytes: config.limits.max_icc_bytes.as_u64(),
        max_jpeg_scans: config.limits.max_jpeg_scans,
    }
}

/// How decodes are bounded, with a fresh memory budget for this process.
pub fn decoding(config: &Config) -> Decoding {
    Decoding {
        limits: image_limits(config),
        budget: Arc::new(DecodeBudget::new(
            config.limits.decode_memory.as_u64(),
            Duration::from_secs(config.limits.decode_wait_seconds),
        )),
        timeout: Duration::from_secs_f64(config.limits.decode_seconds),
        upload_memory: Arc::new(DecodeBudget::new(
            config.limits.upload_memory.as_u64(),
            Duration::from_secs(config.limits.decode_wait_seconds),
        )),
    }
}

/// Opens the configured storage backend.
pub fn open_storage(config: &Config) -> Result<Storage, StartError> {
    open_backend(config, config.storage.backend)
}

/// Opens one backend with the settings in `config`, whichever is active.
pub fn open_backend(config: &Config, backend: StorageBackend) -> Result<Storage, StartError> {
    Storage::open_backend(&config.storage, backend).map_err(|source| match backend {
        StorageBackend::Local => StartError::UploadsDir {
            path: config.storage.uploads_dir.clone(),
            source,
        },
        StorageBackend::S3 => StartError::S3Settings(source),
    })
}

/// Everything Kitteh does, built once from the configuration and shared by
/// the server, its workers and the commands.
pub struct Services {
    config: Config,
    db: DatabaseConnection,
    storage: Storage,
    assets: Assets,
    metrics: Arc<Metrics>,
    cache: Arc<ImageCache>,
    sizes: Arc<Sizes>,
    images: Arc<Images>,
    health: Arc<Health>,
    installation: Arc<Installation>,
    moderation: Arc<Moderation>,
    removals: Arc<Removals>,
    uploads: Arc<Uploads>,
}

impl Services {
    /// Connects to the database, refuses a schema this build does not
    /// expect, and builds every service.
    pub async fn connect(config: Config) -> Result<Self, StartError> {
        let db = db::connect(&config.database).await?;
        let state = db::schema_state(&db).await.map_err(DbError::from)?;
        if !state.is_current() {
            return Err(StartError::StaleSchema(state.stale_message()));
        }
        Self::over(config, db)
    }

    /// Builds every service over an open database.
    pub fn over(config: Config, db: DatabaseConnection) -> Result<Self, StartError> {
        Self::over_with_hook(config, db, None)
    }

    /// As `over`, with uploads held at `hook`'s points: for tests that
    /// force a race rather than hope for one.
    pub fn over_with_hook(
        config: Config,
        db: DatabaseConnection,
        hook: Option<crate::service::images::Hook>,
    ) -> Result<Self, StartError> {
        let storage = open_storage(&config)?;
        let assets = if config.assets.dir.is_empty() {
            Assets::embedded()
        } else {
            Assets::from_dir(std::path::Path::new(&config.assets.dir)).map_err(|source| {
                StartError::Assets {
                    dir: config.assets.dir.clone(),
                    source,
                }
            })?
        };
        let decoding = decoding(&config);
        let metrics = Arc::new(Metrics::default());
        let cache = Arc::new(ImageCache::new(&config.cache));
        let db_file = SqliteFile::of(&config.database.url);
        let installation = Arc::new(Installation::new(db.clone(), storage.clone()));
        let sizes = Arc::new(Sizes::new(
            db.clone(),
            storage.clone(),
            config.variants.clone(),
            decoding.clone(),
            Arc::clone(&metrics),
            Arc::clone(&cache),
        ));
        let moderation = Arc::new(Moderation::new(db.clone(), &config));
        let mut images = Images::new(
            db.clone(),
            storage.clone(),
            decoding,
            Arc::clone(&sizes),
            Arc::clone(&cache),
            Arc::clone(&metrics),
        )
        .watch_db_file(db_file.clone())
        .with_rules(Arc::clone(&moderation) as Arc<dyn crate::service::images::UploadRules>);
        if let Some(hook) = hook {
            images = images.with_hook(hook);
        }
        let images = Arc::new(images);
        let health = Arc::new(Health::new(
            db.clone(),
            storage.clone(),
            Arc::clone(&cache),
            Arc::clone(&sizes),
            Arc::clone(&metrics),
            Arc::clone(&installation),
            db_file,
        ));
        let removals = Arc::new(Removals::new(Arc::clone(&images), Arc::clone(&moderation)));
        let uploads = Arc::new(Uploads::new(
            Arc::clone(&images),
            Arc::clone(&moderation),
            config.uploads.max_bytes.as_u64(),
        ));
        Ok(Self {
            config,
            db,
            storage,
            assets,
            metrics,
            cache,
            sizes,
            images,
            health,
            installation,
            moderation,
            removals,
            uploads,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// For commands that work on the data as a whole (`storage migrate`).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn sizes(&self) -> &Arc<Sizes> {
        &self.sizes
    }

    pub fn images(&self) -> &Arc<Images> {
        &self.images
    }

    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    pub fn installation(&self) -> &Arc<Installation> {
        &self.installation
    }

    pub fn moderation(&self) -> &Arc<Moderation> {
        &self.moderation
    }

    pub fn removals(&self) -> &Arc<Removals> {
        &self.removals
    }

    /// The rules the sweep (and `kitteh storage fsck --repair`) runs under.
    pub fn sweep_rules(&self) -> sweep::Rules {
        sweep::Rules {
            min_age: Duration::from_secs(self.config.storage.sweep_min_age_seconds),
            trash_for: Duration::from_secs(u64::from(self.config.storage.trash_days) * 86_400),
        }
    }
}

/// Rocket's own configuration, derived entirely from ours: operators never
/// need a Rocket.toml or `ROCKET_` variables, and those are not read. The
/// app listens on nothing: the edge owns the socket and dispatches into it.
pub fn rocket_config(config: &Config) -> rocket::Config {
    let body = config.server.body_limit;
    let limits = Limits::default()
        .limit("form", body)
        .limit("json", body)
        .limit("string", body)
        .limit("bytes", body);
    rocket::Config {
        limits,
        ident: Ident::try_new("kitteh").unwrap_or_default(),
        // The client's address is what the edge decided (trusted proxies
        // included); it sets it as the request's remote address.
        ip_header: None,
        shutdown: Shutdown {
            ctrlc: false,
            signals: HashSet::new(),
            ..Shutdown::default()
        },
        // The edge writes the one log line per request.
        log_level: LogLevel::Off,
        cli_colors: false,
        ..rocket::Config::release_default()
    }
}

/// The web application over `services`.
pub fn build_rocket(services: &Services) -> Rocket<Build> {
    let config = &services.config;
    let metrics_here = config.metrics.enabled && config.metrics.listen.is_empty();
    rocket::custom(rocket_config(config))
        .manage(config.clone())
        .manage(Arc::clone(&services.images))
        .manage(Arc::clone(&services.health))
        .manage(Arc::clone(&services.moderation))
        .manage(Arc::clone(&services.removals))
        .manage(Arc::clone(&services.uploads))
        .manage(services.assets.clone())
        // Rocket's default Shield would set its own X-Frame-Options; the
        // edge sets stricter ones on every page, so it gets no policies.
        .attach(Shield::new())
        .mount("/", routes::health::routes())
        .mount("/", routes::pages::routes())
        .mount("/", routes::access::routes())
        .mount("/", routes::report::routes())
        .mount("/", routes::admin::routes())
        .mount("/", routes::oembed::routes())
        .mount("/", routes::mine::routes())
        .mount("/", routes::integrations::page_routes())
        .mount("/api", routes::integrations::api_routes())
        .mount("/api", routes::api::routes())
        .mount(
            "/",
            if metrics_here {
                routes::metrics::routes()
            } else {
                Vec::new()
            },
        )
        .register("/", routes::error::page_catchers())
        .register("/api", routes::error::api_catchers())
}

/// Connects, checks the schema (applying pending migrations only when
/// `database.auto_migrate` says so), and runs the server with everything
/// around it until SIGTERM or SIGINT.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let db = db::connect(&config.database).await?;
    let state = db::schema_state(&db).await.map_err(DbError::from)?;
    if !state.is_current() {
        if !config.database.auto_migrate {
            return Err(StartError::StaleSchema(state.stale_message()));
        }
        tracing::info!(pending = state.pending.len(), "applying pending migrations");
        db::apply_pending(&db, &state.pending, |name| {
            tracing::info!(migration = name, "applied migration");
        })
        .await
        .map_err(StartError::Migrate)?;
    }
    let services = Services::over(config, db)?;
    tracing::info!(storage = %services.storage.describe(), "storage opened");
    // The public socket first: a port already taken fails at once.
    let server = &services.config.server;
    let public = std::net::SocketAddr::new(server.address, server.port);
    let listener = tokio::net::TcpListener::bind(public)
        .await
        .map_err(|source| StartError::Listen {
            addr: public,
            source,
        })?;
    let app = routes::exchange::RocketApp::new(build_rocket(&services))
        .await
        .map_err(|e| StartError::Server(Box::new(e)))?;
    let metrics_listener = bind_metrics(&services).await?;
    services.prepare().await;

    // Workers stop taking jobs as soon as shutdown begins and hand back
    // the job they hold; so does the sweep.
    let (stop, stopped) = watch::channel(false);
    let workers = services.spawn_background(stopped.clone());
    if let Some(listener) = metrics_listener {
        tokio::spawn(edge::metrics::serve(
            listener,
            Arc::clone(&services.health),
            stopped.clone(),
        ));
    }
    let edge = Arc::new(services.edge(Arc::new(app)));
    let (drain_tx, drain_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested: no new connections, finishing requests in flight");
        let _ = stop.send(true);
        let _ = drain_tx.send(true);
    });
    let grace = Duration::from_secs(u64::from(services.config.server.shutdown_grace));
    edge.run(
        listener,
        edge::Stopping {
            drain: drain_rx,
            grace,
        },
    )
    .await;
    // The workers wrote their handbacks when shutdown began; wait for the
    // last of them, briefly.
    let joined = futures_util::future::join_all(workers);
    if tokio::time::timeout(Duration::from_secs(5), joined)
        .await
        .is_err()
    {
        tracing::warn!("some resize workers did not stop in time");
    }
    tracing::info!("kitteh stopped");
    Ok(())
}

/// The private listener for `/metrics`, when `metrics.listen` names one.
async fn bind_metrics(services: &Services) -> Result<Option<tokio::net::TcpListener>, StartError> {
    let metrics = &services.config.metrics;
    let Some(addr) = metrics
        .enabled
        .then(|| metrics.listen.parse::<std::net::SocketAddr>().ok())
        .flatten()
    else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::MetricsListener { addr, source })?;
    tracing::info!(%addr, "metrics listener starting");
    Ok(Some(listener))
}

impl Services {
    /// What a server does before it takes requests: jobs a dead process
    /// left running are taken back, and the installation identity checked.
    async fn prepare(&self) {
        // On SQLite only this process uses the file, so a job still marked
        // running was left by one that is gone: take it back at once rather
        // than after its lease.
        if self.db.get_database_backend() == sea_orm::DbBackend::Sqlite {
            match crate::db::queue::expire_all_leases(&self.db).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(jobs = n, "resuming resize jobs left running"),
                Err(e) => tracing::warn!("could not resume resize jobs: {e}"),
            }
        }
        match self.installation.check().await {
            Ok(identity) if identity.agreed() => tracing::info!("{}", identity.describe()),
            Ok(identity) => tracing::error!("{}", identity.describe()),
            Err(e) => tracing::warn!("could not check the installation identity: {}", e.chain()),
        }
    }

    /// The sweep, the upkeep round, the cache listener and the resize
    /// workers, until `stopped`; returns the workers to wait for.
    fn spawn_background(&self, stopped: watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
        spawn_sweeps(self, stopped.clone());
        upkeep::spawn(
            Arc::clone(&self.images),
            self.db.clone(),
            self.config.privacy.ip_retention_days,
            Duration::from_secs(self.config.uploads.expiry_interval_seconds),
            stopped.clone(),
        );
        self.cache.spawn_listener(&self.db);
        let workers = self.config.variants.worker_count();
        let handles = self.sizes.spawn_workers(workers, stopped);
        tracing::info!(workers, "variant workers started");
        handles
    }

    /// The edge in front of `app`, with the guards from `[server]`.
    fn edge(&self, app: Arc<dyn crate::http::App>) -> Edge {
        let config = &self.config;
        let server = &config.server;
        let open_files = edge::conn::raise_open_file_limit();
        let (max_connections, per_client) = match server.max_connections {
            // Derived caps keep the per-client one well below the total.
            0 => {
                let total = edge::conn::auto_max_connections(open_files);
                let per_client =
                    edge::conn::effective_per_client(server.max_connections_per_client, total);
                (total, per_client)
            }
            n => (n, server.max_connections_per_client),
        };
        let guards = edge::Guards {
            header_timeout: Duration::from_secs(server.header_timeout_seconds),
            idle_timeout: Duration::from_secs(server.idle_timeout_seconds),
            max_connections,
            max_connections_per_client: per_client,
        };
        let answering = edge::answer::Answering {
            fast: edge::fast::FastPath {
                images: Arc::clone(&self.images),
                assets: self.assets.clone(),
            },
            app,
            policy: crate::http::host::HostPolicy::from_config(server),
            server: server.clone(),
            assets: self.assets.clone(),
            metrics: Arc::clone(&self.metrics),
            pace: edge::pace::Pace {
                idle: Duration::from_secs(config.limits.body_idle_seconds),
                min_rate: config.limits.body_min_rate.as_u64(),
            },
        };
        tracing::info!(
            listen = %format!("http://{}:{}", server.address, server.port),
            max_connections = guards.max_connections,
            max_connections_per_client = guards.max_connections_per_client,
            "kitteh is listening"
        );
        Edge::new(answering, guards, Arc::clone(&self.metrics))
    }
}
/// Resolves at SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!("cannot watch for SIGTERM ({e}); stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Sweeps storage at startup and then every `storage.sweep_interval_seconds`
/// (listing a large bucket takes a while; serving need not wait), until
/// shutdown.
fn spawn_sweeps(services: &Services, mut stop: watch::Receiver<bool>) {
    let (db, storage, installation) = (
        services.db.clone(),
        services.storage.clone(),
        Arc::clone(&services.installation),
    );
    let rules = services.sweep_rules();
    let every = Duration::from_secs(services.config.storage.sweep_interval_seconds);
    tokio::spawn(async move {
        loop {
            match sweep::sweep(&db, &storage, &installation, rules, false).await {
                Ok(report) => tracing::info!(
                    stored = report.stored,
                    orphans = report.orphan_count,
                    young = report.young_count,
                    removed = report.trashed,
                    emptied_from_trash = report.emptied,
                    refused = report.refused.is_some(),
                    "storage sweep finished"
                ),
                Err(e) => tracing::warn!("could not sweep storage: {}", e.chain()),
            }
            if every.is_zero() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => break,
            }
        }
    });
}
