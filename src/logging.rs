//! Logging through `tracing`: human lines for terminals, JSON lines for
//! collectors. The line per HTTP request is written by
//! `routes::request_log`.

use std::io::IsTerminal;

use tracing::Level;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogConfig, LogFormat};

/// The filter for a `log.level` value: comma-separated `target=level`
/// pairs and a bare default level (`info`, `kitteh=debug,sqlx=warn`). A
/// plain list of targets needs no regular-expression engine in the binary.
pub fn parse_level(level: &str) -> Result<Targets, String> {
    level.parse::<Targets>().map_err(|e| e.to_string())
}

/// Installs the global subscriber. Logs go to stderr so that commands whose
/// output is data (`kitteh config`, `kitteh version --json`) stay parseable.
pub fn init(config: &LogConfig) {
    // sqlx reports PostgreSQL notices ("relation already exists, skipping")
    // at info; they are noise to operators. An explicit `sqlx=…` in the
    // configured level still wins, coming later.
    // Rocket logs through the `log` crate for every request and announces
    // its launch as a warning; our own lines replace those, so only its
    // errors pass.
    // sea-orm-migration announces each migration three times at info;
    // `db::apply_pending` reports each once, so its own lines are left out.
    let directives = format!(
        "sqlx=warn,rocket=error,_=error,sea_orm_migration=warn,{}",
        config.level
    );
    // The level was validated with the config; fall back rather than abort.
    let filter =
        parse_level(&directives).unwrap_or_else(|_| Targets::new().with_default(Level::INFO));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let layer = match config.format {
        LogFormat::Human => fmt.with_target(false).boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .boxed(),
    };
    // One layer, so the filter is global: as a per-layer filter it dropped
    // events that followed one it had filtered out on the same thread
    // (the lines after a quieted library's own, such as each migration
    // applied on PostgreSQL). A second init (tests calling into the
    // library twice) is harmless.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_directive_for_a_target_wins_and_bare_levels_set_the_default() {
        let t = parse_level("sqlx=warn,info,sqlx=debug").unwrap();
        assert!(t.would_enable("sqlx::query", &Level::DEBUG));
        assert!(t.would_enable("kitteh", &Level::INFO));
        assert!(!t.would_enable("kitteh", &Level::DEBUG));
        let t = parse_level("info,kitteh=debug").unwrap();
        assert!(t.would_enable("kitteh::routes", &Level::DEBUG));
        assert!(!t.would_enable("rocket", &Level::DEBUG));
        assert!(parse_level("kitteh=loud").is_err());
    }
}
