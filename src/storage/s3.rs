//! The S3-compatible backend (AWS S3, Garage, MinIO, Ceph RGW, R2), through
//! `object_store`: it signs requests, times them out, and retries transient
//! failures with exponential backoff and jitter.
//!
//! A PUT is atomic in S3: the object appears whole or not at all, so no
//! temp-name dance is needed here. Large objects go up in parts.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload, RetryConfig, WriteMultipart,
};

use super::{
    ByteStream, Entry, EntryStream, Store, check_name, parse_trashed, probe_name, trashed_name,
};

/// The trash: a key prefix no object name can start with (names have no
/// `/`), so listings of the bucket's objects can leave it out.
const TRASH_PREFIX: &str = "trash";

/// Which installation the bucket belongs to: a key no object name can be.
const MARKER: &str = "kitteh/installation";
use crate::config::S3Config;

/// Objects above this go up as a multipart upload in parts of this size
/// (S3's minimum part is 5 MiB).
const PART_SIZE: usize = 8 << 20;

/// How long a connection may take to open, separately from a whole call.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Served objects are never rewritten under the same name, so a CDN or a
/// browser fetching from `public_url` may keep them.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

#[derive(Debug, Clone)]
pub struct S3Store {
    store: Arc<AmazonS3>,
    description: String,
    public_url: Option<String>,
}

impl S3Store {
    pub fn open(config: &S3Config) -> io::Result<Self> {
        // reqwest is built without a crypto provider of its own (see
        // Cargo.toml); ring is the one already linked for PostgreSQL. An
        // error only means a provider is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let timeout = Duration::from_secs(u64::from(config.timeout_seconds.max(1)));
        let client = ClientOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_allow_http(config.endpoint.starts_with("http://"));
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: config.max_retries as usize,
            // Bounds the whole call, retries included.
            retry_timeout: timeout.saturating_mul(config.max_retries + 1),
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_virtual_hosted_style_request(!config.path_style)
            // Not every S3-compatible server implements object tagging.
            .with_disable_tagging(true)
            .with_client_options(client)
            .with_retry(retry);
        if !config.endpoint.is_empty() {
            builder = builder.with_endpoint(&config.endpoint);
        }
        let store = builder.build().map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("bad S3 settings: {e}"))
        })?;
        let endpoint = if config.endpoint.is_empty() {
            format!("AWS region {}", config.region)
        } else {
            config.endpoint.clone()
        };
        Ok(Self {
            store: Arc::new(store),
            description: format!("s3 bucket {} at {endpoint}", config.bucket),
            public_url: (!config.public_url.is_empty())
                .then(|| config.public_url.trim_end_matches('/').to_string()),
        })
    }

    fn path(name: &str) -> io::Result<ObjectPath> {
        check_name(name)?;
        Ok(ObjectPath::from(name))
    }
}

/// Keeps the object store's own words (they name the status and the
/// server's message) and maps a missing object to `NotFound`.
impl S3Store {
    /// Every trashed object: its key, and its own name and trash time.
    async fn trashed(&self) -> io::Result<Vec<(ObjectPath, Entry)>> {
        let prefix = ObjectPath::from(TRASH_PREFIX);
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| to_io("list trash", "", e))?;
        Ok(metas
            .into_iter()
            .filter_map(|meta| {
                let file = meta.location.filename()?.to_string();
                let (name, at) = parse_trashed(&file)?;
                Some((
                    meta.location,
                    Entry {
                        name,
                        size: meta.size,
                        modified: Some(at),
                    },
                ))
            })
            .collect())
    }
}

fn to_io(op: &str, name: &str, e: object_store::Error) -> io::Error {
    let kind = match e {
        object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("s3 {op} {name}: {e}"))
}

#[async_trait::async_trait]
impl Store for S3Store {
    fn describe(&self) -> String {
        self.description.clone()
    }

    async fn put(&self, name: &str, bytes: Bytes, content_type: &str) -> io::Result<()> {
        let path = Self::path(name)?;
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_string().into());
        attributes.insert(Attribute::CacheControl, IMMUTABLE.into());
        if bytes.len() <= PART_SIZE {
            let options = PutOptions {
                attributes,
                ..Default::default()
            };
            self.store
                .put_opts(&path, PutPayload::from(bytes), options)
                .await
                .map_err(|e| to_io("put", name, e))?;
            return Ok(());
        }
        let options = PutMultipartOptions {
            attributes,
            ..Default::default()
        };
        let upload = self
            .store
            .put_multipart_opts(&path, options)
            .await
            .map_err(|e| to_io("multipart put", name, e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        writer.put(bytes);
        if let Err(e) = writer.finish().await {
            // `finish` aborts the upload itself on failure, so no parts are
            // left behind to be billed.
            return Err(to_io("multipart put", name, e));
        }
        Ok(())
    }

    async fn get(&self, name: &str) -> io::Result<Bytes> {
        let path = Self::path(name)?;
        let result = self
            .store
            .get(&path)
            .await
            .map_err(|e| to_io("get", name, e))?;
        result.bytes().await.map_err(|e| to_io("get", name, e))
    }

    async fn get_stream(&self, name: &str, range: Option<(u64, u64)>) -> io::Result<ByteStream> {
        let path = Self::path(name)?;
        let options = object_store::GetOptions {
            range: range.map(|(first, last)| object_store::GetRange::Bounded(first..last + 1)),
            ..Default::default()
        };
        let result = self
            .store
            .get_opts(&path, options)
            .await
            .map_err(|e| to_io("get", name, e))?;
        let name = name.to_string();
        Ok(Box::pin(
            result
                .into_stream()
                .map_err(move |e| to_io("get", &name, e)),
        ))
    }

    async fn head(&self, name: &str) -> io::Result<Option<u64>> {
        let path = Self::path(name)?;
        match self.store.head(&path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(to_io("head", name, e)),
        }
    }

    async fn delete(&self, name: &str) -> io::Result<()> {
        let path = Self::path(name)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(to_io("delete", name, e)),
        }
    }

