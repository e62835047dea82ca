//! The S3 backend against a real Garage server (started by scripts/test.sh):
//! the upload, serve, delete and variants paths with bytes in a bucket,
//! `kitteh storage migrate`, an unreachable bucket, and two replicas sharing
//! PostgreSQL and one bucket.

use std::time::{Duration, Instant};

use crate::fixtures;
use crate::helpers::{Sandbox, Server, files_in, no_redirect_agent, wait_until};

#[test]
fn sizes_are_made_in_the_bucket_and_deleted_with_the_image() {
    let Some(sb) = Sandbox::sqlite_s3() else {
        return;
    };
    let server = Server::start(&sb, &["--migrate"]);
    let ready = server.get("/readyz", &[]).json();
    assert_eq!(ready["checks"]["storage"]["ok"], true, "{ready}");
    // Which bucket is the operator's to know: `kitteh doctor` says.
    let doctor = sb.kitteh().arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(doctor.status.success(), "{text}");
    assert!(
        text.contains("ok   storage: backend: s3 bucket kitteh-test-"),
        "{text}"
    );

    let res = server.upload("a.jpg", "image/jpeg", &fixtures::jpeg(700, 500));
    assert_eq!(res.status, 201, "{}", res.text());
    let created = res.json();
    let token = created["token"].as_str().unwrap().to_string();
    server.wait_sizes(&token, "ready");
    let expected: Vec<String> = vec![
        format!("{token}-large.jpg"),
        format!("{token}-monstrous.jpg"),
        format!("{token}-tiny.jpg"),
        format!("{token}.jpg"),
    ];
    assert_eq!(sb.stored_names(), expected);
    for (size, (w, h)) in [
        ("tiny", (90, 64)),
        ("large", (300, 214)),
        ("monstrous", (600, 429)),
    ] {
        let served = server.get(&format!("/img/{size}{token}"), &[]);
        assert_eq!(served.status, 200, "{size}");
        assert_eq!(
            Some(served.body.clone()),
            sb.stored(&format!("{token}-{size}.jpg")),
            "{size}"
        );
        let img = image::load_from_memory(&served.body).unwrap();
        assert_eq!((img.width(), img.height()), (w, h), "{size}");
    }
    let gone = server.delete(&token, created["delete_token"].as_str().unwrap());
    assert_eq!(gone.status, 204);
    sb.assert_eventually_empty();
    assert_eq!(sb.count_rows(), 0);
}

/// A noise PNG does not compress, so this one is above the 8 MiB part size
/// and goes up as a multipart upload.
#[test]
fn a_large_upload_goes_up_in_parts_and_comes_back_whole() {
    let Some(sb) = Sandbox::sqlite_s3() else {
        return;
    };
    let server = Server::start(&sb, &["--migrate"]);
    let noise =
        image::RgbaImage::from_fn(1700, 1400, |_, _| image::Rgba(rand::random::<[u8; 4]>()));
    let mut png = std::io::Cursor::new(Vec::new());
    noise.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let png = png.into_inner();
    assert!(png.len() > 9 << 20, "{} bytes", png.len());
    let res = server.upload("noise.png", "image/png", &png);
    assert_eq!(res.status, 201, "{}", res.text());
    let token = res.json()["token"].as_str().unwrap().to_string();
    let stored = sb.stored(&format!("{token}.png")).unwrap();
    assert_eq!(stored.len() as u64, res.json()["bytes"].as_u64().unwrap());
    let served = server.get(&format!("/img/{token}"), &[]);
    assert_eq!(served.status, 200);
    assert_eq!(served.body, stored);
    // A multipart object's ETag is `<md5 of the part md5s>-<part count>`.
    let raw = sb.bucket.as_ref().unwrap().raw();
    let meta = crate::helpers::block_on(object_store::ObjectStoreExt::head(
        &raw,
        &object_store::path::Path::from(format!("{token}.png")),
    ))
    .unwrap();
    let etag = meta.e_tag.unwrap();
    assert!(etag.trim_matches('"').ends_with("-2"), "{etag}");
}

