//! The uploader end to end: upload, show, serve, delete, and every kind of
//! bad input, against a real `kitteh serve`.

use std::collections::HashSet;

use sea_orm::{ConnectionTrait, Database, Statement};

use crate::fixtures::{self, multipart};
use crate::helpers::{Sandbox, Server, block_on, files_in, http};

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn reply(res: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut res = res.expect("HTTP exchange");
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let status = res.status().as_u16();
    let body = res
        .body_mut()
        .with_config()
        .limit(200 << 20)
        .read_to_vec()
        .unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

pub fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = http().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    reply(req.call())
}

pub fn no_redirect_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent()
}

/// Uploads through the JSON API in the `file` field.
pub fn api_upload(server: &Server, name: &str, ct: &str, bytes: &[u8]) -> Reply {
    let (content_type, body) = multipart("file", name, ct, bytes);
    reply(
        http()
            .post(server.url("/api/images"))
            .header("Content-Type", &content_type)
            .send(&body[..]),
    )
}

/// Uploads as the browser form does: field `image[file]`, asking for HTML.
fn form_upload(server: &Server, name: &str, bytes: &[u8]) -> Reply {
    let (content_type, body) = multipart("image[file]", name, "application/octet-stream", bytes);
    reply(
        no_redirect_agent()
            .post(server.url("/upload"))
            .header("Content-Type", &content_type)
            .header("Accept", "text/html")
            .send(&body[..]),
    )
}

