//! Tidying storage: objects no row refers to (a crash between writing an
//! object and committing its row, or between deleting a row and its
//! objects) and leftovers of interrupted writes. Because a mistake here
//! loses images, every pass is held to rules that a wrong database, a lost
//! one or a restored backup cannot get past:
//!
//! - nothing is touched unless database and storage carry the same
//!   installation identity;
//! - nothing is touched when the database holds no image but storage
//!   holds objects;
//! - objects younger than `storage.sweep_min_age_seconds` are spared (an
//!   upload may be about to commit the row that claims them);
//! - one pass moves at most a small share of the stored objects;
//! - and what it moves goes to the trash, to be removed for good only
//!   after `storage.trash_days`.
//!
//! `kitteh storage fsck` reports the same inventory, and with `--repair`
//! applies the same rules, restores from the trash what rows still need,
//! and re-queues the sizes of images whose sizes are missing.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, SystemTime};

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};

use crate::db::entities::{images, variants};
use crate::db::queue;
use crate::service::error::{Error, Result};
use crate::service::installation::Installation;
use crate::storage::Storage;

/// The most one pass moves: this share of stored objects (but at least a
/// few, so a small installation can still be tidied).
const MAX_SHARE: f64 = 0.05;
const MIN_PER_PASS: usize = 20;

/// The settings a pass runs under.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub min_age: Duration,
    pub trash_for: Duration,
}

/// What a pass found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Objects in storage.
    pub stored: usize,
    /// Images in the database.
    pub rows: usize,
    /// Unclaimed objects old enough to go.
    pub orphans: Vec<String>,
    /// Unclaimed objects spared for their youth (an upload between its
    /// write and its commit looks like this).
    pub young: Vec<String>,
    /// Moved to the trash this pass.
    pub trashed: usize,
    /// Removed for good from the trash (older than `trash_days`).
    pub emptied: usize,
    /// Why nothing (or not everything) was moved, when that happened.
    pub refused: Option<String>,
}

/// Every object name a row refers to, and how many images there are.
async fn claimed(db: &DatabaseConnection) -> Result<(HashSet<String>, usize)> {
    let originals = images::Entity::find()
        .select_only()
        .column(images::Column::Path)
        .into_tuple::<String>()
        .all(db)
        .await?;
    let rows = originals.len();
    let sizes = variants::Entity::find()
        .select_only()
        .column(variants::Column::Path)
        .into_tuple::<String>()
        .all(db)
        .await?;
    Ok((originals.into_iter().chain(sizes).collect(), rows))
}

/// One pass: finds the orphans and, when every rule allows, moves them to
/// the trash; then empties what has waited there long enough. `dry_run`
/// only reports.
pub async fn sweep(
    db: &DatabaseConnection,
    storage: &Storage,
    installation: &Installation,
    rules: Rules,
    dry_run: bool,
) -> Result<Report> {
    let identity = installation.check().await?;
    let (known, rows) = claimed(db).await?;
    let now = SystemTime::now();
    let mut report = Report {
        rows,
        ..Report::default()
    };
    for entry in storage.list().await.map_err(Error::StorageUnavailable)? {
        report.stored += 1;
        if known.contains(&entry.name) {
            continue;
        }
        let age = entry
            .modified
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if age < rules.min_age {
            report.young.push(entry.name);
        } else {
            report.orphans.push(entry.name);
        }
    }
    report.orphans.sort();
    report.young.sort();

    if !identity.agreed() {
        report.refused = Some(identity.describe());
    } else if rows == 0 && report.stored > 0 {
        report.refused = Some(format!(
            "the database holds no image but storage holds {} object(s): \
             nothing is removed from storage that a database does not know",
            report.stored
        ));
    }
    if report.refused.is_some() {
        tracing::error!(
            stored = report.stored,
            rows = report.rows,
            orphans = report.orphans.len(),
            "storage sweep refused: {}",
            report.refused.as_deref().unwrap_or_default()
        );
        return Ok(report);
    }

    let cap = ((report.stored as f64 * MAX_SHARE) as usize).max(MIN_PER_PASS);
    if report.orphans.len() > cap {
        report.refused = Some(format!(
            "{} of {} stored objects have no row, more than the {} one pass may move; \
             moving {} now, the rest in later passes (check with `kitteh storage fsck`)",
            report.orphans.len(),
            report.stored,
            cap,
            cap
        ));
        tracing::warn!(
            "storage sweep limited: {}",
            report.refused.as_deref().unwrap_or_default()
        );
    }
    if !dry_run {
        for name in report.orphans.iter().take(cap) {
            match storage.trash(name).await {
                Ok(()) => report.trashed += 1,
                Err(e) => tracing::warn!("could not move {name} to the trash: {e}"),
            }
        }
        let cutoff = now
            .checked_sub(rules.trash_for)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        report.emptied = storage
            .empty_trash(cutoff)
            .await
            .map_err(Error::StorageUnavailable)?;
    }
    Ok(report)
}

/// Rows whose objects are missing from storage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Missing {
    /// Originals: the image cannot be served.
    pub originals: Vec<String>,
    /// Sizes: they can be made again.
    pub sizes: Vec<String>,
    /// Of those, the ones found in the trash.
    pub in_trash: BTreeSet<String>,
}

/// Objects the database refers to that storage does not have.
pub async fn missing(db: &DatabaseConnection, storage: &Storage) -> Result<Missing> {
    let stored: HashSet<String> = storage
        .list()
        .await
        .map_err(Error::StorageUnavailable)?
        .into_iter()
        .map(|e| e.name)
        .collect();
    let trashed: HashSet<String> = storage
        .list_trash()
        .await
        .map_err(Error::StorageUnavailable)?
        .into_iter()
        .map(|e| e.name)
        .collect();
    let originals: Vec<String> = images::Entity::find()
        .select_only()
        .column(images::Column::Path)
        .into_tuple::<String>()
        .all(db)
        .await?;
    let sizes: Vec<String> = variants::Entity::find()
        .select_only()
        .column(variants::Column::Path)
        .into_tuple::<String>()
        .all(db)
        .await?;
    let mut out = Missing::default();
    for (list, into) in [(originals, &mut out.originals), (sizes, &mut out.sizes)] {
        for name in list {
            if !stored.contains(&name) {
                if trashed.contains(&name) {
                    out.in_trash.insert(name.clone());
                }
                into.push(name);
            }
        }
    }
    out.originals.sort();
    out.sizes.sort();
    Ok(out)
}

/// Restores from the trash every missing object found there, and queues
/// the sizes of images whose sizes are still missing. Returns (restored,
/// re-queued images).
pub async fn repair_missing(
    db: &DatabaseConnection,
    storage: &Storage,
    missing: &Missing,
) -> Result<(usize, usize)> {
    let mut restored = 0;
    for name in &missing.in_trash {
        match storage.restore(name).await {
            Ok(()) => restored += 1,
            Err(e) => tracing::warn!("could not restore {name}: {e}"),
        }
    }
    let lost_sizes: Vec<&String> = missing
        .sizes
        .iter()
        .filter(|n| !missing.in_trash.contains(*n))
        .collect();
    let mut requeued = BTreeSet::new();
    for path in lost_sizes {
        let row = variants::Entity::find()
            .filter(variants::Column::Path.eq(path.as_str()))
            .one(db)
            .await?;
        if let Some(row) = row
            && requeued.insert(row.image_id)
        {
            queue::enqueue(db, row.image_id).await?;
        }
    }
    Ok((restored, requeued.len()))
}
