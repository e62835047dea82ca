//! Deleting images: by their owners (with the delete token), by operators,
//! and when their time is up; and the listings operators work from. Rows
//! go first, objects after: a crash in between leaves orphan objects
//! (swept later), never a row without its object. The row's deletion is
//! also the claim: of several replicas removing the same image, only the
//! one whose delete found the row goes on.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::Images;
use crate::db::begin_write;
use crate::db::entities::{images, reports, tombstones, variants};
use crate::service::error::{Error, Result};
use crate::service::model::ImageInfo;
use crate::service::sizes::names_sharing;

/// Why a name is gone, as its tombstone says.
pub const TOMBSTONE_EXPIRED: &str = "expired";
pub const TOMBSTONE_BLOCKED: &str = "blocked";

/// How many images one write transaction removes at most: on SQLite the
/// write lock is held for a few milliseconds at a time, and uploads take
/// their turn in between.
const REMOVE_PER_TRANSACTION: usize = 25;

/// How many due images one look for them reads.
const EXPIRE_PER_LOOK: u64 = 100;

/// Why images are being removed, as the log and the tombstone say.
#[derive(Debug, Clone, Copy)]
struct Removal<'a> {
    tombstone: Option<&'a str>,
    /// Only if still due at this moment (the expiry's guard).
    due_by: Option<DateTime<Utc>>,
}

/// A row this process deleted, and whether its objects went with it.
struct Deleted {
    image: ImageInfo,
    sizes: Vec<String>,
    names_left: u64,
}

impl Images {
    /// Deletes an image when `delete_token` matches, and returns what was
    /// deleted.
    pub async fn delete(&self, token: &str, delete_token: Option<&str>) -> Result<ImageInfo> {
        let image = self
            .check_delete_token(token, delete_token.unwrap_or_default())
            .await?;
        self.remove_image(image, None).await
    }

    /// Deletes an image by name, without its delete token: for operators.
    /// `tombstone` (`expired`, `blocked`) makes later requests for the
    /// name say why it is gone. Returns what was deleted.
    pub async fn remove(&self, token: &str, tombstone: Option<&str>) -> Result<ImageInfo> {
        let image = self.get(token).await?;
        self.remove_image(image, tombstone).await
    }

    async fn remove_image(&self, image: ImageInfo, tombstone: Option<&str>) -> Result<ImageInfo> {
        let removal = Removal {
            tombstone,
            due_by: None,
        };
        self.remove_all(vec![image], removal)
            .await?
            .pop()
            .ok_or_else(|| Error::NotFound(String::new()))
    }

    /// Deletes up to `batch` images whose time is up; returns how many
    /// this process deleted. Every replica may run this at once: each
    /// image is deleted by exactly one of them.
    pub async fn expire_due(&self, batch: u64) -> Result<usize> {
        self.expire_due_then(batch, || async {}).await
    }

