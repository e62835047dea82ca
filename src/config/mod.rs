//! Kitteh's configuration: typed structs with their defaults (here), the
//! figment that layers defaults < TOML file < environment < command-line
//! flags and remembers where each value came from (`load`), the checks
//! serde cannot make (`validate`), and the annotated TOML that
//! `kitteh config` prints (`render`).
//!
//! The same `Config` is loaded once by `main` and handed down as data; nothing
//! reads the environment after this module is done.

mod load;
mod render;
mod validate;

pub use load::{ConfigError, ConfigSource, Loaded, Override, Overrides, load, load_from, origin};
pub use render::{mask_url, render_annotated};
pub use validate::parse_cidr;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
// The byte-size type Rocket itself uses (and re-exports), taken from its own
// small crate so that configuration does not depend on the web framework.
pub use ubyte::ByteUnit;

/// The file read when `--config` / `KITTEH_CONFIG` is not given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "config/kitteh.toml";

/// Prefix of every Kitteh environment variable (`KITTEH_SERVER__PORT`).
pub const ENV_PREFIX: &str = "KITTEH_";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub uploads: UploadsConfig,
    pub variants: VariantsConfig,
    pub assets: AssetsConfig,
    pub metrics: MetricsConfig,
    pub cache: CacheConfig,
    pub limits: LimitsConfig,
    pub rate_limits: RateLimitsConfig,
    pub privacy: PrivacyConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. `0.0.0.0` in containers.
    pub address: IpAddr,
    /// TCP port to listen on.
    pub port: u16,
    /// Absolute base URL used in every link Kitteh hands out (`https://kitteh.example`).
    /// Empty means "derive from the request's Host header".
    pub public_url: String,
    /// Largest body accepted for anything that is not an image upload (forms, JSON).
    #[serde(serialize_with = "bytes_as_text")]
    pub body_limit: ByteUnit,
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    pub shutdown_grace: u32,
    /// Host names (with or without `:port`) this server answers for when
    /// `public_url` is empty, so that a forged Host header never ends up in
    /// the links it hands out. Empty: the loopback names and the listen
    /// address.
    pub allowed_hosts: Vec<String>,
    /// Proxies (CIDRs such as `10.0.0.0/8`) whose `X-Forwarded-For`,
    /// `-Host` and `-Proto` headers are believed. Empty: nobody's.
    pub trusted_proxies: Vec<String>,
    /// Seconds a client gets to send a request's headers, counted from the
    /// connection or from the first byte of the next request.
    pub header_timeout_seconds: u64,
    /// Seconds a keep-alive connection may sit without a request.
    pub idle_timeout_seconds: u64,
    /// Connections open at once. 0: derived from the process's open-file
    /// limit, keeping room for the database, storage and the app behind
    /// the edge.
    pub max_connections: u32,
    /// Connections open at once from one client address (trusted proxies
    /// are exempt). 0: no cap beyond `max_connections`.
    pub max_connections_per_client: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 4000,
            public_url: String::new(),
            body_limit: ByteUnit::Mebibyte(1),
            shutdown_grace: 10,
            allowed_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
            header_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            max_connections: 0,
            max_connections_per_client: 128,
        }
    }
}

impl ServerConfig {
    /// The names Host may carry when `public_url` is empty: those
    /// configured, or by default the loopback names and the listen address.
    pub fn effective_allowed_hosts(&self) -> Vec<String> {
        if !self.allowed_hosts.is_empty() {
            return self.allowed_hosts.clone();
        }
        let mut hosts = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "[::1]".to_string(),
        ];
        if !self.address.is_unspecified() && !self.address.is_loopback() {
            hosts.push(match self.address {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => format!("[{a}]"),
            });
        }
        hosts
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` or `postgres://user:pass@host/db`.
    pub url: String,
    /// Largest number of pooled connections.
    pub pool_size: u32,
    /// Seconds to wait for a connection before giving up.
    pub connect_timeout: u64,
    /// Apply pending migrations when `serve` starts. Off: migrations are an explicit step.
    pub auto_migrate: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/kitteh.db".into(),
            pool_size: 10,
            connect_timeout: 5,
            auto_migrate: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Where originals and their sizes live: `local` (the folder below) or
    /// `s3` (the bucket in `[storage.s3]`, shared by every replica).
    pub backend: StorageBackend,
    /// Folder holding uploaded originals and their variants (backend `local`).
    pub uploads_dir: PathBuf,
    /// Seconds an object without a row must have existed before the sweep
    /// removes it: an upload or a resize writes its object just before it
    /// commits the row that claims it.
    pub sweep_min_age_seconds: u64,
    /// Seconds between sweeps (the first runs at startup). 0: at startup only.
    pub sweep_interval_seconds: u64,
    /// Days a swept object waits in the trash before it is removed for good.
    pub trash_days: u32,
    pub s3: S3Config,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Local,
            uploads_dir: PathBuf::from("data/uploads"),
            sweep_min_age_seconds: 600,
            sweep_interval_seconds: 3600,
            trash_days: 7,
            s3: S3Config::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    Local,
    S3,
}

