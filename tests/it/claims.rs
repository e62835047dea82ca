//! What the README promises about uploads from a public instance, each
//! claim tested as written: several files count against the rate limit and
//! the size limit together; a key's quota holds against uploads in
//! parallel; a key shown on an open instance is checked; the default
//! expiry applies; oEmbed says how long an expiring picture may be cached;
//! `images delete --block` and `reports resolve --delete` do what they say.

use crate::fixtures::{self, picture};
use crate::helpers::{Sandbox, Server, bearer, code, each_database, json_of, ok};

fn several_files(sb: &Sandbox) {
    let server = Server::with_env(
        sb,
        &[
            ("KITTEH_RATE_LIMITS__UPLOADS_PER_MINUTE", "1"),
            ("KITTEH_RATE_LIMITS__UPLOADS_BURST", "2"),
        ],
    );
    // Three files, two tokens: two stored, the third refused by the limit.
    let r = server.upload_files(&[
        ("0.png", &picture(1)),
        ("1.png", &picture(2)),
        ("2.png", &picture(3)),
    ]);
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["images"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["errors"][0]["index"], 2);
    assert_eq!(v["errors"][0]["error"]["code"], "rate_limited");
    assert_eq!(sb.count_rows(), 2);
    // Files within the limit each, over it together (with the form's 64 KiB
    // of slack): refused as one body.
    drop(server);
    let server = Server::with_env(sb, &[("KITTEH_UPLOADS__MAX_BYTES", "100KiB")]);
    let big = |seed| fixtures::noise_png(175, 175, seed);
    assert!(
        (85 * 1024..100 * 1024).contains(&big(1).len()),
        "{}",
        big(1).len()
    );
    let r = server.upload_files(&[("0.png", &big(1)), ("1.png", &big(2))]);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(code(&r), "too_large");
    assert_eq!(sb.count_rows(), 2);
}

#[test]
fn several_files_count_against_the_rate_limit_and_the_size_limit_together() {
    each_database(several_files);
}

fn quota_race(sb: &Sandbox) {
    let server = Server::with_env(sb, &[]);
    let one = picture(40).len() as u64;
    let quota = format!("{}B", one * 3 + one / 2);
    let key = ok(&sb.run(&["keys", "create", "racer", "--quota", &quota]))
        .trim()
        .to_string();
    let auth = bearer(&key);
    let results: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|n| {
                let (server, auth) = (&server, auth.clone());
                s.spawn(move || {
                    server
                        .upload_with(&picture(40 + n), &[], &[("Authorization", &auth)])
                        .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let stored = results.iter().filter(|s| **s == 201).count();
    let refused = results.iter().filter(|s| **s == 413).count();
    assert_eq!(stored, 3, "{results:?}");
    assert_eq!(refused, 5, "{results:?}");
    let keys = json_of(&sb.run(&["keys", "list", "--json"]));
    let used = keys[0]["bytes"].as_u64().unwrap();
    assert!(
        used <= one * 3 + one / 2,
        "{used} bytes stored under the quota"
    );
}

#[test]
fn a_keys_quota_holds_against_uploads_in_parallel() {
    each_database(quota_race);
}

#[test]
fn a_key_shown_on_an_open_instance_is_checked_and_counted() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(&sb, &[]);
    let r = server.upload_with(&picture(1), &[], &[("Authorization", "Bearer kt_wrong")]);
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(code(&r), "key_required");
    assert_eq!(sb.count_rows(), 0);
    let key = ok(&sb.run(&["keys", "create", "carol"])).trim().to_string();
    let r = server.upload_with(&picture(2), &[], &[("Authorization", &bearer(&key))]);
    assert_eq!(r.status, 201, "{}", r.text());
    let listed = json_of(&sb.run(&["images", "list", "--key", "carol", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["token"], r.json()["token"]);
    // Without a key, an open instance takes the upload as before.
    assert_eq!(server.upload_with(&picture(3), &[], &[]).status, 201);
}

#[test]
fn the_default_expiry_applies_and_oembed_says_how_long_to_cache() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(&sb, &[("KITTEH_UPLOADS__DEFAULT_EXPIRY", "1h")]);
    let v = server.upload_with(&picture(1), &[], &[]).json();
    let at = chrono::DateTime::parse_from_rfc3339(v["expires_at"].as_str().unwrap()).unwrap();
    let left = at.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((3590..=3600).contains(&left), "{left}");
    // Asking for never is allowed without a maximum.
    let never = server
        .upload_with(&picture(2), &[("expires_in", "never")], &[])
        .json();
    assert!(never["expires_at"].is_null(), "{never}");
    let oembed = |page: &str| {
        let url = url::form_urlencoded::byte_serialize(page.as_bytes()).collect::<String>();
        server.get(&format!("/oembed?url={url}"), &[]).json()
    };
    let expiring = oembed(v["page_url"].as_str().unwrap());
    let cache_age = expiring["cache_age"].as_u64().unwrap();
    assert!((3590..=3600).contains(&cache_age), "{expiring}");
    assert!(oembed(never["page_url"].as_str().unwrap())["cache_age"].is_null());
}

#[test]
fn images_delete_block_refuses_the_bytes_and_resolve_delete_alone_does_not() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(&sb, &[]);
    let blocked = server.upload_with(&picture(1), &[], &[]).json();
    ok(&sb.run(&[
        "images",
        "delete",
        blocked["name"].as_str().unwrap(),
        "--block",
    ]));
    let token = blocked["token"].as_str().unwrap();
    assert_eq!(server.get(&format!("/img/{token}"), &[]).status, 451);
    let again = server.upload_with(&picture(1), &[], &[]);
    assert_eq!(again.status, 451, "{}", again.text());
    assert_eq!(code(&again), "blocked");
    // A report resolved by deleting, without blocking: the picture may
    // come back.
    let reported = server.upload_with(&picture(2), &[], &[]).json();
    let name = reported["name"].as_str().unwrap();
    assert_eq!(
        server
            .post_form(&format!("/{name}/report"), "reason=spam", &[])
            .status,
        201
    );
    let id = json_of(&sb.run(&["reports", "list", "--json"]))[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    ok(&sb.run(&["reports", "resolve", &id, "--delete"]));
    let gone = reported["token"].as_str().unwrap();
    assert_eq!(server.get(&format!("/img/{gone}"), &[]).status, 404);
    assert_eq!(server.upload_with(&picture(2), &[], &[]).status, 201);
    assert!(
        json_of(&sb.run(&["reports", "list", "--json"]))
            .as_array()
            .unwrap()
            .is_empty()
    );
}
