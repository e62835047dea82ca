//! What an instance of a million pictures needs to behave like one of ten
//! thousand: indexes for the statements every upload, delete and expiry
//! runs (the objects a path names, the addresses still kept, open
//! reports), an address key that CIDR searches can use, a table for names
//! reserved while their objects are written, and running totals (pictures,
//! sizes, bytes, jobs by state, each key's uploads and bytes) kept by
//! triggers, so that no figure is a sum over every row.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Indexes and what they are for, as plain SQL both databases read.
const INDEXES: [&str; 7] = [
    // How many names share an object: every upload, delete and expiry.
    "CREATE INDEX images_path ON images (path)",
    // Whether a listed object is a size: the sweep and fsck.
    "CREATE INDEX variants_path ON variants (path)",
    // Addresses still kept, oldest first: erasure touches only those due.
    "CREATE INDEX images_addresses_kept ON images (inserted_at) WHERE uploader_ip IS NOT NULL",
    // `images list --ip CIDR` and `ban add --purge`: a range of addresses.
    "CREATE INDEX images_ip_key ON images (uploader_ip_key) WHERE uploader_ip_key IS NOT NULL",
    // Open reports, for the moderation page and `reports list`.
    "CREATE INDEX reports_open ON reports (id) WHERE resolved_at IS NULL",
    // Reporters' addresses still kept.
    "CREATE INDEX reports_addresses_kept ON reports (created_at) WHERE reporter_ip IS NOT NULL",
    // A key's uploads, newest first: `images list --key`, "my uploads".
    "CREATE INDEX images_key_newest ON images (key_id, id)",
];

const TALLIES: [&str; 7] = [
    "images",
    "sizes",
    "stored_bytes",
    "jobs_pending",
    "jobs_running",
    "jobs_done",
    "jobs_failed",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        add_columns(manager).await?;
        backfill_ip_keys(db).await?;
        for index in INDEXES {
            db.execute_unprepared(index).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Reservations::Table)
                    .col(
                        ColumnDef::new(Reservations::Token)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Reservations::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Tallies::Table)
                    .col(
                        ColumnDef::new(Tallies::Name)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Tallies::Value)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        backfill_tallies(db).await?;
        for statement in triggers(backend) {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        for statement in drop_triggers(backend) {
            db.execute_unprepared(&statement).await?;
        }
        manager
            .drop_table(Table::drop().table(Tallies::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Reservations::Table).to_owned())
            .await?;
        for index in INDEXES {
            // `CREATE INDEX name ON …`
            let name = index.split_whitespace().nth(2).unwrap_or_default();
            db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
        }
        for (table, column) in [
            ("images", "uploader_ip_key"),
            ("upload_keys", "uploads"),
            ("upload_keys", "bytes"),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

async fn add_columns(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    // SQLite accepts one change per ALTER TABLE.
    for (table, column) in [
        (
            Alias::new("images"),
            ColumnDef::new(Alias::new("uploader_ip_key"))
                .string()
                .null()
                .to_owned(),
        ),
        (
            Alias::new("upload_keys"),
            ColumnDef::new(Alias::new("uploads"))
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
        ),
        (
            Alias::new("upload_keys"),
            ColumnDef::new(Alias::new("bytes"))
                .big_integer()
                .not_null()
                .default(0)
                .to_owned(),
        ),
    ] {
        manager
            .alter_table(Table::alter().table(table).add_column(column).to_owned())
            .await?;
    }
    Ok(())
}

/// The address as 32 hex digits of its IPv6 form (IPv4 as `::ffff:a.b.c.d`),
/// so that a CIDR is a range of keys. Kept in step with `kitteh`'s own.
pub fn ip_key(ip: std::net::IpAddr) -> String {
    let v6 = match ip {
        std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        std::net::IpAddr::V6(v6) => v6,
    };
    format!("{:032x}", u128::from(v6))
}

async fn backfill_ip_keys(db: &SchemaManagerConnection<'_>) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT id, uploader_ip FROM images WHERE uploader_ip IS NOT NULL",
        ))
        .await?;
    let sql = match backend {
        DbBackend::Postgres => "UPDATE images SET uploader_ip_key = $1 WHERE id = $2",
        _ => "UPDATE images SET uploader_ip_key = ? WHERE id = ?",
    };
    for row in rows {
        let id: i64 = row.try_get("", "id")?;
        let ip: String = row.try_get("", "uploader_ip")?;
        if let Ok(ip) = ip.parse::<std::net::IpAddr>() {
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [ip_key(ip.to_canonical()).into(), id.into()],
            ))
            .await?;
        }
    }
    Ok(())
}

