//! Listings a page at a time: `images list`, `reports list`, `keys list`
//! and `ban list` take a limit and a cursor, print where the next page
//! starts, stream every page as one JSON array with `--all-pages`, and
//! refuse a limit or cursor they cannot use; `/mine` and `/admin` page the
//! same way. Also: the totals the triggers keep agree with the rows, a ban
//! among thousands is found by lookup, and the sweep moves at most its
//! share per pass over a listing of several batches.

use std::process::Output;

use crate::fixtures::picture;
use crate::helpers::{Sandbox, Server, bearer, each_database, files_in, ok, wait_until};

/// A listing's stdout as JSON, whatever its exit status.
fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The cursor a page printed for the next one.
fn cursor(out: &Output) -> Option<String> {
    let err = String::from_utf8_lossy(&out.stderr);
    err.split("--cursor ").nth(1).map(|rest| {
        rest.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    })
}

/// Every row of a listing, walked page by page with the printed cursors.
fn walk(sb: &Sandbox, args: &[&str], limit: &str) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut argv: Vec<&str> = args.to_vec();
        argv.extend(["--json", "--limit", limit]);
        if let Some(c) = &next {
            argv.extend(["--cursor", c.as_str()]);
        }
        let out = sb.run(&argv);
        let page = stdout_json(&out);
        let rows = page.as_array().unwrap();
        assert!(rows.len() <= limit.parse::<usize>().unwrap(), "{page}");
        all.extend(rows.iter().cloned());
        next = cursor(&out);
        if next.is_none() {
            return all;
        }
    }
}

fn paging(sb: &Sandbox) {
    let server = Server::with_env(sb, &[]);
    let mut tokens = Vec::new();
    let mut names = Vec::new();
    for n in 0..5 {
        let v = server.upload_with(&picture(n), &[], &[]).json();
        tokens.push(v["token"].as_str().unwrap().to_string());
        names.push(v["name"].as_str().unwrap().to_string());
    }
    for name in ["bea", "cid", "ada"] {
        ok(&sb.run(&["keys", "create", name]));
    }
    for cidr in ["203.0.113.0/24", "198.51.100.7", "2001:db8::/32"] {
        ok(&sb.run(&["ban", "add", cidr]));
    }
    for name in names.iter().take(3) {
        let r = server.post_form(&format!("/{name}/report"), "reason=spam", &[]);
        assert_eq!(r.status, 201);
    }
    let reports = walk(sb, &["reports", "list"], "2");
    assert_eq!(reports.len(), 3, "{reports:?}");
    // Images, newest first, two a page.
    let images = walk(sb, &["images", "list"], "2");
    let listed: Vec<&str> = images
        .iter()
        .map(|i| i["token"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = tokens.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);
    // Every page at once: one JSON array.
    let all = stdout_json(&sb.run(&["images", "list", "--json", "--all-pages", "--limit", "2"]));
    assert_eq!(all.as_array().unwrap().len(), 5);
    let keys: Vec<String> = walk(sb, &["keys", "list"], "2")
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["ada", "bea", "cid"]);
    let bans = walk(sb, &["ban", "list"], "1");
    assert_eq!(bans.len(), 3, "{bans:?}");
    // The human table says where the next page starts too.
    let out = sb.run(&["images", "list", "--limit", "3"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        4,
        "a header and three rows"
    );
    assert!(cursor(&out).is_some());
    // Limits and cursors a listing cannot use.
    for (args, says) in [
        (vec!["images", "list", "--limit", "0"], "at least 1"),
        (vec!["images", "list", "--limit", "5000"], "at most 1000"),
        (vec!["images", "list", "--cursor", "abc"], "not a cursor"),
        (vec!["reports", "list", "--cursor", "x"], "not a cursor"),
    ] {
        let out = sb.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{args:?}: {out:?}"
        );
    }
}

#[test]
fn listings_page_with_a_cursor_and_stream_every_page() {
    each_database(paging);
}

#[test]
fn my_uploads_and_the_moderation_page_have_older_pages() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(&sb, &[]);
    let admin = ok(&sb.run(&["keys", "create", "root", "--admin"]))
        .trim()
        .to_string();
    let auth = bearer(&admin);
    for n in 0..65 {
        assert_eq!(
            server
                .upload_with(&picture(n), &[], &[("Authorization", &auth)])
                .status,
            201
        );
    }
    let cookie = format!("kitteh_key={admin}");
    let html = [("Cookie", cookie.as_str()), ("Accept", "text/html")];
    // The moderation page shows 60 uploads and links to the older ones.
    let page = server.get("/admin", &html).text();
    let older = page
        .split("id=\"older\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a link to older uploads")
        .to_string();
    let cards = |page: &str| page.matches("class=\"mod-card\" data-token=").count();
    assert_eq!(cards(&page), 60);
    let rest = server.get(&older, &html).text();
    assert_eq!(cards(&rest), 5);
    assert!(!rest.contains("id=\"older\""));
    // "My uploads" of the key: every upload, across its pages.
    let mine = server.get("/mine", &html).text();
    assert!(mine.matches("data-action=\"delete\"").count() >= 60);
}

