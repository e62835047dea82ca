//! Deletion wins over caching: a deleted image stops being served at once
//! by the replica that deleted it, within about a second by other replicas
//! on PostgreSQL (LISTEN/NOTIFY), and within the metadata TTL otherwise.

use std::time::{Duration, Instant};

use crate::fixtures;
use crate::helpers::{Sandbox, Server};

/// Uploads through `a`, then warms both servers' caches for the image.
fn upload_and_warm(a: &Server, b: &Server) -> (String, String) {
    let v = a
        .upload("c.png", "image/png", &fixtures::png(64, 64))
        .json();
    let token = v["token"].as_str().unwrap().to_string();
    for server in [a, b] {
        for _ in 0..3 {
            assert_eq!(server.get(&format!("/img/{token}"), &[]).status, 200);
        }
    }
    (token, v["delete_token"].as_str().unwrap().to_string())
}

/// Time until `server` answers 404 for the image, polling every 20 ms.
fn time_to_404(server: &Server, token: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let status = server.get(&format!("/img/{token}"), &[]).status;
        if status == 404 {
            return start.elapsed();
        }
        assert_eq!(status, 200);
        assert!(start.elapsed() < limit, "still served after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_deleting_replica_stops_serving_at_once() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let (token, delete_token) = upload_and_warm(&server, &server);
    assert_eq!(server.delete(&token, &delete_token).status, 204);
    assert_eq!(server.get(&format!("/img/{token}"), &[]).status, 404);
    assert_eq!(server.get(&format!("/img/tiny{token}"), &[]).status, 404);
}

#[test]
fn without_postgres_another_replica_stops_within_the_ttl() {
    let sb = Sandbox::sqlite();
    let a = Server::start(&sb, &["--migrate"]);
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_CACHE__METADATA_TTL_MS", "1500");
    let b = Server::start_with(cmd, &[]);
    let (token, delete_token) = upload_and_warm(&a, &b);
    assert_eq!(a.delete(&token, &delete_token).status, 204);
    // The bound is the TTL; the generous margin keeps a loaded machine
    // from failing a test whose point is that B does stop on its own.
    let took = time_to_404(&b, &token, Duration::from_secs(10));
    eprintln!("sqlite replica stopped serving after {took:?} (ttl 1.5 s)");
    assert!(took <= Duration::from_millis(1500 + 3000), "{took:?}");
}

#[test]
fn on_postgres_other_replicas_stop_within_about_a_second() {
    let Some(sb) = Sandbox::postgres() else {
        return;
    };
    let a = Server::start(&sb, &["--migrate"]);
    // A long TTL: only the notification can make B forget in time.
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_CACHE__METADATA_TTL_MS", "10000");
    // B is ready only once its listener has subscribed, and start waits
    // for that.
    let b = Server::start_with(cmd, &[]);
    let ready = b.get("/readyz", &[]).json();
    assert_eq!(ready["checks"]["notifications"]["ok"], true, "{ready}");
    let (token, delete_token) = upload_and_warm(&a, &b);
    assert_eq!(a.delete(&token, &delete_token).status, 204);
    let took = time_to_404(&b, &token, Duration::from_secs(8));
    eprintln!("postgres replica stopped serving after {took:?}");
    // Far below the 10 s the cache would otherwise keep it: the notice did
    // it. The margin above a second is for a loaded machine.
    assert!(took <= Duration::from_secs(3), "{took:?}");
}

#[test]
fn a_metadata_ttl_over_ten_seconds_is_refused() {
    let sb = Sandbox::sqlite();
    let out = sb
        .kitteh()
        .env("KITTEH_CACHE__METADATA_TTL_MS", "60000")
        .args(["config", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cache.metadata_ttl_ms"));
}
