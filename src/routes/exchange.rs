//! The Rocket side of the one way into the app: every request the edge
//! does not answer itself is dispatched here, in-process, through Rocket's
//! own dispatcher (`rocket::local`). Rocket 0.5 exposes neither its
//! listener nor a hyper service, and its local dispatcher takes a body
//! only whole, so the edge reads small bodies (forms) itself and leaves an
//! upload's body as a stream in the request's local cache, where the
//! upload guard takes it ([`UploadStream`]). What the edge saw ([`Seen`])
//! rides along the same way; what the routes report ([`Reporter`]) comes
//! back through a shared slot. The handler runs inside the edge's future,
//! so a client that leaves stops it.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use http::header::{self, HeaderName, HeaderValue};
use rocket::fairing::{Fairing, Info, Kind};
use rocket::local::asynchronous::{Client, LocalResponse};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Build, Rocket};
use tokio::io::{AsyncRead, ReadBuf};

use crate::http::body::{Body, BoxError, RequestStream};
use crate::http::exchange::{Answer, App, Call, Report, RequestBody, Seen};
use crate::http::links::BaseUrl;

/// Answers up to this size are read whole (pages, JSON); larger or
/// unsized ones stream as the client reads them.
const WHOLE_UP_TO: usize = 256 * 1024;

/// The app, ready to dispatch into.
pub struct RocketApp {
    client: &'static Client,
}

impl RocketApp {
    /// Ignites the app. Its client lives as long as the process: answers
    /// that stream borrow it after `call` has returned.
    pub async fn new(app: Rocket<Build>) -> Result<Self, rocket::Error> {
        let client = Client::untracked(app.attach(ReportRoute)).await?;
        Ok(Self {
            client: Box::leak(Box::new(client)),
        })
    }
}

/// What a route reports for the log line: the picture it was about.
#[derive(Debug, Default, Clone)]
pub struct Reporter(Arc<Mutex<Report>>);

impl Reporter {
    pub fn token(&self, token: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).token = Some(token.to_string());
    }

    fn route(&self, name: Cow<'static, str>) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).route = Some(name);
    }

    fn take(&self) -> Report {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for &'r Reporter {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(req.local_cache(Reporter::default))
    }
}

/// Records the matched route's name for the log line and the metrics.
struct ReportRoute;

#[rocket::async_trait]
impl Fairing for ReportRoute {
    fn info(&self) -> Info {
        Info {
            name: "route report",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, _: &mut rocket::Response<'r>) {
        if let Some(name) = req.route().and_then(|r| r.name.clone()) {
            req.local_cache(Reporter::default).route(name);
        }
    }
}

/// What the edge saw of the request being answered. A request that did
/// not come through the edge (a unit test of a route) is from loopback.
pub fn seen<'r>(req: &'r Request<'_>) -> &'r Seen {
    req.local_cache(|| Seen {
        peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
        client: IpAddr::V4(Ipv4Addr::LOCALHOST),
        base: BaseUrl("http://localhost".into()),
        request_id: crate::http::new_request_id(),
    })
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for BaseUrl {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(seen(req).base.clone())
    }
}

/// An upload's body, left by the edge for the route that reads it.
pub struct UploadStream(Mutex<Option<RequestStream>>);

impl UploadStream {
    /// The body, once: None when the request had none to stream (or it
    /// was taken already).
    pub fn take(req: &Request<'_>) -> Option<RequestStream> {
        req.local_cache(|| UploadStream(Mutex::new(None)))
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

#[async_trait::async_trait]
impl App for RocketApp {
    async fn call(&self, call: Call) -> Answer {
        let Call { parts, body, seen } = call;
        let method = rocket::http::Method::from_str(parts.method.as_str())
            .unwrap_or(rocket::http::Method::Get);
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut req = self
            .client
            .req(method, target.to_string())
            .remote(SocketAddr::new(seen.client, 0));
        for (name, value) in &parts.headers {
            // Rocket's own server took UTF-8 values; `to_str` would drop them.
            let Ok(text) = std::str::from_utf8(value.as_bytes()) else {
                continue;
            };
            // Rocket's server reads cookies from the header into the
            // request's jar; its local dispatcher takes them one by one.
            if name == header::COOKIE {
                for raw in text.split(';') {
                    if let Ok(cookie) = rocket::http::Cookie::parse_encoded(raw.trim().to_string())
                    {
                        req = req.cookie(cookie);
                    }
                }
            }
            req = req.header(rocket::http::Header::new(
                name.as_str().to_string(),
                text.to_string(),
            ));
        }
        match body {
            RequestBody::Empty => {}
            RequestBody::Whole(bytes) => req = req.body(bytes),
            RequestBody::Stream(stream) => {
                req.local_cache(|| UploadStream(Mutex::new(Some(stream))));
            }
        }
        req.local_cache(|| seen);
        let reporter = req.local_cache(Reporter::default).clone();
        let head = parts.method == http::Method::HEAD;
        let answer = req.dispatch().await;
        let response = into_response(answer, head).await;
        Answer {
            response,
            report: reporter.take(),
        }
    }
}

async fn into_response(answer: LocalResponse<'static>, head: bool) -> http::Response<Body> {
    let mut res = http::Response::new(Body::empty());
    *res.status_mut() = http::StatusCode::from_u16(answer.status().code)
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    for h in answer.headers().iter() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name().as_str().as_bytes()),
            HeaderValue::from_str(h.value()),
        ) {
            res.headers_mut().append(name, value);
        }
    }
    let size = answer.body().preset_size();
    // A HEAD answer has no body; Rocket keeps the GET's length for it.
    if head {
        if let Some(len) = size
            && !res.headers().contains_key(header::CONTENT_LENGTH)
        {
            res.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        return res;
    }
    match size {
        Some(len) if len <= WHOLE_UP_TO => {
            let bytes = answer.into_bytes().await.unwrap_or_default();
            *res.body_mut() = Body::Full(Bytes::from(bytes));
        }
        len => *res.body_mut() = Body::stream(Box::pin(Chunks { answer }), len.map(|l| l as u64)),
    }
    res
}

/// A large answer's body, read from Rocket as the client takes it: one
/// chunk at a time, so a client that stops reading holds one chunk.
struct Chunks {
    answer: LocalResponse<'static>,
}

const CHUNK: usize = 64 * 1024;

impl Stream for Chunks {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut chunk = vec![0u8; CHUNK];
        let mut read = ReadBuf::new(&mut chunk);
        match Pin::new(&mut this.answer).poll_read(cx, &mut read) {
            Poll::Ready(Ok(())) => {
                let n = read.filled().len();
                if n == 0 {
                    return Poll::Ready(None);
                }
                chunk.truncate(n);
                Poll::Ready(Some(Ok(Bytes::from(chunk))))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(Box::new(e) as BoxError))),
            Poll::Pending => Poll::Pending,
        }
    }
}
