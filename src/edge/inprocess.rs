//! Requests without a body (pages, the API's reads and deletes, health,
//! metrics) are handed to the app inside this process, through Rocket's
//! own dispatcher (`rocket::local`), instead of over the loopback socket:
//! that hop (a second HTTP write, parse and read each way) cost about a
//! third of the show page's throughput. Requests with a body still take
//! the socket, where the body streams. Either way the app sees the same
//! request: the client's headers, its address, the edge's secret.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode};
use http_body_util::Full;
use rocket::local::asynchronous::Client;
use rocket::{Build, Rocket};

use crate::edge::EdgeBody;
use crate::edge::proxy::{PEER, REQUEST, SECRET, is_hop};

pub struct InProcess {
    client: Client,
    secret: String,
}

impl InProcess {
    /// Ignites a second instance of the app (over the same services) to
    /// dispatch into.
    pub async fn new(app: Rocket<Build>, secret: &str) -> Result<Self, rocket::Error> {
        Ok(Self {
            client: Client::untracked(app).await?,
            secret: secret.to_string(),
        })
    }

    /// Whether `parts` can be dispatched here: a method Rocket knows, and
    /// no body.
    pub fn takes(parts: &Parts) -> bool {
        let no_body = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .is_none_or(|len| len.as_bytes() == b"0")
            && !parts.headers.contains_key(header::TRANSFER_ENCODING);
        no_body && rocket::http::Method::from_str(parts.method.as_str()).is_ok()
    }

    pub async fn dispatch(&self, parts: &Parts, peer: IpAddr) -> Response<EdgeBody> {
        let method = rocket::http::Method::from_str(parts.method.as_str())
            .unwrap_or(rocket::http::Method::Get);
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut req = self
            .client
            .req(method, target.to_string())
            .remote(SocketAddr::new(peer, 0));
        for (name, value) in &parts.headers {
            if is_hop(name) || name == PEER || name == SECRET || name == REQUEST {
                continue;
            }
            // Rocket's server took UTF-8 values; `to_str` would drop them.
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
        req = req
            .header(rocket::http::Header::new(
                PEER.as_str().to_string(),
                peer.to_string(),
            ))
            .header(rocket::http::Header::new(
                SECRET.as_str().to_string(),
                self.secret.clone(),
            ));
        let answer = req.dispatch().await;
        let mut res = Response::new(Full::default());
        *res.status_mut() =
            StatusCode::from_u16(answer.status().code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        for h in answer.headers().iter() {
            if let (Ok(name), Ok(value)) = (
                header::HeaderName::from_bytes(h.name().as_str().as_bytes()),
                HeaderValue::from_str(h.value()),
            ) {
                res.headers_mut().append(name, value);
            }
        }
        // A HEAD answer has no body; Rocket keeps the GET's length for it.
        if parts.method == http::Method::HEAD
            && !res.headers().contains_key(header::CONTENT_LENGTH)
            && let Some(len) = answer.body().preset_size()
        {
            res.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        let body = answer.into_bytes().await.unwrap_or_default();
        *res.body_mut() = Full::new(Bytes::from(body));
        res.map(EdgeBody::Full)
    }
}
