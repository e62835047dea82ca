//! oEmbed 1.0 (<https://oembed.com>) for show pages: `GET /oembed?url=PAGE`
//! answers a `photo` that chat tools and forums embed. Only pages of this
//! server are known; anything else is a `404` in JSON.

use std::sync::Arc;

use rocket::serde::json::{Json, Value, json};
use rocket::{Route, State, get, routes};

use crate::http::Problem;
use crate::http::links::BaseUrl;
use crate::names::token_from_path;
use crate::routes::error::ApiError;
use crate::service::Error;
use crate::service::images::Images;
use crate::service::model::SizeState;

pub fn routes() -> Vec<Route> {
    routes![oembed]
}

/// The page name `url` points at, when it is a page of `base`.
fn page_name(base: &BaseUrl, url: &str) -> Option<String> {
    let base = url::Url::parse(&base.0).ok()?;
    let asked = url::Url::parse(url).ok()?;
    let same_origin = asked.scheme() == base.scheme()
        && asked.host_str() == base.host_str()
        && asked.port_or_known_default() == base.port_or_known_default();
    if !same_origin {
        return None;
    }
    let prefix = base.path().trim_end_matches('/');
    let rest = asked.path().strip_prefix(prefix)?.strip_prefix('/')?;
    (!rest.is_empty() && !rest.contains('/')).then(|| rest.to_string())
}

#[get("/oembed?<url>&<maxwidth>&<maxheight>&<format>")]
async fn oembed(
    url: Option<&str>,
    maxwidth: Option<u32>,
    maxheight: Option<u32>,
    format: Option<&str>,
    base: BaseUrl,
    images: &State<Arc<Images>>,
) -> Result<Json<Value>, ApiError> {
    if let Some(format) = format.filter(|f| *f != "json") {
        return Err(ApiError(Problem::with(
            http::StatusCode::NOT_IMPLEMENTED,
            "format_not_supported",
            format!(
                "only format=json is served, not {:?}",
                format.chars().take(20).collect::<String>()
            ),
        )));
    }
    let url = url.filter(|u| !u.is_empty()).ok_or_else(|| {
        ApiError(Problem::with(
            http::StatusCode::BAD_REQUEST,
            "missing_url",
            "give the page as ?url=…",
        ))
    })?;
    let unknown = || {
        ApiError(Problem::with(
            http::StatusCode::NOT_FOUND,
            "not_found",
            format!("{} is not a picture page of this server", base.0),
        ))
    };
    let name = page_name(&base, url).ok_or_else(unknown)?;
    let token = token_from_path(&name).ok_or_else(unknown)?;
    let (resolved, _) = match images.live(&token, &name).await {
        Ok(found) => found,
        Err(Error::NotFound(_)) => return Err(unknown()),
        Err(e) => return Err(e.into()),
    };
    let image = &resolved.image;
    let fits = |w: u32, h: u32| maxwidth.is_none_or(|m| w <= m) && maxheight.is_none_or(|m| h <= m);
    let ready: Vec<_> = resolved
        .sizes
        .iter()
        .filter(|s| s.state == SizeState::Ready)
        .collect();
    // The original when it fits; else the largest ready size that does;
    // else the smallest there is.
    let (photo, width, height) = if fits(image.width, image.height) {
        (base.image_file(image), image.width, image.height)
    } else if let Some(size) = ready
        .iter()
        .filter(|s| fits(s.width, s.height))
        .max_by_key(|s| s.width)
        .or_else(|| ready.iter().min_by_key(|s| s.width))
    {
        (base.size_file(image, &size.name), size.width, size.height)
    } else {
        (base.image_file(image), image.width, image.height)
    };
    let mut answer = json!({
        "version": "1.0",
        "type": "photo",
        "url": photo,
        "width": width,
        "height": height,
        "title": image.name,
        "provider_name": "Kitteh",
        "provider_url": format!("{}/", base.0),
    });
    if let Some(at) = image.expires_at {
        answer["cache_age"] = json!((at - chrono::Utc::now()).num_seconds().max(0));
    }
    Ok(Json(answer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pages_of_this_server_are_known() {
        let base = BaseUrl("https://kitteh.example".into());
        assert_eq!(
            page_name(&base, "https://kitteh.example/SomeNameKitty").as_deref(),
            Some("SomeNameKitty")
        );
        assert_eq!(
            page_name(&base, "https://kitteh.example:443/SomeNameKitty?x=1").as_deref(),
            Some("SomeNameKitty")
        );
        for foreign in [
            "https://evil.example/SomeNameKitty",
            "http://kitteh.example/SomeNameKitty",
            "https://kitteh.example:8443/SomeNameKitty",
            "https://kitteh.example/img/sometoken",
            "https://kitteh.example/",
            "not a url",
        ] {
            assert_eq!(page_name(&base, foreign), None, "{foreign}");
        }
        let sub = BaseUrl("https://example.org/kitteh".into());
        assert_eq!(
            page_name(&sub, "https://example.org/kitteh/NameKitty").as_deref(),
            Some("NameKitty")
        );
        assert_eq!(page_name(&sub, "https://example.org/NameKitty"), None);
    }
}
