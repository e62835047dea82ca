//! Absolute URLs for everything Kitteh hands out: from `server.public_url`
//! when set, else from the request's Host header.

use rocket::State;
use rocket::request::{FromRequest, Outcome, Request};

use crate::config::Config;
use crate::db::entities::images;

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
        let base = configured.unwrap_or_else(|| {
            let host = req
                .host()
                .map(|h| h.to_string())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| match &config {
                    Outcome::Success(c) => format!("{}:{}", c.server.address, c.server.port),
                    _ => "localhost".into(),
                });
            format!("http://{host}")
        });
        Outcome::Success(BaseUrl(base))
    }
}

impl BaseUrl {
    pub fn page(&self, image: &images::Model) -> String {
        format!("{}/{}{}", self.0, image.generated_name, image.kind)
    }

    pub fn image(&self, image: &images::Model) -> String {
        format!("{}/img/{}", self.0, image.token)
    }

    /// `/img/tiny{token}`: the original app's variant URL.
    pub fn size_image(&self, image: &images::Model, size: &str) -> String {
        format!("{}/img/{size}{}", self.0, image.token)
    }

    /// `/Tiny{Name}Kitty`: the original app's variant page.
    pub fn size_page(&self, image: &images::Model, size: &str) -> String {
        format!(
            "{}/{}{}{}",
            self.0,
            crate::routes::images::capitalise(size),
            image.generated_name,
            image.kind
        )
    }

    pub fn download(&self, image: &images::Model) -> String {
        format!("{}/img/{}?download", self.0, image.token)
    }

    pub fn delete_page(&self, image: &images::Model, delete_token: &str) -> String {
        format!(
            "{}/{}{}/delete?token={delete_token}",
            self.0, image.generated_name, image.kind
        )
    }

    pub fn api(&self, image: &images::Model) -> String {
        format!("{}/api/images/{}", self.0, image.token)
    }
}
