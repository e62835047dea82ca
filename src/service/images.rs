//! Uploading, finding, serving and deleting images: plain async functions
//! over the database, storage and the imaging pipeline. No HTTP here: each
//! call returns everything its caller needs, in the caller-neutral types
//! of `service::model`.

use std::sync::Arc;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, SqlErr, TransactionTrait,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::db::entities::{images, reports, tombstones, variants};
use crate::db::{SqliteFile, queue};
use crate::imaging::resize::Rendered;
use crate::imaging::{self, Processed, Stop};
use crate::metrics::Metrics;
use crate::names::{DEFAULT_TYPE, NameGenerator, capitalise};
use crate::service::budget::Decoding;
use crate::service::cache::{ImageCache, PinnedBytes, Resolved};
use crate::service::error::{Error, Result};
use crate::service::model::{ImageInfo, NO_FILE_NAME, SizeInfo, StoredObject};
use crate::service::moderation::{Moderation, Uploader};
use crate::service::sizes::Sizes;
use crate::storage::Storage;

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
    /// Blocklist and quotas, checked once the stored bytes are known.
    moderation: Option<Arc<Moderation>>,
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

/// Where an answer's bytes come from.
pub enum Content {
    /// Held in memory (hot, or small enough to read whole).
    Memory(PinnedBytes),
    /// Read from storage in chunks as the client takes them: a picture too
    /// large for the byte cache, or one that would pass what answers may
    /// hold in memory.
    Stored(StoredObject),
}

/// Objects up to this size are read whole on a miss (and kept in the byte
/// cache); larger ones are streamed, and the cache is filled in the
/// background.
const READ_WHOLE_UP_TO: u64 = 256 * 1024;

/// Which object answers a request for an image or one of its sizes.
pub enum Served {
    /// The stored bytes.
    Object(Object),
    /// The size exists in the configuration but is not made yet; the
    /// original stands in, under this name (its token, with the extension
    /// the request was written with).
    NotReady { original: String },
    /// The object is public at the bucket or a CDN (`storage.s3.public_url`).
    Elsewhere(String),
}

