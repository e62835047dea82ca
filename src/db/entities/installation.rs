use sea_orm::entity::prelude::*;

/// The installation's identity: one row, whose key is always 1.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "installation")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub singleton: i32,
    pub id: String,
    pub created_at: ChronoDateTimeUtc,
    pub checked_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
