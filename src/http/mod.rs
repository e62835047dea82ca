//! What both HTTP sides share, named by neither: the edge (hyper, the
//! public socket) and the app (Rocket, the routes) each import this module
//! and never each other. Here live the problem body and its status, the
//! host rules, base URLs, request ids, the headers every page carries, the
//! bodies both sides hand on, and the exchange between them: what the edge
//! saw of a request ([`exchange::Seen`]), what the app reports back for the
//! log ([`exchange::Report`]), and the one way into the app
//! ([`exchange::App`]).

pub mod body;
pub mod exchange;
pub mod headers;
pub mod host;
pub mod links;
pub mod problem;

pub use body::{Body, BoxError};
pub use exchange::{App, Call, Report, RequestBody, Seen};
pub use problem::Problem;

/// A request id as logs and `X-Request-Id` carry it: 16 hex digits.
pub fn new_request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Whether an id a client (or a proxy in front) sent may be kept, so that
/// ids follow a request through a proxy: short, and plain characters only.
pub fn accept_incoming_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether the client asked for HTML (as browsers do) rather than JSON.
pub fn wants_html<'a>(accept: impl IntoIterator<Item = &'a str>) -> bool {
    accept.into_iter().any(|a| a.contains("text/html"))
}
