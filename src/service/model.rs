//! What services hand to their callers: plain data, not database rows, so
//! that pages and the API never depend on how a table is laid out.

use chrono::{DateTime, Utc};

use crate::db::entities::{images, upload_keys, variants};
use crate::db::queue::{Job, JobState};
use crate::imaging::resize::target_size;

/// One stored object: its name in storage and the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub(crate) path: String,
    pub sha256: String,
    /// Its size in bytes.
    pub len: u64,
}

/// An uploaded image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub(crate) id: i64,
    /// The name in lower case: what `/img/{token}` takes.
    pub token: String,
    /// The page name, `SublimeDandelionBengalKitty`.
    pub name: String,
    /// The client's file name, as display text only.
    pub original_name: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    /// Size of the stored (cleaned) file.
    pub bytes: i64,
    pub created_at: DateTime<Utc>,
    /// When it is deleted, if it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Painted while it loads, once its sizes are made.
    pub blurhash: Option<String>,
    pub object: StoredObject,
}

/// The display name an upload gets when its client gave no file name.
pub const NO_FILE_NAME: &str = "upload";

impl ImageInfo {
    pub fn sha256(&self) -> &str {
        &self.object.sha256
    }

    /// The uploader's file name, when the client gave one.
    pub fn uploader_file_name(&self) -> Option<&str> {
        Some(self.original_name.as_str()).filter(|n| *n != NO_FILE_NAME)
    }

    /// Whether its time is up (the periodic job may not have removed it yet).
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The file extension of its format (`jpg`), `bin` if unknown.
    pub fn extension(&self) -> &'static str {
        crate::imaging::Format::from_mime(&self.content_type).map_or("bin", |f| f.extension())
    }
}

impl From<images::Model> for ImageInfo {
    fn from(row: images::Model) -> Self {
        Self {
            id: row.id,
            name: format!("{}{}", row.generated_name, row.kind),
            token: row.token,
            original_name: row.original_name,
            content_type: row.content_type,
            width: row.width.max(0) as u32,
            height: row.height.max(0) as u32,
            bytes: row.size,
            created_at: row.inserted_at,
            expires_at: row.expires_at,
            blurhash: row.blurhash,
            object: StoredObject {
                path: row.path,
                sha256: row.sha256,
                len: u64::try_from(row.size).unwrap_or(0),
            },
        }
    }
}

/// Whether a size can be served yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeState {
    Ready,
    /// Not made (yet): the state of the image's resize job.
    Waiting(JobState),
}

impl SizeState {
    /// `ready`, or the job's `pending` / `running` / `done` / `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Waiting(job) => job.as_str(),
        }
    }
}

/// One configured size of one image: made, or the state of its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeInfo {
    /// Lower-case size name (`tiny`).
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub state: SizeState,
    /// Why the job failed, when it did.
    pub error: Option<String>,
    /// Byte size of the made file.
    pub bytes: Option<i64>,
    pub object: Option<StoredObject>,
}

impl SizeInfo {
    /// Each configured size of `image`, from its finished variant rows and
    /// its job: finished sizes with their real dimensions, the others with
    /// the dimensions they will have.
    pub(crate) fn for_image(
        image: &ImageInfo,
        configured: &[crate::config::SizeConfig],
        job: Option<&Job>,
        done: &[variants::Model],
    ) -> Vec<Self> {
        let (w, h) = (image.width.max(1), image.height.max(1));
        configured
            .iter()
            .map(|size| match done.iter().find(|v| v.name == size.name) {
                Some(v) => Self {
                    name: size.name.clone(),
                    width: v.width.max(0) as u32,
                    height: v.height.max(0) as u32,
                    state: SizeState::Ready,
                    error: None,
                    bytes: Some(v.size),
                    object: Some(StoredObject {
                        path: v.path.clone(),
                        sha256: v.sha256.clone(),
                        len: u64::try_from(v.size).unwrap_or(0),
                    }),
                },
                None => {
                    let (width, height) = target_size(w, h, size.width);
                    Self {
                        name: size.name.clone(),
                        width,
                        height,
                        state: SizeState::Waiting(job.map_or(JobState::Pending, |j| j.state)),
                        error: job.and_then(|j| j.last_error.clone()),
                        bytes: None,
                        object: None,
                    }
                }
            })
            .collect()
    }
}

/// An upload key, as the routes and commands see it (never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: i64,
    pub name: String,
    pub admin: bool,
    pub quota_bytes: Option<i64>,
    pub uploads_per_minute: Option<i32>,
}

impl From<upload_keys::Model> for KeyInfo {
    fn from(row: upload_keys::Model) -> Self {
        Self {
            id: row.id,
            name: row.name,
            admin: row.admin,
            quota_bytes: row.quota_bytes,
            uploads_per_minute: row.uploads_per_minute,
        }
    }
}

/// Who is uploading: the key shown (if any) and the client's address.
#[derive(Debug, Clone, Default)]
pub struct Uploader {
    pub key: Option<KeyInfo>,
    pub addr: Option<std::net::IpAddr>,
    /// When the upload is to be deleted, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// The bucket its uploads are counted in, if any.
    pub rate: Option<(crate::service::rate::Subject, crate::service::rate::Limit)>,
}