    /// As `expire_due`, running `after_look` between reading the due
    /// images and deleting them: the tests put a barrier there, so that
    /// two replicas' passes are sure to overlap.
    pub async fn expire_due_then<F, Fut>(&self, batch: u64, after_look: F) -> Result<usize>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut removed = 0;
        let mut looked = 0;
        while looked < batch {
            let now = Utc::now();
            let due: Vec<ImageInfo> = images::Entity::find()
                .filter(images::Column::ExpiresAt.lte(now))
                .order_by_asc(images::Column::ExpiresAt)
                .limit(EXPIRE_PER_LOOK.min(batch - looked))
                .all(&self.db)
                .await?
                .into_iter()
                .map(ImageInfo::from)
                .collect();
            if due.is_empty() {
                break;
            }
            looked += due.len() as u64;
            after_look().await;
            let removal = Removal {
                tombstone: Some(TOMBSTONE_EXPIRED),
                due_by: Some(now),
            };
            let gone = self.remove_all(due, removal).await?;
            // Another replica took every one of them: it is ahead, so leave
            // the rest to it rather than race it through the same rows.
            if gone.is_empty() {
                break;
            }
            removed += gone.len();
        }
        Ok(removed)
    }

    /// Removes `doomed`, a few rows per write transaction, and then the
    /// objects no name is left for. Returns what this process removed.
    async fn remove_all(
        &self,
        doomed: Vec<ImageInfo>,
        removal: Removal<'_>,
    ) -> Result<Vec<ImageInfo>> {
        let mut out = Vec::with_capacity(doomed.len());
        for chunk in doomed.chunks(REMOVE_PER_TRANSACTION) {
            let sizes = self.recorded_sizes(chunk).await?;
            let txn = begin_write(&self.db).await?;
            let mut deleted = Vec::new();
            for (image, sizes) in chunk.iter().zip(sizes) {
                if let Some(names_left) = delete_row(&txn, image, removal).await? {
                    deleted.push(Deleted {
                        image: image.clone(),
                        sizes,
                        names_left,
                    });
                }
            }
            txn.commit().await?;
            for d in deleted {
                self.remove_objects(&d, removal).await;
                out.push(d.image);
            }
        }
        Ok(out)
    }

    /// The size objects the rows of `chunk` record, image by image.
    async fn recorded_sizes(&self, chunk: &[ImageInfo]) -> Result<Vec<Vec<String>>> {
        let ids: Vec<i64> = chunk.iter().map(|i| i.id).collect();
        let rows = variants::Entity::find()
            .filter(variants::Column::ImageId.is_in(ids))
            .all(&self.db)
            .await?;
        Ok(chunk
            .iter()
            .map(|image| {
                rows.iter()
                    .filter(|v| v.image_id == image.id)
                    .map(|v| v.path.clone())
                    .collect()
            })
            .collect())
    }

    /// The objects of a deleted row, unless other names still show them;
    /// then the deletion is announced (here at once, elsewhere by
    /// notification: deletion wins over caching).
    async fn remove_objects(&self, deleted: &Deleted, removal: Removal<'_>) {
        let image = &deleted.image;
        let reason = removal.tombstone.unwrap_or("deleted");
        if deleted.names_left > 0 {
            self.cache.announce(&self.db, &image.token).await;
            tracing::info!(token = %image.token, reason, names_left = deleted.names_left, "image deleted (its bytes stay for the other names)");
            return;
        }
        // Size files are named from the original, so the configured names
        // catch one a worker finished after the rows were read; the rows
        // catch sizes since removed from the configuration.
        let mut paths: Vec<String> = self.sizes.file_names(&image.object.path);
        paths.push(image.object.path.clone());
        paths.extend(deleted.sizes.iter().cloned());
        paths.sort();
        paths.dedup();
        for path in &paths {
            if let Err(e) = self.storage.delete(path).await {
                tracing::warn!(token = %image.token, "row deleted but {path} remains (swept later): {e}");
            }
        }
        self.cache.announce(&self.db, &image.token).await;
        tracing::info!(token = %image.token, reason, "image deleted");
    }
}

/// Deletes one image's row (its sizes and job go with it, ON DELETE
/// CASCADE), with its tombstone and its reports resolved when it has one
/// to leave; returns how many names still show its bytes, or None when the
/// row was gone already (or, for expiry, is no longer due).
async fn delete_row(
    txn: &DatabaseTransaction,
    image: &ImageInfo,
    removal: Removal<'_>,
) -> Result<Option<u64>> {
    let mut delete = images::Entity::delete_many().filter(images::Column::Id.eq(image.id));
    if let Some(now) = removal.due_by {
        delete = delete.filter(images::Column::ExpiresAt.lte(now));
    }
    if delete.exec(txn).await?.rows_affected == 0 {
        return Ok(None);
    }
    if let Some(reason) = removal.tombstone {
        // Reports about a picture that is gone need nobody any more.
        reports::Entity::update_many()
            .col_expr(reports::Column::ResolvedAt, Expr::value(Utc::now()))
            .col_expr(reports::Column::Resolution, Expr::value(reason))
            .filter(reports::Column::Token.eq(image.token.as_str()))
            .filter(reports::Column::ResolvedAt.is_null())
            .exec(txn)
            .await?;
        tombstones::Entity::delete_by_id(image.token.clone())
            .exec(txn)
            .await?;
        tombstones::ActiveModel {
            token: Set(image.token.clone()),
            reason: Set(reason.to_string()),
            gone_at: Set(Utc::now()),
        }
        .insert(txn)
        .await?;
    }
    // Bytes stored once for several names stay while any name does.
    Ok(Some(names_sharing(txn, &image.object.path).await?))
}
