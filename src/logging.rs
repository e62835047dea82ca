//! Logging through `tracing`: human lines for terminals, JSON lines for
//! collectors, and one line per HTTP request carrying a request id.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Header;
use rocket::{Data, Request, Response};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};
use crate::metrics::Metrics;

/// Installs the global subscriber. Logs go to stderr so that commands whose
/// output is data (`kitteh config`, `kitteh version --json`) stay parseable.
/// `quiet` lowers library chatter for one-shot commands.
pub fn init(config: &LogConfig, quiet: bool) {
    // sqlx reports PostgreSQL notices ("relation already exists, skipping")
    // at info; they are noise to operators. An explicit `sqlx=…` in the
    // configured level still wins, coming later.
    // Rocket logs through the `log` crate for every request and announces
    // its launch as a warning; our own lines replace those, so only its
    // errors pass.
    let mut directives = format!("sqlx=warn,rocket=error,_=error,{}", config.level);
    if quiet {
        directives.push_str(",sea_orm_migration=warn");
    }
    // The level was validated with the config; fall back rather than abort.
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests calling into the library twice) is harmless.
    let _ = match config.format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

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

fn new_request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn accept_incoming(id: &str) -> bool {
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
        tracing::info!(
            request_id = %start.id.0,
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
