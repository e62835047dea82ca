//! Races forced with hooks rather than hoped for, run in-process on the
//! real databases and storage: two replicas' expiry passes that are made to
//! overlap, and a delete that comes while an upload of the same bytes is
//! between recording its row and committing it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

use crate::fixtures;
use crate::helpers::Sandbox;
use crate::logs;

async fn connect(sb: &Sandbox) -> DatabaseConnection {
    let mut options = ConnectOptions::new(sb.database_url.clone());
    options
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| o.create_if_missing(true).foreign_keys(true));
    Database::connect(options).await.unwrap()
}

fn config(sb: &Sandbox) -> kitteh::config::Config {
    let mut config = kitteh::config::Config::default();
    config.database.url = sb.database_url.clone();
    config.storage.uploads_dir = sb.uploads();
    config
}

async fn upload(
    services: &kitteh::app::Services,
    bytes: Vec<u8>,
) -> kitteh::service::images::Uploaded {
    services
        .images()
        .upload(kitteh::service::images::NewUpload {
            bytes: bytes.into(),
            file_name: Some("race.png".into()),
            ..Default::default()
        })
        .await
        .unwrap()
}

#[test]
fn two_replicas_whose_expiry_passes_overlap_delete_each_image_once() {
    let Some(sb) = Sandbox::postgres() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let db = connect(&sb).await;
        use migration::MigratorTrait;
        migration::Migrator::up(&db, None).await.unwrap();
        let a = kitteh::app::Services::over(config(&sb), db).unwrap();
        let b = kitteh::app::Services::over(config(&sb), connect(&sb).await).unwrap();
        for n in 0..8 {
            upload(&a, fixtures::png(30 + n, 20)).await;
        }
        a.db()
            .execute_unprepared("UPDATE images SET expires_at = inserted_at")
            .await
            .unwrap();
        // Both read every due image before either deletes one.
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let pass = |services: &kitteh::app::Services| {
            let barrier = Arc::clone(&barrier);
            let images = Arc::clone(services.images());
            async move {
                images
                    .expire_due_then(100, move || {
                        let barrier = Arc::clone(&barrier);
                        async move {
                            barrier.wait().await;
                        }
                    })
                    .await
                    .unwrap()
            }
        };
        let (deleted_a, deleted_b) = tokio::join!(pass(&a), pass(&b));
        assert_eq!(deleted_a + deleted_b, 8, "a: {deleted_a}, b: {deleted_b}");
    });
    assert_eq!(sb.count_rows(), 0);
    assert!(sb.stored_names().is_empty(), "{:?}", sb.stored_names());
}

/// A hook that lets uploads through until it is armed, then holds the
/// next one until told to go, saying when it holds it.
type Armed = Arc<
    std::sync::Mutex<
        Option<(
            tokio::sync::oneshot::Sender<()>,
            tokio::sync::oneshot::Receiver<()>,
        )>,
    >,
>;

fn holding_hook() -> (kitteh::service::images::Hook, Armed) {
    let armed: Armed = Arc::new(std::sync::Mutex::new(None));
    let slot = Arc::clone(&armed);
    let hook: kitteh::service::images::Hook = Arc::new(move |_point| {
        let taken = slot.lock().unwrap().take();
        async move {
            if let Some((held, go)) = taken {
                let _ = held.send(());
                let _ = go.await;
            }
        }
        .boxed()
    });
    (hook, armed)
}

/// A delete of the first name of some bytes while a second upload of the
/// same bytes is recorded but not committed: the delete waits (for the row
/// lock on PostgreSQL, for the writer's turn on SQLite), then counts the
/// newcomer and leaves the bytes for it.
fn delete_racing_upload(sb: &Sandbox) {
    logs::capture();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let db = connect(sb).await;
        use migration::MigratorTrait;
        migration::Migrator::up(&db, None).await.unwrap();
        let (hook, armed) = holding_hook();
        let services =
            Arc::new(kitteh::app::Services::over_with_hook(config(sb), db, Some(hook)).unwrap());
        let bytes = fixtures::png(64, 48);
        let first = upload(&services, bytes.clone()).await;
        let (held_tx, held_rx) = tokio::sync::oneshot::channel();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel();
        *armed.lock().unwrap() = Some((held_tx, go_rx));
        let second = {
            let services = Arc::clone(&services);
            tokio::spawn(async move { upload(&services, bytes).await })
        };
        held_rx.await.unwrap();
        let delete = {
            let services = Arc::clone(&services);
            let (token, secret) = (first.image.token.clone(), first.delete_token.clone());
            tokio::spawn(async move { services.images().delete(&token, Some(&secret)).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !delete.is_finished(),
            "the delete went ahead of an upload that was about to share the bytes"
        );
        go_tx.send(()).unwrap();
        let second = second.await.unwrap();
        delete.await.unwrap().unwrap();
        assert_eq!(
            second.image.object, first.image.object,
            "the second shares the first's object"
        );
        let stored = sb.stored_names();
        assert!(
            stored
                .iter()
                .any(|n| *n == first.image.token.clone() + ".png"),
            "the shared object was kept: {stored:?}"
        );
        assert!(
            logs::logged("its bytes stay for the other names"),
            "the delete counted the second name"
        );
        let served = services
            .images()
            .open(&second.image.token, None, false)
            .await;
        assert!(served.is_ok(), "the second name still serves");
    });
}

#[test]
fn a_delete_racing_an_upload_of_the_same_bytes_waits_and_keeps_them() {
    delete_racing_upload(&Sandbox::sqlite());
    if let Some(pg) = Sandbox::postgres() {
        delete_racing_upload(&pg);
    }
}
