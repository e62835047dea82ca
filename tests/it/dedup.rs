//! One copy of each picture: identical stored bytes are kept once, for
//! every name, on both databases and both storage backends, under
//! concurrent uploads and deletes, with expiry, and after the migration
//! that moves an existing installation over.

use std::thread;

use crate::fixtures;
use crate::helpers::{Sandbox, Server, files_in, get, wait_until};

/// Every setup: SQLite and PostgreSQL, each with a folder and a bucket.
fn every_setup(test: impl Fn(&Sandbox)) {
    test(&Sandbox::sqlite());
    for sb in [
        Sandbox::postgres(),
        Sandbox::sqlite_s3(),
        Sandbox::postgres_s3(),
    ]
    .into_iter()
    .flatten()
    {
        test(&sb);
    }
}

/// Deletes `image` (its API answer) through `server` with its own delete
/// token; returns the status.
fn delete(server: &Server, image: &serde_json::Value) -> u16 {
    server
        .delete(
            image["token"].as_str().unwrap(),
            image["delete_token"].as_str().unwrap(),
        )
        .status
}

/// The image and each of its sizes answer 200 with the bytes it had.
fn serves(image: &serde_json::Value, original: &[u8]) {
    let got = get(image["image_url"].as_str().unwrap(), &[]);
    assert_eq!(got.status, 200, "{image}");
    assert_eq!(got.body, original);
    for size in image["sizes"].as_array().unwrap() {
        let got = get(size["url"].as_str().unwrap(), &[]);
        assert_eq!(got.status, 200, "{size}");
    }
}

