//! Uploading, finding, serving and deleting images: plain async functions
//! over the database, storage and the imaging pipeline. No HTTP here: each
//! call returns everything its caller needs, in the caller-neutral types
//! of `service::model`. Storing is in `store`, serving in `serve`,
//! deleting in `remove`, the operators' listings in `listing`.

mod listing;
mod remove;
mod serve;
mod store;

pub use listing::{Listed, Listing, MAX_PAGE, PAGE, Page};
pub use remove::{TOMBSTONE_BLOCKED, TOMBSTONE_EXPIRED};
pub use serve::{Content, Object, Served};
pub use store::HookPoint;

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Utc;
use futures_util::future::BoxFuture;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::db::entities::{images, tombstones, variants};
use crate::db::{SqliteFile, queue};
use crate::imaging;
use crate::metrics::Metrics;
use crate::names::NameGenerator;
use crate::service::budget::Decoding;
use crate::service::cache::{ImageCache, Resolved};
use crate::service::error::{Error, Result};
use crate::service::model::{ImageInfo, NO_FILE_NAME, SizeInfo, Uploader};
use crate::service::sizes::Sizes;
use crate::storage::Storage;

/// What storing an upload asks of the rules of the instance, and nothing
/// more: whether the bytes may be shared here, which address to keep, and
/// that a key was used. `service::moderation` keeps these rules.
#[async_trait::async_trait]
pub trait UploadRules: Send + Sync {
    /// Refuses a picture the operator has blocked.
    async fn refuse_blocked(&self, sha256: &str) -> Result<()>;
    /// The address to store with an upload, if addresses are kept.
    fn address_kept(&self, addr: Option<IpAddr>) -> Option<String>;
    /// Notes that a key was just used.
    async fn key_used(&self, key_id: i64);
}

/// A test's hand on an upload at one of its steps (`HookPoint`), to force a
/// race instead of hoping for it.
pub type Hook = Arc<dyn Fn(HookPoint) -> BoxFuture<'static, ()> + Send + Sync>;

/// Longest client file name kept for display, in characters.
const MAX_ORIGINAL_NAME: usize = 255;

/// Name collisions are astronomically rare with 4.6 × 10^10 names, but a
/// unique index makes them possible to detect; this bounds the retries.
const NAME_ATTEMPTS: usize = 16;

/// Everything the image operations need, shared by all requests.
pub struct Images {
    db: DatabaseConnection,
    storage: Storage,
    decoding: Decoding,
    sizes: Arc<Sizes>,
    cache: Arc<ImageCache>,
    metrics: Arc<Metrics>,
    names: NameGenerator,
    /// Bounds how many images are decoded at once, one per core.
    decoders: Semaphore,
    /// Bounds how many objects are read into the byte cache at once in the
    /// background.
    warmers: Arc<Semaphore>,
    /// The SQLite file opened at startup, checked before every upload.
    db_file: Option<SqliteFile>,
    /// The blocklist and the addresses kept, once the stored bytes are known.
    rules: Option<Arc<dyn UploadRules>>,
    hook: Option<Hook>,
}

/// An upload as it arrived: the file's bytes and the name the client gave.
#[derive(Debug, Clone, Default)]
pub struct NewUpload {
    pub bytes: bytes::Bytes,
    pub file_name: Option<String>,
    /// Its key, address and expiry, as the access check admitted it.
    pub uploader: Uploader,
}

/// The outcome of an accepted upload. The delete token exists only here:
/// the database keeps its hash.
#[derive(Debug, Clone)]
pub struct Uploaded {
    pub image: ImageInfo,
    pub sizes: Vec<SizeInfo>,
    pub delete_token: String,
}

impl Images {
    pub fn new(
        db: DatabaseConnection,
        storage: Storage,
        decoding: Decoding,
        sizes: Arc<Sizes>,
        cache: Arc<ImageCache>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self::with_names(
            db,
            storage,
            decoding,
            sizes,
            cache,
            metrics,
            NameGenerator::default(),
        )
    }

