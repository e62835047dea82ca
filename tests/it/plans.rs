//! The statements the upload, delete, expiry and erasure paths run, caught
//! as the real code runs them (sqlx logs every statement it executes) and
//! each explained by the database: none of them reads every row of
//! `images`, `variants`, `reports` or `bans`, so their cost does not grow
//! with the number of pictures. A missing index fails here, not in
//! production at a million pictures.

use std::sync::Arc;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbBackend, Statement, Value};

use crate::fixtures;
use crate::helpers::{Sandbox, block_on};
use crate::logs::{self, CAUGHT};

/// Runs the upload, delete, expiry and erasure paths against `sb`, and
/// returns the statements they ran.
fn hot_statements(sb: &Sandbox) -> Vec<String> {
    logs::capture();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut options = ConnectOptions::new(sb.database_url.clone());
        options
            .sqlx_logging(true)
            .map_sqlx_sqlite_opts(|o| o.create_if_missing(true).foreign_keys(true));
        let db = Database::connect(options).await.unwrap();
        use migration::MigratorTrait;
        migration::Migrator::up(&db, None).await.unwrap();
        let mut config = kitteh::config::Config::default();
        config.database.url = sb.database_url.clone();
        config.storage.uploads_dir = sb.uploads();
        config.privacy.ip_retention_days = 1;
        let services = kitteh::app::Services::over(config, db.clone()).unwrap();
        let moderation = services.moderation();
        let key = moderation
            .create_key("plans", Some(1 << 30), false, None)
            .await
            .unwrap();
        let addr: std::net::IpAddr = "203.0.113.9".parse().unwrap();
        moderation.ban("198.51.100.0/24", "spam").await.unwrap();
        logs::take_statements();
        // The upload path, twice with the same bytes (the second shares).
        let upload = |n: u32| {
            let services = &services;
            let key = key.clone();
            async move {
                let uploader = services
                    .moderation()
                    .admit_upload(Some(addr), Some(&key))
                    .await
                    .unwrap();
                let uploader = kitteh::service::model::Uploader {
                    expires_at: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
                    ..uploader
                };
                services
                    .images()
                    .upload(kitteh::service::images::NewUpload {
                        bytes: fixtures::png(40 + n % 2, 30).into(),
                        file_name: Some("p.png".into()),
                        uploader,
                    })
                    .await
                    .unwrap()
            }
        };
        let first = upload(0).await;
        let shared = upload(2).await;
        let other = upload(1).await;
        // The delete path (with its token), the expiry path, the erasure path.
        services
            .images()
            .delete(&other.image.token, Some(&other.delete_token))
            .await
            .unwrap();
        // The test's own statement is not one of the paths'.
        const AGE_THEM: &str =
            "UPDATE images SET expires_at = inserted_at, inserted_at = '2001-01-01 00:00:00+00:00'";
        db.execute_unprepared(AGE_THEM).await.unwrap();
        CAUGHT.lock().unwrap().statements.retain(|s| s != AGE_THEM);
        kitteh::service::upkeep::round(services.images(), &db, 1)
            .await
            .unwrap();
        assert!(
            moderation
                .is_banned("198.51.100.7".parse().unwrap())
                .await
                .unwrap()
        );
        let _ = (first, shared);
        logs::take_statements()
    })
}

/// The tables whose size grows with the pictures.
const LARGE: [&str; 4] = ["images", "variants", "reports", "bans"];

