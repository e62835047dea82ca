//! The HTTP side: one module per area of the site, each exporting
//! `routes()`; `app::build_rocket` mounts them all in one place. Routes
//! speak HTTP only and reach the database and storage through services.

pub mod api;
pub mod assets;
pub mod error;
pub mod files;
pub mod health;
pub mod host;
pub mod links;
pub mod metrics;
pub mod pages;
pub mod request_log;
pub mod upload_form;
pub mod views;
