//! The services under conditions no HTTP request can arrange: a name drawn
//! twice, a worker whose lease was taken over, a holder that vanished on
//! the last attempt, a resizer that panics. They run the real services on a
//! real SQLite file (and PostgreSQL) and a real folder; only the name
//! generator and, in one test, the CPU step of a job are swapped, because
//! chance will not repeat a name and no real decoder panics on demand.

use std::sync::Arc;

use kitteh::config::Config;
use kitteh::db::queue::{self, JobState};
use kitteh::imaging::resize::{Decoded, Rendered, SizeSpec};
use kitteh::imaging::{Format, ImagingError, Limits, Stop};
use kitteh::metrics::Metrics;
use kitteh::names::NameGenerator;
use kitteh::service::Error;
use kitteh::service::budget::Decoding;
use kitteh::service::cache::ImageCache;
use kitteh::service::images::{Images, NewUpload, Uploaded};
use kitteh::service::sizes::{InlineRender, Render, Sizes};
use kitteh::storage::Storage;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::fixtures;
use crate::helpers::{Sandbox, block_on, files_in};

/// The services over a sandbox's database and folder, built by hand so
/// that a test can swap one part.
struct Rig {
    db: DatabaseConnection,
    sizes: Arc<Sizes>,
    images: Images,
    decoding: Decoding,
}

impl Rig {
    async fn new(
        sb: &Sandbox,
        tune: impl FnOnce(&mut Config),
        names: NameGenerator,
        render: Option<Render>,
    ) -> Self {
        Self::with_inline(sb, tune, names, render, None).await
    }

    /// As `new`, with another CPU-bound step for sizes made within an
    /// upload.
    async fn with_inline(
        sb: &Sandbox,
        tune: impl FnOnce(&mut Config),
        names: NameGenerator,
        render: Option<Render>,
        inline: Option<InlineRender>,
    ) -> Self {
        let mut config = Config::default();
        config.database.url = sb.database_url.clone();
        config.storage.uploads_dir = sb.uploads();
        // These tests drive the resize queue, so uploads leave their sizes
        // to it unless a test turns sizes within the upload back on.
        config.variants.inline_max_pixels = 0;
        tune(&mut config);
        let db = kitteh::db::connect(&config.database).await.unwrap();
        Migrator::up(&db, None).await.unwrap();
        let storage = Storage::open(&config.storage).unwrap();
        let decoding = kitteh::app::decoding(&config);
        let metrics = Arc::new(Metrics::default());
        let cache = Arc::new(ImageCache::new(&config.cache));
        let mut sizes = Sizes::new(
            db.clone(),
            storage.clone(),
            config.variants.clone(),
            decoding.clone(),
            Arc::clone(&metrics),
            Arc::clone(&cache),
        );
        if let Some(render) = render {
            sizes = sizes.with_render(render);
        }
        if let Some(inline) = inline {
            sizes = sizes.with_inline_render(inline);
        }
        let sizes = Arc::new(sizes);
        let images = Images::with_names(
            db.clone(),
            storage.clone(),
            decoding.clone(),
            Arc::clone(&sizes),
            cache,
            metrics,
            names,
        );
        Self {
            db,
            sizes,
            images,
            decoding,
        }
    }

    async fn upload(&self, name: &str, bytes: Vec<u8>) -> Result<String, Error> {
        Ok(self.upload_answer(name, bytes).await?.image.token)
    }

    /// Uploads and returns the whole answer, sizes included.
    async fn upload_answer(&self, name: &str, bytes: Vec<u8>) -> Result<Uploaded, Error> {
        self.images
            .upload(NewUpload {
                bytes: bytes.into(),
                file_name: Some(name.into()),
                ..NewUpload::default()
            })
            .await
    }

    async fn sql(&self, statement: &str) {
        self.db.execute_unprepared(statement).await.unwrap();
    }

    /// The first column of every row, as integers.
    async fn ints(&self, query: &str) -> Vec<i64> {
        self.rows(query)
            .await
            .iter()
            .map(|r| r.try_get_by_index::<i64>(0).unwrap())
            .collect()
    }

    /// The first column of every row, as text.
    async fn texts(&self, query: &str) -> Vec<String> {
        self.rows(query)
            .await
            .iter()
            .map(|r| r.try_get_by_index::<String>(0).unwrap())
            .collect()
    }

    async fn rows(&self, query: &str) -> Vec<sea_orm::QueryResult> {
        let stmt = sea_orm::Statement::from_string(self.db.get_database_backend(), query);
        self.db.query_all_raw(stmt).await.unwrap()
    }
}

