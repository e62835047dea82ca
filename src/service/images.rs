//! Uploading, finding and deleting images: plain async functions over the
//! database, the storage folder and the imaging pipeline. No HTTP here.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QuerySelect, Set, SqlErr, TransactionTrait,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::db::entities::{images, variants};
use crate::error::{Error, Result};
use crate::imaging::{self, Limits, Processed};
use crate::names::{DEFAULT_TYPE, NameGenerator};
use crate::service::cache::{ImageCache, Resolved};
use crate::service::variants::Variants;
use crate::storage::Storage;

/// Longest client file name kept for display, in characters.
const MAX_ORIGINAL_NAME: usize = 255;

/// Name collisions are astronomically rare with 4.6 × 10^10 names, but a
/// unique index makes them possible to detect; this bounds the retries.
const NAME_ATTEMPTS: usize = 16;

/// Everything the image operations need, shared by all requests.
pub struct Images {
    pub db: DatabaseConnection,
    pub storage: Storage,
    pub limits: Limits,
    pub variants: Arc<Variants>,
    pub cache: Arc<ImageCache>,
    names: NameGenerator,
    /// Bounds how many images are decoded at once, and so peak memory.
    decoders: Semaphore,
    /// Objects younger than this are never swept: an upload or a resize may
    /// be about to commit the row that claims them.
    sweep_min_age: Duration,
}

/// The outcome of an accepted upload. The delete token exists only here:
/// the database keeps its hash.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub image: images::Model,
    pub delete_token: String,
}

