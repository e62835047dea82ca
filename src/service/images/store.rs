//! Storing an upload, in steps whose names say what each undoes:
//!
//! 1. `process`: the imaging pipeline checks and cleans the file (and makes
//!    its sizes when cheap); nothing is stored yet.
//! 2. `admit`: the blocklist and the key's quota, read before anything is
//!    written.
//! 3. `reserve`: a short write transaction holds the name (a row in
//!    `reservations`) so no other upload can write under it.
//!    Undone by `release`.
//! 4. `write_objects`: the original and the sizes made within the upload go
//!    to storage, outside any transaction: SQLite's one writer is never
//!    held across a disk or network call. Undone by `discard`.
//! 5. `record`: a short write transaction inserts the row, its sizes or
//!    its job, and drops the reservation. When other names already store
//!    the same bytes, this name points at their object instead, and what
//!    was written is discarded. Undone by rolling back.
//!
//! A crash between 4 and 5 leaves objects and a reservation no row claims;
//! the sweep removes both once they are older than its minimum age.

use std::sync::Arc;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, SqlErr,
};

use super::{
    Images, NAME_ATTEMPTS, NewUpload, Uploaded, blocking, clean_original_name, hash_token,
};
use crate::db::entities::{images, reservations, upload_keys};
use crate::db::{begin_write, queue};
use crate::imaging::resize::Rendered;
use crate::imaging::{self, Processed, Stop};
use crate::names::{DEFAULT_TYPE, Name};
use crate::service::error::{Error, Result};
use crate::service::model::{ImageInfo, KeyInfo, Uploader};
use crate::service::sizes::{Written, names_sharing};

/// An upload that has passed its checks, ready to store under a name.
struct Prepared {
    processed: Processed,
    body: bytes::Bytes,
    rendered: Option<Vec<Rendered>>,
    blurhash: Option<String>,
    original_name: String,
    delete_token: String,
    uploader: Uploader,
    /// The address kept with it (none when addresses are not kept).
    kept_addr: Option<String>,
}

/// What was written for one name, to be discarded if it is not recorded.
struct Writes {
    original: String,
    sizes: Option<Vec<Written>>,
}

/// How recording went.
enum Recorded {
    /// The row is in: pointing at the bytes of another name (`shared`), or
    /// at its own, with its sizes made within the upload (`inline`) or
    /// left to a job.
    Stored {
        row: Box<images::Model>,
        shared: bool,
        inline: bool,
    },
    /// The name was taken meanwhile: draw another.
    NameTaken,
    /// The name of the same bytes it meant to share went meanwhile: this
    /// upload writes its own objects after all.
    SiblingGone,
}

/// The moments a test may hold an upload at, to force a race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPoint {
    /// The row and its sizes are written, the transaction not committed.
    BeforeRecordCommit,
}

impl Images {
    /// Validates, cleans and stores an upload, records it and queues its
    /// sizes.
    pub(super) async fn store(&self, upload: NewUpload) -> Result<Uploaded> {
        self.check_db_file()?;
        let (mut processed, made) = self.process(upload.bytes).await?;
        self.check_db_file()?;
        self.admit(&processed, &upload.uploader).await?;
        let (rendered, blurhash) = match made {
            Some((rendered, blurhash)) => (Some(rendered), blurhash),
            None => (None, None),
        };
        let prepared = Prepared {
            body: bytes::Bytes::from(std::mem::take(&mut processed.bytes)),
            processed,
            rendered,
            blurhash,
            original_name: clean_original_name(upload.file_name.as_deref()),
            delete_token: hex::encode(rand::random::<[u8; 24]>()),
            kept_addr: self
                .rules
                .as_ref()
                .and_then(|r| r.address_kept(upload.uploader.addr)),
            uploader: upload.uploader,
        };
        for _ in 0..NAME_ATTEMPTS {
            let name = self.names.generate(&mut rand::rng());
            if let Some(uploaded) = self.store_as(&prepared, &name).await? {
                return Ok(uploaded);
            }
            tracing::warn!(token = %name.token, "name already taken; drawing another");
        }
        Err(Error::NoFreeName(NAME_ATTEMPTS))
    }

