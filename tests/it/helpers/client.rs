//! The test client: how every test talks HTTP to a running `kitteh serve`.
//! Requests are built here and nowhere else, and every answer comes back
//! whole as a [`Reply`], 4xx and 5xx included.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Server, http};

/// An answer read whole: status, headers and body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value, its name matched in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads an exchange into a [`Reply`]; a failed exchange (no answer at
/// all) fails the test.
pub fn reply(res: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut res = res.expect("HTTP exchange");
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let status = res.status().as_u16();
    let body = res
        .body_mut()
        .with_config()
        .limit(200 << 20)
        .read_to_vec()
        .unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

/// GETs an absolute URL (one the server handed out, or another
/// listener's), following redirects as a browser would.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = http().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    reply(req.call())
}

/// POSTs `body` to an absolute URL. Redirects are answers to look at, not
/// to follow: a form's 303 is what its tests check.
pub fn post(url: &str, body: &[u8], headers: &[(&str, &str)]) -> Reply {
    let mut req = no_redirect_agent().post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    reply(req.send(body))
}

/// An HTTP client that returns 4xx/5xx and redirects as they are.
pub fn no_redirect_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

pub fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// The `error.code` of an answer, empty when it has none.
pub fn code(reply: &Reply) -> String {
    reply.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Every `http://` or `https://` URL in a text: attribute values, srcset
/// entries and snippets alike.
pub fn absolute_urls(text: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for (i, _) in text.match_indices("http") {
        let rest = &text[i..];
        if !(rest.starts_with("http://") || rest.starts_with("https://")) {
            continue;
        }
        let end = rest
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | '[' | ']' | '&')
            })
            .unwrap_or(rest.len());
        urls.push(rest[..end].to_string());
    }
    urls
}

/// (name, width, height) of every size in an image's API answer.
pub fn dims_of(v: &Value) -> Vec<(String, u64, u64)> {
    v["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["width"].as_u64().unwrap(),
                s["height"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A multipart/form-data body with one file field; returns the content
/// type (with its boundary) and the body.
pub fn multipart(
    field: &str,
    file_name: &str,
    content_type: &str,
    bytes: &[u8],
) -> (String, Vec<u8>) {
    multipart_parts(&[], &[(field, file_name, content_type, bytes)])
}

/// A multipart/form-data body with text `fields` first, then `files`,
/// each as (field, file name, content type, bytes).
pub fn multipart_parts(
    fields: &[(&str, &str)],
    files: &[(&str, &str, &str, &[u8])],
) -> (String, Vec<u8>) {
    let boundary = format!("kittehtest{:016x}", rand::random::<u64>());
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (field, file_name, content_type, bytes) in files {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend(*bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The server as the tests use it: paths are relative to its base URL.
impl Server {
    /// GETs `path`, following redirects.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        get(&self.url(path), headers)
    }

    pub fn head(&self, path: &str) -> Reply {
        reply(http().head(self.url(path)).call())
    }

    /// POSTs `body` to `path` with `headers` (the content type among
    /// them), without following redirects.
    pub fn post(&self, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Reply {
        post(&self.url(path), body, headers)
    }

    /// POSTs a URL-encoded form body, as a browser without JavaScript does.
    pub fn post_form(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.post(path, body.as_bytes(), &all)
    }

    /// Uploads through the JSON API, the file in field `file`.
    pub fn upload(&self, name: &str, content_type: &str, bytes: &[u8]) -> Reply {
        let (form_type, body) = multipart("file", name, content_type, bytes);
        self.post("/api/images", &body, &[("Content-Type", &form_type)])
    }

    /// Uploads `bytes` (as `cat.png`) through the JSON API with text
    /// `fields` ahead of the file and extra `headers`.
    pub fn upload_with(
        &self,
        bytes: &[u8],
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Reply {
        let (form_type, body) = multipart_parts(fields, &[("file", "cat.png", "image/png", bytes)]);
        let mut all = vec![("Content-Type", form_type.as_str())];
        all.extend_from_slice(headers);
        self.post("/api/images", &body, &all)
    }

    /// Uploads several files in one request through the JSON API, each
    /// as (file name, bytes) in field `file`.
    pub fn upload_files(&self, files: &[(&str, &[u8])]) -> Reply {
        let parts: Vec<(&str, &str, &str, &[u8])> = files
            .iter()
            .map(|(name, bytes)| ("file", *name, "application/octet-stream", *bytes))
            .collect();
        let (form_type, body) = multipart_parts(&[], &parts);
        self.post("/api/images", &body, &[("Content-Type", &form_type)])
    }

    /// Uploads as the browser form does: field `image[file]`, asking for
    /// HTML, with extra `headers` (a key's cookie).
    pub fn form_upload(&self, name: &str, bytes: &[u8], headers: &[(&str, &str)]) -> Reply {
        let (form_type, body) = multipart("image[file]", name, "application/octet-stream", bytes);
        let mut all = vec![
            ("Content-Type", form_type.as_str()),
            ("Accept", "text/html"),
        ];
        all.extend_from_slice(headers);
        self.post("/upload", &body, &all)
    }

    /// Deletes an image through the API, its delete token in the header.
    pub fn delete(&self, token: &str, delete_token: &str) -> Reply {
        self.delete_path(
            &format!("/api/images/{token}"),
            &[("X-Delete-Token", delete_token)],
        )
    }

    /// Sends DELETE to `path` as it is: for deletes without a token, or
    /// with the token in the query.
    pub fn delete_path(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = no_redirect_agent().delete(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        reply(req.call())
    }

    /// Polls the API until every size of `token` is `until` (`ready`,
    /// `running`, `failed`), within 60 s; returns the image's answer.
    pub fn wait_sizes(&self, token: &str, until: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.get(&format!("/api/images/{token}"), &[]).json();
            let sizes = v["sizes"].as_array().unwrap();
            if sizes.iter().all(|s| s["state"] == until) {
                return v;
            }
            assert!(Instant::now() < deadline, "sizes never became {until}: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Uploads through the API, asserts it was taken, and waits until
    /// every size is ready; returns the image's answer then.
    pub fn upload_and_wait(&self, name: &str, content_type: &str, bytes: &[u8]) -> Value {
        let res = self.upload(name, content_type, bytes);
        assert_eq!(res.status, 201, "{}", res.text());
        let token = res.json()["token"].as_str().unwrap().to_string();
        self.wait_sizes(&token, "ready")
    }
}