impl Images {
    pub fn new(
        db: DatabaseConnection,
        storage: Storage,
        limits: Limits,
        variants: Arc<Variants>,
        sweep_min_age: Duration,
    ) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let cache = Arc::clone(&variants.cache);
        Self {
            db,
            storage,
            limits,
            variants,
            cache,
            names: NameGenerator::default(),
            decoders: Semaphore::new(cpus),
            sweep_min_age,
        }
    }

    /// Validates, cleans and stores an upload, then records it.
    ///
    /// The rows are inserted first, inside a transaction that stays open
    /// while the bytes are written and commits only once they are stored.
    /// The unique index on the token thus reserves the object's name before
    /// anything is written (a colliding upload waits or fails there, and
    /// never overwrites), readers never see a row before its object exists,
    /// and a failed write rolls the rows back. A crash between the write and
    /// the commit leaves an object without a row, which the sweep removes.
    /// The same holds on both backends, so no backend needs a conditional
    /// write.
    pub async fn upload(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        original_name: Option<&str>,
    ) -> Result<Uploaded> {
        let processed = self.process(bytes).await?;
        let original_name = clean_original_name(original_name);
        let delete_token = hex::encode(rand::random::<[u8; 24]>());
        let delete_token_hash = hash_token(&delete_token);
        let body = bytes::Bytes::from(processed.bytes);
        let content_type = processed.format.mime();

        for _ in 0..NAME_ATTEMPTS {
            let name = self.names.generate(&mut rand::rng());
            let file_name = format!("{}.{}", name.token, processed.format.extension());
            let now = Utc::now();
            let row = images::ActiveModel {
                original_name: Set(original_name.clone()),
                token: Set(name.token.clone()),
                generated_name: Set(name.generated.clone()),
                kind: Set(DEFAULT_TYPE.to_string()),
                content_type: Set(content_type.to_string()),
                path: Set(file_name.clone()),
                size: Set(body.len() as i64),
                inserted_at: Set(now),
                updated_at: Set(now),
                width: Set(processed.width as i32),
                height: Set(processed.height as i32),
                sha256: Set(processed.sha256.clone()),
                delete_token_hash: Set(delete_token_hash.clone()),
                ..Default::default()
            };
            let txn = self.db.begin().await?;
            // The image and its resize job are one unit: either both rows
            // exist or neither does.
            let reserved = async {
                let image = row.insert(&txn).await?;
                Variants::enqueue(&txn, image.id)
                    .await
                    .map_err(|e| DbErr::Custom(e.to_string()))?;
                Ok::<_, DbErr>(image)
            }
            .await;
            let image = match reserved {
                Ok(image) => image,
                Err(e) => {
                    let _ = txn.rollback().await;
                    if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
                        continue;
                    }
                    return Err(e.into());
                }
            };
            if let Err(e) = self
                .storage
                .put(&file_name, body.clone(), content_type)
                .await
            {
                let _ = txn.rollback().await;
                // A write that failed half-way may still have landed.
                let _ = self.storage.delete(&file_name).await;
                return Err(Error::StorageUnavailable(e.to_string()));
            }
            if let Err(e) = txn.commit().await {
                // The object must not outlive a row that was never written.
                let _ = self.storage.delete(&file_name).await;
                return Err(e.into());
            }
            tracing::info!(token = %image.token, bytes = image.size, content_type = %image.content_type, "upload stored");
            self.variants.wake.notify_one();
            return Ok(Uploaded {
                image,
                delete_token,
            });
        }
        Err(Error::internal(format!(
            "no free name after {NAME_ATTEMPTS} attempts"
        )))
    }

    /// Runs the imaging pipeline on a blocking thread, at most one per core.
    /// A panic inside a decoder is caught here and refused as a bad image.
    async fn process(&self, bytes: Vec<u8>) -> Result<Processed> {
        let _permit = self.decoders.acquire().await.map_err(Error::internal)?;
        let limits = self.limits;
        match tokio::task::spawn_blocking(move || imaging::process(&bytes, &limits)).await {
            Ok(result) => Ok(result?),
            Err(e) if e.is_panic() => {
                tracing::error!("image decoder panicked: {e}");
                Err(imaging::ImagingError::Corrupt("the image could not be decoded".into()).into())
            }
            Err(e) => Err(Error::internal(e)),
        }
    }

    pub async fn find(&self, token: &str) -> Result<Option<images::Model>> {
        Ok(images::Entity::find()
            .filter(images::Column::Token.eq(token.to_ascii_lowercase()))
            .one(&self.db)
            .await?)
    }

    /// Finds an image by token, or by a size name followed by a token
    /// (`tinysublimedandelionbengal`), as the original app's variant URLs
    /// were written. An exact token always wins over a size prefix.
    pub async fn resolve(&self, token: &str) -> Result<Option<(images::Model, Option<String>)>> {
        let token = token.to_ascii_lowercase();
        if let Some(image) = self.find(&token).await? {
            return Ok(Some((image, None)));
        }
        for size in &self.variants.config.sizes {
            if let Some(rest) = token.strip_prefix(size.name.as_str())
                && !rest.is_empty()
                && let Some(image) = self.find(rest).await?
            {
                return Ok(Some((image, Some(size.name.clone()))));
            }
        }
        Ok(None)
    }

    /// What a requested name or token (perhaps with a size prefix) refers
    /// to, from the cache when it can: the hot path of every image and page
    /// request. Returns the size named by a prefix too.
    pub async fn lookup(&self, requested: &str) -> Result<Option<(Arc<Resolved>, Option<String>)>> {
        let requested = requested.to_ascii_lowercase();
        if let Some(hit) = self.cache.resolved(&requested) {
            return Ok(Some((hit, None)));
        }
        for size in &self.variants.config.sizes {
            if let Some(rest) = requested.strip_prefix(size.name.as_str())
                && let Some(hit) = self.cache.resolved(rest)
            {
                return Ok(Some((hit, Some(size.name.clone()))));
            }
        }
        let Some((image, size)) = self.resolve(&requested).await? else {
            return Ok(None);
        };
        let sizes = self.sizes(&image).await?;
        let resolved = Arc::new(Resolved { image, sizes });
        self.cache.remember(Arc::clone(&resolved));
        Ok(Some((resolved, size)))
    }

    /// A stored file's bytes, from memory when hot. `sha256` is the cache
    /// key, so replaced content is never served from a stale entry.
    pub async fn bytes(self: &Arc<Self>, path: &str, sha256: &str) -> Result<Arc<[u8]>> {
        if let Some(hit) = self.cache.bytes(sha256) {
            return Ok(hit);
        }
        let bytes: Arc<[u8]> = Arc::from(self.read(path).await?.as_ref());
        self.cache.keep_bytes(sha256, Arc::clone(&bytes));
        Ok(bytes)
    }

    /// Each configured size of an image: finished, or the state of its job.
    pub async fn sizes(&self, image: &images::Model) -> Result<Vec<SizeStatus>> {
        let (job, done) = self.variants.of_image(image.id).await?;
        let (w, h) = (image.width.max(1) as u32, image.height.max(1) as u32);
        Ok(self
            .variants
            .config
            .sizes
            .iter()
            .map(|size| match done.iter().find(|v| v.name == size.name) {
                Some(v) => SizeStatus {
                    name: size.name.clone(),
                    width: v.width as u32,
                    height: v.height as u32,
                    state: "ready".into(),
                    error: None,
                    variant: Some(v.clone()),
                },
                None => {
                    let (tw, th) = crate::imaging::variants::target_size(w, h, size.width);
                    SizeStatus {
                        name: size.name.clone(),
                        width: tw,
                        height: th,
                        state: job.as_ref().map_or("pending".into(), |j| j.state.clone()),
                        error: job.as_ref().and_then(|j| j.last_error.clone()),
                        variant: None,
                    }
                }
            })
            .collect())
    }

    pub async fn get(&self, token: &str) -> Result<images::Model> {
        self.find(token)
            .await?
            .ok_or_else(|| Error::NotFound(token.to_string()))
    }

    /// Reads a stored object's bytes.
    pub async fn read(&self, path: &str) -> Result<bytes::Bytes> {
        self.storage.get(path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                // A row whose object is gone is our fault, not the client's.
                Error::internal(format!("storage: {e}"))
            } else {
                Error::StorageUnavailable(e.to_string())
            }
        })
    }

    /// Deletes an image when `delete_token` matches. The row goes first, then
    /// the file: a crash in between leaves an orphan file (swept at startup),
    /// never a row without its file.
    pub async fn delete(&self, token: &str, delete_token: Option<&str>) -> Result<()> {
        let image = self.get(token).await?;
        let presented = delete_token.unwrap_or_default();
        if presented.is_empty() || !token_matches(presented, &image.delete_token_hash) {
            return Err(Error::Forbidden);
        }
        let (_, recorded) = self.variants.of_image(image.id).await?;
        // Variant and job rows go with the image (ON DELETE CASCADE).
        images::Entity::delete_by_id(image.id)
            .exec(&self.db)
            .await?;
        // Variant files are named from the token, so the configured names
        // catch one a worker finished after we read the rows; the rows catch
        // sizes since removed from the configuration.
        let mut paths: Vec<String> = self.variants.file_names(&image.path);
        paths.push(image.path.clone());
        paths.extend(recorded.into_iter().map(|v| v.path));
        paths.sort();
        paths.dedup();
        for path in &paths {
            if let Err(e) = self.storage.delete(path).await {
                tracing::warn!(token = %image.token, "row deleted but {path} remains (swept later): {e}");
            }
        }
        // Deletion wins over caching: here at once, elsewhere by notification.
        self.cache.announce(&self.db, &image.token).await;
        tracing::info!(token = %image.token, "image deleted");
        Ok(())
    }

    /// Removes objects no row refers to (a crash between writing an object
    /// and committing its row, or between deleting a row and its objects)
    /// and leftovers of interrupted writes. Returns how many went.
    pub async fn sweep(&self) -> Result<usize> {
        let known: std::collections::HashSet<String> = images::Entity::find()
            .select_only()
            .column(images::Column::Path)
            .into_tuple::<String>()
            .all(&self.db)
            .await?
            .into_iter()
            .chain(
                variants::Entity::find()
                    .select_only()
                    .column(variants::Column::Path)
                    .into_tuple::<String>()
                    .all(&self.db)
                    .await?,
            )
            .collect();
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        for entry in self.storage.list().await? {
            // Young objects are spared: an upload writes its object just
            // before its row commits.
            let age = entry
                .modified
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if age < self.sweep_min_age || known.contains(&entry.name) {
                continue;
            }
            match self.storage.delete(&entry.name).await {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!("could not sweep {}: {e}", entry.name),
            }
        }
        Ok(removed)
    }
}

