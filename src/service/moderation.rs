//! Who may upload, report and delete, and what operators do about abuse:
//! upload keys with quotas, per-address rate limits, bans by CIDR, the
//! blocklist of pictures, reports, and expiry requests. No HTTP here; the
//! routes hand in the client's address and the key they were shown.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use sha2::{Digest, Sha256};

use crate::config::{Access, Config, RateLimitsConfig, parse_duration};
use crate::db::entities::{bans, blocklist, images, reports, upload_keys};
use crate::service::error::{Error, Result};
use crate::service::images::{Images, Listing, TOMBSTONE_BLOCKED};
use crate::service::model::ImageInfo;
use crate::service::rate::{Limit, RateLimiter, Subject, Verdict};

/// Every key starts so, which makes a leaked one easy to search for.
pub const KEY_PREFIX: &str = "kt_";

/// Longest text a report may carry, in characters.
pub const MAX_REPORT_TEXT: usize = 2000;

/// What a report may be about, as the form and the API name it.
pub const REPORT_REASONS: &[(&str, &str)] = &[
    ("illegal", "Illegal content"),
    ("personal_information", "Personal information"),
    ("spam", "Spam"),
    ("other", "Something else"),
];

/// An upload key, as the routes and commands see it (never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: i64,
    pub name: String,
    pub admin: bool,
    pub quota_bytes: Option<i64>,
    pub uploads_per_minute: Option<i32>,
}

impl From<upload_keys::Model> for KeyInfo {
    fn from(row: upload_keys::Model) -> Self {
        Self {
            id: row.id,
            name: row.name,
            admin: row.admin,
            quota_bytes: row.quota_bytes,
            uploads_per_minute: row.uploads_per_minute,
        }
    }
}

/// Who is uploading: the key shown (if any) and the client's address.
#[derive(Debug, Clone, Default)]
pub struct Uploader {
    pub key: Option<KeyInfo>,
    pub addr: Option<IpAddr>,
    /// When the upload is to be deleted, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// The bucket its uploads are counted in, if any.
    pub rate: Option<(Subject, Limit)>,
}

/// A key as `kitteh keys list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyListing {
    pub name: String,
    pub admin: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub uploads: u64,
    pub bytes: u64,
    pub quota_bytes: Option<i64>,
    pub uploads_per_minute: Option<i32>,
}

#[derive(Debug, FromQueryResult)]
struct Usage {
    uploads: Option<i64>,
    bytes: Option<i64>,
}

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

/// A ban as `kitteh ban list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ban {
    pub cidr: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

pub struct Moderation {
    db: DatabaseConnection,
    access: Access,
    limits: RateLimitsConfig,
    retention_days: u32,
    default_expiry: Option<Duration>,
    max_expiry: Option<Duration>,
    max_expiry_text: String,
    uploads: RateLimiter,
    reports: RateLimiter,
    wrong_deletes: RateLimiter,
    wrong_keys: RateLimiter,
}

impl Moderation {
    pub fn new(db: DatabaseConnection, config: &Config) -> Self {
        let u = &config.uploads;
        Self {
            db,
            access: u.access,
            limits: config.rate_limits.clone(),
            retention_days: config.privacy.ip_retention_days,
            // With a maximum and no default, an upload that says nothing
            // lives as long as the maximum allows.
            default_expiry: u.default_expiry().or(u.max_expiry()),
            max_expiry: u.max_expiry(),
            max_expiry_text: u.max_expiry.clone(),
            uploads: RateLimiter::new("uploads"),
            reports: RateLimiter::new("reports"),
            wrong_deletes: RateLimiter::new("wrong_delete_tokens"),
            wrong_keys: RateLimiter::new("wrong_keys"),
        }
    }

    pub fn access(&self) -> Access {
        self.access
    }

    pub fn ip_retention_days(&self) -> u32 {
        self.retention_days
    }

    /// The longest expiry accepted, if there is one.
    pub fn max_expiry(&self) -> Option<Duration> {
        self.max_expiry
    }

    /// What an upload that says nothing gets.
    pub fn default_expiry(&self) -> Option<Duration> {
        self.default_expiry
    }

