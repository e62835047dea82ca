//! Kitteh's configuration: typed structs with their defaults, and the figment
//! that layers defaults < TOML file < environment < command-line flags.
//!
//! The same `Config` is loaded once by `main` and handed down as data; nothing
//! reads the environment after this module is done.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use rocket::data::ByteUnit;
use serde::{Deserialize, Serialize};

/// The file read when `--config` / `KITTEH_CONFIG` is not given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "config/kitteh.toml";

/// Prefix of every Kitteh environment variable (`KITTEH_SERVER__PORT`).
pub const ENV_PREFIX: &str = "KITTEH_";

/// Suffix that turns any key into "read this value from a file" (Docker secrets).
const FILE_SUFFIX: &str = "_FILE";

/// Keys whose values are masked by `kitteh config`.
const SECRET_KEYS: &[&str] = &["database.url", "storage.s3.secret_access_key"];

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 4000,
            public_url: String::new(),
            body_limit: ByteUnit::Mebibyte(1),
            shutdown_grace: 10,
        }
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
    pub s3: S3Config,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Local,
            uploads_dir: PathBuf::from("data/uploads"),
            sweep_min_age_seconds: 600,
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
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            max_bytes: ByteUnit::Mebibyte(25),
            max_width: 16_384,
            max_height: 16_384,
            max_pixels: 60_000_000,
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
            workers: Workers::Auto,
            max_attempts: 3,
            lease_seconds: 60,
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

/// Values given on the command line; each `Some` overrides every other source.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
    pub database_url: Option<String>,
    pub log_level: Option<String>,
    pub auto_migrate: Option<bool>,
}

/// Why the configuration could not be loaded. Every message names the key and
/// where its value came from, so an operator can fix it without reading code.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("config file {path} is not valid TOML: {message}")]
    BadToml { path: PathBuf, message: String },
    #[error("cannot read secret file {path} (from {var}): {source}")]
    SecretFile {
        var: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("both {var} and {file_var} are set; set only one")]
    BothSecretForms { var: String, file_var: String },
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// Where the configuration comes from, resolved from `--config`/`KITTEH_CONFIG`.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// Given explicitly: it must exist.
    Explicit(PathBuf),
    /// The default path, read only when present.
    Default,
}

impl ConfigSource {
    pub fn from_arg(path: Option<PathBuf>) -> Self {
        match path {
            Some(path) => Self::Explicit(path),
            None => Self::Default,
        }
    }

    fn resolve(&self) -> Result<Option<PathBuf>, ConfigError> {
        match self {
            Self::Explicit(path) if path.is_file() => Ok(Some(path.clone())),
            Self::Explicit(path) => Err(ConfigError::MissingFile(path.clone())),
            Self::Default => {
                let path = PathBuf::from(DEFAULT_CONFIG_PATH);
                Ok(path.is_file().then_some(path))
            }
        }
    }
}

/// The loaded configuration plus the figment it came from, kept so that
/// `kitteh config` can say where each value was set.
pub struct Loaded {
    pub config: Config,
    pub figment: Figment,
    pub file: Option<PathBuf>,
}

/// Loads and validates the configuration from every layer.
pub fn load(source: &ConfigSource, overrides: &Overrides) -> Result<Loaded, ConfigError> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    load_from(source, overrides, &env)
}

