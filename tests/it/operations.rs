//! Running it: metrics, readiness of storage, logs that name the token,
//! and a graceful shutdown that never leaves half an upload behind.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::fixtures;
use crate::helpers::{Sandbox, Server, files_in, free_port, get, http, multipart, wait_until};

#[test]
fn metrics_are_off_by_default() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    assert_eq!(server.get("/metrics", &[]).status, 404);
}

#[test]
fn metrics_count_requests_uploads_rejections_bytes_and_jobs() {
    let sb = Sandbox::sqlite();
    let mut cmd = sb.kitteh();
    // 400×300 is over the inline limit (its sizes go to a job), 100×80
    // under it (made within the upload).
    cmd.env("KITTEH_METRICS__ENABLED", "true")
        .env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "100000");
    let server = Server::start_with(cmd, &["--migrate"]);
    let ok = server.upload("a.png", "image/png", &fixtures::png(400, 300));
    assert_eq!(ok.status, 201);
    let token = ok.json()["token"].as_str().unwrap().to_string();
    let small = server.upload("s.png", "image/png", &fixtures::png(100, 80));
    assert_eq!(small.status, 201);
    assert_eq!(
        server
            .upload("b.pdf", "application/pdf", b"%PDF-1.4")
            .status,
        415
    );
    server.wait_sizes(&token, "ready");
    let res = server.get("/metrics", &[]);
    assert_eq!(res.status, 200);
    assert!(
        res.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text();
    for needle in [
        "kitteh_http_requests_total{route=\"create\",method=\"POST\",status=\"201\"} 2",
        "kitteh_http_requests_total{route=\"create\",method=\"POST\",status=\"415\"} 1",
        "kitteh_uploads_accepted_total 2",
        "kitteh_uploads_rejected_total{reason=\"unsupported_format\"} 1",
        "kitteh_upload_sizes_total{path=\"inline\"} 1",
        "kitteh_upload_sizes_total{path=\"job\"} 1",
        "kitteh_variant_jobs{state=\"done\"} 2",
        "kitteh_variant_job_duration_seconds_count 1",
        "kitteh_http_request_duration_seconds_bucket{",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    let stored: i64 = text
        .lines()
        .find(|l| l.starts_with("kitteh_stored_bytes "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap();
    let original = ok.json()["bytes"].as_i64().unwrap() + small.json()["bytes"].as_i64().unwrap();
    assert!(
        stored > original,
        "stored {stored} should include variants beyond {original}"
    );
}

#[test]
fn metrics_can_live_on_their_own_listener() {
    let sb = Sandbox::sqlite();
    let port = free_port();
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_METRICS__ENABLED", "true")
        .env("KITTEH_METRICS__LISTEN", format!("127.0.0.1:{port}"));
    let server = Server::start_with(cmd, &["--migrate"]);
    assert_eq!(server.get("/metrics", &[]).status, 404);
    let url = format!("http://127.0.0.1:{port}/metrics");
    wait_until("the metrics listener", || http().get(&url).call().is_ok());
    let res = get(&url, &[]);
    assert_eq!(res.status, 200);
    assert!(res.text().contains("kitteh_http_requests_total"));
}

#[test]
fn readiness_fails_when_the_uploads_folder_cannot_be_written() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let ready = server.get("/readyz", &[]).json();
    assert_eq!(ready["checks"]["storage"]["ok"], true);
    std::fs::remove_dir_all(sb.uploads()).unwrap();
    let res = server.get("/readyz", &[]);
    assert_eq!(res.status, 503);
    let body = res.json();
    assert!(
        body["failed"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("storage")),
        "{body}"
    );
}

#[test]
fn json_logs_carry_the_request_id_and_the_token() {
    let sb = Sandbox::sqlite();
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_LOG__FORMAT", "json");
    let server = Server::start_with(cmd, &["--migrate"]);
    let res = server.upload("a.png", "image/png", &fixtures::png(8, 8));
    let token = res.json()["token"].as_str().unwrap().to_string();
    let request_id = res.header("x-request-id").unwrap().to_string();
    let log = server.wait_for_log("the upload's request line", |log| {
        log.contains(&format!("\"request_id\":\"{request_id}\""))
    });
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("no line for {request_id} in {log}"));
    assert_eq!(line["token"], token.as_str());
    assert_eq!(line["status"], 201);
}

fn sigterm(server: &Server) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A server that logs each request as it starts (debug level), so tests
/// can see a request in flight.
fn verbose_server(sb: &Sandbox, extra: &[(&str, &str)]) -> Server {
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_LOG__LEVEL", "info,kitteh=debug");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    Server::start_with(cmd, &["--migrate"])
}

/// Sends the headers and the first half of an upload, and waits until the
/// server has begun reading it. Returns the connection and the rest.
fn half_sent_upload(server: &Server, name: &str) -> (TcpStream, Vec<u8>) {
    let (content_type, body) = multipart("file", name, "image/png", &fixtures::png(300, 300));
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let half = body.len() / 2;
    stream.write_all(&body[..half]).unwrap();
    server.wait_for_log("the upload to start", |log| {
        log.lines()
            .any(|l| l.contains("request started") && l.contains("/api/images"))
    });
    (stream, body[half..].to_vec())
}

/// Position of the first log line containing every one of `words`.
fn line_of(log: &str, words: &[&str]) -> usize {
    log.lines()
        .position(|l| words.iter().all(|w| l.contains(w)))
        .unwrap_or_else(|| panic!("no line with {words:?} in:\n{log}"))
}

#[test]
fn sigterm_during_a_slow_upload_finishes_it_and_exits_0() {
    let sb = Sandbox::sqlite();
    let mut server = verbose_server(&sb, &[]);
    let (mut stream, rest) = half_sent_upload(&server, "slow.png");
    sigterm(&server);
    server.wait_for_log("the shutdown to begin", |log| {
        log.contains("shutdown requested")
    });
    // Shutdown has begun with the upload half sent: now send the rest.
    stream.write_all(&rest).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let status = server.child.wait().unwrap();
    let log = server.log_text();
    assert_eq!(status.code(), Some(0), "{log}");
    // The order the log proves: the upload started, then the signal came,
    // then the upload was answered.
    let started = line_of(&log, &["request started", "/api/images"]);
    let signal = line_of(&log, &["shutdown requested"]);
    let answered = line_of(&log, &["/api/images", "201"]);
    assert!(started < signal && signal < answered, "{log}");
    // The upload is whole: its row and its file.
    assert_eq!(sb.count_rows(), 1);
    assert_eq!(sb.originals().len(), 1);
    assert!(
        !files_in(&sb.uploads())
            .iter()
            .any(|f| f.starts_with(".tmp-"))
    );
}

#[test]
fn after_sigterm_no_connection_is_accepted_and_no_job_is_taken() {
    let sb = Sandbox::sqlite();
    // A grace period that outlasts the checks below on a busy machine (the
    // suite runs in parallel; a `variants rebuild` process starts in it).
    let mut server = verbose_server(
        &sb,
        &[
            ("KITTEH_VARIANTS__POLL_INTERVAL_MS", "50"),
            ("KITTEH_SERVER__SHUTDOWN_GRACE", "30"),
        ],
    );
    let done = server.upload("a.png", "image/png", &fixtures::png(200, 100));
    let token = done.json()["token"].as_str().unwrap().to_string();
    server.wait_sizes(&token, "ready");
    // An upload in flight keeps the server in its grace period.
    let (mut stream, rest) = half_sent_upload(&server, "slow.png");
    sigterm(&server);
    server.wait_for_log("the shutdown to begin", |log| {
        log.contains("shutdown requested")
    });

    // New connections are refused (or closed unanswered) from the moment
    // the listener notices the signal, which may take a beat after the log
    // line above: wait for it rather than race it.
    let refused = || match TcpStream::connect(("127.0.0.1", server.port)) {
        Err(_) => true,
        Ok(mut late) => {
            late.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = late.write_all(
                b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            );
            let mut answer = Vec::new();
            let _ = late.read_to_end(&mut answer);
            answer.is_empty()
        }
    };
    wait_until("new connections to be refused", refused);
    assert!(
        refused(),
        "a connection was served after the listener closed"
    );

    // A job queued now is not taken: workers stopped with the signal. Its
    // workers poll every 50 ms, so a second of `pending` is twenty missed
    // chances to take it.
    let queued = sb
        .kitteh()
        .args(["variants", "rebuild", &token])
        .output()
        .unwrap();
    assert!(
        queued.status.success(),
        "{}",
        String::from_utf8_lossy(&queued.stderr)
    );
    let state = || {
        sb.sql_text(&format!(
                "SELECT j.state FROM variant_jobs j JOIN images i ON i.id = j.image_id WHERE i.token = '{token}'"
            ),
        )
    };
    let watch_until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < watch_until {
        assert_eq!(state(), vec!["pending".to_string()]);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server was still up while the job sat there"
    );
    stream.write_all(&rest).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", server.log_text());
    assert_eq!(state(), vec!["pending".to_string()]);
}

#[test]
fn an_upload_cut_off_by_shutdown_leaves_nothing_behind() {
    let sb = Sandbox::sqlite();
    let mut server = verbose_server(&sb, &[("KITTEH_SERVER__SHUTDOWN_GRACE", "1")]);
    let (_stream, _never_sent) = half_sent_upload(&server, "never.png");
    // The client never finishes; the grace period runs out.
    sigterm(&server);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{}", server.log_text());
    assert_eq!(sb.count_rows(), 0);
    assert!(
        files_in(&sb.uploads()).is_empty(),
        "{:?}",
        files_in(&sb.uploads())
    );
}
