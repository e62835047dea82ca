//! Resize jobs: durable across kill -9 and restarts, failing after N
//! attempts, rebuilt on demand by `kitteh variants rebuild`, stopped at the
//! decode time limit, and shared by several replicas.

use crate::fixtures;
use crate::helpers::{Sandbox, Server, dims_of, files_in, wait_until};

#[test]
fn a_job_killed_mid_resize_is_finished_after_a_restart() {
    let sb = Sandbox::sqlite();
    let mut slow = sb.kitteh();
    slow.env("KITTEH_VARIANTS__WORK_DELAY_MS", "60000")
        .env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0")
        .env("KITTEH_VARIANTS__LEASE_SECONDS", "2");
    let mut server = Server::start_with(slow, &["--migrate"]);
    let res = server.upload("a.jpg", "image/jpeg", &fixtures::jpeg(640, 480));
    let token = res.json()["token"].as_str().unwrap().to_string();
    server.wait_sizes(&token, "running");
    // SIGKILL: no chance to clean up, as in a crash.
    server.stop();

    let mut fast = sb.kitteh();
    fast.env("KITTEH_VARIANTS__LEASE_SECONDS", "2");
    let server = Server::start_with(fast, &[]);
    let v = server.wait_sizes(&token, "ready");
    assert_eq!(dims_of(&v)[2], ("monstrous".to_string(), 600, 450));
    assert_eq!(
        sb.sql_i64("SELECT attempts FROM variant_jobs"),
        vec![2],
        "the first attempt died, the second finished"
    );
    assert_eq!(
        files_in(&sb.uploads()).len(),
        4,
        "{:?}",
        files_in(&sb.uploads())
    );
}

#[test]
fn a_job_killed_after_writing_some_sizes_is_finished_after_a_restart() {
    let sb = Sandbox::sqlite();
    let mut slow = sb.kitteh();
    slow.env("KITTEH_VARIANTS__WRITE_DELAY_MS", "60000")
        .env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0")
        .env("KITTEH_VARIANTS__LEASE_SECONDS", "2");
    let mut server = Server::start_with(slow, &["--migrate"]);
    let res = server.upload("a.jpg", "image/jpeg", &fixtures::jpeg(640, 480));
    let token = res.json()["token"].as_str().unwrap().to_string();
    // Sizes are written largest first; the job then waits after the first.
    let first = format!("{token}-monstrous.jpg");
    wait_until("the first size to be written", || {
        files_in(&sb.uploads()).contains(&first)
    });
    server.stop();
    assert_eq!(
        files_in(&sb.uploads()),
        vec![first.clone(), format!("{token}.jpg")],
        "killed with one size written"
    );
    assert_eq!(
        sb.sql_i64("SELECT COUNT(*) FROM variants"),
        vec![0],
        "nothing was recorded for the half-done job"
    );

    let mut fast = sb.kitteh();
    fast.env("KITTEH_VARIANTS__LEASE_SECONDS", "2");
    let server = Server::start_with(fast, &[]);
    let v = server.wait_sizes(&token, "ready");
    assert_eq!(
        dims_of(&v),
        vec![
            ("tiny".to_string(), 90, 68),
            ("large".to_string(), 300, 225),
            ("monstrous".to_string(), 600, 450)
        ]
    );
    assert_eq!(sb.sql_i64("SELECT attempts FROM variant_jobs"), vec![2]);
    // Every size is whole and recorded once; no temp file is left.
    assert_eq!(
        files_in(&sb.uploads()).len(),
        4,
        "{:?}",
        files_in(&sb.uploads())
    );
    for (size, w) in [("tiny", 90), ("large", 300), ("monstrous", 600)] {
        let img = server.get(&format!("/img/{size}{token}"), &[]);
        assert_eq!(img.status, 200);
        assert_eq!(image::load_from_memory(&img.body).unwrap().width(), w);
    }
    assert_eq!(sb.sql_i64("SELECT COUNT(*) FROM variants"), vec![3]);
}