fn sandboxes() -> Vec<Sandbox> {
    let mut all = vec![Sandbox::sqlite()];
    all.extend(Sandbox::postgres());
    all
}

#[test]
fn a_name_drawn_twice_is_drawn_again_and_never_overwrites() {
    for sb in sandboxes() {
        block_on(async {
            let mut names = vec!["SameSleepyTabby"; 2];
            names.push("OtherSleepyTabby");
            names.extend(["SameSleepyTabby"; 16]);
            let rig = Rig::new(&sb, |_| {}, NameGenerator::scripted(&names), None).await;
            let first = fixtures::png(10, 10);
            assert_eq!(
                rig.upload("a.png", first.clone()).await.unwrap(),
                "samesleepytabby"
            );
            // The second upload draws the same name, is refused by the
            // unique index before anything is written, and draws again.
            let second = fixtures::png(20, 20);
            assert_eq!(
                rig.upload("b.png", second.clone()).await.unwrap(),
                "othersleepytabby"
            );
            let stored = |name: &str| std::fs::read(sb.uploads().join(name)).unwrap();
            assert_eq!(
                image::load_from_memory(&stored("samesleepytabby.png"))
                    .unwrap()
                    .width(),
                10
            );
            assert_eq!(
                image::load_from_memory(&stored("othersleepytabby.png"))
                    .unwrap()
                    .width(),
                20
            );
            // Sixteen taken names in a row: refused, nothing stored.
            let err = rig
                .upload("c.png", fixtures::png(30, 30))
                .await
                .unwrap_err();
            assert!(matches!(err, Error::NoFreeName(16)), "{err:?}");
            assert_eq!(
                files_in(&sb.uploads()),
                vec![
                    "othersleepytabby.png".to_string(),
                    "samesleepytabby.png".to_string()
                ]
            );
            assert_eq!(rig.ints("SELECT COUNT(*) FROM images").await, vec![2]);
            assert_eq!(rig.ints("SELECT COUNT(*) FROM variant_jobs").await, vec![2]);
        });
    }
}

#[test]
fn a_worker_whose_lease_was_taken_over_records_nothing() {
    for sb in sandboxes() {
        block_on(async {
            let rig = Rig::new(&sb, |_| {}, NameGenerator::default(), None).await;
            let token = rig.upload("a.jpg", fixtures::jpeg(640, 480)).await.unwrap();
            let stale = rig.sizes.claim().await.unwrap().expect("a job");
            assert_eq!(stale.attempt, 1);
            // The holder stalls past its lease; another worker takes over.
            rig.sql("UPDATE variant_jobs SET lease_until = 0").await;
            let fresh = rig.sizes.claim().await.unwrap().expect("the expired job");
            assert_eq!((fresh.job_id, fresh.attempt), (stale.job_id, 2));

            // The stale worker finishes its work: nothing is recorded, the
            // job stays with the new holder, and its files are left for it.
            rig.sizes.work(stale).await.unwrap();
            assert_eq!(rig.ints("SELECT COUNT(*) FROM variants").await, vec![0]);
            assert_eq!(
                rig.texts("SELECT state FROM variant_jobs").await,
                vec!["running"]
            );
            assert!(
                !rig.sizes.heartbeat(stale).await.unwrap(),
                "the stale claim cannot renew"
            );
            assert!(rig.sizes.heartbeat(fresh).await.unwrap());

            rig.sizes.work(fresh).await.unwrap();
            assert_eq!(
                rig.texts("SELECT state FROM variant_jobs").await,
                vec!["done"]
            );
            assert_eq!(rig.ints("SELECT COUNT(*) FROM variants").await, vec![3]);
            assert_eq!(
                rig.ints("SELECT CAST(attempts AS BIGINT) FROM variant_jobs")
                    .await,
                vec![2]
            );
            assert!(sb.uploads().join(format!("{token}-tiny.jpg")).is_file());
        });
    }
}

#[test]
fn a_holder_that_vanished_on_the_last_attempt_fails_the_job_with_that_reason() {
    for sb in sandboxes() {
        block_on(async {
            let rig = Rig::new(
                &sb,
                |c| c.variants.max_attempts = 2,
                NameGenerator::default(),
                None,
            )
            .await;
            rig.upload("a.png", fixtures::png(64, 64)).await.unwrap();
            for attempt in 1..=2 {
                let claim = rig.sizes.claim().await.unwrap().expect("a job");
                assert_eq!(claim.attempt, attempt);
                // The holder dies: its lease simply runs out.
                rig.sql("UPDATE variant_jobs SET lease_until = 0").await;
            }
            // No third attempt: the job is failed, and says why.
            assert_eq!(rig.sizes.claim().await.unwrap(), None);
            assert_eq!(
                rig.texts("SELECT state FROM variant_jobs").await,
                vec!["failed"]
            );
            assert_eq!(
                rig.texts("SELECT last_error FROM variant_jobs").await,
                vec![queue::LEASE_EXPIRED.to_string()]
            );
            let counts = rig.sizes.counts().await.unwrap();
            assert_eq!(counts[&JobState::Failed], 1);
        });
    }
}

