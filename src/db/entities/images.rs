use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "images")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub original_name: String,
    #[sea_orm(unique)]
    pub token: String,
    pub generated_name: String,
    #[sea_orm(column_name = "type")]
    pub kind: String,
    pub content_type: String,
    pub path: String,
    pub size: i64,
    pub inserted_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
    pub width: i32,
    pub height: i32,
    pub sha256: String,
    pub delete_token_hash: String,
    pub key_id: Option<i64>,
    pub uploader_ip: Option<String>,
    /// The address as a sortable key (`migration::ip_key`), for CIDR ranges.
    pub uploader_ip_key: Option<String>,
    pub expires_at: Option<ChronoDateTimeUtc>,
    pub blurhash: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
