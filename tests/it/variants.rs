//! Sizes: their dimensions, formats, colours and profiles whichever path
//! makes them (within the upload or a resize job), their URLs and pages
//! while pending and once ready, and their deletion with the image.

use crate::fixtures;
use crate::helpers::{Sandbox, Server, dims_of, files_in, get, no_redirect_agent};

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
        let res = server.upload(name, mime, &bytes);
        assert_eq!(res.status, 201, "{}", res.text());
        let answer = res.json();
        let ready_at_once = answer["sizes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "ready" && s["bytes"].as_u64().is_some_and(|b| b > 0));
        assert_eq!(ready_at_once, inline, "{name}: {answer}");
        let v = server.wait_sizes(answer["token"].as_str().unwrap(), "ready");
        let names = ["tiny", "large", "monstrous"];
        let want: Vec<(String, u64, u64)> = names
            .iter()
            .zip(expected)
            .map(|(n, (w, h))| (n.to_string(), w, h))
            .collect();
        assert_eq!(dims_of(&v), want, "{name}");
        let token = v["token"].as_str().unwrap();
        for (size, (w, h)) in names.iter().zip(expected) {
            let res = server.get(&format!("/img/{size}{token}"), &[]);
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
            let same = server.get(&format!("/img/{token}?size={size}"), &[]);
            assert_eq!(same.body, res.body);
        }
        if mime == "image/gif" {
            use image::AnimationDecoder;
            let tiny = server.get(&format!("/img/tiny{token}"), &[]).body;
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
            let tiny = server.get(&format!("/img/tiny{token}"), &[]).body;
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
        let res = server.upload(name, mime, &bytes);
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
            sb.sql_text(&format!(
                "SELECT j.state || ':' || CAST(j.attempts AS TEXT) FROM variant_jobs j \
                     JOIN images i ON i.id = j.image_id WHERE i.token = '{token}'"
            )),
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
        let res = server.upload(name, mime, &bytes);
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
        server.wait_sizes(token, "ready");
        let attempts = sb.sql_i64(&format!(
            "SELECT CAST(j.attempts AS BIGINT) FROM variant_jobs j \
                 JOIN images i ON i.id = j.image_id WHERE i.token = '{token}'"
        ));
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
    let res = server.upload("a.png", "image/png", &fixtures::png(400, 200));
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
    let no_redirects = no_redirect_agent();
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
    let page = server.get(
        &format!("/Monstrous{}", v["name"].as_str().unwrap()),
        &[("Accept", "text/html")],
    );
    assert_eq!(page.status, 200);
    assert!(page.text().contains("pending"));
    // An unknown size is a 404 that lists the real ones.
    let unknown = server.get(&format!("/img/{token}?size=huge"), &[]);
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
    let v = server.upload_and_wait("a.jpg", "image/jpeg", &fixtures::jpeg(1000, 500));
    let name = v["name"].as_str().unwrap();
    let token = v["token"].as_str().unwrap();
    let html = server
        .get(&format!("/{name}"), &[("Accept", "text/html")])
        .text();
    for (size, dims) in [
        ("Tiny", "90×45"),
        ("Large", "300×150"),
        ("Monstrous", "600×300"),
    ] {
        assert!(html.contains(&format!("/{size}{name}")), "{size}: {html}");
        assert!(html.contains(dims), "{dims}: {html}");
    }
    assert!(html.contains("srcset="), "{html}");
    let tiny = server.get(&format!("/Tiny{name}"), &[("Accept", "text/html")]);
    assert_eq!(tiny.status, 200);
    assert!(tiny.text().contains(&format!("/img/tiny{token}")));
}

#[test]
fn deleting_an_image_deletes_its_variants() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let res = server.upload("a.jpg", "image/jpeg", &fixtures::jpeg(700, 700));
    let created = res.json();
    let token = created["token"].as_str().unwrap();
    server.wait_sizes(token, "ready");
    assert_eq!(files_in(&sb.uploads()).len(), 4);
    let gone = server.delete(token, created["delete_token"].as_str().unwrap());
    assert_eq!(gone.status, 204);
    assert!(
        files_in(&sb.uploads()).is_empty(),
        "{:?}",
        files_in(&sb.uploads())
    );
    assert_eq!(sb.sql_i64("SELECT COUNT(*) FROM variants"), vec![0]);
    assert_eq!(sb.sql_i64("SELECT COUNT(*) FROM variant_jobs"), vec![0]);
    assert_eq!(server.get(&format!("/img/tiny{token}"), &[]).status, 404);
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
        let v = server.upload_and_wait("q.jpg", "image/jpeg", &photo);
        let token = v["token"].as_str().unwrap();
        let large = server.get(&format!("/img/large{token}"), &[]).body;
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
        let v = server.upload_and_wait(name, mime, &bytes);
        let token = v["token"].as_str().unwrap();
        for prefix in ["", "tiny", "large", "monstrous"] {
            let served = server.get(&format!("/img/{prefix}{token}"), &[]);
            assert_eq!(served.status, 200);
            assert_eq!(
                fixtures::icc_of(&served.body).as_ref(),
                Some(&icc),
                "{name} {prefix}"
            );
        }
    }
}
