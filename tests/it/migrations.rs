//! Migrations up → status → down → status → up, on SQLite and PostgreSQL.

use crate::helpers::{Sandbox, migration_names};

/// Runs `kitteh` with `args` and returns its stdout, failing the test
/// unless it exits 0.
fn run(sb: &Sandbox, args: &[&str]) -> String {
    let out = sb.kitteh().args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "kitteh {args:?}:\n{stdout}\n{stderr}"
    );
    stdout
}

/// `migrate status` as (state, name) pairs, one per migration this build
/// knows, in order: an empty or partial listing fails here.
fn status(sb: &Sandbox) -> Vec<(String, String)> {
    let out = run(sb, &["migrate", "status"]);
    let rows: Vec<(String, String)> = out
        .lines()
        .map(|l| {
            let mut words = l.split_whitespace();
            let state = words.next().unwrap_or_default().to_string();
            let name = words.next().unwrap_or_default().to_string();
            assert_eq!(words.next(), None, "{l}");
            (state, name)
        })
        .collect();
    let names: Vec<String> = rows.iter().map(|(_, n)| n.clone()).collect();
    assert_eq!(names, migration_names(), "{out}");
    rows
}

fn states(sb: &Sandbox) -> Vec<String> {
    status(sb).into_iter().map(|(s, _)| s).collect()
}

fn all(state: &str) -> Vec<String> {
    vec![state.to_string(); migration_names().len()]
}

fn round_trip(sb: &Sandbox) {
    let names = migration_names();
    let newest = names.last().cloned().unwrap();

    assert_eq!(states(sb), all("pending"));

    let out = run(sb, &["migrate"]);
    let expected: Vec<String> = names
        .iter()
        .map(|n| format!("applied {n}"))
        .chain(std::iter::once(format!(
            "{} migration(s) applied",
            names.len()
        )))
        .collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");

    let out = run(sb, &["migrate", "up"]);
    assert!(out.contains("nothing to do"), "{out}");
    assert!(out.contains(&newest), "{out}");
    assert_eq!(states(sb), all("applied"));

    let out = run(sb, &["migrate", "down"]);
    assert_eq!(out.trim(), format!("rolled back {newest}"));
    let mut expected = all("applied");
    *expected.last_mut().unwrap() = "pending".into();
    assert_eq!(states(sb), expected);

    let out = run(sb, &["migrate", "up"]);
    assert!(out.contains(&format!("applied {newest}")), "{out}");
    assert_eq!(states(sb), all("applied"));

    // Everything down, newest first, then everything up again: every
    // `down` works.
    let n = names.len().to_string();
    let out = run(sb, &["migrate", "down", "-n", &n]);
    let expected: Vec<String> = names
        .iter()
        .rev()
        .map(|n| format!("rolled back {n}"))
        .collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "{out}");
    assert_eq!(states(sb), all("pending"));
    let out = run(sb, &["migrate", "fresh", "--yes"]);
    assert_eq!(out.lines().count(), names.len(), "{out}");
    assert_eq!(states(sb), all("applied"));
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
