//! Forms that change state, sent the way an attacker would: from another
//! site, from a sandboxed frame (`Origin: null`), with another key's check
//! token, with a revoked key; and the moderation page's own forms sent
//! for real, outside a browser.

use crate::fixtures::picture;
use crate::helpers::{Reply, Sandbox, Server, code, json_of, ok};

#[test]
fn sign_in_and_forget_refuse_forms_from_other_sites() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(&sb, &[("KITTEH_UPLOADS__ACCESS", "keys")]);
    let key = ok(&sb.run(&["keys", "create", "alice"])).trim().to_string();
    let body = format!("key={key}&next=/");
    let cross: [&[(&str, &str)]; 3] = [
        &[("Sec-Fetch-Site", "cross-site")],
        &[("Origin", "https://evil.example")],
        // A sandboxed frame or a data: page sends `null`.
        &[("Origin", "null")],
    ];
    for path in ["/key", "/key/forget"] {
        for headers in cross {
            let r = server.post_form(path, &body, headers);
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
        let r = server.post_form("/key", &body, &headers);
        assert_eq!(r.status, 303, "{headers:?}: {}", r.text());
        assert!(r.header("Set-Cookie").unwrap().starts_with("kitteh_key="));
        let r = server.post_form("/key/forget", "", &headers);
        assert_eq!(r.status, 303, "{headers:?}: {}", r.text());
    }
}

/// A moderation form as the page writes it, for `key`.
fn act(server: &Server, key: &str, check: &str, fields: &str) -> Reply {
    let cookie = format!("kitteh_key={key}");
    server.post_form(
        "/admin",
        &format!("check={check}&{fields}"),
        &[("Cookie", &cookie), ("Sec-Fetch-Site", "same-origin")],
    )
}

/// The check token the moderation page gives `key`.
fn check_of(server: &Server, key: &str) -> String {
    let page = server
        .get(
            "/admin",
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
    let server = Server::with_env(&sb, &[]);
    let admin = ok(&sb.run(&["keys", "create", "root", "--admin"]))
        .trim()
        .to_string();
    let other = ok(&sb.run(&["keys", "create", "deputy", "--admin"]))
        .trim()
        .to_string();
    let plain = ok(&sb.run(&["keys", "create", "bob"])).trim().to_string();
    let pics: Vec<serde_json::Value> = (0..3)
        .map(|n| server.upload_with(&picture(n), &[], &[]).json())
        .collect();
    let token = |i: usize| pics[i]["token"].as_str().unwrap().to_string();
    let name = pics[0]["name"].as_str().unwrap().to_string();
    // A report whose text is markup: shown as text on the page.
    let r = server.post_form(
        &format!("/{name}/report"),
        "reason=spam&details=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        &[],
    );
    assert_eq!(r.status, 201);
    let check = check_of(&server, &admin);
    let page = server
        .get(
            "/admin",
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
        server.get(&format!("/api/images/{}", token(1)), &[]).status,
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
        server.get(&format!("/api/images/{}", token(1)), &[]).status,
        404
    );
    let report = json_of(&sb.run(&["reports", "list", "--json"]));
    let id = report[0]["id"].as_i64().unwrap();
    let r = act(
        &server,
        &admin,
        &check,
        &format!("action=dismiss&report={id}"),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(
        json_of(&sb.run(&["reports", "list", "--json"]))
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
    let bans = json_of(&sb.run(&["ban", "list", "--json"]));
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
    ok(&sb.run(&["ban", "remove", "127.0.0.1"]));

    // A revoked admin key signs in no more.
    ok(&sb.run(&["keys", "revoke", "root"]));
    let r = act(
        &server,
        &admin,
        &check,
        &format!("action=delete&token={}", token(0)),
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        server.get(&format!("/api/images/{}", token(0)), &[]).status,
        200
    );
    assert_eq!(
        sb.scalar("SELECT reason FROM bans").as_deref(),
        None,
        "the ban was lifted"
    );
}
