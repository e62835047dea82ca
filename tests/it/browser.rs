//! The upload page in a real browser: Debian's headless Chromium, driven
//! over WebDriver by chromedriver, against a real `kitteh serve`. The
//! WebDriver calls are plain JSON over HTTP, so a few helpers below speak
//! it directly. Screenshots land in target/e2e/.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fixtures;
use crate::helpers::{Sandbox, Server, free_port, http};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Chromium and chromedriver, or None outside CI when they are missing.
fn browser_available() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        if crate::helpers::in_ci() {
            panic!("CI is set but chromium/chromedriver are missing: .ci/run must install them");
        }
        eprintln!(
            "chromium or chromedriver missing: skipping a browser test (apt-get install chromium chromium-driver)"
        );
    }
    present
}

struct Driver {
    child: Child,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = http()
            .delete(format!("{}/session/{}", self.base, self.session))
            .call();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> Self {
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while http().get(format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:loggingPrefs": { "browser": "ALL" },
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--no-first-run", "--window-size=1280,1000",
                        format!("--user-data-dir={}", profile.path().display()),
                    ]
                }
            }}
        });
        let v = post_json(&format!("{base}/session"), &caps);
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        Self {
            child,
            base,
            session,
            _profile: profile,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    fn cmd(&self, path: &str, body: Value) -> Value {
        let v = post_json(&self.url(path), &body);
        assert!(v["value"].get("error").is_none(), "{path}: {v}");
        v["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.cmd("/url", json!({ "url": url }));
    }

    fn script(&self, source: &str, args: Value) -> Value {
        self.cmd("/execute/sync", json!({ "script": source, "args": args }))
    }

    fn async_script(&self, source: &str, args: Value) -> Value {
        self.cmd("/execute/async", json!({ "script": source, "args": args }))
    }

    fn find(&self, css: &str) -> String {
        let v = self.cmd("/element", json!({ "using": "css selector", "value": css }));
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    fn wait_for(&self, what: &str, js_condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.script(&format!("return !!({js_condition});"), json!([])) == json!(true) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn screenshot(&self, name: &str) -> PathBuf {
        let v = http()
            .get(self.url("/screenshot"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let v: Value = serde_json::from_str(&v).unwrap();
        let png = base64_decode(v["value"].as_str().unwrap());
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Browser console entries at SEVERE level (errors, CSP violations).
    /// A driver that cannot hand over its log fails the test: an empty
    /// list must mean "no errors", never "could not look".
    fn severe_logs(&self) -> Vec<String> {
        let v = post_json(&self.url("/se/log"), &json!({ "type": "browser" }));
        let entries = v["value"]
            .as_array()
            .unwrap_or_else(|| panic!("the driver's log endpoint answered {v}"));
        entries
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn post_json(url: &str, body: &Value) -> Value {
    let mut res = http()
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string().as_bytes())
        .unwrap();
    serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap()
}

/// Standard base64, for the screenshots WebDriver returns.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Pastes a PDF into the upload page, which the server refuses; waits
/// until the page shows the error.
fn paste_a_pdf_and_wait_for_the_error(driver: &Driver) {
    driver.async_script(
        "const [done] = arguments;
         const file = new File(['%PDF-1.7 not a picture'], 'doc.pdf', { type: 'application/pdf' });
         const dt = new DataTransfer();
         dt.items.add(file);
         document.dispatchEvent(new ClipboardEvent('paste', { bubbles: true, cancelable: true, clipboardData: dt }));
         done(true);",
        json!([]),
    );
    driver.wait_for(
        "the error message",
        "document.getElementById('status').classList.contains('error')",
    );
}

#[test]
fn the_upload_page_works_in_a_real_browser() {
    if !browser_available() {
        return;
    }
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let photo = sb.path().join("holiday.jpg");
    std::fs::write(&photo, fixtures::jpeg(900, 600)).unwrap();
    let driver = Driver::start();

    // Upload through the file input.
    driver.goto(&server.url("/"));
    driver.wait_for("the upload form", "document.getElementById('upload-form')");
    driver.screenshot("01-upload-page");
    let input = driver.find("input[type=file]");
    driver.cmd(
        &format!("/element/{input}/value"),
        json!({ "text": photo.display().to_string() }),
    );
    driver.wait_for(
        "the result",
        "!document.getElementById('result').hidden && document.getElementById('result-image')",
    );
    driver.wait_for(
        "the image to load",
        "document.getElementById('result-image').complete",
    );
    assert_eq!(
        driver.script(
            "return document.getElementById('progress').value;",
            json!([])
        ),
        json!(1),
        "the progress bar ran to the end"
    );
    let natural = driver.script(
        "return document.getElementById('result-image').naturalWidth;",
        json!([]),
    );
    assert!(
        natural.as_u64().unwrap() > 0,
        "image did not load: {natural}"
    );
    let delete_link = driver.script(
        "return document.getElementById('delete-link').href;",
        json!([]),
    );
    assert!(delete_link.as_str().unwrap().contains("/delete?token="));
    driver.screenshot("02-uploaded");

    // Follow a size link (the original stands in until the size is made).
    let href = driver.script(
        "return document.querySelector('a.size-link').href;",
        json!([]),
    );
    assert!(href.as_str().unwrap().contains("/Tiny"), "{href}");
    driver.goto(href.as_str().unwrap());
    driver.wait_for(
        "the size page",
        "document.querySelector('figure img') && document.querySelector('figure img').complete",
    );
    let width = driver.script(
        "return document.querySelector('figure img').naturalWidth;",
        json!([]),
    );
    assert!(width.as_u64().unwrap() > 0);
    driver.screenshot("02b-size-page");

    // Upload by drag and drop (dispatched events with a real File).
    driver.goto(&server.url("/"));
    driver.wait_for("the upload form", "document.getElementById('upload-form')");
    let png = fixtures::png(64, 40);
    driver.async_script(
        "const [bytes, done] = arguments;
         const file = new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' });
         const dt = new DataTransfer();
         dt.items.add(file);
         for (const type of ['dragenter', 'dragover', 'drop']) {
           document.body.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
         }
         done(true);",
        json!([png]),
    );
    driver.wait_for(
        "the dropped image",
        "document.getElementById('result-image') && document.getElementById('result-image').complete && document.getElementById('result-image').naturalWidth === 64",
    );
    driver.screenshot("03-dropped");

    // Upload by paste.
    driver.goto(&server.url("/"));
    driver.wait_for("the upload form", "document.getElementById('upload-form')");
    let gif = fixtures::gif(30, 20);
    driver.async_script(
        "const [bytes, done] = arguments;
         const file = new File([new Uint8Array(bytes)], 'pasted.gif', { type: 'image/gif' });
         const dt = new DataTransfer();
         dt.items.add(file);
         document.dispatchEvent(new ClipboardEvent('paste', { bubbles: true, cancelable: true, clipboardData: dt }));
         done(true);",
        json!([gif]),
    );
    driver.wait_for(
        "the pasted image",
        "document.getElementById('result-image') && document.getElementById('result-image').complete && document.getElementById('result-image').naturalWidth === 30",
    );

    // An error from the server appears in words next to the form.
    driver.goto(&server.url("/"));
    driver.wait_for("the upload form", "document.getElementById('upload-form')");
    paste_a_pdf_and_wait_for_the_error(&driver);
    let message = driver.script(
        "return document.getElementById('status').textContent;",
        json!([]),
    );
    assert!(message.as_str().unwrap().contains("PDF"), "{message}");
    driver.screenshot("04-error");

    // The show page, with its copy buttons.
    let created =
        crate::uploads::api_upload(&server, "x.png", "image/png", &fixtures::png(500, 300)).json();
    driver.goto(created["page_url"].as_str().unwrap());
    driver.wait_for(
        "the show page image",
        "document.images.length > 1 && document.querySelector('figure img').complete",
    );
    let copies = driver.script(
        "return document.querySelectorAll('[data-copy]').length;",
        json!([]),
    );
    assert_eq!(copies, json!(5), "page, image, Markdown, HTML and BBCode");
    driver.screenshot("05-show-page");
    // The same page on a phone-sized window: nothing overflows sideways.
    driver.cmd("/window/rect", json!({ "width": 390, "height": 844 }));
    let overflow = driver.script(
        "return document.documentElement.scrollWidth <= window.innerWidth;",
        json!([]),
    );
    assert_eq!(
        overflow,
        json!(true),
        "the page scrolls sideways on a phone"
    );
    driver.screenshot("06-show-page-phone");
    driver.goto(&server.url("/"));
    driver.wait_for("the upload form", "document.getElementById('upload-form')");
    driver.screenshot("07-upload-page-phone");

    // The refused PDF is the one error the console should hold; seeing it
    // proves the log is really collected, so its silence elsewhere counts.
    let severe = driver.severe_logs();
    assert!(
        severe
            .iter()
            .any(|m| m.contains("/api/images") && m.contains("415")),
        "the refused upload is missing from the console log: {severe:?}"
    );
    assert!(
        severe
            .iter()
            .all(|m| m.contains("/api/images") && m.contains("415")),
        "console errors or CSP violations: {severe:?}"
    );
}

/// Checks the title of the current page: with its font made as large as
/// its longest word allows (so the name is far too wide for one line), it
/// wraps only between its words, and nothing scrolls sideways.
fn assert_title_wraps_between_words(driver: &Driver, label: &str) {
    assert_wraps_between_words(driver, "h1", label);
}

/// As above, for the element `selector` picks; text between spaces may
/// wrap at its spaces, so only the name's words (no space in them) are
/// held to staying whole.
fn assert_wraps_between_words(driver: &Driver, selector: &str, label: &str) {
    let facts = driver.script(
        "const h1 = document.querySelector(arguments[0]);
         const words = Array.from(h1.childNodes).filter(n => n.nodeType === Node.TEXT_NODE && n.textContent.trim() && !/\\s/.test(n.textContent.trim()));
         const widest = () => Math.max(...words.map(n => {
           const r = document.createRange();
           r.selectNodeContents(n);
           return r.getBoundingClientRect().width;
         }));
         for (const size of [72, 64, 56, 48, 40, 34, 28]) {
           h1.style.fontSize = size + 'px';
           h1.style.whiteSpace = 'nowrap';
           const fits = widest() < h1.clientWidth;
           h1.style.whiteSpace = '';
           if (fits) break;
         }
         const split = words.filter(n => {
           const r = document.createRange();
           r.selectNodeContents(n);
           return r.getClientRects().length !== 1;
         }).map(n => n.textContent);
         const tops = new Set(words.map(n => {
           const r = document.createRange();
           r.selectNodeContents(n);
           return Math.round(r.getClientRects()[0].top);
         }));
         const result = { words: words.length, split, lines: tops.size,
                          overflow: document.documentElement.scrollWidth > window.innerWidth };
         h1.style.fontSize = '';
         return result;",
        json!([selector]),
    );
    assert!(facts["words"].as_u64().unwrap() >= 4, "{label}: {facts}");
    assert_eq!(
        facts["split"],
        json!([]),
        "{label}: a word was split: {facts}"
    );
    assert!(
        facts["lines"].as_u64().unwrap() > 1,
        "{label}: did not wrap: {facts}"
    );
    assert_eq!(facts["overflow"], json!(false), "{label}: {facts}");
}

#[test]
fn pages_wrap_names_mark_errors_and_show_thumbnails_on_phones_and_desktops() {
    if !browser_available() {
        return;
    }
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let created = crate::uploads::api_upload(
        &server,
        "my holiday.jpg",
        "image/jpeg",
        &fixtures::jpeg(1200, 800),
    )
    .json();
    let page_url = created["page_url"].as_str().unwrap().to_string();
    let tiny = &created["sizes"][0];
    assert_eq!(tiny["state"], "ready", "{created}");
    let driver = Driver::start();

    for (width, height, device) in [(390, 844, "phone"), (1280, 900, "desktop")] {
        driver.cmd("/window/rect", json!({ "width": width, "height": height }));

        // The show page: the title wraps between words, the uploader's
        // file name is given, every size has a loaded thumbnail, and
        // there is a way to upload another.
        driver.goto(&page_url);
        driver.wait_for(
            "the show page",
            "Array.from(document.images).every(i => i.complete)",
        );
        assert_title_wraps_between_words(&driver, &format!("show page, {device}"));
        let show = driver.script(
            "const thumbs = Array.from(document.querySelectorAll('img.thumb'));
             return {
               thumbs: thumbs.length,
               loaded: thumbs.filter(i => i.complete && i.naturalWidth > 0).length,
               shown: thumbs.every(i => i.getBoundingClientRect().width === 48),
               original: document.querySelector('.original-name').textContent,
               another: !!Array.from(document.querySelectorAll('a')).find(a => a.textContent === 'Upload another'),
             };",
            json!([]),
        );
        assert_eq!(show["thumbs"], json!(4), "{device}: {show}");
        assert_eq!(show["loaded"], json!(4), "{device}: {show}");
        assert_eq!(show["shown"], json!(true), "{device}: {show}");
        assert_eq!(
            show["original"],
            json!("my holiday.jpg"),
            "{device}: {show}"
        );
        assert_eq!(show["another"], json!(true), "{device}: {show}");
        driver.screenshot(&format!("10-show-page-{device}"));

        // A size's page gives its own dimensions and bytes.
        driver.goto(tiny["page_url"].as_str().unwrap());
        driver.wait_for("the size page", "document.querySelector('#dimensions')");
        let facts = driver.script(
            "return [document.querySelector('#dimensions').textContent, document.querySelector('#bytes').textContent];",
            json!([]),
        );
        assert_eq!(
            facts[0],
            json!(format!("{}×{} pixels", tiny["width"], tiny["height"])),
            "{device}: {facts}"
        );
        let kib = format!("{:.1} KiB", tiny["bytes"].as_f64().unwrap() / 1024.0);
        assert_eq!(facts[1], json!(kib), "{device}: {facts}");
        assert_title_wraps_between_words(&driver, &format!("size page, {device}"));
        driver.screenshot(&format!("11-size-page-{device}"));

        // The delete confirmation shows a preview, and its two actions sit
        // well apart.
        driver.goto(created["delete_url"].as_str().unwrap());
        driver.wait_for(
            "the delete page",
            "document.querySelector('figure.preview img') && document.querySelector('figure.preview img').complete",
        );
        let delete = driver.script(
            "const keep = document.querySelector('.delete-actions a').getBoundingClientRect();
             const del = document.querySelector('.delete-actions button').getBoundingClientRect();
             const apart = Math.max(del.left - keep.right, keep.left - del.right, del.top - keep.bottom, keep.top - del.bottom);
             return { preview: document.querySelector('figure.preview img').naturalWidth, apart,
                      danger: getComputedStyle(document.querySelector('.delete-actions button')).backgroundColor };",
            json!([]),
        );
        assert!(
            delete["preview"].as_u64().unwrap() > 0,
            "{device}: {delete}"
        );
        assert!(
            delete["apart"].as_f64().unwrap() >= 16.0,
            "{device}: {delete}"
        );
        assert_title_wraps_between_words(&driver, &format!("delete page, {device}"));
        driver.screenshot(&format!("12-delete-page-{device}"));

        // An error page looks like one and is announced, and a long name
        // in its message does not push the page sideways.
        driver
            .goto(&server.url(
                "/SwimminglySpiffingNectarCelticShorthairKittyThatNobodyEverUploadedAnywhere",
            ));
        driver.wait_for("the error page", "document.querySelector('.error-box')");
        let error = driver.script(
            "const box = document.querySelector('.error-box');
             const style = getComputedStyle(box);
             return { role: box.getAttribute('role'), left: style.borderLeftWidth, colour: style.borderLeftColor,
                      icon: !!box.querySelector('.error-icon') };",
            json!([]),
        );
        assert_eq!(error["role"], json!("alert"), "{device}: {error}");
        assert_eq!(error["left"], json!("5px"), "{device}: {error}");
        assert_eq!(error["icon"], json!(true), "{device}: {error}");
        assert_ne!(
            error["colour"],
            json!("rgba(0, 0, 0, 0)"),
            "{device}: {error}"
        );
        let fits = driver.script(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            json!([]),
        );
        assert_eq!(
            fits,
            json!(true),
            "{device}: the error page scrolls sideways"
        );
        assert_wraps_between_words(&driver, ".error-box p", &format!("error page, {device}"));
        driver.screenshot(&format!("13-error-page-{device}"));

        // A refused upload on the upload page: marked and announced too;
        // the page names the formats, the limit and what is removed.
        driver.goto(&server.url("/"));
        driver.wait_for("the upload form", "document.getElementById('upload-form')");
        let promise = driver.script(
            "return document.getElementById('promise').textContent;",
            json!([]),
        );
        let promise = promise.as_str().unwrap();
        assert!(
            promise.contains("JPEG, PNG, GIF or WebP")
                && promise.contains("25 MiB")
                && promise.contains("Location"),
            "{promise}"
        );
        paste_a_pdf_and_wait_for_the_error(&driver);
        let status = driver.script(
            "const s = document.getElementById('status');
             return { role: s.getAttribute('role'), border: getComputedStyle(s).borderTopStyle };",
            json!([]),
        );
        assert_eq!(
            status,
            json!({ "role": "alert", "border": "solid" }),
            "{device}"
        );
        driver.screenshot(&format!("14-upload-error-{device}"));
    }

    // After an upload, focus moves to the result's title without a ring
    // drawn around it.
    let photo = sb.path().join("focus.png");
    std::fs::write(&photo, fixtures::png(300, 200)).unwrap();
    driver.goto(&server.url("/"));
    driver.wait_for("the upload form", "document.getElementById('upload-form')");
    let input = driver.find("input[type=file]");
    driver.cmd(
        &format!("/element/{input}/value"),
        json!({ "text": photo.display().to_string() }),
    );
    driver.wait_for("the result", "!document.getElementById('result').hidden");
    let focus = driver.script(
        "const a = document.activeElement;
         return { title: a.classList.contains('result-title'), outline: getComputedStyle(a).outlineStyle };",
        json!([]),
    );
    assert_eq!(focus, json!({ "title": true, "outline": "none" }));
    driver.screenshot("15-after-upload-focus");
}

#[test]
fn the_moderation_page_signs_in_shows_a_report_and_deletes_and_blocks_it() {
    if !browser_available() {
        return;
    }
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let bytes = fixtures::png(400, 300);
    let image = crate::uploads::api_upload(&server, "bad.png", "image/png", &bytes).json();
    let name = image["name"].as_str().unwrap().to_string();
    let token = image["token"].as_str().unwrap().to_string();
    let reported = http()
        .post(server.url(&format!("/{name}/report")))
        .header("Content-Type", "application/json")
        .send(r#"{"reason":"illegal","details":"reported from the test"}"#.as_bytes())
        .unwrap();
    assert_eq!(reported.status().as_u16(), 201);
    let out = sb
        .kitteh()
        .args(["keys", "create", "moderator", "--admin"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let driver = Driver::start();

    // Sign in once, as on the upload page.
    driver.goto(&server.url("/admin"));
    driver.wait_for("the sign-in form", "document.getElementById('key-form')");
    // The sign-in page comes with a 401, which the browser logs; nothing else.
    let severe = driver.severe_logs();
    assert!(
        severe
            .iter()
            .all(|l| l.contains("/admin") && l.contains("401")),
        "{severe:?}"
    );
    let field = driver.find("#key");
    driver.cmd(&format!("/element/{field}/value"), json!({ "text": key }));
    let submit = driver.find("#key-form button[type=submit]");
    driver.cmd(&format!("/element/{submit}/click"), json!({}));
    let card = format!("#reports li[data-token='{token}']");
    driver.wait_for("the report", &format!("document.querySelector(\"{card}\")"));
    driver.wait_for(
        "its thumbnail",
        &format!("document.querySelector(\"{card} img\").complete && document.querySelector(\"{card} img\").naturalWidth > 0"),
    );
    let text = driver.script(
        &format!("return document.querySelector(\"{card}\").innerText;"),
        json!([]),
    );
    assert!(
        text.as_str().unwrap().contains("reported from the test"),
        "{text}"
    );
    driver.screenshot("20-moderation-page");

    // Delete and block it.
    let block = driver.find(&format!("{card} button[data-action=block]"));
    driver.cmd(&format!("/element/{block}/click"), json!({}));
    driver.wait_for(
        "the report to be handled",
        "document.getElementById('no-reports')",
    );
    driver.screenshot("21-moderation-page-after-block");
    let severe = driver.severe_logs();
    assert!(severe.is_empty(), "{severe:?}");
    let gone = http()
        .get(server.url(&format!("/img/{token}")))
        .call()
        .unwrap();
    assert_eq!(gone.status().as_u16(), 451);
    let again = crate::uploads::api_upload(&server, "again.png", "image/png", &bytes);
    assert_eq!(again.status, 451);
    assert_eq!(again.json()["error"]["code"], "blocked");
}

#[test]
fn several_files_upload_in_parallel_and_my_uploads_lists_and_deletes_them() {
    if !browser_available() {
        return;
    }
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let files: Vec<String> = (0..4)
        .map(|i| {
            let path = sb.path().join(format!("pic{i}.png"));
            std::fs::write(&path, fixtures::png(200 + i * 10, 150)).unwrap();
            path.display().to_string()
        })
        .collect();
    let bad = sb.path().join("notes.png");
    std::fs::write(&bad, b"not a picture at all").unwrap();
    let driver = Driver::start();
    driver.goto(&server.url("/"));
    driver.wait_for("the upload form", "document.getElementById('upload-form')");
    let input = driver.find("input[type=file]");
    let mut all = files.clone();
    all.push(bad.display().to_string());
    driver.cmd(
        &format!("/element/{input}/value"),
        json!({ "text": all.join("\n") }),
    );
    driver.wait_for(
        "every file to finish",
        "document.querySelectorAll('#queue li.done, #queue li.failed').length === 5",
    );
    driver.screenshot("30-several-files");
    assert_eq!(
        driver.script(
            "return document.querySelectorAll('#queue li.done a.page-link').length;",
            json!([])
        ),
        json!(4)
    );
    let failed = driver.script(
        "return document.querySelector('#queue li.failed .state').textContent;",
        json!([]),
    );
    assert!(failed.as_str().unwrap().contains("JPEG"), "{failed}");
    assert!(
        driver
            .script(
                "return document.getElementById('status').textContent;",
                json!([])
            )
            .as_str()
            .unwrap()
            .contains("4 of 5")
    );

    // My uploads: this browser's list, newest first, with placeholders.
    driver.goto(&server.url("/mine"));
    driver.wait_for(
        "the list",
        "document.querySelectorAll('#mine li').length === 4",
    );
    driver.wait_for(
        "the thumbnails",
        "Array.from(document.querySelectorAll('#mine .thumb-frame')).every(f => f.classList.contains('loaded'))",
    );
    let placeholders = driver.script(
        "return Array.from(document.querySelectorAll('#mine img.placeholder')).map(i => i.src.startsWith('data:image/png')).filter(Boolean).length;",
        json!([]),
    );
    assert_eq!(placeholders, json!(4), "a BlurHash painted for each");
    driver.screenshot("31-my-uploads");
    let first = driver
        .script(
            "return document.querySelector('#mine li').dataset.token;",
            json!([]),
        )
        .as_str()
        .unwrap()
        .to_string();
    let delete = driver.find("#mine li button[data-action=delete]");
    driver.cmd(&format!("/element/{delete}/click"), json!({}));
    driver.wait_for(
        "the row to go",
        "document.querySelectorAll('#mine li').length === 3",
    );
    let gone = http()
        .get(server.url(&format!("/img/{first}")))
        .call()
        .unwrap();
    assert_eq!(gone.status().as_u16(), 404);
    let forget = driver.find("#forget-list");
    driver.cmd(&format!("/element/{forget}/click"), json!({}));
    driver.wait_for(
        "the list to be forgotten",
        "!document.getElementById('mine-empty').hidden",
    );
    let severe = driver.severe_logs();
    assert!(
        severe
            .iter()
            .all(|l| l.contains("/api/images") && (l.contains("415") || l.contains("Unsupported"))),
        "{severe:?}"
    );
}
