//! Write transactions. SQLite has one writer at a time, and a transaction
//! that reads before it writes cannot wait for its turn: when another
//! writer commits in between, SQLite refuses it at once ("database is
//! locked") instead of letting its busy timeout run. So every write
//! transaction here begins `IMMEDIATE` (it waits for the write lock from
//! its first statement), and the writers of this process take turns in
//! arrival order behind one async lock, so that uploads, deletes, expiry
//! and the workers share the writer fairly instead of racing for it. On
//! PostgreSQL, rows are locked one by one and none of this is needed.

use std::ops::Deref;
use std::sync::{Arc, LazyLock};

use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The turns of this process's SQLite writers (tokio's lock is fair: the
/// longest waiting is served first).
static SQLITE_TURNS: LazyLock<Arc<Mutex<()>>> = LazyLock::new(|| Arc::new(Mutex::new(())));

/// A write transaction, holding its writer's turn until it ends. Never
/// begin another write transaction while holding one: they would wait
/// for each other.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl Deref for WriteTxn {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

/// Begins a write transaction: on SQLite, after this process's earlier
/// writers, holding the write lock from the start.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTxn, DbErr> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return Ok(WriteTxn {
            txn: db.begin().await?,
            _turn: None,
        });
    }
    let turn = Arc::clone(&SQLITE_TURNS).lock_owned().await;
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    Ok(WriteTxn {
        txn,
        _turn: Some(turn),
    })
}
