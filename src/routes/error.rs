//! Problems as Rocket answers. Where a route is mounted decides how its
//! failures are written: everything under `/api` answers JSON
//! ([`ApiError`]), the site's pages answer a page to browsers and JSON to
//! everything else ([`PageError`]), the upload form answers the upload page
//! again ([`FormError`]). The mapping from service errors to problems, and
//! the writing, live in `http::problem`, shared with the edge.

use rocket::http::{ContentType, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket::{Catcher, catch, catchers};

use crate::assets::Assets;
use crate::http::problem::Written;
use crate::http::{Problem, wants_html as accepts_html};
use crate::routes::exchange::seen;
use crate::service::Error;
use crate::views;

/// Sends a written problem as Rocket's answer.
fn send(written: Written) -> response::Result<'static> {
    let mut res = Response::build();
    for (name, value) in written.extra_headers() {
        res.raw_header(name, value);
    }
    let content_type =
        ContentType::parse_flexible(written.content_type).unwrap_or(ContentType::JSON);
    res.status(Status::new(written.status.as_u16()))
        .header(content_type)
        .sized_body(written.body.len(), std::io::Cursor::new(written.body))
        .ok()
}

fn request_id(req: &Request<'_>) -> String {
    seen(req).request_id.clone()
}

/// Whether the client asked for HTML, as browsers do.
pub(crate) fn wants_html(req: &Request<'_>) -> bool {
    accepts_html(req.headers().get("Accept"))
}

/// The managed assets, or the embedded ones for a request that failed
/// before the application state was reachable.
fn page_assets<'r>(req: &'r Request<'_>) -> std::borrow::Cow<'r, Assets> {
    match req.rocket().state::<Assets>() {
        Some(assets) => std::borrow::Cow::Borrowed(assets),
        None => std::borrow::Cow::Owned(Assets::embedded()),
    }
}

/// The error of a route under `/api`: always JSON.
#[derive(Debug)]
pub struct ApiError(pub Problem);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(Problem::from(&e))
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        send(self.0.written(&request_id(req), None))
    }
}

/// The error of a page route: an error page for browsers, JSON otherwise.
#[derive(Debug)]
pub struct PageError(pub Problem);

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        Self(Problem::from(&e))
    }
}

impl<'r> Responder<'r, 'static> for PageError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let assets = page_assets(req);
        let page = wants_html(req).then_some(assets.as_ref());
        send(self.0.written(&request_id(req), page))
    }
}

/// The error of the upload form: the upload page again, with the message.
#[derive(Debug)]
pub struct FormError(pub Problem);

impl From<Error> for FormError {
    fn from(e: Error) -> Self {
        Self(Problem::from(&e))
    }
}

impl<'r> Responder<'r, 'static> for FormError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let id = request_id(req);
        if !wants_html(req) {
            return send(self.0.written(&id, None));
        }
        let key_refused = matches!(self.0.code.as_ref(), "key_required" | "key_revoked");
        let config = req
            .rocket()
            .state::<crate::config::Config>()
            .cloned()
            .unwrap_or_default();
        let page = crate::routes::access::upload_page(req, &config, key_refused);
        let html = views::upload_page(&page_assets(req), &page, Some(&self.0.message));
        send(self.0.written_as(&id, "text/html; charset=utf-8", html.0))
    }
}

/// Requests under `/api` that no route answered: JSON.
pub fn api_catchers() -> Vec<Catcher> {
    catchers![api_default]
}

/// Requests elsewhere that no route answered: a page or JSON.
pub fn page_catchers() -> Vec<Catcher> {
    catchers![page_default]
}

fn unanswered(status: Status, req: &Request<'_>) -> Problem {
    let status =
        http::StatusCode::from_u16(status.code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    Problem::for_status(status, req.uri().path().as_str())
}

#[catch(default)]
fn api_default(status: Status, req: &Request<'_>) -> ApiError {
    ApiError(unanswered(status, req))
}

#[catch(default)]
fn page_default(status: Status, req: &Request<'_>) -> PageError {
    PageError(unanswered(status, req))
}