/// A stored object, ready to send.
pub struct Object {
    pub content_type: String,
    /// Lower-case hex SHA-256 of its bytes: a strong validator.
    pub sha256: String,
    pub len: u64,
    pub content: Content,
    /// The file name a download should get, when one was asked for.
    pub download_name: Option<String>,
    /// Seconds a cache may keep it, for a picture that expires; None:
    /// forever (the bytes of a name never change).
    pub max_age: Option<u64>,
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
            moderation: None,
        }
    }

    /// Checks uploads against the blocklist and their key's quota, and
    /// records their key and address.
    pub fn moderated_by(mut self, moderation: Arc<Moderation>) -> Self {
        self.moderation = Some(moderation);
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

    /// The rows are inserted first, inside a transaction that stays open
    /// while the bytes are written and commits only once they are stored.
    /// The unique index on the token thus reserves the object's name before
    /// anything is written (a colliding upload waits or fails there, and
    /// never overwrites), readers never see a row before its object exists,
    /// and a failed write rolls the rows back. A crash between the write and
    /// the commit leaves an object without a row, which the sweep removes.
    /// The same holds on both backends, so no backend needs a conditional
    /// write.
    ///
    /// Sizes made within the upload are written after the original, while
    /// the transaction is still open, and recorded in it with a finished
    /// job; if they cannot be written, a pending job is recorded instead.
    async fn store(&self, upload: NewUpload) -> Result<Uploaded> {
        self.check_db_file()?;
        let (processed, made) = self.process(upload.bytes).await?;
        let (mut rendered, blurhash) = match made {
            Some((rendered, blurhash)) => (Some(rendered), blurhash),
            None => (None, None),
        };
        self.check_db_file()?;
        let original_name = clean_original_name(upload.file_name.as_deref());
        let delete_token = hex::encode(rand::random::<[u8; 24]>());
        let delete_token_hash = hash_token(&delete_token);
        let body = bytes::Bytes::from(processed.bytes);
        let format = processed.format;
        let content_type = format.mime();
        let uploader = upload.uploader;
        let kept_addr = match &self.moderation {
            Some(m) => {
                m.check_blocked(&processed.sha256).await?;
                if let Some(key) = &uploader.key {
                    m.check_quota(key, body.len() as u64).await?;
                }
                m.kept_addr(uploader.addr)
            }
            None => None,
        };
        let key_id = uploader.key.as_ref().map(|k| k.id);

        for _ in 0..NAME_ATTEMPTS {
            let name = self.names.generate(&mut rand::rng());
            let file_name = format!("{}.{}", name.token, format.extension());
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
                key_id: Set(key_id),
                uploader_ip: Set(kept_addr.clone()),
                expires_at: Set(uploader.expires_at),
                blurhash: Set(blurhash.clone()),
                ..Default::default()
            };
            let txn = self.db.begin().await?;
            // Uploads of the same bytes, one at a time, so the second finds
            // the first: PostgreSQL takes a lock on the checksum; on SQLite
            // the insert below holds the only write lock anyway.
            if let Err(e) = lock_checksum(&txn, &processed.sha256).await {
                let _ = txn.rollback().await;
                return Err(e.into());
            }
            let quota = match (&self.moderation, &uploader.key) {
                (Some(m), Some(key)) if key.quota_bytes.is_some() => Some((m, key)),
                _ => None,
            };
            if let Some((m, key)) = quota
                && let Err(e) = m.lock_key(&txn, key).await
            {
                let _ = txn.rollback().await;
                return Err(e);
            }
            let image = match row.insert(&txn).await {
                Ok(image) => image,
                Err(e) => {
                    let _ = txn.rollback().await;
                    if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
                        tracing::warn!(token = %name.token, "name already taken; drawing another");
                        continue;
                    }
                    return Err(e.into());
                }
            };
            if let Some((m, key)) = quota
                && let Err(e) = m.recheck_quota(&txn, key, body.len() as u64).await
            {
                let _ = txn.rollback().await;
                return Err(e);
            }
            // A name freed by a delete may still name the object of others
            // sharing it: never write over it, draw another name.
            match crate::service::sizes::names_of(&txn, &file_name).await {
                // This upload's own row, just inserted.
                Ok(n) if n <= 1 => {}
                Ok(_) => {
                    let _ = txn.rollback().await;
                    tracing::warn!(token = %name.token, "its object name is still in use; drawing another");
                    continue;
                }
                Err(e) => {
                    let _ = txn.rollback().await;
                    return Err(e.into());
                }
            }
            // The same bytes under another name: store them once.
            match self.share_bytes(&txn, &image, &processed.sha256).await {
                Ok(Some(shared)) => {
                    txn.commit().await?;
                    tracing::info!(token = %shared.token, bytes = shared.size, stored_as = %shared.path, "upload stored (the same bytes as an earlier one)");
                    let image = ImageInfo::from(shared);
                    if let (Some(m), Some(id)) = (&self.moderation, key_id) {
                        m.key_used(id).await;
                    }
                    self.sizes.wake();
                    let sizes = self.sizes_of(&image).await?;
                    return Ok(Uploaded {
                        image,
                        sizes,
                        delete_token,
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    let _ = txn.rollback().await;
                    return Err(e.into());
                }
            }
            if let Err(e) = self
                .storage
                .put(&file_name, body.clone(), content_type)
                .await
            {
                let _ = txn.rollback().await;
                // A write that failed half-way may still have landed.
                let _ = self.storage.delete(&file_name).await;
                return Err(Error::StorageUnavailable(e));
            }
            let written = match rendered.take() {
                Some(r) => self.sizes.write_inline(&file_name, format, r).await,
                None => None,
            };
            // Without its sizes the hash is made with them, by the job.
            if written.is_none() && blurhash.is_some() {
                images::Entity::update_many()
                    .col_expr(
                        images::Column::Blurhash,
                        sea_orm::sea_query::Expr::value(Option::<String>::None),
                    )
                    .filter(images::Column::Id.eq(image.id))
                    .exec(&txn)
                    .await?;
            }
            // The image and its sizes (or the job that will make them) are
            // one unit: either both rows exist or neither does.
            let recorded = match &written {
                Some(w) => self.sizes.record_inline(&txn, image.id, w).await,
                None => queue::enqueue(&txn, image.id).await,
            };
            let committed = match recorded {
                Ok(()) => txn.commit().await,
                Err(e) => {
                    let _ = txn.rollback().await;
                    Err(e)
                }
            };
            if let Err(e) = committed {
                // The objects must not outlive rows that were never written.
                let _ = self.storage.delete(&file_name).await;
                if let Some(w) = &written {
                    self.sizes.remove_written(w).await;
                }
                return Err(e.into());
            }
            if let (Some(m), Some(id)) = (&self.moderation, key_id) {
                m.key_used(id).await;
            }
            let inline = written.is_some();
            tracing::info!(token = %image.token, bytes = image.size, content_type = %image.content_type, sizes_inline = inline, "upload stored");
            self.metrics.record_sizes_path(inline);
            if !inline {
                self.sizes.wake();
            }
            let image = ImageInfo::from(image);
            let sizes = self.sizes_of(&image).await?;
            return Ok(Uploaded {
                image,
                sizes,
                delete_token,
            });
        }
        Err(Error::NoFreeName(NAME_ATTEMPTS))
    }

    /// When another name already stores these bytes: points `image` at
    /// its objects, gives it their sizes (or a job that shares them once
    /// made) and their BlurHash, and returns the row as it now is. The
    /// other name's row is locked (PostgreSQL) until this commits, so a
    /// delete of it cannot remove the objects in between: it waits, and
    /// then counts this name.
    async fn share_bytes(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        image: &images::Model,
        sha256: &str,
    ) -> std::result::Result<Option<images::Model>, sea_orm::DbErr> {
        use sea_orm::ConnectionTrait as _;
        let mut query = images::Entity::find()
            .filter(images::Column::Sha256.eq(sha256))
            .filter(images::Column::Id.ne(image.id))
            .order_by_asc(images::Column::Id)
            .limit(1);
        if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
            query = query.lock_exclusive();
        }
        let Some(sibling) = query.one(txn).await? else {
            return Ok(None);
        };
        let mut shared = image.clone();
        shared.path = sibling.path.clone();
        shared.blurhash = sibling.blurhash.clone();
        images::Entity::update_many()
            .col_expr(
                images::Column::Path,
                sea_orm::sea_query::Expr::value(shared.path.clone()),
            )
            .col_expr(
                images::Column::Blurhash,
                sea_orm::sea_query::Expr::value(shared.blurhash.clone()),
            )
            .filter(images::Column::Id.eq(image.id))
            .exec(txn)
            .await?;
        if !self.sizes.share(txn, image.id, sibling.id, true).await? {
            queue::enqueue(txn, image.id).await?;
        }
        Ok(Some(shared))
    }

    fn check_db_file(&self) -> Result<()> {
        match &self.db_file {
            Some(file) => file.still_there().map_err(Error::DatabaseGone),
            None => Ok(()),
        }
    }

    /// Runs the imaging pipeline off the async runtime: the cheap
    /// inspection first, then, once the decode's memory is reserved from
    /// the shared budget and a core is free, the decode that checks the
    /// file and, for an image small enough, yields the pixels its sizes
    /// are made from, and then the sizes. The decode gives up when this
    /// future is dropped or `limits.decode_seconds` pass. A panic inside a
    /// decoder is refused as a bad image; one while making the sizes only
    /// leaves them to a job. Returns the sizes when they were made.
    async fn process(
        &self,
        bytes: bytes::Bytes,
    ) -> Result<(Processed, Option<(Vec<Rendered>, Option<String>)>)> {
        let limits = self.decoding.limits;
        let sizes = Arc::clone(&self.sizes);
        let (inspection, job_cost, plan) = blocking(move || {
            let mut inspection = imaging::inspect(&bytes, &limits)?;
            inspection.check_at(sizes.largest_width());
            let job_cost = sizes.job_cost(inspection.cleaned(), inspection.format)?;
            let plan = sizes.plan(&inspection);
            Ok((inspection, job_cost, plan))
        })
        .await?;
        let budget = &self.decoding.budget;
        let needed = inspection.cost.max(job_cost);
        if needed > budget.limit() {
            return Err(Error::DecodeTooBig {
                needed,
                limit: budget.limit(),
            });
        }
        // Sizes within the upload take decode memory only when it is free
        // right now; otherwise the upload is checked alone, as before, and
        // its sizes are left to a job.
        let (reservation, plan) = match plan {
            Some(plan) => match budget.try_reserve(plan.cost) {
                Some(reservation) => (reservation, Some(plan)),
                None => (budget.reserve_for_upload(inspection.cost).await?, None),
            },
            None => (budget.reserve_for_upload(inspection.cost).await?, None),
        };
        // The semaphore is never closed, so acquiring cannot fail; a
        // closed one would only mean running without the bound.
        let _core = self.decoders.acquire().await.ok();
        let cancel = CancelOnDrop::default();
        let stop = Stop::new(Arc::clone(&cancel.0), self.decoding.timeout);
        let maker = self.sizes.inline_maker();
        blocking(move || {
            // Held until the pixels and the sizes made from them are gone.
            let _memory = reservation;
            let checked = imaging::decode_checked(inspection, &limits, &stop, plan.as_ref())?;
            let rendered = match checked.pixels {
                Some(pixels) if stop.check().is_ok() => maker.make(pixels),
                _ => None,
            };
            let blurhash = rendered
                .as_deref()
                .and_then(crate::imaging::resize::blurhash_of);
            Ok((checked.processed, rendered.map(|r| (r, blurhash))))
        })
        .await
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

    /// Decides which object answers `/img/{requested}` (with `size` from
    /// the query, which wins over a size prefix in the name): the original,
    /// a size, a stand-in while the size is made, or a public URL.
    /// The name may end in its image's file extension
    /// (`/img/{token}.jpg`), which many forums and chat tools need before
    /// they embed a link; any other extension is not found.
    ///
    /// Another process (a command deleting a picture on SQLite) may have
    /// removed an object this replica's cache still names: then the name
    /// is looked up afresh once, so a deleted picture answers 404 or 410
    /// rather than a missing object's 500.
    pub async fn open(
        &self,
        requested: &str,
        size: Option<&str>,
        download: bool,
    ) -> Result<Served> {
        match self.open_once(requested, size, download).await {
            Err(Error::ObjectMissing { .. }) => {
                self.forget(requested);
                self.open_once(requested, size, download).await
            }
            other => other,
        }
    }

    /// Forgets what the cache knows of a requested name (a token, perhaps
    /// with a size prefix and an extension).
    pub fn forget(&self, requested: &str) {
        let (stem, _) = split_extension(requested);
        let stem = stem.to_ascii_lowercase();
        for size in self.sizes.configured() {
            if let Some(rest) = stem.strip_prefix(size.name.as_str()) {
                self.cache.forget(rest);
            }
        }
        self.cache.forget(&stem);
    }

    async fn open_once(
        &self,
        requested: &str,
        size: Option<&str>,
        download: bool,
    ) -> Result<Served> {
        let (stem, extension) = split_extension(requested);
        let (resolved, prefixed) = self.live(stem, requested).await?;
        let image = &resolved.image;
        if let Some(extension) = extension
            && !extension_fits(extension, image.extension())
        {
            return Err(Error::NotFound(format!(
                "{requested} (this picture is .{})",
                image.extension()
            )));
        }
        let wanted = match size.filter(|s| !s.is_empty()) {
            Some(s) => Some(s.to_ascii_lowercase()),
            None => prefixed,
        };
        let (object, label) = match wanted {
            None => (image.object.clone(), String::new()),
            Some(name) => {
                let sizes = &resolved.sizes;
                let status = sizes.iter().find(|s| s.name == name).ok_or_else(|| {
                    let known: Vec<&str> = sizes.iter().map(|s| s.name.as_str()).collect();
                    Error::NotFound(format!(
                        "{requested} in size {name} (sizes: {})",
                        known.join(", ")
                    ))
                })?;
                match &status.object {
                    Some(object) => (object.clone(), capitalise(&name)),
                    None => {
                        let original = match extension {
                            Some(extension) => format!("{}.{extension}", image.token),
                            None => image.token.clone(),
                        };
                        return Ok(Served::NotReady { original });
                    }
                }
            }
        };
        // Downloads still pass through here: only we can name the file.
        // An expiring picture is never handed to the bucket's URL: what a
        // CDN caches there outlives the picture.
        // Nor is a name whose bytes are stored under another name's (the
        // same picture uploaded earlier): the bucket URL would give that
        // name away.
        if !download
            && image.expires_at.is_none()
            && stored_under(&object.path, &image.token)
            && let Some(url) = self.storage.public_url(&object.path)
        {
            return Ok(Served::Elsewhere(url));
        }
        let download_name = download.then(|| download_name(image, &label));
        let content = self.content(&object).await?;
        // Caches may keep an expiring picture only until it expires.
        let max_age = image
            .expires_at
            .map(|at| u64::try_from((at - Utc::now()).num_seconds()).unwrap_or(0));
        Ok(Served::Object(Object {
            content_type: image.content_type.clone(),
            sha256: object.sha256.clone(),
            len: object.len,
            content,
            download_name,
            max_age,
        }))
    }

    /// Where a stored object's bytes come from: memory when hot (or small)
    /// and within what answers may hold, else storage, streamed. The
    /// SHA-256 is the cache key, so replaced content is never served from
    /// a stale entry.
    async fn content(&self, object: &StoredObject) -> Result<Content> {
        if let Some(hit) = self.cache.bytes(&object.sha256) {
            return Ok(match self.cache.pin(hit) {
                Some(pinned) => Content::Memory(pinned),
                None => Content::Stored(object.clone()),
            });
        }
        if object.len > READ_WHOLE_UP_TO {
            self.warm(object);
            return Ok(Content::Stored(object.clone()));
        }
        let bytes: Arc<[u8]> = Arc::from(self.read(&object.path).await?.as_ref());
        self.cache.keep_bytes(&object.sha256, Arc::clone(&bytes));
        Ok(match self.cache.pin(bytes) {
            Some(pinned) => Content::Memory(pinned),
            None => Content::Stored(object.clone()),
        })
    }

    /// Reads an object that fits the byte cache into it in the background,
    /// a few at a time: the next request for it is answered from memory.
    fn warm(&self, object: &StoredObject) {
        if object.len > self.cache.max_entry() {
            return;
        }
        let Some(permit) = Arc::clone(&self.warmers).try_acquire_owned().ok() else {
            return;
        };
        let (storage, cache, object) = (
            self.storage.clone(),
            Arc::clone(&self.cache),
            object.clone(),
        );
        tokio::spawn(async move {
            let _permit = permit;
            if cache.bytes(&object.sha256).is_some() {
                return;
            }
            match storage.get(&object.path).await {
                Ok(bytes) => cache.keep_bytes(&object.sha256, Arc::from(bytes.as_ref())),
                Err(e) => tracing::debug!("could not warm the cache with {}: {e}", object.path),
            }
        });
    }

    /// Bytes `range` (all when None) of a stored object, as chunks read on
    /// demand.
    pub async fn stream(
        &self,
        object: &StoredObject,
        range: Option<(u64, u64)>,
    ) -> Result<crate::storage::ByteStream> {
        self.storage
            .get_stream(&object.path, range)
            .await
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Error::ObjectMissing {
                        name: object.path.clone(),
                        source: e,
                    }
                } else {
                    Error::StorageUnavailable(e)
                }
            })
    }

    async fn read(&self, path: &str) -> Result<bytes::Bytes> {
        self.storage.get(path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::ObjectMissing {
                    name: path.to_string(),
                    source: e,
                }
            } else {
                Error::StorageUnavailable(e)
            }
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

    /// The rows go first, then the objects: a crash in between leaves
    /// orphan objects (swept later), never a row without its object. The
    /// row's deletion is also the claim: of several replicas removing the
    /// same image, only the one whose delete found the row goes on.
    async fn remove_image(&self, image: ImageInfo, tombstone: Option<&str>) -> Result<ImageInfo> {
        self.remove_where(image, tombstone, None)
            .await?
            .ok_or_else(|| Error::NotFound(String::new()))
    }

    async fn remove_where(
        &self,
        image: ImageInfo,
        tombstone: Option<&str>,
        expired_by: Option<chrono::DateTime<Utc>>,
    ) -> Result<Option<ImageInfo>> {
        let recorded: Vec<String> = variants::Entity::find()
            .filter(variants::Column::ImageId.eq(image.id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|v| v.path)
            .collect();
        let txn = self.db.begin().await?;
        // Variant and job rows go with the image (ON DELETE CASCADE).
        let mut delete = images::Entity::delete_many().filter(images::Column::Id.eq(image.id));
        if let Some(now) = expired_by {
            delete = delete.filter(images::Column::ExpiresAt.lte(now));
        }
        let deleted = delete.exec(&txn).await?;
        if deleted.rows_affected == 0 {
            let _ = txn.rollback().await;
            return Ok(None);
        }
        if let Some(reason) = tombstone {
            // Reports about a picture that is gone need nobody any more.
            reports::Entity::update_many()
                .col_expr(
                    reports::Column::ResolvedAt,
                    sea_orm::sea_query::Expr::value(Utc::now()),
                )
                .col_expr(
                    reports::Column::Resolution,
                    sea_orm::sea_query::Expr::value(reason),
                )
                .filter(reports::Column::Token.eq(image.token.as_str()))
                .filter(reports::Column::ResolvedAt.is_null())
                .exec(&txn)
                .await?;
            tombstones::Entity::delete_by_id(image.token.clone())
                .exec(&txn)
                .await?;
            tombstones::ActiveModel {
                token: Set(image.token.clone()),
                reason: Set(reason.to_string()),
                gone_at: Set(Utc::now()),
            }
            .insert(&txn)
            .await?;
        }
        // Bytes stored once for several names stay while any name does.
        let still_named = crate::service::sizes::names_of(&txn, &image.object.path).await?;
        txn.commit().await?;
        if still_named > 0 {
            self.cache.announce(&self.db, &image.token).await;
            tracing::info!(token = %image.token, reason = tombstone.unwrap_or("deleted"), names_left = still_named, "image deleted (its bytes stay for the other names)");
            return Ok(Some(image));
        }
        // Variant files are named from the token, so the configured names
        // catch one a worker finished after we read the rows; the rows catch
        // sizes since removed from the configuration.
        let mut paths: Vec<String> = self.sizes.file_names(&image.object.path);
        paths.push(image.object.path.clone());
        paths.extend(recorded);
        paths.sort();
        paths.dedup();
        for path in &paths {
            if let Err(e) = self.storage.delete(path).await {
                tracing::warn!(token = %image.token, "row deleted but {path} remains (swept later): {e}");
            }
        }
        // Deletion wins over caching: here at once, elsewhere by notification.
        self.cache.announce(&self.db, &image.token).await;
        tracing::info!(token = %image.token, reason = tombstone.unwrap_or("deleted"), "image deleted");
        Ok(Some(image))
    }

    /// Deletes up to `batch` images whose time is up; returns how many
    /// this process deleted. Every replica may run this at once: each
    /// image is deleted by exactly one of them (the one whose delete found
    /// the row).
    pub async fn expire_due(&self, batch: u64) -> Result<usize> {
        let now = Utc::now();
        let due = images::Entity::find()
            .filter(images::Column::ExpiresAt.lte(now))
            .order_by_asc(images::Column::ExpiresAt)
            .limit(batch)
            .all(&self.db)
            .await?;
        let mut removed = 0;
        for row in due {
            let image = ImageInfo::from(row);
            if self
                .remove_where(image, Some(TOMBSTONE_EXPIRED), Some(now))
                .await?
                .is_some()
            {
                removed += 1;
            }
        }
        Ok(removed)
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

    /// Images, newest first, for operators: uploaded since `since`, with
    /// `key_id`, by one of `tokens`; at most `limit`.
    pub async fn listing(&self, filter: &Listing) -> Result<Vec<Listed>> {
        let mut query = images::Entity::find().order_by_desc(images::Column::Id);
        if let Some(since) = filter.since {
            query = query.filter(images::Column::InsertedAt.gte(since));
        }
        if let Some(key_id) = filter.key_id {
            query = query.filter(images::Column::KeyId.eq(key_id));
        }
        if let Some(tokens) = &filter.tokens {
            query = query.filter(images::Column::Token.is_in(tokens.clone()));
        }
        if filter.net.is_some() {
            query = query.filter(images::Column::UploaderIp.is_not_null());
        } else if let Some(limit) = filter.limit {
            // Without an address filter the database can stop early.
            query = query.limit(limit as u64);
        }
        let rows = query.all(&self.db).await?;
        Ok(rows
            .into_iter()
            .filter(|row| match (&filter.net, &row.uploader_ip) {
                (Some(net), Some(ip)) => ip
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| net.contains(&ip)),
                (Some(_), None) => false,
                (None, _) => true,
            })
            .take(filter.limit.unwrap_or(usize::MAX))
            .map(|row| Listed {
                key_id: row.key_id,
                uploader_ip: row.uploader_ip.clone(),
                image: ImageInfo::from(row),
            })
            .collect())
    }
}

/// What `Images::listing` picks.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub since: Option<chrono::DateTime<Utc>>,
    pub key_id: Option<i64>,
    pub net: Option<ipnet::IpNet>,
    pub tokens: Option<Vec<String>>,
    pub limit: Option<usize>,
}

