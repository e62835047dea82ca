//! Rate limits per client address (or per key), kept in memory by each
//! replica: a token bucket of `burst` refilled at `per_minute`. Each
//! subject may carry its own pair (a key's own limit), and every answer
//! says what the IETF RateLimit headers need (remaining, reset, retry),
//! which is why this is a small bucket of our own rather than a GCRA crate
//! that hides those numbers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

/// Buckets kept before full (idle) ones are forgotten.
const PRUNE_AT: usize = 10_000;

/// Buckets kept for single addresses and keys. Past this (a flood from very
/// many addresses, a large IPv6 prefix spread thin) no bucket is forgotten,
/// which would let the flood start afresh: a newcomer shares the bucket of
/// its network (IPv4 /24, IPv6 /48) instead, and past a tenth more of those
/// one bucket for everyone else.
const HARD_CAP: usize = 200_000;

/// How often, and how many at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    pub per_minute: u32,
    pub burst: u32,
}

impl Limit {
    pub fn new(per_minute: u32, burst: u32) -> Option<Self> {
        (per_minute > 0 && burst > 0).then_some(Self { per_minute, burst })
    }

    fn per_second(self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    /// Seconds an empty bucket takes to fill again: the draft's window.
    pub fn window_seconds(self) -> u64 {
        (f64::from(self.burst) / self.per_second()).ceil() as u64
    }
}

/// Whose bucket: an address (IPv6 by its /64, what one host usually
/// holds) or an upload key with a limit of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    Addr(IpAddr),
    Key(i64),
    /// A network's shared bucket, once the table is full.
    Network(IpAddr),
    /// Everyone's shared bucket, once even the networks' are too many.
    Overflow,
}

impl Subject {
    pub fn addr(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::Addr(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Self::Addr(IpAddr::V6(bits.into()))
                }
            },
            v4 => Self::Addr(v4),
        }
    }

    /// The network this subject's address belongs to (IPv4 /24, IPv6 /48).
    fn network(self) -> Self {
        match self {
            Self::Addr(IpAddr::V4(v4)) => {
                Self::Network(IpAddr::V4((u32::from(v4) & 0xffff_ff00).into()))
            }
            Self::Addr(IpAddr::V6(v6)) => {
                let bits = u128::from(v6) & !((1u128 << 80) - 1);
                Self::Network(IpAddr::V6(bits.into()))
            }
            other => other,
        }
    }
}

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Which limit (`uploads`, `reports`, `wrong_delete_tokens`).
    pub name: &'static str,
    pub limit: Limit,
    pub allowed: bool,
    /// Whole requests left now.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_seconds: u64,
    /// Seconds until the next request would be allowed (0 if it would).
    pub retry_after: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One kind of limit, for every subject.
pub struct RateLimiter {
    name: &'static str,
    buckets: Mutex<Buckets>,
    hard_cap: usize,
}

#[derive(Default)]
struct Buckets {
    map: HashMap<(Subject, Limit), Bucket>,
    /// When full buckets were last forgotten: at most once a second, so a
    /// flood of new addresses does not make every check scan them all.
    pruned: Option<Instant>,
}

impl RateLimiter {
    pub fn new(name: &'static str) -> Self {
        Self::with_cap(name, HARD_CAP)
    }

    fn with_cap(name: &'static str, hard_cap: usize) -> Self {
        Self {
            name,
            buckets: Mutex::new(Buckets::default()),
            hard_cap,
        }
    }

    /// Takes one request from `subject`'s bucket, if there is one left.
    pub fn take(&self, subject: Subject, limit: Limit) -> Verdict {
        self.check(subject, limit, true, Instant::now())
    }

    /// Whether a request would be allowed, taking nothing: for limits that
    /// count only failures (wrong delete tokens).
    pub fn peek(&self, subject: Subject, limit: Limit) -> Verdict {
        self.check(subject, limit, false, Instant::now())
    }

    fn check(&self, subject: Subject, limit: Limit, take: bool, now: Instant) -> Verdict {
        let mut guard = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Buckets { map, pruned } = &mut *guard;
        let due = pruned.is_none_or(|at| now.saturating_duration_since(at).as_secs() >= 1);
        if map.len() >= PRUNE_AT.min(self.hard_cap) && due {
            *pruned = Some(now);
            map.retain(|(_, l), b| refilled(*b, *l, now) < f64::from(l.burst));
        }
        let subject = self.place(map, subject, limit);
        let full = Bucket {
            tokens: f64::from(limit.burst),
            at: now,
        };
        let bucket = map.entry((subject, limit)).or_insert(full);
        let tokens = refilled(*bucket, limit, now);
        let allowed = tokens >= 1.0;
        let left = if allowed && take {
            tokens - 1.0
        } else {
            tokens
        };
        *bucket = Bucket {
            tokens: left,
            at: now,
        };
        let rate = limit.per_second();
        let reset_seconds = ((f64::from(limit.burst) - left) / rate).ceil() as u64;
        let retry_after = if left >= 1.0 {
            0
        } else {
            ((1.0 - left) / rate).ceil().max(1.0) as u64
        };
        Verdict {
            name: self.name,
            limit,
            allowed,
            remaining: left.floor() as u32,
            reset_seconds,
            retry_after,
        }
    }

