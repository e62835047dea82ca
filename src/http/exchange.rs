//! The one way into the app. The edge owns the socket and the rules that
//! hold for every request (request id, host allowlist, client address,
//! log line and metrics, page headers); it hands each request it does not
//! answer itself to an [`App`], with what it saw ([`Seen`]); the app
//! answers and says what the log should name ([`Report`]).

use std::borrow::Cow;
use std::net::IpAddr;

use crate::http::body::Body;
pub use crate::http::body::RequestBody;
use crate::http::links::BaseUrl;

/// What the edge saw of a request: decided once, believed by the app.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The connection's peer: the client, or a proxy in front of Kitteh.
    pub peer: IpAddr,
    /// The client: the peer, or the address a trusted proxy names.
    pub client: IpAddr,
    /// The base of every absolute URL the answer may carry.
    pub base: BaseUrl,
    pub request_id: String,
}

/// What the app tells the edge about a request it answered, for the log
/// line and the metrics.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The route's name (`show`, `api_create`), or None when none matched.
    pub route: Option<Cow<'static, str>>,
    /// The picture the request concerned.
    pub token: Option<String>,
}

/// One request for the app.
pub struct Call {
    pub parts: http::request::Parts,
    pub body: RequestBody,
    pub seen: Seen,
}

/// The app's answer.
pub struct Answer {
    pub response: http::Response<Body>,
    pub report: Report,
}

/// What answers every request the edge does not answer itself. Dropping
/// the future (the client left) stops the handler: nothing runs on for a
/// client that has gone.
#[async_trait::async_trait]
pub trait App: Send + Sync {
    async fn call(&self, call: Call) -> Answer;
}
