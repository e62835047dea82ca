//! What each subcommand does, one file per subcommand. Exit codes: 0
//! success, 1 runtime failure, 2 bad configuration or usage.

/// `println!` for command output. A reader that stops early (`| head`,
/// `| grep -q`) closes the pipe; that is the reader's choice, not a
/// failure: the command stops printing but finishes its work and exits
/// with its own status, instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::commands::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` with the same closed-pipe rule as `outln!`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::commands::write_out(format_args!($($arg)*))
    };
}

mod config;
mod doctor;
mod healthcheck;
mod listing;
mod migrate;
mod moderation;
mod storage;
mod variants;
mod version;

use std::process::ExitCode;

use crate::app::StartError;
use crate::cli::{Cli, Command, MigrateAction};
use crate::config::{ConfigSource, Loaded};
use crate::service::error::chain;
use crate::{app, db, logging};

pub use version::{BUILD, BuildInfo};

/// Set once stdout's reader has gone: nothing more is printed.
static STDOUT_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes command output, or nothing once stdout has been closed. Any other
/// write error is said once on stderr, and printing stops there too.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("kitteh: cannot write to stdout: {e}");
        }
    }
}

const EXIT_FAILURE: u8 = 1;
const EXIT_CONFIG: u8 = 2;

/// A command's failure: its message and exit status.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    fn runtime(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_FAILURE,
            message: message.into(),
        }
    }

    fn config(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_CONFIG,
            message: message.into(),
        }
    }
}

impl From<db::DbError> for Failure {
    fn from(e: db::DbError) -> Self {
        Self::runtime(e.to_string())
    }
}

impl From<sea_orm::DbErr> for Failure {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::runtime(format!("database error: {e}"))
    }
}

impl From<StartError> for Failure {
    fn from(e: StartError) -> Self {
        let message = chain(&e);
        if e.is_config() {
            Self::config(message)
        } else {
            Self::runtime(message)
        }
    }
}

impl From<crate::service::Error> for Failure {
    fn from(e: crate::service::Error) -> Self {
        Self::runtime(e.chain())
    }
}

pub fn run(cli: Cli) -> ExitCode {
    // The healthcheck must exit 0 or 1 only (Docker reserves 2), and must work
    // when handed a URL even if the config is broken.
    if let Command::Healthcheck(args) = &cli.command {
        return match healthcheck::healthcheck(&cli, args) {
            Ok(line) => {
                outln!("{line}");
                ExitCode::SUCCESS
            }
            Err(why) => {
                eprintln!("kitteh healthcheck: {why}");
                ExitCode::from(EXIT_FAILURE)
            }
        };
    }
    if let Command::Version(args) = &cli.command {
        version::version(args);
        return ExitCode::SUCCESS;
    }
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn load(cli: &Cli) -> Result<Loaded, Failure> {
    let source = ConfigSource::from_arg(cli.global.config.clone());
    crate::config::load(&source, &cli.overrides()).map_err(|e| Failure::config(e.to_string()))
}

fn dispatch(cli: Cli) -> Result<(), Failure> {
    let loaded = load(&cli)?;
    if let Command::Config(args) = &cli.command {
        return config::show_config(&loaded, args);
    }
    logging::init(&loaded.config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(_) => Ok(app::serve(loaded.config).await?),
            Command::Migrate(args) => {
                let db = db::connect(&loaded.config.database).await?;
                migrate::migrate(&db, args.action.unwrap_or(MigrateAction::Up)).await
            }
            Command::Variants(args) => variants::variants(loaded.config, args.action).await,
            Command::Storage(args) => storage::storage(loaded.config, args.action).await,
            Command::Doctor => doctor::doctor(loaded.config).await,
            Command::Keys(args) => moderation::keys(loaded.config, args.action).await,
            Command::Reports(args) => moderation::reports(loaded.config, args.action).await,
            Command::Images(args) => moderation::images(loaded.config, args.action).await,
            Command::Ban(args) => moderation::ban(loaded.config, args.action).await,
            // Handled before the runtime starts.
            Command::Version(_) | Command::Config(_) | Command::Healthcheck(_) => Ok(()),
        }
    })
}

/// A progress bar on stderr for `len` things called `what`.
fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {what} {{elapsed_precise}} {{msg}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}