/// A resizer that panics on PNGs and resizes everything else.
fn panics_on_png(
    original: &[u8],
    format: Format,
    sizes: &[SizeSpec],
    quality: u8,
    limits: &Limits,
    stop: &Stop,
) -> Result<Vec<Rendered>, ImagingError> {
    if format == Format::Png {
        panic!("a decoder bug");
    }
    kitteh::imaging::resize::render(original, format, sizes, quality, limits, stop)
}

#[test]
fn a_panic_while_resizing_fails_that_job_and_the_worker_goes_on() {
    let sb = Sandbox::sqlite();
    block_on(async {
        let rig = Rig::new(
            &sb,
            |c| c.variants.max_attempts = 1,
            NameGenerator::default(),
            Some(panics_on_png),
        )
        .await;
        let png = rig.upload("a.png", fixtures::png(300, 200)).await.unwrap();
        let jpeg = rig.upload("b.jpg", fixtures::jpeg(300, 200)).await.unwrap();
        assert!(rig.sizes.work_once().await.unwrap());
        assert!(rig.sizes.work_once().await.unwrap());
        assert!(!rig.sizes.work_once().await.unwrap(), "no job left");
        let state = |token: &str| {
            format!(
                "SELECT j.state || ':' || COALESCE(j.last_error, '') FROM variant_jobs j \
                 JOIN images i ON i.id = j.image_id WHERE i.token = '{token}'"
            )
        };
        assert_eq!(
            rig.texts(&state(&png)).await,
            vec!["failed:the resizer panicked: a decoder bug"]
        );
        assert_eq!(rig.texts(&state(&jpeg)).await, vec!["done:"]);
        assert!(sb.uploads().join(format!("{jpeg}-tiny.jpg")).is_file());
    });
}

/// Calls of the two failing steps below: proof that the upload tried.
static INLINE_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Sizes within an upload that fail, the way a resize or encode can.
fn inline_fails(_: Decoded, _: &[SizeSpec], _: u8) -> Result<Vec<Rendered>, ImagingError> {
    INLINE_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Err(ImagingError::Corrupt("cannot encode: out of luck".into()))
}

/// Sizes within an upload that panic, the way a decoder bug would.
fn inline_panics(_: Decoded, _: &[SizeSpec], _: u8) -> Result<Vec<Rendered>, ImagingError> {
    INLINE_CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    panic!("a resizer bug");
}

/// The sizes of one image as the upload answered them: (name, state).
fn states(uploaded: &Uploaded) -> Vec<(String, String)> {
    uploaded
        .sizes
        .iter()
        .map(|s| (s.name.clone(), s.state.as_str().to_string()))
        .collect()
}

fn all_in(state: &str) -> Vec<(String, String)> {
    ["tiny", "large", "monstrous"]
        .iter()
        .map(|n| (n.to_string(), state.to_string()))
        .collect()
}

#[test]
fn sizes_that_fail_or_panic_within_the_upload_are_left_to_a_job() {
    for inline in [inline_fails as InlineRender, inline_panics] {
        let sb = Sandbox::sqlite();
        block_on(async {
            let rig = Rig::with_inline(
                &sb,
                |c| c.variants.inline_max_pixels = 40_000_000,
                NameGenerator::default(),
                None,
                Some(inline),
            )
            .await;
            for (name, bytes) in [
                ("a.jpg", fixtures::jpeg(640, 480)),
                ("b.png", fixtures::png(320, 200)),
            ] {
                let calls = INLINE_CALLS.load(std::sync::atomic::Ordering::SeqCst);
                let uploaded = rig
                    .upload_answer(name, bytes)
                    .await
                    .expect("the upload itself succeeds");
                let token = uploaded.image.token.clone();
                assert_eq!(
                    INLINE_CALLS.load(std::sync::atomic::Ordering::SeqCst),
                    calls + 1,
                    "{name}: the upload tried to make its sizes"
                );
                assert_eq!(states(&uploaded), all_in("pending"), "{name}");
                // Nothing of the failed attempt is left: only the original.
                assert_eq!(
                    files_in(&sb.uploads())
                        .iter()
                        .filter(|f| f.starts_with(&token))
                        .count(),
                    1
                );
                assert!(rig.sizes.work_once().await.unwrap(), "a job was queued");
                let (_, sizes) = rig.images.describe(&token).await.unwrap();
                assert!(sizes.iter().all(|s| s.state.as_str() == "ready"), "{name}");
                assert_eq!(
                    files_in(&sb.uploads())
                        .iter()
                        .filter(|f| f.starts_with(&token))
                        .count(),
                    4
                );
            }
            assert_eq!(
                rig.ints("SELECT CAST(attempts AS BIGINT) FROM variant_jobs")
                    .await,
                vec![1, 1]
            );
        });
    }
}

