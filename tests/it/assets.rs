//! Digested, pre-compressed, immutable assets, and the weight of the pages.

use crate::helpers::{Sandbox, Server};

fn asset_paths(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|s| s.starts_with("/assets/"))
        .map(str::to_string)
        .collect()
}

#[test]
fn pages_link_digested_assets_served_immutable_compressed_and_conditional() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let html = server.get("/", &[("Accept", "text/html")]).text();
    let paths = asset_paths(&html);
    let css = paths.iter().find(|p| p.ends_with(".css")).unwrap();
    let js = paths.iter().find(|p| p.ends_with(".js")).unwrap();
    assert!(
        css.starts_with("/assets/app-") && css.len() == "/assets/app-12345678.css".len(),
        "{css}"
    );
    assert!(js.starts_with("/assets/app-"), "{js}");

    let plain = server.get(css, &[("Accept-Encoding", "identity")]);
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("content-type"),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(
        plain.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    assert!(plain.header("content-encoding").is_none());
    assert!(String::from_utf8_lossy(&plain.body).contains(":root"));

    let br = server.get(css, &[("Accept-Encoding", "gzip, deflate, br")]);
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert!(
        br.body.len() < plain.body.len() / 2,
        "{} vs {}",
        br.body.len(),
        plain.body.len()
    );
    let gz = server.get(css, &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(&gz.body[..2], &[0x1f, 0x8b]);
    let refused = server.get(css, &[("Accept-Encoding", "br;q=0, gzip")]);
    assert_eq!(refused.header("content-encoding"), Some("gzip"));

    let etag = plain.header("etag").unwrap().to_string();
    assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");
    let fresh = server.get(css, &[("If-None-Match", &etag)]);
    assert_eq!(fresh.status, 304);
    assert!(fresh.body.is_empty());

    let h = server.head(css);
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    assert_eq!(h.header("etag"), Some(etag.as_str()));

    assert_eq!(server.get("/assets/app-00000000.css", &[]).status, 404);
    for (path, ct) in [
        ("/favicon.ico", "image/x-icon"),
        ("/robots.txt", "text/plain; charset=utf-8"),
    ] {
        let res = server.get(path, &[]);
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.header("content-type"), Some(ct));
        assert_eq!(res.header("cache-control"), Some("public, max-age=3600"));
    }
}

#[test]
fn every_page_weighs_under_50_kb_compressed() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let created = server
        .upload("a.png", "image/png", &crate::fixtures::png(50, 50))
        .json();
    let show = created["page_url"]
        .as_str()
        .unwrap()
        .trim_start_matches(&server.base)
        .to_string();
    for page in ["/", show.as_str(), "/NoSuchPageKitty"] {
        let html = server.get(page, &[("Accept", "text/html")]);
        let mut total = html.body.len();
        for asset in asset_paths(&html.text()) {
            total += server.get(&asset, &[("Accept-Encoding", "br")]).body.len();
        }
        total += server.get("/favicon.ico", &[]).body.len();
        eprintln!("{page}: {total} bytes (HTML uncompressed + assets with br)");
        assert!(total < 50_000, "{page} weighs {total} bytes");
    }
}

#[test]
fn an_assets_folder_replaces_the_embedded_assets_without_a_rebuild() {
    let sb = Sandbox::sqlite();
    let dir = sb.path().join("theme");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("app.css"), "body { background: hotpink }").unwrap();
    std::fs::write(dir.join("app.js"), "\"use strict\";").unwrap();
    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_ASSETS__DIR", &dir);
    let server = Server::start_with(cmd, &["--migrate"]);
    let html = server.get("/", &[("Accept", "text/html")]).text();
    let css = asset_paths(&html)
        .into_iter()
        .find(|p| p.ends_with(".css"))
        .unwrap();
    let body = server.get(&css, &[("Accept-Encoding", "identity")]).text();
    assert_eq!(body, "body { background: hotpink }");
}
