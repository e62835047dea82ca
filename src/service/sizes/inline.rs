//! Sizes made within an upload, from the pixels its check already decoded.
//! This is an optimisation and never a requirement: anything that goes
//! wrong here (a resize or encode failure, a panic, a storage write) hands
//! the image to a resize job exactly as if the upload had skipped this
//! path, and the upload itself still succeeds.

use std::panic::AssertUnwindSafe;

use sea_orm::{ConnectionTrait, DbErr};

use super::{Sizes, Written};
use crate::db::queue;
use crate::imaging::resize::{Decoded, Rendered, SizeSpec};
use crate::imaging::{Format, ImagingError, Inspection, SizesPlan};

/// The CPU-bound step of inline sizes: every size from decoded pixels.
/// Always `imaging::resize::render_decoded` outside tests, which swap in
/// one that fails or panics to prove the job path takes over.
pub type InlineRender = fn(Decoded, &[SizeSpec], u8) -> Result<Vec<Rendered>, ImagingError>;

/// What the blocking half of an upload needs to make its sizes: moved onto
/// the decoding thread with the pixels.
pub struct InlineMaker {
    render: InlineRender,
    specs: Vec<SizeSpec>,
    jpeg_quality: u8,
}

impl InlineMaker {
    /// Makes every size, or None (logged) when that fails in any way.
    pub fn make(self, pixels: Decoded) -> Option<Vec<Rendered>> {
        let (render, specs, quality) = (self.render, self.specs, self.jpeg_quality);
        match std::panic::catch_unwind(AssertUnwindSafe(|| render(pixels, &specs, quality))) {
            Ok(Ok(rendered)) => Some(rendered),
            Ok(Err(e)) => {
                tracing::warn!(
                    "making the sizes within the upload failed; a resize job will: {}",
                    crate::service::error::chain(&e)
                );
                None
            }
            Err(payload) => {
                tracing::warn!(
                    "the resizer panicked within an upload ({}); a resize job will retry",
                    super::panic_message(&*payload)
                );
                None
            }
        }
    }
}

impl Sizes {
    /// How this upload's check can also yield its sizes' pixels, if the
    /// image is small enough (`variants.inline_max_pixels`).
    pub fn plan(&self, inspection: &Inspection) -> Option<SizesPlan> {
        if self.config.inline_max_pixels == 0 {
            return None;
        }
        inspection.plan_sizes(&self.specs(), self.config.inline_max_pixels)
    }

    pub fn inline_maker(&self) -> InlineMaker {
        InlineMaker {
            render: self.inline_render,
            specs: self.specs(),
            jpeg_quality: self.config.jpeg_quality,
        }
    }

    /// Writes sizes made within an upload beside `original` (its stored
    /// name). None when a write fails: what was written is removed again
    /// and the caller queues a job instead.
    pub(crate) async fn write_inline(
        &self,
        original: &str,
        format: Format,
        rendered: Vec<Rendered>,
    ) -> Option<Vec<Written>> {
        match self.write_all(original, format, rendered, true).await {
            Ok(written) => Some(written),
            Err(e) => {
                tracing::warn!(
                    "storing the sizes made within the upload failed; a resize job will: {}",
                    crate::service::error::chain(&e)
                );
                None
            }
        }
    }

    /// Records sizes written within an upload, and a finished job beside
    /// them so that `kitteh variants` counts the image as done, inside the
    /// upload's transaction.
    pub(crate) async fn record_inline<C: ConnectionTrait>(
        &self,
        conn: &C,
        image_id: i64,
        written: &[Written],
    ) -> Result<(), DbErr> {
        super::insert_rows(conn, image_id, written).await?;
        queue::record_done(conn, image_id).await
    }

    /// Removes sizes written for an upload that was then not recorded.
    pub(crate) async fn remove_written(&self, written: &[Written]) {
        for w in written {
            let _ = self.storage.delete(&w.name).await;
        }
    }
}
