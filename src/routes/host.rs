//! Who is asking, and for which site. The Host header ends up in every
//! absolute URL Kitteh hands out when `server.public_url` is empty, so it
//! is believed only for the names in `server.allowed_hosts`; a request for
//! any other name gets a 400 that says what to configure. Forwarded headers
//! (`X-Forwarded-For`, `-Host`, `-Proto`) are believed only from
//! `server.trusted_proxies`.

use std::net::IpAddr;

use ipnet::IpNet;
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{Method, uri::Origin};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Data, Route, get, routes};

use crate::config::{ServerConfig, parse_cidr};
use crate::routes::error::{PageError, Problem};

/// Where a request for a host this server does not answer for is sent.
const REFUSED_PATH: &str = "/__kitteh/unknown-host";
/// Where a request that did not come through the edge is sent.
const DIRECT_PATH: &str = "/__kitteh/not-through-the-edge";

/// The secret the edge sends with every request it passes on
/// (`edge::proxy::SECRET`): the app's port is on loopback, but other
/// processes there must not be able to claim a client address.
pub struct EdgeSecret(pub String);

/// The rules, from `[server]`.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// With a public URL, links never come from the Host header.
    check_host: bool,
    allowed: Vec<String>,
    trusted: Vec<IpNet>,
}

impl HostPolicy {
    pub fn from_config(server: &ServerConfig) -> Self {
        Self {
            check_host: server.public_url.is_empty(),
            allowed: server
                .effective_allowed_hosts()
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
            trusted: server
                .trusted_proxies
                .iter()
                .filter_map(|c| parse_cidr(c))
                .collect(),
        }
    }

    fn trusts(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|ip| self.trusted.iter().any(|net| net.contains(&ip)))
    }

    /// Whether `host` (as sent: a name or address, perhaps with a port) is
    /// one this server answers for. An entry without a port allows any.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let name = strip_port(&host);
        self.allowed
            .iter()
            .any(|allowed| *allowed == host || *allowed == name)
    }
}

/// `example.com:4000` → `example.com`; `[::1]:4000` → `[::1]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// What the host rules read from a request, whoever parsed it (Rocket or
/// the edge).
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked<'a> {
    /// The connection's peer: the client, or a proxy in front of Kitteh.
    pub peer: Option<IpAddr>,
    pub host: Option<&'a str>,
    pub forwarded_host: Option<&'a str>,
    pub forwarded_proto: Option<&'a str>,
}

impl<'a> Asked<'a> {
    /// The facts of a request that reached the app through the edge: the
    /// peer is the address the edge vouched for (Rocket's `ip_header`).
    pub fn of(req: &'a Request<'_>) -> Self {
        Self {
            peer: req.client_ip(),
            host: req.headers().get_one("Host"),
            forwarded_host: req.headers().get_one("X-Forwarded-Host"),
            forwarded_proto: req.headers().get_one("X-Forwarded-Proto"),
        }
    }
}

/// The first value of a header, when a trusted proxy set it.
fn first_value(value: Option<&str>) -> Option<&str> {
    value
        .map(|v| v.split(',').next().unwrap_or_default().trim())
        .filter(|v| !v.is_empty())
}

impl HostPolicy {
    /// The host the client asked for: from a trusted proxy's
    /// `X-Forwarded-Host`, else the Host header.
    pub fn requested_host(&self, asked: &Asked<'_>) -> Option<String> {
        self.trusts(asked.peer)
            .then(|| first_value(asked.forwarded_host))
            .flatten()
            .or(asked.host)
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
    }

    /// `https` when a trusted proxy says the client used it, else `http`.
    pub fn requested_scheme(&self, asked: &Asked<'_>) -> &'static str {
        match self
            .trusts(asked.peer)
            .then(|| first_value(asked.forwarded_proto))
            .flatten()
        {
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        }
    }

    /// The client's address: the peer, or, when the peer is a trusted
    /// proxy, the nearest address in `X-Forwarded-For` that is not one.
    pub fn client_addr<'h>(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: impl Iterator<Item = &'h str>,
    ) -> Option<IpAddr> {
        if !self.trusts(peer) {
            return peer;
        }
        let chain: Vec<IpAddr> = forwarded_for
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        chain
            .into_iter()
            .rev()
            .find(|ip| !self.trusts(Some(*ip)))
            .or(peer)
    }

