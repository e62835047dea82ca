//! One resize job: read the original, make every size on a blocking thread,
//! store each, then record the sizes and mark the job done in one
//! transaction, provided the job is still ours.

use std::io;
use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter, TransactionTrait};

use super::{Sizes, Written};
use crate::db::entities::{images, variants};
use crate::db::queue::{self, Claim, JobState};
use crate::imaging::resize::{Rendered, SizeSpec};
use crate::imaging::{self, Format, ImagingError, Limits, Stop};

/// The CPU-bound step: every size of an original, encoded. The job runs it
/// on the blocking pool and turns a panic inside it into a failed attempt.
pub type Render =
    fn(&[u8], Format, &[SizeSpec], u8, &Limits, &Stop) -> Result<Vec<Rendered>, ImagingError>;

/// Why an attempt failed; recorded on the job with its causes.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("the original has a content type no decoder reads: {0}")]
    UnknownType(String),
    #[error("reading the original {name}")]
    Read {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("making the sizes")]
    Render(#[source] ImagingError),
    #[error("the resizer panicked: {0}")]
    Panicked(String),
    #[error("writing {name}")]
    Write {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("reserving decode memory")]
    Memory(#[source] crate::service::budget::BudgetError),
    #[error("database")]
    Database(#[from] DbErr),
    #[error("the resize task was lost")]
    Task(#[source] tokio::task::JoinError),
}

impl Sizes {
    /// Does one claimed job. An `Ok` means the job needs nothing more from
    /// this worker: done, or no longer ours, or its image is gone.
    pub(super) async fn run(&self, claim: Claim) -> Result<(), JobError> {
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
        // Bytes stored once for several names: another name may have its
        // sizes made already, and they are this one's too.
        if let Some(sibling) = self
            .sibling_with_sizes(&self.db, image.id, &image.path)
            .await?
        {
            let txn = self.db.begin().await?;
            if queue::settle(&txn, claim, JobState::Done, None).await?
                // The claim is settled above: the job's row is done.
                && self.share(&txn, image.id, sibling, false).await?
            {
                let blurhash = images::Entity::find_by_id(sibling)
                    .one(&txn)
                    .await?
                    .and_then(|s| s.blurhash);
                images::Entity::update_many()
                    .col_expr(images::Column::Blurhash, Expr::value(blurhash))
                    .filter(images::Column::Id.eq(image.id))
                    .exec(&txn)
                    .await?;
                txn.commit().await?;
                self.cache.announce(&self.db, &image.token).await;
                tracing::info!(token = %image.token, "sizes shared with a name of the same bytes");
                return Ok(());
            }
            txn.rollback().await?;
        }
        let format = Format::from_mime(&image.content_type)
            .ok_or_else(|| JobError::UnknownType(image.content_type.clone()))?;
        let original = self
            .storage
            .get(&image.path)
            .await
            .map_err(|source| JobError::Read {
                name: image.path.clone(),
                source,
            })?;
        // The decode's memory comes out of the budget uploads share; a job
        // waits for it as long as it takes.
        let cost =
            imaging::resize::decode_cost(&original, format, &self.specs(), &self.decoding.limits)
                .map_err(JobError::Render)?;
        let reservation = self
            .decoding
            .budget
            .reserve_for_job(cost)
            .await
            .map_err(JobError::Memory)?;
        let (rendered, blurhash) = self.render(original, format).await?;
        drop(reservation);

        // Sizes are derived, so a rewrite replaces them whole; each object
        // appears atomically on either backend.
        let written = self
            .write_all(&image.path, format, rendered, false)
            .await
            .map_err(|e| JobError::Write {
                name: e.name,
                source: e.source,
            })?;
        self.record(claim, &image, &written, blurhash).await
    }

    /// Runs the CPU-bound step on the blocking pool; a panic in it is a
    /// failed attempt, not a lost worker.
    async fn render(
        &self,
        original: bytes::Bytes,
        format: Format,
    ) -> Result<(Vec<Rendered>, Option<String>), JobError> {
        let (render, sizes, quality, limits) = (
            self.render,
            self.specs(),
            self.config.jpeg_quality,
            self.decoding.limits,
        );
        // The same wall-clock limit as an upload's decode: an original that
        // passed its upload's check should never come near it.
        let stop = Stop::new(
            std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
            self.decoding.timeout,
        );
        match tokio::task::spawn_blocking(move || {
            render(&original, format, &sizes, quality, &limits, &stop).map(|rendered| {
                let blurhash = imaging::resize::blurhash_of(&rendered);
                (rendered, blurhash)
            })
        })
        .await
        {
            Ok(Ok(made)) => Ok(made),
            Ok(Err(e)) => Err(JobError::Render(e)),
            Err(e) if e.is_panic() => {
                Err(JobError::Panicked(super::panic_message(&*e.into_panic())))
            }
            Err(e) => Err(JobError::Task(e)),
        }
    }

    /// Records the written sizes and marks the job done in one transaction,
    /// only while the job is still ours.
    async fn record(
        &self,
        claim: Claim,
        image: &images::Model,
        written: &[Written],
        blurhash: Option<String>,
    ) -> Result<(), JobError> {
        let txn = self.db.begin().await?;
        if !queue::settle(&txn, claim, JobState::Done, None).await? {
            txn.rollback().await?;
            // Either the image was deleted while we worked (then our files
            // belong to nothing and go now), or our lease was taken over
            // (then the new holder writes the same names and records them).
            let image_gone = images::Entity::find_by_id(image.id)
                .one(&self.db)
                .await?
                .is_none();
            // Files shared with another name of the same bytes stay.
            if image_gone && super::names_sharing(&self.db, &image.path).await? == 0 {
                for w in written {
                    let _ = self.storage.delete(&w.name).await;
                }
            }
            tracing::info!(token = %image.token, attempt = claim.attempt, image_gone, "job no longer ours; nothing recorded");
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
        super::insert_rows(&txn, image.id, written).await?;
        images::Entity::update_many()
            .col_expr(images::Column::Blurhash, Expr::value(blurhash))
            .filter(images::Column::Id.eq(image.id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        // Pages and size URLs must see the new sizes now, not after a TTL.
        self.cache.announce(&self.db, &image.token).await;
        // Sizes dropped from the configuration leave their files behind.
        for stale in old
            .iter()
            .filter(|o| !written.iter().any(|w| w.name == o.path))
        {
            let _ = self.storage.delete(&stale.path).await;
        }
        tracing::info!(token = %image.token, attempt = claim.attempt, sizes = written.len(), "variants done");
        Ok(())
    }
}
