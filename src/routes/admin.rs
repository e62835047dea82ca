//! The moderation page at `/admin`, for admin keys only (signed in as on
//! the upload page): open reports with thumbnails and the latest uploads,
//! each with delete, delete-and-block and ban-the-uploader buttons. Plain
//! POST forms, each carrying a check token derived from the key, on top of
//! the `SameSite=Strict` cookie; no script.

use std::sync::Arc;

use maud::{Markup, html};
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{Route, State, get, post, routes};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::assets::Assets;
use crate::routes::access::Caller;
use crate::routes::error::PageError;
use crate::routes::forms::SmallForm;
use crate::service::Error;
use crate::service::images::{Images, Listed, Listing};
use crate::service::moderation::{KeyInfo, Moderation, Report, hash_key, parse_net};
use crate::service::removals::Removals;
use crate::views::{self, Page, forget_key_form, key_form, layout, name_words};

/// Uploads shown on the page, newest first.
const RECENT: usize = 60;

/// Open reports shown at once, oldest first.
const REPORTS_SHOWN: u64 = 100;

pub fn routes() -> Vec<Route> {
    routes![page, act]
}

/// A page with a status other than 200.
pub struct WithStatus(Status, Page);

impl<'r> rocket::response::Responder<'r, 'static> for WithStatus {
    fn respond_to(self, req: &'r rocket::Request<'_>) -> rocket::response::Result<'static> {
        rocket::response::Response::build_from(self.1.respond_to(req)?)
            .status(self.0)
            .ok()
    }
}

/// The admin key behind the request, or the page that asks for one.
async fn admin(
    caller: &Caller,
    moderation: &Moderation,
    assets: &Assets,
) -> Result<Result<(KeyInfo, String), WithStatus>, PageError> {
    moderation.check_ban(caller.addr).await?;
    let key = match moderation.key(caller.addr, caller.key.as_deref()).await {
        Ok(Some(key)) => key,
        Ok(None) => return Ok(Err(sign_in_page(assets, None))),
        Err(e @ (Error::KeyRequired(_) | Error::KeyRevoked)) => {
            return Ok(Err(sign_in_page(assets, Some(&e.to_string()))));
        }
        Err(e) => return Err(e.into()),
    };
    if !key.admin {
        return Err(Error::AdminOnly("the key in use is not an admin key").into());
    }
    let check = check_token(caller.key.as_deref().unwrap_or_default());
    Ok(Ok((key, check)))
}

/// The token every moderation form carries: derived from the key, so a
/// page from another site cannot know it.
pub fn check_token(key: &str) -> String {
    hex::encode(Sha256::digest(format!(
        "kitteh moderation form:{}",
        hash_key(key)
    )))
}

/// Refuses a form whose check token is not `expected`.
pub fn check_matches(expected: &str, sent: &str) -> Result<(), Error> {
    if bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(Error::Forged)
    }
}

fn sign_in_page(assets: &Assets, error: Option<&str>) -> WithStatus {
    WithStatus(
        Status::Unauthorized,
        layout(
            assets,
            "Moderation",
            html! {
                h1 { "Moderation" }
                @if let Some(error) = error { (views::error_box_markup(error)) }
                (key_form("/admin", "Sign in with an admin key"))
            },
        ),
    )
}

#[get("/admin?<reports_after>&<before>")]
async fn page(
    reports_after: Option<i64>,
    before: Option<i64>,
    caller: Caller,
    images: &State<Arc<Images>>,
    moderation: &State<Arc<Moderation>>,
    assets: &State<Assets>,
) -> Result<WithStatus, PageError> {
    let (key, check) = match admin(&caller, moderation, assets).await? {
        Ok(admin) => admin,
        Err(sign_in) => return Ok(sign_in),
    };
    // The oldest open reports first, a page's worth: a flood of them must
    // not make the page too slow (or the query too long) to act on.
    let reports = moderation
        .reports(false, reports_after, REPORTS_SHOWN + 1)
        .await?;
    let (reports, more_reports) = match reports.len() as u64 > REPORTS_SHOWN {
        true => (reports[..REPORTS_SHOWN as usize].to_vec(), true),
        false => (reports, false),
    };
    let mut reported: Vec<String> = reports.iter().map(|r| r.token.clone()).collect();
    reported.sort();
    reported.dedup();
    let reported_images = images
        .listing(&Listing {
            tokens: Some(reported),
            limit: Some(crate::service::images::MAX_PAGE),
            ..Listing::default()
        })
        .await?
        .items;
    let recent = images
        .listing(&Listing {
            limit: Some(RECENT),
            before,
            ..Listing::default()
        })
        .await?;
    let pages = Pages {
        reports_after: more_reports.then(|| reports.last().map(|r| r.id)).flatten(),
        before: recent.next,
    };
    Ok(WithStatus(
        Status::Ok,
        admin_page(
            assets,
            &key,
            &check,
            &reports,
            &reported_images,
            &recent.items,
            pages,
        ),
    ))
}

