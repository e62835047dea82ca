//! Running a public or a private instance: upload keys, who uploaded what
//! and from where, expiry, reports, a blocklist of pictures, banned
//! addresses, and what is left of an image that expired or was blocked;
//! and the BlurHash pages paint while a picture loads.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UploadKeys::Table)
                    .col(
                        ColumnDef::new(UploadKeys::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(UploadKeys::Name)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    // SHA-256 of the key: the key itself is shown once.
                    .col(
                        ColumnDef::new(UploadKeys::KeyHash)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(UploadKeys::Admin)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new(UploadKeys::QuotaBytes).big_integer())
                    .col(ColumnDef::new(UploadKeys::UploadsPerMinute).integer())
                    .col(
                        ColumnDef::new(UploadKeys::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(UploadKeys::LastUsedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(UploadKeys::RevokedAt).timestamp_with_time_zone())
                    .to_owned(),
            )
            .await?;
        // SQLite accepts one change per ALTER TABLE. A key that is deleted
        // outright leaves its images without one; revoking keeps the row.
        for column in [
            ColumnDef::new(Images::KeyId)
                .big_integer()
                .null()
                .to_owned(),
            ColumnDef::new(Images::UploaderIp)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(Images::ExpiresAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
            // Painted while the picture loads; made with its sizes.
            ColumnDef::new(Images::Blurhash).string().null().to_owned(),
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
        manager
            .create_index(
                Index::create()
                    .name("images_expires_at")
                    .table(Images::Table)
                    .col(Images::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("images_key_id")
                    .table(Images::Table)
                    .col(Images::KeyId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("images_sha256")
                    .table(Images::Table)
                    .col(Images::Sha256)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("images_inserted_at")
                    .table(Images::Table)
                    .col(Images::InsertedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Reports::Table)
                    .col(
                        ColumnDef::new(Reports::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    // The token, not a foreign key: a report outlives the
                    // image it was about, as a record of what was done.
                    .col(ColumnDef::new(Reports::Token).string().not_null())
                    .col(ColumnDef::new(Reports::Reason).string().not_null())
                    .col(ColumnDef::new(Reports::Details).text().not_null())
                    .col(ColumnDef::new(Reports::ReporterIp).string().null())
                    .col(
                        ColumnDef::new(Reports::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Reports::ResolvedAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(Reports::Resolution).string().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("reports_token")
                    .table(Reports::Table)
                    .col(Reports::Token)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Blocklist::Table)
                    .col(
                        ColumnDef::new(Blocklist::Sha256)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Blocklist::Reason).string().not_null())
                    .col(
                        ColumnDef::new(Blocklist::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Bans::Table)
                    .col(ColumnDef::new(Bans::Cidr).string().not_null().primary_key())
                    .col(ColumnDef::new(Bans::Reason).string().not_null())
                    .col(
                        ColumnDef::new(Bans::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Tombstones::Table)
                    .col(
                        ColumnDef::new(Tombstones::Token)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Tombstones::Reason).string().not_null())
                    .col(
                        ColumnDef::new(Tombstones::GoneAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Tombstones::Table.into_iden(),
            Bans::Table.into_iden(),
            Blocklist::Table.into_iden(),
            Reports::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for index in [
            "images_inserted_at",
            "images_sha256",
            "images_key_id",
            "images_expires_at",
        ] {
            manager
                .drop_index(Index::drop().name(index).table(Images::Table).to_owned())
                .await?;
        }
        for column in [
            Images::Blurhash,
            Images::ExpiresAt,
            Images::UploaderIp,
            Images::KeyId,
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
        manager
            .drop_table(Table::drop().table(UploadKeys::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum UploadKeys {
    Table,
    Id,
    Name,
    KeyHash,
    Admin,
    QuotaBytes,
    UploadsPerMinute,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Images {
    Table,
    KeyId,
    UploaderIp,
    ExpiresAt,
    Blurhash,
    InsertedAt,
    Sha256,
}

#[derive(DeriveIden)]
enum Reports {
    Table,
    Id,
    Token,
    Reason,
    Details,
    ReporterIp,
    CreatedAt,
    ResolvedAt,
    Resolution,
}

#[derive(DeriveIden)]
enum Blocklist {
    Table,
    Sha256,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Bans {
    Table,
    Cidr,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Tombstones {
    Table,
    Token,
    Reason,
    GoneAt,
}
