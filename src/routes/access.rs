//! Who is asking: the client's address (as the edge and trusted proxies
//! say) and the upload key it shows, from `Authorization: Bearer` or from
//! the cookie the upload page's sign-in sets. Also the sign-in itself.

use std::net::IpAddr;
use std::sync::Arc;

use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::response::Redirect;
use rocket::{Route, State, post, routes};

use crate::config::{Access, Config};
use crate::routes::error::FormError;
use crate::routes::exchange::seen;
use crate::routes::forms::SmallForm;
use crate::service::moderation::Moderation;
use crate::views::UploadPage;

/// The cookie that holds a browser's upload key.
pub const KEY_COOKIE: &str = "kitteh_key";

pub fn routes() -> Vec<Route> {
    routes![sign_in, forget]
}

/// The client's address and the key it shows, if any.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub addr: Option<IpAddr>,
    pub key: Option<String>,
    /// The key came from the sign-in cookie.
    pub from_cookie: bool,
}

impl Caller {
    pub fn of(req: &Request<'_>) -> Self {
        let addr = Some(seen(req).client);
        let bearer = req
            .headers()
            .get_one("Authorization")
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| rest.trim().to_string())
            })
            .filter(|k| !k.is_empty());
        let (key, from_cookie) = match bearer {
            Some(key) => (Some(key), false),
            None => match req.cookies().get(KEY_COOKIE) {
                Some(c) if !c.value().is_empty() => (Some(c.value().to_string()), true),
                _ => (None, false),
            },
        };
        Self {
            addr,
            key,
            from_cookie,
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Caller {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Caller::of(req))
    }
}

/// The upload page's settings for this request.
pub fn upload_page(req: &Request<'_>, config: &Config, key_refused: bool) -> UploadPage {
    upload_page_for(req.cookies(), config, key_refused)
}

/// As `upload_page`, from the request's cookies.
pub fn upload_page_for(cookies: &CookieJar<'_>, config: &Config, key_refused: bool) -> UploadPage {
    let u = &config.uploads;
    let mut page = UploadPage::new(
        u.max_bytes.as_u64(),
        u.max_expiry(),
        u.default_expiry().or(u.max_expiry()),
        if u.default_expiry.is_empty() {
            &u.max_expiry
        } else {
            &u.default_expiry
        },
        config.privacy.ip_retention_days,
    );
    let has_cookie = cookies
        .get(KEY_COOKIE)
        .is_some_and(|c| !c.value().is_empty());
    page.signed_in = has_cookie;
    page.sign_in = u.access == Access::Keys && (!has_cookie || key_refused);
    page
}

/// Where a sign-in may send the browser next: our own pages only, and a
/// path Rocket can redirect to.
fn next_page(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && rocket::http::uri::Origin::parse(n).is_ok() =>
        {
            n
        }
        _ => "/",
    }
}

/// A form posted from another site. Browsers say where a request comes
/// from (`Sec-Fetch-Site`, `Origin`); a `SameSite=Strict` cookie is not
/// sent cross-site, but a cross-site form could still set one (sign a
/// visitor in with someone else's key) or remove it.
pub fn cross_site(req: &Request<'_>) -> bool {
    if let Some(site) = req.headers().get_one("Sec-Fetch-Site") {
        return site == "cross-site";
    }
    match req.headers().get_one("Origin") {
        None => false,
        // A sandboxed frame, a `data:` page or a file sends `null`: never
        // our own page, which would send its origin.
        Some("null") => true,
        Some(origin) => {
            let host = req.headers().get_one("Host").unwrap_or_default();
            url::Url::parse(origin).ok().is_none_or(|o| {
                let authority = match o.port() {
                    Some(port) => format!("{}:{port}", o.host_str().unwrap_or_default()),
                    None => o.host_str().unwrap_or_default().to_string(),
                };
                !authority.eq_ignore_ascii_case(host)
            })
        }
    }
}

/// Checks the key and keeps it in an `HttpOnly`, `SameSite=Strict`
/// cookie (`Secure` when the public URL is https), then goes back.
#[post("/key", data = "<form>")]
async fn sign_in(
    origin: Origin,
    form: SmallForm,
    jar: &CookieJar<'_>,
    config: &State<Config>,
    moderation: &State<Arc<Moderation>>,
    caller: Caller,
) -> Result<Redirect, FormError> {
    if origin.cross_site {
        return Err(crate::service::Error::Forged.into());
    }
    let form = form.0?;
    let key = form
        .get("key")
        .map(String::as_str)
        .unwrap_or_default()
        .trim();
    moderation.check_ban(caller.addr).await?;
    if moderation.key(caller.addr, Some(key)).await?.is_none() {
        return Err(crate::service::Error::KeyRequired("no key was sent").into());
    }
    let secure = config.server.public_url.starts_with("https://");
    let cookie = Cookie::build((KEY_COOKIE, key.to_string()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .permanent();
    jar.add(cookie);
    Ok(Redirect::to(
        next_page(form.get("next").map(String::as_str)).to_string(),
    ))
}

/// Removes the key from this browser.
#[post("/key/forget")]
fn forget(origin: Origin, jar: &CookieJar<'_>) -> Result<Redirect, Box<FormError>> {
    if origin.cross_site {
        return Err(Box::new(crate::service::Error::Forged.into()));
    }
    jar.remove(Cookie::build(KEY_COOKIE).path("/"));
    Ok(Redirect::to("/"))
}

/// Whether a form came from another site.
pub struct Origin {
    pub cross_site: bool,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Origin {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Origin {
            cross_site: cross_site(req),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::next_page;

    #[test]
    fn sign_in_goes_back_to_our_own_pages_only() {
        assert_eq!(next_page(Some("/admin")), "/admin");
        assert_eq!(next_page(Some("//evil.example/")), "/");
        assert_eq!(next_page(Some("https://evil.example/")), "/");
        assert_eq!(next_page(Some("/\\evil.example")), "/");
        assert_eq!(next_page(None), "/");
        assert_eq!(next_page(Some("/a b")), "/");
    }
}
