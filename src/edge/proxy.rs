//! Everything the fast path does not answer goes to the app on its
//! loopback port, bodies streamed both ways. The edge sets who the client
//! is (`X-Kitteh-Peer`, Rocket's `ip_header`) and proves the request came
//! through it (`X-Kitteh-Edge`, a secret made at startup); both are
//! removed from what clients send, so neither can be forged from outside.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::assets::Assets;
use crate::edge::EdgeBody;
use crate::edge::conn::Reason;
use crate::edge::departures::Departures;
use crate::edge::fast::problem;
use crate::edge::pace::{Pace, Paced, Verdict};
use crate::metrics::Metrics;
use crate::routes::error::Problem;
use crate::routes::request_log::new_request_id;
use crate::service::Error;

/// The client's address, as the edge saw it (or a trusted proxy's).
pub const PEER: HeaderName = HeaderName::from_static("x-kitteh-peer");
/// The secret that proves a request came through the edge.
pub const SECRET: HeaderName = HeaderName::from_static("x-kitteh-edge");
/// The number under which an upload's departure signal waits.
pub const REQUEST: HeaderName = HeaderName::from_static("x-kitteh-edge-request");

/// Headers about one hop, which the edge does not pass on, and the ones
/// only the edge may set.
const HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::UPGRADE,
    HeaderName::from_static("proxy-connection"),
    // The edge has already answered `Expect: 100-continue` by reading.
    header::EXPECT,
];

pub struct Upstream {
    client: Client<HttpConnector, Paced<Incoming>>,
    authority: String,
    secret: HeaderValue,
    departures: Arc<Departures>,
    pace: Pace,
    assets: Assets,
    metrics: Arc<Metrics>,
}

impl Upstream {
    pub fn new(
        port: u16,
        secret: &str,
        departures: Arc<Departures>,
        pace: Pace,
        assets: Assets,
        metrics: Arc<Metrics>,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        // The app keeps connections open far longer than this (see
        // `app::rocket_config`), so a pooled one is never closed under a
        // request about to use it.
        // Rocket 0.5 never closes an idle keep-alive connection itself, so
        // the pool does (it needs a timer for that); the client's own Host
        // is passed on as it came, and none is made up when it is missing.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(32)
            .pool_timer(TokioTimer::new())
            .set_host(false)
            .build(connector);
        Self {
            client,
            authority: format!("127.0.0.1:{port}"),
            secret: HeaderValue::from_str(secret).unwrap_or_else(|_| HeaderValue::from_static("")),
            departures,
            pace,
            assets,
            metrics,
        }
    }

    /// Passes `req` from `peer` to the app and its answer back.
    pub async fn pass(&self, req: Request<Incoming>, peer: IpAddr) -> Response<EdgeBody> {
        let (mut parts, body) = req.into_parts();
        strip(&mut parts.headers);
        for name in [&PEER, &SECRET, &REQUEST] {
            parts.headers.remove(name);
        }
        if let Ok(peer) = HeaderValue::from_str(&peer.to_string()) {
            parts.headers.insert(PEER, peer);
        }
        parts.headers.insert(SECRET, self.secret.clone());
        // Only an upload decodes for long; it alone gets a departure signal.
        let watch = (parts.method == Method::POST).then(|| self.departures.register());
        if let Some(watch) = &watch {
            parts.headers.insert(REQUEST, HeaderValue::from(watch.id()));
        }
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = match Uri::builder()
            .scheme("http")
            .authority(self.authority.as_str())
            .path_and_query(path)
            .build()
        {
            Ok(uri) => uri,
            Err(_) => {
                let e = Error::BadForm("the request target is not a valid URI".into());
                return self.failed(&parts.headers, Problem::from(&e));
            }
        };
        let verdict = Verdict::default();
        let body = Paced::new(body, self.pace, Arc::clone(&verdict));
        // An error the edge writes itself is a page or JSON by `Accept`.
        let mut headers = HeaderMap::new();
        for accept in parts.headers.get_all(header::ACCEPT) {
            headers.append(header::ACCEPT, accept.clone());
        }
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(res) => {
                if let Some(watch) = watch {
                    watch.answered();
                }
                let (mut parts, body) = res.into_parts();
                strip(&mut parts.headers);
                Response::from_parts(parts, EdgeBody::Upstream(body))
            }
            Err(e) => {
                let why = verdict
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                match why {
                    Some(why) => {
                        self.metrics.record_edge_drop(Reason::SlowBody.label());
                        let mut res = self.failed(&headers, Problem::from(&Error::SlowBody(why)));
                        res.headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("close"));
                        res
                    }
                    None => {
                        tracing::error!("the app behind the edge did not answer: {e:?}");
                        self.failed(&headers, Problem::app_unreachable())
                    }
                }
            }
        }
    }

    fn failed(&self, headers: &HeaderMap, p: Problem) -> Response<EdgeBody> {
        problem(p, headers, &new_request_id(), &self.assets).map(EdgeBody::Full)
    }
}

/// Whether a header is about one hop only (never passed on).
pub fn is_hop(name: &HeaderName) -> bool {
    HOP.contains(name) || name == header::TRANSFER_ENCODING
}

/// Headers a client's `Connection` cannot have removed: what the app needs
/// to frame, route and check the request.
const KEPT: [HeaderName; 4] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::CONTENT_TYPE,
    header::TRANSFER_ENCODING,
];

fn strip(headers: &mut HeaderMap) {
    // `Connection` may name more hop-by-hop headers.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .filter(|n| !KEPT.contains(n))
        .collect();
    for name in HOP.iter().chain(named.iter()) {
        headers.remove(name);
    }
}
