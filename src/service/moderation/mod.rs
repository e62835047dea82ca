//! Who may upload, report and delete, and what operators do about abuse:
//! upload keys with quotas, per-address rate limits, bans by CIDR, the
//! blocklist of pictures, reports, and expiry requests. No HTTP here; the
//! routes hand in the client's address and the key they were shown.

use std::net::IpAddr;
use std::time::Duration;

mod bans;
mod keys;
mod reports;

pub use bans::Ban;
pub use keys::KeyListing;
pub use reports::{MAX_REPORT_TEXT, REPORT_REASONS, Report};

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use crate::config::{Access, Config, RateLimitsConfig, parse_duration};
use crate::db::entities::{blocklist, upload_keys};
use crate::service::error::{Error, Result};
pub use crate::service::model::{KeyInfo, Uploader};
use crate::service::rate::{Limit, RateLimiter, Subject, Verdict};

/// Every key starts so, which makes a leaked one easy to search for.
pub const KEY_PREFIX: &str = "kt_";

/// The rules of the instance: who may upload, report and delete, and how
/// much; what is kept about them; what operators have blocked and banned.
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
        match addr {
            Some(addr) if self.is_banned(addr).await? => Err(Error::Banned),
            _ => Ok(()),
        }
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
}

#[async_trait::async_trait]
impl crate::service::images::UploadRules for Moderation {
    async fn refuse_blocked(&self, sha256: &str) -> Result<()> {
        self.check_blocked(sha256).await
    }

    fn address_kept(&self, addr: Option<IpAddr>) -> Option<String> {
        self.kept_addr(addr)
    }

    async fn key_used(&self, key_id: i64) {
        Moderation::key_used(self, key_id).await;
    }
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
