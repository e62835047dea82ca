use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tombstones")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub token: String,
    /// `expired` or `blocked`.
    pub reason: String,
    pub gone_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
