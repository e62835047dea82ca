//! Loading: defaults < TOML file < environment < command-line flags, each
//! layer named so that errors and `kitteh config` can say where a value
//! came from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Serialize;

use super::{Config, DEFAULT_CONFIG_PATH, ENV_PREFIX};

/// Suffix that turns any key into "read this value from a file" (Docker secrets).
const FILE_SUFFIX: &str = "_FILE";

/// One value given on the command line: the key it sets and the flag that
/// set it, so that `kitteh config` can name the flag. The command line owns
/// the flag names; this module only carries them.
#[derive(Debug, Clone)]
pub struct Override {
    /// Dotted key, `server.port`.
    pub key: &'static str,
    /// The flag as typed, `--port`.
    pub flag: &'static str,
    pub value: Value,
}

/// Values given on the command line; each overrides every other source.
#[derive(Debug, Clone, Default)]
pub struct Overrides(pub Vec<Override>);

impl Overrides {
    /// Records `value` for `key` when the flag was given.
    pub fn set(&mut self, key: &'static str, flag: &'static str, value: Option<impl Into<Value>>) {
        if let Some(value) = value {
            self.0.push(Override {
                key,
                flag,
                value: value.into(),
            });
        }
    }

    fn flag_for(&self, key: &str) -> Option<&'static str> {
        self.0.iter().find(|o| o.key == key).map(|o| o.flag)
    }
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
    pub overrides: Overrides,
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
    super::validate::validate(&config)?;
    Ok(Loaded {
        config,
        figment,
        file,
        overrides: overrides.clone(),
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
    for o in &overrides.0 {
        let path: Vec<String> = o.key.split('.').map(str::to_string).collect();
        insert_path(&mut dict, &path, o.value.clone());
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
pub fn origin(loaded: &Loaded, key: &str) -> String {
    let Some(meta) = loaded.figment.find_metadata(key) else {
        return "default".into();
    };
    let keys: Vec<&str> = key.split('.').collect();
    if let Some(path) = meta.source.as_ref().and_then(|s| s.file_path()) {
        return format!("file {}", path.display());
    }
    match meta.name.as_ref() {
        "default" => "default".into(),
        "command-line flag" => format!(
            "flag {}",
            loaded.overrides.flag_for(key).unwrap_or("(unknown)")
        ),
        _ => format!(
            "{} {}",
            meta.name,
            meta.interpolate(&Profile::Default, &keys)
        ),
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
