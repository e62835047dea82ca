//! Kitteh's schema, one file per migration. A migration that has shipped is
//! never edited: change the schema with a new one.

pub use sea_orm_migration::MigrationStatus;
pub use sea_orm_migration::prelude::*;

mod m20161001_000001_create_images;
mod m20261126_000002_add_image_facts;
mod m20261126_000003_create_variants;
mod m20261127_000004_create_installation;
mod m20261127_000005_moderation;
mod m20261127_000006_store_each_picture_once;
mod m20261201_000007_costs_that_do_not_grow;

pub use m20261201_000007_costs_that_do_not_grow::ip_key;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20161001_000001_create_images::Migration),
            Box::new(m20261126_000002_add_image_facts::Migration),
            Box::new(m20261126_000003_create_variants::Migration),
            Box::new(m20261127_000004_create_installation::Migration),
            Box::new(m20261127_000005_moderation::Migration),
            Box::new(m20261127_000006_store_each_picture_once::Migration),
            Box::new(m20261201_000007_costs_that_do_not_grow::Migration),
        ]
    }
}