#[test]
fn an_unreachable_bucket_is_a_503_that_stores_nothing() {
    let Some(sb) = Sandbox::sqlite_s3() else {
        return;
    };
    // Nothing listens there: every call fails fast, and is retried once.
    let dead = format!("http://127.0.0.1:{}", crate::helpers::free_port());
    let kitteh = || {
        let mut cmd = sb.kitteh();
        cmd.env("KITTEH_STORAGE__S3__ENDPOINT", &dead)
            .env("KITTEH_STORAGE__S3__TIMEOUT_SECONDS", "2")
            .env("KITTEH_STORAGE__S3__MAX_RETRIES", "1")
            .env("KITTEH_VARIANTS__WORKERS", "0")
            .env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0");
        cmd
    };
    assert!(kitteh().arg("migrate").status().unwrap().success());
    let server = Server::start_unready(kitteh(), &[]);
    let ready = server.get("/readyz", &[]);
    assert_eq!(ready.status, 503);
    let body = ready.json();
    assert!(
        body["failed"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("storage")),
        "{body}"
    );
    // The endpoint and the raw error stay out of the public answer, and
    // go to the log and to `kitteh doctor`.
    assert!(!ready.text().contains(&dead), "{body}");
    assert!(server.log_text().contains("s3 put"));
    let doctor = kitteh().arg("doctor").output().unwrap();
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert_eq!(doctor.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL storage") && text.contains("s3 put"),
        "{text}"
    );

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
    // The real bucket saw nothing either.
    assert!(sb.stored_names().is_empty());
}

#[test]
fn storage_migrate_copies_twenty_images_to_s3_verifies_and_resumes() {
    let Some(s3) = Sandbox::sqlite_s3() else {
        return;
    };
    // The same database and folder, first without the bucket: a local install.
    let bucket = s3.bucket.unwrap();
    let local = Sandbox {
        dir: s3.dir,
        database_url: s3.database_url,
        bucket: None,
    };
    let server = Server::start(&local, &["--migrate"]);
    let mut tokens = Vec::new();
    for i in 0..20u32 {
        let jpeg = fixtures::jpeg(400 + i, 300);
        let res = server.upload(&format!("{i}.jpg"), "image/jpeg", &jpeg);
        assert_eq!(res.status, 201, "{}", res.text());
        tokens.push(res.json()["token"].as_str().unwrap().to_string());
    }
    for token in &tokens {
        server.wait_sizes(token, "ready");
    }
    drop(server);
    let local_names = local.stored_names();
    assert_eq!(local_names.len(), 80);

    let migrate = |expect_success: bool| {
        let mut cmd = local.kitteh();
        bucket.configure(&mut cmd);
        // Still configured for local: the copy runs before the switch.
        cmd.env("KITTEH_STORAGE__BACKEND", "local")
            .args(["storage", "migrate", "--to", "s3"]);
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.success(), expect_success, "{stdout}\n{stderr}");
        eprintln!("{stdout}{stderr}");
        stdout
    };
    let first = migrate(true);
    assert!(
        first.contains("copied 80, skipped 0 (already there, SHA-256 verified), failed 0"),
        "{first}"
    );
    assert_eq!(bucket.names(), local_names);
    for name in &local_names {
        assert_eq!(bucket.get(name), local.stored(name), "{name}");
    }

    // An interrupted or damaged copy: one object missing, one truncated.
    bucket.delete(&local_names[0]);
    let damaged = &local_names[1];
    let bytes = bucket.get(damaged).unwrap();
    bucket.put(damaged, &bytes[..bytes.len() / 2]);
    let second = migrate(true);
    assert!(
        second.contains("copied 2, skipped 78 (already there, SHA-256 verified), failed 0"),
        "{second}"
    );
    assert_eq!(bucket.get(damaged), local.stored(damaged));

    // A source file that no longer matches its recorded checksum is
    // reported, not spread.
    let rotten = format!("{}.jpg", tokens[5]);
    std::fs::write(local.uploads().join(&rotten), b"not the image any more").unwrap();
    bucket.delete(&rotten);
    let third = migrate(false);
    assert!(third.contains("copied 0, skipped 79"), "{third}");
    assert!(third.contains("failed 1"), "{third}");
    assert_eq!(bucket.get(&rotten), None);

    // Switched over, the server serves everything from the bucket.
    let mut cmd = local.kitteh();
    bucket.configure(&mut cmd);
    let server = Server::start_with(cmd, &[]);
    std::fs::remove_dir_all(local.uploads()).unwrap();
    for token in tokens.iter().filter(|t| **t != tokens[5]) {
        let original = server.get(&format!("/img/{token}"), &[]);
        assert_eq!(original.status, 200);
        assert_eq!(Some(original.body), bucket.get(&format!("{token}.jpg")));
        let tiny = server.get(&format!("/img/tiny{token}"), &[]);
        assert_eq!(tiny.status, 200);
        assert_eq!(Some(tiny.body), bucket.get(&format!("{token}-tiny.jpg")));
    }
}

