//! Absolute URLs for everything Kitteh hands out: from `server.public_url`
//! when set, else from the request's Host header.

use rocket::State;
use rocket::request::{FromRequest, Outcome, Request};

use crate::config::Config;
use crate::names::capitalise;
use crate::routes::host::{HostPolicy, requested_host, requested_scheme};
use crate::service::model::ImageInfo;

/// The site's base URL, without a trailing slash.
pub struct BaseUrl(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for BaseUrl {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let config = req.guard::<&State<Config>>().await;
        let configured = match &config {
            Outcome::Success(c) if !c.server.public_url.is_empty() => {
                Some(c.server.public_url.trim_end_matches('/').to_string())
            }
            _ => None,
        };
        // Without a public URL the host comes from the request, which the
        // host allowlist (routes::host) has already checked.
        let base = configured.unwrap_or_else(|| {
            let policy = req.rocket().state::<HostPolicy>();
            let host =
                policy
                    .and_then(|p| requested_host(req, p))
                    .unwrap_or_else(|| match &config {
                        Outcome::Success(c) => format!("{}:{}", c.server.address, c.server.port),
                        _ => "localhost".into(),
                    });
            let scheme = policy.map_or("http", |p| requested_scheme(req, p));
            format!("{scheme}://{host}")
        });
        Outcome::Success(BaseUrl(base))
    }
}

impl BaseUrl {
    pub fn page(&self, image: &ImageInfo) -> String {
        format!("{}/{}", self.0, image.name)
    }

    pub fn image(&self, image: &ImageInfo) -> String {
        self.original(&image.token)
    }

    /// `/img/{token}`: an original's bytes.
    pub fn original(&self, token: &str) -> String {
        format!("{}/img/{token}", self.0)
    }

    /// `/img/tiny{token}`: the variant URL of the Phoenix app Kitteh replaces.
    pub fn size_image(&self, image: &ImageInfo, size: &str) -> String {
        format!("{}/img/{size}{}", self.0, image.token)
    }

    /// `/img/{token}.jpg`: the original's bytes under a name that ends in
    /// its extension, which many forums and chat tools need to embed it.
    pub fn image_file(&self, image: &ImageInfo) -> String {
        format!("{}.{}", self.original(&image.token), image.extension())
    }

    /// `/img/tiny{token}.jpg`: a size's bytes, with the extension.
    pub fn size_file(&self, image: &ImageInfo, size: &str) -> String {
        format!("{}.{}", self.size_image(image, size), image.extension())
    }

    /// `/Tiny{Name}Kitty`: a size's own page.
    pub fn size_page(&self, image: &ImageInfo, size: &str) -> String {
        format!("{}/{}{}", self.0, capitalise(size), image.name)
    }

    pub fn download(&self, image: &ImageInfo) -> String {
        format!("{}/img/{}?download", self.0, image.token)
    }

    pub fn delete_page(&self, image: &ImageInfo, delete_token: &str) -> String {
        format!("{}/{}/delete?token={delete_token}", self.0, image.name)
    }

    pub fn api(&self, image: &ImageInfo) -> String {
        format!("{}/api/images/{}", self.0, image.token)
    }
}
