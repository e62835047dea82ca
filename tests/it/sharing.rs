//! Sharing: the uploader configs (ShareX, upload.sh) used for real, link
//! previews parsed and followed as an unfurler does, several files in one
//! request, "my uploads" of a key, and BlurHash placeholders.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::fixtures;
use crate::helpers::{Sandbox, Server, wait_until};
use crate::uploads::{Reply, api_upload, get, no_redirect_agent, reply};

fn server_with(sb: &Sandbox, env: &[(&str, &str)]) -> Server {
    let mut cmd = sb.kitteh();
    for (k, v) in env {
        cmd.env(k, v);
    }
    Server::start_with(cmd, &["--migrate"])
}

fn each_database(test: impl Fn(&Sandbox)) {
    test(&Sandbox::sqlite());
    if let Some(pg) = Sandbox::postgres() {
        test(&pg);
    }
}

fn new_key(sb: &Sandbox, name: &str) -> String {
    let out = sb.kitteh().args(["keys", "create", name]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Several parts in one multipart body: (field, file name, bytes).
fn multipart_many(parts: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("kittehtest{:016x}", rand::random::<u64>());
    let mut body = Vec::new();
    for (field, name, bytes) in parts {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                .as_bytes(),
        );
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Resolves a ShareX `{json:path}` template (`sizes[0].url`) in `answer`.
fn sharex_path<'v>(template: &str, answer: &'v Value) -> &'v Value {
    let path = template
        .strip_prefix("{json:")
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not a {{json:…}} template: {template}"));
    let mut at = answer;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (
                name,
                Some(rest.trim_end_matches(']').parse::<usize>().unwrap()),
            ),
            None => (part, None),
        };
        at = &at[name];
        if let Some(i) = index {
            at = &at[i];
        }
    }
    at
}

fn sharex(sb: &Sandbox) {
    let server = server_with(sb, &[]);
    let res = get(&server.url("/api/sharex.sxcu"), &[]);
    assert_eq!(res.status, 200);
    let disposition = res.header("Content-Disposition").unwrap();
    assert!(
        disposition.starts_with("attachment") && disposition.contains(".sxcu\""),
        "{disposition}"
    );
    assert_eq!(res.header("Cache-Control"), Some("private, no-store"));
    let config = res.json();
    assert_eq!(config["DestinationType"], "ImageUploader");
    assert_eq!(config["RequestMethod"], "POST");
    assert_eq!(config["Body"], "MultipartFormData");
    assert!(config["Version"].as_str().unwrap().split('.').count() == 3);
    assert!(
        config["Headers"].as_object().unwrap().is_empty(),
        "no key on an open instance"
    );
    let request_url = config["RequestURL"].as_str().unwrap();
    assert_eq!(request_url, server.url("/api/images"));
    // Upload exactly as ShareX would, then follow every response path.
    let field = config["FileFormName"].as_str().unwrap();
    let (ct, body) = fixtures::multipart(field, "shot.png", "image/png", &fixtures::png(400, 300));
    let answer = reply(
        no_redirect_agent()
            .post(request_url)
            .header("Content-Type", &ct)
            .send(&body[..]),
    );
    assert_eq!(answer.status, 201, "{}", answer.text());
    let answer = answer.json();
    let page = sharex_path(config["URL"].as_str().unwrap(), &answer)
        .as_str()
        .unwrap();
    let page_res = get(page, &[("Accept", "text/html")]);
    assert_eq!(page_res.status, 200);
    assert!(page_res.text().contains(answer["name"].as_str().unwrap()));
    let thumb = sharex_path(config["ThumbnailURL"].as_str().unwrap(), &answer)
        .as_str()
        .unwrap();
    let thumb_res = get(thumb, &[]);
    assert_eq!(thumb_res.status, 200);
    assert_eq!(thumb_res.header("Content-Type"), Some("image/png"));
    let deletion = sharex_path(config["DeletionURL"].as_str().unwrap(), &answer)
        .as_str()
        .unwrap();
    let confirm = get(deletion, &[("Accept", "text/html")]);
    assert_eq!(confirm.status, 200);
    assert!(confirm.text().contains("Delete it"));
    // Errors: the path names the message.
    let (ct, body) = fixtures::multipart(field, "notes.txt", "text/plain", b"not a picture");
    let refused = reply(
        no_redirect_agent()
            .post(request_url)
            .header("Content-Type", &ct)
            .send(&body[..]),
    );
    assert_eq!(refused.status, 415);
    let refused = refused.json();
    let message = sharex_path(config["ErrorMessage"].as_str().unwrap(), &refused);
    assert!(message.as_str().unwrap().contains("JPEG"), "{message}");
}

