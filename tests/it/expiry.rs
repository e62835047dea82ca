//! Expiry: what an upload may ask for, an expired image gone for everyone
//! at once, and the periodic job deleting it with its sizes exactly once,
//! also with two replicas on PostgreSQL.

use std::time::Duration;

use crate::fixtures::{self, picture};
use crate::helpers::{Sandbox, Server, code, each_database, files_in, wait_until};

fn expiry(sb: &Sandbox) {
    // A server whose periodic job does not come round during the test.
    let mut server = Server::with_env(
        sb,
        &[
            ("KITTEH_UPLOADS__MAX_EXPIRY", "1d"),
            ("KITTEH_UPLOADS__EXPIRY_INTERVAL_SECONDS", "3600"),
        ],
    );
    // Refused: over the maximum, never, nonsense.
    for (asked, expected) in [
        ("30d", "expiry_too_long"),
        ("never", "expiry_too_long"),
        ("soon", "bad_expiry"),
        ("0s", "bad_expiry"),
    ] {
        let r = server.upload_with(&picture(1), &[("expires_in", asked)], &[]);
        assert_eq!(r.status, 422, "{asked}: {}", r.text());
        assert_eq!(code(&r), expected, "{asked}");
        if expected == "expiry_too_long" {
            assert_eq!(r.json()["error"]["max_expiry"], "1d");
        }
    }
    assert_eq!(sb.count_rows(), 0);
    // Saying nothing gets the maximum.
    let default = server.upload_with(&picture(2), &[], &[]).json();
    let at = chrono::DateTime::parse_from_rfc3339(default["expires_at"].as_str().unwrap()).unwrap();
    let left = at.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((86_000..=86_400).contains(&left), "{left}");
    // A short one, with its sizes made.
    let short = server
        .upload_with(&fixtures::png(700, 400), &[("expires_in", "2s")], &[])
        .json();
    let token = short["token"].as_str().unwrap().to_string();
    let name = short["name"].as_str().unwrap().to_string();
    assert!(short["expires_at"].is_string());
    let page = server
        .get(&format!("/{name}"), &[("Accept", "text/html")])
        .text();
    assert!(page.contains("id=\"expires\""), "the show page says when");
    let img = server.get(&format!("/img/{token}"), &[]);
    assert_eq!(img.status, 200);
    let cache = img.header("Cache-Control").unwrap();
    assert!(
        cache.starts_with("public, max-age=") && !cache.contains("immutable"),
        "{cache}"
    );
    let files_before = files_in(&sb.uploads())
        .iter()
        .filter(|f| f.contains(&token))
        .count();
    assert_eq!(files_before, 4, "original and three sizes");
    std::thread::sleep(Duration::from_millis(2200));
    // Gone for everyone at once, before the job has run.
    assert_eq!(server.get(&format!("/img/{token}"), &[]).status, 410);
    assert_eq!(server.get(&format!("/img/tiny{token}"), &[]).status, 410);
    assert_eq!(
        server
            .get(&format!("/{name}"), &[("Accept", "text/html")])
            .status,
        410
    );
    let api = server.get(&format!("/api/images/{token}"), &[]);
    assert_eq!(api.status, 410);
    assert_eq!(code(&api), "expired");
    server.stop();

    // The job deletes it with its sizes and files, once; the name stays gone.
    let server = Server::with_env(
        sb,
        &[
            ("KITTEH_UPLOADS__MAX_EXPIRY", "1d"),
            ("KITTEH_UPLOADS__EXPIRY_INTERVAL_SECONDS", "1"),
        ],
    );
    wait_until("the expired image to be deleted", || {
        !files_in(&sb.uploads()).iter().any(|f| f.contains(&token))
    });
    assert_eq!(sb.count_rows(), 1, "only the one that lives a day");
    assert_eq!(server.get(&format!("/img/{token}"), &[]).status, 410);
    let page = server.get(&format!("/{name}"), &[("Accept", "text/html")]);
    assert_eq!(page.status, 410);
    assert!(page.text().contains("expired"));
    // The log line follows the files' removal; then let another round
    // pass to be sure it does not delete again.
    let deleted = || {
        server
            .log_text()
            .lines()
            .filter(|l| l.contains("image deleted") && l.contains("expired"))
            .count()
    };
    wait_until("the deletion to be logged", || deleted() >= 1);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(deleted(), 1, "{}", server.log_text());
    assert_eq!(
        sb.scalar(&format!(
            "SELECT reason FROM tombstones WHERE token = '{token}'"
        ))
        .as_deref(),
        Some("expired")
    );
}

#[test]
fn an_expired_image_is_gone_at_once_and_deleted_with_its_sizes_once() {
    each_database(expiry);
}

#[test]
fn two_replicas_on_postgres_delete_each_expired_image_exactly_once() {
    let Some(sb) = Sandbox::postgres() else {
        return;
    };
    let env = [
        ("KITTEH_UPLOADS__EXPIRY_INTERVAL_SECONDS", "1"),
        ("KITTEH_LOG__FORMAT", "json"),
    ];
    let a = Server::with_env(&sb, &env);
    let b = Server::with_env(&sb, &env);
    let mut tokens = Vec::new();
    for n in 0..8 {
        let via = if n % 2 == 0 { &a } else { &b };
        let r = via.upload_with(&picture(n), &[("expires_in", "2s")], &[]);
        assert_eq!(r.status, 201, "{}", r.text());
        tokens.push(r.json()["token"].as_str().unwrap().to_string());
    }
    wait_until("every expired image to be deleted", || sb.count_rows() == 0);
    wait_until("their files to go", || files_in(&sb.uploads()).is_empty());
    let expired_lines = |server: &Server| {
        server
            .log_text()
            .lines()
            .filter(|l| l.contains("image deleted") && l.contains("\"reason\":\"expired\""))
            .count()
    };
    // The log line follows the files' removal; then let another round
    // pass on both to be sure nothing is deleted twice.
    wait_until("every deletion to be logged", || {
        expired_lines(&a) + expired_lines(&b) >= 8
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        expired_lines(&a) + expired_lines(&b),
        8,
        "each image deleted by one replica:\n{}\n{}",
        a.log_text(),
        b.log_text()
    );
    for token in &tokens {
        assert_eq!(a.get(&format!("/img/{token}"), &[]).status, 410);
    }
}