    fn list_stream(&self) -> EntryStream {
        let trash = format!("{TRASH_PREFIX}/");
        Box::pin(
            self.store
                .list(None)
                .map_err(|e| to_io("list", "", e))
                .try_filter_map(move |meta| {
                    let name = meta.location.to_string();
                    let kept = !name.starts_with(&trash) && name != MARKER;
                    futures_util::future::ready(Ok(kept.then(|| Entry {
                        name,
                        size: meta.size,
                        modified: Some(meta.last_modified.into()),
                    })))
                }),
        )
    }

    async fn trash(&self, name: &str) -> io::Result<()> {
        let from = Self::path(name)?;
        let to = ObjectPath::from(format!(
            "{TRASH_PREFIX}/{}",
            trashed_name(name, std::time::SystemTime::now())
        ));
        // S3 has no rename: a server-side copy, then the delete.
        self.store
            .rename(&from, &to)
            .await
            .map_err(|e| to_io("trash", name, e))
    }

    async fn read_marker(&self) -> io::Result<Option<String>> {
        match self.store.get(&ObjectPath::from(MARKER)).await {
            Ok(result) => {
                let bytes = result.bytes().await.map_err(|e| to_io("get", MARKER, e))?;
                Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string()))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(to_io("get", MARKER, e)),
        }
    }

    async fn write_marker(&self, id: &str) -> io::Result<()> {
        self.store
            .put(
                &ObjectPath::from(MARKER),
                PutPayload::from(Bytes::from(id.to_string())),
            )
            .await
            .map(|_| ())
            .map_err(|e| to_io("put", MARKER, e))
    }

    async fn list_trash(&self) -> io::Result<Vec<Entry>> {
        Ok(self.trashed().await?.into_iter().map(|(_, e)| e).collect())
    }

    async fn restore(&self, name: &str) -> io::Result<()> {
        let to = Self::path(name)?;
        let newest = self
            .trashed()
            .await?
            .into_iter()
            .filter(|(_, e)| e.name == name)
            .max_by_key(|(_, e)| e.modified);
        let Some((from, _)) = newest else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name} is not in the trash"),
            ));
        };
        self.store
            .rename(&from, &to)
            .await
            .map_err(|e| to_io("restore", name, e))
    }

    async fn empty_trash(&self, cutoff: std::time::SystemTime) -> io::Result<usize> {
        let mut removed = 0;
        for (path, entry) in self.trashed().await? {
            if entry.modified.is_some_and(|at| at < cutoff) {
                match self.store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => removed += 1,
                    Err(e) => return Err(to_io("empty trash", &entry.name, e)),
                }
            }
        }
        Ok(removed)
    }

    async fn check_writable(&self) -> io::Result<()> {
        let name = probe_name();
        let body = Bytes::from_static(b"kitteh readiness probe");
        self.put(&name, body.clone(), "text/plain").await?;
        let back = self.get(&name).await;
        self.delete(&name).await?;
        if back? != body {
            return Err(io::Error::other("the probe object read back differently"));
        }
        Ok(())
    }

    fn public_url(&self, name: &str) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|base| format!("{base}/{name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TLS is set up with ring as the process-wide provider: an https
    /// endpoint must give an ordinary error when nothing answers, not a
    /// panic about a missing crypto provider.
    #[tokio::test]
    async fn an_https_endpoint_that_is_down_is_an_error_not_a_panic() {
        let store = S3Store::open(&S3Config {
            endpoint: "https://127.0.0.1:9".into(),
            bucket: "cats".into(),
            access_key_id: "GK0".into(),
            secret_access_key: "x".into(),
            timeout_seconds: 2,
            max_retries: 0,
            ..Default::default()
        })
        .unwrap();
        let err = store.head("a.png").await.unwrap_err();
        assert_ne!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("s3 head a.png"), "{err}");
        assert!(store.public_url("a.png").is_none());
    }

    #[test]
    fn public_urls_join_the_base_and_the_name() {
        let store = S3Store::open(&S3Config {
            bucket: "cats".into(),
            public_url: "https://cdn.example/k/".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            store.public_url("a.png").as_deref(),
            Some("https://cdn.example/k/a.png")
        );
    }
}
