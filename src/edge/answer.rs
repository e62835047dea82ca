//! One request, answered: the rules every request is held to, applied
//! once around both ways a request can be answered (the fast path for
//! images and assets, the app for the rest): method names, the request id,
//! the host allowlist, the client's address, how a body is held, the
//! headers every answer carries, the log line and the metrics.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::assets::Assets;
use crate::config::ServerConfig;
use crate::edge::fast::{FastPath, Route};
use crate::edge::pace::{Pace, Paced, WholeError, read_whole};
use crate::http::body::RequestBody;
use crate::http::exchange::{App, Call, Seen};
use crate::http::headers::{REQUEST_ID, page_headers};
use crate::http::host::{HostHeaders, HostPolicy};
use crate::http::links::BaseUrl;
use crate::http::{Body, Problem, accept_incoming_id, new_request_id, wants_html};
use crate::metrics::Metrics;
use crate::service::Error;

const SERVER: HeaderValue = HeaderValue::from_static("kitteh");
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// Everything a request is answered with.
pub struct Answering {
    pub fast: FastPath,
    pub app: Arc<dyn App>,
    pub policy: HostPolicy,
    pub server: ServerConfig,
    pub assets: Assets,
    pub metrics: Arc<Metrics>,
    pub pace: Pace,
}

/// What answering found, for the log line.
struct Outcome {
    res: Response<Body>,
    route: Cow<'static, str>,
    token: Option<String>,
    /// The body was given up as too slow: counted, and the connection is
    /// closed after the answer.
    slow: bool,
}

impl Outcome {
    fn of(res: Response<Body>, route: &'static str) -> Self {
        Self {
            res,
            route: Cow::Borrowed(route),
            token: None,
            slow: false,
        }
    }
}

impl Answering {
    pub async fn answer(&self, req: Request<Incoming>, peer: IpAddr) -> Response<Body> {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let id = parts
            .headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|id| accept_incoming_id(id))
            .map_or_else(new_request_id, str::to_string);
        let client = self.policy.client_addr(
            peer,
            parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        let method = parts.method.clone();
        let path = parts.uri.path().to_string();
        // At debug level only: a line before the body is read lets an
        // operator (and the shutdown tests) see a request in flight.
        tracing::debug!(request_id = %id, method = %method, path = %path, "request started");
        let html = wants_html(accept(&parts.headers));
        let mut left = Departure {
            id: &id,
            answered: false,
        };
        let outcome = match self.admit(&parts, peer) {
            Err(problem) => Outcome::of(self.problem(*problem, html, &id), "refused"),
            Ok(base) => self.route(parts, body, peer, client, base, &id, html).await,
        };
        left.answered = true;
        let mut res = outcome.res;
        finish(&mut res, &id, &method);
        if outcome.slow {
            self.metrics.record_edge_drop("body_timeout");
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        let status = res.status().as_u16();
        let elapsed = started.elapsed();
        tracing::info!(
            request_id = %id,
            client = %client,
            method = %method,
            path = %path,
            status,
            duration_ms = elapsed.as_micros() as f64 / 1000.0,
            token = outcome.token.as_deref(),
            "request"
        );
        self.metrics.record_request(
            outcome.route,
            method_label(&method),
            status,
            elapsed.as_secs_f64(),
        );
        res
    }

    /// The method and host rules; the base of the answer's URLs when the
    /// request passes them.
    fn admit(&self, parts: &Parts, peer: IpAddr) -> Result<BaseUrl, Box<Problem>> {
        check_method(&parts.method)?;
        let asked = HostHeaders::of(&parts.headers, peer);
        if self.policy.checks(parts.uri.path()) {
            let host = self.policy.requested_host(&asked).unwrap_or_default();
            if !self.policy.allows(&host) {
                return Err(Box::new(Problem::bad_host(&host)));
            }
        }
        Ok(BaseUrl::of(&self.server, &self.policy, &asked))
    }

    #[allow(clippy::too_many_arguments)]
    async fn route(
        &self,
        parts: Parts,
        body: Incoming,
        peer: IpAddr,
        client: IpAddr,
        base: BaseUrl,
        id: &str,
        html: bool,
    ) -> Outcome {
        if let Some(route) = Route::of(&parts.method, parts.uri.path()) {
            let name = route.name();
            let token = route.token().map(str::to_string);
            let res = match self.fast.answer(route, &parts, &base).await {
                Ok(res) => res,
                Err(e) => self.problem(Problem::from(&e), html, id),
            };
            return Outcome {
                token,
                ..Outcome::of(res, name)
            };
        }
        let slow = Arc::new(AtomicBool::new(false));
        let body = match self.hold_body(&parts, body, &slow).await {
            Ok(body) => body,
            Err(problem) => {
                return Outcome {
                    slow: slow.load(Ordering::Relaxed),
                    ..Outcome::of(self.problem(*problem, html, id), "body_refused")
                };
            }
        };
        let seen = Seen {
            peer,
            client,
            base,
            request_id: id.to_string(),
        };
        let answer = self.app.call(Call { parts, body, seen }).await;
        Outcome {
            res: answer.response,
            route: answer.report.route.unwrap_or(Cow::Borrowed("unmatched")),
            token: answer.report.token,
            slow: slow.load(Ordering::Relaxed),
        }
    }

    /// How the app gets the body: none; an upload's as a stream its route
    /// reads (so that who may upload is decided before a byte is read);
    /// anything else read whole here, within `server.body_limit`.
    async fn hold_body(
        &self,
        parts: &Parts,
        body: Incoming,
        slow: &Arc<AtomicBool>,
    ) -> Result<RequestBody, Box<Problem>> {
        let declared = declared_length(&parts.headers);
        let chunked = parts.headers.contains_key(header::TRANSFER_ENCODING);
        if declared == Some(0) || (declared.is_none() && !chunked) {
            return Ok(RequestBody::Empty);
        }
        let paced = Paced::new(body, self.pace, Arc::clone(slow));
        if is_multipart(&parts.headers) {
            return Ok(RequestBody::Stream(Box::pin(paced)));
        }
        let limit = self.server.body_limit.as_u64();
        if declared.is_some_and(|len| len > limit) {
            return Err(Box::new(body_too_large(limit)));
        }
        match read_whole(paced, limit).await {
            Ok(bytes) => Ok(RequestBody::Whole(bytes)),
            Err(WholeError::TooLarge) => Err(Box::new(body_too_large(limit))),
            Err(WholeError::Body(e)) => Err(Box::new(Problem::from(&Error::from(e)))),
        }
    }

    /// A problem written by the edge: a page for browsers, JSON otherwise.
    fn problem(&self, problem: Problem, html: bool, id: &str) -> Response<Body> {
        let written = problem.written(id, html.then_some(&self.assets));
        let mut res = Response::new(Body::from(written.body.clone()));
        *res.status_mut() = written.status;
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(written.content_type),
        );
        for (name, value) in written.extra_headers() {
            if let (Ok(name), Ok(value)) = (
                header::HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.insert(name, value);
            }
        }
        res
    }
}

