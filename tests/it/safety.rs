//! Operator mistakes must not lose data, and readiness must tell the
//! truth: an empty or foreign database in front of used storage, a sweep
//! that would remove too much, a database file deleted or read-only under
//! a running server, a forged Host, jobs left behind by a crash or a
//! shutdown.

use std::time::{Duration, Instant};

use crate::fixtures;
use crate::helpers::{Sandbox, Server, files_in, wait_until};

/// Uploads `n` images and waits for their sizes; returns their tokens.
fn upload_some(server: &Server, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let res = server.upload(
                &format!("{i}.png"),
                "image/png",
                &fixtures::png(120 + i as u32, 80),
            );
            assert_eq!(res.status, 201, "{}", res.text());
            let token = res.json()["token"].as_str().unwrap().to_string();
            server.wait_sizes(&token, "ready");
            token
        })
        .collect()
}

fn trash_in(sb: &Sandbox) -> Vec<String> {
    files_in(&sb.uploads().join(".trash"))
}

fn doctor(sb: &Sandbox, extra: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = sb.kitteh();
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.arg("doctor").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn an_empty_database_started_against_full_storage_removes_nothing_and_is_not_ready() {
    let sb = Sandbox::sqlite();
    let lost = sb.database_url.clone();
    // The database is lost (or DATABASE_URL points at a new one).
    let lose = |sb: &Sandbox| std::fs::remove_file(sb.path().join("kitteh.db")).unwrap();
    empty_database_against_full_storage(&sb, &lost, lose);
}

#[test]
fn an_empty_postgres_database_started_against_full_storage_removes_nothing() {
    let Some(sb) = Sandbox::postgres() else {
        return;
    };
    // DATABASE_URL now names a new, empty database.
    let Some(fresh) = Sandbox::postgres() else {
        return;
    };
    empty_database_against_full_storage(&sb, &fresh.database_url, |_| {});
}

fn empty_database_against_full_storage(sb: &Sandbox, then_url: &str, lose: impl FnOnce(&Sandbox)) {
    let env = [("KITTEH_DATABASE__URL", then_url)];
    {
        let server = Server::start(sb, &["--migrate"]);
        upload_some(&server, 3);
    }
    let stored = files_in(&sb.uploads());
    assert_eq!(stored.len(), 12);
    lose(sb);
    let mut cmd = sb.kitteh();
    cmd.envs(env)
        .env("KITTEH_STORAGE__SWEEP_MIN_AGE_SECONDS", "0");
    let server = Server::start_unready(cmd, &["--migrate"]);
    let log = server.wait_for_log("the sweep", |l| l.contains("storage sweep"));
    assert!(log.contains("storage sweep refused"), "{log}");
    assert_eq!(files_in(&sb.uploads()), stored, "nothing was removed");
    assert!(trash_in(sb).is_empty());
    let ready = server.get("/readyz", &[]);
    assert_eq!(ready.status, 503);
    let body = ready.json();
    assert_eq!(
        body["failed"],
        serde_json::json!(["installation"]),
        "{body}"
    );
    // The public body names the check only; the details are the operator's.
    assert!(!ready.text().contains(&sb.uploads().display().to_string()));
    assert!(
        body["checks"]["installation"].get("error").is_none(),
        "{body}"
    );
    let (code, text) = doctor(sb, &env);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("FAIL installation") && text.contains("DATABASE_URL"),
        "{text}"
    );

    // Told that this database is the right one, the server is ready, and
    // still removes nothing: the database knows no image.
    drop(server);
    let out = sb
        .kitteh()
        .envs(env)
        .args(["storage", "fsck", "--adopt"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("no row:"), "{text}");
    let mut cmd = sb.kitteh();
    cmd.envs(env)
        .env("KITTEH_STORAGE__SWEEP_MIN_AGE_SECONDS", "0");
    let server = Server::start_with(cmd, &[]);
    let log = server.wait_for_log("the sweep", |l| l.contains("storage sweep"));
    assert!(log.contains("the database holds no image"), "{log}");
    assert_eq!(files_in(&sb.uploads()), stored);
}

#[test]
fn a_database_of_another_installation_is_refused_the_same_way() {
    another_installation(&Sandbox::sqlite(), &Sandbox::sqlite());
}

#[test]
fn a_postgres_database_of_another_installation_is_refused_the_same_way() {
    let (Some(mine), Some(other)) = (Sandbox::postgres(), Sandbox::postgres()) else {
        return;
    };
    another_installation(&mine, &other);
}

fn another_installation(mine: &Sandbox, other: &Sandbox) {
    {
        let server = Server::start(mine, &["--migrate"]);
        upload_some(&server, 2);
        let server = Server::start(other, &["--migrate"]);
        upload_some(&server, 1);
    }
    // My storage, the other installation's database.
    let mut cmd = mine.kitteh();
    cmd.env("KITTEH_DATABASE__URL", &other.database_url)
        .env("KITTEH_STORAGE__SWEEP_MIN_AGE_SECONDS", "0");
    let before = files_in(&mine.uploads());
    let server = Server::start_unready(cmd, &[]);
    let log = server.wait_for_log("the sweep", |l| l.contains("storage sweep"));
    assert!(log.contains("but storage to installation"), "{log}");
    assert_eq!(files_in(&mine.uploads()), before);
    assert_eq!(server.get("/readyz", &[]).status, 503);
}

#[test]
fn one_pass_moves_only_a_share_to_the_trash_and_later_passes_the_rest() {
    let sb = Sandbox::sqlite();
    let token = {
        let server = Server::start(&sb, &["--migrate"]);
        upload_some(&server, 1).remove(0)
    };
    for i in 0..30 {
        std::fs::write(sb.uploads().join(format!("orphan{i:02}kitten.png")), b"x").unwrap();
    }
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_STORAGE__SWEEP_MIN_AGE_SECONDS", "0")
        .env("KITTEH_STORAGE__SWEEP_INTERVAL_SECONDS", "1");
    let server = Server::start_with(cmd, &[]);
    // 34 objects: at most 20 (the floor of the share) go in one pass.
    let log = server.wait_for_log("the first sweep", |l| l.contains("storage sweep finished"));
    assert!(log.contains("storage sweep limited"), "{log}");
    let first = log
        .lines()
        .find(|l| l.contains("storage sweep finished"))
        .unwrap();
    assert!(first.contains("removed=20"), "{first}");
    // The next pass takes the rest; the image's own files stay.
    wait_until("the second pass", || trash_in(&sb).len() == 30);
    let left = files_in(&sb.uploads());
    assert_eq!(left.len(), 4, "{left:?}");
    assert!(left.iter().all(|f| f.starts_with(&token)), "{left:?}");
    assert_eq!(server.get(&format!("/img/{token}"), &[]).status, 200);
}

#[test]
fn the_trash_is_emptied_after_its_days_and_fsck_restores_from_it() {
    let sb = Sandbox::sqlite();
    let token = {
        let server = Server::start(&sb, &["--migrate"]);
        upload_some(&server, 1).remove(0)
    };
    // A size goes missing (moved to the trash by hand, as a sweep with a
    // broken database would), another is simply gone, and an orphan lies
    // about.
    let large = format!("{token}-large.png");
    let tiny = format!("{token}-tiny.png");
    std::fs::create_dir_all(sb.uploads().join(".trash")).unwrap();
    std::fs::rename(
        sb.uploads().join(&large),
        sb.uploads().join(".trash").join(format!("1-{large}")),
    )
    .unwrap();
    std::fs::remove_file(sb.uploads().join(&tiny)).unwrap();
    std::fs::write(sb.uploads().join("strayorphankitten.png"), b"x").unwrap();

    let out = sb.kitteh().args(["storage", "fsck"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("missing size: {large} (in the trash)")),
        "{text}"
    );
    assert!(text.contains(&format!("missing size: {tiny}\n")), "{text}");
    assert!(text.contains("no row: strayorphankitten.png"), "{text}");

    let out = sb
        .kitteh()
        .env("KITTEH_STORAGE__SWEEP_MIN_AGE_SECONDS", "0")
        .args(["storage", "fsck", "--repair"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("restored 1 object(s) from the trash, re-queued the sizes of 1 image(s), moved 1 orphan(s)"), "{text}");
    assert!(sb.uploads().join(&large).is_file());
    assert!(
        trash_in(&sb)
            .iter()
            .any(|f| f.ends_with("strayorphankitten.png"))
    );
    // The re-queued job makes the lost size again.
    let server = Server::start(&sb, &[]);
    wait_until("the tiny size to be made again", || {
        sb.uploads().join(&tiny).is_file()
    });
    drop(server);
    // With no days to wait, the next sweep empties the trash for good.
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_STORAGE__TRASH_DAYS", "0");
    let server = Server::start_with(cmd, &[]);
    server.wait_for_log("the sweep", |l| l.contains("storage sweep finished"));
    wait_until("the trash to be emptied", || trash_in(&sb).is_empty());
    let out = sb.kitteh().args(["storage", "fsck"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_sqlite_file_deleted_under_a_running_server_stops_uploads_and_readiness() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    upload_some(&server, 1);
    std::fs::remove_file(sb.path().join("kitteh.db")).unwrap();
    let ready = server.get("/readyz", &[]);
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["failed"], serde_json::json!(["database"]));
    let res = server.upload("lost.png", "image/png", &fixtures::png(32, 32));
    assert_eq!(res.status, 503, "{}", res.text());
    assert_eq!(res.json()["error"]["code"], "database_unavailable");
    assert_eq!(res.header("retry-after"), Some("5"));
    assert!(server.log_text().contains("is gone"), "the cause is logged");
}

#[test]
fn a_read_only_database_is_not_ready_and_uploads_get_503_not_500() {
    let sb = Sandbox::sqlite();
    let ro = format!("{}?mode=ro", sb.database_url);
    read_only_database(&sb, &ro, |_| {});
}

#[test]
fn a_read_only_postgres_database_is_not_ready_and_uploads_get_503_not_500() {
    let Some(sb) = Sandbox::postgres() else {
        return;
    };
    let url = sb.database_url.clone();
    read_only_database(&sb, &url, |sb| {
        let name = sb.database_url.rsplit('/').next().unwrap_or_default();
        let statement = format!("ALTER DATABASE {name} SET default_transaction_read_only = on");
        sb.execute(&statement);
    });
}

/// With the database taking reads but refusing writes (`make_read_only`
/// runs before the server starts; `url` is how the server reaches it).
fn read_only_database(sb: &Sandbox, url: &str, make_read_only: impl FnOnce(&Sandbox)) {
    {
        let server = Server::start(sb, &["--migrate"]);
        upload_some(&server, 1);
    }
    make_read_only(sb);
    let env = [("KITTEH_DATABASE__URL", url)];
    let mut cmd = sb.kitteh();
    cmd.envs(env);
    let server = Server::start_unready(cmd, &[]);
    let ready = server.get("/readyz", &[]);
    assert_eq!(ready.status, 503);
    assert!(
        ready.json()["failed"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("database")),
        "{}",
        ready.text()
    );
    let res = server.upload("ro.png", "image/png", &fixtures::png(32, 32));
    assert_eq!(res.status, 503, "{}\n{}", res.text(), server.log_text());
    assert_eq!(res.json()["error"]["code"], "database_unavailable");
    assert_eq!(sb.count_rows(), 1);
    let (code, text) = doctor(sb, &env);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("FAIL database: error: cannot write"),
        "{text}"
    );
}

#[test]
fn a_foreign_host_gets_a_400_saying_to_set_the_public_url() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let png = fixtures::png(16, 16);
    let res = server.upload("a.png", "image/png", &png);
    let token = res.json()["token"].as_str().unwrap().to_string();
    for (path, accept) in [
        ("/", "text/html"),
        (&*format!("/img/{token}"), "*/*"),
        ("/api/images/x", "*/*"),
    ] {
        let res = server.get(path, &[("Host", "evil.example"), ("Accept", accept)]);
        assert_eq!(res.status, 400, "{path}");
        assert!(
            res.text().contains("server.public_url"),
            "{path}: {}",
            res.text()
        );
        assert!(!res.text().contains("http://evil.example"), "{path}");
    }
    // Health checks answer whatever the Host, and carry no links.
    assert_eq!(
        server.get("/healthz", &[("Host", "10.0.0.7:4000")]).status,
        200
    );
    // Loopback names pass, and an untrusted peer cannot forward a host.
    let page = server.get(
        &format!("/api/images/{token}"),
        &[
            ("Host", "localhost:1234"),
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-For", "203.0.113.9"),
        ],
    );
    assert_eq!(page.status, 200);
    // Nor is the client it names: the log has the peer.
    let log = server.wait_for_log("the request line", |l| l.contains("/api/images/"));
    assert!(log.contains("client=127.0.0.1"), "{log}");
    assert!(!log.contains("203.0.113.9"), "{log}");
    assert!(
        page.json()["page_url"]
            .as_str()
            .unwrap()
            .starts_with("http://localhost:1234/")
    );
    assert_eq!(page.header("cache-control"), Some("private, no-cache"));
}

#[test]
fn configured_hosts_and_trusted_proxies_shape_the_links() {
    let sb = Sandbox::sqlite();
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_SERVER__ALLOWED_HOSTS", "[\"kitteh.example\"]")
        .env("KITTEH_SERVER__TRUSTED_PROXIES", "[\"127.0.0.1/32\"]");
    let server = Server::start_unready(cmd, &["--migrate"]);
    let res = server.upload("a.png", "image/png", &fixtures::png(16, 16));
    // 127.0.0.1 is no longer an allowed name once the list is set.
    assert_eq!(res.status, 400, "{}", res.text());
    let token = {
        let res = server.upload_with(
            &fixtures::png(16, 16),
            &[],
            &[
                ("X-Forwarded-Host", "kitteh.example"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-For", "203.0.113.7, 127.0.0.1"),
            ],
        );
        assert_eq!(res.status, 201);
        let v = res.json();
        assert!(
            v["page_url"]
                .as_str()
                .unwrap()
                .starts_with("https://kitteh.example/"),
            "{v}"
        );
        v["token"].as_str().unwrap().to_string()
    };
    // The client is the nearest forwarded address that is not a proxy.
    let log = server.wait_for_log("the upload's request line", |l| {
        l.contains("client=203.0.113.7")
    });
    assert!(log.contains("status=201"), "{log}");
    let page = server.get(
        &format!("/api/images/{token}"),
        &[("Host", "kitteh.example:4000")],
    );
    assert_eq!(page.status, 200);
    assert!(
        page.json()["page_url"]
            .as_str()
            .unwrap()
            .starts_with("http://kitteh.example:4000/")
    );
}

#[test]
fn a_job_killed_on_sqlite_resumes_at_once_after_a_restart() {
    let sb = Sandbox::sqlite();
    let mut slow = sb.kitteh();
    // A long lease: only the startup reclaim can explain a quick resume.
    slow.env("KITTEH_VARIANTS__WORK_DELAY_MS", "60000")
        .env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0")
        .env("KITTEH_VARIANTS__LEASE_SECONDS", "300");
    let mut server = Server::start_with(slow, &["--migrate"]);
    let res = server.upload("a.jpg", "image/jpeg", &fixtures::jpeg(640, 480));
    let token = res.json()["token"].as_str().unwrap().to_string();
    server.wait_sizes(&token, "running");
    server.stop();
    let mut fast = sb.kitteh();
    fast.env("KITTEH_VARIANTS__LEASE_SECONDS", "300");
    let started = Instant::now();
    let server = Server::start_with(fast, &[]);
    server.wait_sizes(&token, "ready");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(
        server
            .log_text()
            .contains("resuming resize jobs left running")
    );
    assert_eq!(
        sb.sql_i64("SELECT CAST(attempts AS BIGINT) FROM variant_jobs"),
        vec![2]
    );
}

#[test]
fn a_graceful_shutdown_hands_its_running_job_back() {
    graceful_shutdown_hands_back(&Sandbox::sqlite());
}

#[test]
fn a_graceful_shutdown_on_postgres_hands_its_running_job_back() {
    let Some(sb) = Sandbox::postgres() else {
        return;
    };
    graceful_shutdown_hands_back(&sb);
}

fn graceful_shutdown_hands_back(sb: &Sandbox) {
    let mut slow = sb.kitteh();
    slow.env("KITTEH_VARIANTS__WORK_DELAY_MS", "60000")
        .env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0")
        .env("KITTEH_VARIANTS__LEASE_SECONDS", "300");
    let mut server = Server::start_with(slow, &["--migrate"]);
    let res = server.upload("a.jpg", "image/jpeg", &fixtures::jpeg(320, 240));
    let token = res.json()["token"].as_str().unwrap().to_string();
    server.wait_sizes(&token, "running");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        server.child.wait().unwrap().code(),
        Some(0),
        "{}",
        server.log_text()
    );
    assert!(
        server.log_text().contains("job handed back to the queue"),
        "{}",
        server.log_text()
    );
    // Back in the queue, its attempt not counted, no lease to wait out.
    assert_eq!(
        sb.sql_text("SELECT state FROM variant_jobs"),
        vec!["pending"]
    );
    assert_eq!(
        sb.sql_i64("SELECT CAST(attempts AS BIGINT) FROM variant_jobs"),
        vec![0]
    );
    let server = Server::start(sb, &[]);
    server.wait_sizes(&token, "ready");
    assert_eq!(
        sb.sql_i64("SELECT CAST(attempts AS BIGINT) FROM variant_jobs"),
        vec![1]
    );
}

#[test]
fn display_names_lose_bidi_overrides_and_zero_width_characters() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let res = server.upload(
        "invoice\u{202E}gpj.exe\u{200B}",
        "image/png",
        &fixtures::png(8, 8),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.json()["original_name"], "invoicegpj.exe");
}
