//! Migrations up → status → down → status → up, on SQLite and PostgreSQL.

use crate::helpers::Sandbox;

fn run(sb: &Sandbox, args: &[&str]) -> (i32, String, String) {
    let out = sb.kitteh().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn round_trip(sb: &Sandbox) {
    let newest = migration_names().last().cloned().unwrap();

    let (code, out, err) = run(sb, &["migrate", "status"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().all(|l| l.starts_with("pending")), "{out}");
    assert_eq!(out.lines().count(), migration_names().len());

    let (code, out, err) = run(sb, &["migrate"]);
    assert_eq!(code, 0, "{err}");
    for name in migration_names() {
        assert!(out.contains(&format!("applied {name}")), "{out}");
    }

    let (code, out, _) = run(sb, &["migrate", "up"]);
    assert_eq!(code, 0);
    assert!(out.contains("nothing to do"), "{out}");

    let (_, out, _) = run(sb, &["migrate", "status"]);
    assert!(out.lines().all(|l| l.starts_with("applied")), "{out}");

    let (code, out, err) = run(sb, &["migrate", "down"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("rolled back {newest}"));

    let (_, out, _) = run(sb, &["migrate", "status"]);
    assert!(out.contains(&format!("pending  {newest}")), "{out}");

    let (code, out, err) = run(sb, &["migrate", "up"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("applied {newest}")), "{out}");

    // Everything down, then everything up again: every `down` works.
    let n = migration_names().len().to_string();
    let (code, out, err) = run(sb, &["migrate", "down", "-n", &n]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), migration_names().len(), "{out}");
    let (_, out, _) = run(sb, &["migrate", "status"]);
    assert!(out.lines().all(|l| l.starts_with("pending")), "{out}");
    let (code, _, err) = run(sb, &["migrate", "fresh", "--yes"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = run(sb, &["migrate", "status"]);
    assert!(out.lines().all(|l| l.starts_with("applied")), "{out}");
}

fn migration_names() -> Vec<String> {
    use migration::MigratorTrait;
    migration::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect()
}

#[test]
fn migrations_round_trip_on_sqlite() {
    let sb = Sandbox::sqlite();
    round_trip(&sb);
    assert!(sb.path().join("kitteh.db").is_file());
}

#[test]
fn migrations_round_trip_on_postgres() {
    let Some(sb) = Sandbox::postgres() else {
        return;
    };
    round_trip(&sb);
}

#[test]
fn the_sqlite_database_and_its_folder_are_created_when_missing() {
    let sb = Sandbox::sqlite();
    let url = format!("sqlite://{}/nested/deeper/k.db", sb.path().display());
    let out = sb
        .kitteh()
        .env("KITTEH_DATABASE__URL", &url)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(sb.path().join("nested/deeper/k.db").is_file());
}

#[test]
fn an_unreachable_postgres_is_a_clear_runtime_error() {
    let sb = Sandbox::sqlite();
    let port = crate::helpers::free_port();
    let out = sb
        .kitteh()
        .env(
            "KITTEH_DATABASE__URL",
            format!("postgres://k:secretpw@127.0.0.1:{port}/k"),
        )
        .env("KITTEH_DATABASE__CONNECT_TIMEOUT", "2")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to the database"), "{err}");
    assert!(!err.contains("secretpw"), "{err}");
}
