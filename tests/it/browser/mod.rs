//! The upload page in a real browser: Debian's headless Chromium, driven
//! over WebDriver by chromedriver (`driver`), against a real `kitteh
//! serve`: uploads by file input, drag and drop and paste, the moderation
//! page, several files and "my uploads". Layout checks are in `layout`.

mod driver;
mod layout;

use serde_json::json;

use driver::{Driver, browser_available, paste_a_pdf_and_wait_for_the_error};

use crate::fixtures;
use crate::helpers::{Sandbox, Server};

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
    let created = server
        .upload("x.png", "image/png", &fixtures::png(500, 300))
        .json();
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

#[test]
fn the_moderation_page_signs_in_shows_a_report_and_deletes_and_blocks_it() {
    if !browser_available() {
        return;
    }
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    let bytes = fixtures::png(400, 300);
    let image = server.upload("bad.png", "image/png", &bytes).json();
    let name = image["name"].as_str().unwrap().to_string();
    let token = image["token"].as_str().unwrap().to_string();
    let reported = server.post(
        &format!("/{name}/report"),
        br#"{"reason":"illegal","details":"reported from the test"}"#,
        &[("Content-Type", "application/json")],
    );
    assert_eq!(reported.status, 201);
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
    let gone = server.get(&format!("/img/{token}"), &[]);
    assert_eq!(gone.status, 451);
    let again = server.upload("again.png", "image/png", &bytes);
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
    let gone = server.get(&format!("/img/{first}"), &[]);
    assert_eq!(gone.status, 404);
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
