//! Removing objects no row refers to: left by a crash between writing an
//! object and committing its row, or between deleting a row and its
//! objects, and leftovers of interrupted writes.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use sea_orm::{DatabaseConnection, EntityTrait, QuerySelect};

use crate::db::entities::{images, variants};
use crate::service::error::{Error, Result};
use crate::storage::Storage;

/// Every object name a row refers to: originals and finished sizes.
async fn claimed(db: &DatabaseConnection) -> Result<HashSet<String>> {
    let originals = images::Entity::find()
        .select_only()
        .column(images::Column::Path)
        .into_tuple::<String>()
        .all(db)
        .await?;
    let sizes = variants::Entity::find()
        .select_only()
        .column(variants::Column::Path)
        .into_tuple::<String>()
        .all(db)
        .await?;
    Ok(originals.into_iter().chain(sizes).collect())
}

/// Removes unclaimed objects older than `min_age` (younger ones may belong
/// to an upload or a resize about to commit). Returns how many went.
pub async fn sweep(db: &DatabaseConnection, storage: &Storage, min_age: Duration) -> Result<usize> {
    let known = claimed(db).await?;
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in storage.list().await.map_err(Error::StorageUnavailable)? {
        let age = entry
            .modified
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if age < min_age || known.contains(&entry.name) {
            continue;
        }
        match storage.delete(&entry.name).await {
            Ok(()) => removed += 1,
            Err(e) => tracing::warn!("could not sweep {}: {e}", entry.name),
        }
    }
    Ok(removed)
}
