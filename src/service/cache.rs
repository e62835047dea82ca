//! In-memory caches for the serving path: what a token names (image row and
//! sizes) for a few seconds, and the bytes of hot files within a byte budget.
//! A cache hit touches neither the database nor the disk.
//!
//! Deletion wins over caching: this process forgets a token the moment it
//! deletes it; on PostgreSQL every replica is told through LISTEN/NOTIFY
//! and forgets within milliseconds; otherwise entries live no longer than
//! `cache.metadata_ttl_ms` (at most 10 s). Bytes are keyed by their sha256,
//! so a rebuilt variant can never be served from a stale entry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use quick_cache::Weighter;
use quick_cache::sync::Cache;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::config::CacheConfig;
use crate::service::model::{ImageInfo, SizeInfo};

/// The notification channel replicas use to tell each other a token changed.
pub const CHANNEL: &str = "kitteh_images";

/// Most tokens whose lookups are kept at once.
const MAX_LOOKUPS: usize = 100_000;

/// What a token resolves to: the image and the state of each size.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub image: ImageInfo,
    pub sizes: Vec<SizeInfo>,
}

/// A file's bytes weigh their length.
#[derive(Clone)]
struct ByLength;

impl Weighter<String, Arc<[u8]>> for ByLength {
    fn weight(&self, _key: &String, bytes: &Arc<[u8]>) -> u64 {
        bytes.len() as u64
    }
}

/// quick_cache (S3-FIFO: a hot entry is never pushed out by a burst of
/// one-off ones) holds both caches. It has no expiry of its own, so a
/// lookup carries the moment it was made and is dropped once older than
/// the TTL.
pub struct ImageCache {
    meta: Option<Cache<String, (Instant, Arc<Resolved>)>>,
    ttl: Duration,
    bytes: Option<Cache<String, Arc<[u8]>, ByLength>>,
    /// Files larger than this are streamed, not cached: one big file must
    /// not flush the many small hot ones.
    max_entry: u64,
    /// Whether this replica currently hears other replicas' deletions.
    listening: AtomicBool,
    /// The distinct objects answers are sending from memory right now, by
    /// address, with how many answers hold each: what stalled readers can
    /// keep alive after the cache has let an object go.
    pinned: Mutex<Pinned>,
    /// The most distinct bytes answers may hold from memory: the byte
    /// cache's budget, and some room even with the cache off.
    pin_budget: u64,
}

const MIN_PIN_BUDGET: u64 = 16 << 20;

#[derive(Default)]
struct Pinned {
    by_object: HashMap<usize, (u32, u64)>,
    bytes: u64,
}

/// Bytes an answer sends from memory, counted among the pinned until the
/// last copy of them is gone (hyper may hold slices after the answer).
pub struct PinnedBytes {
    bytes: Arc<[u8]>,
    cache: Arc<ImageCache>,
}

impl AsRef<[u8]> for PinnedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for PinnedBytes {
    fn drop(&mut self) {
        let key = self.bytes.as_ptr() as usize;
        let mut pinned = self
            .cache
            .pinned
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((count, len)) = pinned.by_object.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                let len = *len;
                pinned.by_object.remove(&key);
                pinned.bytes -= len;
            }
        }
    }
}

impl ImageCache {
    pub fn new(config: &CacheConfig) -> Self {
        let meta = (config.metadata_ttl_ms > 0).then(|| Cache::new(MAX_LOOKUPS));
        let budget = config.image_bytes.as_u64();
        let bytes = (budget > 0).then(|| {
            // The item estimate only sizes the table up front.
            let items = usize::try_from(budget / (64 << 10)).unwrap_or(1024).max(64);
            Cache::with_weighter(items, budget, ByLength)
        });
        Self {
            meta,
            ttl: Duration::from_millis(config.metadata_ttl_ms),
            bytes,
            max_entry: budget / 8,
            listening: AtomicBool::new(false),
            pinned: Mutex::new(Pinned::default()),
            pin_budget: budget.max(MIN_PIN_BUDGET),
        }
    }

    /// The largest object kept in the byte cache.
    pub fn max_entry(&self) -> u64 {
        self.max_entry
    }

