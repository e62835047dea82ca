//! The images operators look through (`kitteh images list`, the moderation
//! page, a key's "my uploads"): newest first, a page at a time, each page
//! read with indexed statements whatever the number of pictures.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};

use super::Images;
use crate::db::entities::{images, reports};
use crate::service::error::Result;
use crate::service::model::ImageInfo;

/// Rows a page holds when the caller names no limit.
pub const PAGE: usize = 100;
/// The most a page may hold.
pub const MAX_PAGE: usize = 1000;

/// What `Images::listing` picks.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub since: Option<DateTime<Utc>>,
    pub key_id: Option<i64>,
    pub net: Option<ipnet::IpNet>,
    pub tokens: Option<Vec<String>>,
    /// Only images with open reports.
    pub reported: bool,
    /// Only images older than this one (its id, from the previous page's
    /// `next`): the cursor.
    pub before: Option<i64>,
    /// At most this many (`PAGE` when None, never above `MAX_PAGE`).
    pub limit: Option<usize>,
}

/// An image with what operators see about its upload.
#[derive(Debug, Clone)]
pub struct Listed {
    pub image: ImageInfo,
    pub key_id: Option<i64>,
    pub uploader_ip: Option<String>,
    /// Open reports about it.
    pub reports: u64,
}

/// One page of a listing, and where the next one starts.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Listed>,
    /// The cursor of the next page (`Listing::before`), when there is one.
    pub next: Option<i64>,
}

#[derive(Debug, FromQueryResult)]
struct OpenReports {
    token: String,
    n: i64,
}

impl Images {
    /// One page of images, newest first.
    pub async fn listing(&self, filter: &Listing) -> Result<Page> {
        let limit = filter.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
        let mut query = images::Entity::find().order_by_desc(images::Column::Id);
        if let Some(before) = filter.before {
            query = query.filter(images::Column::Id.lt(before));
        }
        if let Some(since) = filter.since {
            query = query.filter(images::Column::InsertedAt.gte(since));
        }
        if let Some(key_id) = filter.key_id {
            query = query.filter(images::Column::KeyId.eq(key_id));
        }
        if let Some(tokens) = &filter.tokens {
            query = query.filter(images::Column::Token.is_in(tokens.clone()));
        }
        if let Some(net) = filter.net {
            // A network is a range of address keys.
            let (first, last) = (
                migration::ip_key(net.network()),
                migration::ip_key(net.broadcast()),
            );
            query = query.filter(images::Column::UploaderIpKey.between(first, last));
        }
        if filter.reported {
            let open = reports::Entity::find()
                .select_only()
                .column(reports::Column::Token)
                .filter(reports::Column::ResolvedAt.is_null())
                .into_query();
            query = query.filter(images::Column::Token.in_subquery(open));
        }
        // One more than a page: whether there is a next one.
        let mut rows = query.limit(limit as u64 + 1).all(&self.db).await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let counts = self.open_reports(&rows).await?;
        let next = more.then(|| rows.last().map(|r| r.id)).flatten();
        let items = rows
            .into_iter()
            .map(|row| Listed {
                reports: counts
                    .iter()
                    .find(|c| c.token == row.token)
                    .map_or(0, |c| u64::try_from(c.n).unwrap_or(0)),
                key_id: row.key_id,
                uploader_ip: row.uploader_ip.clone(),
                image: ImageInfo::from(row),
            })
            .collect();
        Ok(Page { items, next })
    }

    /// How many images still known to have come from `net`.
    pub async fn count_from(&self, net: ipnet::IpNet) -> Result<u64> {
        use sea_orm::PaginatorTrait;
        let (first, last) = (
            migration::ip_key(net.network()),
            migration::ip_key(net.broadcast()),
        );
        Ok(images::Entity::find()
            .filter(images::Column::UploaderIpKey.between(first, last))
            .count(&self.db)
            .await?)
    }

    /// Open reports about each of `rows`, in one statement for the page.
    async fn open_reports(&self, rows: &[images::Model]) -> Result<Vec<OpenReports>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let tokens: Vec<String> = rows.iter().map(|r| r.token.clone()).collect();
        Ok(reports::Entity::find()
            .select_only()
            .column(reports::Column::Token)
            .column_as(Expr::expr(Func::count(Expr::col(reports::Column::Id))), "n")
            .filter(reports::Column::ResolvedAt.is_null())
            .filter(reports::Column::Token.is_in(tokens))
            .group_by(reports::Column::Token)
            .into_model::<OpenReports>()
            .all(&self.db)
            .await?)
    }
}
