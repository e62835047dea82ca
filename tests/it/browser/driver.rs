//! Chromium over WebDriver: the plain JSON-over-HTTP calls the browser
//! tests need, spoken directly to chromedriver. Screenshots land in
//! target/e2e/.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{free_port, get, http, in_ci, post};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Chromium and chromedriver, or None outside CI when they are missing.
pub(super) fn browser_available() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        if in_ci() {
            panic!("CI is set but chromium/chromedriver are missing: .ci/run must install them");
        }
        eprintln!(
            "chromium or chromedriver missing: skipping a browser test (apt-get install chromium chromium-driver)"
        );
    }
    present
}

pub(super) struct Driver {
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
    pub(super) fn start() -> Self {
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

    pub(super) fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    pub(super) fn cmd(&self, path: &str, body: Value) -> Value {
        let v = post_json(&self.url(path), &body);
        assert!(v["value"].get("error").is_none(), "{path}: {v}");
        v["value"].clone()
    }

    pub(super) fn goto(&self, url: &str) {
        self.cmd("/url", json!({ "url": url }));
    }

    pub(super) fn script(&self, source: &str, args: Value) -> Value {
        self.cmd("/execute/sync", json!({ "script": source, "args": args }))
    }

    pub(super) fn async_script(&self, source: &str, args: Value) -> Value {
        self.cmd("/execute/async", json!({ "script": source, "args": args }))
    }

    pub(super) fn find(&self, css: &str) -> String {
        let v = self.cmd("/element", json!({ "using": "css selector", "value": css }));
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    pub(super) fn wait_for(&self, what: &str, js_condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.script(&format!("return !!({js_condition});"), json!([])) == json!(true) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(super) fn screenshot(&self, name: &str) -> PathBuf {
        let v = get(&self.url("/screenshot"), &[]).json();
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
    pub(super) fn severe_logs(&self) -> Vec<String> {
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

/// A WebDriver command: JSON in, JSON out.
fn post_json(url: &str, body: &Value) -> Value {
    post(
        url,
        body.to_string().as_bytes(),
        &[("Content-Type", "application/json")],
    )
    .json()
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
pub(super) fn paste_a_pdf_and_wait_for_the_error(driver: &Driver) {
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