    /// The key behind `presented`, shown from `addr`; None when none was
    /// presented. A key that is not known is refused even on an open
    /// instance (its client meant to use one and should hear that it is
    /// wrong), and counted against the address like a wrong delete token:
    /// a run of guesses is slowed down before it is looked up.
    pub async fn key(
        &self,
        addr: Option<IpAddr>,
        presented: Option<&str>,
    ) -> Result<Option<KeyInfo>> {
        let Some(presented) = presented.map(str::trim).filter(|k| !k.is_empty()) else {
            return Ok(None);
        };
        let bucket = addr.zip(self.wrong_key_limit());
        if let Some((addr, limit)) = bucket {
            allow(self.wrong_keys.peek(Subject::addr(addr), limit))?;
        }
        let found = upload_keys::Entity::find()
            .filter(upload_keys::Column::KeyHash.eq(hash_key(presented)))
            .one(&self.db)
            .await?;
        let Some(row) = found else {
            if let Some((addr, limit)) = bucket {
                self.wrong_keys.take(Subject::addr(addr), limit);
            }
            return Err(Error::KeyRequired(
                "the key sent is not a key of this server",
            ));
        };
        if row.revoked_at.is_some() {
            return Err(Error::KeyRevoked);
        }
        Ok(Some(KeyInfo::from(row)))
    }

    /// Whether an upload from `addr` with `presented` may go ahead: not
    /// banned, a valid key where keys are required, within the rate.
    pub async fn admit_upload(
        &self,
        addr: Option<IpAddr>,
        presented: Option<&str>,
    ) -> Result<Uploader> {
        self.check_ban(addr).await?;
        let key = self.key(addr, presented).await?;
        if self.access == Access::Keys && key.is_none() {
            return Err(Error::KeyRequired("no key was sent"));
        }
        let rate = match &key {
            Some(k) if k.admin => None,
            Some(KeyInfo {
                id,
                uploads_per_minute: Some(n),
                ..
            }) if *n > 0 => {
                let n = u32::try_from(*n).unwrap_or(u32::MAX);
                // A key's own limit allows a minute's worth at once.
                Limit::new(n, n).map(|limit| (Subject::Key(*id), limit))
            }
            _ => addr
                .zip(Limit::new(
                    self.limits.uploads_per_minute,
                    self.limits.uploads_burst,
                ))
                .map(|(addr, limit)| (Subject::addr(addr), limit)),
        };
        if let Some((subject, limit)) = rate {
            allow(self.uploads.take(subject, limit))?;
        }
        Ok(Uploader {
            key,
            addr,
            expires_at: None,
            rate,
        })
    }

    /// Counts one more file of a request that carries several against the
    /// uploader's rate limit.
    pub fn admit_another(&self, uploader: &Uploader) -> Result<()> {
        match uploader.rate {
            Some((subject, limit)) => allow(self.uploads.take(subject, limit)),
            None => Ok(()),
        }
    }

    /// Whether a report from `addr` may be taken.
    pub async fn admit_report(&self, addr: Option<IpAddr>) -> Result<()> {
        self.check_ban(addr).await?;
        if let (Some(addr), Some(limit)) = (
            addr,
            Limit::new(self.limits.reports_per_minute, self.limits.reports_burst),
        ) {
            allow(self.reports.take(Subject::addr(addr), limit))?;
        }
        Ok(())
    }

    /// Whether a delete from `addr` may be tried: not banned, and not
    /// out of wrong guesses.
    pub async fn admit_delete(&self, addr: Option<IpAddr>) -> Result<()> {
        self.check_ban(addr).await?;
        if let (Some(addr), Some(limit)) = (addr, self.wrong_delete_limit()) {
            allow(self.wrong_deletes.peek(Subject::addr(addr), limit))?;
        }
        Ok(())
    }

    /// Counts a wrong delete token against `addr`.
    pub fn wrong_delete(&self, addr: Option<IpAddr>) {
        if let (Some(addr), Some(limit)) = (addr, self.wrong_delete_limit()) {
            self.wrong_deletes.take(Subject::addr(addr), limit);
        }
    }

    fn wrong_key_limit(&self) -> Option<Limit> {
        Limit::new(
            self.limits.wrong_keys_per_minute,
            self.limits.wrong_keys_burst,
        )
    }

    fn wrong_delete_limit(&self) -> Option<Limit> {
        Limit::new(
            self.limits.wrong_delete_tokens_per_minute,
            self.limits.wrong_delete_tokens_burst,
        )
    }

