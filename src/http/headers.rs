//! The headers the edge puts on every answer, whoever wrote it.

use http::HeaderName;

/// No inline script or style can run, the page cannot be framed, and full
/// URLs do not leak to other sites.
pub const PAGE_CSP: &str = "default-src 'none'; img-src 'self' data:; style-src 'self'; \
     script-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// An image opened directly must not be able to run anything.
pub const IMAGE_CSP: &str = "default-src 'none'; sandbox";

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The headers a page (`html`) or an API answer (`json`) carries, besides
/// `nosniff` on everything. Pages and API answers carry absolute URLs
/// (and, once, a delete link): no shared cache may keep them for others,
/// unless the answer says otherwise itself (`cache-control` is then left
/// as it is).
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
