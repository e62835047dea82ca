//! Absolute URLs for everything Kitteh hands out: from `server.public_url`
//! when set, else from the request's host (which the edge has checked
//! against the allowlist).

use crate::config::ServerConfig;
use crate::http::host::{HostHeaders, HostPolicy};
use crate::names::capitalise;
use crate::service::model::ImageInfo;

/// The site's base URL, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(pub String);

impl BaseUrl {
    /// From `server.public_url` when set; else from the request's host.
    pub fn of(server: &ServerConfig, policy: &HostPolicy, asked: &HostHeaders<'_>) -> Self {
        if !server.public_url.is_empty() {
            return Self(server.public_url.trim_end_matches('/').to_string());
        }
        let host = policy
            .requested_host(asked)
            .unwrap_or_else(|| format!("{}:{}", server.address, server.port));
        Self(format!("{}://{host}", policy.requested_scheme(asked)))
    }

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
