//! `kitteh migrate`: apply, list, roll back or redo migrations.

use migration::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;

use super::Failure;
use crate::cli::MigrateAction;
use crate::db;

pub(super) async fn migrate(db: &DatabaseConnection, action: MigrateAction) -> Result<(), Failure> {
    match action {
        MigrateAction::Up => {
            let state = db::schema_state(db).await?;
            if state.is_current() {
                outln!(
                    "nothing to do: the database is at {}",
                    state.latest_applied()
                );
                return Ok(());
            }
            db::apply_pending(db, &state.pending, |name| outln!("applied {name}")).await?;
            outln!("{} migration(s) applied", state.pending.len());
        }
        MigrateAction::Status => {
            let all = Migrator::get_migration_with_status_read_only(db).await?;
            for m in &all {
                let status = match m.status() {
                    migration::MigrationStatus::Applied => "applied",
                    migration::MigrationStatus::Pending => "pending",
                };
                outln!("{status:<8} {}", m.name());
            }
        }
        MigrateAction::Down { steps } => {
            let state = db::schema_state(db).await?;
            if state.applied.is_empty() {
                outln!("nothing to roll back: no migration is applied");
                return Ok(());
            }
            for name in state.applied.iter().rev().take(steps as usize) {
                Migrator::down(db, Some(1)).await?;
                outln!("rolled back {name}");
            }
        }
        MigrateAction::Fresh { yes } => {
            if !yes {
                return Err(Failure::config(
                    "`migrate fresh` drops every table and deletes all data; \
                     run it again with --yes to confirm",
                ));
            }
            Migrator::fresh(db).await?;
            for name in db::schema_state(db).await?.applied {
                outln!("applied {name}");
            }
        }
    }
    Ok(())
}