/// As `load`, with the environment passed in, so tests need not touch the process's.
pub fn load_from(
    source: &ConfigSource,
    overrides: &Overrides,
    env: &BTreeMap<String, String>,
) -> Result<Loaded, ConfigError> {
    let file = source.resolve()?;
    let mut figment = Figment::from(Layer::new("default", None, to_dict(&Config::default())));

    if let Some(path) = &file {
        // Parse first on our own so a syntax error is reported as such, with the
        // file's name, rather than as a missing key further down.
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::BadToml {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if let Err(e) = text.parse::<toml::Table>() {
            return Err(ConfigError::BadToml {
                path: path.clone(),
                message: e.to_string(),
            });
        }
        figment = figment.merge(Toml::file_exact(path));
    }

    figment = figment
        .merge(conventional_env(env))
        .merge(kitteh_env(env))
        .merge(secret_files(env)?)
        .merge(flags(overrides));

    let config: Config = figment.extract().map_err(describe_figment_error)?;
    validate(&config)?;
    Ok(Loaded {
        config,
        figment,
        file,
    })
}

/// `PORT` (Heroku, Cloud Run) and `DATABASE_URL` (every PaaS) sit just below
/// Kitteh's own variables, so `KITTEH_…` wins when both are set.
fn conventional_env(env: &BTreeMap<String, String>) -> Layer {
    let mut dict = Dict::new();
    let mut server = Dict::new();
    let mut database = Dict::new();
    if let Some(port) = env.get("PORT") {
        server.insert("port".into(), parse_env_value(port));
    }
    if let Some(url) = env.get("DATABASE_URL") {
        database.insert("url".into(), Value::from(url.clone()));
    }
    if !server.is_empty() {
        dict.insert("server".into(), server.into());
    }
    if !database.is_empty() {
        dict.insert("database".into(), database.into());
    }
    Layer::new("environment variable", Some(EnvNaming::Conventional), dict)
}

/// `KITTEH_<SECTION>__<KEY>`. Variables without `__` (such as `KITTEH_CONFIG`)
/// are not configuration keys; `_FILE` forms are read by `secret_files`.
fn kitteh_env(env: &BTreeMap<String, String>) -> Layer {
    let mut dict = Dict::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if !rest.contains("__") || rest.ends_with(FILE_SUFFIX) {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        // Strings that look like URLs or paths stay strings; numbers and
        // booleans become typed, as figment's own Env provider does.
        insert_path(&mut dict, &path, parse_env_value(value));
    }
    Layer::new("environment variable", Some(EnvNaming::Kitteh), dict)
}

/// `KITTEH_DATABASE__URL_FILE=/run/secrets/db` reads the value from that file.
fn secret_files(env: &BTreeMap<String, String>) -> Result<Layer, ConfigError> {
    let mut dict = Dict::new();
    for (name, file) in env {
        let Some(var) = name.strip_suffix(FILE_SUFFIX) else {
            continue;
        };
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if !rest.contains("__") {
            continue;
        }
        if env.contains_key(var) {
            return Err(ConfigError::BothSecretForms {
                var: var.to_string(),
                file_var: name.clone(),
            });
        }
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::SecretFile {
            var: name.clone(),
            path: PathBuf::from(file),
            source,
        })?;
        // Secret files written by editors and `echo` end in a newline that is
        // never part of the secret.
        let value = text.trim_end_matches(['\n', '\r']).to_string();
        let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        insert_path(&mut dict, &path, Value::from(value));
    }
    Ok(Layer::new("secret file", Some(EnvNaming::SecretFile), dict))
}

fn flags(overrides: &Overrides) -> Layer {
    let mut dict = Dict::new();
    let mut set = |path: &[&str], value: Value| {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        insert_path(&mut dict, &path, value);
    };
    if let Some(address) = overrides.address {
        set(&["server", "address"], Value::from(address.to_string()));
    }
    if let Some(port) = overrides.port {
        set(&["server", "port"], Value::from(port));
    }
    if let Some(url) = &overrides.database_url {
        set(&["database", "url"], Value::from(url.clone()));
    }
    if let Some(level) = &overrides.log_level {
        set(&["log", "level"], Value::from(level.clone()));
    }
    if let Some(auto) = overrides.auto_migrate {
        set(&["database", "auto_migrate"], Value::from(auto));
    }
    Layer::new("command-line flag", None, dict)
}

fn parse_env_value(raw: &str) -> Value {
    raw.parse::<Value>()
        .unwrap_or_else(|_| Value::from(raw.to_string()))
}

fn insert_path(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if let Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

fn to_dict<T: Serialize>(value: &T) -> Dict {
    match Value::serialize(value) {
        Ok(Value::Dict(_, dict)) => dict,
        _ => Dict::new(),
    }
}

/// How a layer's keys map back to the names an operator typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnvNaming {
    Kitteh,
    Conventional,
    SecretFile,
}

/// A provider with a name of our choosing, so that `kitteh config` and error
/// messages can say "environment variable KITTEH_SERVER__PORT" rather than
/// figment's generic labels.
struct Layer {
    name: &'static str,
    naming: Option<EnvNaming>,
    dict: Dict,
}

