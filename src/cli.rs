//! The command line: global options and one subcommand per operator task.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Overrides;

#[derive(Debug, Parser)]
#[command(
    name = "kitteh",
    about = "Kitteh: upload a picture, get a memorable name, served fast.",
    long_about = None,
    disable_version_flag = true,
    propagate_version = false
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file. Defaults to config/kitteh.toml when it exists;
    /// a path given here must exist.
    #[arg(long, global = true, env = "KITTEH_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Overrides server.address.
    #[arg(long, global = true, value_name = "IP")]
    pub address: Option<IpAddr>,

    /// Overrides server.port.
    #[arg(long, global = true, value_name = "PORT")]
    pub port: Option<u16>,

    /// Overrides database.url (sqlite://… or postgres://…).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// Overrides log.level (a tracing filter such as `info` or `kitteh=debug`).
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the web server. Refuses to start when migrations are pending,
    /// unless --migrate (or database.auto_migrate) is given.
    Serve(ServeArgs),
    /// Apply, inspect or roll back database migrations (default: up).
    Migrate(MigrateArgs),
    /// Inspect or re-run the background resizing of images.
    Variants(VariantsArgs),
    /// Check the storage backend, compare it with the database, or copy
    /// every image to another backend.
    Storage(StorageArgs),
    /// Check everything `serve` depends on and say in full what is wrong:
    /// what `/readyz` only names.
    Doctor,
    /// Print the version (and build details with --verbose).
    Version(VersionArgs),
    /// Print the effective configuration and where each value came from.
    Config(ConfigArgs),
    /// Make, list and revoke upload keys.
    Keys(KeysArgs),
    /// List and resolve reports made from image pages.
    Reports(ReportsArgs),
    /// List images (by age, address, key, reports) and delete them.
    Images(ImagesArgs),
    /// Ban addresses from uploading, reporting and deleting.
    Ban(BanArgs),
    /// Ask a running server whether it is ready; exit 0 if so, 1 otherwise.
    /// For container images without curl.
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Apply pending migrations before listening.
    #[arg(long)]
    pub migrate: bool,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub action: Option<MigrateAction>,
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Apply every pending migration (the default).
    Up,
    /// List every migration with applied/pending.
    Status,
    /// Roll back the newest applied migrations.
    Down {
        /// How many migrations to roll back.
        #[arg(short = 'n', long = "steps", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        steps: u32,
    },
    /// Drop every table and apply all migrations again. Destroys all data.
    Fresh {
        /// Confirm that every row in the database may be deleted.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct VariantsArgs {
    #[command(subcommand)]
    pub action: VariantsAction,
}

#[derive(Debug, Subcommand)]
pub enum VariantsAction {
    /// Count resize jobs by state (pending, running, done, failed).
    Status,
    /// Queue resize jobs again, e.g. after changing the sizes; a running
    /// server picks them up.
    Rebuild {
        /// Every image.
        #[arg(long, conflicts_with_all = ["failed", "token"])]
        all: bool,
        /// Only images whose job failed.
        #[arg(long, conflicts_with = "token")]
        failed: bool,
        /// One image, by token.
        token: Option<String>,
        /// Do the work here, in the foreground, with a progress bar.
        #[arg(long)]
        now: bool,
    },
}

#[derive(Debug, Args)]
pub struct StorageArgs {
    #[command(subcommand)]
    pub action: StorageAction,
}

#[derive(Debug, Subcommand)]
pub enum StorageAction {
    /// Write, read back and remove a probe object on the configured backend.
    Check,
    /// Compare storage with the database: rows whose objects are missing,
    /// objects no row refers to, what is in the trash. Exit 1 when they
    /// disagree.
    Fsck {
        /// Put things right under the sweep's rules: restore from the trash
        /// what rows need, re-queue missing sizes, move orphans to the trash.
        #[arg(long)]
        repair: bool,
        /// The database is the right one: give it the installation identity
        /// storage carries (after a restore from a backup older than it).
        #[arg(long)]
        adopt: bool,
    },
    /// Copy every original and size from one backend to the other, checking
    /// each copy by SHA-256. Safe to interrupt and run again: objects
    /// already copied intact are skipped. Safe while the server runs; run it
    /// once more after switching `storage.backend` to catch uploads made
    /// in between.
    Migrate {
        /// The backend to copy to; the other one is read from.
        #[arg(long, value_enum)]
        to: BackendArg,
        /// Copies in flight at once.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    Local,
    S3,
}

/// How much of a listing to print: a page (of `--limit` rows) after a
/// cursor, or every page.
#[derive(Debug, Clone, Default, Args)]
pub struct Paging {
    /// Rows a page holds (default 100, at most 1000).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Where the page starts: the cursor the previous page printed.
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
    /// Every page, one after the other.
    #[arg(long, conflicts_with = "cursor")]
    pub all_pages: bool,
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: KeysAction,
}

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Make a key and print it, once: only its hash is stored.
    Create {
        /// A name to know the key by (who has it).
        name: String,
        /// Most bytes the key may store in all (25MiB, 2GB, …).
        #[arg(long, value_name = "SIZE")]
        quota: Option<String>,
        /// May use the moderation page and is exempt from rate limits.
        #[arg(long)]
        admin: bool,
        /// An upload limit of its own instead of the per-address one.
        #[arg(long, value_name = "N")]
        uploads_per_minute: Option<u32>,
    },
    /// Name, created, last used, uploads, bytes and quota of the keys, by
    /// name.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        paging: Paging,
    },
    /// Revoke a key: its uploads stay, new ones get 401 key_revoked.
    Revoke { name: String },
}

