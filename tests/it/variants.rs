//! Background resizing: sizes, formats, URLs, durability across kill -9,
//! failure after N attempts, and several replicas sharing the work.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, Statement};

use crate::fixtures;
use crate::helpers::{Sandbox, Server, block_on, files_in, wait_until};
use crate::uploads::{api_upload, get};

/// Polls the API until every size is `ready` (or `failed`), within 60 s.
pub fn wait_sizes(server: &Server, token: &str, until: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = get(&server.url(&format!("/api/images/{token}")), &[]).json();
        let sizes = v["sizes"].as_array().unwrap();
        if sizes.iter().all(|s| s["state"] == until) {
            return v;
        }
        assert!(Instant::now() < deadline, "sizes never became {until}: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn upload_and_wait(server: &Server, name: &str, mime: &str, bytes: &[u8]) -> serde_json::Value {
    let res = api_upload(server, name, mime, bytes);
    assert_eq!(res.status, 201, "{}", res.text());
    let token = res.json()["token"].as_str().unwrap().to_string();
    wait_sizes(server, &token, "ready")
}

fn dims_of(v: &serde_json::Value) -> Vec<(String, u64, u64)> {
    v["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["width"].as_u64().unwrap(),
                s["height"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The first column of every row of `query`, as text.
pub fn sql_text(database_url: &str, query: &str) -> Vec<String> {
    block_on(async {
        let db = Database::connect(database_url).await.unwrap();
        db.query_all_raw(Statement::from_string(db.get_database_backend(), query))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).unwrap())
            .collect()
    })
}

pub fn sql_i64(database_url: &str, query: &str) -> Vec<i64> {
    block_on(async {
        let db = Database::connect(database_url).await.unwrap();
        db.query_all_raw(Statement::from_string(db.get_database_backend(), query))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get_by_index::<i64>(0).unwrap())
            .collect()
    })
}

/// (file name, content type, bytes, expected tiny / large / monstrous size)
type SizeCase = (&'static str, &'static str, Vec<u8>, [(u64, u64); 3]);

/// The same sizes whichever path makes them: within the upload (the
/// default), or a resize job (`inline_max_pixels = 0`).
#[test]
fn sizes_keep_aspect_ratio_never_upscale_and_keep_the_format() {
    for inline in [true, false] {
        let sb = Sandbox::sqlite();
        let mut cmd = sb.kitteh();
        if !inline {
            cmd.env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0");
        }
        let server = Server::start_with(cmd, &["--migrate"]);
        sizes_of_every_format(&server, inline);
    }
}

fn sizes_of_every_format(server: &Server, inline: bool) {
    let cases: Vec<SizeCase> = vec![
        (
            "landscape.jpg",
            "image/jpeg",
            fixtures::jpeg(800, 600),
            [(90, 68), (300, 225), (600, 450)],
        ),
        (
            "progressive.jpg",
            "image/jpeg",
            fixtures::progressive_jpeg(1000, 700),
            [(90, 63), (300, 210), (600, 420)],
        ),
        (
            "portrait.png",
            "image/png",
            fixtures::png(600, 900),
            [(90, 135), (300, 450), (600, 900)],
        ),
        // Orientation 6: stored as 400×800 after rotation.
        (
            "rotated.jpg",
            "image/jpeg",
            fixtures::jpeg_with_exif(800, 400, 6, "Someone"),
            [(90, 180), (300, 600), (400, 800)],
        ),
        (
            "dot.png",
            "image/png",
            fixtures::png(1, 1),
            [(1, 1), (1, 1), (1, 1)],
        ),
        (
            "narrow.webp",
            "image/webp",
            fixtures::webp(200, 100),
            [(90, 45), (200, 100), (200, 100)],
        ),
        (
            "anim.gif",
            "image/gif",
            fixtures::gif(120, 60),
            [(90, 45), (120, 60), (120, 60)],
        ),
    ];
    for (name, mime, bytes, expected) in cases {
        let res = api_upload(server, name, mime, &bytes);
        assert_eq!(res.status, 201, "{}", res.text());
        let answer = res.json();
        let ready_at_once = answer["sizes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "ready" && s["bytes"].as_u64().is_some_and(|b| b > 0));
        assert_eq!(ready_at_once, inline, "{name}: {answer}");
        let v = wait_sizes(server, answer["token"].as_str().unwrap(), "ready");
        let names = ["tiny", "large", "monstrous"];
        let want: Vec<(String, u64, u64)> = names
            .iter()
            .zip(expected)
            .map(|(n, (w, h))| (n.to_string(), w, h))
            .collect();
        assert_eq!(dims_of(&v), want, "{name}");
        let token = v["token"].as_str().unwrap();
        for (size, (w, h)) in names.iter().zip(expected) {
            let res = get(&server.url(&format!("/img/{size}{token}")), &[]);
            assert_eq!(res.status, 200, "{name} {size}");
            assert_eq!(res.header("content-type"), Some(mime), "{name} {size}");
            assert_eq!(
                res.header("cache-control"),
                Some("public, max-age=31536000, immutable")
            );
            assert!(res.header("etag").is_some());
            let img = image::load_from_memory(&res.body).unwrap();
            assert_eq!(
                (img.width() as u64, img.height() as u64),
                (w, h),
                "{name} {size}"
            );
            assert!(
                !res.body.windows(6).any(|x| x == b"Exif\0\0"),
                "{name} {size} has EXIF"
            );
            assert!(
                !res.body.windows(7).any(|x| x == b"Someone"),
                "{name} {size} has the artist"
            );
            // The query form answers the same bytes.
            let same = get(&server.url(&format!("/img/{token}?size={size}")), &[]);
            assert_eq!(same.body, res.body);
        }
        if mime == "image/gif" {
            use image::AnimationDecoder;
            let tiny = get(&server.url(&format!("/img/tiny{token}")), &[]).body;
            let frames = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(tiny))
                .unwrap()
                .into_frames()
                .collect_frames()
                .unwrap();
            assert_eq!(frames.len(), 1, "a GIF's variants are stills");
            // The still is the first frame (shade 40), not the second (200).
            let pixel = frames[0].buffer().get_pixel(10, 10).0;
            assert!(
                pixel[0].abs_diff(40) < 8 && pixel[1].abs_diff(100) < 8,
                "{pixel:?}"
            );
        }
        if mime == "image/webp" {
            // Sizes of a WebP are lossless, as its original may be.
            let tiny = get(&server.url(&format!("/img/tiny{token}")), &[]).body;
            assert_eq!(&tiny[12..16], b"VP8L", "a lossless bitstream");
        }
    }
}

/// Whether a pixel is within `tolerance` of `want` in every channel.
fn near(pixel: [u8; 3], want: [u8; 3], tolerance: u8) -> bool {
    pixel
        .iter()
        .zip(want)
        .all(|(p, w)| p.abs_diff(w) <= tolerance)
}

#[test]
fn large_jpegs_and_pngs_have_their_sizes_in_the_upload_answer() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    // The fixtures are gradients: red grows to the right, green downwards,
    // blue is 128. A size made from the wrong pixels (a bad scale, rows
    // out of order, a missed turn) has the wrong colour in a corner.
    let cases = [
        (
            "photo.jpg",
            "image/jpeg",
            fixtures::jpeg(4000, 3000),
            (600, 450),
        ),
        (
            "progressive.jpg",
            "image/jpeg",
            fixtures::progressive_jpeg(3000, 2000),
            (600, 400),
        ),
        (
            "scan.png",
            "image/png",
            fixtures::png(2400, 1800),
            (600, 450),
        ),
    ];
    for (name, mime, bytes, monstrous) in cases {
        let res = api_upload(&server, name, mime, &bytes);
        assert_eq!(res.status, 201, "{name}: {}", res.text());
        let v = res.json();
        let token = v["token"].as_str().unwrap();
        for size in v["sizes"].as_array().unwrap() {
            assert_eq!(size["state"], "ready", "{name}: {v}");
            // The URL handed out answers with the size itself, not a
            // redirect to the original.
            let res = get(size["url"].as_str().unwrap(), &[]);
            assert_eq!(res.status, 200);
            assert_eq!(res.body.len() as u64, size["bytes"].as_u64().unwrap());
            let img = image::load_from_memory(&res.body).unwrap().to_rgb8();
            assert_eq!(
                (u64::from(img.width()), u64::from(img.height())),
                (
                    size["width"].as_u64().unwrap(),
                    size["height"].as_u64().unwrap()
                )
            );
            let (w, h) = (img.width() - 1, img.height() - 1);
            for (x, y, want) in [
                (0, 0, [0, 0, 128]),
                (w, 0, [255, 0, 128]),
                (0, h, [0, 255, 128]),
                (w, h, [255, 255, 128]),
                (w / 2, h / 2, [128, 128, 128]),
            ] {
                let pixel = img.get_pixel(x, y).0;
                assert!(
                    near(pixel, want, 24),
                    "{name} {} at {x},{y}: {pixel:?}",
                    size["name"]
                );
            }
        }
        let m = &v["sizes"][2];
        assert_eq!(
            (m["width"].as_u64().unwrap(), m["height"].as_u64().unwrap()),
            (monstrous.0, monstrous.1)
        );
        // No job ran, and none will: the image's job row is recorded done.
        assert_eq!(
            sql_text(
                &sb.database_url,
                &format!(
                    "SELECT j.state || ':' || CAST(j.attempts AS TEXT) FROM variant_jobs j \
                     JOIN images i ON i.id = j.image_id WHERE i.token = '{token}'"
                )
            ),
            vec!["done:0"]
        );
    }
}

