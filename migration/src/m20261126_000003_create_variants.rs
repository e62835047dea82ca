//! Durable resizing: one job per image (state, attempts, last error, lease)
//! and one row per finished variant. Both go with their image.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(VariantJobs::Table)
                    .col(
                        ColumnDef::new(VariantJobs::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(VariantJobs::ImageId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(VariantJobs::State)
                            .string()
                            .not_null()
                            .default("pending"),
                    )
                    .col(
                        ColumnDef::new(VariantJobs::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(VariantJobs::LastError).text().null())
                    // Epoch milliseconds: compares the same way on every backend.
                    .col(ColumnDef::new(VariantJobs::LeaseUntil).big_integer().null())
                    .col(
                        ColumnDef::new(VariantJobs::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(VariantJobs::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("variant_jobs_image_id_fkey")
                            .from(VariantJobs::Table, VariantJobs::ImageId)
                            .to(Images::Table, Images::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("variant_jobs_image_id_key")
                    .table(VariantJobs::Table)
                    .col(VariantJobs::ImageId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("variant_jobs_state_idx")
                    .table(VariantJobs::Table)
                    .col(VariantJobs::State)
                    .col(VariantJobs::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Variants::Table)
                    .col(
                        ColumnDef::new(Variants::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Variants::ImageId).big_integer().not_null())
                    .col(ColumnDef::new(Variants::Name).string().not_null())
                    .col(ColumnDef::new(Variants::Width).integer().not_null())
                    .col(ColumnDef::new(Variants::Height).integer().not_null())
                    .col(ColumnDef::new(Variants::Path).string().not_null())
                    .col(ColumnDef::new(Variants::Size).big_integer().not_null())
                    .col(ColumnDef::new(Variants::Sha256).string().not_null())
                    .col(
                        ColumnDef::new(Variants::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("variants_image_id_fkey")
                            .from(Variants::Table, Variants::ImageId)
                            .to(Images::Table, Images::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("variants_image_id_name_key")
                    .table(Variants::Table)
                    .col(Variants::ImageId)
                    .col(Variants::Name)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Variants::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(VariantJobs::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Images {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum VariantJobs {
    Table,
    Id,
    ImageId,
    State,
    Attempts,
    LastError,
    LeaseUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Variants {
    Table,
    Id,
    ImageId,
    Name,
    Width,
    Height,
    Path,
    Size,
    Sha256,
    CreatedAt,
}