impl Layer {
    fn new(name: &'static str, naming: Option<EnvNaming>, dict: Dict) -> Self {
        Self { name, naming, dict }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let naming = self.naming;
        Metadata::named(self.name)
            .interpolater(move |_: &Profile, keys: &[&str]| env_name(naming, keys))
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

fn env_name(naming: Option<EnvNaming>, keys: &[&str]) -> String {
    let upper = keys
        .iter()
        .map(|k| k.to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join("__");
    match naming {
        Some(EnvNaming::Kitteh) => format!("{ENV_PREFIX}{upper}"),
        Some(EnvNaming::SecretFile) => format!("{ENV_PREFIX}{upper}{FILE_SUFFIX}"),
        Some(EnvNaming::Conventional) => match keys {
            ["server", "port"] => "PORT".into(),
            ["database", "url"] => "DATABASE_URL".into(),
            _ => upper,
        },
        None => keys.join("."),
    }
}

/// Describes where a key's value came from: `default`, a file path, an
/// environment variable name or a command-line flag.
pub fn origin(figment: &Figment, key: &str) -> String {
    let Some(meta) = figment.find_metadata(key) else {
        return "default".into();
    };
    let keys: Vec<&str> = key.split('.').collect();
    if let Some(path) = meta.source.as_ref().and_then(|s| s.file_path()) {
        return format!("file {}", path.display());
    }
    match meta.name.as_ref() {
        "default" => "default".into(),
        "command-line flag" => format!("flag --{}", flag_name(&keys)),
        _ => format!(
            "{} {}",
            meta.name,
            meta.interpolate(&Profile::Default, &keys)
        ),
    }
}

fn flag_name(keys: &[&str]) -> &'static str {
    match keys {
        ["server", "address"] => "address",
        ["server", "port"] => "port",
        ["database", "url"] => "database-url",
        ["database", "auto_migrate"] => "migrate",
        ["log", "level"] => "log-level",
        _ => "?",
    }
}

/// Turns figment's errors into one line each that names the key, the value's
/// source and what was expected.
fn describe_figment_error(error: figment::Error) -> ConfigError {
    let lines = error
        .into_iter()
        .map(|e| {
            let mut path = e.path.join(".");
            let problem = match &e.kind {
                figment::error::Kind::UnknownField(field, expected) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(field);
                    if expected.is_empty() {
                        "unknown key".to_string()
                    } else {
                        format!("unknown key (expected one of: {})", expected.join(", "))
                    }
                }
                kind => kind.to_string(),
            };
            let from = e
                .metadata
                .as_ref()
                .map(|m| describe_metadata(m, &path))
                .unwrap_or_else(|| "configuration".into());
            format!("{path}: {problem} (from {from})")
        })
        .collect();
    ConfigError::Invalid(lines)
}

fn describe_metadata(meta: &Metadata, path: &str) -> String {
    if let Some(file) = meta.source.as_ref().and_then(|s| s.file_path()) {
        return format!("file {}", file.display());
    }
    let keys: Vec<&str> = path.split('.').collect();
    format!(
        "{} {}",
        meta.name,
        meta.interpolate(&Profile::Default, &keys)
    )
}

/// Checks what serde cannot: values that parse but make no sense.
fn validate(config: &Config) -> Result<(), ConfigError> {
    let mut errors = Vec::new();
    let db = &config.database.url;
    if !(db.starts_with("sqlite:")
        || db.starts_with("postgres://")
        || db.starts_with("postgresql://"))
    {
        errors.push(format!(
            "database.url: expected a sqlite:// or postgres:// URL, found `{}`",
            mask_url(db)
        ));
    }
    if config.database.pool_size == 0 {
        errors.push("database.pool_size: must be at least 1".into());
    }
    if !config.server.public_url.is_empty() {
        match url::Url::parse(&config.server.public_url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            _ => errors.push(format!(
                "server.public_url: expected an absolute http(s) URL, found `{}`",
                config.server.public_url
            )),
        }
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&config.log.level) {
        errors.push(format!(
            "log.level: `{}` is not a valid filter ({e})",
            config.log.level
        ));
    }
    let u = &config.uploads;
    if u.max_bytes.as_u64() == 0 || u.max_width == 0 || u.max_height == 0 || u.max_pixels == 0 {
        errors.push(
            "uploads: max_bytes, max_width, max_height and max_pixels must be above 0".into(),
        );
    }
    if !config.metrics.listen.is_empty()
        && config
            .metrics
            .listen
            .parse::<std::net::SocketAddr>()
            .is_err()
    {
        errors.push(format!(
            "metrics.listen: expected address:port such as 127.0.0.1:9464, found `{}`",
            config.metrics.listen
        ));
    }
    if config.storage.backend == StorageBackend::S3 {
        for key in config.storage.s3.missing() {
            errors.push(format!(
                "storage.s3.{key}: required when storage.backend is \"s3\""
            ));
        }
    }
    for (key, value) in [
        ("storage.s3.endpoint", &config.storage.s3.endpoint),
        ("storage.s3.public_url", &config.storage.s3.public_url),
    ] {
        if !value.is_empty() {
            match url::Url::parse(value) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                _ => errors.push(format!(
                    "{key}: expected an absolute http(s) URL, found `{value}`"
                )),
            }
        }
    }
    if config.storage.s3.timeout_seconds == 0 {
        errors.push("storage.s3.timeout_seconds: must be at least 1".into());
    }
    if config.cache.metadata_ttl_ms > 10_000 {
        errors.push(format!(
            "cache.metadata_ttl_ms: at most 10000 (deleted images must stop being served within 10 s), found {}",
            config.cache.metadata_ttl_ms
        ));
    }
    let v = &config.variants;
    let mut seen = std::collections::HashSet::new();
    for size in &v.sizes {
        if size.name.is_empty() || !size.name.bytes().all(|b| b.is_ascii_lowercase()) {
            errors.push(format!(
                "variants.sizes: name `{}` must be lower-case letters only",
                size.name
            ));
        }
        if !seen.insert(size.name.as_str()) {
            errors.push(format!(
                "variants.sizes: name `{}` appears twice",
                size.name
            ));
        }
        if size.width == 0 || size.width > 8192 {
            errors.push(format!(
                "variants.sizes: width of `{}` must be 1 to 8192, found {}",
                size.name, size.width
            ));
        }
    }
    if !(1..=100).contains(&v.jpeg_quality) {
        errors.push(format!(
            "variants.jpeg_quality: must be 1 to 100, found {}",
            v.jpeg_quality
        ));
    }
    if v.max_attempts == 0 {
        errors.push("variants.max_attempts: must be at least 1".into());
    }
    if v.lease_seconds == 0 {
        errors.push("variants.lease_seconds: must be at least 1".into());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(errors))
    }
}

