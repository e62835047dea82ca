//! The original app's `images` table, column for column.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Images::Table)
                    .col(
                        ColumnDef::new(Images::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Images::OriginalName).string().not_null())
                    .col(ColumnDef::new(Images::Token).string().not_null())
                    .col(ColumnDef::new(Images::GeneratedName).string().not_null())
                    .col(
                        ColumnDef::new(Images::Type)
                            .string()
                            .not_null()
                            .default("Kitty"),
                    )
                    .col(ColumnDef::new(Images::ContentType).string().not_null())
                    .col(ColumnDef::new(Images::Path).string().not_null())
                    .col(ColumnDef::new(Images::Size).big_integer().not_null())
                    .col(
                        ColumnDef::new(Images::InsertedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Images::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Uniqueness of names is enforced here, not by checking first: two
        // uploads racing for one name must collide in the database.
        manager
            .create_index(
                Index::create()
                    .name("images_token_key")
                    .table(Images::Table)
                    .col(Images::Token)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Images::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Images {
    Table,
    Id,
    OriginalName,
    Token,
    GeneratedName,
    Type,
    ContentType,
    Path,
    Size,
    InsertedAt,
    UpdatedAt,
}
