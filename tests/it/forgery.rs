//! Forms that change state, sent the way an attacker would: from another
//! site, from a sandboxed frame (`Origin: null`), with another key's check
//! token, with a revoked key; and the moderation page's own forms sent
//! for real, outside a browser.

use crate::helpers::Sandbox;
use crate::moderation::{
    code, json_of, kitteh, ok, picture, post_form, scalar, server_with, upload,
};
use crate::uploads::get;

#[test]
fn sign_in_and_forget_refuse_forms_from_other_sites() {
    let sb = Sandbox::sqlite();
    let server = server_with(&sb, &[("KITTEH_UPLOADS__ACCESS", "keys")]);
    let key = ok(&kitteh(&sb, &["keys", "create", "alice"]))
        .trim()
        .to_string();
    let body = format!("key={key}&next=/");
    let cross: [&[(&str, &str)]; 3] = [
        &[("Sec-Fetch-Site", "cross-site")],
        &[("Origin", "https://evil.example")],
        // A sandboxed frame or a data: page sends `null`.
        &[("Origin", "null")],
    ];
    for path in ["/key", "/key/forget"] {
        for headers in cross {
            let r = post_form(&server, path, &body, headers);
            assert_eq!(r.status, 403, "{path} {headers:?}: {}", r.text());
            assert_eq!(code(&r), "forged_form", "{path} {headers:?}");
            assert!(r.header("Set-Cookie").is_none(), "{path} {headers:?}");
        }
    }
    // The same forms from this site are taken.
    let origin = server.base.clone();
    for headers in [
        vec![("Sec-Fetch-Site", "same-origin")],
        vec![("Origin", origin.as_str())],
        vec![("Sec-Fetch-Site", "same-origin"), ("Origin", "null")],
    ] {
        let r = post_form(&server, "/key", &body, &headers);
        assert_eq!(r.status, 303, "{headers:?}: {}", r.text());
        assert!(r.header("Set-Cookie").unwrap().starts_with("kitteh_key="));
        let r = post_form(&server, "/key/forget", "", &headers);
        assert_eq!(r.status, 303, "{headers:?}: {}", r.text());
    }
}

/// A moderation form as the page writes it, for `key`.
fn act(
    server: &crate::helpers::Server,
    key: &str,
    check: &str,
    fields: &str,
) -> crate::uploads::Reply {
    let cookie = format!("kitteh_key={key}");
    post_form(
        server,
        "/admin",
        &format!("check={check}&{fields}"),
        &[("Cookie", &cookie), ("Sec-Fetch-Site", "same-origin")],
    )
}

/// The check token the moderation page gives `key`.
fn check_of(server: &crate::helpers::Server, key: &str) -> String {
    let page = get(
        &server.url("/admin"),
        &[
            ("Cookie", &format!("kitteh_key={key}")),
            ("Accept", "text/html"),
        ],
    )
    .text();
    let at = page.find("name=\"check\" value=\"").expect("a check token") + 20;
    page[at..at + 64].to_string()
}

#[test]
fn the_moderation_forms_act_for_their_own_key_only() {
    let sb = Sandbox::sqlite();
    let server = server_with(&sb, &[]);
    let admin = ok(&kitteh(&sb, &["keys", "create", "root", "--admin"]))
        .trim()
        .to_string();
    let other = ok(&kitteh(&sb, &["keys", "create", "deputy", "--admin"]))
        .trim()
        .to_string();
    let plain = ok(&kitteh(&sb, &["keys", "create", "bob"]))
        .trim()
        .to_string();
    let pics: Vec<serde_json::Value> = (0..3)
        .map(|n| upload(&server, &picture(n), &[], &[]).json())
        .collect();
    let token = |i: usize| pics[i]["token"].as_str().unwrap().to_string();
    let name = pics[0]["name"].as_str().unwrap().to_string();
    // A report whose text is markup: shown as text on the page.
    let r = post_form(
        &server,
        &format!("/{name}/report"),
        "reason=spam&details=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        &[],
    );
    assert_eq!(r.status, 201);
    let check = check_of(&server, &admin);
    let page = get(
        &server.url("/admin"),
        &[
            ("Cookie", &format!("kitteh_key={admin}")),
            ("Accept", "text/html"),
        ],
    )
    .text();
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    assert!(
        !page.contains("<script>alert"),
        "markup in a report is escaped"
    );

    // Another key's check token, a key that is not an admin one, a forged
    // token: nothing happens.
    let deputys = check_of(&server, &other);
    let r = act(
        &server,
        &admin,
        &deputys,
        &format!("action=delete&token={}", token(1)),
    );
    assert_eq!(r.status, 403);
    assert_eq!(code(&r), "forged_form");
    let r = act(
        &server,
        &plain,
        &check,
        &format!("action=delete&token={}", token(1)),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(code(&r), "admin_required");
    let r = act(
        &server,
        &admin,
        &"0".repeat(64),
        &format!("action=delete&token={}", token(1)),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        get(&server.url(&format!("/api/images/{}", token(1))), &[]).status,
        200
    );

    // The real forms: delete, dismiss, ban.
    let r = act(
        &server,
        &admin,
        &check,
        &format!("action=delete&token={}", token(1)),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        get(&server.url(&format!("/api/images/{}", token(1))), &[]).status,
        404
    );
    let report = json_of(&kitteh(&sb, &["reports", "list", "--json"]));
    let id = report[0]["id"].as_i64().unwrap();
    let r = act(
        &server,
        &admin,
        &check,
        &format!("action=dismiss&report={id}"),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(
        json_of(&kitteh(&sb, &["reports", "list", "--json"]))
            .as_array()
            .unwrap()
            .is_empty()
    );
    let r = act(
        &server,
        &admin,
        &check,
        &format!("action=ban&token={}", token(2)),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let bans = json_of(&kitteh(&sb, &["ban", "list", "--json"]));
    assert_eq!(bans[0]["cidr"], "127.0.0.1/32");
    // Banned: the admin's own address now, so everything it posts is refused.
    let r = act(
        &server,
        &admin,
        &check,
        &format!("action=delete&token={}", token(0)),
    );
    assert_eq!(r.status, 403);
    assert_eq!(code(&r), "banned");
    ok(&kitteh(&sb, &["ban", "remove", "127.0.0.1"]));

    // A revoked admin key signs in no more.
    ok(&kitteh(&sb, &["keys", "revoke", "root"]));
    let r = act(
        &server,
        &admin,
        &check,
        &format!("action=delete&token={}", token(0)),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        get(&server.url(&format!("/api/images/{}", token(0))), &[]).status,
        200
    );
    assert_eq!(
        scalar(&sb, "SELECT reason FROM bans").as_deref(),
        None,
        "the ban was lifted"
    );
}