#[test]
fn the_sharex_uploader_uploads_and_every_path_it_reads_resolves() {
    each_database(sharex);
}

#[test]
fn on_a_keys_instance_the_uploader_configs_carry_the_callers_key() {
    let sb = Sandbox::sqlite();
    let server = server_with(&sb, &[("KITTEH_UPLOADS__ACCESS", "keys")]);
    let key = new_key(&sb, "sharex");
    let auth = format!("Bearer {key}");
    let config = get(&server.url("/api/sharex.sxcu"), &[("Authorization", &auth)]).json();
    assert_eq!(config["Headers"]["Authorization"], auth.as_str());
    let cookie = format!("kitteh_key={key}");
    let config = get(&server.url("/api/sharex.sxcu"), &[("Cookie", &cookie)]).json();
    assert_eq!(config["Headers"]["Authorization"], auth.as_str());
    // A wrong key is not copied into anything.
    let config = get(
        &server.url("/api/sharex.sxcu"),
        &[("Authorization", "Bearer kt_wrong")],
    )
    .json();
    assert!(config["Headers"].as_object().unwrap().is_empty());
    let (ct, body) = fixtures::multipart("file", "a.png", "image/png", &fixtures::png(30, 20));
    let mut req = no_redirect_agent()
        .post(config["RequestURL"].as_str().unwrap())
        .header("Content-Type", &ct);
    req = req.header("Authorization", &auth);
    assert_eq!(reply(req.send(&body[..])).status, 201);
    let script = get(&server.url("/api/upload.sh"), &[("Authorization", &auth)]).text();
    assert!(
        script.contains(&format!("key=${{KITTEH_KEY:-'{key}'}}")),
        "{script}"
    );
    let page = get(&server.url("/integrations"), &[("Accept", "text/html")]).text();
    assert!(page.contains("Sign in with yours"));
}