#[test]
fn an_upload_over_the_inline_limit_has_its_sizes_made_by_a_job() {
    let sb = Sandbox::sqlite();
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "100000");
    let server = Server::start_with(cmd, &["--migrate"]);
    // 640×480 is over the limit; 300×300 (90 000 pixels) within it.
    for (name, mime, bytes, inline) in [
        ("big.jpg", "image/jpeg", fixtures::jpeg(640, 480), false),
        ("big.png", "image/png", fixtures::png(640, 480), false),
        ("small.jpg", "image/jpeg", fixtures::jpeg(300, 300), true),
        ("small.png", "image/png", fixtures::png(300, 300), true),
    ] {
        let res = api_upload(&server, name, mime, &bytes);
        assert_eq!(res.status, 201, "{}", res.text());
        let v = res.json();
        let token = v["token"].as_str().unwrap();
        let states: Vec<&str> = v["sizes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["state"].as_str().unwrap())
            .collect();
        let expected = if inline { "ready" } else { "pending" };
        // A worker may already have claimed the job by the time the
        // answer is written; it cannot have finished it.
        assert!(
            states
                .iter()
                .all(|s| *s == expected || (!inline && *s == "running")),
            "{name}: {v}"
        );
        wait_sizes(&server, token, "ready");
        let attempts = sql_i64(
            &sb.database_url,
            &format!(
                "SELECT CAST(j.attempts AS BIGINT) FROM variant_jobs j \
                 JOIN images i ON i.id = j.image_id WHERE i.token = '{token}'"
            ),
        );
        assert_eq!(attempts, vec![if inline { 0 } else { 1 }], "{name}");
    }
}

