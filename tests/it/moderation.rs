//! Running a public or private instance: upload keys, rate limits, expiry,
//! reports, the blocklist, bans and address erasure, on SQLite and on
//! PostgreSQL, against the real binary (the server and the commands).

use std::process::Output;
use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::Value;

use crate::fixtures;
use crate::helpers::{Sandbox, Server, block_on, files_in, wait_until};
use crate::uploads::{Reply, count_rows, get, no_redirect_agent, reply};

pub fn server_with(sb: &Sandbox, env: &[(&str, &str)]) -> Server {
    let mut cmd = sb.kitteh();
    for (k, v) in env {
        cmd.env(k, v);
    }
    Server::start_with(cmd, &["--migrate"])
}

/// Runs `kitteh ARGS` against the sandbox.
pub fn kitteh(sb: &Sandbox, args: &[&str]) -> Output {
    sb.kitteh().args(args).output().expect("run kitteh")
}

pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn json_of(out: &Output) -> Value {
    serde_json::from_str(&ok(out)).expect("JSON from the command")
}

/// A multipart body with text fields and, optionally, a file in `file`.
fn form(fields: &[(&str, &str)], file: Option<&[u8]>) -> (String, Vec<u8>) {
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
    if let Some(bytes) = file {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cat.png\"\r\nContent-Type: image/png\r\n\r\n")
                .as_bytes(),
        );
        body.extend(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uploads `bytes` through the API with the given fields and headers.
pub fn upload(
    server: &Server,
    bytes: &[u8],
    fields: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Reply {
    let (ct, body) = form(fields, Some(bytes));
    let mut req = no_redirect_agent()
        .post(server.url("/api/images"))
        .header("Content-Type", &ct);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    reply(req.send(&body[..]))
}

pub fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// A distinct picture each call (the blocklist tests want the same one).
pub fn picture(n: u32) -> Vec<u8> {
    fixtures::png(20 + n, 16)
}

pub fn post_form(server: &Server, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = no_redirect_agent()
        .post(server.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    reply(req.send(body.as_bytes()))
}

pub fn code(reply: &Reply) -> String {
    reply.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn sql(sb: &Sandbox, statement: &str) {
    block_on(async {
        let db = Database::connect(&sb.database_url).await.unwrap();
        db.execute_unprepared(statement).await.unwrap();
    });
}

pub fn scalar(sb: &Sandbox, query: &str) -> Option<String> {
    block_on(async {
        let db = Database::connect(&sb.database_url).await.unwrap();
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), query))
            .await
            .unwrap()?;
        row.try_get_by_index::<Option<String>>(0).unwrap()
    })
}

fn backend(sb: &Sandbox) -> DbBackend {
    if sb.database_url.starts_with("sqlite:") {
        DbBackend::Sqlite
    } else {
        DbBackend::Postgres
    }
}

pub fn each_database(test: impl Fn(&Sandbox)) {
    test(&Sandbox::sqlite());
    if let Some(pg) = Sandbox::postgres() {
        test(&pg);
    }
}

// Keys.

fn keys(sb: &Sandbox) {
    let server = server_with(sb, &[("KITTEH_UPLOADS__ACCESS", "keys")]);
    let first = picture(1);
    // Missing and wrong keys: 401 key_required with the challenge; nothing stored.
    for headers in [vec![], vec![("Authorization", "Bearer kt_0000")]] {
        let refused = upload(&server, &first, &[], &headers);
        assert_eq!(refused.status, 401, "{}", refused.text());
        assert_eq!(code(&refused), "key_required");
        assert!(
            refused.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("Authorization: Bearer")
        );
        assert!(
            refused
                .header("WWW-Authenticate")
                .unwrap()
                .starts_with("Bearer")
        );
    }
    assert_eq!(count_rows(&sb.database_url), 0);
    assert!(files_in(&sb.uploads()).is_empty());

    let created = kitteh(sb, &["keys", "create", "alice", "--quota", "1KiB"]);
    let key = ok(&created).trim().to_string();
    assert!(key.starts_with("kt_") && key.len() >= 3 + 32, "{key}");
    // Only its hash is stored.
    assert!(
        scalar(
            sb,
            &format!("SELECT name FROM upload_keys WHERE key_hash = '{key}'")
        )
        .is_none()
    );
    let auth = bearer(&key);
    let stored = upload(&server, &first, &[], &[("Authorization", &auth)]);
    assert_eq!(stored.status, 201, "{}", stored.text());
    let bytes = stored.json()["bytes"].as_i64().unwrap();
    let listed = json_of(&kitteh(sb, &["keys", "list", "--json"]));
    let alice = &listed.as_array().unwrap()[0];
    assert_eq!(alice["name"], "alice");
    assert_eq!(alice["uploads"], 1);
    assert_eq!(alice["bytes"], bytes);
    assert_eq!(alice["quota_bytes"], 1024);
    assert!(alice["last_used_at"].is_string(), "{alice}");
    // The image records its key.
    let by_key = json_of(&kitteh(sb, &["images", "list", "--key", "alice", "--json"]));
    assert_eq!(by_key.as_array().unwrap().len(), 1);
    assert_eq!(by_key[0]["key"], "alice");

    // Over the quota: 413 naming what is used and the quota.
    let big = fixtures::png(300, 300);
    let over = upload(&server, &big, &[], &[("Authorization", &auth)]);
    assert_eq!(over.status, 413, "{}", over.text());
    assert_eq!(code(&over), "quota_exceeded");
    let e = &over.json()["error"];
    assert_eq!(e["used_bytes"], bytes);
    assert_eq!(e["quota_bytes"], 1024);
    assert!(e["message"].as_str().unwrap().contains("1024"), "{e}");
    assert_eq!(count_rows(&sb.database_url), 1);

    ok(&kitteh(sb, &["keys", "revoke", "alice"]));
    let revoked = upload(&server, &picture(2), &[], &[("Authorization", &auth)]);
    assert_eq!(revoked.status, 401);
    assert_eq!(code(&revoked), "key_revoked");
    assert!(!kitteh(sb, &["keys", "revoke", "nobody"]).status.success());
    assert!(
        !kitteh(sb, &["keys", "create", "alice"]).status.success(),
        "names are unique"
    );

    // Browsers: the page asks for the key, keeps it in a strict cookie,
    // and the form works without JavaScript.
    let page = get(&server.url("/"), &[("Accept", "text/html")]).text();
    assert!(
        page.contains("id=\"key-form\"") && !page.contains("id=\"upload-form\""),
        "{page}"
    );
    let wrong = post_form(
        &server,
        "/key",
        "key=kt_nope&next=%2F",
        &[("Accept", "text/html")],
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("id=\"key-form\""));
    let bob = ok(&kitteh(sb, &["keys", "create", "bob"]))
        .trim()
        .to_string();
    let signed = post_form(
        &server,
        "/key",
        &format!("key={bob}&next=%2F"),
        &[("Accept", "text/html")],
    );
    assert_eq!(signed.status, 303, "{}", signed.text());
    let cookie = signed.header("Set-Cookie").unwrap().to_string();
    assert!(cookie.starts_with("kitteh_key="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "http public URL: {cookie}");
    let jar = format!("kitteh_key={bob}");
    let page = get(
        &server.url("/"),
        &[("Accept", "text/html"), ("Cookie", &jar)],
    )
    .text();
    assert!(page.contains("id=\"upload-form\"") && page.contains("id=\"forget-key\""));
    let (ct, body) = fixtures::multipart("image[file]", "b.png", "image/png", &picture(3));
    let browser = reply(
        no_redirect_agent()
            .post(server.url("/upload"))
            .header("Content-Type", &ct)
            .header("Accept", "text/html")
            .header("Cookie", &jar)
            .send(&body[..]),
    );
    assert_eq!(browser.status, 303, "{}", browser.text());
    let forget = post_form(&server, "/key/forget", "", &[("Cookie", &jar)]);
    assert_eq!(forget.status, 303);
    let removal = forget.header("Set-Cookie").unwrap();
    assert!(
        removal.starts_with("kitteh_key=;") && removal.contains("Max-Age=0"),
        "{removal}"
    );
    drop(server);

    // Secure when the public URL is https.
    let server = server_with(
        sb,
        &[
            ("KITTEH_UPLOADS__ACCESS", "keys"),
            ("KITTEH_SERVER__PUBLIC_URL", "https://kitteh.test"),
        ],
    );
    let signed = post_form(&server, "/key", &format!("key={bob}"), &[]);
    assert_eq!(signed.status, 303);
    assert!(signed.header("Set-Cookie").unwrap().contains("Secure"));
}

#[test]
fn keys_missing_wrong_revoked_over_quota_and_signed_in() {
    each_database(keys);
}

// Rate limits.

fn rate_limits(sb: &Sandbox) {
    // One token a minute: nothing refills while the refusals are checked.
    let server = server_with(
        sb,
        &[
            ("KITTEH_RATE_LIMITS__UPLOADS_PER_MINUTE", "1"),
            ("KITTEH_RATE_LIMITS__UPLOADS_BURST", "2"),
            ("KITTEH_RATE_LIMITS__REPORTS_PER_MINUTE", "1"),
            ("KITTEH_RATE_LIMITS__REPORTS_BURST", "1"),
            ("KITTEH_RATE_LIMITS__WRONG_DELETE_TOKENS_PER_MINUTE", "1"),
            ("KITTEH_RATE_LIMITS__WRONG_DELETE_TOKENS_BURST", "2"),
            ("KITTEH_RATE_LIMITS__WRONG_KEYS_PER_MINUTE", "1"),
            ("KITTEH_RATE_LIMITS__WRONG_KEYS_BURST", "2"),
        ],
    );
    for n in 0..2 {
        assert_eq!(upload(&server, &picture(n), &[], &[]).status, 201);
    }
    let limited = upload(&server, &picture(3), &[], &[]);
    assert_eq!(limited.status, 429, "{}", limited.text());
    assert_eq!(code(&limited), "rate_limited");
    assert_eq!(limited.header("Retry-After"), Some("60"));
    assert_eq!(
        limited.header("RateLimit-Policy"),
        Some("\"uploads\";q=2;w=120")
    );
    let state = limited.header("RateLimit").unwrap();
    assert!(state.starts_with("\"uploads\";r=0;t="), "{state}");
    let message = limited.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("at most 2") && message.contains("1 a minute"),
        "{message}"
    );
    // Browsers get a page with the same headers.
    let (ct, body) = fixtures::multipart("image[file]", "c.png", "image/png", &picture(4));
    let page = reply(
        no_redirect_agent()
            .post(server.url("/upload"))
            .header("Content-Type", &ct)
            .header("Accept", "text/html")
            .send(&body[..]),
    );
    assert_eq!(page.status, 429);
    assert!(page.text().contains("too many uploads"), "{}", page.text());
    assert!(page.header("Retry-After").is_some());
    assert_eq!(count_rows(&sb.database_url), 2);

    // Admin keys are exempt; a key with its own limit has its own bucket.
    let admin = ok(&kitteh(sb, &["keys", "create", "root", "--admin"]))
        .trim()
        .to_string();
    let auth = bearer(&admin);
    for n in 10..15 {
        let r = upload(&server, &picture(n), &[], &[("Authorization", &auth)]);
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let slow = ok(&kitteh(
        sb,
        &["keys", "create", "slow", "--uploads-per-minute", "1"],
    ))
    .trim()
    .to_string();
    let auth = bearer(&slow);
    assert_eq!(
        upload(&server, &picture(20), &[], &[("Authorization", &auth)]).status,
        201
    );
    let own = upload(&server, &picture(21), &[], &[("Authorization", &auth)]);
    assert_eq!(own.status, 429);
    assert_eq!(own.header("RateLimit-Policy"), Some("\"uploads\";q=1;w=60"));

    // Pictures for the delete and report limits, uploaded while the
    // admin key is still let through.
    let victim = upload(
        &server,
        &picture(30),
        &[],
        &[("Authorization", &bearer(&admin))],
    )
    .json();
    let other = upload(
        &server,
        &picture(31),
        &[],
        &[("Authorization", &bearer(&admin))],
    )
    .json();

    // Wrong keys: two are answered 401, then 429 before the key is looked
    // up, even for a right one.
    for _ in 0..2 {
        let r = upload(
            &server,
            &picture(22),
            &[],
            &[("Authorization", "Bearer kt_nope")],
        );
        assert_eq!(r.status, 401, "{}", r.text());
    }
    let r = upload(
        &server,
        &picture(22),
        &[],
        &[("Authorization", "Bearer kt_nope")],
    );
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(
        r.header("RateLimit-Policy"),
        Some("\"wrong_keys\";q=2;w=120")
    );
    let r = upload(
        &server,
        &picture(23),
        &[],
        &[("Authorization", &bearer(&admin))],
    );
    assert_eq!(r.status, 429, "{}", r.text());

    // Wrong delete tokens: two are answered 403, then 429 even for the
    // right one. Right tokens never count.
    let token = victim["token"].as_str().unwrap();
    let url = server.url(&format!("/api/images/{token}"));
    let delete = |with: &str| {
        reply(
            no_redirect_agent()
                .delete(&url)
                .header("X-Delete-Token", with)
                .call(),
        )
    };
    for _ in 0..2 {
        assert_eq!(delete("nope").status, 403);
    }
    let r = delete("nope");
    assert_eq!(r.status, 429);
    assert_eq!(
        r.header("RateLimit-Policy"),
        Some("\"wrong_delete_tokens\";q=2;w=120")
    );
    assert_eq!(delete(victim["delete_token"].as_str().unwrap()).status, 429);

    // Reports: one at once.
    let name = other["name"].as_str().unwrap();
    let path = format!("/{name}/report");
    assert_eq!(post_form(&server, &path, "reason=spam", &[]).status, 201);
    let r = post_form(&server, &path, "reason=spam", &[]);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("RateLimit-Policy"), Some("\"reports\";q=1;w=60"));
}

/// Emptied buckets fill again: at one token a second, a refused request
/// is let through once one has come back, and not at once.
fn rate_limits_refill(sb: &Sandbox) {
    let server = server_with(
        sb,
        &[
            ("KITTEH_RATE_LIMITS__UPLOADS_PER_MINUTE", "60"),
            ("KITTEH_RATE_LIMITS__UPLOADS_BURST", "1"),
            ("KITTEH_RATE_LIMITS__WRONG_DELETE_TOKENS_PER_MINUTE", "60"),
            ("KITTEH_RATE_LIMITS__WRONG_DELETE_TOKENS_BURST", "1"),
        ],
    );
    let first = upload(&server, &picture(1), &[], &[]).json();
    assert_eq!(upload(&server, &picture(2), &[], &[]).status, 429);
    let mut n = 3;
    wait_until("an upload to be let through again", || {
        n += 1;
        upload(&server, &picture(n), &[], &[]).status == 201
    });
    let url = server.url(&format!("/api/images/{}", first["token"].as_str().unwrap()));
    let delete = |with: &str| {
        reply(
            no_redirect_agent()
                .delete(&url)
                .header("X-Delete-Token", with)
                .call(),
        )
        .status
    };
    assert_eq!(delete("nope"), 403);
    let right = first["delete_token"].as_str().unwrap();
    assert_eq!(delete(right), 429);
    wait_until("the right token to be taken again", || delete(right) == 204);
}

#[test]
fn emptied_rate_limit_buckets_fill_again() {
    each_database(rate_limits_refill);
}

#[test]
fn rate_limits_answer_429_with_the_draft_headers() {
    each_database(rate_limits);
}

// Expiry.

fn expiry(sb: &Sandbox) {
    // A server whose periodic job does not come round during the test.
    let mut server = server_with(
        sb,
        &[
            ("KITTEH_UPLOADS__MAX_EXPIRY", "1d"),
            ("KITTEH_UPLOADS__EXPIRY_INTERVAL_SECONDS", "3600"),
        ],
    );
    // Refused: over the maximum, never, nonsense.
    for (asked, expected) in [
        ("30d", "expiry_too_long"),
        ("never", "expiry_too_long"),
        ("soon", "bad_expiry"),
        ("0s", "bad_expiry"),
    ] {
        let r = upload(&server, &picture(1), &[("expires_in", asked)], &[]);
        assert_eq!(r.status, 422, "{asked}: {}", r.text());
        assert_eq!(code(&r), expected, "{asked}");
        if expected == "expiry_too_long" {
            assert_eq!(r.json()["error"]["max_expiry"], "1d");
        }
    }
    assert_eq!(count_rows(&sb.database_url), 0);
    // Saying nothing gets the maximum.
    let default = upload(&server, &picture(2), &[], &[]).json();
    let at = chrono::DateTime::parse_from_rfc3339(default["expires_at"].as_str().unwrap()).unwrap();
    let left = at.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((86_000..=86_400).contains(&left), "{left}");
    // A short one, with its sizes made.
    let short = upload(
        &server,
        &fixtures::png(700, 400),
        &[("expires_in", "2s")],
        &[],
    )
    .json();
    let token = short["token"].as_str().unwrap().to_string();
    let name = short["name"].as_str().unwrap().to_string();
    assert!(short["expires_at"].is_string());
    let page = get(&server.url(&format!("/{name}")), &[("Accept", "text/html")]).text();
    assert!(page.contains("id=\"expires\""), "the show page says when");
    let img = get(&server.url(&format!("/img/{token}")), &[]);
    assert_eq!(img.status, 200);
    let cache = img.header("Cache-Control").unwrap();
    assert!(
        cache.starts_with("public, max-age=") && !cache.contains("immutable"),
        "{cache}"
    );
    let files_before = files_in(&sb.uploads())
        .iter()
        .filter(|f| f.contains(&token))
        .count();
    assert_eq!(files_before, 4, "original and three sizes");
    std::thread::sleep(Duration::from_millis(2200));
    // Gone for everyone at once, before the job has run.
    assert_eq!(get(&server.url(&format!("/img/{token}")), &[]).status, 410);
    assert_eq!(
        get(&server.url(&format!("/img/tiny{token}")), &[]).status,
        410
    );
    assert_eq!(
        get(&server.url(&format!("/{name}")), &[("Accept", "text/html")]).status,
        410
    );
    let api = get(&server.url(&format!("/api/images/{token}")), &[]);
    assert_eq!(api.status, 410);
    assert_eq!(code(&api), "expired");
    server.stop();

    // The job deletes it with its sizes and files, once; the name stays gone.
    let server = server_with(
        sb,
        &[
            ("KITTEH_UPLOADS__MAX_EXPIRY", "1d"),
            ("KITTEH_UPLOADS__EXPIRY_INTERVAL_SECONDS", "1"),
        ],
    );
    wait_until("the expired image to be deleted", || {
        !files_in(&sb.uploads()).iter().any(|f| f.contains(&token))
    });
    assert_eq!(
        count_rows(&sb.database_url),
        1,
        "only the one that lives a day"
    );
    assert_eq!(get(&server.url(&format!("/img/{token}")), &[]).status, 410);
    let page = get(&server.url(&format!("/{name}")), &[("Accept", "text/html")]);
    assert_eq!(page.status, 410);
    assert!(page.text().contains("expired"));
    // The log line follows the files' removal; then let another round
    // pass to be sure it does not delete again.
    let deleted = || {
        server
            .log_text()
            .lines()
            .filter(|l| l.contains("image deleted") && l.contains("expired"))
            .count()
    };
    wait_until("the deletion to be logged", || deleted() >= 1);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(deleted(), 1, "{}", server.log_text());
    assert_eq!(
        scalar(
            sb,
            &format!("SELECT reason FROM tombstones WHERE token = '{token}'")
        )
        .as_deref(),
        Some("expired")
    );
}

#[test]
fn an_expired_image_is_gone_at_once_and_deleted_with_its_sizes_once() {
    each_database(expiry);
}

#[test]
fn two_replicas_on_postgres_delete_each_expired_image_exactly_once() {
    let Some(sb) = Sandbox::postgres() else {
        return;
    };
    let env = [
        ("KITTEH_UPLOADS__EXPIRY_INTERVAL_SECONDS", "1"),
        ("KITTEH_LOG__FORMAT", "json"),
    ];
    let a = server_with(&sb, &env);
    let b = server_with(&sb, &env);
    let mut tokens = Vec::new();
    for n in 0..8 {
        let via = if n % 2 == 0 { &a } else { &b };
        let r = upload(via, &picture(n), &[("expires_in", "2s")], &[]);
        assert_eq!(r.status, 201, "{}", r.text());
        tokens.push(r.json()["token"].as_str().unwrap().to_string());
    }
    wait_until("every expired image to be deleted", || {
        count_rows(&sb.database_url) == 0
    });
    wait_until("their files to go", || files_in(&sb.uploads()).is_empty());
    let expired_lines = |server: &Server| {
        server
            .log_text()
            .lines()
            .filter(|l| l.contains("image deleted") && l.contains("\"reason\":\"expired\""))
            .count()
    };
    // The log line follows the files' removal; then let another round
    // pass on both to be sure nothing is deleted twice.
    wait_until("every deletion to be logged", || {
        expired_lines(&a) + expired_lines(&b) >= 8
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        expired_lines(&a) + expired_lines(&b),
        8,
        "each image deleted by one replica:\n{}\n{}",
        a.log_text(),
        b.log_text()
    );
    for token in &tokens {
        assert_eq!(get(&a.url(&format!("/img/{token}")), &[]).status, 410);
    }
}

// Reports and the blocklist.

fn reports(sb: &Sandbox) {
    let server = server_with(sb, &[]);
    let bytes = picture(7);
    let image = upload(&server, &bytes, &[], &[]).json();
    let name = image["name"].as_str().unwrap().to_string();
    let token = image["token"].as_str().unwrap().to_string();
    let show = get(&server.url(&format!("/{name}")), &[("Accept", "text/html")]).text();
    assert!(
        show.contains(&format!("href=\"/{name}/report\"")),
        "a Report link"
    );
    let form = get(
        &server.url(&format!("/{name}/report")),
        &[("Accept", "text/html")],
    );
    assert_eq!(form.status, 200);
    for reason in ["illegal", "personal_information", "spam", "other"] {
        assert!(
            form.text().contains(&format!("value=\"{reason}\"")),
            "{reason}"
        );
    }
    // A browser gets a thank-you page; an API client 201 JSON.
    let thanks = post_form(
        &server,
        &format!("/{name}/report"),
        "reason=personal_information&details=my+address",
        &[("Accept", "text/html")],
    );
    assert_eq!(thanks.status, 200);
    assert!(thanks.text().contains("id=\"report-received\""));
    let api = reply(
        no_redirect_agent()
            .post(server.url(&format!("/{name}/report")))
            .header("Content-Type", "application/json")
            .send(r#"{"reason":"illegal","details":"see page"}"#.as_bytes()),
    );
    assert_eq!(api.status, 201, "{}", api.text());
    assert_eq!(api.json()["report"]["state"], "received");
    // Bad reports are named, unknown images are not found.
    let bad = post_form(&server, &format!("/{name}/report"), "reason=boring", &[]);
    assert_eq!(bad.status, 422);
    assert_eq!(code(&bad), "bad_report");
    assert!(
        bad.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("illegal, personal_information, spam, other")
    );
    let long = format!("reason=other&details={}", "x".repeat(2001));
    assert_eq!(
        post_form(&server, &format!("/{name}/report"), &long, &[]).status,
        422
    );
    assert_eq!(
        post_form(&server, "/NoSuchThingKitty/report", "reason=spam", &[]).status,
        404
    );
    assert_eq!(
        post_form(&server, &format!("/{name}/report"), "%%%", &[]).status,
        422
    );

    // The same address reporting the same picture again adds nothing.
    let listed = json_of(&kitteh(sb, &["reports", "list", "--json"]));
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["reason"], "personal_information");
    assert_eq!(listed[0]["details"], "my address");
    assert_eq!(listed[0]["token"], token.as_str());
    assert_eq!(api.json()["report"]["id"], listed[0]["id"]);
    let reported = json_of(&kitteh(sb, &["images", "list", "--reported", "--json"]));
    assert_eq!(reported.as_array().unwrap().len(), 1);
    assert_eq!(reported[0]["open_reports"], 1);
    let first = listed[0]["id"].as_i64().unwrap().to_string();
    ok(&kitteh(sb, &["reports", "resolve", &first, "--dismiss"]));
    assert!(
        json_of(&kitteh(sb, &["reports", "list", "--json"]))
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        !kitteh(sb, &["reports", "resolve", &first, "--dismiss"])
            .status
            .success(),
        "resolved already"
    );
    assert!(
        !kitteh(sb, &["reports", "resolve", "999", "--dismiss"])
            .status
            .success()
    );
    // Once dismissed, a new report is a new one.
    let again = post_form(&server, &format!("/{name}/report"), "reason=illegal", &[]);
    assert_eq!(again.status, 201);
    let second = again.json()["report"]["id"].as_i64().unwrap().to_string();
    assert_ne!(second, first);
    assert!(
        !kitteh(sb, &["reports", "resolve", &second])
            .status
            .success(),
        "--delete or --dismiss"
    );
    ok(&kitteh(
        sb,
        &["reports", "resolve", &second, "--delete", "--block"],
    ));
    assert_eq!(
        json_of(&kitteh(sb, &["reports", "list", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let all = json_of(&kitteh(sb, &["reports", "list", "--all", "--json"]));
    assert_eq!(all[0]["resolution"], "dismissed");
    assert_eq!(all[1]["resolution"], "blocked");
    // The name says why it is gone (once the server's cache of the name
    // lapses: the command ran in another process), and the same bytes
    // cannot come back.
    wait_until("the server to see the name blocked", || {
        get(&server.url(&format!("/{name}")), &[("Accept", "text/html")]).status == 451
    });
    assert_eq!(get(&server.url(&format!("/img/{token}")), &[]).status, 451);
    assert!(files_in(&sb.uploads()).is_empty());
    let again = upload(&server, &bytes, &[], &[]);
    assert_eq!(again.status, 451, "{}", again.text());
    assert_eq!(code(&again), "blocked");
    assert_eq!(count_rows(&sb.database_url), 0);
    assert!(files_in(&sb.uploads()).is_empty(), "nothing half-written");
    // Other pictures still go through.
    assert_eq!(upload(&server, &picture(8), &[], &[]).status, 201);
}

#[test]
fn reports_are_taken_listed_and_resolved_and_blocked_bytes_get_451() {
    each_database(reports);
}

fn images_and_bans(sb: &Sandbox) {
    let server = server_with(sb, &[]);
    let mut names = Vec::new();
    for n in 0..3 {
        names.push(
            upload(&server, &picture(n), &[], &[]).json()["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let listed = json_of(&kitteh(sb, &["images", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert_eq!(listed[0]["name"], names[2].as_str(), "newest first");
    assert_eq!(listed[0]["ip"], "127.0.0.1");
    for (args, n) in [
        (vec!["--ip", "127.0.0.0/8"], 3),
        (vec!["--ip", "10.0.0.0/8"], 0),
        (vec!["--since", "1h"], 3),
    ] {
        let mut all = vec!["images", "list", "--json"];
        all.extend(args.iter());
        assert_eq!(
            json_of(&kitteh(sb, &all)).as_array().unwrap().len(),
            n,
            "{args:?}"
        );
    }
    for bad in [
        vec!["--ip", "nonsense"],
        vec!["--since", "soon"],
        vec!["--key", "nobody"],
    ] {
        let mut all = vec!["images", "list"];
        all.extend(bad.iter());
        let out = kitteh(sb, &all);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    // A plain delete by name; an unknown name is an error.
    ok(&kitteh(sb, &["images", "delete", &names[0]]));
    wait_until("the server to see the image gone", || {
        get(&server.url(&format!("/{}", names[0])), &[]).status == 404
    });
    assert!(
        !kitteh(sb, &["images", "delete", "NoSuchThingKitty"])
            .status
            .success()
    );

    // Ban with purge: the count first, nothing done without --yes.
    let out = kitteh(
        sb,
        &["ban", "add", "127.0.0.0/8", "--purge", "--reason", "test"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("would delete 2 image(s)"),
        "{out:?}"
    );
    assert_eq!(count_rows(&sb.database_url), 2);
    assert!(
        json_of(&kitteh(sb, &["ban", "list", "--json"]))
            .as_array()
            .unwrap()
            .is_empty()
    );
    let done = ok(&kitteh(
        sb,
        &[
            "ban",
            "add",
            "127.0.0.0/8",
            "--purge",
            "--yes",
            "--reason",
            "test",
        ],
    ));
    assert!(done.contains("deleted 2 image(s)"), "{done}");
    assert_eq!(count_rows(&sb.database_url), 0);
    assert!(files_in(&sb.uploads()).is_empty());
    let bans = json_of(&kitteh(sb, &["ban", "list", "--json"]));
    assert_eq!(bans[0]["cidr"], "127.0.0.0/8");
    assert_eq!(bans[0]["reason"], "test");
    // Banned: upload, report and delete.
    let up = upload(&server, &picture(9), &[], &[]);
    assert_eq!(up.status, 403);
    assert_eq!(code(&up), "banned");
    assert_eq!(
        code(&post_form(
            &server,
            &format!("/{}/report", names[1]),
            "reason=spam",
            &[]
        )),
        "banned"
    );
    let del = reply(
        no_redirect_agent()
            .delete(server.url("/api/images/anything"))
            .call(),
    );
    assert_eq!(del.status, 403);
    assert_eq!(code(&del), "banned");
    assert_eq!(
        kitteh(sb, &["ban", "add", "not-an-address"]).status.code(),
        Some(2)
    );
    ok(&kitteh(sb, &["ban", "remove", "127.0.0.0/8"]));
    assert!(
        !kitteh(sb, &["ban", "remove", "127.0.0.0/8"])
            .status
            .success()
    );
    assert_eq!(upload(&server, &picture(9), &[], &[]).status, 201);
}

#[test]
fn images_are_listed_and_deleted_and_bans_refuse_and_purge() {
    each_database(images_and_bans);
}

fn addresses(sb: &Sandbox) {
    let server = server_with(sb, &[("KITTEH_UPLOADS__EXPIRY_INTERVAL_SECONDS", "1")]);
    let page = get(&server.url("/"), &[("Accept", "text/html")]).text();
    assert!(
        page.contains("kept for 30 days, then erased"),
        "the small print says so"
    );
    let image = upload(&server, &picture(1), &[], &[]).json();
    let token = image["token"].as_str().unwrap().to_string();
    let name = image["name"].as_str().unwrap().to_string();
    assert_eq!(
        post_form(&server, &format!("/{name}/report"), "reason=spam", &[]).status,
        201
    );
    let ip_of = || {
        scalar(
            sb,
            &format!("SELECT uploader_ip FROM images WHERE token = '{token}'"),
        )
    };
    assert_eq!(ip_of().as_deref(), Some("127.0.0.1"));
    // Thirty-one days later the job erases both addresses, and only those.
    let old = match backend(sb) {
        DbBackend::Postgres => "NOW() - INTERVAL '31 days'".to_string(),
        _ => format!(
            "'{}'",
            (chrono::Utc::now() - chrono::Duration::days(31)).format("%Y-%m-%d %H:%M:%S%.f+00:00")
        ),
    };
    sql(
        sb,
        &format!("UPDATE images SET inserted_at = {old} WHERE token = '{token}'"),
    );
    sql(sb, &format!("UPDATE reports SET created_at = {old}"));
    let fresh = upload(&server, &picture(2), &[], &[]).json();
    let fresh = fresh["token"].as_str().unwrap().to_string();
    wait_until("the old address to be erased", || ip_of().is_none());
    assert!(scalar(sb, "SELECT reporter_ip FROM reports").is_none());
    assert_eq!(
        scalar(
            sb,
            &format!("SELECT uploader_ip FROM images WHERE token = '{fresh}'")
        )
        .as_deref(),
        Some("127.0.0.1")
    );
    drop(server);
    // With no retention nothing is stored.
    let server = server_with(sb, &[("KITTEH_PRIVACY__IP_RETENTION_DAYS", "0")]);
    let page = get(&server.url("/"), &[("Accept", "text/html")]).text();
    assert!(page.contains("is not kept"));
    let none = upload(&server, &picture(3), &[], &[]).json();
    let none = none["token"].as_str().unwrap();
    assert!(
        scalar(
            sb,
            &format!("SELECT uploader_ip FROM images WHERE token = '{none}'")
        )
        .is_none()
    );
}

#[test]
fn addresses_are_erased_after_the_retention_and_not_stored_without_one() {
    each_database(addresses);
}

#[test]
fn the_moderation_page_is_for_admin_keys_and_refuses_forged_forms() {
    let sb = Sandbox::sqlite();
    let server = server_with(&sb, &[]);
    let image = upload(&server, &picture(1), &[], &[]).json();
    let token = image["token"].as_str().unwrap().to_string();
    // No key: the sign-in form, 401.
    let page = get(&server.url("/admin"), &[("Accept", "text/html")]);
    assert_eq!(page.status, 401);
    assert!(page.text().contains("id=\"key-form\""));
    let plain = ok(&kitteh(&sb, &["keys", "create", "plain"]))
        .trim()
        .to_string();
    let jar = format!("kitteh_key={plain}");
    let page = get(
        &server.url("/admin"),
        &[("Accept", "text/html"), ("Cookie", &jar)],
    );
    assert_eq!(page.status, 403);
    assert!(page.text().contains("admin key"));
    let admin = ok(&kitteh(&sb, &["keys", "create", "root", "--admin"]))
        .trim()
        .to_string();
    let jar = format!("kitteh_key={admin}");
    let page = get(
        &server.url("/admin"),
        &[("Accept", "text/html"), ("Cookie", &jar)],
    );
    assert_eq!(page.status, 200);
    assert!(page.text().contains(&format!("data-token=\"{token}\"")));
    assert!(!page.text().contains("<script>"), "no inline script");
    // A form without the check token (another site's) is refused.
    let forged = post_form(
        &server,
        "/admin",
        &format!("action=delete&token={token}"),
        &[("Cookie", &jar)],
    );
    assert_eq!(forged.status, 403);
    assert_eq!(code(&forged), "forged_form");
    let forged = post_form(
        &server,
        "/admin",
        &format!("action=delete&token={token}&check=00"),
        &[("Cookie", &jar)],
    );
    assert_eq!(forged.status, 403);
    assert_eq!(count_rows(&sb.database_url), 1);
    // Bearer works for scripts too; a non-admin key is refused.
    let as_plain = post_form(
        &server,
        "/admin",
        "action=delete",
        &[("Authorization", &bearer(&plain))],
    );
    assert_eq!(as_plain.status, 403);
    assert_eq!(code(&as_plain), "admin_required");
}
