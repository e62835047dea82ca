//! Running a public or private instance: upload keys, rate limits, the
//! image listing, bans and address erasure, and the moderation page, on
//! SQLite and on PostgreSQL, against the real binary (the server and the
//! commands). Expiry and reports have modules of their own.

use sea_orm::DbBackend;

use crate::fixtures::{self, picture};
use crate::helpers::{
    Sandbox, Server, bearer, code, each_database, files_in, json_of, ok, wait_until,
};

// Keys.

fn keys(sb: &Sandbox) {
    let server = Server::with_env(sb, &[("KITTEH_UPLOADS__ACCESS", "keys")]);
    let first = picture(1);
    // Missing and wrong keys: 401 key_required with the challenge; nothing stored.
    for headers in [vec![], vec![("Authorization", "Bearer kt_0000")]] {
        let refused = server.upload_with(&first, &[], &headers);
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
    assert_eq!(sb.count_rows(), 0);
    assert!(files_in(&sb.uploads()).is_empty());

    let created = sb.run(&["keys", "create", "alice", "--quota", "1KiB"]);
    let key = ok(&created).trim().to_string();
    assert!(key.starts_with("kt_") && key.len() >= 3 + 32, "{key}");
    // Only its hash is stored.
    assert!(
        sb.scalar(&format!(
            "SELECT name FROM upload_keys WHERE key_hash = '{key}'"
        ))
        .is_none()
    );
    let auth = bearer(&key);
    let stored = server.upload_with(&first, &[], &[("Authorization", &auth)]);
    assert_eq!(stored.status, 201, "{}", stored.text());
    let bytes = stored.json()["bytes"].as_i64().unwrap();
    let listed = json_of(&sb.run(&["keys", "list", "--json"]));
    let alice = &listed.as_array().unwrap()[0];
    assert_eq!(alice["name"], "alice");
    assert_eq!(alice["uploads"], 1);
    assert_eq!(alice["bytes"], bytes);
    assert_eq!(alice["quota_bytes"], 1024);
    assert!(alice["last_used_at"].is_string(), "{alice}");
    // The image records its key.
    let by_key = json_of(&sb.run(&["images", "list", "--key", "alice", "--json"]));
    assert_eq!(by_key.as_array().unwrap().len(), 1);
    assert_eq!(by_key[0]["key"], "alice");

    // Over the quota: 413 naming what is used and the quota.
    let big = fixtures::png(300, 300);
    let over = server.upload_with(&big, &[], &[("Authorization", &auth)]);
    assert_eq!(over.status, 413, "{}", over.text());
    assert_eq!(code(&over), "quota_exceeded");
    let e = &over.json()["error"];
    assert_eq!(e["used_bytes"], bytes);
    assert_eq!(e["quota_bytes"], 1024);
    assert!(e["message"].as_str().unwrap().contains("1024"), "{e}");
    assert_eq!(sb.count_rows(), 1);

    ok(&sb.run(&["keys", "revoke", "alice"]));
    let revoked = server.upload_with(&picture(2), &[], &[("Authorization", &auth)]);
    assert_eq!(revoked.status, 401);
    assert_eq!(code(&revoked), "key_revoked");
    assert!(!sb.run(&["keys", "revoke", "nobody"]).status.success());
    assert!(
        !sb.run(&["keys", "create", "alice"]).status.success(),
        "names are unique"
    );

    // Browsers: the page asks for the key, keeps it in a strict cookie,
    // and the form works without JavaScript.
    let page = server.get("/", &[("Accept", "text/html")]).text();
    assert!(
        page.contains("id=\"key-form\"") && !page.contains("id=\"upload-form\""),
        "{page}"
    );
    let wrong = server.post_form("/key", "key=kt_nope&next=%2F", &[("Accept", "text/html")]);
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("id=\"key-form\""));
    let bob = ok(&sb.run(&["keys", "create", "bob"])).trim().to_string();
    let signed = server.post_form(
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
    let page = server
        .get("/", &[("Accept", "text/html"), ("Cookie", &jar)])
        .text();
    assert!(page.contains("id=\"upload-form\"") && page.contains("id=\"forget-key\""));
    let browser = server.form_upload("b.png", &picture(3), &[("Cookie", &jar)]);
    assert_eq!(browser.status, 303, "{}", browser.text());
    let forget = server.post_form("/key/forget", "", &[("Cookie", &jar)]);
    assert_eq!(forget.status, 303);
    let removal = forget.header("Set-Cookie").unwrap();
    assert!(
        removal.starts_with("kitteh_key=;") && removal.contains("Max-Age=0"),
        "{removal}"
    );
    drop(server);

    // Secure when the public URL is https.
    let server = Server::with_env(
        sb,
        &[
            ("KITTEH_UPLOADS__ACCESS", "keys"),
            ("KITTEH_SERVER__PUBLIC_URL", "https://kitteh.test"),
        ],
    );
    let signed = server.post_form("/key", &format!("key={bob}"), &[]);
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
    let server = Server::with_env(
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
        assert_eq!(server.upload_with(&picture(n), &[], &[]).status, 201);
    }
    let limited = server.upload_with(&picture(3), &[], &[]);
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
    let page = server.form_upload("c.png", &picture(4), &[]);
    assert_eq!(page.status, 429);
    assert!(page.text().contains("too many uploads"), "{}", page.text());
    assert!(page.header("Retry-After").is_some());
    assert_eq!(sb.count_rows(), 2);

    // Admin keys are exempt; a key with its own limit has its own bucket.
    let admin = ok(&sb.run(&["keys", "create", "root", "--admin"]))
        .trim()
        .to_string();
    let auth = bearer(&admin);
    for n in 10..15 {
        let r = server.upload_with(&picture(n), &[], &[("Authorization", &auth)]);
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let slow = ok(&sb.run(&["keys", "create", "slow", "--uploads-per-minute", "1"]))
        .trim()
        .to_string();
    let auth = bearer(&slow);
    assert_eq!(
        server
            .upload_with(&picture(20), &[], &[("Authorization", &auth)])
            .status,
        201
    );
    let own = server.upload_with(&picture(21), &[], &[("Authorization", &auth)]);
    assert_eq!(own.status, 429);
    assert_eq!(own.header("RateLimit-Policy"), Some("\"uploads\";q=1;w=60"));

    // Pictures for the delete and report limits, uploaded while the
    // admin key is still let through.
    let victim = server
        .upload_with(&picture(30), &[], &[("Authorization", &bearer(&admin))])
        .json();
    let other = server
        .upload_with(&picture(31), &[], &[("Authorization", &bearer(&admin))])
        .json();

    // Wrong keys: two are answered 401, then 429 before the key is looked
    // up, even for a right one.
    for _ in 0..2 {
        let r = server.upload_with(&picture(22), &[], &[("Authorization", "Bearer kt_nope")]);
        assert_eq!(r.status, 401, "{}", r.text());
    }
    let r = server.upload_with(&picture(22), &[], &[("Authorization", "Bearer kt_nope")]);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(
        r.header("RateLimit-Policy"),
        Some("\"wrong_keys\";q=2;w=120")
    );
    let r = server.upload_with(&picture(23), &[], &[("Authorization", &bearer(&admin))]);
    assert_eq!(r.status, 429, "{}", r.text());

    // Wrong delete tokens: two are answered 403, then 429 even for the
    // right one. Right tokens never count.
    let token = victim["token"].as_str().unwrap();
    let delete = |with: &str| server.delete(token, with);
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
    assert_eq!(server.post_form(&path, "reason=spam", &[]).status, 201);
    let r = server.post_form(&path, "reason=spam", &[]);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("RateLimit-Policy"), Some("\"reports\";q=1;w=60"));
}

/// Emptied buckets fill again: at one token a second, a refused request
/// is let through once one has come back, and not at once.
fn rate_limits_refill(sb: &Sandbox) {
    let server = Server::with_env(
        sb,
        &[
            ("KITTEH_RATE_LIMITS__UPLOADS_PER_MINUTE", "60"),
            ("KITTEH_RATE_LIMITS__UPLOADS_BURST", "1"),
            ("KITTEH_RATE_LIMITS__WRONG_DELETE_TOKENS_PER_MINUTE", "60"),
            ("KITTEH_RATE_LIMITS__WRONG_DELETE_TOKENS_BURST", "1"),
        ],
    );
    let first = server.upload_with(&picture(1), &[], &[]).json();
    assert_eq!(server.upload_with(&picture(2), &[], &[]).status, 429);
    let mut n = 3;
    wait_until("an upload to be let through again", || {
        n += 1;
        server.upload_with(&picture(n), &[], &[]).status == 201
    });
    let token = first["token"].as_str().unwrap();
    let delete = |with: &str| server.delete(token, with).status;
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

// Images, bans and addresses.

fn images_and_bans(sb: &Sandbox) {
    let server = Server::with_env(sb, &[]);
    let mut names = Vec::new();
    for n in 0..3 {
        names.push(
            server.upload_with(&picture(n), &[], &[]).json()["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let listed = json_of(&sb.run(&["images", "list", "--json"]));
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
            json_of(&sb.run(&all)).as_array().unwrap().len(),
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
        let out = sb.run(&all);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    // A plain delete by name; an unknown name is an error.
    ok(&sb.run(&["images", "delete", &names[0]]));
    wait_until("the server to see the image gone", || {
        server.get(&format!("/{}", names[0]), &[]).status == 404
    });
    assert!(
        !sb.run(&["images", "delete", "NoSuchThingKitty"])
            .status
            .success()
    );

    // Ban with purge: the count first, nothing done without --yes.
    let out = sb.run(&["ban", "add", "127.0.0.0/8", "--purge", "--reason", "test"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("would delete 2 image(s)"),
        "{out:?}"
    );
    assert_eq!(sb.count_rows(), 2);
    assert!(
        json_of(&sb.run(&["ban", "list", "--json"]))
            .as_array()
            .unwrap()
            .is_empty()
    );
    let done = ok(&sb.run(&[
        "ban",
        "add",
        "127.0.0.0/8",
        "--purge",
        "--yes",
        "--reason",
        "test",
    ]));
    assert!(done.contains("deleted 2 image(s)"), "{done}");
    assert_eq!(sb.count_rows(), 0);
    assert!(files_in(&sb.uploads()).is_empty());
    let bans = json_of(&sb.run(&["ban", "list", "--json"]));
    assert_eq!(bans[0]["cidr"], "127.0.0.0/8");
    assert_eq!(bans[0]["reason"], "test");
    // Banned: upload, report and delete.
    let up = server.upload_with(&picture(9), &[], &[]);
    assert_eq!(up.status, 403);
    assert_eq!(code(&up), "banned");
    assert_eq!(
        code(&server.post_form(&format!("/{}/report", names[1]), "reason=spam", &[])),
        "banned"
    );
    let del = server.delete_path("/api/images/anything", &[]);
    assert_eq!(del.status, 403);
    assert_eq!(code(&del), "banned");
    assert_eq!(
        sb.run(&["ban", "add", "not-an-address"]).status.code(),
        Some(2)
    );
    ok(&sb.run(&["ban", "remove", "127.0.0.0/8"]));
    assert!(!sb.run(&["ban", "remove", "127.0.0.0/8"]).status.success());
    assert_eq!(server.upload_with(&picture(9), &[], &[]).status, 201);
}

#[test]
fn images_are_listed_and_deleted_and_bans_refuse_and_purge() {
    each_database(images_and_bans);
}

fn addresses(sb: &Sandbox) {
    let server = Server::with_env(sb, &[("KITTEH_UPLOADS__EXPIRY_INTERVAL_SECONDS", "1")]);
    let page = server.get("/", &[("Accept", "text/html")]).text();
    assert!(
        page.contains("kept for 30 days, then erased"),
        "the small print says so"
    );
    let image = server.upload_with(&picture(1), &[], &[]).json();
    let token = image["token"].as_str().unwrap().to_string();
    let name = image["name"].as_str().unwrap().to_string();
    assert_eq!(
        server
            .post_form(&format!("/{name}/report"), "reason=spam", &[])
            .status,
        201
    );
    let ip_of = || {
        sb.scalar(&format!(
            "SELECT uploader_ip FROM images WHERE token = '{token}'"
        ))
    };
    assert_eq!(ip_of().as_deref(), Some("127.0.0.1"));
    // Thirty-one days later the job erases both addresses, and only those.
    let old = match sb.backend() {
        DbBackend::Postgres => "NOW() - INTERVAL '31 days'".to_string(),
        _ => format!(
            "'{}'",
            (chrono::Utc::now() - chrono::Duration::days(31)).format("%Y-%m-%d %H:%M:%S%.f+00:00")
        ),
    };
    sb.execute(&format!(
        "UPDATE images SET inserted_at = {old} WHERE token = '{token}'"
    ));
    sb.execute(&format!("UPDATE reports SET created_at = {old}"));
    let fresh = server.upload_with(&picture(2), &[], &[]).json();
    let fresh = fresh["token"].as_str().unwrap().to_string();
    wait_until("the old address to be erased", || ip_of().is_none());
    assert!(sb.scalar("SELECT reporter_ip FROM reports").is_none());
    assert_eq!(
        sb.scalar(&format!(
            "SELECT uploader_ip FROM images WHERE token = '{fresh}'"
        ))
        .as_deref(),
        Some("127.0.0.1")
    );
    drop(server);
    // With no retention nothing is stored.
    let server = Server::with_env(sb, &[("KITTEH_PRIVACY__IP_RETENTION_DAYS", "0")]);
    let page = server.get("/", &[("Accept", "text/html")]).text();
    assert!(page.contains("is not kept"));
    let none = server.upload_with(&picture(3), &[], &[]).json();
    let none = none["token"].as_str().unwrap();
    assert!(
        sb.scalar(&format!(
            "SELECT uploader_ip FROM images WHERE token = '{none}'"
        ))
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
    let server = Server::with_env(&sb, &[]);
    let image = server.upload_with(&picture(1), &[], &[]).json();
    let token = image["token"].as_str().unwrap().to_string();
    // No key: the sign-in form, 401.
    let page = server.get("/admin", &[("Accept", "text/html")]);
    assert_eq!(page.status, 401);
    assert!(page.text().contains("id=\"key-form\""));
    let plain = ok(&sb.run(&["keys", "create", "plain"])).trim().to_string();
    let jar = format!("kitteh_key={plain}");
    let page = server.get("/admin", &[("Accept", "text/html"), ("Cookie", &jar)]);
    assert_eq!(page.status, 403);
    assert!(page.text().contains("admin key"));
    let admin = ok(&sb.run(&["keys", "create", "root", "--admin"]))
        .trim()
        .to_string();
    let jar = format!("kitteh_key={admin}");
    let page = server.get("/admin", &[("Accept", "text/html"), ("Cookie", &jar)]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains(&format!("data-token=\"{token}\"")));
    assert!(!page.text().contains("<script>"), "no inline script");
    // A form without the check token (another site's) is refused.
    let forged = server.post_form(
        "/admin",
        &format!("action=delete&token={token}"),
        &[("Cookie", &jar)],
    );
    assert_eq!(forged.status, 403);
    assert_eq!(code(&forged), "forged_form");
    let forged = server.post_form(
        "/admin",
        &format!("action=delete&token={token}&check=00"),
        &[("Cookie", &jar)],
    );
    assert_eq!(forged.status, 403);
    assert_eq!(sb.count_rows(), 1);
    // Bearer works for scripts too; a non-admin key is refused.
    let as_plain = server.post_form(
        "/admin",
        "action=delete",
        &[("Authorization", &bearer(&plain))],
    );
    assert_eq!(as_plain.status, 403);
    assert_eq!(code(&as_plain), "admin_required");
}
