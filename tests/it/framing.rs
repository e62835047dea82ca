//! Requests broken below the application: bodies whose chunked framing
//! lies, lengths that cannot be read or that promise more than the server
//! takes, methods in the wrong case. Each gets the right 4xx at once, from
//! the edge, on every route, and nothing is stored or logged above info.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::helpers::{Sandbox, Server, multipart_parts};

fn raw(server: &Server, request: &[u8]) -> (String, Duration) {
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = Instant::now();
    s.write_all(request).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_badly_chunked_body_is_a_400_naming_the_framing_on_every_route() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let broken: [(&str, &[u8]); 8] = [
        ("not hex", b"zz\r\nab\r\n0\r\n\r\n"),
        ("negative", b"-1\r\nab\r\n0\r\n\r\n"),
        ("plus sign", b"+3\r\nabc\r\n0\r\n\r\n"),
        ("17 hex digits", b"11111111111111111\r\nab\r\n0\r\n\r\n"),
        ("empty size", b"\r\nab\r\n0\r\n\r\n"),
        ("more data than the size", b"2\r\nabcdef\r\n0\r\n\r\n"),
        ("200 KB extension", b""),
        ("no CRLF after data", b"3\r\nabcX\r\n0\r\n\r\n"),
    ];
    let routes = [
        ("/api/images", "multipart/form-data; boundary=x"),
        ("/upload", "multipart/form-data; boundary=x"),
        ("/key", "application/x-www-form-urlencoded"),
        (
            "/SublimeDandelionBengalKitty/report",
            "application/x-www-form-urlencoded",
        ),
    ];
    for (path, content_type) in routes {
        for (what, chunks) in broken {
            let chunks: Vec<u8> = if what == "200 KB extension" {
                let mut c = b"3;".to_vec();
                c.extend(std::iter::repeat_n(b'x', 200 * 1024));
                c.extend_from_slice(b"\r\nabc\r\n0\r\n\r\n");
                c
            } else {
                chunks.to_vec()
            };
            let mut request = format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
            .into_bytes();
            request.extend_from_slice(&chunks);
            let (answer, took) = raw(&server, &request);
            assert_eq!(status_of(&answer), 400, "{path}, {what}: {answer}");
            assert!(took < Duration::from_secs(5), "{path}, {what}: {took:?}");
            assert!(
                answer.contains("malformed_body") && answer.contains("framed"),
                "{path}, {what}: {answer}"
            );
        }
    }
    assert_eq!(sb.count_rows(), 0);
    assert!(sb.originals().is_empty());
    let log = server.log_text();
    assert!(
        !log.lines()
            .any(|l| l.contains("ERROR") || l.contains("WARN")),
        "a client's mistake is logged at info at most:\n{log}"
    );
}

#[test]
fn a_length_that_cannot_be_read_is_a_400() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    for length in ["abc", "-5", "1, 2", "99999999999999999999999"] {
        let request = format!(
            "POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: {length}\r\nConnection: close\r\n\r\nabc"
        );
        let (answer, _) = raw(&server, request.as_bytes());
        assert_eq!(status_of(&answer), 400, "{length}: {answer}");
    }
    // Two lengths that disagree.
    let request = "POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 3\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabc";
    let (answer, _) = raw(&server, request.as_bytes());
    assert_eq!(status_of(&answer), 400, "{answer}");
    // A length beside chunked framing: the framing alone counts (RFC 9112
    // §6.1), so a body written for the length is a broken chunked one.
    let request = "POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n";
    let (answer, took) = raw(&server, request.as_bytes());
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("malformed_body"), "{answer}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(sb.count_rows(), 0);
}

#[test]
fn a_declared_length_over_the_limit_is_a_413_before_the_body() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    // 1 GiB declared, five bytes sent: the answer comes at once.
    for path in ["/api/images", "/upload"] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 1073741824\r\n\r\n--x\r\n"
        );
        let (answer, took) = raw(&server, request.as_bytes());
        assert_eq!(status_of(&answer), 413, "{path}: {answer}");
        assert!(
            answer.contains("too_large") && answer.contains("25"),
            "{answer}"
        );
        assert!(took < Duration::from_secs(1), "{path}: {took:?}");
    }
    // A form route holds a body to server.body_limit the same way.
    let request = "POST /key HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 5000000\r\n\r\nkey=";
    let (answer, took) = raw(&server, request.as_bytes());
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert!(answer.contains("server.body_limit"), "{answer}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(sb.count_rows(), 0);
}

#[test]
fn methods_are_case_sensitive_and_unknown_ones_are_refused() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    for (method, status, code) in [
        ("get", 400, "bad_method"),
        ("Get", 400, "bad_method"),
        ("post", 400, "bad_method"),
        ("PROPFIND", 501, "method_not_implemented"),
        ("BREW", 501, "method_not_implemented"),
    ] {
        for path in ["/", "/img/x", "/api/images"] {
            let request =
                format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            let (answer, _) = raw(&server, request.as_bytes());
            assert_eq!(status_of(&answer), status, "{method} {path}: {answer}");
            assert!(answer.contains(code), "{method} {path}: {answer}");
        }
    }
    let (answer, _) = raw(
        &server,
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 200);
}

#[test]
fn file_names_come_back_only_as_display_text() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let long = "x".repeat(1_000_000);
    let hostile = [
        "../../etc/passwd.png",
        "photo\u{202E}gnp.exe",
        "zero\u{200B}width\u{200D}.png",
        long.as_str(),
    ];
    // Several files, each refused (not a picture), each named in errors.
    let files: Vec<(&str, &str, &str, &[u8])> = hostile
        .iter()
        .map(|name| ("file", *name, "image/png", &b"not a picture"[..]))
        .collect();
    let (content_type, body) = multipart_parts(&[], &files);
    let res = server.post("/api/images", &body, &[("Content-Type", &content_type)]);
    assert!(res.status >= 400, "{}", res.status);
    let v = res.json();
    let names: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["file_name"].as_str().unwrap())
        .collect();
    assert_eq!(names[0], "passwd.png");
    assert_eq!(names[1], "photognp.exe");
    assert_eq!(names[2], "zerowidth.png");
    assert_eq!(names[3].chars().count(), 255);
    assert!(res.body.len() < 10_000, "{} bytes", res.body.len());
    // The form's result page says the same.
    let page = server.post(
        "/upload",
        &body,
        &[("Content-Type", &content_type), ("Accept", "text/html")],
    );
    let text = page.text();
    assert!(
        !text.contains("\u{202E}") && !text.contains("../"),
        "{text}"
    );
    assert!(text.len() < 50_000, "{} bytes", text.len());
}