#[test]
fn rebuild_of_one_token_redoes_that_image_only() {
    let sb = Sandbox::sqlite();
    let tokens: Vec<String> = {
        let server = Server::start(&sb, &["--migrate"]);
        (0..2)
            .map(|i| {
                let res = server.upload(
                    &format!("{i}.png"),
                    "image/png",
                    // Distinct pictures: the same bytes would be stored once.
                    &fixtures::png(300 + i, 200),
                );
                let token = res.json()["token"].as_str().unwrap().to_string();
                server.wait_sizes(&token, "ready");
                token
            })
            .collect()
    };
    let tiny = sb.uploads().join(format!("{}-tiny.png", tokens[0]));
    std::fs::remove_file(&tiny).unwrap();
    let out = sb
        .kitteh()
        .args([
            "variants",
            "rebuild",
            &tokens[0].to_ascii_uppercase(),
            "--now",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("queued 1 job(s)"), "{text}");
    assert!(tiny.is_file(), "the lost size was made again");
    assert_eq!(
        sb.sql_i64("SELECT CAST(attempts AS BIGINT) FROM variant_jobs ORDER BY image_id"),
        // Both were made within their uploads (no attempt); only the
        // rebuilt one went through a job.
        vec![1, 0],
        "the rebuilt job started over; the other was not touched"
    );
    let unknown = sb
        .kitteh()
        .args(["variants", "rebuild", "nosuchkitten"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("nosuchkitten"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}

#[test]
fn a_job_that_always_fails_ends_failed_with_its_error_and_the_server_keeps_serving() {
    let sb = Sandbox::sqlite();
    let mut idle = sb.kitteh();
    idle.env("KITTEH_VARIANTS__WORKERS", "0")
        .env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0");
    let mut server = Server::start_with(idle, &["--migrate"]);
    let res = server.upload("a.png", "image/png", &fixtures::png(300, 300));
    let token = res.json()["token"].as_str().unwrap().to_string();
    server.stop();
    // The stored original rots on disk: every attempt to resize it fails.
    std::fs::write(
        sb.uploads().join(format!("{token}.png")),
        b"\x89PNG\r\n\x1a\nrotten",
    )
    .unwrap();

    let mut workers = sb.kitteh();
    workers
        .env("KITTEH_VARIANTS__MAX_ATTEMPTS", "2")
        .env("KITTEH_VARIANTS__POLL_INTERVAL_MS", "50");
    let server = Server::start_with(workers, &[]);
    let v = server.wait_sizes(&token, "failed");
    let error = v["sizes"][0]["error"].as_str().unwrap();
    assert!(!error.is_empty());
    assert_eq!(sb.sql_i64("SELECT attempts FROM variant_jobs"), vec![2]);
    assert_eq!(server.get("/healthz", &[]).status, 200);
    assert_eq!(server.get(&format!("/img/{token}"), &[]).status, 200);

    let status = sb.kitteh().args(["variants", "status"]).output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["failed", "1"]),
        "{text}"
    );
    let rebuild = sb
        .kitteh()
        .args(["variants", "rebuild", "--failed"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&rebuild.stdout).contains("queued 1 job(s)"));
}

#[test]
fn rebuild_now_makes_newly_configured_sizes_in_the_foreground() {
    let sb = Sandbox::sqlite();
    {
        let server = Server::start(&sb, &["--migrate"]);
        let res = server.upload("a.jpg", "image/jpeg", &fixtures::jpeg(500, 500));
        server.wait_sizes(res.json()["token"].as_str().unwrap(), "ready");
    }
    let out = sb
        .kitteh()
        .env(
            "KITTEH_VARIANTS__SIZES",
            "[{name=\"small\", width=50}, {name=\"tiny\", width=90}]",
        )
        .args(["variants", "rebuild", "--all", "--now"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("queued 1 job(s)"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["done", "1"]),
        "{text}"
    );
    let mut files = files_in(&sb.uploads());
    files.retain(|f| f.contains('-'));
    let suffixes: Vec<&str> = files.iter().map(|f| f.split('-').nth(1).unwrap()).collect();
    assert_eq!(
        suffixes,
        vec!["small.jpg", "tiny.jpg"],
        "dropped sizes are removed: {files:?}"
    );
}

#[test]
fn a_resize_job_stops_at_the_decode_time_limit_and_says_so() {
    let sb = Sandbox::sqlite();
    let token = {
        let server = Server::start(&sb, &["--migrate"]);
        let res = server.upload("a.png", "image/png", &fixtures::png(2400, 1800));
        res.json()["token"].as_str().unwrap().to_string()
    };
    // The same original, rebuilt under a time limit no decode can meet.
    let out = sb
        .kitteh()
        .env("KITTEH_LIMITS__DECODE_SECONDS", "0.001")
        .env("KITTEH_VARIANTS__MAX_ATTEMPTS", "1")
        .args(["variants", "rebuild", &token, "--now"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["failed", "1"]),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = sb.sql_text("SELECT COALESCE(last_error, '') FROM variant_jobs");
    assert!(errors[0].contains("limits.decode_seconds"), "{errors:?}");
}

#[test]
fn rebuild_needs_to_be_told_what() {
    let sb = Sandbox::sqlite();
    assert!(sb.kitteh().arg("migrate").status().unwrap().success());
    let out = sb.kitteh().args(["variants", "rebuild"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--all, --failed or a TOKEN"));
}

#[test]
fn two_replicas_on_postgres_share_the_work_and_do_each_job_once() {
    let Some(sb) = Sandbox::postgres() else {
        return;
    };
    // Every size goes through the shared queue: that is what is tested.
    let replica = || {
        let mut cmd = sb.kitteh();
        cmd.env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0");
        cmd
    };
    let a = Server::start_with(replica(), &["--migrate"]);
    let b = Server::start_with(replica(), &[]);

    let tokens: Vec<String> = (0..20)
        .map(|i| {
            let server = if i % 2 == 0 { &a } else { &b };
            // Distinct pictures: the same bytes would be stored once.
            let png = fixtures::png(640 + i, 400);
            let res = server.upload(&format!("{i}.png"), "image/png", &png);
            assert_eq!(res.status, 201, "{}", res.text());
            res.json()["token"].as_str().unwrap().to_string()
        })
        .collect();
    for (i, token) in tokens.iter().enumerate() {
        // Either replica can answer for any image.
        let other = if i % 2 == 0 { &b } else { &a };
        other.wait_sizes(token, "ready");
    }
    assert_eq!(
        sb.sql_i64("SELECT COUNT(*) FROM variant_jobs WHERE state = 'done'"),
        vec![20]
    );
    assert_eq!(
        sb.sql_i64("SELECT CAST(attempts AS BIGINT) FROM variant_jobs"),
        vec![1; 20],
        "every job was claimed exactly once"
    );
    assert_eq!(sb.sql_i64("SELECT COUNT(*) FROM variants"), vec![60]);
    assert_eq!(files_in(&sb.uploads()).len(), 80);
    let worked = |s: &Server| s.log_text().matches("variants done").count();
    // The line follows the job's commit: wait for it, then count.
    wait_until("every job's line", || worked(&a) + worked(&b) >= 20);
    eprintln!(
        "replica A did {} jobs, replica B did {}",
        worked(&a),
        worked(&b)
    );
    assert_eq!(worked(&a) + worked(&b), 20);
    assert!(
        worked(&a) > 0 && worked(&b) > 0,
        "each replica takes a share of the work"
    );
}
