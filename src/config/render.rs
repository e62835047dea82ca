//! The effective configuration as TOML for `kitteh config`: secrets
//! masked, every key annotated with where its value came from.

use super::{Loaded, origin};

/// Keys whose values are masked by `kitteh config`.
const SECRET_KEYS: &[&str] = &["database.url", "storage.s3.secret_access_key"];

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
            render_table(&mut out, loaded, section, keys);
        }
    }
    out
}

/// One `[section]` and, after its plain keys, its sub-tables
/// (`[storage.s3]`), as TOML requires.
fn render_table(out: &mut String, loaded: &Loaded, section: &str, keys: &toml::Table) {
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
        out.push_str(&format!("{key} = {shown}  # {}\n", origin(loaded, &path)));
    }
    for (key, value) in keys {
        if let toml::Value::Table(sub) = value {
            render_table(out, loaded, &format!("{section}.{key}"), sub);
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
