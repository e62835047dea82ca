//! Shared test plumbing: a clean environment per test, fresh databases, and a
//! real `kitteh serve` process on a free loopback port. `client` is how
//! tests talk to that server; `db` is how they look at its rows.

#![allow(dead_code)]

mod client;
mod db;

pub use client::*;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use sea_orm::{ConnectionTrait, Database};
use tempfile::TempDir;

/// Variables that would leak the developer's own setup into a test.
const SCRUBBED: &[&str] = &["PORT", "DATABASE_URL", "RUST_LOG"];

/// A temporary working directory with its own SQLite database and uploads,
/// or its own bucket when storage is S3.
pub struct Sandbox {
    pub dir: TempDir,
    pub database_url: String,
    pub bucket: Option<Bucket>,
}

impl Sandbox {
    /// A fresh folder with a SQLite database file inside it (not yet created).
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = format!("sqlite://{}/kitteh.db", dir.path().display());
        Self {
            dir,
            database_url,
            bucket: None,
        }
    }

    /// SQLite for rows, a fresh bucket on the test Garage for bytes.
    pub fn sqlite_s3() -> Option<Self> {
        let bucket = Bucket::create()?;
        Some(Self {
            bucket: Some(bucket),
            ..Self::sqlite()
        })
    }

    /// PostgreSQL for rows, a fresh bucket for bytes: the replica setup.
    pub fn postgres_s3() -> Option<Self> {
        let bucket = Bucket::create()?;
        let sb = Self::postgres()?;
        Some(Self {
            bucket: Some(bucket),
            ..sb
        })
    }

    /// Names of the stored objects, sorted: the bucket's or the folder's.
    pub fn stored_names(&self) -> Vec<String> {
        match &self.bucket {
            Some(bucket) => bucket.names(),
            None => files_in(&self.uploads()),
        }
    }

    /// A stored object's bytes, wherever storage is.
    pub fn stored(&self, name: &str) -> Option<Vec<u8>> {
        match &self.bucket {
            Some(bucket) => bucket.get(name),
            None => std::fs::read(self.uploads().join(name)).ok(),
        }
    }

    /// A deleted image's objects are gone once any worker still resizing
    /// it has noticed; that takes at most a moment.
    pub fn assert_eventually_empty(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.stored_names().is_empty() {
            assert!(
                Instant::now() < deadline,
                "objects left behind: {:?}",
                self.stored_names()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A fresh folder and a fresh, empty PostgreSQL database. Returns None
    /// outside CI when no server is configured; in CI a missing server fails.
    pub fn postgres() -> Option<Self> {
        let admin = postgres_admin_url()?;
        let name = format!("kitteh_test_{:016x}", rand::random::<u64>());
        block_on(async {
            let db = Database::connect(&admin)
                .await
                .expect("connect to test PostgreSQL");
            db.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
        });
        let mut url = url::Url::parse(&admin).expect("TEST_POSTGRES_URL is a URL");
        url.set_path(&name);
        let dir = tempfile::tempdir().expect("temp dir");
        Some(Self {
            dir,
            database_url: url.to_string(),
            bucket: None,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn uploads(&self) -> PathBuf {
        self.dir.path().join("uploads")
    }

    /// Stored originals in the uploads folder only: variants
    /// (`{token}-{size}.{ext}`) are made in the background and may or may
    /// not exist yet.
    pub fn originals(&self) -> Vec<String> {
        files_in(&self.uploads())
            .into_iter()
            .filter(|f| !f.contains('-'))
            .collect()
    }

    /// `kitteh` with a scrubbed environment, run inside the sandbox, pointed
    /// at the sandbox's database and uploads folder.
    pub fn kitteh(&self) -> Command {
        let mut cmd = bare_kitteh(self.path());
        cmd.env("KITTEH_DATABASE__URL", &self.database_url)
            .env("KITTEH_STORAGE__UPLOADS_DIR", self.uploads());
        // Tests upload from one address far faster than any person; the
        // tests of the rate limits set them back.
        for limit in ["UPLOADS", "REPORTS", "WRONG_DELETE_TOKENS", "WRONG_KEYS"] {
            cmd.env(format!("KITTEH_RATE_LIMITS__{limit}_PER_MINUTE"), "0");
        }
        if let Some(bucket) = &self.bucket {
            bucket.configure(&mut cmd);
        }
        cmd
    }

    /// Runs `kitteh ARGS` against the sandbox.
    pub fn run(&self, args: &[&str]) -> Output {
        self.kitteh().args(args).output().expect("run kitteh")
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }
}

/// A command's stdout, once it is known to have succeeded.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A successful command's stdout, read as JSON.
pub fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("JSON from the command")
}

/// Runs `test` on SQLite, then on PostgreSQL when there is one.
pub fn each_database(test: impl Fn(&Sandbox)) {
    test(&Sandbox::sqlite());
    if let Some(pg) = Sandbox::postgres() {
        test(&pg);
    }
}

/// The file names in a folder, sorted; none when it does not exist. The
/// trash folder and the installation marker are storage's own and left
/// out (tests that look at them do so by name).
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n != ".trash" && n != ".kitteh-installation")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `kitteh` run in `dir` with no KITTEH_ or conventional variables inherited.
pub fn bare_kitteh(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kitteh").expect("kitteh binary is built");
    for (key, _) in std::env::vars() {
        if key.starts_with("KITTEH_") || SCRUBBED.contains(&key.as_str()) {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir);
    cmd
}

/// The PostgreSQL server tests may create databases on. In CI its absence is
/// a failure, never a silent skip.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if in_ci() => {
            panic!("CI is set but TEST_POSTGRES_URL is not: PostgreSQL tests must run in CI")
        }
        _ => {
            eprintln!(
                "TEST_POSTGRES_URL not set: skipping a PostgreSQL test (run scripts/test.sh)"
            );
            None
        }
    }
}

/// Whether this is a CI run, where a missing server or browser fails a test
/// instead of skipping it. Runners spell it `CI=true`, `CI=1` or
/// `CI=yes`; anything but empty, `false` or `0` counts, so no spelling can
/// bring back silent skips.
pub fn in_ci() -> bool {
    ci_value_means_ci(std::env::var("CI").ok().as_deref())
}

fn ci_value_means_ci(value: Option<&str>) -> bool {
    match value.map(str::trim) {
        None | Some("") => false,
        Some(v) => !(v.eq_ignore_ascii_case("false") || v == "0"),
    }
}

#[test]
fn any_ci_value_but_false_or_0_means_ci() {
    for yes in ["true", "1", "yes", "TRUE", "woodpecker"] {
        assert!(ci_value_means_ci(Some(yes)), "{yes}");
    }
    for no in [
        None,
        Some(""),
        Some("false"),
        Some("FALSE"),
        Some("0"),
        Some(" "),
    ] {
        assert!(!ci_value_means_ci(no), "{no:?}");
    }
}

/// Waits (up to 30 s) until `ok` holds, polling.
pub fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// An HTTP client that returns 4xx/5xx as responses rather than errors.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent()
}