/// What the database plans for `sql`: one line per step.
async fn plan(db: &sea_orm::DatabaseConnection, sql: &str) -> Vec<String> {
    let backend = db.get_database_backend();
    let rows = match backend {
        DbBackend::Sqlite => {
            let params = sql.matches('?').count();
            let values = vec![Value::Int(None); params];
            db.query_all_raw(Statement::from_sql_and_values(
                backend,
                format!("EXPLAIN QUERY PLAN {sql}"),
                values,
            ))
            .await
            .unwrap()
        }
        _ => {
            // The plan for any value (not for NULLs), and no sequential
            // scan where an index can serve: a tiny test table must not
            // hide a missing index.
            let params = (1..100)
                .take_while(|n| sql.contains(&format!("${n}")))
                .count();
            let nulls = vec!["NULL"; params].join(", ");
            for set in [
                "SET plan_cache_mode = force_generic_plan",
                "SET enable_seqscan = off",
                "DEALLOCATE ALL",
            ] {
                db.execute_unprepared(set).await.unwrap();
            }
            db.execute_unprepared(&format!("PREPARE planned AS {sql}"))
                .await
                .unwrap();
            let args = if params == 0 {
                String::new()
            } else {
                format!("({nulls})")
            };
            db.query_all_raw(Statement::from_string(
                backend,
                format!("EXPLAIN EXECUTE planned{args}"),
            ))
            .await
            .unwrap()
        }
    };
    rows.iter()
        .map(|row| {
            row.try_get::<String>("", "detail")
                .or_else(|_| row.try_get::<String>("", "QUERY PLAN"))
                .unwrap_or_default()
        })
        .collect()
}

/// The large tables a plan reads whole.
fn full_scans(plan: &[String]) -> Vec<String> {
    plan.iter()
        .filter(|line| {
            LARGE.iter().any(|t| {
                // SQLite: `SCAN images` (`SCAN images USING INDEX` is a walk
                // of an index, in its order). PostgreSQL: `Seq Scan on images`.
                let sqlite = line.trim() == format!("SCAN {t}")
                    || line.starts_with(&format!("SCAN {t} ")) && !line.contains("USING");
                let postgres = line.contains(&format!("Seq Scan on {t}"));
                sqlite || postgres
            })
        })
        .cloned()
        .collect()
}

fn no_full_scans(sb: &Sandbox) {
    let statements = hot_statements(sb);
    let mut checked = 0;
    let mut scans = Vec::new();
    // One connection: PostgreSQL prepares a statement for the session.
    let mut one = ConnectOptions::new(sb.database_url.clone());
    one.max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    let db = block_on(Database::connect(one)).unwrap();
    let db = Arc::new(db);
    for sql in statements.iter().filter(|s| {
        let head = s.trim_start().to_ascii_uppercase();
        (head.starts_with("SELECT") || head.starts_with("UPDATE") || head.starts_with("DELETE"))
            && LARGE
                .iter()
                .any(|t| s.contains(&format!("\"{t}\"")) || s.contains(&format!(" {t} ")))
    }) {
        let plan = block_on(plan(&db, sql));
        checked += 1;
        let found = full_scans(&plan);
        if !found.is_empty() {
            scans.push(format!("{sql}\n  → {}", found.join("; ")));
        }
    }
    assert!(
        checked >= 15,
        "only {checked} statements caught: {statements:#?}"
    );
    assert!(
        scans.is_empty(),
        "full scans of large tables:\n{}",
        scans.join("\n")
    );
}

#[test]
fn the_upload_delete_expiry_and_erasure_paths_read_no_large_table_whole() {
    no_full_scans(&Sandbox::sqlite());
    if let Some(pg) = Sandbox::postgres() {
        no_full_scans(&pg);
    }
}

#[test]
fn a_missing_index_is_caught() {
    // The check itself, on a statement that has no index to use.
    let sb = Sandbox::sqlite();
    block_on(async {
        let db = Database::connect(format!("{}?mode=rwc", sb.database_url))
            .await
            .unwrap();
        use migration::MigratorTrait;
        migration::Migrator::up(&db, None).await.unwrap();
        let found = full_scans(&plan(&db, "SELECT id FROM images WHERE original_name = ?").await);
        assert_eq!(found.len(), 1, "{found:?}");
        let fine = full_scans(&plan(&db, "SELECT id FROM images WHERE path = ?").await);
        assert!(fine.is_empty(), "{fine:?}");
    });
}