impl StorageBackend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::S3 => "s3",
        }
    }
}

/// An S3-compatible bucket: AWS S3, Garage, MinIO, Ceph RGW, Cloudflare R2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// `http(s)://host:port` of the S3 API. Empty: AWS S3 in `region`.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    /// Also read from `KITTEH_STORAGE__S3__ACCESS_KEY_ID_FILE`.
    pub access_key_id: String,
    /// Also read from `KITTEH_STORAGE__S3__SECRET_ACCESS_KEY_FILE`.
    pub secret_access_key: String,
    /// `endpoint/bucket/key` URLs instead of `bucket.endpoint/key`: what
    /// Garage, MinIO and most self-hosted servers expect.
    pub path_style: bool,
    /// Base URL where the bucket's objects are publicly readable (a bucket
    /// website or a CDN). When set, image URLs redirect there instead of
    /// streaming the bytes through Kitteh.
    pub public_url: String,
    /// Longest any single request to the bucket may take.
    pub timeout_seconds: u32,
    /// Retries of a failed request (network errors, 5xx, throttling), with
    /// exponential backoff.
    pub max_retries: u32,
}

impl S3Config {
    /// The settings without which no bucket can be reached.
    pub fn missing(&self) -> Vec<&'static str> {
        [
            ("bucket", &self.bucket),
            ("access_key_id", &self.access_key_id),
            ("secret_access_key", &self.secret_access_key),
        ]
        .into_iter()
        .filter(|(_, value)| value.is_empty())
        .map(|(key, _)| key)
        .collect()
    }
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            bucket: String::new(),
            region: "us-east-1".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            path_style: true,
            public_url: String::new(),
            timeout_seconds: 30,
            max_retries: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadsConfig {
    /// Largest upload accepted; enforced while the body streams in.
    #[serde(serialize_with = "bytes_as_text")]
    pub max_bytes: ByteUnit,
    /// Widest image accepted, in pixels, read from the header before decoding.
    pub max_width: u32,
    /// Tallest image accepted, in pixels.
    pub max_height: u32,
    /// Most pixels (width × height) accepted: this bounds decode memory.
    pub max_pixels: u64,
    /// Who may upload: `open` (anyone) or `keys` (only with a key made by
    /// `kitteh keys create`).
    pub access: Access,
    /// How long an upload lives when it does not say (`expires_in`), as
    /// `90s`, `12h`, `7d`, `2w`. Empty: forever.
    pub default_expiry: String,
    /// The longest `expires_in` accepted (uploads asking for more get 422).
    /// Empty: no maximum, and never expiring is allowed.
    pub max_expiry: String,
    /// Seconds between looks for expired images (and addresses kept past
    /// `privacy.ip_retention_days`).
    pub expiry_interval_seconds: u64,
    /// Files one API request may carry (together within `max_bytes`).
    pub max_files_per_request: u32,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            max_bytes: ByteUnit::Mebibyte(25),
            max_width: 16_384,
            max_height: 16_384,
            max_pixels: 60_000_000,
            access: Access::Open,
            default_expiry: String::new(),
            max_expiry: String::new(),
            expiry_interval_seconds: 60,
            max_files_per_request: 10,
        }
    }
}

impl UploadsConfig {
    /// `default_expiry` as a duration; None for forever (or a value that
    /// `validate` has already refused).
    pub fn default_expiry(&self) -> Option<std::time::Duration> {
        parse_duration(&self.default_expiry).ok().flatten()
    }

    /// `max_expiry` as a duration; None for no maximum.
    pub fn max_expiry(&self) -> Option<std::time::Duration> {
        parse_duration(&self.max_expiry).ok().flatten()
    }
}

/// Who may upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Anyone who can reach the server.
    Open,
    /// Only clients with an upload key.
    Keys,
}