    /// Whose bucket `subject` uses: its own when it has one or there is
    /// room, else its network's, else the shared one.
    fn place(
        &self,
        map: &HashMap<(Subject, Limit), Bucket>,
        subject: Subject,
        limit: Limit,
    ) -> Subject {
        if map.len() < self.hard_cap || map.contains_key(&(subject, limit)) {
            return subject;
        }
        let network = subject.network();
        if map.len() < self.hard_cap + self.hard_cap / 10 || map.contains_key(&(network, limit)) {
            tracing::debug!(
                limit = self.name,
                buckets = map.len(),
                "rate limit buckets full: a newcomer shares its network's"
            );
            return network;
        }
        Subject::Overflow
    }

    #[cfg(test)]
    fn check_at(&self, subject: Subject, limit: Limit, now: Instant) -> Verdict {
        self.check(subject, limit, true, now)
    }
}

fn refilled(bucket: Bucket, limit: Limit, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at);
    (bucket.tokens + elapsed.as_secs_f64() * limit.per_second()).min(f64::from(limit.burst))
}

/// The `RateLimit-Policy` and `RateLimit` header values of the IETF draft
/// (draft-ietf-httpapi-ratelimit-headers): quota `q` per window `w`
/// seconds, `r` remaining, `t` seconds until the quota is whole again.
pub fn headers(verdict: &Verdict) -> [(&'static str, String); 2] {
    let name = verdict.name;
    [
        (
            "RateLimit-Policy",
            format!(
                "\"{name}\";q={};w={}",
                verdict.limit.burst,
                verdict.limit.window_seconds()
            ),
        ),
        (
            "RateLimit",
            format!(
                "\"{name}\";r={};t={}",
                verdict.remaining, verdict.reset_seconds
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_the_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::new("uploads");
        let limit = Limit::new(30, 3).unwrap();
        let who = Subject::addr("192.0.2.1".parse().unwrap());
        let t0 = Instant::now();
        for left in [2, 1, 0] {
            let v = limiter.check_at(who, limit, t0);
            assert!(v.allowed);
            assert_eq!(v.remaining, left);
        }
        let refused = limiter.check_at(who, limit, t0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, 2, "one every 2 s at 30 a minute");
        assert_eq!(refused.reset_seconds, 6);
        // Another address has its own bucket.
        let other = Subject::addr("192.0.2.2".parse().unwrap());
        assert!(limiter.check_at(other, limit, t0).allowed);
        // Two seconds later one request is allowed again, not two.
        let later = t0 + Duration::from_secs(2);
        assert!(limiter.check_at(who, limit, later).allowed);
        assert!(!limiter.check_at(who, limit, later).allowed);
    }

    #[test]
    fn refilled_buckets_are_forgotten_once_there_are_many() {
        let limiter = RateLimiter::new("uploads");
        let limit = Limit::new(60, 2).unwrap();
        let t0 = Instant::now();
        for i in 0..PRUNE_AT as u32 {
            let who = Subject::addr(std::net::Ipv4Addr::from(i).into());
            limiter.check_at(who, limit, t0);
        }
        let len = || limiter.buckets.lock().unwrap().map.len();
        assert_eq!(len(), PRUNE_AT);
        // Two seconds on every bucket is full again, and forgotten at the
        // next check; the one checked now is all that is kept.
        let later = t0 + Duration::from_secs(2);
        limiter.check_at(Subject::addr("192.0.2.9".parse().unwrap()), limit, later);
        assert_eq!(len(), 1);
    }

    #[test]
    fn a_full_table_keeps_the_buckets_that_filled_it_and_newcomers_share_their_networks() {
        let limiter = RateLimiter::with_cap("uploads", 100);
        let limit = Limit::new(1, 2).unwrap();
        let t0 = Instant::now();
        // A /48 spread over 100 /64s empties every bucket it gets.
        let in_prefix = |i: u128| {
            let base: u128 = "2001:db8:7::".parse::<std::net::Ipv6Addr>().unwrap().into();
            Subject::addr(IpAddr::V6((base | (i << 64)).into()))
        };
        for i in 0..100 {
            assert!(limiter.check_at(in_prefix(i), limit, t0).allowed);
            assert!(limiter.check_at(in_prefix(i), limit, t0).allowed);
        }
        // Those buckets are kept: the first address is still refused.
        assert!(!limiter.check_at(in_prefix(0), limit, t0).allowed);
        // A new /64 of the same /48 shares one bucket with the rest of it.
        assert!(limiter.check_at(in_prefix(500), limit, t0).allowed);
        assert!(limiter.check_at(in_prefix(501), limit, t0).allowed);
        assert!(!limiter.check_at(in_prefix(502), limit, t0).allowed);
        // Someone elsewhere is not held to that network's bucket.
        let elsewhere = Subject::addr("192.0.2.1".parse().unwrap());
        assert!(limiter.check_at(elsewhere, limit, t0).allowed);
        assert!(limiter.buckets.lock().unwrap().map.len() <= 110);
    }

    #[test]
    fn ipv6_addresses_share_a_bucket_per_64() {
        let a = Subject::addr("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Subject::addr("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = Subject::addr("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            Subject::addr("::ffff:192.0.2.1".parse().unwrap()),
            Subject::addr("192.0.2.1".parse().unwrap())
        );
    }

    #[test]
    fn the_draft_headers_name_quota_window_remaining_and_reset() {
        let limiter = RateLimiter::new("reports");
        let v = limiter.take(
            Subject::addr("192.0.2.1".parse().unwrap()),
            Limit::new(6, 3).unwrap(),
        );
        let [policy, state] = headers(&v);
        assert_eq!(policy.1, "\"reports\";q=3;w=30");
        assert_eq!(state.1, "\"reports\";r=2;t=10");
    }
}
