//! One module per area of the site, each exporting `routes()`; `app.rs`
//! mounts them all in one place.

pub mod api;
pub mod assets;
pub mod health;
pub mod images;
pub mod links;
pub mod metrics;
pub mod pages;
pub mod upload;