/// One size of one image, as pages and the API show it.
#[derive(Debug, Clone)]
pub struct SizeStatus {
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// `ready`, or the job's `pending` / `running` / `failed`.
    pub state: String,
    pub error: Option<String>,
    pub variant: Option<variants::Model>,
}

/// Only a hash of each delete token is stored, so a leaked database cannot
/// be used to delete images.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares in constant time so response timing reveals nothing about the hash.
fn token_matches(presented: &str, stored_hash: &str) -> bool {
    let hashed = hash_token(presented);
    !stored_hash.is_empty() && bool::from(hashed.as_bytes().ct_eq(stored_hash.as_bytes()))
}

/// A client's file name as display text only: no path, no control
/// characters, bounded length.
pub fn clean_original_name(raw: Option<&str>) -> String {
    let raw = raw.unwrap_or_default();
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ORIGINAL_NAME)
        .collect();
    let cleaned = cleaned.trim().to_string();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "upload".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_names_lose_paths_and_control_characters() {
        assert_eq!(clean_original_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(
            clean_original_name(Some("C:\\Users\\me\\cat.jpg")),
            "cat.jpg"
        );
        assert_eq!(clean_original_name(Some("ca\u{0}t\r\n.png")), "cat.png");
        assert_eq!(clean_original_name(Some("..")), "upload");
        assert_eq!(clean_original_name(None), "upload");
        assert_eq!(
            clean_original_name(Some(&"x".repeat(1000))).chars().count(),
            255
        );
    }

    #[test]
    fn delete_tokens_match_only_their_own_hash() {
        let hash = hash_token("right");
        assert!(token_matches("right", &hash));
        assert!(!token_matches("wrong", &hash));
        assert!(!token_matches("", ""));
    }
}
