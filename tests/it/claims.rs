//! What the README promises about uploads from a public instance, each
//! claim tested as written: several files count against the rate limit and
//! the size limit together; a key's quota holds against uploads in
//! parallel; a key shown on an open instance is checked; the default
//! expiry applies; oEmbed says how long an expiring picture may be cached;
//! `images delete --block` and `reports resolve --delete` do what they say.

use crate::fixtures;
use crate::helpers::Sandbox;
use crate::moderation::{
    code, each_database, json_of, kitteh, ok, picture, post_form, server_with, upload,
};
use crate::uploads::{count_rows, get, reply};

/// `files` in one request, in the `file` field.
fn several(server: &crate::helpers::Server, files: &[Vec<u8>]) -> crate::uploads::Reply {
    let boundary = "claimsboundary";
    let mut body = Vec::new();
    for (i, bytes) in files.iter().enumerate() {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{i}.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    reply(
        crate::helpers::http()
            .post(server.url("/api/images"))
            .header(
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            )
            .send(&body[..]),
    )
}

fn several_files(sb: &Sandbox) {
    let server = server_with(
        sb,
        &[
            ("KITTEH_RATE_LIMITS__UPLOADS_PER_MINUTE", "1"),
            ("KITTEH_RATE_LIMITS__UPLOADS_BURST", "2"),
        ],
    );
    // Three files, two tokens: two stored, the third refused by the limit.
    let r = several(&server, &[picture(1), picture(2), picture(3)]);
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    assert_eq!(v["images"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["errors"][0]["index"], 2);
    assert_eq!(v["errors"][0]["error"]["code"], "rate_limited");
    assert_eq!(count_rows(&sb.database_url), 2);
    // Files within the limit each, over it together (with the form's 64 KiB
    // of slack): refused as one body.
    drop(server);
    let server = server_with(sb, &[("KITTEH_UPLOADS__MAX_BYTES", "100KiB")]);
    let big = |seed| fixtures::noise_png(175, 175, seed);
    assert!(
        (85 * 1024..100 * 1024).contains(&big(1).len()),
        "{}",
        big(1).len()
    );
    let r = several(&server, &[big(1), big(2)]);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(code(&r), "too_large");
    assert_eq!(count_rows(&sb.database_url), 2);
}

#[test]
fn several_files_count_against_the_rate_limit_and_the_size_limit_together() {
    each_database(several_files);
}

fn quota_race(sb: &Sandbox) {
    let server = server_with(sb, &[]);
    let one = picture(40).len() as u64;
    let quota = format!("{}B", one * 3 + one / 2);
    let key = ok(&kitteh(sb, &["keys", "create", "racer", "--quota", &quota]))
        .trim()
        .to_string();
    let auth = format!("Bearer {key}");
    let results: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|n| {
                let (server, auth) = (&server, auth.clone());
                s.spawn(move || {
                    upload(server, &picture(40 + n), &[], &[("Authorization", &auth)]).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let stored = results.iter().filter(|s| **s == 201).count();
    let refused = results.iter().filter(|s| **s == 413).count();
    assert_eq!(stored, 3, "{results:?}");
    assert_eq!(refused, 5, "{results:?}");
    let keys = json_of(&kitteh(sb, &["keys", "list", "--json"]));
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
    let server = server_with(&sb, &[]);
    let r = upload(
        &server,
        &picture(1),
        &[],
        &[("Authorization", "Bearer kt_wrong")],
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(code(&r), "key_required");
    assert_eq!(count_rows(&sb.database_url), 0);
    let key = ok(&kitteh(&sb, &["keys", "create", "carol"]))
        .trim()
        .to_string();
    let r = upload(
        &server,
        &picture(2),
        &[],
        &[("Authorization", &format!("Bearer {key}"))],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let listed = json_of(&kitteh(
        &sb,
        &["images", "list", "--key", "carol", "--json"],
    ));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["token"], r.json()["token"]);
    // Without a key, an open instance takes the upload as before.
    assert_eq!(upload(&server, &picture(3), &[], &[]).status, 201);
}

#[test]
fn the_default_expiry_applies_and_oembed_says_how_long_to_cache() {
    let sb = Sandbox::sqlite();
    let server = server_with(&sb, &[("KITTEH_UPLOADS__DEFAULT_EXPIRY", "1h")]);
    let v = upload(&server, &picture(1), &[], &[]).json();
    let at = chrono::DateTime::parse_from_rfc3339(v["expires_at"].as_str().unwrap()).unwrap();
    let left = at.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((3590..=3600).contains(&left), "{left}");
    // Asking for never is allowed without a maximum.
    let never = upload(&server, &picture(2), &[("expires_in", "never")], &[]).json();
    assert!(never["expires_at"].is_null(), "{never}");
    let oembed = |page: &str| {
        let url = url::form_urlencoded::byte_serialize(page.as_bytes()).collect::<String>();
        get(&server.url(&format!("/oembed?url={url}")), &[]).json()
    };
    let expiring = oembed(v["page_url"].as_str().unwrap());
    let cache_age = expiring["cache_age"].as_u64().unwrap();
    assert!((3590..=3600).contains(&cache_age), "{expiring}");
    assert!(oembed(never["page_url"].as_str().unwrap())["cache_age"].is_null());
}

#[test]
fn images_delete_block_refuses_the_bytes_and_resolve_delete_alone_does_not() {
    let sb = Sandbox::sqlite();
    let server = server_with(&sb, &[]);
    let blocked = upload(&server, &picture(1), &[], &[]).json();
    ok(&kitteh(
        &sb,
        &[
            "images",
            "delete",
            blocked["name"].as_str().unwrap(),
            "--block",
        ],
    ));
    let token = blocked["token"].as_str().unwrap();
    assert_eq!(get(&server.url(&format!("/img/{token}")), &[]).status, 451);
    let again = upload(&server, &picture(1), &[], &[]);
    assert_eq!(again.status, 451, "{}", again.text());
    assert_eq!(code(&again), "blocked");
    // A report resolved by deleting, without blocking: the picture may
    // come back.
    let reported = upload(&server, &picture(2), &[], &[]).json();
    let name = reported["name"].as_str().unwrap();
    assert_eq!(
        post_form(&server, &format!("/{name}/report"), "reason=spam", &[]).status,
        201
    );
    let id = json_of(&kitteh(&sb, &["reports", "list", "--json"]))[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    ok(&kitteh(&sb, &["reports", "resolve", &id, "--delete"]));
    let gone = reported["token"].as_str().unwrap();
    assert_eq!(get(&server.url(&format!("/img/{gone}")), &[]).status, 404);
    assert_eq!(upload(&server, &picture(2), &[], &[]).status, 201);
    assert!(
        json_of(&kitteh(&sb, &["reports", "list", "--json"]))
            .as_array()
            .unwrap()
            .is_empty()
    );
}