/// A running `kitteh serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub base: String,
    /// The server's stderr (its log), kept in a file: a pipe nobody reads
    /// would fill up and block the server.
    pub log: tempfile::NamedTempFile,
}

impl Server {
    /// Starts `kitteh serve` with extra args and waits for `/readyz` to answer 200.
    pub fn start(sandbox: &Sandbox, args: &[&str]) -> Self {
        Self::start_with(sandbox.kitteh(), args)
    }

    /// Starts `kitteh serve` and waits until it answers `/healthz`, ready
    /// or not: for tests of a server whose dependencies are down.
    pub fn start_unready(cmd: Command, args: &[&str]) -> Self {
        Self::spawn(cmd, args, "/healthz")
    }

    pub fn start_with(cmd: Command, args: &[&str]) -> Self {
        Self::spawn(cmd, args, "/readyz")
    }

    /// Starts `kitteh serve --migrate` with `env` set on top of the
    /// sandbox's own environment.
    pub fn with_env(sandbox: &Sandbox, env: &[(&str, &str)]) -> Self {
        let mut cmd = sandbox.kitteh();
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::start_with(cmd, &["--migrate"])
    }

    fn spawn(mut cmd: Command, args: &[&str], probe: &str) -> Self {
        let port = free_port();
        cmd.arg("serve")
            .args(args)
            .env("KITTEH_SERVER__PORT", port.to_string())
            .env("KITTEH_SERVER__ADDRESS", "127.0.0.1")
            .stdout(Stdio::null());
        let log = tempfile::NamedTempFile::new().expect("log file");
        cmd.stderr(log.reopen().expect("reopen log"));
        let child = cmd.spawn().expect("spawn kitteh serve");
        let mut server = Self {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        server.wait_ready(probe);
        server
    }

    fn wait_ready(&mut self, probe: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let agent = http();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "kitteh serve exited early with {status}: {}",
                    self.log_text()
                );
            }
            if let Ok(res) = agent.get(format!("{}{probe}", self.base)).call()
                && res.status() == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("kitteh serve did not become ready within 30 s");
    }

    /// Waits (up to 30 s) until the server's log satisfies `ok`, and
    /// returns the log. Logs are written as things happen, so this waits
    /// on the event itself rather than on a guess of how long it takes.
    pub fn wait_for_log(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log_text();
            if ok(&log) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's resident memory, in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn newest_migration() -> String {
    use migration::MigratorTrait;
    migration::Migrator::migrations()
        .last()
        .map(|m| m.name().to_string())
        .unwrap()
}

