//! The periodic job every replica runs: deletes images whose time is up
//! (each exactly once across replicas, see `Images::expire_due`) and
//! erases client addresses kept past `privacy.ip_retention_days`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use tokio::sync::watch;

use crate::db::begin_write;
use crate::db::entities::{images, reports};
use crate::service::error::Result;
use crate::service::images::Images;

/// Images deleted per round; the next round follows at once while there
/// are more.
const BATCH: u64 = 200;

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub expired: usize,
    pub addresses_erased: u64,
}

/// One round: expired images, then old addresses.
pub async fn round(
    images: &Images,
    db: &DatabaseConnection,
    ip_retention_days: u32,
) -> Result<Round> {
    let mut expired = 0;
    loop {
        let n = images.expire_due(BATCH).await?;
        expired += n;
        if (n as u64) < BATCH {
            break;
        }
    }
    let addresses_erased = erase_addresses(db, ip_retention_days).await?;
    Ok(Round {
        expired,
        addresses_erased,
    })
}

/// Addresses erased per write transaction: on SQLite the write lock is
/// held a few milliseconds at a time.
const ERASE_PER_TRANSACTION: u64 = 500;

/// Forgets the addresses of uploads and reports older than the
/// retention. With a retention of 0 nothing is stored in the first place;
/// anything stored before that setting is erased too. Only rows still
/// holding an address are read (a partial index keeps them), a few hundred
/// at a time.
async fn erase_addresses(db: &DatabaseConnection, days: u32) -> Result<u64> {
    let cutoff = Utc::now() - chrono::Duration::days(i64::from(days));
    let mut erased = 0;
    loop {
        let uploads = images::Entity::find()
            .select_only()
            .column(images::Column::Id)
            .filter(images::Column::UploaderIp.is_not_null())
            .filter(images::Column::InsertedAt.lt(cutoff))
            .order_by_asc(images::Column::InsertedAt)
            .limit(ERASE_PER_TRANSACTION)
            .into_query();
        let txn = begin_write(db).await?;
        let done = images::Entity::update_many()
            .col_expr(
                images::Column::UploaderIp,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                images::Column::UploaderIpKey,
                Expr::value(Option::<String>::None),
            )
            .filter(images::Column::Id.in_subquery(uploads))
            .exec(&*txn)
            .await?;
        txn.commit().await?;
        erased += done.rows_affected;
        if done.rows_affected < ERASE_PER_TRANSACTION {
            break;
        }
    }
    loop {
        let reported = reports::Entity::find()
            .select_only()
            .column(reports::Column::Id)
            .filter(reports::Column::ReporterIp.is_not_null())
            .filter(reports::Column::CreatedAt.lt(cutoff))
            .order_by_asc(reports::Column::CreatedAt)
            .limit(ERASE_PER_TRANSACTION)
            .into_query();
        let txn = begin_write(db).await?;
        let done = reports::Entity::update_many()
            .col_expr(
                reports::Column::ReporterIp,
                Expr::value(Option::<String>::None),
            )
            .filter(reports::Column::Id.in_subquery(reported))
            .exec(&*txn)
            .await?;
        txn.commit().await?;
        erased += done.rows_affected;
        if done.rows_affected < ERASE_PER_TRANSACTION {
            break;
        }
    }
    Ok(erased)
}

/// Runs a round every `every` until shutdown.
pub fn spawn(
    images: Arc<Images>,
    db: DatabaseConnection,
    ip_retention_days: u32,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            match round(&images, &db, ip_retention_days).await {
                Ok(r) if r.expired > 0 || r.addresses_erased > 0 => tracing::info!(
                    expired = r.expired,
                    addresses_erased = r.addresses_erased,
                    "upkeep finished"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!("upkeep failed (tried again later): {}", e.chain()),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => break,
            }
        }
    });
}
