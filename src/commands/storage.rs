//! `kitteh storage`: probe the backend, or copy every object to the other.

use std::time::Instant;

use super::Failure;
use crate::app::{self, Services};
use crate::cli::{BackendArg, StorageAction};
use crate::config::{Config, StorageBackend};
use crate::service::{sweep, transfer};

pub(super) async fn storage(config: Config, action: StorageAction) -> Result<(), Failure> {
    match action {
        StorageAction::Check => check(&config).await,
        StorageAction::Migrate { to, jobs } => migrate(config, to, usize::from(jobs)).await,
        StorageAction::Fsck { repair, adopt } => fsck(config, repair, adopt).await,
    }
}

/// Storage against the database, and, with `--repair`, put right under the
/// sweep's rules.
async fn fsck(config: Config, repair: bool, adopt: bool) -> Result<(), Failure> {
    let services = Services::connect(config).await?;
    let (db, storage) = (services.db(), services.storage());
    let identity = if adopt {
        services.installation().adopt().await?
    } else {
        services.installation().check().await?
    };
    outln!("{}", identity.describe());
    // Rows whose objects are missing, printed as they are found.
    let rows = sweep::check_rows(db, storage, repair, |absent| {
        let kind = if absent.original { "original" } else { "size" };
        let hint = if absent.in_trash {
            " (in the trash)"
        } else {
            ""
        };
        outln!("missing {kind}: {}{hint}", absent.name);
        if repair && absent.original && !absent.in_trash {
            outln!(
                "cannot repair: {} is gone (restore it from a backup)",
                absent.name
            );
        }
    })
    .await?;
    let report = sweep::sweep(
        db,
        storage,
        services.installation(),
        services.sweep_rules(),
        !repair,
    )
    .await?;
    outln!(
        "{} image(s) in the database, {} object(s) in {}",
        report.rows,
        report.stored,
        storage.describe(),
    );
    print_orphans(&report);
    let problems = rows.originals_missing + rows.sizes_missing + report.orphan_count;
    if !repair {
        outln!(
            "{} problem(s){}",
            problems,
            if problems > 0 {
                "; run again with --repair to put right what can be"
            } else {
                ""
            }
        );
        return if problems == 0 && identity.agreed() {
            Ok(())
        } else {
            Err(Failure::runtime("storage and database disagree"))
        };
    }
    outln!(
        "repaired: restored {} object(s) from the trash, re-queued the sizes of {} image(s), moved {} orphan(s) to the trash",
        rows.restored,
        rows.requeued,
        report.trashed
    );
    let lost = rows.lost;
    if lost > 0 || report.refused.is_some() || !identity.agreed() {
        return Err(Failure::runtime("some problems remain"));
    }
    Ok(())
}

/// The objects without a row the sweep found, and why it held back.
fn print_orphans(report: &sweep::Report) {
    for name in &report.orphans {
        outln!("no row: {name}");
    }
    if report.orphan_count > report.orphans.len() {
        outln!(
            "no row: … and {} more",
            report.orphan_count - report.orphans.len()
        );
    }
    for name in &report.young {
        outln!(
            "no row: {name} (younger than storage.sweep_min_age_seconds: perhaps an upload in progress; left alone)"
        );
    }
    if let Some(why) = &report.refused {
        outln!("the sweep would not remove everything: {why}");
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
    outln!(
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
    let services = Services::connect(config).await?;
    let tallies = crate::db::tallies(services.db()).await?;
    let total = ["images", "sizes"]
        .iter()
        .map(|t| u64::try_from(tallies.get(*t).copied().unwrap_or(0)).unwrap_or(0))
        .sum::<u64>();
    eprintln!(
        "copying about {total} object(s) from {} to {}",
        from.describe(),
        to.describe()
    );
    let bar = super::progress_bar(total, "objects");
    let mut summary = transfer::Summary::default();
    let mut after = Some(0);
    while let Some(start) = after {
        let (objects, next) = transfer::inventory_page(services.db(), start).await?;
        let page = transfer::copy_all(&from, &to, objects, jobs, |outcome| {
            if let transfer::Outcome::Failed(why) = outcome {
                bar.suspend(|| eprintln!("failed: {why}"));
            }
            bar.inc(1);
        })
        .await;
        summary.copied += page.copied;
        summary.skipped += page.skipped;
        summary.failed += page.failed;
        after = next;
    }
    bar.finish_and_clear();
    outln!(
        "storage migrate: copied {}, skipped {} (already there, SHA-256 verified), failed {}",
        summary.copied,
        summary.skipped,
        summary.failed
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
