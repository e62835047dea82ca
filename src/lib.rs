//! Kitteh: upload a picture, get a memorable name, served fast.
//!
//! Layers, with data flowing one way: `edge` (the socket) and `routes` (the
//! Rocket app), which share `http` and `views` and never import each other
//! → `service` (what Kitteh does) → `db`, `storage`, `imaging`. `app` builds
//! the services once, mounts the routes over them and puts the edge in
//! front; `commands` run the subcommands.
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

/// Sets the allocator up for a small resident size, first thing in `main`.
/// mimalloc commits each 1 GiB arena it reserves at once on Linux
/// ("eager commit", because the kernel overcommits): idle, that put 14 MiB
/// of never-used memory in the resident set (27 MiB in all). Committed on
/// demand instead, an idle server holds 13 MiB; serving and uploads
/// measured no slower (docs/benchmarks.md, "Idle memory").
#[allow(unsafe_code)]
pub fn tune_allocator() {
    #[cfg(feature = "mimalloc")]
    // SAFETY: `mi_option_set` takes plain integers; option 4 is
    // `mi_option_arena_eager_commit` in the mimalloc v2 this crate builds,
    // and mimalloc allows options to be set at any time.
    unsafe {
        const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
    }
}

/// Returns memory the allocator holds freed to the operating system now.
/// mimalloc keeps freed memory for reuse and gives it back lazily (after a
/// second, and only when it next allocates), so after a decode of hundreds
/// of MB the next decode, on another thread, would find it still resident
/// and RSS would reach twice the decode budget. Called when a large
/// decode reservation ends.
#[allow(unsafe_code)]
pub fn give_back_memory() {
    #[cfg(feature = "mimalloc")]
    // SAFETY: `mi_collect` takes no pointers and only walks mimalloc's own
    // structures; mimalloc allows it from any thread at any time.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

pub mod app;
pub mod assets;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod edge;
/// What the edge and the app share; neither imports the other.
pub mod http;
/// The image pipeline, a crate of its own (`src/imaging`) so that it is
/// built for speed while the rest is built for size.
pub use kitteh_imaging as imaging;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod routes;
pub mod service;
pub mod storage;
pub mod views;