    /// The blocklist and the key's quota, before anything is written.
    async fn admit(&self, processed: &Processed, uploader: &Uploader) -> Result<()> {
        if let Some(rules) = &self.rules {
            rules.refuse_blocked(&processed.sha256).await?;
        }
        if let Some(key) = &uploader.key {
            check_quota(&self.db, key, processed.bytes.len() as u64).await?;
        }
        Ok(())
    }

    /// Stores the upload as `name`; None when the name turned out taken.
    async fn store_as(&self, p: &Prepared, name: &Name) -> Result<Option<Uploaded>> {
        let file_name = format!("{}.{}", name.token, p.processed.format.extension());
        // The same bytes under another name: nothing needs writing, if that
        // name is still there when this one is recorded.
        let mut writes = None;
        if self.stored_copy(&p.processed.sha256).await?.is_none() {
            match self.reserve_and_write(p, name, &file_name).await? {
                Some(w) => writes = Some(w),
                None => return Ok(None),
            }
        }
        loop {
            let recorded = self.record(p, name, &file_name, writes.as_ref()).await;
            match recorded {
                Ok(Recorded::Stored {
                    row,
                    shared,
                    inline,
                }) => {
                    if shared && let Some(w) = writes.take() {
                        self.discard(w).await;
                    }
                    return self.stored(p, *row, shared, inline).await.map(Some);
                }
                Ok(Recorded::SiblingGone) => {
                    match self.reserve_and_write(p, name, &file_name).await? {
                        Some(w) => writes = Some(w),
                        None => return Ok(None),
                    }
                }
                Ok(Recorded::NameTaken) => {
                    self.undo(writes, &name.token).await;
                    return Ok(None);
                }
                Err(e) => {
                    self.undo(writes, &name.token).await;
                    return Err(e);
                }
            }
        }
    }

    /// Holds the name and writes the objects under it; None when the name
    /// is taken. A failed write gives the name back.
    async fn reserve_and_write(
        &self,
        p: &Prepared,
        name: &Name,
        file_name: &str,
    ) -> Result<Option<Writes>> {
        if !self.reserve(&name.token, file_name).await? {
            return Ok(None);
        }
        match self.write_objects(file_name, p).await {
            Ok(writes) => Ok(Some(writes)),
            Err(e) => {
                self.release(&name.token).await;
                Err(e)
            }
        }
    }

    /// After the commit: the key's last use, workers woken for a queued
    /// job, the log line, the answer.
    async fn stored(
        &self,
        p: &Prepared,
        row: images::Model,
        shared: bool,
        inline: bool,
    ) -> Result<Uploaded> {
        if let (Some(rules), Some(key)) = (&self.rules, &p.uploader.key) {
            rules.key_used(key.id).await;
        }
        let image = ImageInfo::from(row);
        if shared {
            tracing::info!(token = %image.token, bytes = image.bytes, stored_as = %image.object.path, "upload stored (the same bytes as an earlier one)");
            self.sizes.wake();
        } else {
            tracing::info!(token = %image.token, bytes = image.bytes, content_type = %image.content_type, sizes_inline = inline, "upload stored");
            self.metrics.record_sizes_path(inline);
            if !inline {
                self.sizes.wake();
            }
        }
        let sizes = self.sizes_of(&image).await?;
        Ok(Uploaded {
            image,
            sizes,
            delete_token: p.delete_token.clone(),
        })
    }

    /// The object other names store these bytes under, if any.
    async fn stored_copy(&self, sha256: &str) -> Result<Option<String>> {
        Ok(images::Entity::find()
            .select_only()
            .column(images::Column::Path)
            .filter(images::Column::Sha256.eq(sha256))
            .limit(1)
            .into_tuple::<String>()
            .one(&self.db)
            .await?)
    }

