//! Durable background resizing. Each image has one job row; workers claim
//! jobs with a single atomic UPDATE that takes a lease (on PostgreSQL with
//! `FOR UPDATE SKIP LOCKED`, so replicas never wait on each other), keep the
//! lease alive with heartbeats while they work, and finish or fail the job
//! only while they still hold it. A worker that dies (kill -9, a crash, a
//! lost machine) simply stops heartbeating: once its lease runs out another
//! worker takes the job over, and the attempt counter says how often that
//! happened.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, Set, Statement, TransactionTrait, Value,
};
use tokio::sync::{Notify, watch};

use crate::config::VariantsConfig;
use crate::db::entities::{images, variant_jobs, variants};
use crate::error::{Error, Result};
use crate::imaging::variants::{SizeSpec, render};
use crate::imaging::{self, Format, Limits};
use crate::metrics::Metrics;
use crate::service::cache::ImageCache;
use crate::storage::Storage;

pub const PENDING: &str = "pending";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";

/// Which jobs `requeue` puts back.
#[derive(Debug, Clone, Copy)]
pub enum Requeue<'a> {
    All,
    Failed,
    Token(&'a str),
}

/// A job a worker holds: the attempt number fences its writes, so a worker
/// whose lease was taken over cannot overwrite the new holder's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub job_id: i64,
    pub image_id: i64,
    pub attempt: i32,
}

/// The queue, the settings, and the means to wake local workers.
pub struct Variants {
    pub db: DatabaseConnection,
    pub storage: Storage,
    pub config: VariantsConfig,
    pub limits: Limits,
    pub metrics: Arc<Metrics>,
    pub cache: Arc<ImageCache>,
    /// Woken on every local upload, so a job starts at once rather than at
    /// the next poll.
    pub wake: Notify,
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn sql(backend: DbBackend, text: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(backend, text, values)
}

impl Variants {
    pub fn new(
        db: DatabaseConnection,
        storage: Storage,
        config: VariantsConfig,
        limits: Limits,
        metrics: Arc<Metrics>,
        cache: Arc<ImageCache>,
    ) -> Self {
        Self {
            db,
            storage,
            config,
            limits,
            metrics,
            cache,
            wake: Notify::new(),
        }
    }

    pub fn sizes(&self) -> Vec<SizeSpec> {
        self.config
            .sizes
            .iter()
            .map(|s| SizeSpec {
                name: s.name.clone(),
                width: s.width,
            })
            .collect()
    }

    fn lease(&self) -> i64 {
        (self.config.lease_seconds as i64).saturating_mul(1000)
    }

    /// The file names the configured sizes of an original have.
    pub fn file_names(&self, original: &str) -> Vec<String> {
        self.config
            .sizes
            .iter()
            .map(|s| variant_file_name(original, &s.name))
            .collect()
    }