pub fn count_rows(database_url: &str) -> i64 {
    block_on(async {
        let db = Database::connect(database_url).await.unwrap();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM images",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    })
}

/// Stored originals only: variants (`{token}-{size}.{ext}`) are made in
/// the background and may or may not exist yet.
pub fn originals(dir: &std::path::Path) -> Vec<String> {
    files_in(dir)
        .into_iter()
        .filter(|f| !f.contains('-'))
        .collect()
}

pub fn happy_path(sb: &Sandbox, label: &str, mime: &str, bytes: &[u8], w: u32, h: u32) {
    let server = Server::start(sb, &["--migrate"]);
    let res = api_upload(&server, &format!("cat.{label}"), mime, bytes);
    assert_eq!(res.status, 201, "{label}: {}", res.text());
    let v = res.json();
    assert_eq!(v["content_type"], mime, "{label}");
    assert_eq!(v["width"], w, "{label}");
    assert_eq!(v["height"], h, "{label}");
    let token = v["token"].as_str().unwrap().to_string();
    let name = v["name"].as_str().unwrap().to_string();
    assert!(name.ends_with("Kitty"), "{name}");
    assert_eq!(token, name.trim_end_matches("Kitty").to_ascii_lowercase());
    assert!(
        v["page_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert_eq!(res.header("location"), v["api_url"].as_str());
    let delete_token = v["delete_token"].as_str().unwrap().to_string();

    // The metadata endpoint says the same, without the delete token.
    let meta = get(&server.url(&format!("/api/images/{token}")), &[]).json();
    assert_eq!(meta["sha256"], v["sha256"]);
    assert!(meta.get("delete_token").is_none());

    // The show page, by name, any case, with or without the type word.
    for path in [
        name.clone(),
        name.to_ascii_lowercase(),
        name.trim_end_matches("Kitty").to_string(),
    ] {
        let page = get(&server.url(&format!("/{path}")), &[("Accept", "text/html")]);
        assert_eq!(page.status, 200, "{path}");
        let html = page.text();
        assert!(html.contains(&name), "{html}");
        assert!(html.contains(&format!("/img/{token}")), "{html}");
        assert!(html.contains(&format!("{w}×{h}")), "{html}");
        assert!(
            page.header("content-security-policy")
                .unwrap()
                .contains("default-src 'none'")
        );
        assert_eq!(page.header("x-frame-options"), Some("DENY"));
        assert_eq!(page.header("referrer-policy"), Some("same-origin"));
    }

    // The raw bytes: exactly what was stored, with their checksum as ETag.
    let img = get(&server.url(&format!("/img/{token}")), &[]);
    assert_eq!(img.status, 200);
    assert_eq!(img.header("content-type"), Some(mime));
    assert_eq!(img.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        img.header("content-security-policy"),
        Some("default-src 'none'; sandbox")
    );
    assert_eq!(
        img.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let etag = img.header("etag").unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", v["sha256"].as_str().unwrap()));
    assert_eq!(img.body.len() as u64, v["bytes"].as_u64().unwrap());
    let stored = sb.stored(&format!("{token}.{}", ext(mime))).unwrap();
    assert_eq!(img.body, stored);
    let decoded = image::load_from_memory(&img.body).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (w, h));

    // Conditional GET, ranges, HEAD, download.
    let not_modified = get(
        &server.url(&format!("/img/{token}")),
        &[("If-None-Match", &etag)],
    );
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    let part = get(
        &server.url(&format!("/img/{token}")),
        &[("Range", "bytes=0-9")],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, stored[..10]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 0-9/{}", stored.len()).as_str())
    );
    let beyond = get(
        &server.url(&format!("/img/{token}")),
        &[("Range", "bytes=99999999-")],
    );
    assert_eq!(beyond.status, 416);
    assert_eq!(
        beyond.header("content-range"),
        Some(format!("bytes */{}", stored.len()).as_str())
    );
    let head = reply(http().head(server.url(&format!("/img/{token}"))).call());
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(stored.len().to_string().as_str())
    );
    // A download is named after the uploader's file, with the extension
    // of the stored format.
    let download = get(&server.url(&format!("/img/{token}?download")), &[]);
    let disposition = download.header("content-disposition").unwrap();
    let file = format!("cat.{}", ext(mime));
    assert_eq!(
        disposition,
        format!("attachment; filename=\"{file}\"; filename*=UTF-8''{file}")
    );
    assert_eq!(download.body, stored);
    // The same bytes under a name that ends in the extension.
    let with_extension = get(&server.url(&format!("/img/{token}.{}", ext(mime))), &[]);
    assert_eq!(with_extension.status, 200);
    assert_eq!(with_extension.header("content-type"), Some(mime));
    assert_eq!(with_extension.body, stored);

    // Delete: a wrong token removes nothing.
    let wrong = reply(
        http()
            .delete(server.url(&format!("/api/images/{token}")))
            .header("X-Delete-Token", "not-the-token")
            .call(),
    );
    assert_eq!(wrong.status, 403);
    assert_eq!(wrong.json()["error"]["code"], "forbidden");
    let missing = reply(
        http()
            .delete(server.url(&format!("/api/images/{token}")))
            .call(),
    );
    assert_eq!(missing.status, 403);
    assert_eq!(get(&server.url(&format!("/img/{token}")), &[]).status, 200);
    assert_eq!(count_rows(&sb.database_url), 1);

    // The right token removes the row and the file.
    let gone = reply(
        http()
            .delete(server.url(&format!("/api/images/{token}?delete_token={delete_token}")))
            .call(),
    );
    assert_eq!(gone.status, 204);
    assert_eq!(get(&server.url(&format!("/img/{token}")), &[]).status, 404);
    assert_eq!(
        get(&server.url(&format!("/api/images/{token}")), &[]).status,
        404
    );
    assert_eq!(count_rows(&sb.database_url), 0);
    sb.assert_eventually_empty();
}

fn ext(mime: &str) -> &'static str {
    match mime {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        _ => "webp",
    }
}

#[test]
fn a_jpeg_goes_through_upload_show_serve_and_delete() {
    happy_path(
        &Sandbox::sqlite(),
        "jpg",
        "image/jpeg",
        &fixtures::jpeg(120, 80),
        120,
        80,
    );
}

#[test]
fn a_png_goes_through_upload_show_serve_and_delete() {
    happy_path(
        &Sandbox::sqlite(),
        "png",
        "image/png",
        &fixtures::png(64, 48),
        64,
        48,
    );
}

#[test]
fn an_animated_gif_goes_through_upload_show_serve_and_delete() {
    happy_path(
        &Sandbox::sqlite(),
        "gif",
        "image/gif",
        &fixtures::gif(30, 20),
        30,
        20,
    );
}

#[test]
fn a_webp_goes_through_upload_show_serve_and_delete() {
    happy_path(
        &Sandbox::sqlite(),
        "webp",
        "image/webp",
        &fixtures::webp(50, 70),
        50,
        70,
    );
}

#[test]
fn the_upload_path_works_on_postgres() {
    let Some(sb) = Sandbox::postgres() else {
        return;
    };
    happy_path(&sb, "jpg", "image/jpeg", &fixtures::jpeg(120, 80), 120, 80);
}

#[test]
fn an_animated_gif_is_kept_as_it_is_apart_from_metadata() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let gif = fixtures::gif(16, 16);
    let with_metadata = fixtures::with_gif_metadata(&gif);
    assert!(with_metadata.windows(15).any(|w| w == b"secret-location"));
    let res = api_upload(&server, "a.gif", "image/gif", &with_metadata);
    assert_eq!(res.status, 201, "{}", res.text());
    let v = res.json();
    let served = get(
        &server.url(&format!("/img/{}", v["token"].as_str().unwrap())),
        &[],
    );
    // Byte for byte the GIF without its comment and XMP: every frame, delay,
    // palette and the looping block untouched, nothing re-encoded.
    assert_eq!(served.body, gif);
    use image::AnimationDecoder;
    let frames = |bytes: &[u8]| {
        image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes.to_vec()))
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap()
    };
    let (sent, got) = (frames(&with_metadata), frames(&served.body));
    assert_eq!(got.len(), 2);
    for (a, b) in sent.iter().zip(&got) {
        assert_eq!(a.buffer(), b.buffer());
        assert_eq!(a.delay(), b.delay());
    }
}