/// What the triggers keep, against what the rows say.
fn totals_agree(sb: &Sandbox) {
    let server = Server::with_env(sb, &[("KITTEH_UPLOADS__EXPIRY_INTERVAL_SECONDS", "1")]);
    let key = ok(&sb.run(&["keys", "create", "counted"]))
        .trim()
        .to_string();
    let auth = bearer(&key);
    let mut made = Vec::new();
    for n in 0..6 {
        made.push(
            server
                .upload_with(&picture(n % 4), &[], &[("Authorization", &auth)])
                .json(),
        );
    }
    let short = server
        .upload_with(&picture(9), &[("expires_in", "1s")], &[])
        .json();
    let token = made[1]["token"].as_str().unwrap();
    let secret = made[1]["delete_token"].as_str().unwrap();
    let r = server.delete(token, secret);
    assert_eq!(r.status, 204);
    wait_until("the short one to expire", || {
        server
            .get(
                &format!("/api/images/{}", short["token"].as_str().unwrap()),
                &[],
            )
            .status
            == 410
            && sb.count_rows() == 5
    });
    ok(&sb.run(&["variants", "rebuild", "--all", "--now"]));
    let sql = |q: &str| -> i64 { sb.sql_i64(q)[0] };
    let tally = |name: &str| sql(&format!("SELECT value FROM tallies WHERE name = '{name}'"));
    assert_eq!(tally("images"), sql("SELECT COUNT(*) FROM images"));
    assert_eq!(tally("sizes"), sql("SELECT COUNT(*) FROM variants"));
    assert_eq!(
        tally("stored_bytes"),
        sql(
            "SELECT CAST(COALESCE((SELECT SUM(size) FROM images), 0) + COALESCE((SELECT SUM(size) FROM variants), 0) AS BIGINT)"
        )
    );
    for state in ["pending", "running", "done", "failed"] {
        assert_eq!(
            tally(&format!("jobs_{state}")),
            sql(&format!(
                "SELECT COUNT(*) FROM variant_jobs WHERE state = '{state}'"
            )),
            "{state}"
        );
    }
    let keys = stdout_json(&sb.run(&["keys", "list", "--json"]));
    assert_eq!(
        keys[0]["uploads"].as_i64().unwrap(),
        sql("SELECT COUNT(*) FROM images WHERE key_id IS NOT NULL")
    );
    assert_eq!(
        keys[0]["bytes"].as_i64().unwrap(),
        sql("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM images WHERE key_id IS NOT NULL")
    );
    // The metrics read the same totals.
    let _ = server;
}

#[test]
fn the_totals_kept_as_rows_change_agree_with_the_rows() {
    each_database(totals_agree);
}

#[test]
fn a_ban_among_thousands_is_found_by_lookup() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(
        &sb,
        &[("KITTEH_SERVER__TRUSTED_PROXIES", "[\"127.0.0.1\"]")],
    );
    let mut values = Vec::new();
    for i in 0..20_000u32 {
        let net = format!("10.{}.{}.0/24", i / 256, i % 256);
        values.push(format!("('{net}', 'seeded', '2026-01-01 00:00:00+00:00')"));
    }
    for chunk in values.chunks(1000) {
        sb.execute(&format!(
            "INSERT INTO bans (cidr, reason, created_at) VALUES {}",
            chunk.join(", ")
        ));
    }
    ok(&sb.run(&["ban", "add", "2001:db8:7::/48"]));
    for (addr, status) in [
        ("10.3.7.200", 403),
        ("10.78.31.1", 403),
        ("10.79.0.1", 201),
        ("2001:db8:7:1::9", 403),
        ("2001:db8:8::1", 201),
        ("192.0.2.1", 201),
    ] {
        let r = server.upload_with(
            &picture(1 + status as u32 % 7),
            &[],
            &[("X-Forwarded-For", addr)],
        );
        assert_eq!(r.status, status, "{addr}: {}", r.text());
    }
}

#[test]
fn the_sweep_moves_at_most_its_share_a_pass_over_several_batches() {
    let sb = Sandbox::sqlite();
    drop(Server::with_env(&sb, &[]));
    // 600 images' rows and objects (a little file each), and 80 old
    // orphans: the share of one pass is 5 % of 600, 30.
    let uploads = sb.uploads();
    let mut rows = Vec::new();
    for i in 0..600 {
        let token = format!("seeded{i:04}");
        std::fs::write(uploads.join(format!("{token}.png")), b"x").unwrap();
        rows.push(format!(
            "('x', '{token}', 'Seeded', 'Kitty', 'image/png', '{token}.png', 1, '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00', 1, 1, 'h{i}', 'd')"
        ));
    }
    for chunk in rows.chunks(200) {
        sb.execute(&format!(
            "INSERT INTO images (original_name, token, generated_name, type, content_type, path, size, inserted_at, updated_at, width, height, sha256, delete_token_hash) VALUES {}",
            chunk.join(", ")
        ));
    }
    for i in 0..80 {
        std::fs::write(uploads.join(format!("orphan{i:03}.png")), b"o").unwrap();
    }
    let trashed = || {
        std::fs::read_dir(uploads.join(".trash"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let env = [("KITTEH_STORAGE__SWEEP_MIN_AGE_SECONDS", "0")];
    for (pass, expected) in [(1, 30), (2, 60), (3, 80), (4, 80)] {
        let mut cmd = sb.kitteh();
        cmd.envs(env).args(["storage", "fsck", "--repair"]);
        let out = cmd.output().unwrap();
        assert_eq!(
            trashed(),
            expected,
            "after pass {pass}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert_eq!(files_in(&uploads).len(), 600, "every claimed object stays");
}
