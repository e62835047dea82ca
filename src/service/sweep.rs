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
//! - one pass moves at most a small share of the objects rows claim;
//! - and what it moves goes to the trash, to be removed for good only
//!   after `storage.trash_days`.
//!
//! `kitteh storage fsck` reports the same inventory, and with `--repair`
//! applies the same rules, restores from the trash what rows still need,
//! and re-queues the sizes of images whose sizes are missing.
//!
//! Neither ever holds every name: storage is listed as a stream and
//! compared with the database a few hundred names at a time, by indexed
//! lookups; the rows are walked by id, a page at a time.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, SystemTime};

use chrono::Utc;
use futures_util::{StreamExt, TryStreamExt};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::db::entities::{images, reservations, variants};
use crate::db::queue;
use crate::service::error::{Error, Result};
use crate::service::installation::Installation;
use crate::storage::{Entry, Storage};

/// The most one pass moves: this share of the objects rows claim (but at
/// least a few, so a small installation can still be tidied).
const MAX_SHARE: f64 = 0.05;
const MIN_PER_PASS: usize = 20;

/// Names looked up in the database at a time.
const BATCH: usize = 500;

/// Names a report keeps to show (the counts are always whole).
pub const NAMES_KEPT: usize = 10_000;

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
    /// Unclaimed objects old enough to go: how many, and the first names.
    pub orphan_count: usize,
    pub orphans: Vec<String>,
    /// Unclaimed objects spared for their youth (an upload between its
    /// write and its commit looks like this).
    pub young_count: usize,
    pub young: Vec<String>,
    /// Moved to the trash this pass.
    pub trashed: usize,
    /// Removed for good from the trash (older than `trash_days`).
    pub emptied: usize,
    /// Why nothing (or not everything) was moved, when that happened.
    pub refused: Option<String>,
}

impl Report {
    fn orphan(&mut self, name: String) {
        self.orphan_count += 1;
        if self.orphans.len() < NAMES_KEPT {
            self.orphans.push(name);
        }
    }

    fn spare(&mut self, name: String) {
        self.young_count += 1;
        if self.young.len() < NAMES_KEPT {
            self.young.push(name);
        }
    }
}

/// How many images there are, and the objects their rows claim.
async fn counted(db: &DatabaseConnection) -> Result<(usize, usize)> {
    let tallies = crate::db::tallies(db).await?;
    let get = |name: &str| usize::try_from(tallies.get(name).copied().unwrap_or(0)).unwrap_or(0);
    Ok((get("images"), get("images") + get("sizes")))
}

/// The token an object is named after (`abc.jpg`, `abc-tiny.jpg` → `abc`).
fn token_of(name: &str) -> &str {
    name.split(['.', '-']).next().unwrap_or(name)
}

/// Of `names`, those a row claims, and those an upload has reserved within
/// `min_age` (its objects are being written).
async fn claimed(
    db: &DatabaseConnection,
    names: &[String],
    min_age: Duration,
) -> Result<HashSet<String>> {
    let mut claimed: HashSet<String> = images::Entity::find()
        .select_only()
        .column(images::Column::Path)
        .filter(images::Column::Path.is_in(names.iter().cloned()))
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    claimed.extend(
        variants::Entity::find()
            .select_only()
            .column(variants::Column::Path)
            .filter(variants::Column::Path.is_in(names.iter().cloned()))
            .into_tuple::<String>()
            .all(db)
            .await?,
    );
    let tokens: BTreeSet<&str> = names.iter().map(|n| token_of(n)).collect();
    let fresh = Utc::now() - chrono::Duration::from_std(min_age).unwrap_or_default();
    let reserved: HashSet<String> = reservations::Entity::find()
        .filter(reservations::Column::Token.is_in(tokens))
        .filter(reservations::Column::CreatedAt.gt(fresh))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.token)
        .collect();
    claimed.extend(
        names
            .iter()
            .filter(|n| reserved.contains(token_of(n)))
            .cloned(),
    );
    Ok(claimed)
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
    let (rows, objects) = counted(db).await?;
    let mut report = Report {
        rows,
        ..Report::default()
    };
    if !identity.agreed() {
        report.refused = Some(identity.describe());
    }
    let cap = ((objects as f64 * MAX_SHARE) as usize).max(MIN_PER_PASS);
    let moving = !dry_run && report.refused.is_none() && rows > 0;
    let mut listing = storage.list_stream().chunks(BATCH);
    while let Some(batch) = listing.next().await {
        let batch: Vec<Entry> = batch
            .into_iter()
            .collect::<std::io::Result<_>>()
            .map_err(Error::StorageUnavailable)?;
        report.stored += batch.len();
        let names: Vec<String> = batch.iter().map(|e| e.name.clone()).collect();
        let claimed = claimed(db, &names, rules.min_age).await?;
        let now = SystemTime::now();
        for entry in batch.into_iter().filter(|e| !claimed.contains(&e.name)) {
            let age = entry
                .modified
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if age < rules.min_age {
                report.spare(entry.name);
                continue;
            }
            if moving && report.trashed < cap {
                match storage.trash(&entry.name).await {
                    Ok(()) => report.trashed += 1,
                    Err(e) => tracing::warn!("could not move {} to the trash: {e}", entry.name),
                }
            }
            report.orphan(entry.name);
        }
    }
    report.orphans.sort();
    report.young.sort();
    judge(&mut report, rows, cap);
    if !dry_run {
        forget_stale_reservations(db, rules.min_age).await?;
    }
    if !dry_run && report.refused.is_none() {
        let cutoff = SystemTime::now()
            .checked_sub(rules.trash_for)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        report.emptied = storage
            .empty_trash(cutoff)
            .await
            .map_err(Error::StorageUnavailable)?;
    }
    Ok(report)
}

