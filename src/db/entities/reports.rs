use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reports")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub token: String,
    pub reason: String,
    #[sea_orm(column_type = "Text")]
    pub details: String,
    pub reporter_ip: Option<String>,
    pub created_at: ChronoDateTimeUtc,
    pub resolved_at: Option<ChronoDateTimeUtc>,
    pub resolution: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