#[test]
fn the_browser_form_redirects_to_the_show_page_and_shows_the_delete_link_once() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let res = form_upload(&server, "holiday.png", &fixtures::png(20, 20));
    assert_eq!(res.status, 303, "{}", res.text());
    let absolute = res.header("location").unwrap().to_string();
    assert!(
        absolute.starts_with(&server.base) && absolute.ends_with("Kitty"),
        "{absolute}"
    );
    let location = absolute.trim_start_matches(&server.base).to_string();
    let cookie = res
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();

    let first = get(
        &server.url(&location),
        &[("Accept", "text/html"), ("Cookie", &cookie)],
    );
    assert_eq!(first.status, 200);
    let html = first.text();
    assert!(html.contains("Delete link"), "{html}");
    let delete_url = html
        .split("href=\"")
        .map(|s| s.split('"').next().unwrap())
        .find(|href| href.contains("/delete?token="))
        .unwrap()
        .to_string();

    // A second visit (the flash cookie is consumed) no longer shows it.
    let again = get(&server.url(&location), &[("Accept", "text/html")]);
    assert!(!again.text().contains("Delete link"));

    // The delete link leads to a confirmation form, which deletes.
    let confirm = get(&delete_url, &[("Accept", "text/html")]);
    assert_eq!(confirm.status, 200);
    let confirm_html = confirm.text();
    assert!(confirm_html.contains("method=\"post\""), "{confirm_html}");
    // It shows what is about to go (a size of it, made within the upload)
    // and keeps the two actions apart.
    let token_in_link = location
        .trim_start_matches('/')
        .trim_end_matches("Kitty")
        .to_ascii_lowercase();
    let preview = confirm_html
        .split("<figure class=\"preview\"><img src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no preview in {confirm_html}"));
    assert!(
        preview.contains("/img/")
            && preview.ends_with(&token_in_link)
            && !preview.ends_with(&format!("/img/{token_in_link}")),
        "{preview}"
    );
    assert!(
        confirm_html.contains("class=\"delete-actions\""),
        "{confirm_html}"
    );
    let token = delete_url.split("token=").nth(1).unwrap();
    let action = format!("{location}/delete");
    let done = reply(
        http()
            .post(server.url(&action))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "text/html")
            .send(format!("token={token}").as_bytes()),
    );
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(
        get(&server.url(&location), &[("Accept", "text/html")]).status,
        404
    );
    sb.assert_eventually_empty();

    let wrong = reply(
        http()
            .post(server.url(&action))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "text/html")
            .send(&b"token=nope"[..]),
    );
    assert_eq!(wrong.status, 404);
}

