//! Sizes of pictures stored once for several names (uploads of the same
//! bytes): the files are made once, and every name gets rows for them.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, Set,
};

use super::Sizes;
use crate::db::entities::{images, variants};
use crate::db::queue;

impl Sizes {
    /// Gives `image_id` the sizes another name with the same stored bytes
    /// (`sibling_id`) already has, and (with `record_job`, for an upload
    /// that has no job row yet) a finished job. False, writing nothing,
    /// when the sibling lacks any configured size: the caller queues a job,
    /// which shares them once they exist.
    pub(crate) async fn share<C: ConnectionTrait>(
        &self,
        conn: &C,
        image_id: i64,
        sibling_id: i64,
        record_job: bool,
    ) -> Result<bool, DbErr> {
        let theirs = variants::Entity::find()
            .filter(variants::Column::ImageId.eq(sibling_id))
            .all(conn)
            .await?;
        let complete = self
            .configured()
            .iter()
            .all(|size| theirs.iter().any(|v| v.name == size.name));
        if !complete {
            return Ok(false);
        }
        variants::Entity::delete_many()
            .filter(variants::Column::ImageId.eq(image_id))
            .exec(conn)
            .await?;
        let now = Utc::now();
        for v in theirs
            .into_iter()
            .filter(|v| self.configured().iter().any(|s| s.name == v.name))
        {
            variants::ActiveModel {
                image_id: Set(image_id),
                name: Set(v.name),
                width: Set(v.width),
                height: Set(v.height),
                path: Set(v.path),
                size: Set(v.size),
                sha256: Set(v.sha256),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(conn)
            .await?;
        }
        if record_job {
            queue::record_done(conn, image_id).await?;
        }
        Ok(true)
    }

    /// Another name stored as `path` whose sizes are all made, if any: a
    /// job for a name that shares its bytes copies those instead of making
    /// them again.
    pub(crate) async fn sibling_with_sizes<C: ConnectionTrait>(
        &self,
        conn: &C,
        image_id: i64,
        path: &str,
    ) -> Result<Option<i64>, DbErr> {
        let others = images::Entity::find()
            .filter(images::Column::Path.eq(path))
            .filter(images::Column::Id.ne(image_id))
            .all(conn)
            .await?;
        for other in others {
            let made = variants::Entity::find()
                .filter(variants::Column::ImageId.eq(other.id))
                .count(conn)
                .await?;
            if made as usize >= self.configured().len() {
                return Ok(Some(other.id));
            }
        }
        Ok(None)
    }
}

/// How many names still store their bytes as `path`.
/// How many names point at the object stored under `path` (an indexed
/// count: the names sharing one picture's bytes).
pub(crate) async fn names_sharing<C: ConnectionTrait>(conn: &C, path: &str) -> Result<u64, DbErr> {
    images::Entity::find()
        .filter(images::Column::Path.eq(path))
        .count(conn)
        .await
}
