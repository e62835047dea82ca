//! Reporting a picture: a small form on its own page, posted to
//! `POST /{Name}/report`, answered with a thank-you page (or JSON for API
//! clients). Rate limited per address; banned addresses are refused.

use std::sync::Arc;

use maud::html;
use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::serde::json::{Json, json};
use rocket::{Route, State, get, post, routes};

use crate::assets::Assets;
use crate::names::token_from_path;
use crate::routes::access::Caller;
use crate::routes::error::{PageError, wants_html};
use crate::routes::forms::SmallForm;
use crate::service::Error;
use crate::service::images::Images;
use crate::service::moderation::{MAX_REPORT_TEXT, Moderation, REPORT_REASONS};
use crate::views::{Page, layout, name_words};

pub fn routes() -> Vec<Route> {
    routes![form, report]
}

fn token_of(name: &str) -> Result<String, Error> {
    token_from_path(name).ok_or_else(|| Error::NotFound(name.to_string()))
}

#[get("/<name>/report", rank = 5)]
async fn form(
    name: &str,
    images: &State<Arc<Images>>,
    assets: &State<Assets>,
) -> Result<Page, PageError> {
    let (resolved, _) = images.live(&token_of(name)?, name).await?;
    Ok(report_page(assets, &resolved.image.name))
}

/// A thank-you page for browsers, `201` JSON for everything else.
pub struct Received {
    name: String,
    id: i64,
    assets: Assets,
}

impl<'r> Responder<'r, 'static> for Received {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        if wants_html(req) {
            return thanks_page(&self.assets, &self.name).respond_to(req);
        }
        let body = json!({ "report": { "id": self.id, "image": self.name, "state": "received" } });
        response::Response::build_from(Json(body).respond_to(req)?)
            .status(Status::Created)
            .ok()
    }
}

#[post("/<name>/report", data = "<form>", rank = 5)]
async fn report(
    name: &str,
    form: SmallForm,
    caller: Caller,
    images: &State<Arc<Images>>,
    moderation: &State<Arc<Moderation>>,
    assets: &State<Assets>,
) -> Result<Received, PageError> {
    moderation.admit_report(caller.addr).await?;
    let (resolved, _) = images.live(&token_of(name)?, name).await?;
    let form = form.0?;
    let reason = form.get("reason").map(String::as_str).unwrap_or_default();
    let details = form.get("details").map(String::as_str).unwrap_or_default();
    let image = &resolved.image;
    let report = moderation
        .report(&image.token, reason, details, caller.addr)
        .await?;
    Ok(Received {
        name: image.name.clone(),
        id: report.id,
        assets: assets.inner().clone(),
    })
}

fn report_page(assets: &Assets, name: &str) -> Page {
    layout(
        assets,
        &format!("Report {name}"),
        html! {
            h1 { "Report " (name_words(name)) }
            form id="report-form" class="card" method="post" action={ "/" (name) "/report" } {
                fieldset {
                    legend { "What is wrong with this picture?" }
                    @for (i, (value, words)) in REPORT_REASONS.iter().enumerate() {
                        div class="choice" {
                            input type="radio" name="reason" id={ "reason-" (value) } value=(value) required checked[i == 0];
                            label for={ "reason-" (value) } { (words) }
                        }
                    }
                }
                label for="details" { "Anything the operator should know (optional)" }
                textarea id="details" name="details" rows="4" maxlength=(MAX_REPORT_TEXT) {}
                div class="actions" {
                    a class="button secondary" href={ "/" (name) } { "Back" }
                    button type="submit" { "Send the report" }
                }
            }
        },
    )
}

fn thanks_page(assets: &Assets, name: &str) -> Page {
    layout(
        assets,
        "Thank you",
        html! {
            h1 { "Thank you" }
            p id="report-received" { "Your report about " (name_words(name)) " has reached the operator of this server." }
            p { a href="/" { "Go to the upload page" } }
        },
    )
}
