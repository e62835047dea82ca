//! What a careful image host records about each upload: pixel dimensions, a
//! checksum of the stored bytes (the ETag), and a hash of the delete token.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

// SQLite accepts one change per ALTER TABLE, so each column is its own
// statement; the defaults let the columns be NOT NULL on existing rows.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            ColumnDef::new(Images::Width)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(Images::Height)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(Images::Sha256)
                .string()
                .not_null()
                .default("")
                .to_owned(),
            ColumnDef::new(Images::DeleteTokenHash)
                .string()
                .not_null()
                .default("")
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Images::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Images::DeleteTokenHash,
            Images::Sha256,
            Images::Height,
            Images::Width,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Images::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Images {
    Table,
    Width,
    Height,
    Sha256,
    DeleteTokenHash,
}