    /// As `new`, drawing names from `names` (tests script collisions).
    pub fn with_names(
        db: DatabaseConnection,
        storage: Storage,
        decoding: Decoding,
        sizes: Arc<Sizes>,
        cache: Arc<ImageCache>,
        metrics: Arc<Metrics>,
        names: NameGenerator,
    ) -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            db,
            storage,
            decoding,
            sizes,
            cache,
            metrics,
            names,
            decoders: Semaphore::new(cpus),
            warmers: Arc::new(Semaphore::new(2)),
            db_file: None,
            rules: None,
            hook: None,
        }
    }

    /// Checks uploads against the blocklist, and keeps their addresses as
    /// the rules say.
    pub fn with_rules(mut self, rules: Arc<dyn UploadRules>) -> Self {
        self.rules = Some(rules);
        self
    }

    /// Holds uploads at `hook`'s points (tests that force races).
    pub fn with_hook(mut self, hook: Hook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Refuses uploads once `file` (the SQLite database opened at startup)
    /// is no longer at its path: a 201 whose row lives in a deleted file
    /// would be lost at the next restart.
    pub fn watch_db_file(mut self, file: Option<SqliteFile>) -> Self {
        self.db_file = file;
        self
    }

    /// Reserves `bytes` of the memory upload bodies share, for a body about
    /// to be received whole; waits briefly, then refuses as busy.
    pub async fn reserve_upload_memory(
        &self,
        bytes: u64,
    ) -> Result<crate::service::budget::Reservation> {
        self.decoding
            .upload_memory
            .reserve_for_upload(bytes)
            .await
            .map_err(|_| Error::Busy)
    }

    /// Counts an upload refused before it reached `upload` (a malformed
    /// form, a body over the limit) and hands the error back.
    pub fn rejected(&self, error: Error) -> Error {
        self.metrics.record_upload(Err(error.code()));
        error
    }

    /// Validates, cleans and stores an upload, records it and queues its
    /// sizes; counts it as accepted or rejected.
    pub async fn upload(&self, upload: NewUpload) -> Result<Uploaded> {
        let result = self.store(upload).await;
        self.metrics
            .record_upload(result.as_ref().map(|_| ()).map_err(Error::code));
        result
    }

    fn check_db_file(&self) -> Result<()> {
        match &self.db_file {
            Some(file) => file.still_there().map_err(Error::DatabaseGone),
            None => Ok(()),
        }
    }

    async fn find(&self, token: &str) -> Result<Option<ImageInfo>> {
        Ok(images::Entity::find()
            .filter(images::Column::Token.eq(token.to_ascii_lowercase()))
            .one(&self.db)
            .await?
            .map(ImageInfo::from))
    }

    /// Finds an image by token, or by a size name followed by a token
    /// (`tinysublimedandelionbengal`), as variant URLs are written. An exact
    /// token always wins over a size prefix.
    async fn resolve(&self, token: &str) -> Result<Option<(ImageInfo, Option<String>)>> {
        let token = token.to_ascii_lowercase();
        if let Some(image) = self.find(&token).await? {
            return Ok(Some((image, None)));
        }
        for size in self.sizes.configured() {
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
        for size in self.sizes.configured() {
            if let Some(rest) = requested.strip_prefix(size.name.as_str())
                && let Some(hit) = self.cache.resolved(rest)
            {
                return Ok(Some((hit, Some(size.name.clone()))));
            }
        }
        let Some((image, size)) = self.resolve(&requested).await? else {
            return Ok(None);
        };
        let sizes = self.sizes_of(&image).await?;
        let resolved = Arc::new(Resolved { image, sizes });
        self.cache.remember(Arc::clone(&resolved));
        Ok(Some((resolved, size)))
    }

    /// What a requested name refers to, if it is still there: an image
    /// whose time is up is `Expired` even before the periodic job removes
    /// it, and a name that expired or was blocked says so (410, 451)
    /// rather than not found. `shown` is the name as the client wrote it.
    pub async fn live(
        &self,
        requested: &str,
        shown: &str,
    ) -> Result<(Arc<Resolved>, Option<String>)> {
        match self.lookup(requested).await? {
            Some((resolved, size)) if resolved.image.expired(Utc::now()) => {
                let _ = size;
                Err(Error::Expired(resolved.image.name.clone()))
            }
            Some(found) => Ok(found),
            None => Err(self.gone(requested, shown).await?),
        }
    }

    /// Why a name that is not found is gone: expired, blocked, or never
    /// known.
    async fn gone(&self, requested: &str, shown: &str) -> Result<Error> {
        let requested = requested.to_ascii_lowercase();
        let mut candidates = vec![requested.clone()];
        for size in self.sizes.configured() {
            if let Some(rest) = requested.strip_prefix(size.name.as_str())
                && !rest.is_empty()
            {
                candidates.push(rest.to_string());
            }
        }
        let found = tombstones::Entity::find()
            .filter(tombstones::Column::Token.is_in(candidates))
            .one(&self.db)
            .await?;
        Ok(match found.map(|t| t.reason) {
            Some(reason) if reason == TOMBSTONE_BLOCKED => Error::Blocked,
            Some(_) => Error::Expired(shown.to_string()),
            None => Error::NotFound(shown.to_string()),
        })
    }

    /// Each configured size of an image: finished, or the state of its job.
    async fn sizes_of(&self, image: &ImageInfo) -> Result<Vec<SizeInfo>> {
        let job = queue::of_image(&self.db, image.id).await?;
        let done = variants::Entity::find()
            .filter(variants::Column::ImageId.eq(image.id))
            .order_by_asc(variants::Column::Width)
            .all(&self.db)
            .await?;
        Ok(SizeInfo::for_image(
            image,
            self.sizes.configured(),
            job.as_ref(),
            &done,
        ))
    }

    /// An image and its sizes by exact token, straight from the database:
    /// what the API reports, never a cached answer.
    pub async fn describe(&self, token: &str) -> Result<(ImageInfo, Vec<SizeInfo>)> {
        let image = match self.get(token).await {
            Ok(image) if image.expired(Utc::now()) => return Err(Error::Expired(image.name)),
            Ok(image) => image,
            Err(Error::NotFound(_)) => return Err(self.gone(token, token).await?),
            Err(e) => return Err(e),
        };
        let sizes = self.sizes_of(&image).await?;
        Ok((image, sizes))
    }

    /// An image by exact token.
    pub async fn get(&self, token: &str) -> Result<ImageInfo> {
        self.row(token).await.map(ImageInfo::from)
    }

    /// The image a delete link names, if `delete_token` is its token.
    pub async fn check_delete_token(&self, token: &str, delete_token: &str) -> Result<ImageInfo> {
        let row = self.row(token).await?;
        if delete_token.is_empty() || !token_matches(delete_token, &row.delete_token_hash) {
            return Err(Error::WrongDeleteToken);
        }
        Ok(ImageInfo::from(row))
    }

    async fn row(&self, token: &str) -> Result<images::Model> {
        images::Entity::find()
            .filter(images::Column::Token.eq(token.to_ascii_lowercase()))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound(token.to_string()))
    }

    /// Every image whose stored bytes have this SHA-256.
    pub async fn with_sha256(&self, sha256: &str) -> Result<Vec<ImageInfo>> {
        Ok(images::Entity::find()
            .filter(images::Column::Sha256.eq(sha256))
            .all(&self.db)
            .await?
            .into_iter()
            .map(ImageInfo::from)
            .collect())
    }
}

/// Runs imaging work on the blocking pool; a panic in it is a bad image.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, imaging::ImagingError> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => Ok(result?),
        Err(e) if e.is_panic() => {
            tracing::error!("image decoder panicked: {e}");
            Err(imaging::ImagingError::Corrupt("the image could not be decoded".into()).into())
        }
        Err(e) => Err(Error::Task(e)),
    }
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
/// characters, no format characters (right-to-left overrides and
/// zero-width joiners make `gnp.exe` read as `exe.png`), bounded length.
pub fn clean_original_name(raw: Option<&str>) -> String {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    let raw = raw.unwrap_or_default();
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && c.general_category() != GeneralCategory::Format)
        .take(MAX_ORIGINAL_NAME)
        .collect();
    let cleaned = cleaned.trim().to_string();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        NO_FILE_NAME.into()
    } else {
        cleaned
    }
}