fn once(sb: &Sandbox) {
    let server = Server::with_env(sb, &[]);
    let png = fixtures::png(640, 480);
    let first = server.upload("a.png", "image/png", &png).json();
    let objects = sb.stored_names();
    assert_eq!(
        objects.len(),
        4,
        "the original and three sizes: {objects:?}"
    );
    let second = server.upload("b.png", "image/png", &png).json();
    assert_ne!(first["token"], second["token"], "its own name");
    assert_ne!(
        first["delete_token"], second["delete_token"],
        "its own delete token"
    );
    assert_eq!(first["sha256"], second["sha256"]);
    assert_eq!(second["original_name"], "b.png");
    assert_eq!(second["blurhash"], first["blurhash"]);
    assert!(
        second["sizes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "ready"),
        "{second}"
    );
    assert_eq!(sb.stored_names(), objects, "nothing stored twice");
    let stored = get(first["image_url"].as_str().unwrap(), &[]).body;
    serves(&second, &stored);
    assert_eq!(
        get(
            second["page_url"].as_str().unwrap(),
            &[("Accept", "text/html")]
        )
        .status,
        200
    );
    // Deleting one name leaves the other whole; the last takes the bytes.
    assert_eq!(delete(&server, &first), 204);
    wait_until("the first name to go", || {
        get(first["image_url"].as_str().unwrap(), &[]).status == 404
    });
    serves(&second, &stored);
    assert_eq!(sb.stored_names(), objects);
    assert_eq!(delete(&server, &second), 204);
    sb.assert_eventually_empty();
    assert_eq!(sb.count_rows(), 0);
}

#[test]
fn identical_uploads_are_stored_once_and_go_with_the_last_name() {
    every_setup(once);
}

fn concurrent(sb: &Sandbox) {
    let server = Server::with_env(sb, &[]);
    let png = fixtures::png(500, 300);
    let answers: Vec<serde_json::Value> = thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (server, png) = (&server, &png);
                s.spawn(move || {
                    let r = server.upload(&format!("same{i}.png"), "image/png", png);
                    assert_eq!(r.status, 201, "{}", r.text());
                    r.json()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut tokens: Vec<&str> = answers
        .iter()
        .map(|a| a["token"].as_str().unwrap())
        .collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 8, "eight names");
    wait_until("every size to be ready", || {
        answers.iter().all(|a| {
            get(a["api_url"].as_str().unwrap(), &[]).json()["sizes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["state"] == "ready")
        })
    });
    assert_eq!(
        sb.stored_names().len(),
        4,
        "one original and its sizes: {:?}",
        sb.stored_names()
    );
    let stored = get(answers[0]["image_url"].as_str().unwrap(), &[]).body;
    for a in &answers {
        serves(&get(a["api_url"].as_str().unwrap(), &[]).json(), &stored);
    }

    // Deletes racing uploads of the same bytes: whatever wins, every name
    // left serves its picture and its sizes, and nothing is left behind.
    // (The race itself is forced with a hook in `races`.)
    for round in 0..6 {
        let victim = server.upload("v.png", "image/png", &png);
        assert_eq!(victim.status, 201, "round {round}: {}", victim.text());
        let victim = victim.json();
        // The eight above are gone for this part: only these two names.
        if round == 0 {
            for a in &answers {
                assert_eq!(delete(&server, a), 204);
            }
        }
        let (deleted, newcomer) = thread::scope(|s| {
            let d = s.spawn(|| delete(&server, &victim));
            let u = s.spawn(|| {
                let r = server.upload("n.png", "image/png", &png);
                assert_eq!(r.status, 201, "round {round}: {}", r.text());
                r.json()
            });
            (d.join().unwrap(), u.join().unwrap())
        });
        assert_eq!(deleted, 204);
        let api = newcomer["api_url"]
            .as_str()
            .unwrap_or_else(|| panic!("round {round}: {newcomer}"));
        let now = get(api, &[]).json();
        assert!(now["image_url"].is_string(), "round {round}: {now}");
        serves(&now, &stored);
        assert_eq!(delete(&server, &newcomer), 204);
        sb.assert_eventually_empty();
    }
}

#[test]
fn concurrent_uploads_of_one_picture_store_it_once_and_deletes_never_take_it_from_a_name() {
    every_setup(concurrent);
}

fn sizes_from_a_job(sb: &Sandbox) {
    // Sizes made by a job, which waits a second before working, so the
    // second upload comes while the first one's sizes are not made yet.
    let server = Server::with_env(
        sb,
        &[
            ("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0"),
            ("KITTEH_VARIANTS__WORKERS", "1"),
            ("KITTEH_VARIANTS__WORK_DELAY_MS", "1000"),
        ],
    );
    let png = fixtures::png(420, 300);
    let first = server.upload("a.png", "image/png", &png).json();
    let second = server.upload("b.png", "image/png", &png).json();
    assert!(
        second["sizes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "pending"),
        "{second}"
    );
    for image in [&first, &second] {
        let api = image["api_url"].as_str().unwrap().to_string();
        wait_until("its sizes", || {
            get(&api, &[]).json()["sizes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["state"] == "ready")
        });
    }
    // The line is written once the job's transaction is done, which may be
    // a moment after both names' sizes read as ready.
    server.wait_for_log("the job to share its sizes", |log| {
        log.contains("sizes shared with a name of the same bytes")
    });
    assert_eq!(sb.stored_names().len(), 4, "{:?}", sb.stored_names());
    let second = get(second["api_url"].as_str().unwrap(), &[]).json();
    assert!(second["blurhash"].is_string());
    let stored = get(first["image_url"].as_str().unwrap(), &[]).body;
    serves(&second, &stored);
}

#[test]
fn a_job_gives_a_later_name_of_the_same_picture_the_sizes_it_made_once() {
    every_setup(sizes_from_a_job);
}

#[test]
fn an_expiring_name_takes_the_bytes_only_when_it_is_the_last() {
    let sb = Sandbox::sqlite();
    let server = Server::with_env(&sb, &[("KITTEH_UPLOADS__EXPIRY_INTERVAL_SECONDS", "1")]);
    let png = fixtures::png(300, 200);
    let short = server.upload_with(&png, &[("expires_in", "2s")], &[]);
    assert_eq!(short.status, 201, "{}", short.text());
    let short = short.json();
    let kept = server.upload("k.png", "image/png", &png).json();
    let objects = sb.stored_names();
    assert_eq!(objects.len(), 4);
    wait_until("the short one to expire", || sb.count_rows() == 1);
    assert_eq!(get(short["image_url"].as_str().unwrap(), &[]).status, 410);
    let stored = get(kept["image_url"].as_str().unwrap(), &[]).body;
    serves(&kept, &stored);
    assert_eq!(sb.stored_names(), objects, "the kept name still has them");
    // The other way round: the one that lives is deleted, the expiring one
    // takes the bytes when it goes.
    let short = server
        .upload_with(&png, &[("expires_in", "2s")], &[])
        .json();
    assert_eq!(short["sha256"], kept["sha256"]);
    assert_eq!(delete(&server, &kept), 204);
    wait_until("the expiring one to go too", || sb.count_rows() == 0);
    sb.assert_eventually_empty();
}

#[test]
fn the_migration_moves_copies_made_before_it_to_one_object_and_loses_nothing() {
    let sb = Sandbox::sqlite();
    let png = fixtures::png(400, 300);
    let first = {
        let server = Server::with_env(&sb, &[]);
        server.upload("old.png", "image/png", &png).json()
    };
    // Back to the schema before the migration (and the one after it), and
    // a second copy of the same picture as the code of that time stored it:
    // its own objects.
    let down = sb
        .kitteh()
        .args(["migrate", "down", "-n", "2"])
        .output()
        .unwrap();
    assert!(down.status.success(), "{down:?}");
    let token = first["token"].as_str().unwrap();
    let copy = "copiedbeforethemigration";
    let uploads = sb.uploads();
    for name in files_in(&uploads) {
        if let Some(rest) = name.strip_prefix(token) {
            std::fs::copy(uploads.join(&name), uploads.join(format!("{copy}{rest}"))).unwrap();
        }
    }
    sb.execute(&format!(
        "INSERT INTO images (original_name, token, generated_name, type, content_type, path, size, inserted_at, updated_at, width, height, sha256, delete_token_hash) \
         SELECT 'copy.png', '{copy}', 'CopiedBeforeTheMigration', type, content_type, '{copy}.png', size, inserted_at, updated_at, width, height, sha256, delete_token_hash FROM images WHERE token = '{token}'"
    ));
    sb.execute(&format!(
        "INSERT INTO variants (image_id, name, width, height, path, size, sha256, created_at) \
         SELECT (SELECT id FROM images WHERE token = '{copy}'), v.name, v.width, v.height, REPLACE(v.path, '{token}', '{copy}'), v.size, v.sha256, v.created_at \
         FROM variants v JOIN images i ON i.id = v.image_id WHERE i.token = '{token}'"
    ));
    assert_eq!(files_in(&uploads).len(), 8, "two copies of four objects");
    let up = sb.kitteh().args(["migrate"]).output().unwrap();
    assert!(up.status.success(), "{up:?}");
    // Both names serve the one copy; the other copy is an orphan that the
    // sweep moves to the trash, not something deleted.
    let server = Server::with_env(&sb, &[("KITTEH_STORAGE__SWEEP_MIN_AGE_SECONDS", "0")]);
    let copied = server.get(&format!("/api/images/{copy}"), &[]).json();
    let stored = server.get(&format!("/img/{token}"), &[]).body;
    serves(&copied, &stored);
    assert!(
        copied["sizes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["url"].as_str().unwrap().contains(copy))
    );
    wait_until("the sweep to move the copies to the trash", || {
        files_in(&uploads).len() == 4
    });
    let trash = uploads.join(".trash");
    let trashed: Vec<String> = walk(&trash);
    assert_eq!(
        trashed.iter().filter(|n| n.contains(copy)).count(),
        4,
        "{trashed:?}"
    );
    assert_eq!(delete(&server, &first), 204);
    serves(&copied, &stored);
}

/// File names under `dir`, at any depth.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out
}
