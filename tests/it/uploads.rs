//! The uploader end to end: upload, show, serve and delete in every
//! format, on every database and storage backend, through the API and the
//! browser form, against a real `kitteh serve`.

use std::collections::HashSet;

use crate::fixtures;
use crate::helpers::{Sandbox, Server, absolute_urls, get, post};

fn happy_path(sb: &Sandbox, label: &str, mime: &str, bytes: &[u8], w: u32, h: u32) {
    let server = Server::start(sb, &["--migrate"]);
    let res = server.upload(&format!("cat.{label}"), mime, bytes);
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
    let meta = server.get(&format!("/api/images/{token}"), &[]).json();
    assert_eq!(meta["sha256"], v["sha256"]);
    assert!(meta.get("delete_token").is_none());

    // The show page, by name, any case, with or without the type word.
    for path in [
        name.clone(),
        name.to_ascii_lowercase(),
        name.trim_end_matches("Kitty").to_string(),
    ] {
        let page = server.get(&format!("/{path}"), &[("Accept", "text/html")]);
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
    let img = server.get(&format!("/img/{token}"), &[]);
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
    let not_modified = server.get(&format!("/img/{token}"), &[("If-None-Match", &etag)]);
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    let part = server.get(&format!("/img/{token}"), &[("Range", "bytes=0-9")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, stored[..10]);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 0-9/{}", stored.len()).as_str())
    );
    let beyond = server.get(&format!("/img/{token}"), &[("Range", "bytes=99999999-")]);
    assert_eq!(beyond.status, 416);
    assert_eq!(
        beyond.header("content-range"),
        Some(format!("bytes */{}", stored.len()).as_str())
    );
    let head = server.head(&format!("/img/{token}"));
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(stored.len().to_string().as_str())
    );
    // A download is named after the uploader's file, with the extension
    // of the stored format.
    let download = server.get(&format!("/img/{token}?download"), &[]);
    let disposition = download.header("content-disposition").unwrap();
    let file = format!("cat.{}", ext(mime));
    assert_eq!(
        disposition,
        format!("attachment; filename=\"{file}\"; filename*=UTF-8''{file}")
    );
    assert_eq!(download.body, stored);
    // The same bytes under a name that ends in the extension.
    let with_extension = server.get(&format!("/img/{token}.{}", ext(mime)), &[]);
    assert_eq!(with_extension.status, 200);
    assert_eq!(with_extension.header("content-type"), Some(mime));
    assert_eq!(with_extension.body, stored);

    // Delete: a wrong token removes nothing.
    let wrong = server.delete(&token, "not-the-token");
    assert_eq!(wrong.status, 403);
    assert_eq!(wrong.json()["error"]["code"], "forbidden");
    let missing = server.delete_path(&format!("/api/images/{token}"), &[]);
    assert_eq!(missing.status, 403);
    assert_eq!(server.get(&format!("/img/{token}"), &[]).status, 200);
    assert_eq!(sb.count_rows(), 1);

    // The right token removes the row and the file.
    let gone = server.delete_path(
        &format!("/api/images/{token}?delete_token={delete_token}"),
        &[],
    );
    assert_eq!(gone.status, 204);
    assert_eq!(server.get(&format!("/img/{token}"), &[]).status, 404);
    assert_eq!(server.get(&format!("/api/images/{token}"), &[]).status, 404);
    assert_eq!(sb.count_rows(), 0);
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
fn every_format_goes_through_upload_serve_and_delete_on_s3() {
    for (label, mime, bytes, w, h) in [
        ("jpg", "image/jpeg", fixtures::jpeg(320, 240), 320, 240),
        ("png", "image/png", fixtures::png(300, 200), 300, 200),
        ("gif", "image/gif", fixtures::gif(120, 80), 120, 80),
        ("webp", "image/webp", fixtures::webp(200, 100), 200, 100),
    ] {
        let Some(sb) = Sandbox::sqlite_s3() else {
            return;
        };
        happy_path(&sb, label, mime, &bytes, w, h);
    }
}

#[test]
fn an_animated_gif_is_kept_as_it_is_apart_from_metadata() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let gif = fixtures::gif(16, 16);
    let with_metadata = fixtures::with_gif_metadata(&gif);
    assert!(with_metadata.windows(15).any(|w| w == b"secret-location"));
    let res = server.upload("a.gif", "image/gif", &with_metadata);
    assert_eq!(res.status, 201, "{}", res.text());
    let v = res.json();
    let served = server.get(&format!("/img/{}", v["token"].as_str().unwrap()), &[]);
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
    let res = server.form_upload("holiday.png", &fixtures::png(20, 20), &[]);
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

    let first = server.get(&location, &[("Accept", "text/html"), ("Cookie", &cookie)]);
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
    let again = server.get(&location, &[("Accept", "text/html")]);
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
    let done = server.post_form(
        &action,
        &format!("token={token}"),
        &[("Accept", "text/html")],
    );
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(
        server.get(&location, &[("Accept", "text/html")]).status,
        404
    );
    sb.assert_eventually_empty();

    let wrong = server.post_form(&action, "token=nope", &[("Accept", "text/html")]);
    assert_eq!(wrong.status, 404);
}

