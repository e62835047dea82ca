//! Logging through `tracing`: human lines for terminals, JSON lines for
//! collectors. The line per HTTP request is written by
//! `routes::request_log`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Logs go to stderr so that commands whose
/// output is data (`kitteh config`, `kitteh version --json`) stay parseable.
/// `quiet` lowers library chatter for one-shot commands.
pub fn init(config: &LogConfig, quiet: bool) {
    // sqlx reports PostgreSQL notices ("relation already exists, skipping")
    // at info; they are noise to operators. An explicit `sqlx=…` in the
    // configured level still wins, coming later.
    // Rocket logs through the `log` crate for every request and announces
    // its launch as a warning; our own lines replace those, so only its
    // errors pass.
    let mut directives = format!("sqlx=warn,rocket=error,_=error,{}", config.level);
    if quiet {
        directives.push_str(",sea_orm_migration=warn");
    }
    // The level was validated with the config; fall back rather than abort.
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests calling into the library twice) is harmless.
    let _ = match config.format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}
