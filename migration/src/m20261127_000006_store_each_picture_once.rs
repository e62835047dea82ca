//! Identical pictures are stored once: names whose stored bytes have the
//! same SHA-256 now point at one object (and its sizes). This moves an
//! existing installation over: in each group of names with the same bytes,
//! the one whose sizes are most complete (then the oldest) keeps its
//! objects, and the others point at them, with rows for its sizes. The
//! objects no name points at any more are identical copies; the storage
//! sweep moves them to the trash (kept `storage.trash_days`), so nothing is
//! lost even if this were wrong.

use std::collections::BTreeMap;

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement, TransactionTrait, Value};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT i.id, i.path, i.sha256, \
                 (SELECT COUNT(*) FROM variants v WHERE v.image_id = i.id) AS sizes \
                 FROM images i WHERE i.sha256 <> '' ORDER BY i.id",
            ))
            .await?;
        let mut groups: BTreeMap<String, Vec<(i64, String, i64)>> = BTreeMap::new();
        for row in rows {
            let id: i64 = row.try_get("", "id")?;
            let path: String = row.try_get("", "path")?;
            let sha256: String = row.try_get("", "sha256")?;
            let sizes: i64 = row.try_get("", "sizes")?;
            groups.entry(sha256).or_default().push((id, path, sizes));
        }
        let placeholder = |n: usize| match backend {
            sea_orm_migration::sea_orm::DbBackend::Postgres => format!("${n}"),
            _ => "?".to_string(),
        };
        let txn = db.begin().await?;
        for names in groups.values().filter(|g| g.len() > 1) {
            // Most sizes first, then the oldest.
            let Some(keeper) = names
                .iter()
                .max_by(|a, b| a.2.cmp(&b.2).then(b.0.cmp(&a.0)))
                .cloned()
            else {
                continue;
            };
            for (id, path, _) in names.iter().filter(|n| n.0 != keeper.0) {
                if *path == keeper.1 {
                    continue;
                }
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "UPDATE images SET path = {}, blurhash = (SELECT k.blurhash FROM images k WHERE k.id = {}) WHERE id = {}",
                        placeholder(1),
                        placeholder(2),
                        placeholder(3)
                    ),
                    [
                        Value::from(keeper.1.clone()),
                        Value::from(keeper.0),
                        Value::from(*id),
                    ],
                ))
                .await?;
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!("DELETE FROM variants WHERE image_id = {}", placeholder(1)),
                    [Value::from(*id)],
                ))
                .await?;
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "INSERT INTO variants (image_id, name, width, height, path, size, sha256, created_at) \
                         SELECT {}, name, width, height, path, size, sha256, created_at FROM variants WHERE image_id = {}",
                        placeholder(1),
                        placeholder(2)
                    ),
                    [Value::from(*id), Value::from(keeper.0)],
                ))
                .await?;
            }
        }
        txn.commit().await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The schema is unchanged and the rows stay valid, so there is
        // nothing to undo here; but a Kitteh from before this migration
        // removes an object when it deletes any one of the names sharing
        // it. Copies cannot be made from a migration (it has no storage):
        // run an older binary over this data only with that in mind.
        Ok(())
    }
}