#[test]
fn the_delete_link_posted_as_it_is_deletes_and_a_bad_form_is_named() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let res = api_upload(&server, "a.png", "image/png", &fixtures::png(20, 20));
    assert_eq!(res.status, 201);
    let delete_url = res.json()["delete_url"].as_str().unwrap().to_string();
    let page = res.json()["page_url"].as_str().unwrap().to_string();

    // An oversized form is refused, naming the problem; nothing is deleted.
    let big = reply(
        http()
            .post(&delete_url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "text/html")
            .send(format!("token={}", "x".repeat(5000)).as_bytes()),
    );
    assert_eq!(big.status, 400, "{}", big.text());
    assert!(big.text().contains("4096 bytes"), "{}", big.text());
    assert_eq!(get(&page, &[("Accept", "text/html")]).status, 200);

    // A wrong token in the query deletes nothing.
    let wrong = reply(
        http()
            .post(format!("{page}/delete?token=nope"))
            .send_empty(),
    );
    assert_eq!(wrong.status, 403, "{}", wrong.text());
    assert_eq!(get(&page, &[("Accept", "text/html")]).status, 200);

    // The delete link itself, posted with no body, deletes.
    let done = reply(
        http()
            .post(&delete_url)
            .header("Accept", "text/html")
            .send_empty(),
    );
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(get(&page, &[("Accept", "text/html")]).status, 404);
    sb.assert_eventually_empty();
}

#[test]
fn a_browser_upload_error_shows_the_upload_page_with_the_message_and_status() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let res = form_upload(&server, "doc.pdf", b"%PDF-1.7 not a picture");
    assert_eq!(res.status, 415);
    let html = res.text();
    assert!(html.contains("PDF"), "{html}");
    assert!(html.contains("JPEG, PNG, GIF and WebP"), "{html}");
    assert!(
        html.contains("name=\"image[file]\""),
        "the form is shown again: {html}"
    );
}

#[test]
fn the_upload_page_works_without_javascript() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let page = get(&server.url("/"), &[("Accept", "text/html")]);
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("action=\"/upload\""));
    assert!(html.contains("enctype=\"multipart/form-data\""));
    assert!(html.contains("name=\"image[file]\""));
}

#[test]
fn an_unknown_name_gets_a_404_page_with_a_link_home() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let page = get(
        &server.url("/NoSuchSleepyKitty"),
        &[("Accept", "text/html")],
    );
    assert_eq!(page.status, 404);
    assert!(page.text().contains("href=\"/\""));
    let api = get(&server.url("/api/images/nosuchsleepy"), &[]);
    assert_eq!(api.status, 404);
    assert_eq!(api.json()["error"]["code"], "not_found");
}

/// (label, bytes, expected status, expected code, words the message must contain)
type BadCase = (
    &'static str,
    Vec<u8>,
    u16,
    &'static str,
    &'static [&'static str],
);

fn bad_cases() -> Vec<BadCase> {
    let jpeg = fixtures::jpeg(200, 200);
    vec![
        ("empty.jpg", vec![], 400, "empty_file", &["empty"]),
        ("noise.jpg", fixtures::random_bytes(4096), 415, "unsupported_format", &["JPEG, PNG, GIF and WebP"]),
        ("page.jpg", b"<!DOCTYPE html><html><script>alert(1)</script></html>".to_vec(), 415, "unsupported_format", &["HTML"]),
        ("logo.svg", b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(), 415, "unsupported_format", &["SVG"]),
        ("doc.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj".to_vec(), 415, "unsupported_format", &["PDF"]),
        ("old.bmp", fixtures::bmp(), 415, "unsupported_format", &["BMP"]),
        ("scan.tiff", fixtures::tiff(), 415, "unsupported_format", &["TIFF"]),
        ("cut.jpg", jpeg[..jpeg.len() / 2].to_vec(), 422, "corrupt_image", &["truncated"]),
        ("broken.jpg", fixtures::jpeg_with_broken_scan(&fixtures::jpeg(640, 480), false), 422, "corrupt_image", &["corrupt", "huffman"]),
        ("broken-dc.jpg", fixtures::jpeg_with_broken_scan(&fixtures::progressive_jpeg(640, 480), false), 422, "corrupt_image", &["corrupt", "huffman"]),
        ("broken-ac.jpg", fixtures::jpeg_with_broken_scan(&fixtures::progressive_jpeg(640, 480), true), 422, "corrupt_image", &["corrupt", "huffman"]),
        ("bomb.png", fixtures::png_bomb(50_000, 50_000), 422, "dimensions_too_large", &["50000×50000", "16384×16384"]),
        ("liar.jpg", fixtures::jpeg_claiming(65_500, 65_500), 422, "dimensions_too_large", &["65500×65500"]),
        ("screen.gif", fixtures::gif_claiming_huge_screen(), 422, "dimensions_too_large", &["65535×65535"]),
        ("square.png", fixtures::png_bomb(10_000, 10_000), 422, "too_many_pixels", &["100000000", "60000000"]),
        ("cut.png", truncated(fixtures::png(200, 200)), 422, "corrupt_image", &["corrupt"]),
        ("noise.png", fixtures::png_with_garbage_pixels(64, 64), 422, "corrupt_image", &["corrupt"]),
        ("cut.gif", truncated(fixtures::gif(64, 64)), 422, "corrupt_image", &["corrupt"]),
        ("second.gif", fixtures::gif_with_bad_second_frame(), 422, "corrupt_image", &["corrupt"]),
        ("cut.webp", truncated(fixtures::webp(200, 200)), 422, "corrupt_image", &["corrupt"]),
        ("noise.webp", fixtures::webp_with_garbage_pixels(), 422, "corrupt_image", &["corrupt"]),
    ]
}

