//! Whether this process can do its job (`/readyz`), and the gauges that
//! live in the database (`/metrics`), read at the time they are asked for.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::db::{self, SqliteFile};
use crate::metrics::{Metrics, StateLabels};
use crate::service::cache::ImageCache;
use crate::service::error::Result;
use crate::service::installation::{Identity, Installation};
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
    installation: Arc<Installation>,
    db_file: Option<SqliteFile>,
    /// The checks that failed last time, so that each change is logged
    /// once rather than at every probe.
    last_failed: Mutex<Vec<&'static str>>,
}

impl Health {
    pub fn new(
        db: DatabaseConnection,
        storage: Storage,
        cache: Arc<ImageCache>,
        sizes: Arc<Sizes>,
        metrics: Arc<Metrics>,
        installation: Arc<Installation>,
        db_file: Option<SqliteFile>,
    ) -> Self {
        Self {
            db,
            storage,
            cache,
            sizes,
            metrics,
            installation,
            db_file,
            last_failed: Mutex::new(Vec::new()),
        }
    }

    /// The database answers and (SQLite) its file is still the one opened;
    /// then, when the schema is the expected one, it takes a write: a
    /// database that cannot keep what it is given must not take uploads.
    /// The write goes to a table of this schema, so with the schema wrong
    /// only the schema check fails.
    async fn database_and_schema(&self) -> (Check, Option<Check>) {
        if let Err(e) = self.db.ping().await {
            return (Check::fail("database", e.to_string()), None);
        }
        if let Some(file) = &self.db_file
            && let Err(why) = file.still_there()
        {
            return (Check::fail("database", why), None);
        }
        let schema = match db::schema_state(&self.db).await {
            Ok(state) if state.is_current() => {
                Check::pass("schema").with("migration", state.latest_applied())
            }
            Ok(state) => Check::fail("schema", state.stale_message()),
            Err(e) => Check::fail("schema", e.to_string()),
        };
        if !schema.ok {
            return (Check::pass("database"), Some(schema));
        }
        let database = match self.installation.touch().await {
            Ok(()) => Check::pass("database"),
            Err(e) => Check::fail("database", format!("cannot write: {e}")),
        };
        (database, Some(schema))
    }

    /// Every check, in order, with what each found: the database answers
    /// and takes writes, its schema is the one this build expects, it and
    /// storage belong to the same installation, deletions elsewhere reach
    /// this cache (PostgreSQL), and storage takes a write, a read and a
    /// delete. Failures are logged (once per change) with their details;
    /// `/readyz` shows only names.
    pub async fn readiness(&self) -> Vec<Check> {
        let checks = self.run_checks().await;
        let failed: Vec<&'static str> = checks.iter().filter(|c| !c.ok).map(|c| c.name).collect();
        if let Ok(mut last) = self.last_failed.lock()
            && *last != failed
        {
            for check in checks.iter().filter(|c| !c.ok) {
                let details: Vec<String> = check
                    .facts
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                tracing::warn!(check = check.name, "not ready: {}", details.join("; "));
            }
            if failed.is_empty() && !last.is_empty() {
                tracing::info!("ready again");
            }
            *last = failed;
        }
        checks
    }

    async fn run_checks(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        let (database, schema) = self.database_and_schema().await;
        checks.push(database);
        checks.extend(schema);
        // Not known yet (storage was down at startup, say): look now. If
        // that fails too, the database or storage check says why.
        let identity = match self.installation.identity() {
            Identity::Unknown => self.installation.check().await.ok(),
            known => Some(known),
        };
        match identity {
            Some(identity) if identity.agreed() => {
                checks.push(Check::pass("installation").with("identity", identity.describe()));
            }
            Some(identity) => checks.push(Check::fail("installation", identity.describe())),
            None => {}
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
        let stored = db::tallies(&self.db).await?;
        self.metrics
            .stored_bytes
            .set(stored.get("stored_bytes").copied().unwrap_or(0));
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