/// Every migration's name, oldest first.
pub fn migration_names() -> Vec<String> {
    use migration::MigratorTrait;
    migration::Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect()
}

/// A fresh bucket on the test Garage (started by scripts/test.sh), with the
/// test key allowed on it. In CI a missing Garage fails, never skips.
pub struct Bucket {
    pub config: kitteh::config::S3Config,
}

impl Bucket {
    pub fn create() -> Option<Self> {
        let endpoint = match std::env::var("TEST_S3_ENDPOINT") {
            Ok(e) if !e.is_empty() => e,
            _ if in_ci() => {
                panic!("CI is set but TEST_S3_ENDPOINT is not: S3 tests must run in CI")
            }
            _ => {
                eprintln!("TEST_S3_ENDPOINT not set: skipping an S3 test (run scripts/test.sh)");
                return None;
            }
        };
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"));
        let garage_config = var("TEST_GARAGE_CONFIG");
        let name = format!("kitteh-test-{:016x}", rand::random::<u64>());
        let garage = |args: &[&str]| {
            let out = Command::new("garage")
                .arg("-c")
                .arg(&garage_config)
                .args(args)
                .output()
                .expect("run the garage CLI");
            assert!(
                out.status.success(),
                "garage {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        garage(&["bucket", "create", &name]);
        garage(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            &name,
            "--key",
            "kitteh-test",
        ]);
        Some(Self {
            config: kitteh::config::S3Config {
                endpoint,
                bucket: name,
                region: var("TEST_S3_REGION"),
                access_key_id: var("TEST_S3_KEY_ID"),
                secret_access_key: var("TEST_S3_SECRET"),
                path_style: true,
                ..Default::default()
            },
        })
    }

    /// Points a `kitteh` command at this bucket.
    pub fn configure(&self, cmd: &mut Command) {
        let c = &self.config;
        cmd.env("KITTEH_STORAGE__BACKEND", "s3")
            .env("KITTEH_STORAGE__S3__ENDPOINT", &c.endpoint)
            .env("KITTEH_STORAGE__S3__BUCKET", &c.bucket)
            .env("KITTEH_STORAGE__S3__REGION", &c.region)
            .env("KITTEH_STORAGE__S3__ACCESS_KEY_ID", &c.access_key_id)
            .env(
                "KITTEH_STORAGE__S3__SECRET_ACCESS_KEY",
                &c.secret_access_key,
            );
    }

    /// The bucket through object_store directly, to see what Kitteh's
    /// storage interface does not show (ETags, object attributes).
    pub fn raw(&self) -> object_store::aws::AmazonS3 {
        let c = &self.config;
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&c.endpoint)
            .with_bucket_name(&c.bucket)
            .with_region(&c.region)
            .with_access_key_id(&c.access_key_id)
            .with_secret_access_key(&c.secret_access_key)
            .with_allow_http(true)
            .build()
            .unwrap()
    }

    pub fn store(&self) -> kitteh::storage::Storage {
        kitteh::storage::Storage::new(kitteh::storage::S3Store::open(&self.config).unwrap())
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = block_on(self.store().list())
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        names.sort();
        names
    }

    pub fn get(&self, name: &str) -> Option<Vec<u8>> {
        match block_on(self.store().get(name)) {
            Ok(bytes) => Some(bytes.to_vec()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("reading {name} from the bucket: {e}"),
        }
    }

    pub fn put(&self, name: &str, bytes: &[u8]) {
        block_on(
            self.store()
                .put(name, bytes.to_vec().into(), "application/octet-stream"),
        )
        .unwrap();
    }

    pub fn delete(&self, name: &str) {
        block_on(self.store().delete(name)).unwrap();
    }
}
