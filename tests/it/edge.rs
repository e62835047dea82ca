//! The edge in front of the app: connections that send their headers
//! slowly or sit idle are closed, caps per client address and in all are
//! enforced with a quick refusal, the client's address reaches the app and
//! cannot be forged, a body that never comes is a 408, and an upload whose
//! client leaves stops decoding.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::fixtures;
use crate::helpers::{Sandbox, Server, multipart, wait_until};

/// A connection to the server from `source` (any 127.x address).
fn connect_from(source: &str, port: u16) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    let to: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    socket.connect(&to.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection (or the read times out),
/// returning what came and how long it took.
fn until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

/// Reads one whole response (headers and a `Content-Length` body).
fn one_response(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return text.into_owned();
            }
        }
    }
}

/// The `kitteh_edge_connections_dropped_total` count for `reason`.
fn dropped(server: &Server, reason: &str) -> u64 {
    let text = server.get("/metrics", &[]).text();
    text.lines()
        .find(|l| {
            l.starts_with("kitteh_edge_connections_dropped_total")
                && l.contains(&format!("reason=\"{reason}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn slow_headers_are_dropped_at_the_header_timeout_and_counted() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(
        &sb,
        &[
            ("KITTEH_SERVER__HEADER_TIMEOUT_SECONDS", "1"),
            ("KITTEH_SERVER__IDLE_TIMEOUT_SECONDS", "30"),
            ("KITTEH_METRICS__ENABLED", "true"),
        ],
    );
    // Twenty clients that start a request and stop, one that trickles a
    // byte every 200 ms (never silent, never done), one that sends nothing.
    let mut silent: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = connect_from("127.0.0.1", server.port);
            s.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
            s
        })
        .collect();
    let mut nothing = connect_from("127.0.0.1", server.port);
    let mut trickle = connect_from("127.0.0.1", server.port);
    let started = Instant::now();
    for byte in
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    {
        if trickle.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (got, _) = until_closed(&mut trickle);
    let trickled_for = started.elapsed();
    assert!(got.is_empty(), "a trickled head got an answer: {got}");
    assert!(
        trickled_for >= Duration::from_millis(900) && trickled_for < Duration::from_secs(4),
        "the trickling client was held {trickled_for:?}"
    );
    for stream in silent.iter_mut().chain([&mut nothing]) {
        let (got, _) = until_closed(stream);
        assert!(got.is_empty(), "{got}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(dropped(&server, "header_timeout") >= 22);
    let log = server.wait_for_log("the rate-limited warning", |log| {
        log.contains("closed by the edge") && log.contains("header_timeout")
    });
    // One line for the whole burst, not one per connection.
    let lines = log
        .lines()
        .filter(|l| l.contains("closed by the edge") && l.contains("header_timeout"))
        .count();
    assert_eq!(lines, 1, "{log}");
    // The server still answers everyone else.
    assert_eq!(server.get("/healthz", &[]).status, 200);
}

#[test]
fn idle_keep_alive_connections_are_closed_at_the_idle_timeout() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(
        &sb,
        &[
            ("KITTEH_SERVER__HEADER_TIMEOUT_SECONDS", "10"),
            ("KITTEH_SERVER__IDLE_TIMEOUT_SECONDS", "2"),
        ],
    );
    let mut stream = connect_from("127.0.0.1", server.port);
    let ask = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    stream.write_all(ask).unwrap();
    assert!(one_response(&mut stream).starts_with("HTTP/1.1 200"));
    // Within the idle timeout the connection is kept and serves again
    // (from the edge's own fast path too).
    std::thread::sleep(Duration::from_millis(1200));
    stream
        .write_all(b"GET /robots.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    assert!(one_response(&mut stream).starts_with("HTTP/1.1 200"));
    let (got, idle) = until_closed(&mut stream);
    assert!(got.is_empty(), "{got}");
    assert!(
        idle >= Duration::from_millis(1500) && idle < Duration::from_secs(6),
        "closed after {idle:?}, expected about 2 s"
    );
}

#[test]
fn a_full_edge_closes_a_slow_head_to_let_a_newcomer_in_and_caps_each_address() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(
        &sb,
        &[
            ("KITTEH_SERVER__MAX_CONNECTIONS_PER_CLIENT", "5"),
            ("KITTEH_SERVER__MAX_CONNECTIONS", "8"),
            ("KITTEH_METRICS__ENABLED", "true"),
            // Held connections send nothing; on a loaded machine the test
            // must not race the header timeout.
            ("KITTEH_SERVER__HEADER_TIMEOUT_SECONDS", "120"),
        ],
    );
    // The readiness probe's connections are closed by now; hold five.
    wait_until("the probe's connections to close", || {
        server
            .get("/metrics", &[])
            .text()
            .lines()
            .any(|l| l == "kitteh_edge_connections 1")
    });
    let held: Vec<TcpStream> = (0..5)
        .map(|_| connect_from("127.0.0.3", server.port))
        .collect();
    let started = Instant::now();
    let mut sixth = connect_from("127.0.0.3", server.port);
    let (got, took) = until_closed(&mut sixth);
    assert!(got.starts_with("HTTP/1.1 429"), "{got}");
    assert!(
        got.contains("too_many_connections_from_client")
            && got.contains("server.max_connections_per_client")
            && got.contains(" 5 "),
        "{got}"
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Another address is not held to this one's cap.
    let mut other = connect_from("127.0.0.4", server.port);
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(until_closed(&mut other).0.starts_with("HTTP/1.1 200"));
    // The total: five held, three more from elsewhere. A ninth is let in
    // all the same: the head that has been arriving longest (one of the
    // five) is closed to make room, never one of the younger three.
    let more: Vec<TcpStream> = (0..3)
        .map(|_| connect_from("127.0.0.5", server.port))
        .collect();
    let is_closed = |s: &TcpStream| {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut buf = [0u8; 1];
        matches!((&*s).read(&mut buf), Ok(0))
    };
    // Until the edge has taken all eight in, a newcomer needs no room.
    wait_until("a held head to be closed for a newcomer", || {
        let mut ninth = connect_from("127.0.0.6", server.port);
        ninth
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert!(until_closed(&mut ninth).0.starts_with("HTTP/1.1 200"));
        held.iter().any(is_closed)
    });
    assert!(!more.iter().any(is_closed), "a younger head was closed");
    assert!(dropped(&server, "max_connections_per_client") >= 1);
    assert!(dropped(&server, "evicted_slow_head") >= 1);
}

/// A request whose head is in and whose body trickles: being answered.
fn uploading(source: &str, port: u16) -> TcpStream {
    let mut s = connect_from(source, port);
    write!(
        s,
        "POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 100000\r\n\r\n--x\r\n"
    )
    .unwrap();
    s
}

#[test]
fn a_full_edge_refuses_only_when_every_connection_is_being_answered() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(
        &sb,
        &[
            ("KITTEH_SERVER__MAX_CONNECTIONS_PER_CLIENT", "0"),
            ("KITTEH_SERVER__MAX_CONNECTIONS", "6"),
            ("KITTEH_METRICS__ENABLED", "true"),
            ("KITTEH_LIMITS__BODY_IDLE_SECONDS", "120"),
            ("KITTEH_LIMITS__BODY_MIN_RATE", "1"),
            ("KITTEH_LOG__LEVEL", "debug"),
        ],
    );
    // Idle keep-alive connections are the cheapest to lose: a newcomer
    // takes their place.
    let mut idle = Vec::new();
    for _ in 0..6 {
        let mut s = connect_from("127.0.0.3", server.port);
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let _ = one_response(&mut s);
        idle.push(s);
    }
    let mut newcomer = connect_from("127.0.0.4", server.port);
    newcomer
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(until_closed(&mut newcomer).0.starts_with("HTTP/1.1 200"));
    assert!(dropped(&server, "evicted_idle") >= 1);
    drop(idle);
    // Six uploads being received: none may be closed, so a newcomer is
    // refused at once.
    wait_until("the idle connections to go", || {
        server
            .get("/metrics", &[])
            .text()
            .lines()
            .any(|l| l == "kitteh_edge_connections 1")
    });
    let busy: Vec<TcpStream> = (0..6)
        .map(|_| uploading("127.0.0.5", server.port))
        .collect();
    // A connection whose head has not arrived may still be closed for a
    // newcomer: wait until all six are being answered.
    server.wait_for_log("six uploads in flight", |log| {
        log.lines()
            .filter(|l| l.contains("request started") && l.contains("/api/images"))
            .count()
            >= 6
    });
    let mut refused = None;
    wait_until("a newcomer to be refused", || {
        let mut s = connect_from("127.0.0.6", server.port);
        let _ =
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        let (got, took) = until_closed(&mut s);
        let done = got.starts_with("HTTP/1.1 503");
        if done {
            refused = Some((got, took));
        }
        done
    });
    let (got, took) = refused.unwrap();
    assert!(
        got.contains("too_many_connections") && got.contains("server.max_connections"),
        "{got}"
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
    // Every upload is still being received.
    for mut s in busy {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 1];
        assert!(
            matches!(s.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "an upload being received was closed"
        );
    }
    assert!(dropped(&server, "max_connections") >= 1);
}

/// The `client` of the request log line for `path`.
fn logged_client(server: &Server, path: &str) -> String {
    let log = server.wait_for_log(path, |log| {
        log.lines()
            .any(|l| l.contains("\"request\"") && l.contains(&format!("\"path\":\"{path}\"")))
    });
    let line = log
        .lines()
        .find(|l| l.contains("\"request\"") && l.contains(&format!("\"path\":\"{path}\"")))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["client"]
        .as_str()
        .unwrap_or_else(|| panic!("no client in {line}"))
        .to_string()
}

fn ask(source: &str, port: u16, path: &str, extra: &str) -> String {
    let mut s = connect_from(source, port);
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    until_closed(&mut s).0
}

#[test]
fn the_client_address_reaches_the_app_and_cannot_be_forged() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(
        &sb,
        &[
            ("KITTEH_LOG__FORMAT", "json"),
            ("KITTEH_LOG__LEVEL", "debug"),
            ("KITTEH_SERVER__TRUSTED_PROXIES", "[\"127.0.0.9\"]"),
        ],
    );
    let forged = "X-Kitteh-Peer: 6.6.6.6\r\nX-Real-IP: 6.6.6.7\r\nX-Forwarded-For: 6.6.6.8\r\n";
    // Through the app (a page) and through the fast path (an asset).
    assert!(ask("127.0.0.2", server.port, "/?a", forged).starts_with("HTTP/1.1 200"));
    assert_eq!(logged_client(&server, "/"), "127.0.0.2");
    assert!(ask("127.0.0.2", server.port, "/robots.txt", forged).starts_with("HTTP/1.1 200"));
    assert_eq!(logged_client(&server, "/robots.txt"), "127.0.0.2");
    // A trusted proxy's X-Forwarded-For is believed, on both paths.
    let via = "X-Forwarded-For: 203.0.113.7\r\n";
    assert!(ask("127.0.0.9", server.port, "/healthz", via).starts_with("HTTP/1.1 200"));
    assert_eq!(logged_client(&server, "/healthz"), "203.0.113.7");
    assert!(ask("127.0.0.9", server.port, "/favicon.ico", via).starts_with("HTTP/1.1 200"));
    assert_eq!(logged_client(&server, "/favicon.ico"), "203.0.113.7");
    // An upload (a body the app reads as a stream) records the same
    // client: forged headers are ignored, a trusted proxy's rightmost
    // untrusted hop is believed (not the leftmost, which its client wrote).
    let upload = |source: &str, extra: &str| {
        let (ct, body) = multipart(
            "file",
            "a.png",
            "image/png",
            &fixtures::png(3 + extra.len() as u32, 2),
        );
        let mut s = connect_from(source, server.port);
        write!(
            s,
            "POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ct}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
        let answer = until_closed(&mut s).0;
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    };
    upload("127.0.0.2", forged);
    upload("127.0.0.9", "X-Forwarded-For: 6.6.6.6, 203.0.113.7\r\n");
    let listed = sb
        .kitteh()
        .args(["images", "list", "--json"])
        .output()
        .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let mut addrs: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ip"].as_str().unwrap())
        .collect();
    addrs.sort();
    assert_eq!(addrs, ["127.0.0.2", "203.0.113.7"]);
    // Nothing behind the edge can be reached around it: the process
    // listens on the public port alone.
    assert_eq!(listening_ports(server.child.id()), [server.port]);
}

/// The TCP ports a process listens on, from /proc.
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_string)
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // State 0A is LISTEN; column 9 is the socket's inode.
            if cols.len() > 9 && cols[3] == "0A" && inodes.iter().any(|i| i == cols[9]) {
                let port = cols[1].rsplit(':').next().unwrap();
                ports.push(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports.sort();
    ports.dedup();
    ports
}

#[test]
fn a_body_that_never_comes_is_a_408_even_before_the_app_reads_it() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(&sb, &[("KITTEH_LIMITS__BODY_IDLE_SECONDS", "1")]);
    // Five bytes of a form body: fewer than Rocket peeks at for its
    // `_method` field, which it waits for before any route runs.
    for (path, content_type) in [
        ("/upload", "application/x-www-form-urlencoded"),
        ("/api/images", "multipart/form-data; boundary=b"),
        ("/Nobody/delete", "application/x-www-form-urlencoded"),
    ] {
        let mut s = connect_from("127.0.0.1", server.port);
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nContent-Type: {content_type}\r\nContent-Length: 100000\r\n\r\n_meth"
        )
        .unwrap();
        let (got, took) = until_closed(&mut s);
        assert!(got.starts_with("HTTP/1.1 408"), "{path}: {got}");
        assert!(
            got.contains("body_timeout") && got.contains("limits.body_idle_seconds"),
            "{path}: {got}"
        );
        assert!(took < Duration::from_secs(5), "{path}: {took:?}");
    }
    assert_eq!(sb.count_rows(), 0);
    assert!(sb.originals().is_empty());
}

/// CPU seconds the process has used (user + system).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

#[test]
fn an_upload_whose_client_leaves_stops_decoding_and_stores_nothing() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(
        &sb,
        &[
            ("KITTEH_LIMITS__DECODE_SECONDS", "60"),
            ("KITTEH_LIMITS__MAX_FRAMES", "1000000"),
            ("KITTEH_LIMITS__MAX_ANIMATION_PIXELS", "100000000000000"),
            ("KITTEH_UPLOADS__MAX_BYTES", "64MiB"),
            ("KITTEH_LIMITS__UPLOAD_MEMORY", "256MiB"),
            ("KITTEH_LOG__LEVEL", "info,kitteh=debug"),
        ],
    );
    // Tens of seconds of decoding in a few MB.
    let gif = fixtures::gif_dense_frames(1000, 4000);
    let (content_type, body) = multipart("file", "long.gif", "image/gif", &gif);
    let mut s = connect_from("127.0.0.1", server.port);
    write!(
        s,
        "POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    // Decoding: the process burns a core.
    let pid = server.child.id();
    let before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_millis(1500));
    let busy = cpu_seconds(pid) - before;
    assert!(
        busy > 0.7,
        "not decoding? {busy} CPU s in 1.5 s; {} bytes sent; log:\n{}",
        body.len(),
        server.log_text()
    );
    drop(s);
    server.wait_for_log("the upload to stop", |log| {
        log.contains("the client went away")
    });
    // Give the decode loop a moment to see its flag, then measure.
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_seconds(pid);
    std::thread::sleep(Duration::from_millis(1500));
    let idle = cpu_seconds(pid) - before;
    assert!(idle < 0.3, "still decoding: {idle} CPU s in 1.5 s");
    assert_eq!(sb.count_rows(), 0);
    assert!(sb.originals().is_empty());
    // And the server takes the next upload at once.
    let res = server.upload("next.png", "image/png", &fixtures::png(64, 64));
    assert_eq!(res.status, 201, "{}", res.text());
}

#[test]
fn what_the_app_checks_cannot_be_removed_or_made_up_on_the_way() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(&sb, &[]);
    let (content_type, body) = multipart("file", "a.png", "image/png", &fixtures::png(8, 8));
    // No Host at all, and a foreign Host that `Connection` asks to drop:
    // both reach the app as sent, and both are refused there.
    for host in ["", "Host: evil.example\r\nConnection: Host\r\n"] {
        let mut s = connect_from("127.0.0.1", server.port);
        write!(
            s,
            "POST /api/images HTTP/1.1\r\n{host}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
        let got = one_response(&mut s);
        assert!(got.starts_with("HTTP/1.1 400"), "{host:?}: {got}");
        assert!(got.contains("unknown_host"), "{got}");
    }
    assert_eq!(sb.count_rows(), 0);
}

#[test]
fn answers_from_the_edge_and_the_app_keep_their_headers() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(&sb, &[]);
    for path in ["/robots.txt", "/favicon.ico", "/img/nothing", "/"] {
        let res = server.get(path, &[]);
        assert_eq!(
            res.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(res.header("server"), Some("kitteh"), "{path}");
    }
    // HEAD of a page answered in-process carries the GET's length.
    let page = server.get("/", &[]);
    let mut s = connect_from("127.0.0.1", server.port);
    s.write_all(b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (head, _) = until_closed(&mut s);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no length: {head}"));
    assert_eq!(len, page.text().len().to_string());
}

#[test]
fn the_open_file_limit_is_raised_to_its_hard_limit_and_sizes_the_caps() {
    let sb = Sandbox::sqlite();
    // `prlimit` sets the limits the server starts with, as a service
    // manager would: a low soft limit under a higher hard one.
    let kitteh = assert_cmd::cargo::cargo_bin("kitteh");
    let mut cmd = std::process::Command::new("prlimit");
    cmd.arg("--nofile=1024:4096").arg(kitteh);
    for (k, v) in sb.kitteh().get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(sb.path());
    let server = Server::start_with(cmd, &["--migrate"]);
    let log = server.wait_for_log("the limits", |log| log.contains("kitteh is listening"));
    let line = log.lines().find(|l| l.contains("open-file limit")).unwrap();
    assert!(line.contains("soft_before=\"1024\""), "{line}");
    assert!(line.contains("soft_now=4096"), "{line}");
    // (4096 − 256) / 2 places; a client gets an eighth of them at most.
    let listening = log
        .lines()
        .find(|l| l.contains("kitteh is listening"))
        .unwrap();
    assert!(listening.contains("max_connections=1920"), "{listening}");
    assert!(
        listening.contains("max_connections_per_client=128"),
        "{listening}"
    );
    let pid = server.child.id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert!(
        open_files
            .split_whitespace()
            .filter(|w| *w == "4096")
            .count()
            == 2,
        "{open_files}"
    );
}