    /// When an upload asking for `asked` (`1h`, `7d`, `never`; None or
    /// empty for the default) expires, within `uploads.max_expiry`.
    pub fn expiry(&self, asked: Option<&str>) -> Result<Option<DateTime<Utc>>> {
        let asked = asked.map(str::trim).filter(|a| !a.is_empty());
        let wanted = match asked {
            None => self.default_expiry,
            Some(text) => parse_duration(text).map_err(Error::BadExpiry)?,
        };
        if let Some(max) = self.max_expiry
            && wanted.is_none_or(|w| w > max)
        {
            return Err(Error::ExpiryTooLong {
                asked: asked.unwrap_or("never").to_string(),
                max: self.max_expiry_text.clone(),
            });
        }
        Ok(wanted.map(|w| Utc::now() + chrono::Duration::from_std(w).unwrap_or_default()))
    }

    /// The address to store with an upload or report: none when
    /// addresses are not kept at all.
    pub fn kept_addr(&self, addr: Option<IpAddr>) -> Option<String> {
        addr.filter(|_| self.retention_days > 0)
            .map(|a| a.to_canonical().to_string())
    }

    pub async fn check_ban(&self, addr: Option<IpAddr>) -> Result<()> {
        let Some(addr) = addr else {
            return Ok(());
        };
        let addr = addr.to_canonical();
        let banned = bans::Entity::find()
            .all(&self.db)
            .await?
            .iter()
            .filter_map(|b| b.cidr.parse::<IpNet>().ok())
            .any(|net| net.contains(&addr));
        if banned { Err(Error::Banned) } else { Ok(()) }
    }

    /// Refuses a picture whose stored bytes are on the blocklist.
    pub async fn check_blocked(&self, sha256: &str) -> Result<()> {
        let found = blocklist::Entity::find_by_id(sha256.to_string())
            .one(&self.db)
            .await?;
        if found.is_some() {
            Err(Error::Blocked)
        } else {
            Ok(())
        }
    }

    /// Refuses `needed` more bytes for a key that would pass its quota: a
    /// first, cheap look before anything is written.
    pub async fn check_quota(&self, key: &KeyInfo, needed: u64) -> Result<()> {
        let Some(quota) = key.quota_bytes else {
            return Ok(());
        };
        let quota = u64::try_from(quota).unwrap_or(0);
        let (_, used) = usage(&self.db, key.id).await?;
        if used + needed > quota {
            return Err(Error::QuotaExceeded {
                used,
                quota,
                needed,
            });
        }
        Ok(())
    }

    /// Serialises uploads with one key inside their transactions, so that
    /// uploads in parallel cannot pass its quota together: on PostgreSQL
    /// the key's row is locked; on SQLite the insert that follows holds the
    /// database's write lock anyway.
    pub async fn lock_key<C: ConnectionTrait>(&self, conn: &C, key: &KeyInfo) -> Result<()> {
        if key.quota_bytes.is_some() && conn.get_database_backend() == DbBackend::Postgres {
            upload_keys::Entity::find_by_id(key.id)
                .lock_exclusive()
                .one(conn)
                .await?;
        }
        Ok(())
    }

    /// After the insert, in the same transaction: the key's usage, the new
    /// upload of `needed` bytes included, within its quota.
    pub async fn recheck_quota<C: ConnectionTrait>(
        &self,
        conn: &C,
        key: &KeyInfo,
        needed: u64,
    ) -> Result<()> {
        let Some(quota) = key.quota_bytes else {
            return Ok(());
        };
        let quota = u64::try_from(quota).unwrap_or(0);
        let (_, with_new) = usage(conn, key.id).await?;
        if with_new > quota {
            return Err(Error::QuotaExceeded {
                used: with_new.saturating_sub(needed),
                quota,
                needed,
            });
        }
        Ok(())
    }

    /// Notes that a key was just used.
    pub async fn key_used(&self, key_id: i64) {
        let result = upload_keys::Entity::update_many()
            .col_expr(upload_keys::Column::LastUsedAt, Expr::value(Utc::now()))
            .filter(upload_keys::Column::Id.eq(key_id))
            .exec(&self.db)
            .await;
        if let Err(e) = result {
            tracing::warn!("could not record the use of key {key_id}: {e}");
        }
    }

    // Keys.

