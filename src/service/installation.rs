//! Whose storage is this? An installation has an identity, recorded once in
//! its database and as a marker object in its storage. When the two agree
//! the sweep may tidy storage; when they do not (the database was lost,
//! replaced by an older backup, or a wrong `DATABASE_URL` points elsewhere)
//! nothing is removed and readiness fails, naming the mismatch.

use std::sync::Mutex;

use chrono::Utc;
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, Set, SqlErr};

use crate::db::entities::installation;
use crate::service::error::{Error, Result};
use crate::storage::Storage;

/// What database and storage say about the installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Not looked at yet.
    Unknown,
    /// Both carry this id.
    Agreed(String),
    /// They disagree; `database` is None when the database has no identity
    /// (an empty or pre-identity database in front of used storage).
    Mismatch {
        database: Option<String>,
        storage: String,
    },
}

impl Identity {
    pub fn agreed(&self) -> bool {
        matches!(self, Self::Agreed(_))
    }

    /// One line for logs, readiness and `kitteh storage fsck`.
    pub fn describe(&self) -> String {
        match self {
            Self::Unknown => "the installation identity has not been checked yet".into(),
            Self::Agreed(id) => format!("installation {id}"),
            Self::Mismatch {
                database: Some(db),
                storage,
            } => format!(
                "the database belongs to installation {db} but storage to installation {storage}: \
                 check DATABASE_URL and the storage settings"
            ),
            Self::Mismatch {
                database: None,
                storage,
            } => format!(
                "the database has no installation identity but storage belongs to installation \
                 {storage}: check DATABASE_URL (a new or lost database?); if this database is the \
                 right one, run `kitteh storage fsck --adopt`"
            ),
        }
    }
}

/// The identity as last checked, shared by readiness and the sweep.
#[derive(Debug)]
pub struct Installation {
    db: DatabaseConnection,
    storage: Storage,
    identity: Mutex<Identity>,
}

fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

impl Installation {
    pub fn new(db: DatabaseConnection, storage: Storage) -> Self {
        Self {
            db,
            storage,
            identity: Mutex::new(Identity::Unknown),
        }
    }

    /// The identity as last checked.
    pub fn identity(&self) -> Identity {
        self.identity
            .lock()
            .map(|i| i.clone())
            .unwrap_or(Identity::Unknown)
    }

    async fn database_id(&self) -> Result<Option<String>> {
        Ok(installation::Entity::find()
            .one(&self.db)
            .await?
            .map(|row| row.id))
    }

    async fn storage_id(&self) -> Result<Option<String>> {
        self.storage
            .read_marker()
            .await
            .map_err(Error::StorageUnavailable)
    }

    async fn write_marker(&self, id: &str) -> Result<()> {
        self.storage
            .write_marker(id)
            .await
            .map_err(Error::StorageUnavailable)
    }

    /// Records `id` in the database unless another process got there first;
    /// returns the id the database holds afterwards.
    async fn record(&self, id: String) -> Result<String> {
        let row = installation::ActiveModel {
            singleton: Set(1),
            id: Set(id.clone()),
            created_at: Set(Utc::now()),
            checked_at: Set(None),
        };
        match row.insert(&self.db).await {
            Ok(_) => Ok(id),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => self
                .database_id()
                .await?
                .ok_or_else(|| Error::Database(DbErr::RecordNotFound("installation".into()))),
            Err(e) => Err(e.into()),
        }
    }

    /// Compares database and storage, giving a new installation its
    /// identity and a database with an identity storage that lacks one
    /// (new storage, or storage from before identities) its marker.
    pub async fn check(&self) -> Result<Identity> {
        let identity = match (self.database_id().await?, self.storage_id().await?) {
            (Some(db), Some(storage)) if db == storage => Identity::Agreed(db),
            (Some(db), Some(storage)) => Identity::Mismatch {
                database: Some(db),
                storage,
            },
            (Some(db), None) => {
                self.write_marker(&db).await?;
                Identity::Agreed(db)
            }
            (None, Some(storage)) => Identity::Mismatch {
                database: None,
                storage,
            },
            (None, None) => {
                let id = self.record(new_id()).await?;
                self.write_marker(&id).await?;
                Identity::Agreed(id)
            }
        };
        if let Ok(mut slot) = self.identity.lock() {
            *slot = identity.clone();
        }
        Ok(identity)
    }

    /// Takes the identity storage carries into a database that has none:
    /// the operator's answer to "this database is the right one".
    pub async fn adopt(&self) -> Result<Identity> {
        if let (None, Some(storage)) = (self.database_id().await?, self.storage_id().await?) {
            self.record(storage).await?;
        }
        self.check().await
    }

    /// Writes to the database: proves it still takes a write (readiness).
    pub async fn touch(&self) -> std::result::Result<(), DbErr> {
        use sea_orm::sea_query::Expr;
        installation::Entity::update_many()
            .col_expr(installation::Column::CheckedAt, Expr::value(Utc::now()))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
