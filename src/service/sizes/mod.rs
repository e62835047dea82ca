//! Durable background resizing, in three layers the way pict-rs splits its
//! queue: where jobs live (`db::queue`, every statement), what one job does
//! (`job`: decode, resize, store, record), and the runtime around jobs
//! (`worker`: claim loop, heartbeats, leases, shutdown).
//!
//! Each image has one job row. A worker claims a job with one atomic UPDATE
//! that takes a lease, keeps the lease alive with heartbeats while it works,
//! and finishes or fails the job only while it still holds it. A worker
//! that dies (kill -9, a crash, a lost machine) simply stops heartbeating:
//! once its lease runs out another worker takes the job over, and the
//! attempt counter says how often that happened.

mod inline;
mod job;
mod shared;
pub(crate) use shared::names_sharing;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use tokio::sync::Notify;

use crate::config::{SizeConfig, VariantsConfig};
use crate::db::entities::{images, variants};
use crate::db::queue::{self, JobState};
use crate::imaging::resize::{Rendered, SizeSpec};
use crate::imaging::{self, Format, ImagingError};
use crate::metrics::Metrics;
use crate::service::budget::Decoding;
use crate::service::cache::ImageCache;
use crate::service::error::{Error, Result};
use crate::storage::Storage;

pub use inline::{InlineMaker, InlineRender};
pub use job::{JobError, Render};

/// Images queued again per write transaction by `requeue`.
const REQUEUE_PAGE: u64 = 500;

/// Which jobs `requeue` puts back.
#[derive(Debug, Clone, Copy)]
pub enum Requeue<'a> {
    All,
    Failed,
    Token(&'a str),
}

/// The resize queue, its settings, and the means to wake local workers.
pub struct Sizes {
    db: DatabaseConnection,
    storage: Storage,
    config: VariantsConfig,
    decoding: Decoding,
    metrics: Arc<Metrics>,
    cache: Arc<ImageCache>,
    /// Woken on every local upload, so a job starts at once rather than at
    /// the next poll.
    wake: Notify,
    /// The CPU-bound step of a job. Always the imaging pipeline's resizer
    /// outside tests, which swap in one that panics to prove that a crash
    /// in it fails the job and nothing else.
    render: Render,
    /// The CPU-bound step of sizes made within an upload; swapped the same
    /// way to prove that its failures fall back to a job.
    inline_render: InlineRender,
}

impl Sizes {
    pub fn new(
        db: DatabaseConnection,
        storage: Storage,
        config: VariantsConfig,
        decoding: Decoding,
        metrics: Arc<Metrics>,
        cache: Arc<ImageCache>,
    ) -> Self {
        Self {
            db,
            storage,
            config,
            decoding,
            metrics,
            cache,
            wake: Notify::new(),
            render: crate::imaging::resize::render,
            inline_render: crate::imaging::resize::render_decoded,
        }
    }

    /// As `new`, with another CPU-bound step (for tests of its failures).
    pub fn with_render(mut self, render: Render) -> Self {
        self.render = render;
        self
    }

    /// As `new`, with another CPU-bound step for sizes made within an
    /// upload (for tests of its failures).
    pub fn with_inline_render(mut self, render: InlineRender) -> Self {
        self.inline_render = render;
        self
    }

    /// The configured sizes, by name and width.
    pub fn configured(&self) -> &[SizeConfig] {
        &self.config.sizes
    }

    /// Bytes a resize job for this original will reserve: an upload whose
    /// sizes could never fit the decode budget is refused up front rather
    /// than accepted with sizes that never come.
    pub fn job_cost(&self, original: &[u8], format: Format) -> Result<u64, ImagingError> {
        imaging::resize::decode_cost(original, format, &self.specs(), &self.decoding.limits)
    }

    /// The width of the widest configured size (1 when there is none).
    pub fn largest_width(&self) -> u32 {
        self.config.sizes.iter().map(|s| s.width).max().unwrap_or(1)
    }

    fn specs(&self) -> Vec<SizeSpec> {
        self.config
            .sizes
            .iter()
            .map(|s| SizeSpec {
                name: s.name.clone(),
                width: s.width,
            })
            .collect()
    }

    /// The file names the configured sizes of an original have.
    pub fn file_names(&self, original: &str) -> Vec<String> {
        self.config
            .sizes
            .iter()
            .map(|s| variant_file_name(original, &s.name))
            .collect()
    }

