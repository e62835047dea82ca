//! `kitteh storage`: probe the backend, or copy every object to the other.

use std::time::Instant;

use super::Failure;
use crate::app::{self, Services};
use crate::cli::{BackendArg, StorageAction};
use crate::config::{Config, StorageBackend};
use crate::service::transfer;

pub(super) async fn storage(config: Config, action: StorageAction) -> Result<(), Failure> {
    match action {
        StorageAction::Check => check(&config).await,
        StorageAction::Migrate { to, jobs } => migrate(config, to, usize::from(jobs)).await,
    }
}

/// Only storage is needed: no database is touched.
async fn check(config: &Config) -> Result<(), Failure> {
    let storage = app::open_storage(config)?;
    let started = Instant::now();
    storage
        .check_writable()
        .await
        .map_err(|e| Failure::runtime(format!("{} is not writable: {e}", storage.describe())))?;
    println!(
        "ok: {} is readable and writable ({} ms)",
        storage.describe(),
        started.elapsed().as_millis()
    );
    Ok(())
}

async fn migrate(config: Config, to: BackendArg, jobs: usize) -> Result<(), Failure> {
    let (from_backend, to_backend) = match to {
        BackendArg::S3 => (StorageBackend::Local, StorageBackend::S3),
        BackendArg::Local => (StorageBackend::S3, StorageBackend::Local),
    };
    // One side is always the bucket, whichever backend serving uses.
    let missing = config.storage.s3.missing();
    if !missing.is_empty() {
        return Err(Failure::config(format!(
            "storage.s3: {} must be set to copy to or from S3",
            missing.join(", ")
        )));
    }
    let from = app::open_backend(&config, from_backend)?;
    let to = app::open_backend(&config, to_backend)?;
    let serving = config.storage.backend;
    let services = Services::build(config).await?;
    let objects = transfer::inventory(services.db()).await?;
    eprintln!(
        "copying {} object(s) from {} to {}",
        objects.len(),
        from.describe(),
        to.describe()
    );
    let bar = super::progress_bar(objects.len() as u64, "objects");
    let summary = transfer::copy_all(&from, &to, objects, jobs, |outcome| {
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
    if serving != to_backend {
        eprintln!(
            "next: set storage.backend = \"{}\", restart, then run this command once more to copy uploads made in between",
            to_backend.name()
        );
    }
    Ok(())
}