/// Says so when a request's future is dropped before it was answered: its
/// client left, and the handler (an upload's decode with it) was stopped.
struct Departure<'a> {
    id: &'a str,
    answered: bool,
}

impl Drop for Departure<'_> {
    fn drop(&mut self) {
        if !self.answered {
            tracing::info!(
                request_id = %self.id,
                "the client went away before its answer; its request was stopped and nothing was stored"
            );
        }
    }
}

fn accept(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|a| a.to_str().ok())
}

/// The headers every answer carries, and HEAD's empty body.
fn finish(res: &mut Response<Body>, id: &str, method: &Method) {
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let html = content_type.starts_with("text/html");
    let json = content_type.starts_with("application/json");
    let cached = res.headers().contains_key(header::CACHE_CONTROL);
    let headers = res.headers_mut();
    for (name, value) in page_headers(html, json) {
        if !(cached && name == "cache-control") {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    headers.insert(header::SERVER, SERVER);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert(REQUEST_ID, value);
    }
    if method == Method::HEAD {
        use http_body::Body as _;
        if let Some(len) = res.body().size_hint().exact()
            && len > 0
            && !res.headers().contains_key(header::CONTENT_LENGTH)
        {
            res.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        *res.body_mut() = Body::empty();
    }
}

/// Methods are case-sensitive (RFC 9110 §9.1): `get` is not GET. Kitteh
/// answers the methods it has routes for; anything else is refused here.
fn check_method(method: &Method) -> Result<(), Box<Problem>> {
    const KNOWN: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];
    let name = method.as_str();
    if KNOWN.contains(&name) {
        return Ok(());
    }
    let shown: String = name.chars().take(20).collect();
    if let Some(known) = KNOWN.iter().find(|k| k.eq_ignore_ascii_case(name)) {
        return Err(Box::new(Problem::with(
            StatusCode::BAD_REQUEST,
            "bad_method",
            format!("method names are case-sensitive: send {known}, not {shown}"),
        )));
    }
    Err(Box::new(Problem::with(
        StatusCode::NOT_IMPLEMENTED,
        "method_not_implemented",
        format!("this server does not implement the method {shown}"),
    )))
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

fn body_too_large(limit: u64) -> Problem {
    Problem::with(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "the request body is larger than the limit of {} (server.body_limit)",
            crate::config::ByteUnit::Byte(limit)
        ),
    )
    .detail("limit_bytes", limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_case_sensitive_and_unknown_ones_not_implemented() {
        assert!(check_method(&Method::GET).is_ok());
        assert!(check_method(&Method::DELETE).is_ok());
        let lower = Method::from_bytes(b"get").unwrap();
        let p = check_method(&lower).unwrap_err();
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
        assert!(p.message.contains("send GET, not get"), "{}", p.message);
        let odd = Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(
            check_method(&odd).unwrap_err().status,
            StatusCode::NOT_IMPLEMENTED
        );
    }
}
