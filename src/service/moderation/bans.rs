//! Bans by CIDR. A ban is stored as its network (`203.0.113.0/24`), and an
//! address is checked by looking up every network it belongs to (33 for
//! IPv4, 129 for IPv6) by primary key in one statement: the cost of a
//! check does not grow with the number of bans.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::{Moderation, parse_net};
use crate::db::entities::bans;
use crate::service::error::Result;

/// A ban as `kitteh ban list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Ban {
    pub cidr: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

/// Every network `addr` belongs to, written as bans are stored.
pub fn networks_of(addr: IpAddr) -> Vec<String> {
    let addr = addr.to_canonical();
    let widest = match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    (0..=widest)
        .filter_map(|prefix| IpNet::new(addr, prefix).ok())
        .map(|net| net.trunc().to_string())
        .collect()
}

impl Moderation {
    /// Whether a ban covers `addr`.
    pub async fn is_banned(&self, addr: IpAddr) -> Result<bool> {
        Ok(bans::Entity::find()
            .filter(bans::Column::Cidr.is_in(networks_of(addr)))
            .count(&self.db)
            .await?
            > 0)
    }

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

    /// Bans in the order of their networks, at most `limit` after `after`.
    pub async fn bans(&self, after: Option<&str>, limit: u64) -> Result<Vec<Ban>> {
        let mut query = bans::Entity::find().order_by_asc(bans::Column::Cidr);
        if let Some(after) = after {
            query = query.filter(bans::Column::Cidr.gt(after));
        }
        Ok(query
            .limit(limit)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_belongs_to_every_network_as_bans_are_written() {
        let v4 = networks_of("203.0.113.7".parse().unwrap());
        assert_eq!(v4.len(), 33);
        assert!(v4.contains(&"203.0.113.7/32".to_string()));
        assert!(v4.contains(&"203.0.113.0/24".to_string()));
        assert!(v4.contains(&"0.0.0.0/0".to_string()));
        // Each is what parse_net stores for the same network.
        assert_eq!(
            parse_net("203.0.113.99/24").unwrap().to_string(),
            "203.0.113.0/24"
        );
        let v6 = networks_of("2001:db8:1:2::9".parse().unwrap());
        assert_eq!(v6.len(), 129);
        assert!(v6.contains(&parse_net("2001:db8:1:2::1").unwrap().to_string()));
        let mapped = networks_of("::ffff:203.0.113.7".parse().unwrap());
        assert_eq!(mapped, v4);
    }
}
