//! The pages people see: upload, show, delete confirmation.

use std::sync::Arc;

use rocket::data::{self, Data, FromData, ToByteUnit};
use rocket::http::CookieJar;
use rocket::http::uri::Origin;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{Request, Route, State, get, post, routes};

use crate::assets::Assets;
use crate::config::Config;
use crate::http::links::BaseUrl;
use crate::names::{capitalise, token_from_path};
use crate::routes::access::{self, Caller};
use crate::routes::error::{FormError, PageError};
use crate::routes::exchange::Reporter;
use crate::routes::upload_form::UploadBody;
use crate::service::Error;
use crate::service::images::Images;
use crate::service::removals::Removals;
use crate::service::uploads::{Stored, Uploads};
use crate::views::{self, Page, Preview, ShowLinks, SizeLink};

pub fn routes() -> Vec<Route> {
    routes![index, upload, show, delete_confirm, delete]
}

/// The flash message kind that carries a fresh upload's delete token.
const CREATED: &str = "created";

#[get("/")]
fn index(assets: &State<Assets>, config: &State<Config>, jar: &CookieJar<'_>) -> Page {
    let page = access::upload_page_for(jar, config, false);
    views::upload_page(assets, &page, None)
}

/// The plain form POST: works with JavaScript off. On success the browser
/// goes to the show page, which displays the delete link this once; on
/// failure it gets the upload page again, with the error.
#[post("/upload", data = "<body>")]
async fn upload(
    body: Result<UploadBody, Error>,
    base: BaseUrl,
    uploads: &State<Arc<Uploads>>,
    assets: &State<Assets>,
    log: &Reporter,
) -> Result<FormAnswer, FormError> {
    let uploaded = match body?.store(uploads).await? {
        Stored::One(uploaded) => uploaded,
        // Several files (the picker allows it): a page with each one's
        // links, delete links included, or its error.
        Stored::Many(outcomes) => {
            let rows: Vec<views::UploadedRow> = outcomes
                .iter()
                .map(|o| match &o.result {
                    Ok(u) => views::UploadedRow {
                        file_name: o.file_name.clone(),
                        name: Some(u.image.name.clone()),
                        page_url: Some(base.page(&u.image)),
                        delete_url: Some(base.delete_page(&u.image, &u.delete_token)),
                        error: None,
                    },
                    Err(e) => views::UploadedRow {
                        file_name: o.file_name.clone(),
                        name: None,
                        page_url: None,
                        delete_url: None,
                        error: Some(crate::http::Problem::from(e).message),
                    },
                })
                .collect();
            return Ok(FormAnswer::Many(views::uploaded_many_page(assets, &rows)));
        }
    };
    log.token(&uploaded.image.token);
    let image = &uploaded.image;
    let location = base.page(image);
    // The cookie names the image it belongs to, so it is shown on that page only.
    let message = format!("{}:{}", image.token, uploaded.delete_token);
    Ok(FormAnswer::One(Box::new(Flash::new(
        Redirect::to(location),
        CREATED,
        message,
    ))))
}

/// The form's answer: the show page of the one picture, or a page listing
/// several.
#[derive(rocket::Responder)]
pub enum FormAnswer {
    One(Box<Flash<Redirect>>),
    Many(Page),
}

fn lookup_token(name: &str) -> Result<String, Error> {
    token_from_path(name).ok_or_else(|| Error::NotFound(name.to_string()))
}