/// Hides the password in a database URL; other URLs pass through.
pub fn mask_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            // Only fails for URLs that cannot have a password, which this one has.
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

/// The effective configuration as TOML, secrets masked, each key followed by a
/// comment naming where its value came from.
pub fn render_annotated(loaded: &Loaded) -> String {
    let mut out = String::new();
    if let Some(file) = &loaded.file {
        out.push_str(&format!("# config file: {}\n", file.display()));
    } else {
        out.push_str("# config file: none (built-in defaults)\n");
    }
    let Ok(toml::Value::Table(table)) = toml::Value::try_from(&loaded.config) else {
        return out;
    };
    for (section, value) in &table {
        if let toml::Value::Table(keys) = value {
            render_table(&mut out, &loaded.figment, section, keys);
        }
    }
    out
}

/// One `[section]` and, after its plain keys, its sub-tables
/// (`[storage.s3]`), as TOML requires.
fn render_table(out: &mut String, figment: &Figment, section: &str, keys: &toml::Table) {
    out.push_str(&format!("\n[{section}]\n"));
    for (key, value) in keys {
        if value.is_table() {
            continue;
        }
        let path = format!("{section}.{key}");
        let shown = if SECRET_KEYS.contains(&path.as_str()) {
            toml::Value::String(mask_secret(value.as_str().unwrap_or_default()))
        } else {
            value.clone()
        };
        out.push_str(&format!("{key} = {shown}  # {}\n", origin(figment, &path)));
    }
    for (key, value) in keys {
        if let toml::Value::Table(sub) = value {
            render_table(out, figment, &format!("{section}.{key}"), sub);
        }
    }
}

/// A URL keeps everything but its password; any other secret is hidden
/// whole (an empty one stays visibly empty).
fn mask_secret(raw: &str) -> String {
    if raw.contains("://") {
        mask_url(raw)
    } else if raw.is_empty() {
        String::new()
    } else {
        "****".into()
    }
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