/// Runs the downloaded upload.sh with `args`, `stdin` and a clipboard.
fn run_script(
    script: &std::path::Path,
    dir: &std::path::Path,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> (i32, String, String) {
    run_script_with(script, dir, args, stdin, &[])
}

/// As `run_script`, with more of the environment set.
fn run_script_with(
    script: &std::path::Path,
    dir: &std::path::Path,
    args: &[&str],
    stdin: Option<&[u8]>,
    env: &[(&str, &str)],
) -> (i32, String, String) {
    use std::io::Write;
    // No clipboard tool can run here: a stand-in wl-copy records what it
    // is given, which is what the script hands any of them.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("wl-copy");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\ncat > '{}'\n", dir.join("clipboard").display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("sh")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .env("PATH", path)
        .env("WAYLAND_DISPLAY", "wayland-test")
        .env_remove("KITTEH_URL")
        .env_remove("KITTEH_KEY")
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn upload_sh_takes_another_server_and_key_from_the_environment() {
    let sb = Sandbox::sqlite();
    let open = server_with(&sb, &[]);
    let script_text = get(&open.url("/api/upload.sh"), &[]).body;
    let other = Sandbox::sqlite();
    let private = server_with(&other, &[("KITTEH_UPLOADS__ACCESS", "keys")]);
    let key = {
        let out = other
            .kitteh()
            .args(["keys", "create", "cli"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let dir = sb.path().join("elsewhere");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("upload.sh");
    std::fs::write(&script, &script_text).unwrap();
    std::fs::write(dir.join("a.png"), fixtures::png(42, 30)).unwrap();
    // The script was made by the open server; KITTEH_URL sends it to the
    // private one, which wants a key.
    let (code, out, err) = run_script_with(
        &script,
        &dir,
        &["a.png"],
        None,
        &[("KITTEH_URL", &private.base)],
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("a.png") && err.contains("upload key"), "{err}");
    let (code, out, err) = run_script_with(
        &script,
        &dir,
        &["a.png"],
        None,
        &[("KITTEH_URL", &private.base), ("KITTEH_KEY", &key)],
    );
    assert_eq!(code, 0, "{out}{err}");
    let page = out.trim();
    assert!(page.starts_with(&private.url("/")), "{page}");
    assert_eq!(get(page, &[("Accept", "text/html")]).status, 200);
    assert_eq!(
        crate::uploads::count_rows(&sb.database_url),
        0,
        "nothing went to the open one"
    );
    assert_eq!(crate::uploads::count_rows(&other.database_url), 1);
}

#[test]
fn upload_sh_uploads_files_and_stdin_prints_each_page_and_copies_the_last() {
    let sb = Sandbox::sqlite();
    let server = server_with(&sb, &[]);
    let res = get(&server.url("/api/upload.sh"), &[]);
    assert_eq!(res.status, 200);
    assert!(
        res.header("Content-Disposition")
            .unwrap()
            .contains("upload.sh")
    );
    let dir = sb.path().join("shell");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("upload.sh");
    std::fs::write(&script, &res.body).unwrap();
    // A POSIX shell reads it without complaint.
    assert!(
        Command::new("sh")
            .arg("-n")
            .arg(&script)
            .status()
            .unwrap()
            .success()
    );
    std::fs::write(dir.join("a.png"), fixtures::png(40, 30)).unwrap();
    // curl reads ; , and " in -F values: such names must still work.
    std::fs::write(dir.join("quo\"ted.png"), fixtures::png(41, 30)).unwrap();
    std::fs::write(dir.join("we;ird, name.jpg"), fixtures::jpeg(50, 40)).unwrap();
    let (code, out, err) = run_script(
        &script,
        &dir,
        &["a.png", "quo\"ted.png", "we;ird, name.jpg"],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    let pages: Vec<&str> = out.lines().collect();
    assert_eq!(pages.len(), 3, "{out}");
    for page in &pages {
        assert!(
            page.starts_with(&server.url("/")) && page.ends_with("Kitty"),
            "{page}"
        );
        assert_eq!(get(page, &[("Accept", "text/html")]).status, 200);
    }
    let clipboard = std::fs::read_to_string(dir.join("clipboard")).unwrap();
    assert_eq!(clipboard, pages[2], "the last page is copied");
    let api = get(
        &format!(
            "{}/api/images/{}",
            server.base,
            pages[2]
                .rsplit('/')
                .next()
                .unwrap()
                .trim_end_matches("Kitty")
                .to_ascii_lowercase()
        ),
        &[],
    )
    .json();
    assert_eq!(api["original_name"], "we;ird, name.jpg");
    // From stdin, as a screenshot tool pipes it.
    let (code, out, err) = run_script(&script, &dir, &[], Some(&fixtures::png(20, 20)));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1);
    assert_eq!(get(out.trim(), &[]).status, 200);
    // A file the server refuses: the message, exit 1; the good one still goes.
    std::fs::write(dir.join("notes.txt"), "not a picture").unwrap();
    let (code, out, err) = run_script(&script, &dir, &["notes.txt", "a.png", "missing.png"], None);
    assert_eq!(code, 1);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        err.contains("notes.txt: 415") && err.contains("JPEG"),
        "{err}"
    );
    assert!(err.contains("missing.png: not a readable file"), "{err}");
}

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
    let server = server_with(sb, &[]);
    let image = api_upload(&server, "view.png", "image/png", &fixtures::png(800, 600)).json();
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
        let r = get(
            &server.url(&format!("/oembed?{query}")),
            &[("Accept", "text/html")],
        );
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

fn many(sb: &Sandbox) {
    let server = server_with(sb, &[("KITTEH_UPLOADS__MAX_FILES_PER_REQUEST", "3")]);
    let png = fixtures::png(60, 40);
    let jpeg = fixtures::jpeg(50, 50);
    let (ct, body) = multipart_many(&[
        ("file", "a.png", &png),
        ("file", "b.txt", b"not a picture"),
        ("file", "c.jpg", &jpeg),
    ]);
    let r = reply(
        no_redirect_agent()
            .post(server.url("/api/images"))
            .header("Content-Type", &ct)
            .send(&body[..]),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    let images = v["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0]["index"], 0);
    assert_eq!(images[0]["original_name"], "a.png");
    assert_eq!(images[1]["index"], 2);
    assert!(images[1]["delete_token"].is_string());
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["index"], 1);
    assert_eq!(errors[0]["file_name"], "b.txt");
    assert_eq!(errors[0]["error"]["code"], "unsupported_format");
    for image in images {
        assert_eq!(get(image["image_url"].as_str().unwrap(), &[]).status, 200);
    }
    // All refused: the first error's status, the same shape.
    let (ct, body) = multipart_many(&[("file", "x.txt", b"nope"), ("file", "y.txt", b"nope")]);
    let r = reply(
        no_redirect_agent()
            .post(server.url("/api/images"))
            .header("Content-Type", &ct)
            .send(&body[..]),
    );
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["errors"].as_array().unwrap().len(), 2);
    // Past the limit on files: named, nothing stored.
    let before = crate::uploads::count_rows(&sb.database_url);
    let (ct, body) = multipart_many(&[
        ("file", "1.png", &png),
        ("file", "2.png", &png),
        ("file", "3.png", &png),
        ("file", "4.png", &png),
    ]);
    let r = reply(
        no_redirect_agent()
            .post(server.url("/api/images"))
            .header("Content-Type", &ct)
            .send(&body[..]),
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 3 files")
    );
    assert_eq!(crate::uploads::count_rows(&sb.database_url), before);
    // The form without JavaScript: a page with each one's links.
    let (ct, body) = multipart_many(&[
        ("image[file]", "p.png", &png),
        ("image[file]", "q.txt", b"nope"),
    ]);
    let r = reply(
        no_redirect_agent()
            .post(server.url("/upload"))
            .header("Content-Type", &ct)
            .header("Accept", "text/html")
            .send(&body[..]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let html = r.text();
    assert!(
        html.contains("Uploaded 1 of 2") && html.contains("delete link") && html.contains("q.txt"),
        "{html}"
    );
}

#[test]
fn several_files_in_one_request_answer_every_image_and_every_error() {
    each_database(many);
}

fn mine(sb: &Sandbox) {
    let server = server_with(sb, &[("KITTEH_UPLOADS__ACCESS", "keys")]);
    let alice = new_key(sb, "alice");
    let bob = new_key(sb, "bob");
    let upload_as = |key: &str, n: u32| -> Reply {
        let (ct, body) =
            fixtures::multipart("file", "m.png", "image/png", &fixtures::png(30 + n, 20));
        reply(
            no_redirect_agent()
                .post(server.url("/api/images"))
                .header("Content-Type", &ct)
                .header("Authorization", &format!("Bearer {key}"))
                .send(&body[..]),
        )
    };
    let a1 = upload_as(&alice, 1).json();
    let a2 = upload_as(&alice, 2).json();
    let b1 = upload_as(&bob, 3).json();
    let jar = format!("kitteh_key={alice}");
    let page = get(
        &server.url("/mine"),
        &[("Accept", "text/html"), ("Cookie", &jar)],
    );
    assert_eq!(page.status, 200);
    let html = page.text();
    for token in [&a1["token"], &a2["token"]] {
        assert!(html.contains(&format!("data-token=\"{}\"", token.as_str().unwrap())));
    }
    assert!(
        !html.contains(b1["token"].as_str().unwrap()),
        "only the key's own"
    );
    assert!(
        html.find(a2["token"].as_str().unwrap()) < html.find(a1["token"].as_str().unwrap()),
        "newest first"
    );
    assert!(
        html.contains("class=\"thumb placeholder\" src=\"data:image/png;base64,"),
        "BlurHash placeholders"
    );
    let check = html
        .split("name=\"check\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let post = |token: &str, check: &str| {
        reply(
            no_redirect_agent()
                .post(server.url("/mine/delete"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .header("Cookie", &jar)
                .header("Accept", "text/html")
                .send(format!("check={check}&token={token}").as_bytes()),
        )
    };
    assert_eq!(
        post(b1["token"].as_str().unwrap(), &check).status,
        404,
        "not alice's"
    );
    assert_eq!(post(a1["token"].as_str().unwrap(), "forged").status, 403);
    let done = post(a1["token"].as_str().unwrap(), &check);
    assert_eq!(done.status, 303);
    wait_until("the deletion to be seen", || {
        get(a1["image_url"].as_str().unwrap(), &[]).status == 404
    });
    assert_eq!(get(b1["image_url"].as_str().unwrap(), &[]).status, 200);
    // Without a key: the page for this browser's own list.
    let page = get(&server.url("/mine"), &[("Accept", "text/html")]).text();
    assert!(page.contains("data-source=\"browser\""));
}

#[test]
fn my_uploads_of_a_key_come_from_the_server_and_only_its_own_can_be_deleted() {
    each_database(mine);
}

#[test]
fn blurhashes_come_with_the_sizes_inline_or_from_the_job() {
    let sb = Sandbox::sqlite();
    let server = server_with(&sb, &[]);
    let inline = api_upload(&server, "i.png", "image/png", &fixtures::png(300, 200)).json();
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
    let server = server_with(&sb, &[("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0")]);
    // Another picture: one of the same bytes would share the first one's.
    let queued = api_upload(&server, "j.png", "image/png", &fixtures::png(301, 200)).json();
    assert!(
        queued["blurhash"].is_null(),
        "no sizes yet, no BlurHash: {queued}"
    );
    let api = queued["api_url"].as_str().unwrap().to_string();
    wait_until("the job's BlurHash", || {
        get(&api, &[]).json()["blurhash"].is_string()
    });
}
