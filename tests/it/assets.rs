//! Digested, pre-compressed, immutable assets, and the weight of the pages.

use crate::helpers::{Sandbox, Server, http};
use crate::uploads::{Reply, get};

fn asset_paths(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|s| s.starts_with("/assets/"))
        .map(str::to_string)
        .collect()
}

fn head(url: &str) -> Reply {
    let mut res = http().head(url).call().unwrap();
    Reply {
        status: res.status().as_u16(),
        headers: res
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
        body: res.body_mut().read_to_vec().unwrap_or_default(),
    }
}

#[test]
fn pages_link_digested_assets_served_immutable_compressed_and_conditional() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let html = get(&server.url("/"), &[("Accept", "text/html")]).text();
    let paths = asset_paths(&html);
    let css = paths.iter().find(|p| p.ends_with(".css")).unwrap();
    let js = paths.iter().find(|p| p.ends_with(".js")).unwrap();
    assert!(
        css.starts_with("/assets/app-") && css.len() == "/assets/app-12345678.css".len(),
        "{css}"
    );
    assert!(js.starts_with("/assets/app-"), "{js}");

    let plain = get(&server.url(css), &[("Accept-Encoding", "identity")]);
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

    let br = get(
        &server.url(css),
        &[("Accept-Encoding", "gzip, deflate, br")],
    );
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert!(
        br.body.len() < plain.body.len() / 2,
        "{} vs {}",
        br.body.len(),
        plain.body.len()
    );
    let gz = get(&server.url(css), &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(&gz.body[..2], &[0x1f, 0x8b]);
    let refused = get(&server.url(css), &[("Accept-Encoding", "br;q=0, gzip")]);
    assert_eq!(refused.header("content-encoding"), Some("gzip"));

    let etag = plain.header("etag").unwrap().to_string();
    assert!(etag.starts_with('"') && etag.len() == 66, "{etag}");
    let fresh = get(&server.url(css), &[("If-None-Match", &etag)]);
    assert_eq!(fresh.status, 304);
    assert!(fresh.body.is_empty());

    let h = head(&server.url(css));
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    assert_eq!(h.header("etag"), Some(etag.as_str()));

    assert_eq!(
        get(&server.url("/assets/app-00000000.css"), &[]).status,
        404
    );
    for (path, ct) in [
        ("/favicon.ico", "image/x-icon"),
        ("/robots.txt", "text/plain; charset=utf-8"),
    ] {
        let res = get(&server.url(path), &[]);
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.header("content-type"), Some(ct));
        assert_eq!(res.header("cache-control"), Some("public, max-age=3600"));
    }
}

#[test]
fn every_page_weighs_under_50_kb_compressed() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let created =
        crate::uploads::api_upload(&server, "a.png", "image/png", &crate::fixtures::png(50, 50))
            .json();
    let show = created["page_url"]
        .as_str()
        .unwrap()
        .trim_start_matches(&server.base)
        .to_string();
    for page in ["/", show.as_str(), "/NoSuchPageKitty"] {
        let html = get(&server.url(page), &[("Accept", "text/html")]);
        let mut total = html.body.len();
        for asset in asset_paths(&html.text()) {
            total += get(&server.url(&asset), &[("Accept-Encoding", "br")])
                .body
                .len();
        }
        total += get(&server.url("/favicon.ico"), &[]).body.len();
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
    let html = get(&server.url("/"), &[("Accept", "text/html")]).text();
    let css = asset_paths(&html)
        .into_iter()
        .find(|p| p.ends_with(".css"))
        .unwrap();
    let body = get(&server.url(&css), &[("Accept-Encoding", "identity")]).text();
    assert_eq!(body, "body { background: hotpink }");
}