    /// Makes a key and returns it: the only time it is ever shown.
    pub async fn create_key(
        &self,
        name: &str,
        quota_bytes: Option<u64>,
        admin: bool,
        uploads_per_minute: Option<u32>,
    ) -> Result<String> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(Error::BadForm(
                "a key's name must be 1 to 100 characters, without control characters".into(),
            ));
        }
        let exists = upload_keys::Entity::find()
            .filter(upload_keys::Column::Name.eq(name))
            .one(&self.db)
            .await?;
        if exists.is_some() {
            return Err(Error::BadForm(format!(
                "a key called {name:?} exists already; revoke it or choose another name"
            )));
        }
        let key = format!("{KEY_PREFIX}{}", hex::encode(rand::random::<[u8; 20]>()));
        upload_keys::ActiveModel {
            name: Set(name.to_string()),
            key_hash: Set(hash_key(&key)),
            admin: Set(admin),
            quota_bytes: Set(quota_bytes.map(|q| i64::try_from(q).unwrap_or(i64::MAX))),
            uploads_per_minute: Set(
                uploads_per_minute.map(|n| i32::try_from(n).unwrap_or(i32::MAX))
            ),
            created_at: Set(Utc::now()),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok(key)
    }

    pub async fn list_keys(&self) -> Result<Vec<KeyListing>> {
        let rows = upload_keys::Entity::find()
            .order_by_asc(upload_keys::Column::Name)
            .all(&self.db)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (uploads, bytes) = usage(&self.db, row.id).await?;
            out.push(KeyListing {
                name: row.name,
                admin: row.admin,
                created_at: row.created_at,
                last_used_at: row.last_used_at,
                revoked_at: row.revoked_at,
                uploads,
                bytes,
                quota_bytes: row.quota_bytes,
                uploads_per_minute: row.uploads_per_minute,
            });
        }
        Ok(out)
    }

    /// Revokes a key by name; false when there is no such key.
    pub async fn revoke_key(&self, name: &str) -> Result<bool> {
        let done = upload_keys::Entity::update_many()
            .col_expr(upload_keys::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(upload_keys::Column::Name.eq(name))
            .filter(upload_keys::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected > 0)
    }

    /// Every key's name by id.
    pub async fn key_names(&self) -> Result<std::collections::HashMap<i64, String>> {
        Ok(upload_keys::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .map(|k| (k.id, k.name))
            .collect())
    }

    pub async fn key_id(&self, name: &str) -> Result<Option<i64>> {
        Ok(upload_keys::Entity::find()
            .filter(upload_keys::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .map(|k| k.id))
    }

    // Bans.

    /// Bans a network; returns it as stored (`203.0.113.7/32`).
    pub async fn ban(&self, cidr: &str, reason: &str) -> Result<IpNet> {
        let net = parse_net(cidr)?;
        let existing = bans::Entity::find_by_id(net.to_string())
            .one(&self.db)
            .await?;
        if existing.is_none() {
            bans::ActiveModel {
                cidr: Set(net.to_string()),
                reason: Set(reason.to_string()),
                created_at: Set(Utc::now()),
            }
            .insert(&self.db)
            .await?;
        }
        Ok(net)
    }

    pub async fn bans(&self) -> Result<Vec<Ban>> {
        Ok(bans::Entity::find()
            .order_by_asc(bans::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|b| Ban {
                cidr: b.cidr,
                reason: b.reason,
                created_at: b.created_at,
            })
            .collect())
    }

    /// Lifts a ban; false when there was none.
    pub async fn unban(&self, cidr: &str) -> Result<bool> {
        let net = parse_net(cidr)?;
        let done = bans::Entity::delete_by_id(net.to_string())
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected > 0)
    }

    // Blocklist.

    pub async fn block(&self, sha256: &str, reason: &str) -> Result<()> {
        let existing = blocklist::Entity::find_by_id(sha256.to_string())
            .one(&self.db)
            .await?;
        if existing.is_none() {
            blocklist::ActiveModel {
                sha256: Set(sha256.to_string()),
                reason: Set(reason.to_string()),
                created_at: Set(Utc::now()),
            }
            .insert(&self.db)
            .await?;
        }
        Ok(())
    }

    // Reports.

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
    pub async fn reports(&self, all: bool) -> Result<Vec<Report>> {
        self.reports_up_to(all, None).await
    }

    pub async fn reports_up_to(&self, all: bool, limit: Option<u64>) -> Result<Vec<Report>> {
        let mut query = reports::Entity::find().order_by_asc(reports::Column::Id);
        if !all {
            query = query.filter(reports::Column::ResolvedAt.is_null());
        }
        if let Some(limit) = limit {
            query = query.limit(limit);
        }
        Ok(query
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

/// Deletes an image for an operator, and with `block` puts its bytes on
/// the blocklist first (so the same picture cannot come back) and leaves a
/// tombstone (so its name answers 451). Open reports about it are
/// resolved.
pub async fn take_down(
    images: &Images,
    moderation: &Moderation,
    token: &str,
    block: bool,
) -> Result<ImageInfo> {
    let image = images.get(token).await?;
    if !block {
        let removed = images.remove(&image.token, None).await?;
        moderation.resolve_reports(&image.token, "deleted").await?;
        return Ok(removed);
    }
    moderation
        .block(image.sha256(), &format!("blocked with {}", image.name))
        .await?;
    // Every name showing the same bytes goes with it.
    for copy in images.with_sha256(image.sha256()).await? {
        match images.remove(&copy.token, Some(TOMBSTONE_BLOCKED)).await {
            Ok(_) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        moderation.resolve_reports(&copy.token, "blocked").await?;
    }
    Ok(image)
}

/// Deletes every image still known to have come from `net`; returns them.
pub async fn purge(images: &Images, moderation: &Moderation, net: IpNet) -> Result<Vec<ImageInfo>> {
    let found = images
        .listing(&Listing {
            net: Some(net),
            ..Listing::default()
        })
        .await?;
    let mut removed = Vec::with_capacity(found.len());
    for listed in found {
        match take_down(images, moderation, &listed.image.token, false).await {
            Ok(image) => removed.push(image),
            // Gone meanwhile (expired, deleted by its owner): nothing to do.
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// (uploads, bytes) stored with a key.
async fn usage<C: ConnectionTrait>(conn: &C, key_id: i64) -> Result<(u64, u64)> {
    let usage = images::Entity::find()
        .select_only()
        .column_as(
            Expr::expr(Func::count(Expr::col(images::Column::Id))),
            "uploads",
        )
        .column_as(
            // PostgreSQL sums a BIGINT into a NUMERIC.
            Expr::expr(Func::cast_as(
                Func::sum(Expr::col(images::Column::Size)),
                sea_orm::sea_query::Alias::new("BIGINT"),
            )),
            "bytes",
        )
        .filter(images::Column::KeyId.eq(key_id))
        .into_model::<Usage>()
        .one(conn)
        .await?;
    Ok(usage.map_or((0, 0), |u| {
        (
            u64::try_from(u.uploads.unwrap_or(0)).unwrap_or(0),
            u64::try_from(u.bytes.unwrap_or(0)).unwrap_or(0),
        )
    }))
}

fn allow(verdict: Verdict) -> Result<()> {
    if verdict.allowed {
        Ok(())
    } else {
        Err(Error::RateLimited(verdict))
    }
}

/// `203.0.113.7` or `2001:db8::/32` as a network. An IPv4 address alone is
/// a network of one; an IPv6 address alone is its /64, what one host
/// usually holds and can pick any address in (the rate limits count the
/// same way). IPv4-mapped IPv6 networks are written as IPv4, which is how
/// client addresses are compared.
pub fn parse_net(text: &str) -> Result<IpNet> {
    let text = text.trim();
    let bad = || {
        Error::BadForm(format!(
            "{text:?} is not an address or a CIDR such as 203.0.113.0/24"
        ))
    };
    let net = match text.parse::<IpNet>() {
        Ok(net) => net.trunc(),
        Err(_) => match text.parse::<IpAddr>().map_err(|_| bad())?.to_canonical() {
            IpAddr::V4(v4) => IpNet::from(IpAddr::V4(v4)),
            IpAddr::V6(v6) => IpNet::new(IpAddr::V6(v6), 64).map_err(|_| bad())?.trunc(),
        },
    };
    if let IpNet::V6(v6) = net
        && let Some(v4) = v6.addr().to_ipv4_mapped()
        && v6.prefix_len() >= 96
    {
        return IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96)
            .map(|n| n.trunc())
            .map_err(|_| bad());
    }
    Ok(net)
}

/// Keys are stored as their SHA-256: a leaked database holds no key.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_from_cidrs_and_single_addresses() {
        assert_eq!(
            parse_net("203.0.113.7").unwrap().to_string(),
            "203.0.113.7/32"
        );
        assert_eq!(
            parse_net("203.0.113.77/24").unwrap().to_string(),
            "203.0.113.0/24"
        );
        assert_eq!(
            parse_net("2001:db8::1/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert!(parse_net("not an address").is_err());
        assert_eq!(
            parse_net("2001:db8:1:2:3:4:5:6").unwrap().to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            parse_net("::ffff:203.0.113.0/120").unwrap().to_string(),
            "203.0.113.0/24"
        );
        assert_eq!(
            parse_net("::ffff:203.0.113.9").unwrap().to_string(),
            "203.0.113.9/32"
        );
        assert!(parse_net("10.0.0.0/33").is_err());
    }
}
