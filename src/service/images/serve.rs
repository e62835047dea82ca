//! Which object answers `/img/…`, and its bytes: from memory when hot, else
//! streamed from storage.

use std::sync::Arc;

use chrono::Utc;

use super::Images;
use crate::names::capitalise;
use crate::service::cache::PinnedBytes;
use crate::service::error::{Error, Result};
use crate::service::model::{ImageInfo, StoredObject};

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
}

/// Whether an object (`{token}.ext`, `{token}-{size}.ext`) is named after
/// this token.
fn stored_under(path: &str, token: &str) -> bool {
    path.strip_prefix(token)
        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-'))
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
