//! Copying every stored object from one backend to another
//! (`kitteh storage migrate`). The database says what should exist and what
//! its bytes hash to, so every copy is checked against that SHA-256 on both
//! ends: a corrupt source is reported instead of spread, and a copy counts
//! only once it reads back intact. An object already present and intact at
//! the destination is skipped, which makes the command idempotent and lets
//! an interrupted run simply be started again.

use std::collections::HashMap;
use std::io;

use futures_util::StreamExt;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::db::entities::{images, variants};
use crate::imaging::sha256_hex;
use crate::service::error::Result;
use crate::storage::Storage;

/// One object the database refers to.
#[derive(Debug, Clone)]
pub struct Object {
    pub name: String,
    pub sha256: String,
    pub content_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Copied,
    Skipped,
    Failed(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub copied: usize,
    pub skipped: usize,
    pub failed: usize,
}

/// Images read at a time: the inventory is walked a page at a time, so
/// copying a million pictures holds a page of them.
pub const PAGE: u64 = 500;

/// The originals and finished sizes of the images after `after` (an id),
/// oldest first, a page of images at a time; with the id to continue from
/// when there are more.
pub async fn inventory_page(
    db: &DatabaseConnection,
    after: i64,
) -> Result<(Vec<Object>, Option<i64>)> {
    let originals = images::Entity::find()
        .filter(images::Column::Id.gt(after))
        .order_by_asc(images::Column::Id)
        .limit(PAGE)
        .all(db)
        .await?;
    let next = (originals.len() as u64 == PAGE)
        .then(|| originals.last().map(|i| i.id))
        .flatten();
    let types: HashMap<i64, String> = originals
        .iter()
        .map(|i| (i.id, i.content_type.clone()))
        .collect();
    let sizes = variants::Entity::find()
        .filter(variants::Column::ImageId.is_in(types.keys().copied()))
        .order_by_asc(variants::Column::Id)
        .all(db)
        .await?;
    let mut objects: Vec<Object> = originals
        .into_iter()
        .map(|i| Object {
            name: i.path,
            sha256: i.sha256,
            content_type: i.content_type,
        })
        .collect();
    for v in sizes {
        // A size has its original's format.
        if let Some(content_type) = types.get(&v.image_id) {
            objects.push(Object {
                name: v.path,
                sha256: v.sha256,
                content_type: content_type.clone(),
            });
        }
    }
    // Names that share one picture's bytes share its objects: copy each
    // object once.
    objects.sort_by(|a, b| a.name.cmp(&b.name));
    objects.dedup_by(|a, b| a.name == b.name);
    Ok((objects, next))
}

/// Copies `objects` with up to `jobs` in flight, reporting each outcome as
/// it happens.
pub async fn copy_all(
    from: &Storage,
    to: &Storage,
    objects: Vec<Object>,
    jobs: usize,
    mut on_done: impl FnMut(&Outcome),
) -> Summary {
    let mut summary = Summary::default();
    let mut outcomes = futures_util::stream::iter(objects)
        .map(|object| async move { copy_one(from, to, &object).await })
        .buffer_unordered(jobs.max(1));
    while let Some(outcome) = outcomes.next().await {
        match &outcome {
            Outcome::Copied => summary.copied += 1,
            Outcome::Skipped => summary.skipped += 1,
            Outcome::Failed(_) => summary.failed += 1,
        }
        on_done(&outcome);
    }
    summary
}

async fn copy_one(from: &Storage, to: &Storage, object: &Object) -> Outcome {
    let name = &object.name;
    match to.get(name).await {
        Ok(existing) if sha256_hex(&existing) == object.sha256 => return Outcome::Skipped,
        // Absent, or a partial or stale copy: (re)write it.
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Outcome::Failed(format!("{name}: cannot check the destination: {e}")),
    }
    let bytes = match from.get(name).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Outcome::Failed(format!(
                "{name}: missing at the source (deleted since the copy began? run again)"
            ));
        }
        Err(e) => return Outcome::Failed(format!("{name}: cannot read the source: {e}")),
    };
    if sha256_hex(&bytes) != object.sha256 {
        return Outcome::Failed(format!(
            "{name}: the source does not match its recorded SHA-256; not copied"
        ));
    }
    if let Err(e) = to.put(name, bytes, &object.content_type).await {
        return Outcome::Failed(format!("{name}: cannot write the copy: {e}"));
    }
    match to.get(name).await {
        Ok(back) if sha256_hex(&back) == object.sha256 => Outcome::Copied,
        Ok(_) => Outcome::Failed(format!(
            "{name}: the copy read back with a different SHA-256"
        )),
        Err(e) => Outcome::Failed(format!("{name}: cannot read the copy back: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStore;
    use bytes::Bytes;

    fn object(name: &str, bytes: &[u8]) -> Object {
        Object {
            name: name.into(),
            sha256: sha256_hex(bytes),
            content_type: "image/png".into(),
        }
    }

    #[tokio::test]
    async fn copies_verifies_skips_and_reports_corrupt_sources() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let from = Storage::new(LocalStore::open(a.path()).unwrap());
        let to = Storage::new(LocalStore::open(b.path()).unwrap());
        from.put("one.png", Bytes::from_static(b"one"), "image/png")
            .await
            .unwrap();
        from.put("two.png", Bytes::from_static(b"two"), "image/png")
            .await
            .unwrap();
        // A partial copy from an interrupted run is rewritten.
        to.put("two.png", Bytes::from_static(b"tw"), "image/png")
            .await
            .unwrap();
        from.put("rot.png", Bytes::from_static(b"rotten"), "image/png")
            .await
            .unwrap();
        let objects = vec![
            object("one.png", b"one"),
            object("two.png", b"two"),
            object("rot.png", b"fresh"),
            object("gone.png", b"gone"),
        ];
        let mut failures = Vec::new();
        let first = copy_all(&from, &to, objects.clone(), 2, |o| {
            if let Outcome::Failed(why) = o {
                failures.push(why.clone());
            }
        })
        .await;
        assert_eq!(
            first,
            Summary {
                copied: 2,
                skipped: 0,
                failed: 2
            }
        );
        assert!(
            failures
                .iter()
                .any(|f| f.contains("rot.png") && f.contains("SHA-256"))
        );
        assert!(
            failures
                .iter()
                .any(|f| f.contains("gone.png") && f.contains("missing"))
        );
        assert_eq!(to.get("two.png").await.unwrap().as_ref(), b"two");
        assert_eq!(
            to.head("rot.png").await.unwrap(),
            None,
            "corruption is not spread"
        );

        let second = copy_all(&from, &to, objects, 2, |_| {}).await;
        assert_eq!(
            second,
            Summary {
                copied: 0,
                skipped: 2,
                failed: 2
            }
        );
    }
}
