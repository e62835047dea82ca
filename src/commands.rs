//! What each subcommand does. Exit codes: 0 success, 1 runtime failure,
//! 2 bad configuration or usage.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;

use crate::cli::{
    BackendArg, Cli, Command, ConfigArgs, HealthcheckArgs, MigrateAction, StorageAction,
    VariantsAction, VersionArgs,
};
use crate::config::{self, Config, ConfigSource, Loaded};
use std::sync::Arc;

use tokio::sync::watch;

use crate::assets::Assets;
use crate::service::images::Images;
use crate::service::transfer;
use crate::service::variants::{Requeue, Variants};
use crate::storage::Storage;
use crate::{app, db, logging};

const EXIT_FAILURE: u8 = 1;
const EXIT_CONFIG: u8 = 2;

/// A command's failure: its message and exit status.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    fn runtime(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_FAILURE,
            message: message.into(),
        }
    }

    fn config(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_CONFIG,
            message: message.into(),
        }
    }
}

impl From<db::DbError> for Failure {
    fn from(e: db::DbError) -> Self {
        Self::runtime(e.to_string())
    }
}

impl From<sea_orm::DbErr> for Failure {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::runtime(format!("database error: {e}"))
    }
}

pub fn run(cli: Cli) -> ExitCode {
    // The healthcheck must exit 0 or 1 only (Docker reserves 2), and must work
    // when handed a URL even if the config is broken.
    if let Command::Healthcheck(args) = &cli.command {
        return match healthcheck(&cli, args) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(why) => {
                eprintln!("kitteh healthcheck: {why}");
                ExitCode::from(EXIT_FAILURE)
            }
        };
    }
    if let Command::Version(args) = &cli.command {
        version(args);
        return ExitCode::SUCCESS;
    }
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn load(cli: &Cli) -> Result<Loaded, Failure> {
    let source = ConfigSource::from_arg(cli.global.config.clone());
    config::load(&source, &cli.overrides()).map_err(|e| Failure::config(e.to_string()))
}

fn dispatch(cli: Cli) -> Result<(), Failure> {
    let loaded = load(&cli)?;
    if let Command::Config(args) = &cli.command {
        return show_config(&loaded, args);
    }
    let quiet = !matches!(cli.command, Command::Serve(_));
    logging::init(&loaded.config.log, quiet);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(_) => serve(loaded.config).await,
            Command::Migrate(args) => {
                let db = db::connect(&loaded.config.database).await?;
                migrate(&db, args.action.unwrap_or(MigrateAction::Up)).await
            }
            Command::Variants(args) => variants_command(loaded.config, args.action).await,
            Command::Storage(args) => storage_command(loaded.config, args.action).await,
            // Handled before the runtime starts.
            Command::Version(_) | Command::Config(_) | Command::Healthcheck(_) => Ok(()),
        }
    })
}

fn open_storage(config: &Config) -> Result<Storage, Failure> {
    Storage::open(&config.storage).map_err(|e| match config.storage.backend {
        config::StorageBackend::Local => Failure::runtime(format!(
            "cannot create the uploads folder {}: {e}",
            config.storage.uploads_dir.display()
        )),
        config::StorageBackend::S3 => Failure::config(format!("storage.s3: {e}")),
    })
}