#[test]
fn the_delete_link_posted_as_it_is_deletes_and_a_bad_form_is_named() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let res = server.upload("a.png", "image/png", &fixtures::png(20, 20));
    assert_eq!(res.status, 201);
    let delete_url = res.json()["delete_url"].as_str().unwrap().to_string();
    let page = res.json()["page_url"].as_str().unwrap().to_string();

    // An oversized form is refused, naming the problem; nothing is deleted.
    let big = post(
        &delete_url,
        format!("token={}", "x".repeat(5000)).as_bytes(),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", "text/html"),
        ],
    );
    assert_eq!(big.status, 400, "{}", big.text());
    assert!(big.text().contains("4096 bytes"), "{}", big.text());
    assert_eq!(get(&page, &[("Accept", "text/html")]).status, 200);

    // A wrong token in the query deletes nothing.
    let wrong = post(&format!("{page}/delete?token=nope"), &[], &[]);
    assert_eq!(wrong.status, 403, "{}", wrong.text());
    assert_eq!(get(&page, &[("Accept", "text/html")]).status, 200);

    // The delete link itself, posted with no body, deletes.
    let done = post(&delete_url, &[], &[("Accept", "text/html")]);
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(get(&page, &[("Accept", "text/html")]).status, 404);
    sb.assert_eventually_empty();
}

#[test]
fn a_browser_upload_error_shows_the_upload_page_with_the_message_and_status() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let res = server.form_upload("doc.pdf", b"%PDF-1.7 not a picture", &[]);
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
    let page = server.get("/", &[("Accept", "text/html")]);
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
    let page = server.get("/NoSuchSleepyKitty", &[("Accept", "text/html")]);
    assert_eq!(page.status, 404);
    assert!(page.text().contains("href=\"/\""));
    let api = server.get("/api/images/nosuchsleepy", &[]);
    assert_eq!(api.status, 404);
    assert_eq!(api.json()["error"]["code"], "not_found");
}

#[test]
fn a_client_file_name_is_only_display_text() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    // Tab and U+0085 are control characters that survive HTTP header parsing.
    let res = server.upload(
        "../../etc/pa\tss\u{85}wd.png",
        "image/png",
        &fixtures::png(8, 8),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let v = res.json();
    assert_eq!(v["original_name"], "passwd.png");
    let token = v["token"].as_str().unwrap();
    assert_eq!(sb.originals(), vec![format!("{token}.png")]);
    assert!(!sb.path().join("etc").exists());

    // Raw control bytes break the part's headers: a clear 400, nothing stored.
    let res = server.upload("bell\u{7}.png", "image/png", &fixtures::png(8, 8));
    assert_eq!(res.status, 400, "{}", res.text());
    assert_eq!(res.json()["error"]["code"], "bad_form");
    assert_eq!(sb.originals().len(), 1);
}