fn truncated(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.truncate(bytes.len() / 2);
    bytes
}

/// Requests that are not the upload form at all:
/// (label, content type, body, expected status, expected code, words).
type FormCase = (
    &'static str,
    String,
    Vec<u8>,
    u16,
    &'static str,
    &'static [&'static str],
);

fn bad_forms() -> Vec<FormCase> {
    let (other_field, body) = multipart("avatar", "a.png", "image/png", &fixtures::png(8, 8));
    vec![
        (
            "no file field",
            other_field,
            body,
            400,
            "missing_file",
            &["`file`"],
        ),
        (
            "JSON body",
            "application/json".into(),
            br#"{"file": "a.png"}"#.to_vec(),
            400,
            "bad_form",
            &["multipart/form-data"],
        ),
        (
            "no boundary",
            "multipart/form-data".into(),
            b"--x\r\n".to_vec(),
            400,
            "bad_form",
            &["boundary"],
        ),
        (
            "no body",
            "multipart/form-data; boundary=x".into(),
            Vec::new(),
            400,
            "bad_form",
            &["multipart"],
        ),
    ]
}

#[test]
fn bad_uploads_get_the_right_status_and_message_and_leave_nothing_behind() {
    bad_uploads(&Sandbox::sqlite());
}

pub fn bad_uploads(sb: &Sandbox) {
    let server = Server::start(sb, &["--migrate"]);
    for (label, bytes, status, code, words) in bad_cases() {
        let res = api_upload(&server, label, "image/jpeg", &bytes);
        assert_eq!(res.status, status, "{label}: {}", res.text());
        let err = &res.json()["error"];
        assert_eq!(err["code"], code, "{label}: {err}");
        let message = err["message"].as_str().unwrap();
        for word in words {
            assert!(
                message.contains(word),
                "{label}: {message:?} lacks {word:?}"
            );
        }
    }
    for (label, content_type, body, status, code, words) in bad_forms() {
        let res = reply(
            http()
                .post(server.url("/api/images"))
                .header("Content-Type", &content_type)
                .send(&body[..]),
        );
        assert_eq!(res.status, status, "{label}: {}", res.text());
        let err = &res.json()["error"];
        assert_eq!(err["code"], code, "{label}: {err}");
        let message = err["message"].as_str().unwrap();
        for word in words {
            assert!(
                message.contains(word),
                "{label}: {message:?} lacks {word:?}"
            );
        }
    }
    // The server still answers, and nothing was stored.
    assert_eq!(get(&server.url("/healthz"), &[]).status, 200);
    assert_eq!(count_rows(&sb.database_url), 0);
    sb.assert_eventually_empty();
}

#[test]
fn a_body_over_the_limit_gets_413_naming_the_limit() {
    let sb = Sandbox::sqlite();
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_UPLOADS__MAX_BYTES", "1MiB");
    let server = Server::start_with(cmd, &["--migrate"]);
    let big = fixtures::random_bytes(3 << 20);
    let res = api_upload(&server, "big.jpg", "image/jpeg", &big);
    assert_eq!(res.status, 413, "{}", res.text());
    let err = &res.json()["error"];
    assert_eq!(err["code"], "too_large");
    assert_eq!(err["limit_bytes"], 1 << 20);
    assert!(err["message"].as_str().unwrap().contains("1MiB"), "{err}");
    assert_eq!(get(&server.url("/healthz"), &[]).status, 200);
    assert!(files_in(&sb.uploads()).is_empty());
}

