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

/// The first value of a header a trusted proxy set.
fn forwarded<'r>(req: &'r Request<'_>, policy: &HostPolicy, name: &str) -> Option<&'r str> {
    if !policy.trusts(req.remote().map(|a| a.ip())) {
        return None;
    }
    req.headers()
        .get_one(name)
        .map(|v| v.split(',').next().unwrap_or_default().trim())
        .filter(|v| !v.is_empty())
}

/// The host the client asked for: from a trusted proxy's
/// `X-Forwarded-Host`, else the Host header.
pub fn requested_host(req: &Request<'_>, policy: &HostPolicy) -> Option<String> {
    forwarded(req, policy, "X-Forwarded-Host")
        .map(str::to_string)
        .or_else(|| req.host().map(|h| h.to_string()))
        .filter(|h| !h.is_empty())
}

/// `https` when a trusted proxy says the client used it, else `http`.
pub fn requested_scheme(req: &Request<'_>, policy: &HostPolicy) -> &'static str {
    match forwarded(req, policy, "X-Forwarded-Proto") {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy,
/// the nearest address in `X-Forwarded-For` that is not one.
pub fn client_addr(req: &Request<'_>, policy: &HostPolicy) -> Option<IpAddr> {
    let peer = req.remote().map(|a| a.ip());
    if !policy.trusts(peer) {
        return peer;
    }
    let chain: Vec<IpAddr> = req
        .headers()
        .get("X-Forwarded-For")
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    chain
        .into_iter()
        .rev()
        .find(|ip| !policy.trusts(Some(*ip)))
        .or(peer)
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
        let Some(policy) = req.rocket().state::<HostPolicy>() else {
            return;
        };
        if !policy.check_host || matches!(req.uri().path().as_str(), "/healthz" | "/readyz") {
            return;
        }
        let host = requested_host(req, policy).unwrap_or_default();
        if policy.allows(&host) {
            return;
        }
        req.local_cache(|| RefusedHost(host));
        req.set_method(Method::Get);
        req.set_uri(Origin::parse(REFUSED_PATH).unwrap_or(Origin::ROOT));
    }
}

pub fn routes() -> Vec<Route> {
    routes![unknown_host]
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
