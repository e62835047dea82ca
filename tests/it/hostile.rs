//! Uploads built to hurt: animations that cost minutes, pixels that cost
//! gigabytes, profiles that inflate a thousandfold, bodies that never come,
//! metadata hidden in chunks nobody has named. Every file is built here.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::fixtures;
use crate::helpers::{Sandbox, Server, multipart, wait_until};

/// Asserts an upload was refused with `status` and `code`, quickly, and
/// returns its error object.
fn refused(
    server: &Server,
    name: &str,
    bytes: &[u8],
    status: u16,
    code: &str,
) -> serde_json::Value {
    let started = Instant::now();
    let res = server.upload(name, "application/octet-stream", bytes);
    let took = started.elapsed();
    assert_eq!(res.status, status, "{name} after {took:?}: {}", res.text());
    let err = res.json()["error"].clone();
    assert_eq!(err["code"], code, "{name}: {err}");
    eprintln!(
        "{name}: {} bytes refused in {took:?}: {}",
        bytes.len(),
        err["message"]
    );
    err
}

#[test]
fn a_gif_of_thousands_of_tiny_frames_is_refused_at_once_naming_the_limit() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let bomb = fixtures::gif_frames(4000, 1, 1, 4000);
    assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
    let started = Instant::now();
    let err = refused(&server, "bomb.gif", &bomb, 422, "too_many_frames");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(err["max_frames"], 1000);
    assert!(err["message"].as_str().unwrap().contains("1000"), "{err}");
    assert_eq!(sb.count_rows(), 0);
}

#[test]
fn an_animation_over_its_pixel_budget_is_refused_before_decoding() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(&sb, &[("KITTEH_LIMITS__MAX_ANIMATION_PIXELS", "1000000")]);
    let gif = fixtures::gif_frames(10, 500, 500, 500);
    let err = refused(&server, "long.gif", &gif, 422, "animation_too_large");
    assert_eq!(err["max_pixels"], 1_000_000);
    // Within the budget, the same kind of file is accepted, frames intact.
    let short = fixtures::gif_frames(3, 500, 500, 500);
    let res = server.upload("short.gif", "image/gif", &short);
    assert_eq!(res.status, 201, "{}", res.text());
}

#[test]
fn a_decode_that_runs_too_long_is_stopped_naming_the_limit() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(
        &sb,
        &[
            ("KITTEH_LIMITS__DECODE_SECONDS", "0.05"),
            ("KITTEH_LIMITS__MAX_FRAMES", "100000"),
            ("KITTEH_LIMITS__MAX_ANIMATION_PIXELS", "100000000000"),
        ],
    );
    // Thousands of full 1000×1000 frames: LZW of one colour decodes at
    // memory speed, so this is hundreds of milliseconds, far past 50 ms.
    let gif = fixtures::gif_frames(4000, 1000, 1000, 1000);
    let started = Instant::now();
    let err = refused(&server, "slow.gif", &gif, 422, "decode_timeout");
    assert_eq!(err["limit_seconds"], 0.05);
    assert!(err["message"].as_str().unwrap().contains("0.05 s"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.get("/healthz", &[]).status, 200);
}

#[test]
fn a_decode_larger_than_the_whole_budget_is_refused_naming_it() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(&sb, &[("KITTEH_LIMITS__DECODE_MEMORY", "64MiB")]);
    // 16-bit RGBA, 3000×3000: 72 MB of pixels from a file of a few hundred KB.
    let deep = fixtures::deep_png(3000, 3000);
    let err = refused(&server, "deep.png", &deep, 422, "too_much_memory");
    assert_eq!(err["limit_bytes"], 64 << 20);
    assert!(err["needed_bytes"].as_u64().unwrap() > 64 << 20, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("limits.decode_memory")
    );
    // 50 MB to check, but its sizes need the 16-bit pixels and an 8-bit
    // copy at once: refused now rather than accepted with sizes that
    // could never be made.
    let sizes_too_big = fixtures::deep_png(2500, 2500);
    let err = refused(&server, "deep2.png", &sizes_too_big, 422, "too_much_memory");
    assert!(err["needed_bytes"].as_u64().unwrap() > 64 << 20, "{err}");
    // One that fits both is accepted and gets its sizes.
    let fits = fixtures::deep_png(1500, 1500);
    let res = server.upload("fits.png", "image/png", &fits);
    assert_eq!(res.status, 201, "{}", res.text());
    let token = res.json()["token"].as_str().unwrap().to_string();
    server.wait_sizes(&token, "ready");
    assert_eq!(sb.count_rows(), 1);
}