/// `90s`, `15m`, `12h`, `7d`, `2w` as a duration; `""` or `never` as None.
pub fn parse_duration(text: &str) -> Result<Option<std::time::Duration>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_seconds: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "`{text}` is not a duration: write a number and one of s, m, h, d, w (`90s`, `12h`, `7d`), or `never`"
            ));
        }
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: it needs a number before the unit"))?;
    if number == 0 {
        return Err(format!("`{text}` is not a duration: it must be above 0"));
    }
    // Ten years is longer than any sensible expiry and keeps dates in range.
    let seconds = number
        .checked_mul(unit_seconds)
        .filter(|s| *s <= 10 * 366 * 86_400)
        .ok_or_else(|| format!("`{text}` is longer than ten years"))?;
    Ok(Some(std::time::Duration::from_secs(seconds)))
}

/// How often one client address may do what costs others: each pair is a
/// token bucket of `*_burst` refilled at `*_per_minute`. Kept in memory by
/// each replica. A `*_per_minute` of 0 turns that limit off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsConfig {
    pub uploads_per_minute: u32,
    pub uploads_burst: u32,
    pub reports_per_minute: u32,
    pub reports_burst: u32,
    /// Delete attempts with a wrong token (guessing), per address.
    pub wrong_delete_tokens_per_minute: u32,
    pub wrong_delete_tokens_burst: u32,
    /// Upload keys shown that are not keys of this server, per address.
    pub wrong_keys_per_minute: u32,
    pub wrong_keys_burst: u32,
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            uploads_per_minute: 30,
            uploads_burst: 10,
            reports_per_minute: 6,
            reports_burst: 3,
            wrong_delete_tokens_per_minute: 10,
            wrong_delete_tokens_burst: 5,
            wrong_keys_per_minute: 10,
            wrong_keys_burst: 5,
        }
    }
}

/// What Kitteh keeps about people, and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Days the address an image (or a report) came from is kept, for
    /// `kitteh images list --ip` and `kitteh ban add --purge`; then erased.
    /// 0: never stored.
    pub ip_retention_days: u32,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            ip_retention_days: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Memory for the bytes of hot images and sizes. 0 turns it off.
    #[serde(serialize_with = "bytes_as_text")]
    pub image_bytes: ByteUnit,
    /// Milliseconds a token's lookup is reused before asking the database
    /// again; also how long, at most, another replica without PostgreSQL
    /// notifications keeps serving an image deleted elsewhere. 0 to 10000.
    pub metadata_ttl_ms: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            image_bytes: ByteUnit::Mebibyte(64),
            metadata_ttl_ms: 5000,
        }
    }
}