#[get("/<name>", rank = 10)]
async fn show(
    name: &str,
    flash: Option<FlashMessage<'_>>,
    base: BaseUrl,
    images: &State<Arc<Images>>,
    assets: &State<Assets>,
) -> Result<Page, PageError> {
    let token = lookup_token(name)?;
    let (resolved, focus) = images.live(&token, name).await?;
    let image = &resolved.image;
    let sizes: Vec<SizeLink> = resolved
        .sizes
        .iter()
        .map(|s| SizeLink {
            label: capitalise(&s.name),
            image_url: base.size_image(image, &s.name),
            file_url: base.size_file(image, &s.name),
            page_url: base.size_page(image, &s.name),
            width: s.width,
            height: s.height,
            state: s.state.as_str().to_string(),
            bytes: s.bytes,
            name: s.name.clone(),
        })
        .collect();
    let focus = focus.and_then(|f| sizes.iter().find(|s| s.name == f));
    let delete_token = flash.as_ref().and_then(|f| {
        let (owner, secret) = f.message().split_once(':')?;
        (f.kind() == CREATED && owner == image.token).then(|| secret.to_string())
    });
    let delete_url = delete_token.map(|t| base.delete_page(image, &t));
    let page_url = base.page(image);
    let image_url = base.image(image);
    let image_file_url = base.image_file(image);
    // The largest ready size, else the original: what unfurlers show.
    let (preview_url, preview_w, preview_h) = sizes
        .iter()
        .filter(|s| s.state == "ready")
        .max_by_key(|s| s.width)
        .map_or_else(
            || (base.image_file(image), image.width, image.height),
            |s| (s.file_url.clone(), s.width, s.height),
        );
    let preview = Preview {
        title: image.name.clone(),
        page_url: base.page(image),
        image_url: preview_url,
        width: preview_w,
        height: preview_h,
        content_type: image.content_type.clone(),
        alt: format!("Uploaded picture {}", image.name),
        oembed_url: format!(
            "{}/oembed?url={}",
            base.0,
            url::form_urlencoded::byte_serialize(base.page(image).as_bytes()).collect::<String>()
        ),
    };
    let download_url = match focus {
        Some(size) => format!("{}?download", size.image_url),
        None => base.download(image),
    };
    Ok(views::show_page(
        assets,
        image,
        &ShowLinks {
            page_url: &page_url,
            image_url: &image_url,
            image_file_url: &image_file_url,
            download_url: &download_url,
            delete_url: delete_url.as_deref(),
            sizes: &sizes,
            focus,
            report_url: &format!("/{}/report", image.name),
            preview: &preview,
        },
    ))
}

#[get("/<name>/delete?<token>", rank = 5)]
async fn delete_confirm(
    name: &str,
    token: Option<&str>,
    origin: &Origin<'_>,
    base: BaseUrl,
    images: &State<Arc<Images>>,
    assets: &State<Assets>,
) -> Result<Page, PageError> {
    let (image, sizes) = images.describe(&lookup_token(name)?).await?;
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(Error::WrongDeleteToken)?;
    // A preview no larger than the page needs: the largest ready size up
    // to 300 px wide, else the original.
    let preview = sizes
        .iter()
        .filter(|s| s.state.as_str() == "ready" && s.width <= 300)
        .max_by_key(|s| s.width)
        .map_or_else(|| base.image(&image), |s| base.size_image(&image, &s.name));
    Ok(views::delete_confirm_page(
        assets,
        &image,
        &preview,
        token,
        origin.path().as_str(),
    ))
}

/// The delete form's body, `token=…` urlencoded, as the confirmation page
/// sends it. Read here rather than through Rocket's `Form`: a form guard
/// would compile Rocket's multipart parser into the binary, and with it
/// every legacy text encoding's tables (about 150 KB), for one field.
struct DeleteForm(Result<Option<String>, Error>);

/// Longer than any token; a bigger body is not our form.
const DELETE_FORM_LIMIT: u64 = 4096;

#[rocket::async_trait]
impl<'r> FromData<'r> for DeleteForm {
    type Error = std::convert::Infallible;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        // No form body: the token may come in the query instead.
        if !req.content_type().is_some_and(|ct| ct.is_form()) {
            return data::Outcome::Success(Self(Ok(None)));
        }
        let read = data.open(DELETE_FORM_LIMIT.bytes()).into_string().await;
        let token = match read {
            Ok(body) if body.is_complete() => Ok(url::form_urlencoded::parse(body.as_bytes())
                .find(|(key, _)| key == "token")
                .map(|(_, value)| value.into_owned())),
            Ok(_) => Err(Error::BadForm(format!(
                "the delete form is larger than {DELETE_FORM_LIMIT} bytes; send only token=…"
            ))),
            Err(e) => Err(Error::BadForm(format!(
                "the delete form could not be read: {e}"
            ))),
        };
        data::Outcome::Success(Self(token))
    }
}

/// Deletes with the token from the form (`token=…`, urlencoded) or, for
/// scripts that post the delete link as it is, from the query.
#[post("/<name>/delete?<token>", data = "<form>", rank = 5)]
async fn delete(
    name: &str,
    token: Option<&str>,
    form: DeleteForm,
    caller: Caller,
    removals: &State<Arc<Removals>>,
    assets: &State<Assets>,
) -> Result<Page, PageError> {
    let lookup = lookup_token(name)?;
    let sent = form.0?.or_else(|| token.map(str::to_string));
    let image = removals
        .with_token(caller.addr, &lookup, sent.as_deref())
        .await?;
    Ok(views::deleted_page(assets, &image.name))
}
