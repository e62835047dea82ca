//! Storage consistency on the local folder: the startup sweep, a write that
//! fails, a commit that fails, and `kitteh storage check`.

use std::time::{Duration, SystemTime};

use crate::fixtures;
use crate::helpers::{Sandbox, Server, files_in};

/// Sets a file's modification time `age` into the past.
fn age_file(path: &std::path::Path, age: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn the_sweep_removes_old_orphans_and_leftovers_and_keeps_young_ones_and_claimed_files() {
    let sb = Sandbox::sqlite();
    let token = {
        let server = Server::start(&sb, &["--migrate"]);
        let res = server.upload("a.png", "image/png", &fixtures::png(200, 100));
        let token = res.json()["token"].as_str().unwrap().to_string();
        server.wait_sizes(&token, "ready");
        token
    };
    let claimed = files_in(&sb.uploads());
    assert_eq!(claimed.len(), 4);
    let hour = Duration::from_secs(3600);
    // The image's own files are old too: age alone never condemns a file.
    for name in &claimed {
        age_file(&sb.uploads().join(name), 2 * hour);
    }
    let write = |name: &str, age: Option<Duration>| {
        let path = sb.uploads().join(name);
        std::fs::write(&path, b"orphan").unwrap();
        if let Some(age) = age {
            age_file(&path, age);
        }
    };
    // A crash between writing an object and committing its row, long ago.
    write("oldorphanedkitten.png", Some(2 * hour));
    // A write interrupted before its rename, long ago.
    write(".tmp-00112233aabbccdd", Some(2 * hour));
    // An upload that may be about to commit: too young to judge.
    write("youngorphanedkitten.png", None);
    write(".tmp-44556677eeff0011", None);

    let mut cmd = sb.kitteh();
    cmd.env("KITTEH_STORAGE__SWEEP_MIN_AGE_SECONDS", "3600");
    let server = Server::start_with(cmd, &[]);
    let log = server.wait_for_log("the sweep", |log| log.contains("storage sweep finished"));
    let mut expected = claimed.clone();
    expected.push(".tmp-44556677eeff0011".into());
    expected.push("youngorphanedkitten.png".into());
    expected.sort();
    assert_eq!(files_in(&sb.uploads()), expected);
    let line = log
        .lines()
        .find(|l| l.contains("storage sweep finished"))
        .unwrap();
    assert!(line.contains("removed=2"), "{line}");
    assert_eq!(server.get(&format!("/img/{token}"), &[]).status, 200);
    assert_eq!(server.get(&format!("/img/tiny{token}"), &[]).status, 200);
}

#[test]
fn a_failed_write_to_the_folder_is_a_503_that_stores_nothing() {
    let sb = Sandbox::sqlite();
    let server = Server::start(&sb, &["--migrate"]);
    // The folder turns into a file under the running server: every write
    // fails (root ignores permissions, so a read-only folder would not).
    std::fs::remove_dir_all(sb.uploads()).unwrap();
    std::fs::write(sb.uploads(), b"not a folder").unwrap();
    let res = server.upload("a.png", "image/png", &fixtures::png(64, 64));
    assert_eq!(res.status, 503, "{}", res.text());
    assert_eq!(res.header("retry-after"), Some("5"));
    let err = &res.json()["error"];
    assert_eq!(err["code"], "storage_unavailable");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("nothing was stored")
    );
    assert_eq!(sb.count_rows(), 0, "no row without its object");

    // Once the folder is back, uploads work again.
    std::fs::remove_file(sb.uploads()).unwrap();
    std::fs::create_dir(sb.uploads()).unwrap();
    let res = server.upload("b.png", "image/png", &fixtures::png(64, 64));
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(sb.count_rows(), 1);
}

#[test]
fn a_commit_that_fails_leaves_neither_row_nor_object() {
    let Some(sb) = Sandbox::postgres() else {
        return;
    };
    let server = Server::start(&sb, &["--migrate"]);
    // A deferred constraint trigger runs at COMMIT, after the object has
    // been written: the commit itself fails, for this one file name.
    sb.execute(
        "CREATE FUNCTION refuse_commit() RETURNS trigger AS $$ \
         BEGIN RAISE EXCEPTION 'refused at commit'; END $$ LANGUAGE plpgsql; \
         CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT ON images \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW \
         WHEN (NEW.original_name = 'doomed.png') EXECUTE FUNCTION refuse_commit();",
    );
    let res = server.upload("doomed.png", "image/png", &fixtures::png(64, 64));
    assert_eq!(res.status, 500, "{}", res.text());
    let err = &res.json()["error"];
    assert_eq!(err["code"], "internal");
    assert!(
        !err["message"]
            .as_str()
            .unwrap()
            .contains("refused at commit"),
        "causes of a 500 are logged, never shown: {err}"
    );
    assert!(server.log_text().contains("refused at commit"));
    assert_eq!(sb.count_rows(), 0);
    assert!(
        files_in(&sb.uploads()).is_empty(),
        "{:?}",
        files_in(&sb.uploads())
    );
    let res = server.upload("fine.png", "image/png", &fixtures::png(64, 64));
    assert_eq!(res.status, 201, "{}", res.text());
}

#[test]
fn storage_check_reports_a_working_and_a_broken_folder() {
    let sb = Sandbox::sqlite();
    let out = sb.kitteh().args(["storage", "check"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with(&format!("ok: local folder {}", sb.uploads().display()))
            && text.contains("readable and writable"),
        "{text}"
    );
    assert!(files_in(&sb.uploads()).is_empty(), "the probe is removed");

    let file = sb.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = sb
        .kitteh()
        .env("KITTEH_STORAGE__UPLOADS_DIR", &file)
        .args(["storage", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&file.display().to_string()), "{err}");
}