/// Says why a pass moved nothing, or not everything, and logs it.
fn judge(report: &mut Report, rows: usize, cap: usize) {
    if report.refused.is_none() && rows == 0 && report.stored > 0 {
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
            orphans = report.orphan_count,
            "storage sweep refused: {}",
            report.refused.as_deref().unwrap_or_default()
        );
    } else if report.orphan_count > cap {
        report.refused = Some(format!(
            "{} object(s) have no row, more than the {} one pass may move; \
             moving {} now, the rest in later passes (check with `kitteh storage fsck`)",
            report.orphan_count, cap, cap
        ));
        tracing::warn!(
            "storage sweep limited: {}",
            report.refused.as_deref().unwrap_or_default()
        );
    }
}

/// Reservations left by uploads that never recorded their row (a crash
/// between writing and recording): their objects are orphans by now.
async fn forget_stale_reservations(db: &DatabaseConnection, min_age: Duration) -> Result<()> {
    let stale = Utc::now() - chrono::Duration::from_std(min_age).unwrap_or_default();
    reservations::Entity::delete_many()
        .filter(reservations::Column::CreatedAt.lte(stale))
        .exec(db)
        .await?;
    Ok(())
}

/// An object a row refers to that storage does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Absent {
    pub name: String,
    /// An original (the image cannot be served) or a size (it can be made
    /// again).
    pub original: bool,
    /// Found in the trash, so it can be restored.
    pub in_trash: bool,
}

/// What walking the rows found, and with `repair` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowCheck {
    pub originals_missing: usize,
    pub sizes_missing: usize,
    /// Restored from the trash.
    pub restored: usize,
    /// Images whose lost sizes were queued to be made again.
    pub requeued: usize,
    /// Originals neither in storage nor in the trash.
    pub lost: usize,
}

/// Rows read at a time when they are walked.
const ROWS_PER_PAGE: u64 = 1000;

/// Walks the rows by id a page at a time and looks for each page's objects
/// in storage, telling `on_absent` of every one that is missing; with
/// `repair`, restores from the trash what is there and queues again the
/// sizes of images whose sizes are lost. Memory holds a page and the
/// trash's names, whatever the number of pictures or of missing objects.
pub async fn check_rows(
    db: &DatabaseConnection,
    storage: &Storage,
    repair: bool,
    mut on_absent: impl FnMut(&Absent),
) -> Result<RowCheck> {
    let trashed: HashSet<String> = storage
        .list_trash()
        .await
        .map_err(Error::StorageUnavailable)?
        .into_iter()
        .map(|e| e.name)
        .collect();
    let mut check = RowCheck::default();
    let mut after = 0i64;
    loop {
        let page: Vec<(i64, String)> = images::Entity::find()
            .select_only()
            .column(images::Column::Id)
            .column(images::Column::Path)
            .filter(images::Column::Id.gt(after))
            .order_by_asc(images::Column::Id)
            .limit(ROWS_PER_PAGE)
            .into_tuple()
            .all(db)
            .await?;
        let Some(last) = page.last().map(|(id, _)| *id) else {
            return Ok(check);
        };
        let ids: Vec<i64> = page.iter().map(|(id, _)| *id).collect();
        let sizes: Vec<(i64, String)> = variants::Entity::find()
            .select_only()
            .column(variants::Column::ImageId)
            .column(variants::Column::Path)
            .filter(variants::Column::ImageId.is_in(ids))
            .into_tuple()
            .all(db)
            .await?;
        let mut lost_sizes = BTreeSet::new();
        for (list, original) in [(page, true), (sizes, false)] {
            let names: Vec<String> = list.iter().map(|(_, n)| n.clone()).collect();
            for name in absent(storage, names).await? {
                let absent = Absent {
                    in_trash: trashed.contains(&name),
                    name,
                    original,
                };
                on_absent(&absent);
                if original {
                    check.originals_missing += 1;
                } else {
                    check.sizes_missing += 1;
                }
                if !repair {
                    continue;
                }
                if absent.in_trash {
                    match storage.restore(&absent.name).await {
                        Ok(()) => check.restored += 1,
                        Err(e) => tracing::warn!("could not restore {}: {e}", absent.name),
                    }
                } else if original {
                    check.lost += 1;
                } else if let Some((id, _)) = list.iter().find(|(_, n)| *n == absent.name) {
                    lost_sizes.insert(*id);
                }
            }
        }
        for id in &lost_sizes {
            queue::enqueue(db, *id).await?;
        }
        check.requeued += lost_sizes.len();
        after = last;
    }
}

/// Of `names`, those storage does not have, looked for a few at once.
async fn absent(storage: &Storage, names: Vec<String>) -> Result<Vec<String>> {
    futures_util::stream::iter(names)
        .map(|name| async move {
            match storage.head(&name).await {
                Ok(Some(_)) => Ok(None),
                Ok(None) => Ok(Some(name)),
                Err(e) => Err(Error::StorageUnavailable(e)),
            }
        })
        .buffer_unordered(16)
        .try_filter_map(|found| async move { Ok(found) })
        .try_collect()
        .await
}