#[test]
fn a_size_not_ready_redirects_to_the_original_without_caching() {
    let sb = Sandbox::sqlite();
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_VARIANTS__WORKERS", "0")
        .env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0");
    let server = Server::start_with(cmd, &["--migrate"]);
    let res = api_upload(&server, "a.png", "image/png", &fixtures::png(400, 200));
    let v = res.json();
    let token = v["token"].as_str().unwrap();
    assert!(
        v["sizes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "pending"),
        "{v}"
    );
    let no_redirects = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let res = no_redirects
        .get(server.url(&format!("/img/monstrous{token}")))
        .call()
        .unwrap();
    assert_eq!(res.status(), 307);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(
        res.headers()["location"],
        server.url(&format!("/img/{token}")).as_str()
    );
    // Asked for with its extension, the stand-in keeps it.
    let res = no_redirects
        .get(server.url(&format!("/img/monstrous{token}.png")))
        .call()
        .unwrap();
    assert_eq!(res.status(), 307);
    assert_eq!(
        res.headers()["location"],
        server.url(&format!("/img/{token}.png")).as_str()
    );
    // The page of a size still renders, showing its state.
    let page = get(
        &server.url(&format!("/Monstrous{}", v["name"].as_str().unwrap())),
        &[("Accept", "text/html")],
    );
    assert_eq!(page.status, 200);
    assert!(page.text().contains("pending"));
    // An unknown size is a 404 that lists the real ones.
    let unknown = get(&server.url(&format!("/img/{token}?size=huge")), &[]);
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tiny, large, monstrous")
    );
}

#[test]
fn show_pages_list_every_size_and_variant_pages_show_that_size() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let v = upload_and_wait(&server, "a.jpg", "image/jpeg", &fixtures::jpeg(1000, 500));
    let name = v["name"].as_str().unwrap();
    let token = v["token"].as_str().unwrap();
    let html = get(&server.url(&format!("/{name}")), &[("Accept", "text/html")]).text();
    for (size, dims) in [
        ("Tiny", "90×45"),
        ("Large", "300×150"),
        ("Monstrous", "600×300"),
    ] {
        assert!(html.contains(&format!("/{size}{name}")), "{size}: {html}");
        assert!(html.contains(dims), "{dims}: {html}");
    }
    assert!(html.contains("srcset="), "{html}");
    let tiny = get(
        &server.url(&format!("/Tiny{name}")),
        &[("Accept", "text/html")],
    );
    assert_eq!(tiny.status, 200);
    assert!(tiny.text().contains(&format!("/img/tiny{token}")));
}