#[test]
fn a_streamed_body_without_length_is_cut_off_at_the_limit() {
    use std::io::{Read, Write};
    let sb = Sandbox::sqlite();
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_UPLOADS__MAX_BYTES", "1MiB");
    let server = Server::start_with(cmd, &["--migrate"]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let head = "POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    let part = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\n\r\n";
    stream
        .write_all(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes())
        .unwrap();
    // Keep streaming well past the limit; the server stops reading at it.
    let chunk = vec![0xABu8; 64 * 1024];
    for _ in 0..(4 * 16) {
        if stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .is_err()
            || stream.write_all(&chunk).is_err()
            || stream.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(files_in(&sb.uploads()).is_empty());
}

#[test]
fn a_client_file_name_is_only_display_text() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    // Tab and U+0085 are control characters that survive HTTP header parsing.
    let res = api_upload(
        &server,
        "../../etc/pa\tss\u{85}wd.png",
        "image/png",
        &fixtures::png(8, 8),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let v = res.json();
    assert_eq!(v["original_name"], "passwd.png");
    let token = v["token"].as_str().unwrap();
    assert_eq!(originals(&sb.uploads()), vec![format!("{token}.png")]);
    assert!(!sb.path().join("etc").exists());

    // Raw control bytes break the part's headers: a clear 400, nothing stored.
    let res = api_upload(&server, "bell\u{7}.png", "image/png", &fixtures::png(8, 8));
    assert_eq!(res.status, 400, "{}", res.text());
    assert_eq!(res.json()["error"]["code"], "bad_form");
    assert_eq!(originals(&sb.uploads()).len(), 1);
}

#[test]
fn the_format_comes_from_the_bytes_not_the_name_or_content_type() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let res = api_upload(&server, "photo.gif", "image/gif", &fixtures::png(8, 8));
    assert_eq!(res.status, 201);
    let v = res.json();
    assert_eq!(v["content_type"], "image/png");
    assert!(originals(&sb.uploads())[0].ends_with(".png"));
}

#[test]
fn exif_personal_data_is_removed_and_orientation_applied() {
    use fixtures::Corner::*;
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let (w, h) = (120u32, 80u32);
    let marked = fixtures::jpeg_of(&fixtures::marked(w, h));
    // Where the red block (top left in the stored pixels) must appear once
    // the picture is turned as each EXIF orientation says, and whether
    // width and height swap. Every orientation gives a different pair.
    let cases = [
        (1u16, TopLeft, false),
        (2, TopRight, false),
        (3, BottomRight, false),
        (4, BottomLeft, false),
        (5, TopLeft, true),
        (6, TopRight, true),
        (7, BottomRight, true),
        (8, BottomLeft, true),
    ];
    for (orientation, corner, swapped) in cases {
        let jpeg = fixtures::with_exif(&marked, orientation, "Jane Photographer");
        assert!(jpeg.windows(4).any(|x| x == b"Jane"));
        let res = api_upload(&server, "exif.jpg", "image/jpeg", &jpeg);
        assert_eq!(res.status, 201, "{}", res.text());
        let v = res.json();
        let served = get(
            &server.url(&format!("/img/{}", v["token"].as_str().unwrap())),
            &[],
        )
        .body;
        assert!(
            !served.windows(4).any(|x| x == b"Jane"),
            "artist survived (orientation {orientation})"
        );
        assert!(
            !served.windows(6).any(|x| x == b"Exif\0\0"),
            "EXIF survived (orientation {orientation})"
        );
        let decoded = image::load_from_memory(&served).unwrap();
        let expected = if swapped { (h, w) } else { (w, h) };
        assert_eq!(
            (decoded.width(), decoded.height()),
            expected,
            "orientation {orientation}"
        );
        assert_eq!(
            fixtures::red_corner(&decoded),
            corner,
            "orientation {orientation}"
        );
        assert_eq!(
            (
                v["width"].as_u64().unwrap() as u32,
                v["height"].as_u64().unwrap() as u32
            ),
            expected
        );
    }
}

#[test]
fn fifty_concurrent_uploads_get_fifty_distinct_names_files_and_rows() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let tokens: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let server = &server;
                s.spawn(move || {
                    // Distinct pictures: the same bytes would be stored once.
                    let png = fixtures::png(16 + i, 16);
                    let res = api_upload(server, &format!("{i}.png"), "image/png", &png);
                    assert_eq!(res.status, 201, "{}", res.text());
                    res.json()["token"].as_str().unwrap().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let distinct: HashSet<_> = tokens.iter().collect();
    assert_eq!(distinct.len(), 50);
    assert_eq!(originals(&sb.uploads()).len(), 50);
    assert_eq!(count_rows(&sb.database_url), 50);
}

pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap()
}

#[test]
fn a_decompression_bomb_does_not_grow_the_server_memory() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let bomb = fixtures::png_bomb(60_000, 60_000);
    // Warm up the paths the bomb will take, so one-time allocations
    // (connection pool, thread stacks) are not counted against it.
    for _ in 0..3 {
        assert_eq!(
            api_upload(
                &server,
                "w.png",
                "image/png",
                &fixtures::png_bomb(20_000, 20_000)
            )
            .status,
            422
        );
    }
    let before = rss_kib(server.child.id());
    for _ in 0..5 {
        let res = api_upload(&server, "bomb.png", "image/png", &bomb);
        assert_eq!(res.status, 422);
    }
    let after = rss_kib(server.child.id());
    let grown = after.saturating_sub(before);
    eprintln!(
        "bomb: {} KB file declaring 60000×60000 (3.6 GP); server RSS {before} KiB -> {after} KiB (+{grown} KiB)",
        bomb.len() / 1024
    );
    // Decoded, the bomb would take 14 GB. What a request may leave behind
    // is allocator pages of a thread the warm-up did not reach (a few MiB
    // per thread), so the bound is loose enough for that and far below
    // any decode.
    assert!(grown < 48 * 1024, "RSS grew by {grown} KiB");
}

