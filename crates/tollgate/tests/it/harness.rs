//! Starting the real binary against a fresh store, and reading what it recorded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_core::UsageEvent;
use tollgate_store::Store;
use tollgate_store_postgres::PostgresStore;
use tollgate_store_sqlite::SqliteStore;

/// Generates one test per backend from an async fn taking a [`Backend`].
#[macro_export]
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::harness::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::harness::Backend::Postgres).await;
            }
        }
    };
}

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store of its own for one test: a SQLite file in a temp dir, or a fresh PostgreSQL database
/// that is dropped afterwards.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_admin: Option<(String, String)>,
}

fn pg_admin_url() -> String {
    std::env::var("TOLLGATE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => {
                // Only `serve` and `migrate` create a store: the tests' CLI calls find it made,
                // as PostgreSQL's database is made below.
                let url = format!("sqlite://{}", dir.path().join("tollgate.db").display());
                let store = SqliteStore::connect(&url).await.expect("create sqlite");
                store.migrate().await.expect("migrate");
                store.close().await;
                Self {
                    backend,
                    url,
                    dir,
                    pg_admin: None,
                }
            }
            Backend::Postgres => {
                use sqlx::Connection;
                let admin = pg_admin_url();
                let name = format!("tollgate_it_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "PostgreSQL is required at {admin} ({e}); start it with \
                         `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
                        )
                    });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                let base = admin
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_owned())
                    .expect("admin url has a database");
                let url = format!("{base}/{name}");
                Self {
                    backend,
                    url,
                    dir,
                    pg_admin: Some((admin, name)),
                }
            }
        }
    }

    /// Opens the store the way the binary does.
    pub async fn open(&self) -> Arc<dyn Store> {
        let store: Arc<dyn Store> = match self.backend {
            Backend::Sqlite => {
                Arc::new(SqliteStore::connect(&self.url).await.expect("open sqlite"))
            }
            Backend::Postgres => Arc::new(
                PostgresStore::connect(&self.url)
                    .await
                    .expect("open postgres"),
            ),
        };
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_admin.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    use sqlx::Connection;
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

/// The master key every test server runs with.
pub const MASTER_KEY: &str = "test-master-key-0123456789abcdef0123456789";

/// A running `tollgate serve`.
pub struct Server {
    child: Option<Child>,
    pub gateway: SocketAddr,
    pub console: SocketAddr,
    pub log: PathBuf,
}

/// Environment for a binary run against `db`, plus `extra`.
pub fn base_env(db: &TestDb, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = vec![
        ("TOLLGATE_DATABASE_URL".to_owned(), db.url.clone()),
        (
            "TOLLGATE_DATA_DIR".to_owned(),
            db.dir.path().join("data").display().to_string(),
        ),
        ("TOLLGATE_MASTER_KEY".to_owned(), MASTER_KEY.to_owned()),
        (
            "TOLLGATE_GATEWAY_LISTEN".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        (
            "TOLLGATE_CONSOLE_LISTEN".to_owned(),
            "127.0.0.1:0".to_owned(),
        ),
        (
            "TOLLGATE_LOG_LEVEL".to_owned(),
            "info,tollgate=debug".to_owned(),
        ),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    env
}

/// A `Command` for the binary with exactly `env` (nothing inherited but PATH and HOME).
pub fn command(env: &[(String, String)], cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    cmd.env_clear().current_dir(cwd);
    for var in ["PATH", "HOME", "USER"] {
        if let Ok(v) = std::env::var(var) {
            cmd.env(var, v);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd
}

/// Runs a CLI command against `db`.
pub fn cli(db: &TestDb, args: &[&str]) -> Output {
    cli_env(&base_env(db, &[]), db.dir.path(), args)
}

/// Runs a CLI command with `env`.
pub fn cli_env(env: &[(String, String)], cwd: &Path, args: &[&str]) -> Output {
    command(env, cwd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tollgate")
}

/// Runs a CLI command that must succeed and returns its stdout parsed as JSON.
pub fn cli_json(db: &TestDb, args: &[&str]) -> serde_json::Value {
    let out = cli(db, args);
    assert!(
        out.status.success(),
        "tollgate {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "tollgate {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

impl Server {
    /// Starts the binary against `db` and waits until both listeners answer.
    pub async fn start(db: &TestDb, extra: &[(&str, &str)]) -> Server {
        Self::start_env(db, &base_env(db, extra)).await
    }

    /// Starts the binary with exactly `env` (e.g. [`base_env`] less a variable).
    pub async fn start_env(db: &TestDb, env: &[(String, String)]) -> Server {
        let ready = db
            .dir
            .path()
            .join(format!("ready-{}.json", uuid::Uuid::new_v4().simple()));
        let log = db
            .dir
            .path()
            .join(format!("server-{}.log", uuid::Uuid::new_v4().simple()));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = command(env, db.dir.path())
            .args(["serve", "--ready-file"])
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .expect("spawn tollgate serve");
        let mut server = Server {
            child: Some(child),
            gateway: SocketAddr::from(([127, 0, 0, 1], 0)),
            console: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let v: serde_json::Value = serde_json::from_str(&text).expect("ready file JSON");
                server.gateway = v["gateway"]
                    .as_str()
                    .expect("gateway")
                    .parse()
                    .expect("addr");
                server.console = v["console"]
                    .as_str()
                    .expect("console")
                    .parse()
                    .expect("addr");
                break;
            }
            if let Some(status) = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("tollgate serve exited with {status}: {}", server.logs());
            }
            assert!(
                Instant::now() < deadline,
                "tollgate serve not ready in 30 s: {}",
                server.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.gateway, path)
    }

    pub fn console_url(&self, path: &str) -> String {
        format!("http://{}{}", self.console, path)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited successfully.
    pub async fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("tollgate did not stop within 60 s: {}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.console_url("/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// A counter's value from `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .map(str::trim)
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("metric {name} not found in\n{text}"))
    }

    /// Waits until the usage writer has flushed everything (queue and spool empty).
    pub async fn wait_flushed(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let depth = self.metric("tollgate_usage_queue_depth").await;
            let spool = self.metric("tollgate_usage_spool_bytes").await;
            if depth == 0.0 && spool == 0.0 {
                // One batch interval for an in-flight batch to commit.
                tokio::time::sleep(Duration::from_millis(300)).await;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "usage not flushed in 30 s (queue {depth}, spool {spool})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Calls counted in every roll-up row.
pub async fn rollup_calls(store: &dyn Store) -> i64 {
    store
        .rollups(0, i64::MAX)
        .await
        .expect("rollups")
        .iter()
        .map(|r| r.calls)
        .sum()
}

/// Waits until the store holds at least `n` events, then returns them all (newest first).
pub async fn wait_events(store: &dyn Store, n: usize) -> Vec<UsageEvent> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = store.recent_usage(1_000_000).await.expect("recent usage");
        if events.len() >= n {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} usage events, found {}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a route with the CLI and returns its JSON.
pub fn add_route(
    db: &TestDb,
    name: &str,
    prefix: &str,
    upstream: &str,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec![
        "route",
        "add",
        "--name",
        name,
        "--prefix",
        prefix,
        "--upstream",
        upstream,
        "--json",
    ];
    args.extend_from_slice(extra);
    cli_json(db, &args)
}

/// Creates a key with the CLI and returns (id, secret).
pub fn add_key(db: &TestDb, name: &str, extra: &[&str]) -> (i64, String) {
    let mut args = vec!["key", "create", "--name", name, "--json"];
    args.extend_from_slice(extra);
    let v = cli_json(db, &args);
    (
        v["id"].as_i64().expect("id"),
        v["key"].as_str().expect("key").to_owned(),
    )
}

/// A reqwest client with no proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}