async fn backfill_tallies(db: &SchemaManagerConnection<'_>) -> Result<(), DbErr> {
    for name in TALLIES {
        let value = match name {
            "images" => "(SELECT COUNT(*) FROM images)".to_string(),
            "sizes" => "(SELECT COUNT(*) FROM variants)".to_string(),
            "stored_bytes" => "(COALESCE((SELECT SUM(size) FROM images), 0) \
                               + COALESCE((SELECT SUM(size) FROM variants), 0))"
                .to_string(),
            job => format!(
                "(SELECT COUNT(*) FROM variant_jobs WHERE state = '{}')",
                job.trim_start_matches("jobs_")
            ),
        };
        db.execute_unprepared(&format!(
            "INSERT INTO tallies (name, value) VALUES ('{name}', CAST({value} AS BIGINT))"
        ))
        .await?;
    }
    db.execute_unprepared(
        "UPDATE upload_keys SET \
         uploads = (SELECT COUNT(*) FROM images WHERE images.key_id = upload_keys.id), \
         bytes = CAST(COALESCE((SELECT SUM(size) FROM images WHERE images.key_id = upload_keys.id), 0) AS BIGINT)",
    )
    .await?;
    Ok(())
}

/// What each change to a row adds to the totals, in the dialect's
/// `NEW`/`OLD` terms: (table, event, statements).
fn effects() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        (
            "images",
            "INSERT",
            vec![
                "UPDATE tallies SET value = value + 1 WHERE name = 'images'",
                "UPDATE tallies SET value = value + NEW.size WHERE name = 'stored_bytes'",
                "UPDATE upload_keys SET uploads = uploads + 1, bytes = bytes + NEW.size WHERE id = NEW.key_id",
            ],
        ),
        (
            "images",
            "DELETE",
            vec![
                "UPDATE tallies SET value = value - 1 WHERE name = 'images'",
                "UPDATE tallies SET value = value - OLD.size WHERE name = 'stored_bytes'",
                "UPDATE upload_keys SET uploads = uploads - 1, bytes = bytes - OLD.size WHERE id = OLD.key_id",
            ],
        ),
        (
            "variants",
            "INSERT",
            vec![
                "UPDATE tallies SET value = value + 1 WHERE name = 'sizes'",
                "UPDATE tallies SET value = value + NEW.size WHERE name = 'stored_bytes'",
            ],
        ),
        (
            "variants",
            "DELETE",
            vec![
                "UPDATE tallies SET value = value - 1 WHERE name = 'sizes'",
                "UPDATE tallies SET value = value - OLD.size WHERE name = 'stored_bytes'",
            ],
        ),
        (
            "variant_jobs",
            "INSERT",
            vec!["UPDATE tallies SET value = value + 1 WHERE name = 'jobs_' || NEW.state"],
        ),
        (
            "variant_jobs",
            "DELETE",
            vec!["UPDATE tallies SET value = value - 1 WHERE name = 'jobs_' || OLD.state"],
        ),
        (
            "variant_jobs",
            "UPDATE",
            vec![
                "UPDATE tallies SET value = value - 1 WHERE name = 'jobs_' || OLD.state AND OLD.state <> NEW.state",
                "UPDATE tallies SET value = value + 1 WHERE name = 'jobs_' || NEW.state AND OLD.state <> NEW.state",
            ],
        ),
    ]
}

fn trigger_name(table: &str, event: &str) -> String {
    format!("{table}_tally_{}", event.to_ascii_lowercase())
}

fn triggers(backend: DbBackend) -> Vec<String> {
    let mut out = Vec::new();
    for (table, event, statements) in effects() {
        let name = trigger_name(table, event);
        match backend {
            DbBackend::Postgres => {
                let body: String = statements.iter().map(|s| format!("{s};\n")).collect();
                let row = if event == "DELETE" { "OLD" } else { "NEW" };
                out.push(format!(
                    "CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN\n{body}RETURN {row};\nEND $$ LANGUAGE plpgsql"
                ));
                out.push(format!(
                    "CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()"
                ));
            }
            _ => {
                let body: String = statements.iter().map(|s| format!("{s};\n")).collect();
                out.push(format!(
                    "CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW BEGIN\n{body}END"
                ));
            }
        }
    }
    out
}

fn drop_triggers(backend: DbBackend) -> Vec<String> {
    let mut out = Vec::new();
    for (table, event, _) in effects() {
        let name = trigger_name(table, event);
        match backend {
            DbBackend::Postgres => {
                out.push(format!("DROP TRIGGER {name} ON {table}"));
                out.push(format!("DROP FUNCTION {name}()"));
            }
            _ => out.push(format!("DROP TRIGGER {name}")),
        }
    }
    out
}

#[derive(DeriveIden)]
enum Reservations {
    Table,
    Token,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Tallies {
    Table,
    Name,
    Value,
}
