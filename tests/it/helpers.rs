//! Shared test plumbing: a clean environment per test, fresh databases, and a
//! real `kitteh serve` process on a free loopback port.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use sea_orm::{ConnectionTrait, Database};
use tempfile::TempDir;

/// Variables that would leak the developer's own setup into a test.
const SCRUBBED: &[&str] = &["PORT", "DATABASE_URL", "RUST_LOG"];

/// A temporary working directory with its own SQLite database and uploads.
pub struct Sandbox {
    pub dir: TempDir,
    pub database_url: String,
}

impl Sandbox {
    /// A fresh folder with a SQLite database file inside it (not yet created).
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = format!("sqlite://{}/kitteh.db", dir.path().display());
        Self { dir, database_url }
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
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn uploads(&self) -> PathBuf {
        self.dir.path().join("uploads")
    }

    /// `kitteh` with a scrubbed environment, run inside the sandbox, pointed
    /// at the sandbox's database and uploads folder.
    pub fn kitteh(&self) -> Command {
        let mut cmd = bare_kitteh(self.path());
        cmd.env("KITTEH_DATABASE__URL", &self.database_url)
            .env("KITTEH_STORAGE__UPLOADS_DIR", self.uploads());
        cmd
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).expect("write file");
        path
    }
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
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but TEST_POSTGRES_URL is not set: PostgreSQL tests must run in CI")
        }
        _ => {
            eprintln!(
                "TEST_POSTGRES_URL not set: skipping a PostgreSQL test (run scripts/test.sh)"
            );
            None
        }
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

    pub fn start_with(mut cmd: Command, args: &[&str]) -> Self {
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
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let agent = http();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "kitteh serve exited early with {status}: {}",
                    self.log_text()
                );
            }
            if let Ok(res) = agent.get(format!("{}/readyz", self.base)).call()
                && res.status() == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("kitteh serve did not become ready within 30 s");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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