/// What one request may cost the server, whoever sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Memory every decode in this process shares, uploads and resize jobs
    /// alike: each reserves what its header says it will allocate first.
    #[serde(serialize_with = "bytes_as_text")]
    pub decode_memory: ByteUnit,
    /// Seconds an upload waits for decode memory before it is refused as
    /// busy (503 with Retry-After). Resize jobs wait as long as it takes.
    pub decode_wait_seconds: u64,
    /// Longest one decode may take, in seconds (fractions allowed).
    pub decode_seconds: f64,
    /// Most frames an animation may have.
    pub max_frames: u32,
    /// Most pixels all frames of an animation may decode to, together.
    pub max_animation_pixels: u64,
    /// Largest colour profile, once inflated.
    #[serde(serialize_with = "bytes_as_text")]
    pub max_icc_bytes: ByteUnit,
    /// Most scans a progressive JPEG may have: each is decoded over the
    /// whole picture, so a small file of thousands of scans costs seconds.
    /// Cameras and encoders write 10 or so.
    pub max_jpeg_scans: u32,
    /// Memory all upload bodies being received may hold together; past it
    /// an upload waits `decode_wait_seconds`, then is refused as busy.
    #[serde(serialize_with = "bytes_as_text")]
    pub upload_memory: ByteUnit,
    /// Seconds an upload body may go without a byte before it is dropped
    /// (408).
    pub body_idle_seconds: u64,
    /// Slowest average rate, in bytes per second, an upload body may
    /// arrive at once `body_idle_seconds` have passed (408 below it).
    #[serde(serialize_with = "bytes_as_text")]
    pub body_min_rate: ByteUnit,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            decode_memory: ByteUnit::Mebibyte(512),
            decode_wait_seconds: 2,
            decode_seconds: 10.0,
            max_frames: 1000,
            max_animation_pixels: 500_000_000,
            max_icc_bytes: ByteUnit::Mebibyte(4),
            max_jpeg_scans: 100,
            upload_memory: ByteUnit::Mebibyte(256),
            body_idle_seconds: 15,
            body_min_rate: ByteUnit::Kibibyte(8),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve Prometheus metrics at `/metrics`.
    pub enabled: bool,
    /// `address:port` of a separate listener for `/metrics`, kept off the
    /// public port. Empty: served on the main listener.
    pub listen: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssetsConfig {
    /// Serve CSS, JS and images from this folder instead of the copies
    /// compiled into the binary, to restyle without a rebuild. Empty: embedded.
    pub dir: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VariantsConfig {
    /// The resized copies made of every upload, by name and width.
    pub sizes: Vec<SizeConfig>,
    /// JPEG quality of resized copies, 1–100.
    pub jpeg_quality: u8,
    /// Uploads of at most this many pixels have their sizes made within
    /// the upload, from the decode that checks them, so the answer has
    /// them ready; larger ones (and any whose sizes fail there) go to a
    /// resize job. 0: always a job.
    pub inline_max_pixels: u64,
    /// Resizing workers in this process: `"auto"` (one per CPU), a number,
    /// or 0 for none (a replica that only serves).
    pub workers: Workers,
    /// Attempts before a job is marked failed.
    pub max_attempts: u32,
    /// Seconds a claimed job stays claimed without a heartbeat; after that
    /// another worker (in this or another process) takes it over.
    pub lease_seconds: u64,
    /// Milliseconds between looks for work queued by other processes.
    pub poll_interval_ms: u64,
    /// Milliseconds each job waits before working. For tests that must
    /// catch a job mid-flight; keep it 0.
    pub work_delay_ms: u64,
    /// Milliseconds a job waits after storing each size. For tests that
    /// must catch a job with some sizes written; keep it 0.
    pub write_delay_ms: u64,
}

impl Default for VariantsConfig {
    fn default() -> Self {
        Self {
            sizes: vec![
                SizeConfig::new("tiny", 90),
                SizeConfig::new("large", 300),
                SizeConfig::new("monstrous", 600),
            ],
            jpeg_quality: 82,
            // Every phone and most cameras: the upload's own decode makes
            // the sizes cheaply, and a request waits at most a few hundred
            // milliseconds more for them.
            inline_max_pixels: 40_000_000,
            workers: Workers::Auto,
            max_attempts: 3,
            // Short enough that a dead replica's job is taken over within
            // about 20 s; heartbeats renew it every third of it.
            lease_seconds: 15,
            poll_interval_ms: 1000,
            work_delay_ms: 0,
            write_delay_ms: 0,
        }
    }
}

impl VariantsConfig {
    /// How many workers to run here.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            Workers::Auto => std::thread::available_parallelism().map_or(2, |n| n.get()),
            Workers::Count(n) => n,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeConfig {
    /// Lower-case name used in URLs (`/img/tiny{token}`).
    pub name: String,
    /// Target width in pixels; images narrower than this keep their width.
    pub width: u32,
}

impl SizeConfig {
    fn new(name: &str, width: u32) -> Self {
        Self {
            name: name.into(),
            width,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// One per CPU.
    Auto,
    Count(usize),
}

impl Serialize for Workers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => s.serialize_str("auto"),
            Self::Count(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for Workers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Workers;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"auto\" or a number of workers")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Workers, E> {
                usize::try_from(n)
                    .map(Workers::Count)
                    .map_err(|_| E::custom("too many workers"))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Workers, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom("workers cannot be negative"))
                    .and_then(|n| self.visit_u64(n))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Workers, E> {
                match s {
                    "auto" => Ok(Workers::Auto),
                    other => other
                        .parse()
                        .map(Workers::Count)
                        .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter: `info`, `debug`, `kitteh=debug,sqlx=warn`, …
    pub level: String,
    /// `human` for terminals, `json` for log collectors (one object per line).
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Human,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

/// Byte sizes are shown as operators write them (`25MiB`), not as 26214400.
fn bytes_as_text<S: serde::Serializer>(value: &ByteUnit, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&value.to_string())
}

impl Config {
    /// The URL `kitteh healthcheck` calls when given none: a wildcard listen
    /// address is reached through loopback.
    pub fn readiness_url(&self) -> String {
        let host = match self.server.address {
            IpAddr::V4(a) if a.is_unspecified() => "127.0.0.1".to_string(),
            IpAddr::V6(a) if a.is_unspecified() => "[::1]".to_string(),
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        format!("http://{host}:{}/readyz", self.server.port)
    }
}
