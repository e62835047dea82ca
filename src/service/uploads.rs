//! An upload request from the outside, as one service: who may send it
//! (admitted before a byte of the body is read: ban, key, rate limit, and
//! the upload memory its body will hold), then its files stored, each on
//! its own, the ones past the first each taking their own place in the
//! rate limit. Drives `Images` (the storing) and `Moderation` (the rules).

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use crate::service::budget::Reservation;
use crate::service::error::{Error, Result};
use crate::service::images::{Images, NewUpload, Uploaded, clean_original_name};
use crate::service::model::Uploader;
use crate::service::moderation::Moderation;

/// Multipart overhead allowed on top of the file itself (boundaries,
/// headers).
pub const FORM_SLACK: u64 = 64 * 1024;

pub struct Uploads {
    images: Arc<Images>,
    moderation: Arc<Moderation>,
    /// `uploads.max_bytes`.
    limit: u64,
}

/// An upload let in, holding its share of the upload memory until it is
/// stored (or refused).
pub struct Admission {
    uploader: Uploader,
    _memory: Reservation,
}

/// One file as the form sent it.
#[derive(Debug, Clone)]
pub struct File {
    pub name: Option<String>,
    pub bytes: Bytes,
}

/// One file's outcome in a request that sent several.
pub struct FileOutcome {
    /// The client's file name as display text only (cleaned as the stored
    /// `original_name` is): it is echoed in answers.
    pub file_name: Option<String>,
    pub result: Result<Uploaded>,
}

/// What storing a request gave.
pub enum Stored {
    One(Box<Uploaded>),
    Many(Vec<FileOutcome>),
}

impl Uploads {
    pub fn new(images: Arc<Images>, moderation: Arc<Moderation>, limit: u64) -> Self {
        Self {
            images,
            moderation,
            limit,
        }
    }

    /// The largest body an upload request may be, its form included.
    pub fn body_limit(&self) -> u64 {
        self.limit + FORM_SLACK
    }

    /// Whether an upload from `addr` with the key `presented`, declaring a
    /// body of `declared` bytes, may be received: not banned, a valid key
    /// where keys are required, within the rate and the size limit, and
    /// with upload memory free for its body (all of the limit when no
    /// length is declared). Refusals are counted.
    pub async fn admit(
        &self,
        addr: Option<IpAddr>,
        presented: Option<&str>,
        declared: Option<u64>,
    ) -> Result<Admission> {
        let admitted = async {
            let uploader = self.moderation.admit_upload(addr, presented).await?;
            // A declared length over the limit is refused before a byte of
            // the body is read.
            if declared.is_some_and(|len| len > self.body_limit()) {
                return Err(self.too_large());
            }
            let share = declared.unwrap_or(self.body_limit()).min(self.body_limit());
            let memory = self.images.reserve_upload_memory(share).await?;
            Ok(Admission {
                uploader,
                _memory: memory,
            })
        };
        admitted.await.map_err(|e| self.images.rejected(e))
    }

    /// The error of a body over the limit.
    pub fn too_large(&self) -> Error {
        Error::TooLarge {
            limit: ubyte::ByteUnit::Byte(self.limit),
        }
    }

    /// Counts an upload refused while its body was read (a malformed form,
    /// one over the limit) and hands the error back.
    pub fn refused(&self, error: Error) -> Error {
        self.images.rejected(error)
    }

    /// Stores the files of an admitted request: one as it always was, or
    /// each of several on its own. `expires_in` is the form's request for
    /// an expiry (`1h`, `7d`, `never`).
    pub async fn store(
        &self,
        admission: Admission,
        files: Vec<File>,
        expires_in: Option<&str>,
    ) -> Result<Stored> {
        let mut uploader = admission.uploader;
        uploader.expires_at = self
            .moderation
            .expiry(expires_in)
            .map_err(|e| self.images.rejected(e))?;
        let several = files.len() > 1;
        let mut files = files.into_iter();
        if !several {
            let file = files
                .next()
                .ok_or_else(|| self.images.rejected(Error::MissingFile))?;
            let uploaded = self.images.upload(new_upload(file, uploader)).await?;
            return Ok(Stored::One(Box::new(uploaded)));
        }
        let mut outcomes = Vec::new();
        for (i, file) in files.enumerate() {
            let file_name = file.name.as_deref().map(|n| clean_original_name(Some(n)));
            // Files past the first each take their own place in the limit.
            let admitted = if i > 0 {
                self.moderation.admit_another(&uploader)
            } else {
                Ok(())
            };
            let result = match admitted {
                Ok(()) => self.images.upload(new_upload(file, uploader.clone())).await,
                Err(e) => Err(self.images.rejected(e)),
            };
            outcomes.push(FileOutcome { file_name, result });
        }
        Ok(Stored::Many(outcomes))
    }
}

fn new_upload(file: File, uploader: Uploader) -> NewUpload {
    NewUpload {
        bytes: file.bytes,
        file_name: file.name,
        uploader,
    }
}
