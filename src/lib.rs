//! Kitteh: upload a picture, get a memorable name, served fast.
//!
//! Layers, with data flowing one way: `routes` (HTTP) → `service` (what
//! Kitteh does) → `db`, `storage`, `imaging`. `app` builds the services
//! once and mounts the routes over them; `commands` run the subcommands.
//! See docs/ARCHITECTURE.md.

pub mod app;
pub mod assets;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod imaging;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod routes;
pub mod service;
pub mod storage;
