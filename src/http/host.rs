//! Who is asking, and for which site. The Host header ends up in every
//! absolute URL Kitteh hands out when `server.public_url` is empty, so it
//! is believed only for the names in `server.allowed_hosts`; a request for
//! any other name gets a 400 that says what to configure. Forwarded headers
//! (`X-Forwarded-For`, `-Host`, `-Proto`) are believed only from
//! `server.trusted_proxies`. The edge applies these rules once, to every
//! request, and hands the app what it decided.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::{ServerConfig, parse_cidr};

/// The rules, from `[server]`.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// With a public URL, links never come from the Host header.
    check_host: bool,
    allowed: Vec<String>,
    trusted: Vec<IpNet>,
}

/// What the host rules read from a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostHeaders<'a> {
    /// The connection's peer: the client, or a proxy in front of Kitteh.
    pub peer: Option<IpAddr>,
    pub host: Option<&'a str>,
    pub forwarded_host: Option<&'a str>,
    pub forwarded_proto: Option<&'a str>,
}

impl<'a> HostHeaders<'a> {
    /// The host headers of `headers`, from a connection with `peer`.
    pub fn of(headers: &'a http::HeaderMap, peer: IpAddr) -> Self {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Self {
            peer: Some(peer),
            host: get("host"),
            forwarded_host: get("x-forwarded-host"),
            forwarded_proto: get("x-forwarded-proto"),
        }
    }
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

    /// Whether a proxy in front of Kitteh at `peer` may open any number
    /// of connections (it carries many clients).
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusts(Some(peer))
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

    /// Whether a request for `path` must name an allowed host. Health
    /// checks are exempt: load balancers probe by address, and the answers
    /// carry no links.
    pub fn checks(&self, path: &str) -> bool {
        self.check_host && !matches!(path, "/healthz" | "/readyz")
    }

    /// The host the client asked for: from a trusted proxy's
    /// `X-Forwarded-Host`, else the Host header.
    pub fn requested_host(&self, asked: &HostHeaders<'_>) -> Option<String> {
        self.trusts(asked.peer)
            .then(|| first_value(asked.forwarded_host))
            .flatten()
            .or(asked.host)
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
    }

    /// `https` when a trusted proxy says the client used it, else `http`.
    pub fn requested_scheme(&self, asked: &HostHeaders<'_>) -> &'static str {
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
    /// proxy, the nearest address in `X-Forwarded-For` that is not one
    /// (the rightmost untrusted hop: anything left of it is what the
    /// client itself wrote).
    pub fn client_addr<'h>(
        &self,
        peer: IpAddr,
        forwarded_for: impl Iterator<Item = &'h str>,
    ) -> IpAddr {
        if !self.trusts(Some(peer)) {
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
            .unwrap_or(peer)
            .to_canonical()
    }
}

/// The first value of a header, when a trusted proxy set it.
fn first_value(value: Option<&str>) -> Option<&str> {
    value
        .map(|v| v.split(',').next().unwrap_or_default().trim())
        .filter(|v| !v.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str], trusted: &[&str]) -> HostPolicy {
        HostPolicy {
            check_host: true,
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            trusted: trusted.iter().filter_map(|c| parse_cidr(c)).collect(),
        }
    }

    #[test]
    fn hosts_match_by_name_with_any_port_or_exactly_with_one() {
        let p = policy(
            &["localhost", "127.0.0.1", "[::1]", "kitteh.example:8443"],
            &[],
        );
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

    #[test]
    fn the_client_is_the_rightmost_address_no_trusted_proxy_wrote() {
        let p = policy(&[], &["10.0.0.0/8"]);
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let client = |xff: &[&str]| p.client_addr(proxy, xff.iter().copied()).to_string();
        // A client that writes its own header cannot choose its address.
        assert_eq!(client(&["6.6.6.6, 203.0.113.7"]), "203.0.113.7");
        assert_eq!(client(&["6.6.6.6", "203.0.113.7, 10.0.0.9"]), "203.0.113.7");
        assert_eq!(client(&[]), "10.0.0.5");
        assert_eq!(client(&["garbage"]), "10.0.0.5");
        // From an untrusted peer the header means nothing.
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            p.client_addr(stranger, ["6.6.6.6"].into_iter()).to_string(),
            "198.51.100.1"
        );
    }
}
