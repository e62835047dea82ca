//! Sharing: the uploader configs (ShareX, upload.sh) used for real,
//! several files in one request, and "my uploads" of a key.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::fixtures;
use crate::helpers::{
    Reply, Sandbox, Server, bearer, each_database, get, multipart, multipart_parts, post,
    wait_until,
};

fn new_key(sb: &Sandbox, name: &str) -> String {
    let out = sb.kitteh().args(["keys", "create", name]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
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
    let server = Server::with_env(sb, &[]);
    let res = server.get("/api/sharex.sxcu", &[]);
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
    let (ct, body) = multipart(field, "shot.png", "image/png", &fixtures::png(400, 300));
    let answer = post(request_url, &body, &[("Content-Type", &ct)]);
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
    let (ct, body) = multipart(field, "notes.txt", "text/plain", b"not a picture");
    let refused = post(request_url, &body, &[("Content-Type", &ct)]);
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
    let server = Server::with_env(&sb, &[("KITTEH_UPLOADS__ACCESS", "keys")]);
    let key = new_key(&sb, "sharex");
    let auth = bearer(&key);
    let config = server
        .get("/api/sharex.sxcu", &[("Authorization", &auth)])
        .json();
    assert_eq!(config["Headers"]["Authorization"], auth.as_str());
    let cookie = format!("kitteh_key={key}");
    let config = server
        .get("/api/sharex.sxcu", &[("Cookie", &cookie)])
        .json();
    assert_eq!(config["Headers"]["Authorization"], auth.as_str());
    // A wrong key is not copied into anything.
    let config = server
        .get("/api/sharex.sxcu", &[("Authorization", "Bearer kt_wrong")])
        .json();
    assert!(config["Headers"].as_object().unwrap().is_empty());
    let (ct, body) = multipart("file", "a.png", "image/png", &fixtures::png(30, 20));
    let with_key = post(
        config["RequestURL"].as_str().unwrap(),
        &body,
        &[("Content-Type", &ct), ("Authorization", &auth)],
    );
    assert_eq!(with_key.status, 201);
    let script = server
        .get("/api/upload.sh", &[("Authorization", &auth)])
        .text();
    assert!(
        script.contains(&format!("key=${{KITTEH_KEY:-'{key}'}}")),
        "{script}"
    );
    let page = server
        .get("/integrations", &[("Accept", "text/html")])
        .text();
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
    let open = Server::with_env(&sb, &[]);
    let script_text = open.get("/api/upload.sh", &[]).body;
    let other = Sandbox::sqlite();
    let private = Server::with_env(&other, &[("KITTEH_UPLOADS__ACCESS", "keys")]);
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
    assert_eq!(sb.count_rows(), 0, "nothing went to the open one");
    assert_eq!(other.count_rows(), 1);
}

#[test]
fn upload_sh_uploads_files_and_stdin_prints_each_page_and_copies_the_last() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(&sb, &[]);
    let res = server.get("/api/upload.sh", &[]);
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

fn many(sb: &Sandbox) {
    let server = Server::with_env(sb, &[("KITTEH_UPLOADS__MAX_FILES_PER_REQUEST", "3")]);
    let png = fixtures::png(60, 40);
    let jpeg = fixtures::jpeg(50, 50);
    let r = server.upload_files(&[
        ("a.png", &png),
        ("b.txt", b"not a picture"),
        ("c.jpg", &jpeg),
    ]);
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
    let r = server.upload_files(&[("x.txt", b"nope"), ("y.txt", b"nope")]);
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["errors"].as_array().unwrap().len(), 2);
    // Past the limit on files: named, nothing stored.
    let before = sb.count_rows();
    let r = server.upload_files(&[
        ("1.png", &png),
        ("2.png", &png),
        ("3.png", &png),
        ("4.png", &png),
    ]);
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("more than 3 files")
    );
    assert_eq!(sb.count_rows(), before);
    // The form without JavaScript: a page with each one's links.
    let (ct, body) = multipart_parts(
        &[],
        &[
            ("image[file]", "p.png", "application/octet-stream", &png),
            ("image[file]", "q.txt", "application/octet-stream", b"nope"),
        ],
    );
    let r = server.post(
        "/upload",
        &body,
        &[("Content-Type", &ct), ("Accept", "text/html")],
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
    let server = Server::with_env(sb, &[("KITTEH_UPLOADS__ACCESS", "keys")]);
    let alice = new_key(sb, "alice");
    let bob = new_key(sb, "bob");
    let upload_as = |key: &str, n: u32| -> Reply {
        server.upload_with(
            &fixtures::png(30 + n, 20),
            &[],
            &[("Authorization", &bearer(key))],
        )
    };
    let a1 = upload_as(&alice, 1).json();
    let a2 = upload_as(&alice, 2).json();
    let b1 = upload_as(&bob, 3).json();
    let jar = format!("kitteh_key={alice}");
    let page = server.get("/mine", &[("Accept", "text/html"), ("Cookie", &jar)]);
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
        server.post_form(
            "/mine/delete",
            &format!("check={check}&token={token}"),
            &[("Cookie", &jar), ("Accept", "text/html")],
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
    let page = server.get("/mine", &[("Accept", "text/html")]).text();
    assert!(page.contains("data-source=\"browser\""));
}

#[test]
fn my_uploads_of_a_key_come_from_the_server_and_only_its_own_can_be_deleted() {
    each_database(mine);
}