    /// Wakes one local worker: a job was just queued here.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Puts jobs back in the queue with fresh attempts. Returns how many.
    /// Every image (or every failed one) is walked by id a page at a time,
    /// each page queued in one write transaction.
    pub async fn requeue(&self, which: Requeue<'_>) -> Result<usize> {
        if let Requeue::Token(token) = which {
            let image = images::Entity::find()
                .filter(images::Column::Token.eq(token.to_ascii_lowercase()))
                .one(&self.db)
                .await?
                .ok_or_else(|| Error::NotFound(token.to_string()))?;
            queue::enqueue(&self.db, image.id).await?;
            self.wake.notify_waiters();
            return Ok(1);
        }
        let mut queued = 0;
        let mut after = 0;
        loop {
            let ids: Vec<i64> = match which {
                Requeue::Failed => {
                    queue::images_in_state_after(&self.db, JobState::Failed, after, REQUEUE_PAGE)
                        .await?
                }
                _ => {
                    images::Entity::find()
                        .select_only()
                        .column(images::Column::Id)
                        .filter(images::Column::Id.gt(after))
                        .order_by_asc(images::Column::Id)
                        .limit(REQUEUE_PAGE)
                        .into_tuple()
                        .all(&self.db)
                        .await?
                }
            };
            let Some(last) = ids.last().copied() else {
                break;
            };
            let txn = crate::db::begin_write(&self.db).await?;
            for id in &ids {
                queue::enqueue(&*txn, *id).await?;
            }
            txn.commit().await?;
            queued += ids.len();
            after = last;
            self.wake.notify_waiters();
        }
        Ok(queued)
    }

    /// Job counts by state, for `kitteh variants status` and metrics.
    pub async fn counts(&self) -> Result<BTreeMap<JobState, i64>> {
        Ok(queue::counts(&self.db).await?)
    }
}

/// What a panic said, when it said it with a string.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// A size written to storage, not yet recorded.
pub(crate) struct Written {
    size: String,
    width: u32,
    height: u32,
    bytes: usize,
    name: String,
    sha256: String,
}

/// A size that could not be written, and why.
#[derive(Debug, thiserror::Error)]
#[error("writing {name}")]
pub(crate) struct WriteError {
    name: String,
    #[source]
    source: std::io::Error,
}

impl Sizes {
    /// Stores every rendered size beside `original` (its stored name).
    /// With `fresh` (an upload's first sizes, whose names nothing else can
    /// hold), a failed write removes the sizes already written; a job
    /// leaves them, because it overwrites sizes that rows may point to.
    async fn write_all(
        &self,
        original: &str,
        format: Format,
        rendered: Vec<Rendered>,
        fresh: bool,
    ) -> Result<Vec<Written>, WriteError> {
        let mut written: Vec<Written> = Vec::with_capacity(rendered.len());
        for r in rendered {
            let name = variant_file_name(original, &r.name);
            let bytes = bytes::Bytes::from(r.bytes);
            let sha256 = imaging::sha256_hex(&bytes);
            if let Err(source) = self.storage.put(&name, bytes.clone(), format.mime()).await {
                if fresh {
                    // A write that failed half-way may still have landed.
                    let _ = self.storage.delete(&name).await;
                    for w in &written {
                        let _ = self.storage.delete(&w.name).await;
                    }
                }
                return Err(WriteError { name, source });
            }
            written.push(Written {
                size: r.name,
                width: r.width,
                height: r.height,
                bytes: bytes.len(),
                name,
                sha256,
            });
            if self.config.write_delay_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(self.config.write_delay_ms))
                    .await;
            }
        }
        Ok(written)
    }
}

/// Inserts the variant rows of written sizes (the caller has removed any
/// older ones).
async fn insert_rows<C: ConnectionTrait>(
    conn: &C,
    image_id: i64,
    written: &[Written],
) -> Result<(), DbErr> {
    let now = Utc::now();
    for w in written {
        variants::ActiveModel {
            image_id: Set(image_id),
            name: Set(w.size.clone()),
            width: Set(w.width as i32),
            height: Set(w.height as i32),
            path: Set(w.name.clone()),
            size: Set(w.bytes as i64),
            sha256: Set(w.sha256.clone()),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(conn)
        .await?;
    }
    Ok(())
}

/// `sublimedandelionbengal.jpg` + `tiny` → `sublimedandelionbengal-tiny.jpg`:
/// a variant keeps its original's format.
pub fn variant_file_name(original: &str, size: &str) -> String {
    match original.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}-{size}.{ext}"),
        None => format!("{original}-{size}"),
    }
}