#[test]
fn deleting_an_image_deletes_its_variants() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let res = api_upload(&server, "a.jpg", "image/jpeg", &fixtures::jpeg(700, 700));
    let created = res.json();
    let token = created["token"].as_str().unwrap();
    wait_sizes(&server, token, "ready");
    assert_eq!(files_in(&sb.uploads()).len(), 4);
    let gone = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .delete(server.url(&format!("/api/images/{token}")))
        .header("X-Delete-Token", created["delete_token"].as_str().unwrap())
        .call()
        .unwrap();
    assert_eq!(gone.status(), 204);
    assert!(
        files_in(&sb.uploads()).is_empty(),
        "{:?}",
        files_in(&sb.uploads())
    );
    assert_eq!(
        sql_i64(&sb.database_url, "SELECT COUNT(*) FROM variants"),
        vec![0]
    );
    assert_eq!(
        sql_i64(&sb.database_url, "SELECT COUNT(*) FROM variant_jobs"),
        vec![0]
    );
    assert_eq!(
        get(&server.url(&format!("/img/tiny{token}")), &[]).status,
        404
    );
}

#[test]
fn a_job_killed_mid_resize_is_finished_after_a_restart() {
    let sb = Sandbox::sqlite();
    let mut slow = sb.kitteh();
    slow.env("KITTEH_VARIANTS__WORK_DELAY_MS", "60000")
        .env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0")
        .env("KITTEH_VARIANTS__LEASE_SECONDS", "2");
    let mut server = Server::start_with(slow, &["--migrate"]);
    let res = api_upload(&server, "a.jpg", "image/jpeg", &fixtures::jpeg(640, 480));
    let token = res.json()["token"].as_str().unwrap().to_string();
    wait_sizes(&server, &token, "running");
    // SIGKILL: no chance to clean up, as in a crash.
    server.stop();

    let mut fast = sb.kitteh();
    fast.env("KITTEH_VARIANTS__LEASE_SECONDS", "2");
    let server = Server::start_with(fast, &[]);
    let v = wait_sizes(&server, &token, "ready");
    assert_eq!(dims_of(&v)[2], ("monstrous".to_string(), 600, 450));
    assert_eq!(
        sql_i64(&sb.database_url, "SELECT attempts FROM variant_jobs"),
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
    let res = api_upload(&server, "a.jpg", "image/jpeg", &fixtures::jpeg(640, 480));
    let token = res.json()["token"].as_str().unwrap().to_string();
    // Sizes are written largest first; the job then waits after the first.
    let first = format!("{token}-monstrous.jpg");
    crate::helpers::wait_until("the first size to be written", || {
        files_in(&sb.uploads()).contains(&first)
    });
    server.stop();
    assert_eq!(
        files_in(&sb.uploads()),
        vec![first.clone(), format!("{token}.jpg")],
        "killed with one size written"
    );
    assert_eq!(
        sql_i64(&sb.database_url, "SELECT COUNT(*) FROM variants"),
        vec![0],
        "nothing was recorded for the half-done job"
    );

    let mut fast = sb.kitteh();
    fast.env("KITTEH_VARIANTS__LEASE_SECONDS", "2");
    let server = Server::start_with(fast, &[]);
    let v = wait_sizes(&server, &token, "ready");
    assert_eq!(
        dims_of(&v),
        vec![
            ("tiny".to_string(), 90, 68),
            ("large".to_string(), 300, 225),
            ("monstrous".to_string(), 600, 450)
        ]
    );
    assert_eq!(
        sql_i64(&sb.database_url, "SELECT attempts FROM variant_jobs"),
        vec![2]
    );
    // Every size is whole and recorded once; no temp file is left.
    assert_eq!(
        files_in(&sb.uploads()).len(),
        4,
        "{:?}",
        files_in(&sb.uploads())
    );
    for (size, w) in [("tiny", 90), ("large", 300), ("monstrous", 600)] {
        let img = get(&server.url(&format!("/img/{size}{token}")), &[]);
        assert_eq!(img.status, 200);
        assert_eq!(image::load_from_memory(&img.body).unwrap().width(), w);
    }
    assert_eq!(
        sql_i64(&sb.database_url, "SELECT COUNT(*) FROM variants"),
        vec![3]
    );
}

#[test]
fn jpeg_quality_sets_the_quantisation_of_sizes() {
    let photo = fixtures::jpeg(800, 600);
    let coarseness = |quality: Option<&str>| {
        let sb = Sandbox::sqlite();
        let mut cmd = sb.kitteh();
        if let Some(q) = quality {
            cmd.env("KITTEH_VARIANTS__JPEG_QUALITY", q);
        }
        let server = Server::start_with(cmd, &["--migrate"]);
        let v = upload_and_wait(&server, "q.jpg", "image/jpeg", &photo);
        let token = v["token"].as_str().unwrap();
        let large = get(&server.url(&format!("/img/large{token}")), &[]).body;
        (fixtures::jpeg_quantisation_sum(&large), large.len())
    };
    let (low, low_bytes) = coarseness(Some("30"));
    let (default, default_bytes) = coarseness(None);
    let (high, high_bytes) = coarseness(Some("95"));
    assert!(low > default && default > high, "{low} {default} {high}");
    assert!(
        low_bytes < default_bytes && default_bytes < high_bytes,
        "{low_bytes} {default_bytes} {high_bytes}"
    );
}

#[test]
fn the_colour_profile_is_kept_in_originals_and_sizes() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let icc = fixtures::icc_profile();
    for (name, mime, format) in [
        ("icc.jpg", "image/jpeg", image::ImageFormat::Jpeg),
        ("icc.png", "image/png", image::ImageFormat::Png),
        ("icc.webp", "image/webp", image::ImageFormat::WebP),
    ] {
        let bytes = fixtures::with_icc(700, 400, format, &icc);
        assert_eq!(
            fixtures::icc_of(&bytes).as_ref(),
            Some(&icc),
            "{name} fixture"
        );
        let v = upload_and_wait(&server, name, mime, &bytes);
        let token = v["token"].as_str().unwrap();
        for prefix in ["", "tiny", "large", "monstrous"] {
            let served = get(&server.url(&format!("/img/{prefix}{token}")), &[]);
            assert_eq!(served.status, 200);
            assert_eq!(
                fixtures::icc_of(&served.body).as_ref(),
                Some(&icc),
                "{name} {prefix}"
            );
        }
    }
}

