//! Whether this process can do its job (`/readyz`), and the gauges that
//! live in the database (`/metrics`), read at the time they are asked for.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::db;
use crate::metrics::{Metrics, StateLabels};
use crate::service::cache::ImageCache;
use crate::service::error::Result;
use crate::service::sizes::Sizes;
use crate::storage::Storage;

/// Longest the storage probe may take.
const STORAGE_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One readiness check: its name, whether it passed, and what it found
/// (`migration`, `backend`, `error`).
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub facts: Vec<(&'static str, String)>,
}

impl Check {
    fn pass(name: &'static str) -> Self {
        Self {
            name,
            ok: true,
            facts: Vec::new(),
        }
    }

    fn fail(name: &'static str, error: impl Into<String>) -> Self {
        Self {
            name,
            ok: false,
            facts: vec![("error", error.into())],
        }
    }

    fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.facts.push((key, value.into()));
        self
    }
}

pub struct Health {
    db: DatabaseConnection,
    storage: Storage,
    cache: Arc<ImageCache>,
    sizes: Arc<Sizes>,
    metrics: Arc<Metrics>,
}

impl Health {
    pub fn new(
        db: DatabaseConnection,
        storage: Storage,
        cache: Arc<ImageCache>,
        sizes: Arc<Sizes>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            db,
            storage,
            cache,
            sizes,
            metrics,
        }
    }

    /// Every check, in order: the database answers, its schema is the one
    /// this build expects, deletions elsewhere reach this cache (PostgreSQL),
    /// and storage takes a write, a read and a delete.
    pub async fn readiness(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        let database = match self.db.ping().await {
            Ok(()) => Check::pass("database"),
            Err(e) => Check::fail("database", e.to_string()),
        };
        let db_ok = database.ok;
        checks.push(database);
        if db_ok {
            checks.push(match db::schema_state(&self.db).await {
                Ok(state) if state.is_current() => {
                    Check::pass("schema").with("migration", state.latest_applied())
                }
                Ok(state) => Check::fail("schema", state.stale_message()),
                Err(e) => Check::fail("schema", e.to_string()),
            });
        }
        // A replica that cannot hear deletions made elsewhere could serve a
        // deleted image until its cache expires; it is ready once it listens.
        match self.cache.hears_deletions(&self.db) {
            Some(true) => checks.push(Check::pass("notifications")),
            Some(false) => checks.push(Check::fail(
                "notifications",
                "not yet subscribed to deletion notices",
            )),
            None => {}
        }
        // A load balancer's probe must get an answer in time even when the
        // bucket hangs; retries inside the client stay within this bound.
        let backend = self.storage.describe();
        let writable = tokio::time::timeout(STORAGE_PROBE_TIMEOUT, self.storage.check_writable())
            .await
            .map_err(|_| format!("no answer within {} s", STORAGE_PROBE_TIMEOUT.as_secs()))
            .and_then(|r| r.map_err(|e| e.to_string()));
        checks.push(match writable {
            Ok(()) => Check::pass("storage").with("backend", backend),
            Err(e) => Check::fail("storage", e).with("backend", backend),
        });
        checks
    }

    /// The metrics in Prometheus text, with the database-held gauges (bytes
    /// stored, jobs by state) read now, so every replica reports the same
    /// totals.
    pub async fn metrics_text(&self) -> Result<String> {
        self.metrics
            .stored_bytes
            .set(db::stored_bytes(&self.db).await?);
        for (state, n) in self.sizes.counts().await? {
            self.metrics
                .variant_jobs
                .get_or_create(&StateLabels {
                    state: state.as_str().to_string(),
                })
                .set(n);
        }
        Ok(self.metrics.render())
    }
}
