//! `/assets/{digested name}`: immutable, compressed, conditional; and the
//! well-known undigested `/favicon.ico` and `/robots.txt` with a short cache.

use std::io::Cursor;

use rocket::http::{Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::{self, Responder, Response};
use rocket::{Route, State, get, routes};

use crate::assets::{Asset, Assets};
use crate::routes::error::PageError;
use crate::service::Error;

type Result<T, E = PageError> = std::result::Result<T, E>;

pub fn routes() -> Vec<Route> {
    routes![asset, favicon, robots]
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const SHORT: &str = "public, max-age=3600";

/// Which encodings the client accepts, and its If-None-Match.
pub struct Negotiation {
    brotli: bool,
    gzip: bool,
    if_none_match: Option<String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Negotiation {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let accepts = |coding: &str| {
            req.headers().get("Accept-Encoding").any(|h| {
                h.split(',').any(|part| {
                    let mut bits = part.split(';');
                    let name = bits.next().unwrap_or_default().trim();
                    // `br;q=0` means "not br".
                    let refused = bits.any(|b| {
                        b.trim()
                            .strip_prefix("q=")
                            .and_then(|q| q.parse::<f32>().ok())
                            .is_some_and(|q| q == 0.0)
                    });
                    (name.eq_ignore_ascii_case(coding) || name == "*") && !refused
                })
            })
        };
        Outcome::Success(Negotiation {
            brotli: accepts("br"),
            gzip: accepts("gzip"),
            if_none_match: req.headers().get_one("If-None-Match").map(str::to_string),
        })
    }
}

pub struct AssetResponse {
    asset: Asset,
    negotiation: Negotiation,
    cache: &'static str,
}

impl<'r> Responder<'r, 'static> for AssetResponse {
    fn respond_to(self, _req: &'r Request<'_>) -> response::Result<'static> {
        let Self {
            asset,
            negotiation,
            cache,
        } = self;
        let mut res = Response::build();
        res.header(Header::new("ETag", asset.etag.clone()))
            .header(Header::new("Cache-Control", cache))
            .header(Header::new("Vary", "Accept-Encoding"))
            .raw_header("Content-Type", asset.content_type);
        let fresh = negotiation.if_none_match.as_deref().is_some_and(|inm| {
            inm.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == asset.etag || t.trim() == "*")
        });
        if fresh {
            return res.status(Status::NotModified).ok();
        }
        let (body, coding) = match (&asset.brotli, &asset.gzip) {
            (Some(br), _) if negotiation.brotli => (br.clone(), Some("br")),
            (_, Some(gz)) if negotiation.gzip => (gz.clone(), Some("gzip")),
            _ => (asset.identity.clone(), None),
        };
        if let Some(coding) = coding {
            res.raw_header("Content-Encoding", coding);
        }
        let len = body.len();
        res.sized_body(len, Cursor::new(body))
            .max_chunk_size(crate::routes::files::chunk_size(len))
            .ok()
    }
}

fn serve(
    assets: &Assets,
    name: &str,
    negotiation: Negotiation,
    cache: &'static str,
) -> Result<AssetResponse> {
    let asset = assets
        .get(name)
        .cloned()
        .ok_or_else(|| PageError::from(Error::NotFound(format!("asset {name}"))))?;
    Ok(AssetResponse {
        asset,
        negotiation,
        cache,
    })
}

#[get("/assets/<name>")]
fn asset(name: &str, negotiation: Negotiation, assets: &State<Assets>) -> Result<AssetResponse> {
    serve(assets, name, negotiation, IMMUTABLE)
}

#[get("/favicon.ico")]
fn favicon(negotiation: Negotiation, assets: &State<Assets>) -> Result<AssetResponse> {
    serve(assets, "favicon.ico", negotiation, SHORT)
}

#[get("/robots.txt")]
fn robots(negotiation: Negotiation, assets: &State<Assets>) -> Result<AssetResponse> {
    serve(assets, "robots.txt", negotiation, SHORT)
}
