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

mod job;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use tokio::sync::Notify;

use crate::config::{SizeConfig, VariantsConfig};
use crate::db::entities::images;
use crate::db::queue::{self, JobState};
use crate::imaging::resize::SizeSpec;
use crate::imaging::{self, Format, ImagingError};
use crate::metrics::Metrics;
use crate::service::budget::Decoding;
use crate::service::cache::ImageCache;
use crate::service::error::{Error, Result};
use crate::storage::Storage;

pub use job::{JobError, Render};

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
        }
    }

    /// As `new`, with another CPU-bound step (for tests of its failures).
    pub fn with_render(mut self, render: Render) -> Self {
        self.render = render;
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
    pub async fn requeue(&self, which: Requeue<'_>) -> Result<usize> {
        let ids: Vec<i64> = match which {
            Requeue::All => images::Entity::find()
                .order_by_asc(images::Column::Id)
                .all(&self.db)
                .await?
                .into_iter()
                .map(|i| i.id)
                .collect(),
            Requeue::Failed => queue::images_in_state(&self.db, JobState::Failed).await?,
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
            queue::enqueue(&self.db, *id).await?;
        }
        self.wake.notify_waiters();
        Ok(ids.len())
    }

    /// Job counts by state, for `kitteh variants status` and metrics.
    pub async fn counts(&self) -> Result<BTreeMap<JobState, i64>> {
        Ok(queue::counts(&self.db).await?)
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