/// Every `http://` or `https://` URL in a text: attribute values, srcset
/// entries and snippets alike.
pub fn absolute_urls(text: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for (i, _) in text.match_indices("http") {
        let rest = &text[i..];
        if !(rest.starts_with("http://") || rest.starts_with("https://")) {
            continue;
        }
        let end = rest
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | '[' | ']' | '&')
            })
            .unwrap_or(rest.len());
        urls.push(rest[..end].to_string());
    }
    urls
}

#[test]
fn every_url_handed_out_is_absolute_and_uses_the_public_url() {
    let sb = Sandbox::sqlite();
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_SERVER__PUBLIC_URL", "https://kitteh.example/");
    let server = Server::start_with(cmd, &["--migrate"]);
    let public = |url: &str, what: &str| {
        assert!(url.starts_with("https://kitteh.example/"), "{what}: {url}");
        assert!(
            !url.starts_with("https://kitteh.example//"),
            "{what}: {url}"
        );
    };
    let res = api_upload(&server, "a.png", "image/png", &fixtures::png(400, 300));
    let v = res.json();
    for key in ["page_url", "image_url", "api_url", "delete_url"] {
        public(v[key].as_str().unwrap(), key);
    }
    let sizes = v["sizes"].as_array().unwrap();
    assert_eq!(sizes.len(), 3);
    for size in sizes {
        public(size["url"].as_str().unwrap(), "sizes[].url");
        public(size["page_url"].as_str().unwrap(), "sizes[].page_url");
    }
    public(res.header("location").unwrap(), "Location");
    // The metadata endpoint hands out the same URLs.
    let token = v["token"].as_str().unwrap();
    let meta = get(&server.url(&format!("/api/images/{token}")), &[]).json();
    for url in absolute_urls(&meta.to_string()) {
        public(&url, "GET /api/images");
    }

    // The browser form: its redirect, then every absolute URL on the show
    // page (links, image sources, srcset, share snippets, the delete link).
    let form = form_upload(&server, "b.png", &fixtures::png(400, 300));
    let location = form.header("location").unwrap().to_string();
    public(&location, "form redirect");
    let cookie = form
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let path = location.trim_start_matches("https://kitteh.example");
    let page = get(
        &server.url(path),
        &[("Accept", "text/html"), ("Cookie", &cookie)],
    );
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("/delete?token="), "the delete link is shown");
    let urls = absolute_urls(&html);
    assert!(urls.len() >= 8, "{urls:?}");
    for url in &urls {
        public(url, "show page");
    }
    assert!(!html.contains("127.0.0.1"), "{html}");
    // A size's own page too.
    let size_page = get(
        &server.url(&format!("/Tiny{}", path.trim_start_matches('/'))),
        &[("Accept", "text/html")],
    );
    assert_eq!(size_page.status, 200);
    for url in absolute_urls(&size_page.text()) {
        public(&url, "size page");
    }
}

