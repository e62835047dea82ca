//! `kitteh healthcheck`: is a running server ready? For container images
//! without curl; exits 0 or 1 only (Docker reserves 2).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::cli::{Cli, HealthcheckArgs};

const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// A bare HTTP/1.1 GET: the image has no curl, and pulling an HTTP client
/// crate into the binary for one request is not worth its size.
pub(super) fn healthcheck(cli: &Cli, args: &HealthcheckArgs) -> Result<String, String> {
    let target = match &args.url {
        Some(url) => url.clone(),
        None => super::load(cli)
            .map_err(|f| f.message)?
            .config
            .readiness_url(),
    };
    let url = url::Url::parse(&target).map_err(|e| format!("invalid URL {target}: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "only http:// URLs are supported, got {target} (check the plain-HTTP port)"
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("URL {target} has no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let deadline = Instant::now() + HEALTHCHECK_TIMEOUT;
    let addr = (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, HEALTHCHECK_TIMEOUT)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let remaining = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream
        .set_read_timeout(Some(remaining))
        .and_then(|_| stream.set_write_timeout(Some(remaining)))
        .map_err(|e| format!("socket error: {e}"))?;
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kitteh-healthcheck\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send request to {addr}: {e}"))?;
    let mut response = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut response)
        .map_err(|e| format!("no answer from {target} within {HEALTHCHECK_TIMEOUT:?}: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("{target} did not answer with HTTP"))?;
    if (200..300).contains(&status) {
        Ok(format!("ready: {target} answered {status}"))
    } else {
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
        let body: String = body.chars().take(300).collect();
        Err(format!("not ready: {target} answered {status} {body}"))
    }
}