async fn serve(config: Config) -> Result<(), Failure> {
    let db = db::connect(&config.database).await?;
    let state = db::schema_state(&db).await?;
    if !state.is_current() {
        if config.database.auto_migrate {
            tracing::info!(pending = state.pending.len(), "applying pending migrations");
            apply_pending(&db, &state.pending, |name| {
                tracing::info!(migration = name, "applied migration");
            })
            .await?;
        } else {
            return Err(Failure::runtime(state.stale_message()));
        }
    }
    let storage = open_storage(&config)?;
    tracing::info!(storage = %storage.describe(), "storage opened");
    let assets = if config.assets.dir.is_empty() {
        Assets::embedded()
    } else {
        Assets::from_dir(std::path::Path::new(&config.assets.dir)).map_err(|e| {
            Failure::runtime(format!("cannot read assets.dir {}: {e}", config.assets.dir))
        })?
    };
    let workers = config.variants.worker_count();
    let metrics_listen = config
        .metrics
        .enabled
        .then(|| config.metrics.listen.parse::<std::net::SocketAddr>().ok())
        .flatten();
    let rocket = app::build_rocket(config, db, storage, assets)
        .ignite()
        .await
        .map_err(|e| Failure::runtime(format!("cannot start the server: {e}")))?;
    if let Some(images) = rocket.state::<Arc<Images>>() {
        // Listing a large bucket takes a while; serving need not wait.
        let images = Arc::clone(images);
        tokio::spawn(async move {
            match images.sweep().await {
                Ok(n) => tracing::info!(removed = n, "storage sweep finished"),
                Err(e) => tracing::warn!("could not sweep storage: {e}"),
            }
        });
    }
    // Workers stop taking jobs as soon as shutdown begins; a job cut short
    // keeps its lease and is taken over once the lease runs out.
    let (stop, stopped) = watch::channel(false);
    if let Some(variants) = rocket.state::<Arc<Variants>>() {
        variants.cache.spawn_listener(&variants.db);
        variants.spawn_workers(workers, stopped);
        tracing::info!(workers, "variant workers started");
    }
    let metrics_server = match metrics_listen {
        Some(addr) => Some(
            app::build_metrics_rocket(&rocket, addr)
                .ignite()
                .await
                .map_err(|e| {
                    Failure::runtime(format!("cannot start the metrics listener on {addr}: {e}"))
                })?,
        ),
        None => None,
    };
    let metrics_shutdown = metrics_server.as_ref().map(|m| m.shutdown());
    if let Some(server) = metrics_server {
        tracing::info!(listen = %server.config().address, port = server.config().port, "metrics listener starting");
        tokio::spawn(async move {
            if let Err(e) = server.launch().await {
                tracing::error!("metrics listener failed: {e}");
            }
        });
    }
    let shutdown = rocket.shutdown();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutdown requested: no new connections, finishing requests in flight");
        let _ = stop.send(true);
        if let Some(metrics) = metrics_shutdown {
            metrics.notify();
        }
    });
    match rocket.launch().await {
        Ok(_) => {
            tracing::info!("kitteh stopped");
            Ok(())
        }
        Err(e) => Err(Failure::runtime(format!("server failed: {e}"))),
    }
}

async fn storage_command(config: Config, action: StorageAction) -> Result<(), Failure> {
    let (to, jobs) = match action {
        StorageAction::Check => {
            let storage = open_storage(&config)?;
            let started = Instant::now();
            storage.check_writable().await.map_err(|e| {
                Failure::runtime(format!("{} is not writable: {e}", storage.describe()))
            })?;
            println!(
                "ok: {} is readable and writable ({} ms)",
                storage.describe(),
                started.elapsed().as_millis()
            );
            return Ok(());
        }
        StorageAction::Migrate { to, jobs } => (to, jobs),
    };
    let (from_backend, to_backend) = match to {
        BackendArg::S3 => (config::StorageBackend::Local, config::StorageBackend::S3),
        BackendArg::Local => (config::StorageBackend::S3, config::StorageBackend::Local),
    };
    // One side is always the bucket, whichever backend serving uses.
    let missing = config.storage.s3.missing();
    if !missing.is_empty() {
        return Err(Failure::config(format!(
            "storage.s3: {} must be set to copy to or from S3",
            missing.join(", ")
        )));
    }
    let open = |backend| {
        Storage::open_backend(&config.storage, backend)
            .map_err(|e| Failure::config(format!("storage ({}): {e}", backend.name())))
    };
    let (from, to) = (open(from_backend)?, open(to_backend)?);
    let db = db::connect(&config.database).await?;
    let state = db::schema_state(&db).await?;
    if !state.is_current() {
        return Err(Failure::runtime(state.stale_message()));
    }
    let objects = transfer::inventory(&db)
        .await
        .map_err(|e| Failure::runtime(e.to_string()))?;
    eprintln!(
        "copying {} object(s) from {} to {}",
        objects.len(),
        from.describe(),
        to.describe()
    );
    let bar = indicatif::ProgressBar::new(objects.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} objects {elapsed_precise} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let summary = transfer::copy_all(&from, &to, objects, usize::from(jobs), |outcome| {
        if let transfer::Outcome::Failed(why) = outcome {
            bar.suspend(|| eprintln!("failed: {why}"));
        }
        bar.inc(1);
    })
    .await;
    bar.finish_and_clear();
    println!(
        "storage migrate: copied {}, skipped {} (already there, SHA-256 verified), failed {}",
        summary.copied, summary.skipped, summary.failed
    );
    if summary.failed > 0 {
        return Err(Failure::runtime(format!(
            "{} object(s) were not copied; fix the cause and run the command again (copied objects are skipped)",
            summary.failed
        )));
    }
    if config.storage.backend != to_backend {
        eprintln!(
            "next: set storage.backend = \"{}\", restart, then run this command once more to copy uploads made in between",
            to_backend.name()
        );
    }
    Ok(())
}

