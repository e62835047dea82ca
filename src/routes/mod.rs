//! The Rocket app: one module per area of the site, each exporting
//! `routes()`; `app::build_rocket` mounts them all in one place. Routes
//! speak HTTP only and reach the database and storage through services.
//! Images and assets are not here: the edge answers them (`edge::fast`),
//! and it hands every other request in through `exchange`.

pub mod access;
pub mod admin;
pub mod api;
pub mod error;
pub mod exchange;
pub mod forms;
pub mod health;
pub mod integrations;
pub mod metrics;
pub mod mine;
pub mod oembed;
pub mod pages;
pub mod report;
pub mod upload_form;

/// A page from `views`, as Rocket answers it.
impl<'r> rocket::response::Responder<'r, 'static> for crate::views::Page {
    fn respond_to(self, req: &'r rocket::Request<'_>) -> rocket::response::Result<'static> {
        rocket::response::content::RawHtml(self.0).respond_to(req)
    }
}