fn actions(check: &str, listed: &Listed, report: Option<i64>) -> Markup {
    let token = &listed.image.token;
    html! {
        div class="mod-actions" {
            @for (action, words, class) in [("delete", "Delete", "secondary"), ("block", "Delete and block", "danger")] {
                form method="post" action="/admin" {
                    input type="hidden" name="check" value=(check);
                    input type="hidden" name="action" value=(action);
                    input type="hidden" name="token" value=(token);
                    button type="submit" class=(class) data-action=(action) { (words) }
                }
            }
            @if listed.uploader_ip.is_some() {
                form method="post" action="/admin" {
                    input type="hidden" name="check" value=(check);
                    input type="hidden" name="action" value="ban";
                    input type="hidden" name="token" value=(token);
                    button type="submit" class="danger" data-action="ban" { "Ban uploader" }
                }
            }
            @if let Some(id) = report {
                form method="post" action="/admin" {
                    input type="hidden" name="check" value=(check);
                    input type="hidden" name="action" value="dismiss";
                    input type="hidden" name="report" value=(id);
                    button type="submit" class="secondary" data-action="dismiss" { "Dismiss" }
                }
            }
        }
    }
}

fn tile(listed: &Listed) -> Markup {
    let image = &listed.image;
    html! {
        a href={ "/" (image.name) } {
            img class="mod-thumb" src={ "/img/tiny" (image.token) } alt={ "The picture " (image.name) } width="90" height="90" loading="lazy";
        }
        p class="mod-name" { (name_words(&image.name)) }
        p class="mod-facts" {
            (image.created_at.format("%Y-%m-%d %H:%M UTC"))
            @if let Some(ip) = &listed.uploader_ip { " · " (ip) }
        }
    }
}

/// Where the next page of reports, and of uploads, start.
#[derive(Debug, Clone, Copy)]
struct Pages {
    reports_after: Option<i64>,
    before: Option<i64>,
}

fn admin_page(
    assets: &Assets,
    key: &KeyInfo,
    check: &str,
    reports: &[Report],
    reported: &[Listed],
    recent: &[Listed],
    pages: Pages,
) -> Page {
    let by_token: std::collections::HashMap<&str, &Listed> = reported
        .iter()
        .map(|l| (l.image.token.as_str(), l))
        .collect();
    layout(
        assets,
        "Moderation",
        html! {
            h1 { "Moderation" }
            p { "Signed in with the admin key " strong { (key.name) } ". " }
            (forget_key_form())
            h2 { "Open reports" }
            @if reports.is_empty() { p id="no-reports" { "No open reports." } }
            ul class="plain mod-grid" id="reports" {
                @for report in reports {
                    li class="mod-card" data-report=(report.id) data-token=(report.token) {
                        @match by_token.get(report.token.as_str()) {
                            Some(listed) => {
                                (tile(listed))
                                p class="mod-reason" { strong { (report.reason) } @if !report.details.is_empty() { ": " (report.details) } }
                                (actions(check, listed, Some(report.id)))
                            }
                            None => {
                                p { (report.token) " (already gone)" }
                                p class="mod-reason" { strong { (report.reason) } }
                            }
                        }
                    }
                }
            }
            @if let Some(after) = pages.reports_after {
                p { a id="more-reports" href={ "/admin?reports_after=" (after) } { "More reports" } }
            }
            h2 { "Recent uploads" }
            ul class="plain mod-grid" id="recent" {
                @for listed in recent {
                    li class="mod-card" data-token=(listed.image.token) {
                        (tile(listed))
                        (actions(check, listed, None))
                    }
                }
            }
            @if let Some(before) = pages.before {
                p { a id="older" href={ "/admin?before=" (before) } { "Older uploads" } }
            }
        },
    )
}

#[post("/admin", data = "<form>")]
async fn act(
    form: SmallForm,
    caller: Caller,
    images: &State<Arc<Images>>,
    moderation: &State<Arc<Moderation>>,
    removals: &State<Arc<Removals>>,
    assets: &State<Assets>,
) -> Result<Result<Redirect, WithStatus>, PageError> {
    let (key, check) = match admin(&caller, moderation, assets).await? {
        Ok(admin) => admin,
        Err(sign_in) => return Ok(Err(sign_in)),
    };
    let form = form.0?;
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    check_matches(&check, field("check"))?;
    let token = field("token");
    match field("action") {
        "delete" | "block" => {
            let block = field("action") == "block";
            let image = removals.take_down(token, block).await?;
            tracing::info!(key = %key.name, token = %image.token, block, "image taken down from the moderation page");
        }
        "ban" => {
            let found = images
                .listing(&Listing {
                    tokens: Some(vec![token.to_ascii_lowercase()]),
                    ..Listing::default()
                })
                .await?;
            let listed = found
                .items
                .first()
                .ok_or_else(|| Error::NotFound(token.to_string()))?;
            let ip = listed.uploader_ip.as_deref().ok_or_else(|| {
                Error::BadForm(format!(
                    "the address {} came from is no longer kept",
                    listed.image.name
                ))
            })?;
            let net = parse_net(ip)?;
            moderation
                .ban(&net.to_string(), &format!("uploaded {}", listed.image.name))
                .await?;
            tracing::info!(key = %key.name, %net, "address banned from the moderation page");
        }
        "dismiss" => {
            let id: i64 = field("report")
                .parse()
                .map_err(|_| Error::BadForm("report: expected a report number".into()))?;
            moderation.report_by_id(id).await?;
            moderation.resolve_report(id, "dismissed").await?;
        }
        other => {
            return Err(Error::BadForm(format!(
                "action: expected delete, block, ban or dismiss; got {:?}",
                other.chars().take(20).collect::<String>()
            ))
            .into());
        }
    }
    Ok(Ok(Redirect::to("/admin")))
}