    /// Whether a request for `path` must name an allowed host. Health
    /// checks are exempt: load balancers probe by address, and the answers
    /// carry no links.
    pub fn checks(&self, path: &str) -> bool {
        self.check_host && !matches!(path, "/healthz" | "/readyz")
    }

    /// Whether a proxy in front of Kitteh at `peer` may open any number
    /// of connections (it carries many clients).
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusts(Some(peer))
    }
}

/// The client's address, for a request that reached the app.
pub fn client_addr(req: &Request<'_>, policy: &HostPolicy) -> Option<IpAddr> {
    policy.client_addr(req.client_ip(), req.headers().get("X-Forwarded-For"))
}

/// The host a refused request asked for, kept for the answer.
struct RefusedHost(String);

/// Sends a request for a host this server does not answer for to the
/// route that says so. Health checks are exempt: load balancers probe by
/// address, and the answers carry no links.
pub struct HostGuard;

#[rocket::async_trait]
impl Fairing for HostGuard {
    fn info(&self) -> Info {
        Info {
            name: "host allowlist",
            kind: Kind::Request,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        if let Some(EdgeSecret(secret)) = req.rocket().state::<EdgeSecret>() {
            let sent = req
                .headers()
                .get_one(crate::edge::proxy::SECRET.as_str())
                .unwrap_or_default();
            if !bool::from(subtle::ConstantTimeEq::ct_eq(
                sent.as_bytes(),
                secret.as_bytes(),
            )) {
                req.set_method(Method::Get);
                req.set_uri(Origin::parse(DIRECT_PATH).unwrap_or(Origin::ROOT));
                return;
            }
        }
        let Some(policy) = req.rocket().state::<HostPolicy>() else {
            return;
        };
        if !policy.checks(req.uri().path().as_str()) {
            return;
        }
        let host = policy.requested_host(&Asked::of(req)).unwrap_or_default();
        if policy.allows(&host) {
            return;
        }
        req.local_cache(|| RefusedHost(host));
        req.set_method(Method::Get);
        req.set_uri(Origin::parse(REFUSED_PATH).unwrap_or(Origin::ROOT));
    }
}

pub fn routes() -> Vec<Route> {
    routes![unknown_host, not_through_the_edge]
}

#[get("/__kitteh/not-through-the-edge")]
fn not_through_the_edge() -> PageError {
    PageError(Problem::not_through_the_edge())
}

#[get("/__kitteh/unknown-host")]
fn unknown_host(req_host: RefusedHostGuard) -> PageError {
    PageError(Problem::bad_host(&req_host.0))
}

/// The refused host, for the route above (empty when it was reached
/// directly).
pub struct RefusedHostGuard(String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for RefusedHostGuard {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let host = req.local_cache(|| RefusedHost(String::new())).0.clone();
        Outcome::Success(RefusedHostGuard(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str]) -> HostPolicy {
        HostPolicy {
            check_host: true,
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            trusted: vec![],
        }
    }

    #[test]
    fn hosts_match_by_name_with_any_port_or_exactly_with_one() {
        let p = policy(&["localhost", "127.0.0.1", "[::1]", "kitteh.example:8443"]);
        assert!(p.allows("localhost:4000"));
        assert!(p.allows("LOCALHOST"));
        assert!(p.allows("127.0.0.1:1"));
        assert!(p.allows("[::1]:4000"));
        assert!(p.allows("kitteh.example:8443"));
        assert!(!p.allows("kitteh.example"));
        assert!(!p.allows("kitteh.example:443"));
        assert!(!p.allows("evil.example"));
        assert!(!p.allows("localhost.evil.example"));
        assert!(!p.allows(""));
    }
}
