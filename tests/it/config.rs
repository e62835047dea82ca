//! Configuration layering: defaults < file < environment < flags, with
//! errors that name the key and where its value came from.

use crate::helpers::Sandbox;

fn effective(sb: &Sandbox, cmd: &mut std::process::Command) -> String {
    let out = cmd.arg("config").output().unwrap();
    assert!(
        out.status.success(),
        "kitteh config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = sb;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn line_of<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let sb = Sandbox::sqlite();
    let text = effective(&sb, &mut crate::helpers::bare_kitteh(sb.path()));
    assert!(text.contains("config file: none"), "{text}");
    assert_eq!(line_of(&text, "port"), "port = 4000  # default");
    assert_eq!(
        line_of(&text, "address"),
        "address = \"127.0.0.1\"  # default"
    );
    assert!(line_of(&text, "url").contains("sqlite://data/kitteh.db"));
}

#[test]
fn the_default_config_file_is_read_when_present() {
    let sb = Sandbox::sqlite();
    std::fs::create_dir(sb.path().join("config")).unwrap();
    sb.write("config/kitteh.toml", "[server]\nport = 4242\n");
    let text = effective(&sb, &mut crate::helpers::bare_kitteh(sb.path()));
    assert_eq!(
        line_of(&text, "port"),
        "port = 4242  # file config/kitteh.toml"
    );
}

#[test]
fn flag_beats_env_beats_file() {
    let sb = Sandbox::sqlite();
    let file = sb.write("k.toml", "[server]\nport = 1111\n");
    let file = file.to_str().unwrap();

    let text = effective(&sb, sb.kitteh().args(["--config", file]));
    assert!(line_of(&text, "port").starts_with("port = 1111  # file "));

    let text = effective(
        &sb,
        sb.kitteh()
            .args(["--config", file])
            .env("KITTEH_SERVER__PORT", "2222"),
    );
    assert_eq!(
        line_of(&text, "port"),
        "port = 2222  # environment variable KITTEH_SERVER__PORT"
    );

    let text = effective(
        &sb,
        sb.kitteh()
            .args(["--config", file, "--port", "3333"])
            .env("KITTEH_SERVER__PORT", "2222"),
    );
    assert_eq!(line_of(&text, "port"), "port = 3333  # flag --port");
}

#[test]
fn conventional_port_and_database_url_are_honoured_below_kitteh_variables() {
    let sb = Sandbox::sqlite();
    let mut cmd = crate::helpers::bare_kitteh(sb.path());
    cmd.env("PORT", "5555")
        .env("DATABASE_URL", "postgres://u:hunter2@db.example/k");
    let text = effective(&sb, &mut cmd);
    assert_eq!(
        line_of(&text, "port"),
        "port = 5555  # environment variable PORT"
    );
    let url = line_of(&text, "url");
    assert!(url.contains("DATABASE_URL"), "{url}");
    assert!(url.contains("db.example"), "{url}");
    assert!(!url.contains("hunter2"), "password must be masked: {url}");

    let mut cmd = crate::helpers::bare_kitteh(sb.path());
    cmd.env("PORT", "5555").env("KITTEH_SERVER__PORT", "6666");
    let text = effective(&sb, &mut cmd);
    assert!(line_of(&text, "port").starts_with("port = 6666"));
}

#[test]
fn an_unknown_key_in_the_file_exits_2_naming_key_and_file() {
    let sb = Sandbox::sqlite();
    let file = sb.write("typo.toml", "[server]\nprot = 4000\n");
    let out = sb
        .kitteh()
        .args(["--config", file.to_str().unwrap(), "config", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.prot"), "{err}");
    assert!(err.contains("typo.toml"), "{err}");
    assert!(!err.contains("RUST_BACKTRACE"), "{err}");
}

#[test]
fn an_unknown_section_is_an_error_too() {
    let sb = Sandbox::sqlite();
    let file = sb.write("typo.toml", "[sever]\nport = 4000\n");
    let out = sb
        .kitteh()
        .args(["--config", file.to_str().unwrap(), "config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sever"));
}

#[test]
fn a_bad_value_names_key_source_and_expected_type() {
    let sb = Sandbox::sqlite();
    let out = sb
        .kitteh()
        .env("KITTEH_SERVER__PORT", "lots")
        .args(["config", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.port"), "{err}");
    assert!(err.contains("KITTEH_SERVER__PORT"), "{err}");
    assert!(err.contains("u16"), "{err}");
}

#[test]
fn invalid_toml_syntax_names_the_file() {
    let sb = Sandbox::sqlite();
    let file = sb.write("broken.toml", "[server\nport = \n");
    let out = sb
        .kitteh()
        .args(["--config", file.to_str().unwrap(), "config", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.toml is not valid TOML"));
}

#[test]
fn a_secret_is_read_from_a_file_variable() {
    let sb = Sandbox::sqlite();
    let secret = sb.write("db-url", "postgres://kitteh:s3cret@pg.internal/kitteh\n");
    let mut cmd = crate::helpers::bare_kitteh(sb.path());
    cmd.env("KITTEH_DATABASE__URL_FILE", &secret);
    let text = effective(&sb, &mut cmd);
    let url = line_of(&text, "url");
    assert!(
        url.contains("pg.internal/kitteh\""),
        "trailing newline must be trimmed: {url}"
    );
    assert!(url.contains("KITTEH_DATABASE__URL_FILE"), "{url}");
    assert!(!url.contains("s3cret"), "{url}");
}

#[test]
fn setting_both_a_value_and_its_file_form_is_an_error() {
    let sb = Sandbox::sqlite();
    let secret = sb.write("db-url", "sqlite://x.db");
    let out = sb
        .kitteh()
        .env("KITTEH_DATABASE__URL_FILE", &secret)
        .args(["config", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("KITTEH_DATABASE__URL") && err.contains("_FILE"),
        "{err}"
    );
}

#[test]
fn a_missing_secret_file_is_an_error() {
    let sb = Sandbox::sqlite();
    let out = sb
        .kitteh()
        .env_remove("KITTEH_DATABASE__URL")
        .env("KITTEH_DATABASE__URL_FILE", sb.path().join("nope"))
        .args(["config", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read secret file"));
}

#[test]
fn a_database_url_of_an_unknown_kind_is_rejected() {
    let sb = Sandbox::sqlite();
    let out = sb
        .kitteh()
        .args(["--database-url", "mysql://x/y", "config", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database.url"));
}

#[test]
fn the_shipped_config_file_documents_every_default_and_changes_nothing() {
    let shipped_path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/kitteh.toml");
    let shipped = std::fs::read_to_string(shipped_path).unwrap();
    let sb = Sandbox::sqlite();
    let without = effective(&sb, &mut crate::helpers::bare_kitteh(sb.path()));
    // As shipped, every key is commented out: every value is the default
    // and says so.
    let as_shipped = effective(
        &sb,
        crate::helpers::bare_kitteh(sb.path()).args(["--config", shipped_path]),
    );
    let keys: Vec<&str> = as_shipped.lines().filter(|l| l.contains(" = ")).collect();
    assert!(keys.len() > 40, "{as_shipped}");
    for line in &keys {
        assert!(
            line.ends_with("  # default"),
            "not from the defaults: {line}"
        );
    }
    // With every `#key = value` line uncommented, the file is valid, sets
    // every key (so none is undocumented), and to its default.
    let uncommented: String = shipped
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest) if !rest.starts_with([' ', '#']) && !rest.is_empty() => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let file = sb.write("uncommented.toml", &uncommented);
    let with_file = effective(
        &sb,
        crate::helpers::bare_kitteh(sb.path()).args(["--config", file.to_str().unwrap()]),
    );
    let strip = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.contains(" = "))
            .map(|l| l.split("  #").next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(strip(&with_file), strip(&without));
    for line in with_file.lines().filter(|l| l.contains(" = ")) {
        assert!(
            line.contains("# file "),
            "key missing from config/kitteh.toml: {line}"
        );
    }
}

#[test]
fn s3_credentials_come_from_files_and_the_secret_is_masked() {
    let sb = Sandbox::sqlite();
    let key_id = sb.write("s3-key-id", "GK0123456789abcdef01234567\n");
    let secret = sb.write("s3-secret", "very-secret-value\n");
    let mut cmd = crate::helpers::bare_kitteh(sb.path());
    cmd.env("KITTEH_STORAGE__BACKEND", "s3")
        .env("KITTEH_STORAGE__S3__BUCKET", "cats")
        .env("KITTEH_STORAGE__S3__ACCESS_KEY_ID_FILE", &key_id)
        .env("KITTEH_STORAGE__S3__SECRET_ACCESS_KEY_FILE", &secret);
    let text = effective(&sb, &mut cmd);
    assert!(text.contains("\n[storage.s3]\n"), "{text}");
    assert!(!text.contains("very-secret-value"), "{text}");
    let masked = line_of(&text, "secret_access_key");
    assert!(
        masked.starts_with("secret_access_key = \"****\""),
        "{masked}"
    );
    assert!(
        masked.contains("KITTEH_STORAGE__S3__SECRET_ACCESS_KEY_FILE"),
        "{masked}"
    );
    assert!(
        line_of(&text, "access_key_id").contains("\"GK0123456789abcdef01234567\""),
        "{text}"
    );
    assert!(line_of(&text, "backend").contains("\"s3\""), "{text}");
}

#[test]
fn the_s3_backend_without_its_settings_is_a_config_error_naming_each() {
    let sb = Sandbox::sqlite();
    let out = sb
        .kitteh()
        .env("KITTEH_STORAGE__BACKEND", "s3")
        .env("KITTEH_STORAGE__S3__ENDPOINT", "garage:3900")
        .args(["config", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "storage.s3.bucket",
        "storage.s3.access_key_id",
        "storage.s3.secret_access_key",
        "storage.s3.endpoint: expected an absolute http(s) URL",
    ] {
        assert!(err.contains(key), "{key} missing from: {err}");
    }
    let out = sb
        .kitteh()
        .env("KITTEH_STORAGE__BACKEND", "ftp")
        .args(["config", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("storage.backend") && err.contains("local"),
        "{err}"
    );
}