async fn variants_command(config: Config, action: VariantsAction) -> Result<(), Failure> {
    let db = db::connect(&config.database).await?;
    let state = db::schema_state(&db).await?;
    if !state.is_current() {
        return Err(Failure::runtime(state.stale_message()));
    }
    let storage = open_storage(&config)?;
    let limits = app::image_limits(&config);
    let variants = Arc::new(Variants::new(
        db.clone(),
        storage,
        config.variants.clone(),
        limits,
        Arc::new(crate::metrics::Metrics::default()),
        Arc::new(crate::service::cache::ImageCache::new(&config.cache)),
    ));
    let fail = |e: crate::error::Error| Failure::runtime(e.to_string());
    match action {
        VariantsAction::Status => {
            for (state, n) in variants.counts().await.map_err(fail)? {
                println!("{state:<8} {n}");
            }
        }
        VariantsAction::Rebuild {
            all,
            failed,
            token,
            now,
        } => {
            let queued = variants
                .requeue(match (all, failed, token.as_deref()) {
                    (true, _, _) => Requeue::All,
                    (_, true, _) => Requeue::Failed,
                    (_, _, Some(token)) => Requeue::Token(token),
                    _ => {
                        return Err(Failure::config(
                            "say what to rebuild: --all, --failed or a TOKEN",
                        ));
                    }
                })
                .await
                .map_err(fail)?;
            println!("queued {queued} job(s)");
            if now && queued > 0 {
                let bar = indicatif::ProgressBar::new(queued as u64);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{bar:40} {pos}/{len} jobs {elapsed_precise}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                while variants.work_once().await.map_err(fail)? {
                    bar.inc(1);
                }
                bar.finish();
                for (state, n) in variants.counts().await.map_err(fail)? {
                    println!("{state:<8} {n}");
                }
            }
        }
    }
    Ok(())
}

/// Applies migrations one at a time so each can be reported as it lands.
async fn apply_pending(
    db: &DatabaseConnection,
    pending: &[String],
    mut report: impl FnMut(&str),
) -> Result<(), Failure> {
    for name in pending {
        Migrator::up(db, Some(1)).await?;
        report(name);
    }
    Ok(())
}