/// An image with what operators see about its upload.
#[derive(Debug, Clone)]
pub struct Listed {
    pub image: ImageInfo,
    pub key_id: Option<i64>,
    pub uploader_ip: Option<String>,
}

/// Why a name is gone, as its tombstone says.
pub const TOMBSTONE_EXPIRED: &str = "expired";
pub const TOMBSTONE_BLOCKED: &str = "blocked";

/// Whether an object (`{token}.ext`, `{token}-{size}.ext`) is named after
/// this token.
fn stored_under(path: &str, token: &str) -> bool {
    path.strip_prefix(token)
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-'))
}

/// Serialises uploads of the same bytes on PostgreSQL until the end of the
/// transaction (SQLite has one writer at a time already).
async fn lock_checksum(
    txn: &sea_orm::DatabaseTransaction,
    sha256: &str,
) -> std::result::Result<(), sea_orm::DbErr> {
    use sea_orm::ConnectionTrait as _;
    if txn.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        [sha256.into()],
    ))
    .await
    .map(|_| ())
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

/// Tells a decode to stop when the upload waiting for it goes away.
#[derive(Default)]
struct CancelOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `name.jpg` → (`name`, Some(`jpg`)) when the part after the last dot is
/// an image extension; anything else is all name.
fn split_extension(requested: &str) -> (&str, Option<&str>) {
    match requested.rsplit_once('.') {
        Some((stem, ext))
            if ["jpg", "jpeg", "png", "gif", "webp"]
                .iter()
                .any(|known| ext.eq_ignore_ascii_case(known)) =>
        {
            (stem, Some(ext))
        }
        _ => (requested, None),
    }
}

