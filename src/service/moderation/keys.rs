//! Upload keys: made (and shown) once, listed with what each has stored,
//! revoked.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use super::{KEY_PREFIX, Moderation, hash_key};
use crate::db::entities::upload_keys;
use crate::service::error::{Error, Result};

/// A key as `kitteh keys list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyListing {
    pub name: String,
    pub admin: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub uploads: u64,
    pub bytes: u64,
    pub quota_bytes: Option<i64>,
    pub uploads_per_minute: Option<i32>,
}

impl Moderation {
    /// Makes a key and returns it: the only time it is ever shown.
    pub async fn create_key(
        &self,
        name: &str,
        quota_bytes: Option<u64>,
        admin: bool,
        uploads_per_minute: Option<u32>,
    ) -> Result<String> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(Error::BadForm(
                "a key's name must be 1 to 100 characters, without control characters".into(),
            ));
        }
        let exists = upload_keys::Entity::find()
            .filter(upload_keys::Column::Name.eq(name))
            .one(&self.db)
            .await?;
        if exists.is_some() {
            return Err(Error::BadForm(format!(
                "a key called {name:?} exists already; revoke it or choose another name"
            )));
        }
        let key = format!("{KEY_PREFIX}{}", hex::encode(rand::random::<[u8; 20]>()));
        upload_keys::ActiveModel {
            name: Set(name.to_string()),
            key_hash: Set(hash_key(&key)),
            admin: Set(admin),
            quota_bytes: Set(quota_bytes.map(|q| i64::try_from(q).unwrap_or(i64::MAX))),
            uploads_per_minute: Set(
                uploads_per_minute.map(|n| i32::try_from(n).unwrap_or(i32::MAX))
            ),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(key)
    }

    /// Keys in the order of their names, at most `limit` after `after`,
    /// with what each has stored (totals kept as images come and go).
    pub async fn list_keys(&self, after: Option<&str>, limit: u64) -> Result<Vec<KeyListing>> {
        let mut query = upload_keys::Entity::find().order_by_asc(upload_keys::Column::Name);
        if let Some(after) = after {
            query = query.filter(upload_keys::Column::Name.gt(after));
        }
        Ok(query
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| KeyListing {
                name: row.name,
                admin: row.admin,
                created_at: row.created_at,
                last_used_at: row.last_used_at,
                revoked_at: row.revoked_at,
                uploads: u64::try_from(row.uploads).unwrap_or(0),
                bytes: u64::try_from(row.bytes).unwrap_or(0),
                quota_bytes: row.quota_bytes,
                uploads_per_minute: row.uploads_per_minute,
            })
            .collect())
    }

    /// The names of the keys with these ids.
    pub async fn key_names(&self, ids: &[i64]) -> Result<std::collections::HashMap<i64, String>> {
        Ok(upload_keys::Entity::find()
            .filter(upload_keys::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|k| (k.id, k.name))
            .collect())
    }

    /// Revokes a key by name; false when there is no such key.
    pub async fn revoke_key(&self, name: &str) -> Result<bool> {
        let done = upload_keys::Entity::update_many()
            .col_expr(upload_keys::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(upload_keys::Column::Name.eq(name))
            .filter(upload_keys::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected > 0)
    }

    pub async fn key_id(&self, name: &str) -> Result<Option<i64>> {
        Ok(upload_keys::Entity::find()
            .filter(upload_keys::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .map(|k| k.id))
    }
}