    /// Marks jobs whose holder vanished on their last allowed attempt as
    /// failed, then claims the oldest claimable job, if any.
    pub async fn claim(&self) -> Result<Option<Claim>> {
        let backend = self.db.get_database_backend();
        let now = now_ms();
        let max = self.config.max_attempts as i32;
        let expire = match backend {
            DbBackend::Postgres => {
                "UPDATE variant_jobs SET state = 'failed', lease_until = NULL, \
                 last_error = 'the worker stopped responding on the last attempt (lease expired)' \
                 WHERE state = 'running' AND lease_until < $1 AND attempts >= $2"
            }
            _ => {
                "UPDATE variant_jobs SET state = 'failed', lease_until = NULL, \
                 last_error = 'the worker stopped responding on the last attempt (lease expired)' \
                 WHERE state = 'running' AND lease_until < ?1 AND attempts >= ?2"
            }
        };
        self.db
            .execute_raw(sql(backend, expire, vec![now.into(), max.into()]))
            .await?;

        let claim = match backend {
            DbBackend::Postgres => {
                "UPDATE variant_jobs SET state = 'running', attempts = attempts + 1, \
                 lease_until = $1, updated_at = now() \
                 WHERE id = (SELECT id FROM variant_jobs \
                   WHERE (state = 'pending' OR (state = 'running' AND lease_until < $2)) \
                   AND attempts < $3 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, image_id, attempts"
            }
            // SQLite runs one writer at a time, so the subquery and the
            // update cannot interleave with another claim.
            _ => {
                "UPDATE variant_jobs SET state = 'running', attempts = attempts + 1, \
                 lease_until = ?1, updated_at = CURRENT_TIMESTAMP \
                 WHERE id = (SELECT id FROM variant_jobs \
                   WHERE (state = 'pending' OR (state = 'running' AND lease_until < ?2)) \
                   AND attempts < ?3 ORDER BY id LIMIT 1) \
                 RETURNING id, image_id, attempts"
            }
        };
        let row = self
            .db
            .query_one_raw(sql(
                backend,
                claim,
                vec![(now + self.lease()).into(), now.into(), max.into()],
            ))
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Claim {
            job_id: row.try_get("", "id")?,
            image_id: row.try_get("", "image_id")?,
            attempt: row.try_get("", "attempts")?,
        }))
    }

    /// Extends the lease; false when the job is no longer ours.
    pub async fn heartbeat(&self, claim: Claim) -> Result<bool> {
        let res = variant_jobs::Entity::update_many()
            .col_expr(
                variant_jobs::Column::LeaseUntil,
                sea_orm::sea_query::Expr::value(now_ms() + self.lease()),
            )
            .filter(variant_jobs::Column::Id.eq(claim.job_id))
            .filter(variant_jobs::Column::State.eq(RUNNING))
            .filter(variant_jobs::Column::Attempts.eq(claim.attempt))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Records a failed attempt: back to pending, or failed for good once
    /// the attempts are used up. The error is kept either way.
    pub async fn fail(&self, claim: Claim, error: &str) -> Result<()> {
        let state = if claim.attempt >= self.config.max_attempts as i32 {
            FAILED
        } else {
            PENDING
        };
        let error: String = error.chars().take(2000).collect();
        Self::settle(&self.db, claim, state, Some(error)).await?;
        Ok(())
    }

    /// Moves a job we hold out of `running`, releasing its lease. Fenced by
    /// the attempt number: returns 0 rows when the job is no longer ours.
    async fn settle<C: ConnectionTrait>(
        conn: &C,
        claim: Claim,
        state: &str,
        error: Option<String>,
    ) -> Result<u64> {
        use sea_orm::sea_query::Expr;
        let res = variant_jobs::Entity::update_many()
            .col_expr(variant_jobs::Column::State, Expr::value(state))
            .col_expr(variant_jobs::Column::LastError, Expr::value(error))
            .col_expr(
                variant_jobs::Column::LeaseUntil,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(variant_jobs::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(variant_jobs::Column::Id.eq(claim.job_id))
            .filter(variant_jobs::Column::State.eq(RUNNING))
            .filter(variant_jobs::Column::Attempts.eq(claim.attempt))
            .exec(conn)
            .await?;
        Ok(res.rows_affected)
    }

    /// Does one claimed job: decode, resize, write the files, then record
    /// the variants and mark the job done in one transaction, provided the
    /// job is still ours.
    pub async fn run(self: &Arc<Self>, claim: Claim) -> Result<()> {
        let Some(image) = images::Entity::find_by_id(claim.image_id)
            .one(&self.db)
            .await?
        else {
            // Deleted since it was queued; the cascade removed the job too.
            return Ok(());
        };
        if self.config.work_delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.config.work_delay_ms)).await;
        }
        let format = Format::from_mime(&image.content_type).ok_or_else(|| {
            Error::internal(format!("unknown content type {}", image.content_type))
        })?;
        let path = image.path.clone();
        let sizes = self.sizes();
        let original = self
            .storage
            .get(&path)
            .await
            .map_err(|e| Error::Internal(format!("reading the original: {e}")))?;
        let this = Arc::clone(self);
        let rendered = tokio::task::spawn_blocking(move || {
            render(
                &original,
                format,
                &sizes,
                this.config.jpeg_quality,
                &this.limits,
            )
            .map_err(|e| e.to_string())
        })
        .await;
        let rendered = match rendered {
            Ok(Ok(rendered)) => rendered,
            Ok(Err(message)) => return Err(Error::Internal(message)),
            Err(e) if e.is_panic() => {
                return Err(Error::Internal("the resizer panicked".into()));
            }
            Err(e) => return Err(Error::internal(e)),
        };
        // Sizes are derived, so a rewrite replaces them whole; each object
        // appears atomically on either backend.
        let mut written = Vec::with_capacity(rendered.len());
        for r in rendered {
            let name = variant_file_name(&path, &r.name);
            let bytes = bytes::Bytes::from(r.bytes);
            let sha256 = imaging::sha256_hex(&bytes);
            self.storage
                .put(&name, bytes.clone(), format.mime())
                .await
                .map_err(|e| Error::Internal(format!("writing {name}: {e}")))?;
            written.push((r.name, r.width, r.height, bytes.len(), name, sha256));
            if self.config.write_delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(self.config.write_delay_ms)).await;
            }
        }

        let txn = self.db.begin().await?;
        let done = Self::settle(&txn, claim, DONE, None).await?;
        if done != 1 {
            txn.rollback().await?;
            // Either the image was deleted while we worked (then our files
            // belong to nothing and go now), or our lease was taken over
            // (then the new holder writes the same names and records them).
            let image_gone = images::Entity::find_by_id(image.id)
                .one(&self.db)
                .await?
                .is_none();
            if image_gone {
                for (.., name, _) in &written {
                    let _ = self.storage.delete(name).await;
                }
            }
            return Ok(());
        }
        let old: Vec<variants::Model> = variants::Entity::find()
            .filter(variants::Column::ImageId.eq(image.id))
            .all(&txn)
            .await?;
        variants::Entity::delete_many()
            .filter(variants::Column::ImageId.eq(image.id))
            .exec(&txn)
            .await?;
        let now = Utc::now();
        for (size_name, width, height, len, name, sha256) in &written {
            variants::ActiveModel {
                image_id: Set(image.id),
                name: Set(size_name.clone()),
                width: Set(*width as i32),
                height: Set(*height as i32),
                path: Set(name.clone()),
                size: Set(*len as i64),
                sha256: Set(sha256.clone()),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(&txn)
            .await?;
        }
        txn.commit().await?;
        // Pages and size URLs must see the new sizes now, not after a TTL.
        self.cache.announce(&self.db, &image.token).await;
        // Sizes dropped from the configuration leave their files behind.
        for stale in old
            .iter()
            .filter(|o| !written.iter().any(|(.., n, _)| *n == o.path))
        {
            let _ = self.storage.delete(&stale.path).await;
        }
        tracing::info!(token = %image.token, attempt = claim.attempt, sizes = written.len(), "variants done");
        Ok(())
    }

    /// Queues (or re-queues) the job of one image.
    pub async fn enqueue<C: ConnectionTrait>(db: &C, image_id: i64) -> Result<()> {
        let now = Utc::now();
        let existing = variant_jobs::Entity::find()
            .filter(variant_jobs::Column::ImageId.eq(image_id))
            .one(db)
            .await?;
        match existing {
            Some(job) => {
                let mut job: variant_jobs::ActiveModel = job.into();
                job.state = Set(PENDING.into());
                job.attempts = Set(0);
                job.last_error = Set(None);
                job.lease_until = Set(None);
                job.updated_at = Set(now);
                job.update(db).await?;
            }
            None => {
                variant_jobs::ActiveModel {
                    image_id: Set(image_id),
                    state: Set(PENDING.into()),
                    attempts: Set(0),
                    last_error: Set(None),
                    lease_until: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(db)
                .await?;
            }
        }
        Ok(())
    }

    /// Puts jobs back in the queue with fresh attempts. Returns how many.
    pub async fn requeue(&self, which: Requeue<'_>) -> Result<usize> {
        let ids: Vec<i64> = match which {
            Requeue::All => images::Entity::find()
                .order_by_asc(images::Column::Id)
                .all(&self.db)
                .await?
                .into_iter()
                .map(|i| i.id)
                .collect(),
            Requeue::Failed => variant_jobs::Entity::find()
                .filter(variant_jobs::Column::State.eq(FAILED))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|j| j.image_id)
                .collect(),
            Requeue::Token(token) => {
                let image = images::Entity::find()
                    .filter(images::Column::Token.eq(token.to_ascii_lowercase()))
                    .one(&self.db)
                    .await?
                    .ok_or_else(|| Error::NotFound(token.to_string()))?;
                vec![image.id]
            }
        };
        for id in &ids {
            Self::enqueue(&self.db, *id).await?;
        }
        self.wake.notify_waiters();
        Ok(ids.len())
    }

    /// Job counts by state, for `kitteh variants status` and metrics.
    pub async fn counts(&self) -> Result<BTreeMap<String, i64>> {
        let backend = self.db.get_database_backend();
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT state, COUNT(*) AS n FROM variant_jobs GROUP BY state",
            ))
            .await?;
        let mut counts: BTreeMap<String, i64> = [PENDING, RUNNING, DONE, FAILED]
            .iter()
            .map(|s| (s.to_string(), 0))
            .collect();
        for row in rows {
            let state: String = row.try_get("", "state")?;
            let n: i64 = row.try_get("", "n")?;
            counts.insert(state, n);
        }
        Ok(counts)
    }

    /// The job and finished variants of one image.
    pub async fn of_image(
        &self,
        image_id: i64,
    ) -> Result<(Option<variant_jobs::Model>, Vec<variants::Model>)> {
        let job = variant_jobs::Entity::find()
            .filter(variant_jobs::Column::ImageId.eq(image_id))
            .one(&self.db)
            .await?;
        let done = variants::Entity::find()
            .filter(variants::Column::ImageId.eq(image_id))
            .order_by_asc(variants::Column::Width)
            .all(&self.db)
            .await?;
        Ok((job, done))
    }

    /// Claims and runs one job, recording a failure as such. Returns whether
    /// there was a job.
    pub async fn work_once(self: &Arc<Self>) -> Result<bool> {
        let Some(claim) = self.claim().await? else {
            return Ok(false);
        };
        let _heart = {
            let this = Arc::clone(self);
            let every = Duration::from_millis((this.lease() / 3).max(100) as u64);
            AbortOnDrop(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    match this.heartbeat(claim).await {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => tracing::warn!("heartbeat failed: {e}"),
                    }
                }
            }))
        };
        let started = std::time::Instant::now();
        let outcome = self.run(claim).await;
        self.metrics
            .variant_jobs_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = outcome {
            let message = match &e {
                Error::Internal(m) => m.clone(),
                other => other.to_string(),
            };
            tracing::warn!(job = claim.job_id, attempt = claim.attempt, error = %message, "variant job failed");
            self.fail(claim, &message).await?;
        }
        Ok(true)
    }

    /// Starts `n` workers that run until `stop` turns true. A worker never
    /// takes a new job after that; a job it is running is left to its lease
    /// and picked up again later.
    pub fn spawn_workers(self: &Arc<Self>, n: usize, stop: watch::Receiver<bool>) {
        for id in 0..n {
            let this = Arc::clone(self);
            let mut stop = stop.clone();
            tokio::spawn(async move {
                let poll = Duration::from_millis(this.config.poll_interval_ms.max(10));
                loop {
                    if *stop.borrow() {
                        break;
                    }
                    let worked = tokio::select! {
                        r = this.work_once() => r,
                        _ = stop.changed() => break,
                    };
                    match worked {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(e) => tracing::warn!(worker = id, "variant worker error: {e}"),
                    }
                    tokio::select! {
                        _ = this.wake.notified() => {}
                        _ = tokio::time::sleep(poll) => {}
                        _ = stop.changed() => break,
                    }
                }
                tracing::debug!(worker = id, "variant worker stopped");
            });
        }
    }
}

/// Stops the heartbeat however the job ends, including when a shutdown
/// drops the job's future midway.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `sublimedandelionbengal.jpg` + `tiny` → `sublimedandelionbengal-tiny.jpg`:
/// a variant keeps its original's format.
pub fn variant_file_name(original: &str, size: &str) -> String {
    match original.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}-{size}.{ext}"),
        None => format!("{original}-{size}"),
    }
}
