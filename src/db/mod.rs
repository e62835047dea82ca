//! Connecting to SQLite or PostgreSQL (chosen by the URL's scheme) and
//! comparing the database's schema with the migrations compiled in.

pub mod entities;
pub mod queue;
pub mod write;

pub use write::{WriteTxn, begin_write};

use std::path::{Path, PathBuf};
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::config::{DatabaseConfig, mask_url};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect to the database at {url}: {source}")]
    Connect { url: String, source: DbErr },
    #[error("database error: {0}")]
    Query(#[from] DbErr),
}

/// Which kind of database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Self::Sqlite
        } else {
            Self::Postgres
        }
    }
}

/// Opens a pool. For SQLite the file and its folder are created when missing,
/// and the connection uses WAL so readers never wait for the writer.
pub async fn connect(config: &DatabaseConfig) -> Result<DatabaseConnection, DbError> {
    let url = config.url.clone();
    if Backend::of(&url) == Backend::Sqlite
        && let Some(dir) = sqlite_file(&url).as_deref().and_then(Path::parent)
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let mut options = ConnectOptions::new(url.clone());
    options
        .max_connections(config.pool_size)
        .connect_timeout(Duration::from_secs(config.connect_timeout))
        .acquire_timeout(Duration::from_secs(config.connect_timeout))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            opts.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
        });
    Database::connect(options)
        .await
        .map_err(|source| DbError::Connect {
            url: mask_url(&url),
            source,
        })
}

/// The file path inside a `sqlite://path?query` URL, or None for `:memory:`.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(PathBuf::from(path))
    }
}

/// Where the database's schema stands against the migrations in this binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaState {
    pub applied: Vec<String>,
    pub pending: Vec<String>,
}

impl SchemaState {
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn latest_applied(&self) -> &str {
        self.applied.last().map(String::as_str).unwrap_or("none")
    }

    /// The message `serve` and `/readyz` give when migrations are pending.
    pub fn stale_message(&self) -> String {
        format!(
            "the database schema is out of date: latest applied migration is {}, \
             this build expects {} ({} pending). Run `kitteh migrate` first, \
             or start with `kitteh serve --migrate`.",
            self.latest_applied(),
            newest_migration(),
            self.pending.len()
        )
    }
}

/// Reads the migration table without creating it, so checking a database
/// never changes it. A database migrated by a newer build (an applied
/// migration this binary does not know) is an error.
pub async fn schema_state(db: &DatabaseConnection) -> Result<SchemaState, DbErr> {
    let all = Migrator::get_migration_with_status_read_only(db).await?;
    let mut state = SchemaState {
        applied: Vec::new(),
        pending: Vec::new(),
    };
    for m in all {
        match m.status() {
            migration::MigrationStatus::Applied => state.applied.push(m.name().to_string()),
            migration::MigrationStatus::Pending => state.pending.push(m.name().to_string()),
        }
    }
    Ok(state)
}

/// Name of the newest migration compiled into this binary.
pub fn newest_migration() -> String {
    Migrator::migrations()
        .last()
        .map(|m| m.name().to_string())
        .unwrap_or_else(|| "none".into())
}

/// The running totals the database keeps as rows come and go (triggers on
/// images, variants and jobs): pictures, sizes, stored bytes (every
/// original and finished size the database records), jobs by state. One
/// read of a few rows, whatever the number of pictures.
pub async fn tallies(
    db: &DatabaseConnection,
) -> Result<std::collections::BTreeMap<String, i64>, DbErr> {
    use sea_orm::EntityTrait;
    Ok(entities::tallies::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.name, t.value))
        .collect())
}

/// Applies migrations one at a time so each can be reported as it lands.
pub async fn apply_pending(
    db: &DatabaseConnection,
    pending: &[String],
    mut report: impl FnMut(&str),
) -> Result<(), DbErr> {
    for name in pending {
        Migrator::up(db, Some(1)).await?;
        report(name);
    }
    Ok(())
}

/// Whether a database error means the database cannot serve right now (it
/// is unreachable, read-only, out of disk or shutting down) rather than
/// that a statement was wrong: the first is a 503 to retry, the second a
/// bug.
pub fn is_unavailable(e: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    let sqlx = match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    match sqlx.as_ref() {
        sea_orm::sqlx::Error::Io(_)
        | sea_orm::sqlx::Error::PoolTimedOut
        | sea_orm::sqlx::Error::PoolClosed
        | sea_orm::sqlx::Error::WorkerCrashed => true,
        sea_orm::sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // SQLite result codes are numbers, and so are some SQLSTATEs
            // (25006), so the backend decides how to read the code.
            if db
                .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
                .is_some()
            {
                // Primary result codes (an extended code keeps the primary
                // one in its low byte): BUSY, READONLY, IOERR, CORRUPT,
                // FULL, CANTOPEN.
                return code
                    .parse::<i32>()
                    .is_ok_and(|n| matches!(n & 0xFF, 5 | 8 | 10 | 11 | 13 | 14));
            }
            // PostgreSQL: connection exceptions, insufficient resources,
            // operator intervention, read-only transaction.
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57P")
                || code == "25006"
        }
        _ => false,
    }
}

/// Which file a SQLite database lives in: its path, and the device and
/// inode it had when the server opened it. If the path later names another
/// file (or none), writes would go to a file nobody will find again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteFile {
    pub path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SqliteFile {
    /// The file behind `url`, as it is now; None for PostgreSQL or memory.
    pub fn of(url: &str) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let path = sqlite_file(url)?;
        let meta = std::fs::metadata(&path).ok()?;
        Some(Self {
            path,
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// Whether the path still names the file opened.
    pub fn still_there(&self) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(&self.path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => Ok(()),
            Ok(_) => Err(format!(
                "the SQLite file {} was replaced after the server opened it",
                self.path.display()
            )),
            Err(e) => Err(format!(
                "the SQLite file {} is gone ({e})",
                self.path.display()
            )),
        }
    }
}
