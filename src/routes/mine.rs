//! "My uploads": without an account. A browser keeps the list of what it
//! uploaded in its own storage (the page draws it with app.js); a browser
//! signed in with an upload key gets the key's uploads from the server,
//! with delete buttons that work without JavaScript.

use std::sync::Arc;

use maud::{Markup, html};
use rocket::response::Redirect;
use rocket::{Route, State, get, post, routes};

use crate::assets::Assets;
use crate::config::Config;
use crate::http::links::BaseUrl;
use crate::routes::access::Caller;
use crate::routes::admin::{check_matches, check_token};
use crate::routes::error::PageError;
use crate::routes::forms::SmallForm;
use crate::service::Error;
use crate::service::images::{Images, Listed, Listing, Page as ListingPage};
use crate::service::moderation::{KeyInfo, Moderation};
use crate::service::removals::Removals;
use crate::views::{Page, forget_key_form, layout, name_words, placeholder};

/// Uploads a key's page lists, newest first.
const SHOWN: usize = 200;

pub fn routes() -> Vec<Route> {
    routes![page, delete]
}

/// The key the caller shows, if it is a valid one.
async fn key_of(caller: &Caller, moderation: &Moderation) -> Result<Option<KeyInfo>, Error> {
    match moderation.key(caller.addr, caller.key.as_deref()).await {
        Ok(key) => Ok(key),
        Err(Error::KeyRequired(_) | Error::KeyRevoked) => Ok(None),
        Err(e) => Err(e),
    }
}

#[get("/mine?<before>")]
async fn page(
    before: Option<i64>,
    caller: Caller,
    base: BaseUrl,
    images: &State<Arc<Images>>,
    moderation: &State<Arc<Moderation>>,
    assets: &State<Assets>,
    config: &State<Config>,
) -> Result<Page, PageError> {
    let Some(key) = key_of(&caller, moderation).await? else {
        return Ok(local_page(assets));
    };
    let listed = images
        .listing(&Listing {
            key_id: Some(key.id),
            limit: Some(SHOWN),
            before,
            ..Listing::default()
        })
        .await?;
    let check = check_token(caller.key.as_deref().unwrap_or_default());
    // The narrowest configured size (none: the original).
    let thumb_size = config
        .variants
        .sizes
        .iter()
        .min_by_key(|s| s.width)
        .map_or("", |s| s.name.as_str());
    Ok(key_page(assets, thumb_size, &base, &key, &check, &listed))
}

fn local_page(assets: &Assets) -> Page {
    layout(
        assets,
        "My uploads",
        html! {
            h1 { "My uploads" }
            p { "The pictures uploaded from this browser, newest first. The list lives in this browser only: the server keeps no account." }
            noscript { p class="notice" { "This list needs JavaScript: it is kept in the browser's own storage." } }
            div class="actions" {
                button type="button" id="forget-list" class="secondary" hidden { "Forget this list" }
            }
            p id="mine-empty" hidden { "Nothing uploaded from this browser yet. " a href="/" { "Upload a picture" } "." }
            ul class="plain mine" id="mine" data-source="browser" {}
        },
    )
}

fn tile(base: &BaseUrl, listed: &Listed, check: &str, thumb_size: &str) -> Markup {
    let image = &listed.image;
    let blur = image
        .blurhash
        .as_deref()
        .and_then(|h| placeholder(h, image.width, image.height));
    html! {
        li data-token=(image.token) {
            span class="thumb-frame" {
                @if let Some(blur) = blur {
                    img class="thumb placeholder" src=(blur) alt="" aria-hidden="true" width="48" height="48";
                }
                img class="thumb" src={ (base.0) "/img/" (thumb_size) (image.token) } alt="" width="48" height="48" loading="lazy";
            }
            a href=(base.page(image)) { (name_words(&image.name)) }
            form method="post" action="/mine/delete" class="inline-form" {
                input type="hidden" name="check" value=(check);
                input type="hidden" name="token" value=(image.token);
                button type="submit" class="secondary" data-action="delete" { "Delete" }
            }
        }
    }
}

fn key_page(
    assets: &Assets,
    thumb_size: &str,
    base: &BaseUrl,
    key: &KeyInfo,
    check: &str,
    listed: &ListingPage,
) -> Page {
    layout(
        assets,
        "My uploads",
        html! {
            h1 { "My uploads" }
            p { "The pictures uploaded with the key " strong { (key.name) } ", newest first." }
            (forget_key_form())
            @if listed.items.is_empty() {
                p id="mine-empty" { "Nothing uploaded with this key yet. " a href="/" { "Upload a picture" } "." }
            }
            ul class="plain mine" id="mine" data-source="key" {
                @for l in &listed.items { (tile(base, l, check, thumb_size)) }
            }
            @if let Some(next) = listed.next {
                p { a id="older" href={ "/mine?before=" (next) } { "Older uploads" } }
            }
        },
    )
}

/// Deletes one of the key's own uploads.
#[post("/mine/delete", data = "<form>")]
async fn delete(
    form: SmallForm,
    caller: Caller,
    removals: &State<Arc<Removals>>,
    moderation: &State<Arc<Moderation>>,
) -> Result<Redirect, PageError> {
    let key = key_of(&caller, moderation)
        .await?
        .ok_or(Error::KeyRequired("sign in with your key first"))?;
    let form = form.0?;
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    check_matches(
        &check_token(caller.key.as_deref().unwrap_or_default()),
        field("check"),
    )?;
    removals.by_key(caller.addr, &key, field("token")).await?;
    Ok(Redirect::to("/mine"))
}
