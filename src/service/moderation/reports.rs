//! Reports about pictures: taken from anyone (one open report per picture
//! and address), listed a page at a time, and resolved by operators.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use std::net::IpAddr;

use super::Moderation;
use crate::db::entities::reports;
use crate::service::error::{Error, Result};

/// Longest text a report may carry, in characters.
pub const MAX_REPORT_TEXT: usize = 2000;

/// What a report may be about, as the form and the API name it.
pub const REPORT_REASONS: &[(&str, &str)] = &[
    ("illegal", "Illegal content"),
    ("personal_information", "Personal information"),
    ("spam", "Spam"),
    ("other", "Something else"),
];

/// A report as commands and the moderation page show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub id: i64,
    pub token: String,
    pub reason: String,
    pub details: String,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
}

impl From<reports::Model> for Report {
    fn from(row: reports::Model) -> Self {
        Self {
            id: row.id,
            token: row.token,
            reason: row.reason,
            details: row.details,
            created_at: row.created_at,
            resolved_at: row.resolved_at,
            resolution: row.resolution,
        }
    }
}

impl Moderation {
    /// Records a report about the image `token`.
    pub async fn report(
        &self,
        token: &str,
        reason: &str,
        details: &str,
        addr: Option<IpAddr>,
    ) -> Result<Report> {
        if !REPORT_REASONS.iter().any(|(r, _)| *r == reason) {
            let known: Vec<&str> = REPORT_REASONS.iter().map(|(r, _)| *r).collect();
            return Err(Error::BadReport(format!(
                "reason must be one of {}; got {:?}",
                known.join(", "),
                reason.chars().take(40).collect::<String>()
            )));
        }
        let details = details.trim();
        if details.chars().count() > MAX_REPORT_TEXT {
            return Err(Error::BadReport(format!(
                "the text is longer than {MAX_REPORT_TEXT} characters"
            )));
        }
        let details: String = details
            .chars()
            .filter(|c| !c.is_control() || *c == '\n')
            .collect();
        let reporter_ip = self.kept_addr(addr);
        // One open report per picture and address: repeating it adds
        // nothing for the moderators, and a flood must not bury the rest.
        if let Some(ip) = &reporter_ip
            && let Some(open) = reports::Entity::find()
                .filter(reports::Column::Token.eq(token))
                .filter(reports::Column::ReporterIp.eq(ip.as_str()))
                .filter(reports::Column::ResolvedAt.is_null())
                .one(&self.db)
                .await?
        {
            return Ok(Report::from(open));
        }
        let row = reports::ActiveModel {
            token: Set(token.to_string()),
            reason: Set(reason.to_string()),
            details: Set(details),
            reporter_ip: Set(reporter_ip),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        tracing::info!(report = row.id, token, reason, "image reported");
        Ok(Report::from(row))
    }

    /// Reports, oldest first; only the open ones unless `all`; at most
    /// `limit`.
    /// Reports, oldest first (open ones only unless `all`), at most
    /// `limit` after report `after`: a page of them.
    pub async fn reports(&self, all: bool, after: Option<i64>, limit: u64) -> Result<Vec<Report>> {
        let mut query = reports::Entity::find().order_by_asc(reports::Column::Id);
        if !all {
            query = query.filter(reports::Column::ResolvedAt.is_null());
        }
        if let Some(after) = after {
            query = query.filter(reports::Column::Id.gt(after));
        }
        Ok(query
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Report::from)
            .collect())
    }

    pub async fn report_by_id(&self, id: i64) -> Result<Report> {
        reports::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(Report::from)
            .ok_or_else(|| Error::NotFound(format!("report {id}")))
    }

    /// Marks every open report about `token` resolved as `resolution`.
    pub async fn resolve_reports(&self, token: &str, resolution: &str) -> Result<u64> {
        let done = reports::Entity::update_many()
            .col_expr(reports::Column::ResolvedAt, Expr::value(Utc::now()))
            .col_expr(reports::Column::Resolution, Expr::value(resolution))
            .filter(reports::Column::Token.eq(token))
            .filter(reports::Column::ResolvedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected)
    }

    /// Marks one report resolved.
    pub async fn resolve_report(&self, id: i64, resolution: &str) -> Result<()> {
        reports::Entity::update_many()
            .col_expr(reports::Column::ResolvedAt, Expr::value(Utc::now()))
            .col_expr(reports::Column::Resolution, Expr::value(resolution))
            .filter(reports::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    pub async fn open_report_count(&self) -> Result<u64> {
        Ok(reports::Entity::find()
            .filter(reports::Column::ResolvedAt.is_null())
            .count(&self.db)
            .await?)
    }
}