async fn migrate(db: &DatabaseConnection, action: MigrateAction) -> Result<(), Failure> {
    match action {
        MigrateAction::Up => {
            let state = db::schema_state(db).await?;
            if state.is_current() {
                println!(
                    "nothing to do: the database is at {}",
                    state.latest_applied()
                );
                return Ok(());
            }
            apply_pending(db, &state.pending, |name| println!("applied {name}")).await?;
            println!("{} migration(s) applied", state.pending.len());
        }
        MigrateAction::Status => {
            let all = Migrator::get_migration_with_status_read_only(db).await?;
            for m in &all {
                let status = match m.status() {
                    migration::MigrationStatus::Applied => "applied",
                    migration::MigrationStatus::Pending => "pending",
                };
                println!("{status:<8} {}", m.name());
            }
        }
        MigrateAction::Down { steps } => {
            let state = db::schema_state(db).await?;
            if state.applied.is_empty() {
                println!("nothing to roll back: no migration is applied");
                return Ok(());
            }
            for name in state.applied.iter().rev().take(steps as usize) {
                Migrator::down(db, Some(1)).await?;
                println!("rolled back {name}");
            }
        }
        MigrateAction::Fresh { yes } => {
            if !yes {
                return Err(Failure::config(
                    "`migrate fresh` drops every table and deletes all data; \
                     run it again with --yes to confirm",
                ));
            }
            Migrator::fresh(db).await?;
            for name in db::schema_state(db).await?.applied {
                println!("applied {name}");
            }
        }
    }
    Ok(())
}

fn show_config(loaded: &Loaded, args: &ConfigArgs) -> Result<(), Failure> {
    if args.check {
        match &loaded.file {
            Some(file) => eprintln!("configuration is valid ({})", file.display()),
            None => eprintln!("configuration is valid (built-in defaults, no file)"),
        }
    } else {
        print!("{}", config::render_annotated(loaded));
    }
    Ok(())
}

/// Build facts stamped by build.rs.
pub struct BuildInfo {
    pub version: &'static str,
    pub commit: &'static str,
    pub target: &'static str,
    pub rustc: &'static str,
    pub profile: &'static str,
}

pub const BUILD: BuildInfo = BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    commit: env!("KITTEH_GIT_COMMIT"),
    target: env!("KITTEH_TARGET"),
    rustc: env!("KITTEH_RUSTC_VERSION"),
    profile: env!("KITTEH_PROFILE"),
};

fn version(args: &VersionArgs) {
    let newest = db::newest_migration();
    let (asset_count, asset_bytes) = Assets::embedded().summary();
    if args.json {
        let value = serde_json::json!({
            "name": "kitteh",
            "version": BUILD.version,
            "commit": BUILD.commit,
            "target": BUILD.target,
            "rustc": BUILD.rustc,
            "profile": BUILD.profile,
            "newest_migration": newest,
            "assets": { "count": asset_count, "bytes": asset_bytes },
        });
        println!("{value}");
        return;
    }
    println!("kitteh {}", BUILD.version);
    if args.verbose {
        println!("commit:           {}", BUILD.commit);
        println!("target:           {}", BUILD.target);
        println!("rustc:            {}", BUILD.rustc);
        println!("profile:          {}", BUILD.profile);
        println!("newest migration: {newest}");
        println!("embedded assets:  {asset_count} files, {asset_bytes} bytes");
    }
}

const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// A bare HTTP/1.1 GET: the image has no curl, and pulling an HTTP client
/// crate into the binary for one request is not worth its size.
fn healthcheck(cli: &Cli, args: &HealthcheckArgs) -> Result<String, String> {
    let target = match &args.url {
        Some(url) => url.clone(),
        None => load(cli).map_err(|f| f.message)?.config.readiness_url(),
    };
    let url = url::Url::parse(&target).map_err(|e| format!("invalid URL {target}: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "only http:// URLs are supported, got {target} (check the plain-HTTP port)"
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("URL {target} has no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let deadline = Instant::now() + HEALTHCHECK_TIMEOUT;
    let addr = (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, HEALTHCHECK_TIMEOUT)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let remaining = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream
        .set_read_timeout(Some(remaining))
        .and_then(|_| stream.set_write_timeout(Some(remaining)))
        .map_err(|e| format!("socket error: {e}"))?;
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kitteh-healthcheck\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send request to {addr}: {e}"))?;
    let mut response = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut response)
        .map_err(|e| format!("no answer from {target} within {HEALTHCHECK_TIMEOUT:?}: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{target} did not answer with HTTP"))?;
    if (200..300).contains(&status) {
        Ok(format!("ready: {target} answered {status}"))
    } else {
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
        let body: String = body.chars().take(300).collect();
        Err(format!("not ready: {target} answered {status} {body}"))
    }
}