#[test]
fn deep_pngs_in_parallel_share_one_budget_and_the_overflow_is_told_to_retry() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(
        &sb,
        &[
            ("KITTEH_LIMITS__DECODE_MEMORY", "160MiB"),
            ("KITTEH_LIMITS__DECODE_WAIT_SECONDS", "0"),
        ],
    );
    let idle = server.rss_kib();
    // 3400×3400 16-bit RGBA: 92 MB once decoded, so only one fits; its
    // sizes (the pixels plus an 8-bit copy, about 146 MB) fit alone.
    let deep = fixtures::deep_png(3400, 3400);
    let peak = std::sync::atomic::AtomicU64::new(idle);
    let done = std::sync::atomic::AtomicBool::new(false);
    let replies: Vec<(u16, Option<String>, String)> = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(server.rss_kib(), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (server, deep) = (&server, &deep);
                s.spawn(move || {
                    let res = server.upload(&format!("deep{i}.png"), "image/png", deep);
                    let code = res.json()["error"]["code"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    (
                        res.status,
                        res.header("retry-after").map(str::to_string),
                        code,
                    )
                })
            })
            .collect();
        let replies = handles.into_iter().map(|h| h.join().unwrap()).collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        replies
    });
    let accepted = replies.iter().filter(|r| r.0 == 201).count();
    let busy: Vec<_> = replies.iter().filter(|r| r.0 == 503).collect();
    assert!(accepted >= 1, "{replies:?}");
    assert!(!busy.is_empty(), "six at once cannot all fit: {replies:?}");
    assert_eq!(accepted + busy.len(), 6, "only 201 or 503: {replies:?}");
    for (_, retry, code) in busy {
        assert_eq!(code, "busy");
        assert_eq!(retry.as_deref(), Some("5"));
    }
    let grown_mib = (peak.into_inner().saturating_sub(idle)) / 1024;
    eprintln!("peak RSS growth {grown_mib} MiB with a 160 MiB decode budget");
    assert!(grown_mib < 160 + 150, "RSS grew by {grown_mib} MiB");
    assert_eq!(sb.count_rows(), accepted as i64);
}

#[test]
fn a_colour_profile_that_inflates_past_its_cap_is_refused_without_inflating_it() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let bomb = fixtures::icc_bomb_png();
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    let before = server.rss_kib();
    let err = refused(&server, "icc.png", &bomb, 422, "profile_too_large");
    assert_eq!(err["limit_bytes"], 4 << 20);
    let grown = server.rss_kib().saturating_sub(before) / 1024;
    assert!(grown < 64, "RSS grew by {grown} MiB");
}

#[test]
fn private_png_and_unknown_webp_chunks_are_dropped_with_what_they_carry() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let secret = b"GPS 52.3676N 4.9041E author Jane Doe";
    let png = fixtures::with_png_chunk(&fixtures::png(40, 30), b"prVt", secret);
    let png = fixtures::with_png_chunk(&png, b"pHYs", &[0, 0, 11, 19, 0, 0, 11, 19, 1]);
    let webp = fixtures::with_webp_chunk(&fixtures::webp(40, 30), b"C2PA", secret);
    for (name, mime, bytes) in [("p.png", "image/png", png), ("w.webp", "image/webp", webp)] {
        assert!(bytes.windows(secret.len()).any(|w| w == secret));
        let res = server.upload(name, mime, &bytes);
        assert_eq!(res.status, 201, "{name}: {}", res.text());
        let token = res.json()["token"].as_str().unwrap().to_string();
        let served = server.get(&format!("/img/{token}"), &[]).body;
        assert!(
            !served.windows(3).any(|w| w == b"GPS"),
            "{name} still carries the private chunk"
        );
        let (sent, got) = (
            image::load_from_memory(&bytes).unwrap().to_rgba8(),
            image::load_from_memory(&served).unwrap().to_rgba8(),
        );
        assert_eq!(sent, got, "{name}: the pixels are untouched");
    }
}

