//! The HTTP side: one module per area of the site, each exporting
//! `routes()`; `app::build_rocket` mounts them all in one place. Routes
//! speak HTTP only and reach the database and storage through services.
//! Images and assets are not here: the edge answers them (`edge::fast`).

pub mod access;
pub mod admin;
pub mod api;
pub mod error;
pub mod forms;
pub mod health;
pub mod host;
pub mod integrations;
pub mod links;
pub mod metrics;
pub mod mine;
pub mod oembed;
pub mod pages;
pub mod report;
pub mod request_log;
pub mod upload_form;
pub mod views;

/// No inline script or style can run, the page cannot be framed, and full
/// URLs do not leak to other sites.
const PAGE_CSP: &str = "default-src 'none'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// The headers a page (`html`) or an API answer (`json`) carries, besides
/// `nosniff` on everything; added by the app's fairing and by the edge.
/// Pages and API answers carry absolute URLs (and, once, a delete link):
/// no shared cache may keep them for others, unless the answer says
/// otherwise itself.
pub fn page_headers(html: bool, json: bool) -> Vec<(&'static str, &'static str)> {
    let mut headers = vec![("x-content-type-options", "nosniff")];
    if html {
        headers.extend([
            ("content-security-policy", PAGE_CSP),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "same-origin"),
        ]);
    }
    if html || json {
        headers.push(("cache-control", "private, no-cache"));
    }
    headers
}
