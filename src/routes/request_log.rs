//! One log line per HTTP request, with method, path, status, duration and
//! a request id (also returned as `X-Request-Id`), and the request counted
//! in the metrics.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use rocket::{Data, Request, Response};

use crate::metrics::Metrics;
use crate::routes::host::{HostPolicy, client_addr};

/// The id of one request, echoed in `X-Request-Id` and every log line about it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

struct RequestStart {
    id: RequestId,
    at: Instant,
}

/// Stamps each request with an id (reusing a sane incoming `X-Request-Id`
/// so ids follow a request through a proxy), logs it when answered, and
/// counts it in the metrics.
pub struct RequestLogger {
    pub metrics: Arc<Metrics>,
}

/// The image token a request concerned, set by the handler so the request's
/// log line names it.
#[derive(Debug, Default)]
pub struct LogToken(Mutex<Option<String>>);

impl LogToken {
    pub fn set(&self, token: &str) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(token.to_string());
        }
    }

    fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|slot| slot.clone())
    }
}

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for &'r LogToken {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> rocket::request::Outcome<Self, Self::Error> {
        rocket::request::Outcome::Success(req.local_cache(LogToken::default))
    }
}

pub fn new_request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub fn accept_incoming(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[rocket::async_trait]
impl Fairing for RequestLogger {
    fn info(&self) -> Info {
        Info {
            name: "request logger",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        let id = req
            .headers()
            .get_one("X-Request-Id")
            .filter(|id| accept_incoming(id))
            .map(str::to_string)
            .unwrap_or_else(new_request_id);
        // At debug level only: a line before the body is read lets an
        // operator (and the shutdown tests) see a request in flight.
        tracing::debug!(request_id = %id, method = %req.method(), path = %req.uri().path(), "request started");
        req.local_cache(|| RequestStart {
            id: RequestId(id),
            at: Instant::now(),
        });
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let start = req.local_cache(|| RequestStart {
            id: RequestId(new_request_id()),
            at: Instant::now(),
        });
        let status = res.status().code;
        let elapsed = start.at.elapsed();
        let token = req.local_cache(LogToken::default).get();
        // The peer, or the client a trusted proxy names: who to look for
        // when cleaning up abuse.
        let client = match req.rocket().state::<HostPolicy>() {
            Some(policy) => client_addr(req, policy),
            None => req.client_ip(),
        };
        tracing::info!(
            request_id = %start.id.0,
            client = client.map(tracing::field::display),
            method = %req.method(),
            path = %req.uri().path(),
            status,
            duration_ms = elapsed.as_micros() as f64 / 1000.0,
            token = token.as_deref(),
            "request"
        );
        // Route names are static (`Cow::Borrowed`), so this clone is free.
        let route = req
            .route()
            .and_then(|r| r.name.clone())
            .unwrap_or(std::borrow::Cow::Borrowed("unmatched"));
        self.metrics
            .record_request(route, req.method().as_str(), status, elapsed.as_secs_f64());
        res.set_header(Header::new("X-Request-Id", start.id.0.clone()));
    }
}

/// The id of the request being answered.
pub fn request_id(req: &Request<'_>) -> String {
    req.local_cache(|| RequestStart {
        id: RequestId(new_request_id()),
        at: Instant::now(),
    })
    .id
    .0
    .clone()
}

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for RequestId {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> rocket::request::Outcome<Self, Self::Error> {
        let start = req.local_cache(|| RequestStart {
            id: RequestId(new_request_id()),
            at: Instant::now(),
        });
        rocket::request::Outcome::Success(start.id.clone())
    }
}
