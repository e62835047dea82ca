//! Checks that serde cannot make: values that parse but make no sense.

use super::{Config, ConfigError, StorageBackend, mask_url};

/// Checks what serde cannot: values that parse but make no sense.
pub(super) fn validate(config: &Config) -> Result<(), ConfigError> {
    let mut errors = Vec::new();
    database_and_server(config, &mut errors);
    uploads(config, &mut errors);
    rate_limits(config, &mut errors);
    storage(config, &mut errors);
    variants(config, &mut errors);
    server_edge(config, &mut errors);
    limits(config, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid(errors))
    }
}

/// The database, the public URL and the log filter.
fn database_and_server(config: &Config, errors: &mut Vec<String>) {
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
    if let Err(e) = crate::logging::parse_level(&config.log.level) {
        errors.push(format!(
            "log.level: `{}` is not a valid filter ({e})",
            config.log.level
        ));
    }
}

/// Upload sizes, expiry and counts.
fn uploads(config: &Config, errors: &mut Vec<String>) {
    let u = &config.uploads;
    if u.max_bytes.as_u64() == 0 || u.max_width == 0 || u.max_height == 0 || u.max_pixels == 0 {
        errors.push(
            "uploads: max_bytes, max_width, max_height and max_pixels must be above 0".into(),
        );
    }
    for (key, value) in [
        ("uploads.default_expiry", &u.default_expiry),
        ("uploads.max_expiry", &u.max_expiry),
    ] {
        if let Err(e) = super::parse_duration(value) {
            errors.push(format!("{key}: {e}"));
        }
    }
    if let (Some(default), Some(max)) = (u.default_expiry(), u.max_expiry())
        && default > max
    {
        errors.push(format!(
            "uploads.default_expiry: `{}` is longer than uploads.max_expiry `{}`",
            u.default_expiry, u.max_expiry
        ));
    }
    if u.default_expiry().is_none() && u.max_expiry().is_some() && !u.default_expiry.is_empty() {
        errors.push(
            "uploads.default_expiry: `never` is not allowed when uploads.max_expiry is set".into(),
        );
    }
    if u.max_files_per_request == 0 {
        errors.push("uploads.max_files_per_request: must be at least 1".into());
    }
    if u.expiry_interval_seconds == 0 {
        errors.push("uploads.expiry_interval_seconds: must be at least 1".into());
    }
}

/// Each limited action needs a burst while it has a rate.
fn rate_limits(config: &Config, errors: &mut Vec<String>) {
    let r = &config.rate_limits;
    for (name, per_minute, burst) in [
        ("uploads", r.uploads_per_minute, r.uploads_burst),
        ("reports", r.reports_per_minute, r.reports_burst),
        (
            "wrong_delete_tokens",
            r.wrong_delete_tokens_per_minute,
            r.wrong_delete_tokens_burst,
        ),
        ("wrong_keys", r.wrong_keys_per_minute, r.wrong_keys_burst),
    ] {
        if per_minute > 0 && burst == 0 {
            errors.push(format!(
                "rate_limits.{name}_burst: must be at least 1 while rate_limits.{name}_per_minute is set"
            ));
        }
    }
}

/// The metrics listener, storage and the cache.
fn storage(config: &Config, errors: &mut Vec<String>) {
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
}

/// Sizes, quality and the job queue.
fn variants(config: &Config, errors: &mut Vec<String>) {
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
}

/// Hosts, proxies and the edge's timeouts.
fn server_edge(config: &Config, errors: &mut Vec<String>) {
    for host in &config.server.allowed_hosts {
        if host.trim().is_empty() || host.contains(['/', ' ', ',']) {
            errors.push(format!(
                "server.allowed_hosts: `{host}` is not a host name (write `kitteh.example` or `kitteh.example:4000`)"
            ));
        }
    }
    for cidr in &config.server.trusted_proxies {
        if parse_cidr(cidr).is_none() {
            errors.push(format!(
                "server.trusted_proxies: `{cidr}` is not an address or CIDR such as 10.0.0.0/8"
            ));
        }
    }
    let server = &config.server;
    if !(1..=3600).contains(&server.header_timeout_seconds) {
        errors.push(format!(
            "server.header_timeout_seconds: between 1 and 3600, found {}",
            server.header_timeout_seconds
        ));
    }
    if !(1..=86_400).contains(&server.idle_timeout_seconds) {
        errors.push(format!(
            "server.idle_timeout_seconds: between 1 and 86400, found {}",
            server.idle_timeout_seconds
        ));
    }
}

/// Decode and body budgets.
fn limits(config: &Config, errors: &mut Vec<String>) {
    let l = &config.limits;
    if l.decode_memory.as_u64() < 16 << 20 {
        errors.push(format!(
            "limits.decode_memory: at least 16MiB, found {}",
            l.decode_memory
        ));
    }
    if !(l.decode_seconds.is_finite() && (0.001..=86_400.0).contains(&l.decode_seconds)) {
        errors.push(format!(
            "limits.decode_seconds: between 0.001 and 86400, found {}",
            l.decode_seconds
        ));
    }
    if l.body_idle_seconds == 0 {
        errors.push("limits.body_idle_seconds: at least 1".into());
    }
    if l.max_frames == 0
        || l.max_animation_pixels == 0
        || l.max_icc_bytes.as_u64() == 0
        || l.max_jpeg_scans == 0
    {
        errors.push(
            "limits: max_frames, max_animation_pixels, max_icc_bytes and max_jpeg_scans must be above 0".into(),
        );
    }
    if l.upload_memory < config.uploads.max_bytes {
        errors.push(format!(
            "limits.upload_memory: {} is less than uploads.max_bytes ({}), so the largest upload could never be received",
            l.upload_memory, config.uploads.max_bytes
        ));
    }
}

/// An address (`10.1.2.3`) or a network (`10.0.0.0/8`, `fd00::/8`).
pub fn parse_cidr(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}