/// Whether a requested extension names the image's own format (`jpeg`
/// and `jpg` both name JPEG).
fn extension_fits(requested: &str, own: &str) -> bool {
    requested.eq_ignore_ascii_case(own) || (own == "jpg" && requested.eq_ignore_ascii_case("jpeg"))
}

/// The file name a download gets: the uploader's own file name when there
/// was one (a size adds its name: `cat-tiny.jpg`), else the picture's name;
/// always with the extension of the stored format.
fn download_name(image: &ImageInfo, size_label: &str) -> String {
    let stem = image
        .uploader_file_name()
        .map(|original| {
            original
                .rsplit_once('.')
                .map_or(original, |(stem, _)| stem)
                .trim()
        })
        .unwrap_or_default();
    if stem.is_empty() {
        return format!("{size_label}{}.{}", image.name, image.extension());
    }
    let suffix = if size_label.is_empty() {
        String::new()
    } else {
        format!("-{}", size_label.to_ascii_lowercase())
    };
    format!("{stem}{suffix}.{}", image.extension())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_is_stored_under_a_token_only_when_named_after_it() {
        assert!(stored_under("abc.png", "abc"));
        assert!(stored_under("abc-tiny.png", "abc"));
        assert!(!stored_under("abcd.png", "abc"));
        assert!(!stored_under("xyz.png", "abc"));
    }

    #[test]
    fn original_names_lose_paths_and_control_characters() {
        assert_eq!(clean_original_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(
            clean_original_name(Some("C:\\Users\\me\\cat.jpg")),
            "cat.jpg"
        );
        assert_eq!(clean_original_name(Some("ca\u{0}t\r\n.png")), "cat.png");
        // Right-to-left override, zero-width space and joiner, BOM, soft hyphen.
        assert_eq!(
            clean_original_name(Some("photo\u{202E}gnp.exe\u{200B}\u{200D}\u{FEFF}\u{AD}")),
            "photognp.exe"
        );
        assert_eq!(clean_original_name(Some("..")), "upload");
        assert_eq!(clean_original_name(None), "upload");
        assert_eq!(
            clean_original_name(Some(&"x".repeat(1000))).chars().count(),
            255
        );
    }

    #[test]
    fn extensions_split_only_when_they_name_an_image_format() {
        assert_eq!(split_extension("abc.jpg"), ("abc", Some("jpg")));
        assert_eq!(split_extension("tinyabc.WEBP"), ("tinyabc", Some("WEBP")));
        assert_eq!(split_extension("abc.exe"), ("abc.exe", None));
        assert_eq!(split_extension("abc"), ("abc", None));
        assert!(extension_fits("jpeg", "jpg"));
        assert!(extension_fits("PNG", "png"));
        assert!(!extension_fits("png", "jpg"));
    }

    #[test]
    fn delete_tokens_match_only_their_own_hash() {
        let hash = hash_token("right");
        assert!(token_matches("right", &hash));
        assert!(!token_matches("wrong", &hash));
        assert!(!token_matches("", ""));
    }
}
