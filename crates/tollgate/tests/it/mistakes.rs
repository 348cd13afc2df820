//! Mistakes an operator makes that must not do harm: a mistyped store URL, the web console's dev
//! variable in the environment, a second `serve` on one SQLite store, a CLI run without `$USER`.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tollgate_store::AuditFilter;

use crate::harness::{Backend, Server, TestDb, base_env, cli_env, client, command};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every command that reads or changes data, pointed at a store that does not exist.
const STORE_COMMANDS: &[&[&str]] = &[
    &["key", "list"],
    &["key", "create", "--name", "typo"],
    &["route", "list"],
    &["usage", "stats"],
    &["usage", "export", "--format", "csv"],
    &["sync", "status"],
    &["limit", "list"],
    &["alert", "channel", "list"],
    &["demo", "--events", "10", "--days", "1"],
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_sqlite_url_creates_nothing_and_fails() {
    let db = TestDb::new(Backend::Sqlite).await;
    let root = db.dir.path().join("nonexistent");
    let url = format!("sqlite://{}", root.join("dir").join("x.db").display());
    let env = base_env(&db, &[]);
    for args in STORE_COMMANDS {
        let mut full: Vec<&str> = vec!["--database-url", &url];
        full.extend_from_slice(args);
        let out = cli_env(&env, db.dir.path(), &full);
        assert!(!out.status.success(), "tollgate {args:?} must fail");
        let err = text(&out.stderr);
        assert!(
            err.contains("does not exist") && err.contains("x.db") && err.contains("migrate"),
            "tollgate {args:?}: {err}"
        );
        assert!(
            out.stdout.is_empty(),
            "tollgate {args:?} printed {}",
            text(&out.stdout)
        );
        assert!(
            !root.exists(),
            "tollgate {args:?} created {}",
            root.display()
        );
    }
    // The default store in a data folder that does not exist: the same.
    let data_dir = db.dir.path().join("no-such-data");
    let out = command(&[], db.dir.path())
        .args(["--data-dir"])
        .arg(&data_dir)
        .args(["key", "list"])
        .stdin(Stdio::null())
        .output()
        .expect("run tollgate");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
    assert!(!data_dir.exists());

    // `migrate` is how a store is made on purpose; then the same read works.
    let out = cli_env(&env, db.dir.path(), &["--database-url", &url, "migrate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(root.join("dir").join("x.db").is_file());
    let out = cli_env(
        &env,
        db.dir.path(),
        &["--database-url", &url, "key", "list", "--json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(keys, serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_dev_variable_is_not_a_setting() {
    let db = TestDb::new(Backend::Sqlite).await;
    let env = base_env(
        &db,
        &[
            ("TOLLGATE_CONSOLE", "http://127.0.0.1:5173"),
            ("TOLLGATE_CONSOLE__MAX_CONNECTIONS", "77"),
        ],
    );
    let out = cli_env(&env, db.dir.path(), &["config"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // The `[console]` section is still set through its own variables.
    assert_eq!(config["console"]["max_connections"], 77);
    let out = cli_env(&env, db.dir.path(), &["key", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A real unknown setting is still refused, by name.
    let env = base_env(&db, &[("TOLLGATE_CONSOLEE", "x")]);
    let out = cli_env(&env, db.dir.path(), &["config"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("consolee"),
        "{}",
        text(&out.stderr)
    );
}

/// Runs a command that must end by itself within 30 s.
fn run_bounded(mut cmd: Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    let waiter = std::thread::spawn(move || child.wait_with_output().expect("wait"));
    while !waiter.is_finished() {
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("a second `tollgate serve` kept running instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    waiter.join().expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_one_sqlite_store_refuses() {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut first = Server::start(&db, &[]).await;
    let env = base_env(&db, &[]);
    let mut second = command(&env, db.dir.path());
    second.arg("serve");
    let out = tokio::task::spawn_blocking(move || run_bounded(second))
        .await
        .expect("join");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("already uses this SQLite store") && err.contains(&first.pid().to_string()),
        "{err}"
    );
    // The first one goes on serving.
    let health = client()
        .get(first.console_url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);

    // Same database file through another data folder: refused too.
    let other_data = db.dir.path().join("other-data");
    let env = base_env(
        &db,
        &[("TOLLGATE_DATA_DIR", &other_data.display().to_string())],
    );
    let mut third = command(&env, db.dir.path());
    third.arg("serve");
    let out = tokio::task::spawn_blocking(move || run_bounded(third))
        .await
        .expect("join");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already uses this SQLite store"),
        "{}",
        text(&out.stderr)
    );

    // Once the first has stopped, the lock is free again.
    assert!(first.stop().await, "clean stop");
    let again = Server::start(&db, &[]).await;
    let health = client()
        .get(again.console_url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
}

fn user_database_name() -> String {
    let out = Command::new("id").arg("-un").output().expect("id -un");
    assert!(out.status.success());
    text(&out.stdout).trim().to_owned()
}

async fn cli_actor_without_user_is_the_real_user(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = base_env(&db, &[]);
    let out = command(&env, db.dir.path())
        .env_remove("USER")
        .env_remove("USERNAME")
        .args(["route", "add", "--name", "svc", "--prefix", "/svc"])
        .args(["--upstream", "http://127.0.0.1:9"])
        .stdin(Stdio::null())
        .output()
        .expect("run tollgate");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let store = db.open().await;
    let (entries, _) = store
        .list_audit(
            &AuditFilter {
                action: Some("route.create".into()),
                ..AuditFilter::default()
            },
            10,
            0,
        )
        .await
        .expect("audit");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].actor, format!("cli:{}", user_database_name()));
    assert_ne!(entries[0].actor, "cli:unknown");
}
crate::both_backends!(cli_actor_without_user_is_the_real_user);