/// The start of a multipart body: longer than the 14 bytes Rocket peeks at
/// before any route runs, so the route is reached.
const HELD_PART_HEAD: &[u8] =
    b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"held.png\"\r\nContent-Type: image/png\r\n\r\n";

/// Opens an upload that declares `declared` bytes and sends `first` of them.
fn open_upload(server: &Server, declared: usize, first: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    stream.write_all(first).unwrap();
    stream
}

fn response_of(stream: &mut TcpStream) -> String {
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

#[test]
fn a_body_that_stalls_is_dropped_with_408_and_stores_nothing() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(&sb, &[("KITTEH_LIMITS__BODY_IDLE_SECONDS", "1")]);
    let (_, body) = multipart("file", "slow.png", "image/png", &fixtures::png(300, 300));
    let started = Instant::now();
    let mut stream = open_upload(&server, body.len(), &body[..body.len() / 2]);
    let response = response_of(&mut stream);
    let took = started.elapsed();
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(
        response.contains("body_timeout") && response.contains("limits.body_idle_seconds"),
        "{response}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(sb.count_rows(), 0);
    assert!(sb.originals().is_empty());
}

#[test]
fn a_body_that_trickles_is_dropped_with_408_naming_the_rate() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(
        &sb,
        &[
            ("KITTEH_LIMITS__BODY_IDLE_SECONDS", "1"),
            ("KITTEH_LIMITS__BODY_MIN_RATE", "64KiB"),
        ],
    );
    let (_, body) = multipart("file", "drip.png", "image/png", &fixtures::png(300, 300));
    let mut stream = open_upload(&server, body.len(), &body[..10]);
    // A byte every 200 ms: never idle for a second, far below 64 KiB/s.
    let started = Instant::now();
    for byte in &body[10..] {
        if stream.write_all(std::slice::from_ref(byte)).is_err()
            || started.elapsed() > Duration::from_secs(10)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let response = response_of(&mut stream);
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("limits.body_min_rate"), "{response}");
    assert_eq!(sb.count_rows(), 0);
}

#[test]
fn bodies_past_the_upload_memory_wait_then_are_told_to_retry() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(
        &sb,
        &[
            ("KITTEH_UPLOADS__MAX_BYTES", "1MiB"),
            ("KITTEH_LIMITS__UPLOAD_MEMORY", "2MiB"),
            ("KITTEH_LIMITS__DECODE_WAIT_SECONDS", "1"),
            ("KITTEH_LOG__LEVEL", "info,kitteh=debug"),
        ],
    );
    // Two bodies of almost 1 MiB held open take the whole 2 MiB.
    let held: Vec<TcpStream> = (0..2)
        .map(|_| open_upload(&server, 1_048_000, HELD_PART_HEAD))
        .collect();
    server.wait_for_log("both uploads to start", |log| {
        log.matches("request started").count() >= 2
    });
    let res = server.upload("third.png", "image/png", &fixtures::png(64, 64));
    assert_eq!(res.status, 503, "{}", res.text());
    assert_eq!(res.json()["error"]["code"], "busy");
    assert_eq!(res.header("retry-after"), Some("5"));
    drop(held);
    // Once they are gone, uploads go through again.
    wait_until("memory to be given back", || {
        server
            .upload("fourth.png", "image/png", &fixtures::png(64, 64))
            .status
            == 201
    });
}

#[test]
fn a_jpeg_of_thousands_of_scans_is_refused_from_its_markers() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(&sb, &[("KITTEH_LIMITS__MAX_JPEG_SCANS", "50")]);
    let bomb = fixtures::scan_bomb(2048, 10_000);
    assert!(bomb.len() < 300_000, "{} bytes", bomb.len());
    let started = Instant::now();
    let err = refused(&server, "scans.jpg", &bomb, 422, "too_many_scans");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err["scans"], 10_000);
    assert_eq!(err["max_scans"], 50);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("limits.max_jpeg_scans"),
        "{err}"
    );
    // The same kind of file within the limit is a picture like any other:
    // the decoder takes repeated scans, so the limit is what refuses.
    let fine = fixtures::scan_bomb(256, 40);
    let res = server.upload("fine.jpg", "image/jpeg", &fine);
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(sb.count_rows(), 1);
}