#[test]
fn sizes_within_the_upload_wait_for_nothing_when_the_decode_budget_is_taken() {
    for sb in sandboxes() {
        block_on(async {
            let rig = Rig::new(
                &sb,
                |c| c.variants.inline_max_pixels = 40_000_000,
                NameGenerator::default(),
                None,
            )
            .await;
            // A 1000×1000 PNG needs about 4 MiB to be checked and about 16
            // MiB with its sizes; leave 8 MiB of the budget free.
            let budget = &rig.decoding.budget;
            let held = budget.try_reserve(budget.limit() - (8 << 20)).unwrap();
            let started = std::time::Instant::now();
            let uploaded = rig
                .upload_answer("busy.png", fixtures::png(1000, 1000))
                .await
                .unwrap();
            assert!(started.elapsed() < std::time::Duration::from_secs(2));
            assert_eq!(states(&uploaded), all_in("pending"));
            drop(held);
            // With the budget free again, the next one has its sizes at once.
            let next = rig
                .upload_answer("free.png", fixtures::png(1000, 999))
                .await
                .unwrap();
            assert_eq!(states(&next), all_in("ready"));
            assert!(rig.sizes.work_once().await.unwrap());
            assert!(!rig.sizes.work_once().await.unwrap(), "one job only");
            let (_, sizes) = rig.images.describe(&uploaded.image.token).await.unwrap();
            assert!(sizes.iter().all(|s| s.state.as_str() == "ready"));
        });
    }
}

#[test]
fn a_size_that_cannot_be_stored_within_the_upload_is_left_to_a_job_and_a_failing_job_keeps_the_sizes_it_replaces()
 {
    let sb = Sandbox::sqlite();
    block_on(async {
        let rig = Rig::new(
            &sb,
            |c| {
                c.variants.inline_max_pixels = 40_000_000;
                c.variants.max_attempts = 5;
            },
            NameGenerator::scripted(&["FirstSleepyTabby"]),
            None,
        )
        .await;
        let uploads = sb.uploads();
        let file = |size: &str| uploads.join(format!("firstsleepytabby-{size}.png"));
        // A folder where the Tiny size must go: that one write fails.
        std::fs::create_dir_all(file("tiny")).unwrap();
        let uploaded = rig
            .upload_answer("a.png", fixtures::png(640, 480))
            .await
            .expect("the upload itself succeeds");
        assert_eq!(states(&uploaded), all_in("pending"));
        // The sizes written before the failure were removed again.
        assert!(!file("monstrous").exists() && !file("large").exists());
        assert!(uploads.join("firstsleepytabby.png").is_file());
        assert_eq!(rig.ints("SELECT COUNT(*) FROM variants").await, vec![0]);

        std::fs::remove_dir(file("tiny")).unwrap();
        assert!(rig.sizes.work_once().await.unwrap());
        let (_, sizes) = rig.images.describe("firstsleepytabby").await.unwrap();
        assert!(sizes.iter().all(|s| s.state.as_str() == "ready"));
        let before: Vec<Vec<u8>> = ["monstrous", "large"]
            .iter()
            .map(|s| std::fs::read(file(s)).unwrap())
            .collect();

        // A rebuild whose Tiny write fails again: the sizes it was about
        // to replace, which rows point to, stay where they are.
        rig.sizes
            .requeue(kitteh::service::sizes::Requeue::Token("firstsleepytabby"))
            .await
            .unwrap();
        std::fs::remove_file(file("tiny")).unwrap();
        std::fs::create_dir_all(file("tiny")).unwrap();
        assert!(rig.sizes.work_once().await.unwrap());
        let error = rig
            .texts("SELECT COALESCE(last_error, '') FROM variant_jobs")
            .await;
        assert!(error[0].contains("firstsleepytabby-tiny.png"), "{error:?}");
        let after: Vec<Vec<u8>> = ["monstrous", "large"]
            .iter()
            .map(|s| std::fs::read(file(s)).unwrap())
            .collect();
        assert_eq!(after, before);
    });
}