#[test]
fn rebuild_of_one_token_redoes_that_image_only() {
    let sb = Sandbox::sqlite();
    let tokens: Vec<String> = {
        let server = Server::start(&sb, &["--migrate"]);
        (0..2)
            .map(|i| {
                let res = api_upload(
                    &server,
                    &format!("{i}.png"),
                    "image/png",
                    // Distinct pictures: the same bytes would be stored once.
                    &fixtures::png(300 + i, 200),
                );
                let token = res.json()["token"].as_str().unwrap().to_string();
                wait_sizes(&server, &token, "ready");
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
        sql_i64(
            &sb.database_url,
            "SELECT CAST(attempts AS BIGINT) FROM variant_jobs ORDER BY image_id"
        ),
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
    let res = api_upload(&server, "a.png", "image/png", &fixtures::png(300, 300));
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
    let v = wait_sizes(&server, &token, "failed");
    let error = v["sizes"][0]["error"].as_str().unwrap();
    assert!(!error.is_empty());
    assert_eq!(
        sql_i64(&sb.database_url, "SELECT attempts FROM variant_jobs"),
        vec![2]
    );
    assert_eq!(get(&server.url("/healthz"), &[]).status, 200);
    assert_eq!(get(&server.url(&format!("/img/{token}")), &[]).status, 200);

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
        let res = api_upload(&server, "a.jpg", "image/jpeg", &fixtures::jpeg(500, 500));
        wait_sizes(&server, res.json()["token"].as_str().unwrap(), "ready");
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
        let res = api_upload(&server, "a.png", "image/png", &fixtures::png(2400, 1800));
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
    let errors = sql_text(
        &sb.database_url,
        "SELECT COALESCE(last_error, '') FROM variant_jobs",
    );
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
            let res = api_upload(server, &format!("{i}.png"), "image/png", &png);
            assert_eq!(res.status, 201, "{}", res.text());
            res.json()["token"].as_str().unwrap().to_string()
        })
        .collect();
    for (i, token) in tokens.iter().enumerate() {
        // Either replica can answer for any image.
        let other = if i % 2 == 0 { &b } else { &a };
        wait_sizes(other, token, "ready");
    }
    assert_eq!(
        sql_i64(
            &sb.database_url,
            "SELECT COUNT(*) FROM variant_jobs WHERE state = 'done'"
        ),
        vec![20]
    );
    assert_eq!(
        sql_i64(
            &sb.database_url,
            "SELECT CAST(attempts AS BIGINT) FROM variant_jobs"
        ),
        vec![1; 20],
        "every job was claimed exactly once"
    );
    assert_eq!(
        sql_i64(&sb.database_url, "SELECT COUNT(*) FROM variants"),
        vec![60]
    );
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
