//! Layout in a real browser on a phone and a desktop window: names that
//! wrap between their words, error pages that look like errors, size pages
//! with their facts, delete pages with their actions apart, and focus after
//! an upload.

use serde_json::json;

use super::driver::{Driver, browser_available, paste_a_pdf_and_wait_for_the_error};
use crate::fixtures;
use crate::helpers::{Sandbox, Server};

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
    let created = server
        .upload("my holiday.jpg", "image/jpeg", &fixtures::jpeg(1200, 800))
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