    /// Holds `token` for this upload: false when it names a picture, is
    /// held by another upload, or its object name still stores bytes that
    /// other names share (a name freed by a delete).
    async fn reserve(&self, token: &str, file_name: &str) -> Result<bool> {
        let txn = begin_write(&self.db).await?;
        let taken = images::Entity::find()
            .filter(images::Column::Token.eq(token))
            .one(&*txn)
            .await?
            .is_some()
            || names_sharing(&*txn, file_name).await? > 0;
        if taken {
            txn.rollback().await?;
            return Ok(false);
        }
        let held = reservations::ActiveModel {
            token: Set(token.to_string()),
            created_at: Set(Utc::now()),
        }
        .insert(&*txn)
        .await;
        match held {
            Ok(_) => {
                txn.commit().await?;
                Ok(true)
            }
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                txn.rollback().await?;
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Gives a reservation up (best effort: the sweep removes old ones).
    async fn release(&self, token: &str) {
        let result = reservations::Entity::delete_by_id(token.to_string())
            .exec(&self.db)
            .await;
        if let Err(e) = result {
            tracing::warn!(
                token,
                "could not release a reserved name (swept later): {e}"
            );
        }
    }

    /// Writes the original, then the sizes made within the upload (which
    /// may fail alone: a job makes them instead). Nothing is left behind
    /// when the original cannot be written.
    async fn write_objects(&self, file_name: &str, p: &Prepared) -> Result<Writes> {
        let content_type = p.processed.format.mime();
        if let Err(e) = self
            .storage
            .put(file_name, p.body.clone(), content_type)
            .await
        {
            // A write that failed half-way may still have landed.
            let _ = self.storage.delete(file_name).await;
            return Err(Error::StorageUnavailable(e));
        }
        let sizes = match p.rendered.clone() {
            Some(rendered) => {
                self.sizes
                    .write_inline(file_name, p.processed.format, rendered)
                    .await
            }
            None => None,
        };
        Ok(Writes {
            original: file_name.to_string(),
            sizes,
        })
    }

    /// Removes what was written for a name that is not recorded.
    async fn discard(&self, writes: Writes) {
        let _ = self.storage.delete(&writes.original).await;
        if let Some(sizes) = &writes.sizes {
            self.sizes.remove_written(sizes).await;
        }
    }

    async fn undo(&self, writes: Option<Writes>, token: &str) {
        if let Some(w) = writes {
            self.discard(w).await;
        }
        self.release(token).await;
    }

    /// The one short transaction that makes the upload real.
    async fn record(
        &self,
        p: &Prepared,
        name: &Name,
        file_name: &str,
        writes: Option<&Writes>,
    ) -> Result<Recorded> {
        let txn = begin_write(&self.db).await?;
        // Uploads of the same bytes, one at a time, so the second finds the
        // first: PostgreSQL takes a lock on the checksum; on SQLite this
        // process's writers take turns anyway.
        lock_checksum(&txn, &p.processed.sha256).await?;
        let quota_key = p.uploader.key.as_ref().filter(|k| k.quota_bytes.is_some());
        if let Some(key) = quota_key {
            lock_key(&txn, key).await?;
        }
        let sibling = sibling_of(&txn, &p.processed.sha256).await?;
        if sibling.is_none() && writes.is_none() {
            txn.rollback().await?;
            return Ok(Recorded::SiblingGone);
        }
        let sizes_written = writes.and_then(|w| w.sizes.as_deref());
        let row = self.new_row(
            p,
            name,
            file_name,
            sibling.as_ref(),
            sizes_written.is_some(),
        );
        let image = match row.insert(&*txn).await {
            Ok(image) => image,
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                txn.rollback().await?;
                return Ok(Recorded::NameTaken);
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(key) = quota_key {
            recheck_quota(&txn, key, image.size as u64).await?;
        }
        match (&sibling, sizes_written) {
            // The bytes were already stored: their sizes too, or a job that
            // shares them once they are made.
            (Some(sibling), _) => {
                if !self.sizes.share(&*txn, image.id, sibling.id, true).await? {
                    queue::enqueue(&*txn, image.id).await?;
                }
            }
            (None, Some(written)) => self.sizes.record_inline(&*txn, image.id, written).await?,
            (None, None) => queue::enqueue(&*txn, image.id).await?,
        }
        reservations::Entity::delete_by_id(name.token.clone())
            .exec(&*txn)
            .await?;
        if let Some(hook) = &self.hook {
            hook(HookPoint::BeforeRecordCommit).await;
        }
        txn.commit().await?;
        Ok(Recorded::Stored {
            row: Box::new(image),
            shared: sibling.is_some(),
            inline: sibling.is_none() && sizes_written.is_some(),
        })
    }

    /// The row of the upload: its own object, or the sibling's.
    fn new_row(
        &self,
        p: &Prepared,
        name: &Name,
        file_name: &str,
        sibling: Option<&images::Model>,
        sizes_written: bool,
    ) -> images::ActiveModel {
        let now = Utc::now();
        let (path, blurhash) = match sibling {
            Some(s) => (s.path.clone(), s.blurhash.clone()),
            // Without its sizes the hash is made with them, by the job.
            None => (
                file_name.to_string(),
                p.blurhash.clone().filter(|_| sizes_written),
            ),
        };
        let ip_key = p
            .kept_addr
            .as_deref()
            .and_then(|a| a.parse::<std::net::IpAddr>().ok())
            .map(migration::ip_key);
        images::ActiveModel {
            original_name: Set(p.original_name.clone()),
            token: Set(name.token.clone()),
            generated_name: Set(name.generated.clone()),
            kind: Set(DEFAULT_TYPE.to_string()),
            content_type: Set(p.processed.format.mime().to_string()),
            path: Set(path),
            size: Set(p.body.len() as i64),
            inserted_at: Set(now),
            updated_at: Set(now),
            width: Set(p.processed.width as i32),
            height: Set(p.processed.height as i32),
            sha256: Set(p.processed.sha256.clone()),
            delete_token_hash: Set(hash_token(&p.delete_token)),
            key_id: Set(p.uploader.key.as_ref().map(|k| k.id)),
            uploader_ip: Set(p.kept_addr.clone()),
            uploader_ip_key: Set(ip_key),
            expires_at: Set(p.uploader.expires_at),
            blurhash: Set(blurhash),
            ..Default::default()
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
        // right now; otherwise the upload is checked alone, and its sizes
        // are left to a job.
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
}

/// The oldest other name of the same bytes, locked (PostgreSQL) until this
/// transaction ends, so that a delete of it waits and then counts this
/// name.
async fn sibling_of(txn: &DatabaseTransaction, sha256: &str) -> Result<Option<images::Model>> {
    let mut query = images::Entity::find()
        .filter(images::Column::Sha256.eq(sha256))
        .order_by_asc(images::Column::Id)
        .limit(1);
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    Ok(query.one(txn).await?)
}

/// Serialises uploads of the same bytes on PostgreSQL until the end of the
/// transaction.
async fn lock_checksum(txn: &DatabaseTransaction, sha256: &str) -> Result<()> {
    if txn.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    txn.execute_raw(sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        [sha256.into()],
    ))
    .await?;
    Ok(())
}

/// What a key has stored, from the totals its images' triggers keep.
async fn key_bytes<C: ConnectionTrait>(conn: &C, key: &KeyInfo) -> Result<u64> {
    let bytes = upload_keys::Entity::find_by_id(key.id)
        .select_only()
        .column(upload_keys::Column::Bytes)
        .into_tuple::<i64>()
        .one(conn)
        .await?;
    Ok(bytes.map_or(0, |b| u64::try_from(b).unwrap_or(0)))
}

/// Refuses `needed` more bytes for a key that would pass its quota: a
/// first, cheap look before anything is written.
async fn check_quota<C: ConnectionTrait>(conn: &C, key: &KeyInfo, needed: u64) -> Result<()> {
    let Some(quota) = key.quota_bytes else {
        return Ok(());
    };
    let quota = u64::try_from(quota).unwrap_or(0);
    let used = key_bytes(conn, key).await?;
    if used + needed > quota {
        return Err(Error::QuotaExceeded {
            used,
            quota,
            needed,
        });
    }
    Ok(())
}

/// Serialises uploads with one key inside their transactions, so that
/// uploads in parallel cannot pass its quota together: on PostgreSQL the
/// key's row is locked; on SQLite this process's writers take turns.
async fn lock_key(txn: &DatabaseTransaction, key: &KeyInfo) -> Result<()> {
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        upload_keys::Entity::find_by_id(key.id)
            .lock_exclusive()
            .one(txn)
            .await?;
    }
    Ok(())
}

/// After the insert, in the same transaction: the key's usage, the new
/// upload of `needed` bytes included, within its quota.
async fn recheck_quota(txn: &DatabaseTransaction, key: &KeyInfo, needed: u64) -> Result<()> {
    let Some(quota) = key.quota_bytes else {
        return Ok(());
    };
    let quota = u64::try_from(quota).unwrap_or(0);
    let with_new = key_bytes(txn, key).await?;
    if with_new > quota {
        return Err(Error::QuotaExceeded {
            used: with_new.saturating_sub(needed),
            quota,
            needed,
        });
    }
    Ok(())
}

/// Tells a decode to stop when the upload waiting for it goes away.
#[derive(Default)]
struct CancelOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
