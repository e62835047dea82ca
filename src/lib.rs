//! Kitteh: upload a picture, get a memorable name, served fast.
//!
//! Layers, with data flowing one way: `routes` (HTTP) → `service` (what
//! Kitteh does) → `db`, `storage`, `imaging`. `app` builds the services
//! once and mounts the routes over them; `commands` run the subcommands.
//! See docs/ARCHITECTURE.md.

/// Every allocation goes through mimalloc unless the `mimalloc` feature is
/// turned off: musl's allocator serialises threads on one lock.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The global allocator this build uses, as `kitteh version` reports it.
pub const ALLOCATOR: &str = if cfg!(feature = "mimalloc") {
    "mimalloc"
} else if cfg!(target_env = "musl") {
    "system (musl)"
} else {
    "system"
};

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