#[test]
fn image_urls_may_end_in_their_extension_and_downloads_keep_the_uploaders_name() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let res = api_upload(
        &server,
        "Ünïcode holiday photo.jpeg",
        "image/jpeg",
        &fixtures::jpeg(640, 480),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let v = res.json();
    let token = v["token"].as_str().unwrap();
    let original = get(&server.url(&format!("/img/{token}")), &[]).body;
    for path in [
        format!("/img/{token}.jpg"),
        format!("/img/{token}.jpeg"),
        format!("/img/{token}.JPG"),
    ] {
        let res = get(&server.url(&path), &[]);
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.body, original, "{path}");
    }
    // A size, by prefix and by query, with the extension.
    let tiny = get(&server.url(&format!("/img/tiny{token}")), &[]).body;
    assert_eq!(
        get(&server.url(&format!("/img/tiny{token}.jpg")), &[]).body,
        tiny
    );
    assert_eq!(
        get(&server.url(&format!("/img/{token}.jpg?size=tiny")), &[]).body,
        tiny
    );
    // Another format's extension is not this picture; nor is anything else.
    let wrong = get(&server.url(&format!("/img/{token}.png")), &[]);
    assert_eq!(wrong.status, 404);
    assert!(
        wrong.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains(".jpg"),
        "{}",
        wrong.text()
    );
    assert_eq!(
        get(&server.url(&format!("/img/{token}.exe")), &[]).status,
        404
    );

    // Downloads are named after the uploader's file, made safe for the
    // quoted form and exact in the UTF-8 form; a size adds its name.
    let download = get(&server.url(&format!("/img/{token}.jpg?download")), &[]);
    assert_eq!(
        download.header("content-disposition"),
        Some(
            "attachment; filename=\"_n_code holiday photo.jpg\"; filename*=UTF-8''%C3%9Cn%C3%AFcode%20holiday%20photo.jpg"
        )
    );
    let tiny_download = get(&server.url(&format!("/img/tiny{token}?download")), &[]);
    assert!(
        tiny_download
            .header("content-disposition")
            .unwrap()
            .ends_with("photo-tiny.jpg"),
        "{:?}",
        tiny_download.header("content-disposition")
    );

    // The show page shares links that end in the extension.
    let page = get(
        &server.url(&format!("/{}", v["name"].as_str().unwrap())),
        &[("Accept", "text/html")],
    )
    .text();
    let image_file = format!("{}.jpg", v["image_url"].as_str().unwrap());
    assert!(page.contains(&format!("value=\"{image_file}\"")), "{page}");
    assert!(page.contains(&format!("[img]{image_file}[/img]")), "{page}");
    // And names the uploader's file.
    assert!(page.contains("Ünïcode holiday photo.jpeg"), "{page}");
}

#[test]
fn a_broken_jpeg_scan_is_refused_whichever_path_its_sizes_take() {
    let sb = Sandbox::sqlite();
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0");
    let server = Server::start_with(cmd, &["--migrate"]);
    // Checked without sizes to make, the file is still decoded at the
    // scale its resize job would use (here every scan): a job never meets
    // data the check did not read.
    for (name, bytes) in [
        (
            "broken.jpg",
            fixtures::jpeg_with_broken_scan(&fixtures::jpeg(640, 480), false),
        ),
        (
            "broken-ac.jpg",
            fixtures::jpeg_with_broken_scan(&fixtures::progressive_jpeg(640, 480), true),
        ),
    ] {
        let res = api_upload(&server, name, "image/jpeg", &bytes);
        assert_eq!(res.status, 422, "{name}: {}", res.text());
        assert_eq!(res.json()["error"]["code"], "corrupt_image");
    }
    assert_eq!(count_rows(&sb.database_url), 0);
}
