//! `kitteh serve`: the stale-schema guard, readiness, health checks.

use crate::helpers::{Sandbox, Server};

fn refuses_a_stale_schema(sb: &Sandbox) {
    let out = sb
        .kitteh()
        .args(["serve", "--port", &crate::helpers::free_port().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("latest applied migration is none"), "{err}");
    let expects = format!("this build expects {}", crate::helpers::newest_migration());
    assert!(err.contains(&expects), "{err}");
    assert!(err.contains("kitteh migrate"), "{err}");
}

#[test]
fn serve_refuses_an_unmigrated_sqlite_database() {
    refuses_a_stale_schema(&Sandbox::sqlite());
}

#[test]
fn serve_refuses_an_unmigrated_postgres_database() {
    let Some(sb) = Sandbox::postgres() else {
        return;
    };
    refuses_a_stale_schema(&sb);
}

#[test]
fn serve_refuses_when_one_migration_is_behind() {
    let sb = Sandbox::sqlite();
    assert!(sb.kitteh().arg("migrate").status().unwrap().success());
    assert!(
        sb.kitteh()
            .args(["migrate", "down"])
            .status()
            .unwrap()
            .success()
    );
    let out = sb
        .kitteh()
        .args(["serve", "--port", &crate::helpers::free_port().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 pending"), "{err}");
}

fn serves_when_migrated_with_the_flag(sb: &Sandbox) {
    let mut server = Server::start(sb, &["--migrate"]);

    // Each migration applied is logged once, not once per library layer.
    let log = server.log_text();
    use migration::MigratorTrait;
    for m in migration::Migrator::migrations() {
        assert_eq!(log.matches(m.name()).count(), 1, "{}:\n{log}", m.name());
    }

    let res = server.get("/healthz", &[]);
    assert_eq!(res.status, 200);

    let res = server.get("/readyz", &[]);
    assert_eq!(res.status, 200);
    let id = res.header("x-request-id").unwrap().to_string();
    assert_eq!(id.len(), 16, "{id}");
    let body = res.json();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["schema"]["ok"], true);

    // kitteh healthcheck agrees while it runs...
    let out = sb
        .kitteh()
        .args(["healthcheck", &server.url("/readyz")])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ... and with no URL, derives it from the configured port.
    let out = sb
        .kitteh()
        .env("KITTEH_SERVER__PORT", server.port.to_string())
        .arg("healthcheck")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The request log names method, path, status and request id.
    assert!(server.log_text().contains(&id), "{}", server.log_text());

    server.stop();
    let out = sb
        .kitteh()
        .args(["healthcheck", &server.url("/readyz")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn serve_with_migrate_starts_and_is_ready_on_sqlite() {
    serves_when_migrated_with_the_flag(&Sandbox::sqlite());
}

#[test]
fn serve_with_migrate_starts_and_is_ready_on_postgres() {
    let Some(sb) = Sandbox::postgres() else {
        return;
    };
    serves_when_migrated_with_the_flag(&sb);
}

#[test]
fn auto_migrate_in_config_also_migrates() {
    let sb = Sandbox::sqlite();
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_DATABASE__AUTO_MIGRATE", "true");
    let _server = Server::start_with(cmd, &[]);
    let out = sb.kitteh().args(["migrate", "status"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("pending"));
}

#[test]
fn readyz_answers_503_naming_the_schema_check_when_a_migration_is_rolled_back_underneath() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    assert!(
        sb.kitteh()
            .args(["migrate", "down"])
            .status()
            .unwrap()
            .success()
    );
    let res = server.get("/readyz", &[]);
    assert_eq!(res.status, 503);
    let body = res.json();
    assert_eq!(body["failed"][0], "schema");
    // What to do about it is the operator's to read, in the log or from
    // `kitteh doctor`, not the public's.
    assert!(body["checks"]["schema"].get("error").is_none(), "{body}");
    server.wait_for_log("the failure", |log| log.contains("kitteh migrate"));
    let doctor = sb.kitteh().arg("doctor").output().unwrap();
    assert_eq!(doctor.status.code(), Some(1));
    let text = String::from_utf8_lossy(&doctor.stderr).into_owned()
        + &String::from_utf8_lossy(&doctor.stdout);
    assert!(text.contains("kitteh migrate"), "{text}");
    let out = sb
        .kitteh()
        .args(["healthcheck", &server.url("/readyz")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("503"));
}

#[test]
fn json_logs_are_one_object_per_line_with_request_fields() {
    let sb = Sandbox::sqlite();
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_LOG__FORMAT", "json");
    let server = Server::start_with(cmd, &["--migrate"]);
    let res = server.get("/healthz", &[]);
    assert_eq!(res.status, 200);
    let log = server.wait_for_log("the /healthz request line", |log| {
        log.contains("\"path\":\"/healthz\"")
    });
    // Every line, startup included, is one JSON object: a collector that
    // parses line by line must never meet anything else.
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("not a JSON object ({e}): {l}"))
        })
        .collect();
    assert!(lines.iter().all(serde_json::Value::is_object));
    let line = lines
        .iter()
        .find(|v| v["path"] == "/healthz")
        .unwrap_or_else(|| panic!("no JSON request line in {log}"));
    assert_eq!(line["method"], "GET");
    assert_eq!(line["status"], 200);
    assert!(line["request_id"].as_str().is_some());
    assert!(line["duration_ms"].as_f64().is_some());
}

#[test]
fn an_unknown_path_gets_a_json_404() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let res = server.get("/no/such/thing", &[]);
    assert_eq!(res.status, 404);
    let body = res.json();
    assert!(body["error"]["message"].as_str().is_some());
}