#[test]
fn with_public_url_images_redirect_to_the_bucket_but_downloads_stream() {
    let Some(sb) = Sandbox::sqlite_s3() else {
        return;
    };
    let mut cmd = sb.kitteh();
    cmd.env(
        "KITTEH_STORAGE__S3__PUBLIC_URL",
        "https://cdn.example.test/cats/",
    );
    let server = Server::start_with(cmd, &["--migrate"]);
    let res = server.upload("a.png", "image/png", &fixtures::png(80, 60));
    let token = res.json()["token"].as_str().unwrap().to_string();
    let reply = no_redirect_agent()
        .get(server.url(&format!("/img/{token}")))
        .call()
        .unwrap();
    assert_eq!(reply.status(), 302);
    assert_eq!(
        reply.headers().get("location").unwrap().to_str().unwrap(),
        format!("https://cdn.example.test/cats/{token}.png")
    );
    let download = server.get(&format!("/img/{token}?download"), &[]);
    assert_eq!(download.status, 200);
    assert_eq!(Some(download.body), sb.stored(&format!("{token}.png")));
}

/// Two replicas, one PostgreSQL, one bucket: nothing lives on either
/// replica's disk, any replica serves and deletes any image, and jobs run
/// once, including one whose replica is killed in the middle of it.
#[test]
fn two_replicas_share_postgres_and_a_bucket() {
    let Some(sb) = Sandbox::postgres_s3() else {
        return;
    };
    // Both replicas leave every size to the shared queue: that is what
    // this test is about.
    let lease = |cmd: &mut std::process::Command| {
        cmd.env("KITTEH_VARIANTS__LEASE_SECONDS", "2")
            .env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0");
    };
    let mut a_cmd = sb.kitteh();
    lease(&mut a_cmd);
    // A long cache lifetime on A: only B's notice can make A forget a
    // deleted image within the few seconds the check below allows.
    a_cmd.env("KITTEH_CACHE__METADATA_TTL_MS", "10000");
    let a = Server::start_with(a_cmd, &["--migrate"]);
    let mut b_cmd = sb.kitteh();
    lease(&mut b_cmd);
    // B's working folder differs from A's: nothing may depend on a disk.
    b_cmd.env("KITTEH_STORAGE__UPLOADS_DIR", sb.path().join("b-uploads"));
    let b = Server::start_with(b_cmd, &[]);

    let mut created = Vec::new();
    for i in 0..10 {
        let through = if i % 2 == 0 { &a } else { &b };
        // Distinct pictures: the same bytes would be stored once.
        let png = fixtures::png(640 + i, 400);
        let res = through.upload(&format!("{i}.png"), "image/png", &png);
        assert_eq!(res.status, 201, "{}", res.text());
        created.push(res.json());
    }
    for (i, v) in created.iter().enumerate() {
        let token = v["token"].as_str().unwrap();
        // Uploaded through one replica, fetched through the other.
        let other = if i % 2 == 0 { &b } else { &a };
        let fetched = other.get(&format!("/img/{token}"), &[]);
        assert_eq!(fetched.status, 200);
        assert_eq!(Some(fetched.body), sb.stored(&format!("{token}.png")));
        other.wait_sizes(token, "ready");
    }
    assert_eq!(
        sb.sql_i64("SELECT CAST(attempts AS BIGINT) FROM variant_jobs"),
        vec![1; 10],
        "every job was claimed exactly once"
    );
    let worked = |s: &Server| s.log_text().matches("variants done").count();
    // The line follows the job's commit: wait for it, then count.
    wait_until("every job's line", || worked(&a) + worked(&b) >= 10);
    assert_eq!(worked(&a) + worked(&b), 10, "every job was done once");
    // Each replica's workers are woken by its own uploads, so both share
    // the work.
    assert!(
        worked(&a) > 0 && worked(&b) > 0,
        "A did {}, B did {}",
        worked(&a),
        worked(&b)
    );
    assert_eq!(sb.stored_names().len(), 40);
    assert!(!sb.uploads().exists(), "replica A wrote to its disk");
    assert!(
        !sb.path().join("b-uploads").exists(),
        "replica B wrote to its disk"
    );

    // Delete through B: the row, the original and every size leave the bucket.
    let first = &created[0];
    let token = first["token"].as_str().unwrap();
    // A serves it from its cache first, so that after the delete A's answer
    // can change only because B told it, not because A asked the database.
    for _ in 0..3 {
        assert_eq!(a.get(&format!("/img/{token}"), &[]).status, 200);
    }
    let gone = b.delete(token, first["delete_token"].as_str().unwrap());
    assert_eq!(gone.status, 204);
    assert!(
        !sb.stored_names().iter().any(|n| n.starts_with(token)),
        "{:?}",
        sb.stored_names()
    );
    assert_eq!(
        sb.sql_i64(&format!(
            "SELECT COUNT(*) FROM images WHERE token = '{token}'"
        )),
        vec![0]
    );
    // A hears of it through PostgreSQL within about a second.
    let deadline = Instant::now() + Duration::from_secs(3);
    while a.get(&format!("/img/{token}"), &[]).status != 404 {
        assert!(Instant::now() < deadline, "A still serves a deleted image");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(a);
    drop(b);

    // kill -9 in the middle of a job: a slow replica claims it and dies;
    // the other finishes it once the lease has run out.
    let mut slow = sb.kitteh();
    lease(&mut slow);
    slow.env("KITTEH_VARIANTS__WORK_DELAY_MS", "60000")
        .env("KITTEH_VARIANTS__INLINE_MAX_PIXELS", "0");
    let mut slow = Server::start_with(slow, &[]);
    let res = slow.upload("late.png", "image/png", &fixtures::png(700, 400));
    let token = res.json()["token"].as_str().unwrap().to_string();
    slow.wait_sizes(&token, "running");
    let mut other = sb.kitteh();
    lease(&mut other);
    let other = Server::start_with(other, &[]);
    let job = |token: &str| {
        sb.sql_i64(&format!(
                "SELECT CAST(j.attempts AS BIGINT) FROM variant_jobs j JOIN images i ON i.id = j.image_id WHERE i.token = '{token}'"
            ),
        )
    };
    let lease_until = |token: &str| {
        sb.sql_i64(&format!(
                "SELECT j.lease_until FROM variant_jobs j JOIN images i ON i.id = j.image_id WHERE i.token = '{token}'"
            ),
        )[0]
    };
    // The job is held: the holder renews its lease by heartbeats, so the
    // other replica never finds it expired. Watch three renewals (each
    // pushes the lease forward) rather than trusting a sleep to land
    // between them.
    let mut seen = lease_until(&token);
    for _ in 0..3 {
        wait_until("a heartbeat", || lease_until(&token) > seen);
        seen = lease_until(&token);
        assert_eq!(job(&token), vec![1], "the live holder keeps its lease");
    }
    slow.child.kill().unwrap();
    slow.child.wait().unwrap();
    let v = other.wait_sizes(&token, "ready");
    assert_eq!(v["sizes"][0]["state"], "ready");
    assert_eq!(
        job(&token),
        vec![2],
        "the first attempt died, the second finished"
    );
    other.wait_for_log("the job's line", |log| log.contains("variants done"));
    assert_eq!(other.log_text().matches("variants done").count(), 1);
    for size in ["tiny", "large", "monstrous"] {
        assert!(
            sb.stored(&format!("{token}-{size}.png")).is_some(),
            "{size}"
        );
    }
}

#[test]
fn objects_in_the_bucket_carry_their_content_type_and_cache_control() {
    let Some(sb) = Sandbox::sqlite_s3() else {
        return;
    };
    let server = Server::start(&sb, &["--migrate"]);
    let res = server.upload("a.webp", "image/webp", &fixtures::webp(400, 300));
    assert_eq!(res.status, 201, "{}", res.text());
    let token = res.json()["token"].as_str().unwrap().to_string();
    server.wait_sizes(&token, "ready");
    let raw = sb.bucket.as_ref().unwrap().raw();
    for name in [format!("{token}.webp"), format!("{token}-tiny.webp")] {
        let got = crate::helpers::block_on(object_store::ObjectStoreExt::get(
            &raw,
            &object_store::path::Path::from(name.as_str()),
        ))
        .unwrap();
        let attribute = |a: &object_store::Attribute| {
            got.attributes
                .get(a)
                .map(|v| v.to_string())
                .unwrap_or_else(|| panic!("{name} has no {a:?}"))
        };
        assert_eq!(
            attribute(&object_store::Attribute::ContentType),
            "image/webp",
            "{name}"
        );
        assert_eq!(
            attribute(&object_store::Attribute::CacheControl),
            "public, max-age=31536000, immutable",
            "{name}"
        );
    }
}

#[test]
fn storage_check_reports_a_working_and_a_dead_bucket() {
    let Some(sb) = Sandbox::sqlite_s3() else {
        return;
    };
    let out = sb.kitteh().args(["storage", "check"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bucket = &sb.bucket.as_ref().unwrap().config.bucket;
    assert!(
        text.starts_with(&format!("ok: s3 bucket {bucket}"))
            && text.contains("readable and writable"),
        "{text}"
    );
    assert!(sb.stored_names().is_empty(), "the probe object is removed");

    let dead = format!("http://127.0.0.1:{}", crate::helpers::free_port());
    let out = sb
        .kitteh()
        .env("KITTEH_STORAGE__S3__ENDPOINT", &dead)
        .env("KITTEH_STORAGE__S3__TIMEOUT_SECONDS", "2")
        .env("KITTEH_STORAGE__S3__MAX_RETRIES", "0")
        .args(["storage", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not writable") && err.contains(&dead),
        "{err}"
    );
}

#[test]
fn storage_migrate_to_local_copies_the_bucket_back_with_several_jobs() {
    let Some(sb) = Sandbox::sqlite_s3() else {
        return;
    };
    let server = Server::start(&sb, &["--migrate"]);
    let mut tokens = Vec::new();
    for i in 0..6u32 {
        let res = server.upload(
            &format!("{i}.png"),
            "image/png",
            &fixtures::png(300 + i, 200),
        );
        assert_eq!(res.status, 201, "{}", res.text());
        let token = res.json()["token"].as_str().unwrap().to_string();
        server.wait_sizes(&token, "ready");
        tokens.push(token);
    }
    drop(server);
    let in_bucket = sb.stored_names();
    assert_eq!(in_bucket.len(), 24);

    // Still configured for the bucket: the copy runs before the switch.
    let out = sb
        .kitteh()
        .args(["storage", "migrate", "--to", "local", "--jobs", "3"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("copied 24, skipped 0 (already there, SHA-256 verified), failed 0"),
        "{stdout}"
    );
    assert!(stderr.contains("storage.backend = \"local\""), "{stderr}");
    assert_eq!(files_in(&sb.uploads()), in_bucket);
    for name in &in_bucket {
        assert_eq!(
            std::fs::read(sb.uploads().join(name)).ok(),
            sb.stored(name),
            "{name}"
        );
    }
    // Switched to the folder, with the bucket emptied, everything is served.
    for name in &in_bucket {
        sb.bucket.as_ref().unwrap().delete(name);
    }
    let local = Sandbox {
        dir: sb.dir,
        database_url: sb.database_url,
        bucket: None,
    };
    let server = Server::start(&local, &[]);
    for token in &tokens {
        for prefix in ["", "tiny"] {
            let res = server.get(&format!("/img/{prefix}{token}"), &[]);
            assert_eq!(res.status, 200, "{prefix}{token}");
        }
    }
}

#[test]
fn the_sweep_removes_old_orphans_from_the_bucket_and_keeps_what_rows_claim() {
    let Some(sb) = Sandbox::sqlite_s3() else {
        return;
    };
    let token = {
        let server = Server::start(&sb, &["--migrate"]);
        let res = server.upload("a.png", "image/png", &fixtures::png(200, 100));
        let token = res.json()["token"].as_str().unwrap().to_string();
        server.wait_sizes(&token, "ready");
        token
    };
    let bucket = sb.bucket.as_ref().unwrap();
    bucket.put("orphanedsleepykitten.png", b"left behind by a crash");
    let claimed = sb.stored_names();
    assert_eq!(claimed.len(), 5);

    // Bucket objects cannot be back-dated: a minimum age of an hour spares
    // the orphan, and a minimum age of zero removes it.
    for (min_age, orphan_kept) in [("3600", true), ("0", false)] {
        let mut cmd = sb.kitteh();
        cmd.env("KITTEH_STORAGE__SWEEP_MIN_AGE_SECONDS", min_age);
        let server = Server::start_with(cmd, &[]);
        server.wait_for_log("the sweep", |log| log.contains("storage sweep finished"));
        let names = sb.stored_names();
        assert_eq!(
            names.contains(&"orphanedsleepykitten.png".to_string()),
            orphan_kept,
            "min age {min_age}: {names:?}"
        );
        for name in &claimed {
            if name != "orphanedsleepykitten.png" {
                assert!(names.contains(name), "min age {min_age}: {name} was swept");
            }
        }
        assert_eq!(server.get(&format!("/img/{token}"), &[]).status, 200);
    }
}