#[test]
fn the_format_comes_from_the_bytes_not_the_name_or_content_type() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let res = server.upload("photo.gif", "image/gif", &fixtures::png(8, 8));
    assert_eq!(res.status, 201);
    let v = res.json();
    assert_eq!(v["content_type"], "image/png");
    assert!(sb.originals()[0].ends_with(".png"));
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
        let res = server.upload("exif.jpg", "image/jpeg", &jpeg);
        assert_eq!(res.status, 201, "{}", res.text());
        let v = res.json();
        let served = server
            .get(&format!("/img/{}", v["token"].as_str().unwrap()), &[])
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
                    let res = server.upload(&format!("{i}.png"), "image/png", &png);
                    assert_eq!(res.status, 201, "{}", res.text());
                    res.json()["token"].as_str().unwrap().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let distinct: HashSet<_> = tokens.iter().collect();
    assert_eq!(distinct.len(), 50);
    assert_eq!(sb.originals().len(), 50);
    assert_eq!(sb.count_rows(), 50);
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
    let res = server.upload("a.png", "image/png", &fixtures::png(400, 300));
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
    let meta = server.get(&format!("/api/images/{token}"), &[]).json();
    for url in absolute_urls(&meta.to_string()) {
        public(&url, "GET /api/images");
    }

    // The browser form: its redirect, then every absolute URL on the show
    // page (links, image sources, srcset, share snippets, the delete link).
    let form = server.form_upload("b.png", &fixtures::png(400, 300), &[]);
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
    let page = server.get(path, &[("Accept", "text/html"), ("Cookie", &cookie)]);
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
    let size_page = server.get(
        &format!("/Tiny{}", path.trim_start_matches('/')),
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
    let res = server.upload(
        "Ünïcode holiday photo.jpeg",
        "image/jpeg",
        &fixtures::jpeg(640, 480),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let v = res.json();
    let token = v["token"].as_str().unwrap();
    let original = server.get(&format!("/img/{token}"), &[]).body;
    for path in [
        format!("/img/{token}.jpg"),
        format!("/img/{token}.jpeg"),
        format!("/img/{token}.JPG"),
    ] {
        let res = server.get(&path, &[]);
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.body, original, "{path}");
    }
    // A size, by prefix and by query, with the extension.
    let tiny = server.get(&format!("/img/tiny{token}"), &[]).body;
    assert_eq!(server.get(&format!("/img/tiny{token}.jpg"), &[]).body, tiny);
    assert_eq!(
        server.get(&format!("/img/{token}.jpg?size=tiny"), &[]).body,
        tiny
    );
    // Another format's extension is not this picture; nor is anything else.
    let wrong = server.get(&format!("/img/{token}.png"), &[]);
    assert_eq!(wrong.status, 404);
    assert!(
        wrong.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains(".jpg"),
        "{}",
        wrong.text()
    );
    assert_eq!(server.get(&format!("/img/{token}.exe"), &[]).status, 404);

    // Downloads are named after the uploader's file, made safe for the
    // quoted form and exact in the UTF-8 form; a size adds its name.
    let download = server.get(&format!("/img/{token}.jpg?download"), &[]);
    assert_eq!(
        download.header("content-disposition"),
        Some(
            "attachment; filename=\"_n_code holiday photo.jpg\"; filename*=UTF-8''%C3%9Cn%C3%AFcode%20holiday%20photo.jpg"
        )
    );
    let tiny_download = server.get(&format!("/img/tiny{token}?download"), &[]);
    assert!(
        tiny_download
            .header("content-disposition")
            .unwrap()
            .ends_with("photo-tiny.jpg"),
        "{:?}",
        tiny_download.header("content-disposition")
    );

    // The show page shares links that end in the extension.
    let page = server
        .get(
            &format!("/{}", v["name"].as_str().unwrap()),
            &[("Accept", "text/html")],
        )
        .text();
    let image_file = format!("{}.jpg", v["image_url"].as_str().unwrap());
    assert!(page.contains(&format!("value=\"{image_file}\"")), "{page}");
    assert!(page.contains(&format!("[img]{image_file}[/img]")), "{page}");
    // And names the uploader's file.
    assert!(page.contains("Ünïcode holiday photo.jpeg"), "{page}");
}
