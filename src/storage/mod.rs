//! Where image bytes live. One interface, [`Store`], with two
//! implementations: a local folder (the embedded default) and an
//! S3-compatible bucket (for several replicas). Callers hold a [`Storage`]
//! and never learn which one is behind it.
//!
//! Objects are named from tokens and detected formats only
//! (`sublimedandelionbengal.jpg`, `sublimedandelionbengal-tiny.jpg`), never
//! from anything a client sent, and every name is checked all the same.

mod local;
mod s3;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use crate::config::{StorageBackend, StorageConfig};

pub use local::LocalStore;
pub use s3::S3Store;

/// Part of an object, read in chunks as the stream is polled: a reader
/// that stops reading holds one chunk, not the object.
pub type ByteStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = io::Result<Bytes>> + Send>>;

/// A listing of objects, read as it is polled.
pub type EntryStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = io::Result<Entry>> + Send>>;

/// The size of the chunks a [`ByteStream`] yields.
pub const CHUNK: usize = 64 * 1024;

/// One stored object, as listings report it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// What every backend can do. Writes are all-or-nothing: a reader sees the
/// old object, the new one, or none, never part of one.
#[async_trait::async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// `local folder /data/uploads`, `s3 bucket kitteh at http://garage:3900`.
    fn describe(&self) -> String;

    /// Stores `bytes` under `name`, replacing any object of that name.
    async fn put(&self, name: &str, bytes: Bytes, content_type: &str) -> io::Result<()>;

    /// The whole object. Objects are bounded by the upload limit, so this
    /// holds at most one upload's worth of memory. A missing object is an
    /// error of kind `NotFound`.
    async fn get(&self, name: &str) -> io::Result<Bytes>;

    /// Bytes `first..=last` of an object (all of it when `range` is None),
    /// as a stream read on demand. A missing object is an error of kind
    /// `NotFound` (when the stream is opened).
    async fn get_stream(&self, name: &str, range: Option<(u64, u64)>) -> io::Result<ByteStream>;

    /// The size of an object, or `None` when there is none.
    async fn head(&self, name: &str) -> io::Result<Option<u64>>;

    /// Removes an object; one already gone is not an error.
    async fn delete(&self, name: &str) -> io::Result<()>;

    /// Every object, including leftovers of interrupted writes, but not
    /// what is in the trash: a stream read a page at a time, in no
    /// particular order, so that a listing of millions costs a page of
    /// memory.
    fn list_stream(&self) -> EntryStream;

    /// Every object, gathered: for small stores and tests. The sweep and
    /// fsck use `list_stream`.
    async fn list(&self) -> io::Result<Vec<Entry>> {
        use futures_util::TryStreamExt as _;
        self.list_stream().try_collect().await
    }

    /// Moves an object into the trash, named so as to record when; it is
    /// no longer listed or served, and can be restored until
    /// `empty_trash` removes it.
    async fn trash(&self, name: &str) -> io::Result<()>;

    /// What is in the trash: each object's own name and when it was
    /// trashed (as `modified`).
    async fn list_trash(&self) -> io::Result<Vec<Entry>>;

    /// Moves a trashed object back under its own name.
    async fn restore(&self, name: &str) -> io::Result<()>;

    /// Removes for good what was trashed before `cutoff`. Returns how many.
    async fn empty_trash(&self, cutoff: SystemTime) -> io::Result<usize>;

    /// The installation identity this storage carries, if any. Kept beside
    /// the objects, never listed among them.
    async fn read_marker(&self) -> io::Result<Option<String>>;

    /// Records the installation identity this storage belongs to.
    async fn write_marker(&self, id: &str) -> io::Result<()>;

    /// Proves the backend accepts writes: writes, reads back and removes a
    /// probe object.
    async fn check_writable(&self) -> io::Result<()>;

    /// Where clients can fetch an object directly (a bucket's public
    /// website or a CDN), when one is configured.
    fn public_url(&self, _name: &str) -> Option<String> {
        None
    }
}

/// A shared handle on the configured backend.
#[derive(Debug, Clone)]
pub struct Storage(Arc<dyn Store>);

impl std::ops::Deref for Storage {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl Storage {
    pub fn new(store: impl Store + 'static) -> Self {
        Self(Arc::new(store))
    }

    /// The backend `[storage] backend` names.
    pub fn open(config: &StorageConfig) -> io::Result<Self> {
        Self::open_backend(config, config.backend)
    }

    /// A given backend with the settings in `config`, whichever one
    /// `backend` says is active: `kitteh storage migrate` opens both.
    pub fn open_backend(config: &StorageConfig, backend: StorageBackend) -> io::Result<Self> {
        Ok(match backend {
            StorageBackend::Local => Self::new(LocalStore::open(&config.uploads_dir)?),
            StorageBackend::S3 => Self::new(S3Store::open(&config.s3)?),
        })
    }
}

/// Refuses names that could leave the folder or the bucket prefix, or be
/// mistaken for a leftover: only `[A-Za-z0-9._-]`, not starting with a dot.
pub fn check_name(name: &str) -> io::Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing storage name {name:?}"),
        ))
    }
}

/// The name of a trashed object: when, then its own name
/// (`1764000000-sublimedandelionbengal.jpg`), so that the trash lists its
/// own age whatever the backend keeps as a modification time.
fn trashed_name(name: &str, at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{secs}-{name}")
}

/// The object's own name and when it was trashed, from a trashed name.
fn parse_trashed(trashed: &str) -> Option<(String, SystemTime)> {
    let (secs, name) = trashed.split_once('-')?;
    let secs: u64 = secs.parse().ok()?;
    check_name(name).ok()?;
    Some((
        name.to_string(),
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs),
    ))
}

/// Name of a readiness probe object: random, so replicas probing at the
/// same moment never collide, and swept like any orphan if left behind.
fn probe_name() -> String {
    format!("kitteh-probe-{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trashed_names_carry_when_and_what() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_764_000_000);
        let trashed = trashed_name("abc-tiny.jpg", at);
        assert_eq!(trashed, "1764000000-abc-tiny.jpg");
        assert_eq!(
            parse_trashed(&trashed),
            Some(("abc-tiny.jpg".to_string(), at))
        );
        assert_eq!(parse_trashed("nonsense"), None);
        assert_eq!(parse_trashed("12-../x"), None);
    }

    #[test]
    fn names_that_could_escape_are_refused() {
        for bad in ["../x", "a/b", ".hidden", "", "x\0y", "a b", "a\\b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["abc.jpg", "abc-tiny.webp", "A_b.png"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }
}
