//! An identity for the installation, kept in the database and, as a
//! marker object, in its storage. A server whose database and storage
//! carry different identities (a wrong DATABASE_URL, a lost SQLite file,
//! an older backup) knows it must not remove anything from that storage.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Installation::Table)
                    // At most one row: its key can only be 1.
                    .col(
                        ColumnDef::new(Installation::Singleton)
                            .integer()
                            .not_null()
                            .primary_key()
                            .check(Expr::col(Installation::Singleton).eq(1)),
                    )
                    .col(ColumnDef::new(Installation::Id).string().not_null())
                    .col(
                        ColumnDef::new(Installation::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    // Written by every readiness probe: proves the
                    // database still takes a write.
                    .col(ColumnDef::new(Installation::CheckedAt).timestamp_with_time_zone())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Installation::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Installation {
    Table,
    Singleton,
    Id,
    CreatedAt,
    CheckedAt,
}