    /// `bytes` held for an answer sent from memory, if the distinct bytes
    /// such answers hold stay within the byte cache's own budget (16 MiB
    /// at least); None: send it from storage in chunks instead. A
    /// thousand readers of one picture pin it once; a hundred stalled
    /// readers of a hundred pictures cannot hold more than the budget.
    pub fn pin(self: &Arc<Self>, bytes: Arc<[u8]>) -> Option<PinnedBytes> {
        let key = bytes.as_ptr() as usize;
        let len = bytes.len() as u64;
        let budget = self.pin_budget;
        let mut pinned = self.pinned.lock().unwrap_or_else(PoisonError::into_inner);
        match pinned.by_object.get_mut(&key) {
            Some((count, _)) => *count += 1,
            None => {
                if pinned.bytes + len > budget && !pinned.by_object.is_empty() {
                    return None;
                }
                pinned.by_object.insert(key, (1, len));
                pinned.bytes += len;
            }
        }
        drop(pinned);
        Some(PinnedBytes {
            bytes,
            cache: Arc::clone(self),
        })
    }

    /// Distinct bytes answers hold in memory now.
    pub fn pinned_bytes(&self) -> u64 {
        self.pinned
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }

    pub fn resolved(&self, token: &str) -> Option<Arc<Resolved>> {
        let meta = self.meta.as_ref()?;
        let (at, resolved) = meta.get(token)?;
        if at.elapsed() < self.ttl {
            Some(resolved)
        } else {
            // Only this stale entry: a fresh one may have replaced it since.
            meta.remove_if(token, |(then, _)| *then == at);
            None
        }
    }

    pub fn remember(&self, resolved: Arc<Resolved>) {
        if let Some(meta) = &self.meta {
            meta.insert(resolved.image.token.clone(), (Instant::now(), resolved));
        }
    }

    pub fn forget(&self, token: &str) {
        if let Some(meta) = &self.meta {
            meta.remove(token);
        }
    }

    pub fn bytes(&self, sha256: &str) -> Option<Arc<[u8]>> {
        self.bytes.as_ref()?.get(sha256)
    }

    pub fn keep_bytes(&self, sha256: &str, bytes: Arc<[u8]>) {
        if let Some(cache) = &self.bytes
            && (bytes.len() as u64) <= self.max_entry
        {
            cache.insert(sha256.to_string(), bytes);
        }
    }

    /// Whether deletions elsewhere reach this cache at once: false on
    /// PostgreSQL (with the metadata cache on) until the listener has
    /// subscribed, and while it reconnects. None when there is nothing to
    /// hear (SQLite, or no metadata cache): then the TTL alone bounds
    /// staleness.
    pub fn hears_deletions(&self, db: &DatabaseConnection) -> Option<bool> {
        (db.get_database_backend() == DbBackend::Postgres && self.meta.is_some())
            .then(|| self.listening.load(Ordering::Acquire))
    }

    /// Tells every replica (PostgreSQL only) that a token changed or went.
    pub async fn announce(&self, db: &DatabaseConnection, token: &str) {
        self.forget(token);
        if db.get_database_backend() != DbBackend::Postgres {
            return;
        }
        let notify = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), token.into()],
        );
        if let Err(e) = db.execute_raw(notify).await {
            tracing::warn!(token, "could not notify other replicas: {e}");
        }
    }

    /// On PostgreSQL, listens for other replicas' announcements and forgets
    /// those tokens. Reconnects after a lost connection, and meanwhile the
    /// TTL still bounds staleness.
    pub fn spawn_listener(self: &Arc<Self>, db: &DatabaseConnection) {
        if db.get_database_backend() != DbBackend::Postgres || self.meta.is_none() {
            return;
        }
        let pool = db.get_postgres_connection_pool().clone();
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(CHANNEL).await {
                            tracing::warn!("cache listener: {e}");
                        } else {
                            this.listening.store(true, Ordering::Release);
                            tracing::info!(
                                channel = CHANNEL,
                                "listening for other replicas' deletions"
                            );
                            loop {
                                match listener.recv().await {
                                    Ok(n) => this.forget(n.payload()),
                                    Err(e) => {
                                        tracing::warn!("cache listener lost: {e}");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!("cache listener cannot connect: {e}"),
                }
                this.listening.store(false, Ordering::Release);
                // Whatever was announced while disconnected may be stale.
                if let Some(meta) = &this.meta {
                    meta.clear();
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}