#[derive(Debug, Args)]
pub struct ReportsArgs {
    #[command(subcommand)]
    pub action: ReportsAction,
}

#[derive(Debug, Subcommand)]
pub enum ReportsAction {
    /// The open reports, oldest first.
    List {
        #[arg(long)]
        json: bool,
        /// Resolved reports too.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        paging: Paging,
    },
    /// Resolve a report by deleting the image or dismissing the report.
    Resolve {
        id: i64,
        /// Delete the reported image.
        #[arg(long, conflicts_with = "dismiss", required_unless_present = "dismiss")]
        delete: bool,
        /// Keep the image; close the report.
        #[arg(long)]
        dismiss: bool,
        /// With --delete: also refuse the same picture from now on (451).
        #[arg(long, requires = "delete")]
        block: bool,
    },
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    pub action: ImagesAction,
}

#[derive(Debug, Subcommand)]
pub enum ImagesAction {
    /// Images, newest first.
    List {
        /// Uploaded within this long (90s, 12h, 7d).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// Uploaded from this network (203.0.113.0/24 or one address).
        #[arg(long, value_name = "CIDR")]
        ip: Option<String>,
        /// Uploaded with this key.
        #[arg(long, value_name = "NAME")]
        key: Option<String>,
        /// With open reports only.
        #[arg(long)]
        reported: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        paging: Paging,
    },
    /// Delete images by name or token.
    Delete {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Also refuse the same pictures from now on (451 blocked).
        #[arg(long)]
        block: bool,
    },
}

#[derive(Debug, Args)]
pub struct BanArgs {
    #[command(subcommand)]
    pub action: BanAction,
}

#[derive(Debug, Subcommand)]
pub enum BanAction {
    /// Ban a network or address: its uploads, reports and deletes get 403.
    Add {
        #[arg(value_name = "CIDR")]
        cidr: String,
        /// Also delete every image still known to come from it.
        #[arg(long)]
        purge: bool,
        /// Confirms --purge (without it, the count is printed and nothing
        /// is done).
        #[arg(long, requires = "purge")]
        yes: bool,
        #[arg(long, value_name = "TEXT", default_value = "")]
        reason: String,
    },
    /// The bans, by network.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        paging: Paging,
    },
    /// Lift a ban.
    Remove {
        #[arg(value_name = "CIDR")]
        cidr: String,
    },
}

#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Add git commit, target, rustc, profile and newest migration.
    #[arg(long, short)]
    pub verbose: bool,
    /// Print as JSON (implies the verbose fields).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Only validate: exit 0 when valid, 2 with the errors otherwise.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// Readiness URL. Defaults to http://<server.address>:<server.port>/readyz.
    pub url: Option<String>,
}

impl Cli {
    /// The configuration keys the global flags set. Each flag's name is
    /// written here once, next to its key, and `kitteh config` reports it
    /// from here as the origin of the value.
    pub fn overrides(&self) -> Overrides {
        let g = &self.global;
        let mut o = Overrides::default();
        o.set(
            "server.address",
            "--address",
            g.address.map(|a| a.to_string()),
        );
        o.set("server.port", "--port", g.port);
        o.set("database.url", "--database-url", g.database_url.clone());
        o.set("log.level", "--log-level", g.log_level.clone());
        let migrate = matches!(&self.command, Command::Serve(args) if args.migrate);
        o.set(
            "database.auto_migrate",
            "--migrate",
            migrate.then_some(true),
        );
        o
    }
}
