//! Link previews: show pages parsed and followed as an unfurler does
//! (OpenGraph, oEmbed), and BlurHash placeholders.

use crate::fixtures;
use crate::helpers::{Sandbox, Server, each_database, get, wait_until};

/// Every `<meta>` and `<link>` tag's attributes, as an unfurler reads them.
fn head_tags(html: &str) -> Vec<Vec<(String, String)>> {
    let head = html.split("</head>").next().unwrap_or_default();
    let mut tags = Vec::new();
    for chunk in head.split('<').skip(1) {
        let Some((tag, _)) = chunk.split_once('>') else {
            continue;
        };
        if !(tag.starts_with("meta ") || tag.starts_with("link ")) {
            continue;
        }
        let mut attrs = vec![("tag".to_string(), tag[..4].to_string())];
        let mut rest = &tag[5..];
        while let Some((name, after)) = rest.split_once("=\"") {
            let Some((value, tail)) = after.split_once('"') else {
                break;
            };
            let value = value
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&");
            attrs.push((name.trim().to_string(), value));
            rest = tail;
        }
        tags.push(attrs);
    }
    tags
}

fn meta<'t>(tags: &'t [Vec<(String, String)>], key: &str, name: &str) -> Option<&'t str> {
    tags.iter()
        .find(|t| t.iter().any(|(k, v)| k == key && v == name))
        .and_then(|t| t.iter().find(|(k, _)| k == "content"))
        .map(|(_, v)| v.as_str())
}

fn unfurl(sb: &Sandbox) {
    let server = Server::with_env(sb, &[]);
    let image = server
        .upload("view.png", "image/png", &fixtures::png(800, 600))
        .json();
    let page_url = image["page_url"].as_str().unwrap().to_string();
    let html = get(&page_url, &[("Accept", "text/html")]).text();
    let tags = head_tags(&html);
    assert_eq!(meta(&tags, "property", "og:title"), image["name"].as_str());
    assert_eq!(meta(&tags, "property", "og:type"), Some("website"));
    assert_eq!(meta(&tags, "property", "og:url"), Some(page_url.as_str()));
    assert_eq!(
        meta(&tags, "name", "twitter:card"),
        Some("summary_large_image")
    );
    assert!(
        meta(&tags, "property", "og:image:alt")
            .unwrap()
            .contains(image["name"].as_str().unwrap())
    );
    // The largest ready size, absolute, with its own dimensions and type.
    let og_image = meta(&tags, "property", "og:image").unwrap();
    assert!(
        og_image.starts_with("http://127.0.0.1:") && og_image.contains("/img/monstrous"),
        "{og_image}"
    );
    let fetched = get(og_image, &[]);
    assert_eq!(fetched.status, 200);
    assert_eq!(
        fetched.header("Content-Type"),
        meta(&tags, "property", "og:image:type")
    );
    let decoded = image::load_from_memory(&fetched.body).unwrap();
    assert_eq!(
        meta(&tags, "property", "og:image:width"),
        Some(decoded.width().to_string().as_str())
    );
    assert_eq!(
        meta(&tags, "property", "og:image:height"),
        Some(decoded.height().to_string().as_str())
    );
    // The oEmbed link, followed.
    let oembed = tags
        .iter()
        .find(|t| {
            t.iter()
                .any(|(k, v)| k == "type" && v == "application/json+oembed")
        })
        .and_then(|t| t.iter().find(|(k, _)| k == "href"))
        .map(|(_, v)| v.clone())
        .expect("an oEmbed link");
    let answer = get(&oembed, &[]);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = answer.json();
    assert_eq!(answer["version"], "1.0");
    assert_eq!(answer["type"], "photo");
    assert_eq!(answer["title"], image["name"]);
    assert_eq!(answer["provider_name"], "Kitteh");
    assert_eq!(answer["provider_url"], server.url("/"));
    assert_eq!(
        (answer["width"].as_u64(), answer["height"].as_u64()),
        (Some(800), Some(600))
    );
    let photo = get(answer["url"].as_str().unwrap(), &[]);
    assert_eq!(photo.status, 200);
    // maxwidth picks a size that fits.
    let small = get(&format!("{oembed}&maxwidth=100"), &[]).json();
    assert_eq!(small["width"], 90);
    assert!(small["url"].as_str().unwrap().contains("/img/tiny"));
    assert_eq!(get(small["url"].as_str().unwrap(), &[]).status, 200);
    // Unknown, foreign and unsupported.
    for (query, status, code) in [
        (
            format!("url={}", urlencode(&server.url("/NoSuchThingKitty"))),
            404,
            "not_found",
        ),
        (
            format!(
                "url={}",
                urlencode(&page_url.replace("127.0.0.1", "evil.example"))
            ),
            404,
            "not_found",
        ),
        (
            format!("url={}", urlencode(&server.url("/img/x"))),
            404,
            "not_found",
        ),
        ("url=".to_string(), 400, "missing_url"),
        (
            format!("url={}&format=xml", urlencode(&page_url)),
            501,
            "format_not_supported",
        ),
    ] {
        let r = server.get(&format!("/oembed?{query}"), &[("Accept", "text/html")]);
        assert_eq!(r.status, status, "{query}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], code, "{query}");
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[test]
fn show_pages_unfurl_with_opengraph_and_oembed_that_lead_to_real_pictures() {
    each_database(unfurl);
}

#[test]
fn blurhashes_come_with_the_sizes_inline_or_from_the_job() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(&sb, &[]);
    let inline = server
        .upload("i.png", "image/png", &fixtures::png(300, 200))
        .json();
    let hash = inline["blurhash"]
        .as_str()
        .expect("a BlurHash with inline sizes");
    assert!(hash.len() >= 6);
    let page = get(
        inline["page_url"].as_str().unwrap(),
        &[("Accept", "text/html")],
    )
    .text();
    assert!(
        page.contains("class=\"placeholder\" src=\"data:image/png;base64,"),
        "the show page paints it"
    );
    drop(server);
    let server = Server::with_env(&sb, &[("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0")]);
    // Another picture: one of the same bytes would share the first one's.
    let queued = server
        .upload("j.png", "image/png", &fixtures::png(301, 200))
        .json();
    assert!(
        queued["blurhash"].is_null(),
        "no sizes yet, no BlurHash: {queued}"
    );
    let api = queued["api_url"].as_str().unwrap().to_string();
    wait_until("the job's BlurHash", || {
        get(&api, &[]).json()["blurhash"].is_string()
    });
}
