//! Reports and the blocklist: reports taken from browsers and the API,
//! listed and resolved with the commands, and blocked bytes refused with
//! 451 for good.

use crate::fixtures::picture;
use crate::helpers::{Sandbox, Server, code, each_database, files_in, json_of, ok, wait_until};

fn reports(sb: &Sandbox) {
    let server = Server::with_env(sb, &[]);
    let bytes = picture(7);
    let image = server.upload_with(&bytes, &[], &[]).json();
    let name = image["name"].as_str().unwrap().to_string();
    let token = image["token"].as_str().unwrap().to_string();
    let show = server
        .get(&format!("/{name}"), &[("Accept", "text/html")])
        .text();
    assert!(
        show.contains(&format!("href=\"/{name}/report\"")),
        "a Report link"
    );
    let form = server.get(&format!("/{name}/report"), &[("Accept", "text/html")]);
    assert_eq!(form.status, 200);
    for reason in ["illegal", "personal_information", "spam", "other"] {
        assert!(
            form.text().contains(&format!("value=\"{reason}\"")),
            "{reason}"
        );
    }
    // A browser gets a thank-you page; an API client 201 JSON.
    let thanks = server.post_form(
        &format!("/{name}/report"),
        "reason=personal_information&details=my+address",
        &[("Accept", "text/html")],
    );
    assert_eq!(thanks.status, 200);
    assert!(thanks.text().contains("id=\"report-received\""));
    let api = server.post(
        &format!("/{name}/report"),
        br#"{"reason":"illegal","details":"see page"}"#,
        &[("Content-Type", "application/json")],
    );
    assert_eq!(api.status, 201, "{}", api.text());
    assert_eq!(api.json()["report"]["state"], "received");
    // Bad reports are named, unknown images are not found.
    let bad = server.post_form(&format!("/{name}/report"), "reason=boring", &[]);
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
        server
            .post_form(&format!("/{name}/report"), &long, &[])
            .status,
        422
    );
    assert_eq!(
        server
            .post_form("/NoSuchThingKitty/report", "reason=spam", &[])
            .status,
        404
    );
    assert_eq!(
        server
            .post_form(&format!("/{name}/report"), "%%%", &[])
            .status,
        422
    );

    // The same address reporting the same picture again adds nothing.
    let listed = json_of(&sb.run(&["reports", "list", "--json"]));
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["reason"], "personal_information");
    assert_eq!(listed[0]["details"], "my address");
    assert_eq!(listed[0]["token"], token.as_str());
    assert_eq!(api.json()["report"]["id"], listed[0]["id"]);
    let reported = json_of(&sb.run(&["images", "list", "--reported", "--json"]));
    assert_eq!(reported.as_array().unwrap().len(), 1);
    assert_eq!(reported[0]["open_reports"], 1);
    let first = listed[0]["id"].as_i64().unwrap().to_string();
    ok(&sb.run(&["reports", "resolve", &first, "--dismiss"]));
    assert!(
        json_of(&sb.run(&["reports", "list", "--json"]))
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        !sb.run(&["reports", "resolve", &first, "--dismiss"])
            .status
            .success(),
        "resolved already"
    );
    assert!(
        !sb.run(&["reports", "resolve", "999", "--dismiss"])
            .status
            .success()
    );
    // Once dismissed, a new report is a new one.
    let again = server.post_form(&format!("/{name}/report"), "reason=illegal", &[]);
    assert_eq!(again.status, 201);
    let second = again.json()["report"]["id"].as_i64().unwrap().to_string();
    assert_ne!(second, first);
    assert!(
        !sb.run(&["reports", "resolve", &second]).status.success(),
        "--delete or --dismiss"
    );
    ok(&sb.run(&["reports", "resolve", &second, "--delete", "--block"]));
    assert_eq!(
        json_of(&sb.run(&["reports", "list", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let all = json_of(&sb.run(&["reports", "list", "--all", "--json"]));
    assert_eq!(all[0]["resolution"], "dismissed");
    assert_eq!(all[1]["resolution"], "blocked");
    // The name says why it is gone (once the server's cache of the name
    // lapses: the command ran in another process), and the same bytes
    // cannot come back.
    wait_until("the server to see the name blocked", || {
        server
            .get(&format!("/{name}"), &[("Accept", "text/html")])
            .status
            == 451
    });
    assert_eq!(server.get(&format!("/img/{token}"), &[]).status, 451);
    assert!(files_in(&sb.uploads()).is_empty());
    let again = server.upload_with(&bytes, &[], &[]);
    assert_eq!(again.status, 451, "{}", again.text());
    assert_eq!(code(&again), "blocked");
    assert_eq!(sb.count_rows(), 0);
    assert!(files_in(&sb.uploads()).is_empty(), "nothing half-written");
    // Other pictures still go through.
    assert_eq!(server.upload_with(&picture(8), &[], &[]).status, 201);
}

#[test]
fn reports_are_taken_listed_and_resolved_and_blocked_bytes_get_451() {
    each_database(reports);
}
