//! Operations: backup → restore round trips on both backends (taken while `serve` runs), the
//! SQLite → PostgreSQL store copy, master-key rotation, TLS on both listeners, and every bad input
//! of those commands with its message. Every check compares real stores: table counts, usage
//! totals, `usage stats`, and a key and a route credential that still work through the gateway.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use tollgate_mock_upstream::MockUpstream;

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{
    Backend, MASTER_KEY, Server, TestDb, add_key, base_env, cli, cli_env, cli_json, client,
};

const UPSTREAM_SECRET: &str = "sk-upstream-backup-123";
const NEW_MASTER_KEY: &str = "rotated-master-key-abcdef0123456789abcdef0123";

/// A store with a credentialed LLM route to `mock`, a key for it, and demo usage. Returns the key.
fn fill(db: &TestDb, mock: &MockUpstream) -> String {
    let env = base_env(db, &[("UPSTREAM_SECRET", UPSTREAM_SECRET)]);
    let out = cli_env(
        &env,
        db.dir.path(),
        &[
            "route",
            "add",
            "--name",
            "ai",
            "--prefix",
            "/ai",
            "--upstream",
            &mock.url(),
            "--kind",
            "openai",
            "--strip-prefix",
            "--upstream-key-env",
            "UPSTREAM_SECRET",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, key) = add_key(db, "kept", &[]);
    let out = cli(db, &["demo", "--events", "3000", "--days", "3"]);
    assert!(out.status.success(), "demo: {}", stderr(&out));
    key
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_of(out: &std::process::Output, what: &str) -> Value {
    assert!(out.status.success(), "{what} failed: {}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Runs the binary with `env` and requires a failure whose message holds `needle`.
fn fails_with(env: &[(String, String)], cwd: &Path, args: &[&str], needle: &str) {
    let out = cli_env(env, cwd, args);
    let text = stderr(&out);
    assert!(!out.status.success(), "tollgate {args:?} should fail");
    assert!(
        text.contains(needle),
        "tollgate {args:?}: expected `{needle}` in: {text}"
    );
    assert!(
        !text.contains("panicked"),
        "tollgate {args:?} panicked: {text}"
    );
}

/// The environment of a second store for `db`'s test: a new SQLite data folder, or `pg_url`.
fn env_for(
    db: &TestDb,
    url: &str,
    data_dir: &Path,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let data = data_dir.display().to_string();
    let mut all: Vec<(&str, &str)> = vec![
        ("TOLLGATE_DATABASE_URL", url),
        ("TOLLGATE_DATA_DIR", data.as_str()),
    ];
    all.extend_from_slice(extra);
    base_env(db, &all)
}

/// `usage stats` over everything the demo wrote (its summary: the window moves with the clock).
fn stats(env: &[(String, String)], cwd: &Path) -> Value {
    json_of(
        &cli_env(env, cwd, &["usage", "stats", "--since", "30d", "--json"]),
        "usage stats",
    )["summary"]
        .clone()
}

/// Equal JSON, except that numbers may differ in the last bits: the databases add floating-point
/// costs in different orders.
fn assert_same(a: &Value, b: &Value, what: &str) {
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
                (Some(x), Some(y)) => x == y,
                _ => {
                    let (x, y) = (
                        x.as_f64().unwrap_or(f64::NAN),
                        y.as_f64().unwrap_or(f64::NAN),
                    );
                    (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
                }
            },
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
            }
            _ => a == b,
        }
    }
    assert!(same(a, b), "{what} differ:\n{a}\n{b}");
}

/// A gateway call with `key` reaches the mock, which sees the route's credential.
async fn key_and_credential_work(server: &Server, key: &str) {
    let resp = client()
        .get(server.url("/ai/v1/models"))
        .bearer_auth(key)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "the key is accepted after the move");
    let echo: Value = resp.json().await.expect("json");
    assert_eq!(
        echo["headers"]["authorization"],
        format!("Bearer {UPSTREAM_SECRET}"),
        "the sealed credential still opens and is injected"
    );
}

/// Backup taken while `serve` runs, restored into an empty store: every table count and usage
/// total equal, the same `usage stats`, the key and the credential work on the restored store.
async fn backup_then_restore_keeps_everything(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    let key = fill(&db, &mock);
    let server = Server::start(&db, &[]).await;
    key_and_credential_work(&server, &key).await;
    server.wait_flushed().await;
    let file = db.dir.path().join("tollgate.backup");
    let file_arg = file.display().to_string();
    // Online: the server keeps its lock (SQLite) and keeps serving.
    let backup = cli_json(&db, &["backup", "--out", &file_arg, "--json"]);
    let out = cli(&db, &["backup", "--out", &file_arg]);
    assert!(
        !out.status.success() && stderr(&out).contains("exists"),
        "{}",
        stderr(&out)
    );
    assert_eq!(backup["master_key_included"], false);
    assert!(
        stderr(&cli(&db, &["backup", "--out", &format!("{file_arg}.2")]))
            .contains("master key is NOT in this backup"),
        "the missing master key is said loudly"
    );
    let mut server = server;
    assert!(server.stop().await);
    assert!(backup["usage"]["events"].as_i64().expect("events") >= 3000);
    assert!(backup["tables"]["api_keys"].as_i64().expect("keys") >= 13);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)
            .expect("backup")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the backup is private");
    }

    let target = TestDb::new(backend).await;
    let (url, data) = match backend {
        Backend::Sqlite => {
            let data = target.dir.path().join("restored");
            (
                format!("sqlite://{}", data.join("tollgate.db").display()),
                data,
            )
        }
        Backend::Postgres => (target.url.clone(), target.dir.path().join("data")),
    };
    let env = env_for(&target, &url, &data, &[]);
    let restored = json_of(
        &cli_env(&env, target.dir.path(), &["restore", &file_arg, "--json"]),
        "restore",
    );
    assert_eq!(restored["tables"], backup["tables"], "every table's rows");
    assert_eq!(restored["usage"], backup["usage"], "the usage totals");
    assert_eq!(
        stats(&env, target.dir.path()),
        stats(&base_env(&db, &[]), db.dir.path()),
        "the same usage statistics"
    );
    // A second restore finds the store there and changes nothing.
    fails_with(
        &env,
        target.dir.path(),
        &["restore", &file_arg],
        "is not empty",
    );
    let extra: Vec<(&str, &str)> = vec![
        ("TOLLGATE_DATABASE_URL", url.as_str()),
        ("TOLLGATE_DATA_DIR", data.to_str().expect("utf-8")),
    ];
    let server = Server::start(&target, &extra).await;
    key_and_credential_work(&server, &key).await;
}

both_backends!(backup_then_restore_keeps_everything);

/// Every bad input of backup and restore is refused with its reason, and leaves no store behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_what_it_cannot_trust() {
    let db = TestDb::new(Backend::Sqlite).await;
    let out = cli(&db, &["demo", "--events", "500", "--days", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let good = db.dir.path().join("good.backup");
    let good_arg = good.display().to_string();
    cli_json(&db, &["backup", "--out", &good_arg, "--json"]);
    let scratch = tempfile::tempdir().expect("dir");
    let fresh = scratch.path().join("fresh");
    let url = format!("sqlite://{}", fresh.join("tollgate.db").display());
    let env = env_for(&db, &url, &fresh, &[]);
    let cwd = scratch.path();

    // Damaged: cut in half, then pages overwritten.
    let bytes = std::fs::read(&good).expect("read");
    let cut = scratch.path().join("cut.backup");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let cut_arg = cut.display().to_string();
    let out = cli_env(&env, cwd, &["restore", &cut_arg]);
    let text = stderr(&out);
    assert!(!out.status.success(), "a truncated backup is refused");
    assert!(
        text.contains("integrity") || text.contains("malformed") || text.contains("cannot be read"),
        "{text}"
    );
    assert!(!fresh.join("tollgate.db").exists(), "nothing restored");
    let mut scrambled = bytes.clone();
    for (i, b) in scrambled.iter_mut().enumerate().skip(4096) {
        if i % 7 == 0 {
            *b = b.wrapping_add(91);
        }
    }
    let bad = scratch.path().join("scrambled.backup");
    std::fs::write(&bad, &scrambled).expect("write");
    let out = cli_env(&env, cwd, &["restore", &bad.display().to_string()]);
    assert!(
        !out.status.success(),
        "a damaged backup is refused: {}",
        stderr(&out)
    );
    assert!(!fresh.join("tollgate.db").exists(), "nothing restored");
    let junk = scratch.path().join("notes.txt");
    std::fs::write(&junk, "hello, not a database").expect("write");
    fails_with(
        &env,
        cwd,
        &["restore", &junk.display().to_string()],
        "is not a tollgate backup",
    );
    fails_with(
        &env,
        cwd,
        &["restore", "/nonexistent/x.backup"],
        "does not exist",
    );
    // A data folder that holds anything is refused, and keeps what it holds.
    std::fs::create_dir_all(&fresh).expect("dir");
    std::fs::write(fresh.join("keep.txt"), "mine").expect("write");
    fails_with(
        &env,
        cwd,
        &["restore", &good_arg],
        "is not empty (it holds keep.txt)",
    );
    assert!(!fresh.join("tollgate.db").exists());
    // A SQLite backup into a PostgreSQL store is pointed at store copy.
    let pg = TestDb::new(Backend::Postgres).await;
    let pg_env = env_for(&pg, &pg.url, &pg.dir.path().join("data"), &[]);
    fails_with(&pg_env, cwd, &["restore", &good_arg], "tollgate store copy");
    // PostgreSQL without pg_dump on PATH: the command says what to run instead.
    let no_tools = env_for(
        &pg,
        &pg.url,
        &pg.dir.path().join("data"),
        &[("PATH", "/nonexistent")],
    );
    let pg_file = pg.dir.path().join("pg.backup").display().to_string();
    fails_with(
        &no_tools,
        cwd,
        &["backup", "--out", &pg_file],
        "pg_dump is not on PATH",
    );
    fails_with(
        &no_tools,
        cwd,
        &["backup", "--out", &pg_file],
        "pg_dump --format=custom --no-owner --no-privileges",
    );
    // Restored under another master key: restored, and said loudly.
    let other = scratch.path().join("other-key");
    let other_url = format!("sqlite://{}", other.join("tollgate.db").display());
    let other_env = env_for(
        &db,
        &other_url,
        &other,
        &[(
            "TOLLGATE_MASTER_KEY",
            "some-other-master-key-0123456789abcdef0123",
        )],
    );
    let out = cli_env(&other_env, cwd, &["restore", &good_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("do not open with the configured master key"),
        "{}",
        stderr(&out)
    );
    // Backup flags: an existing file, a missing folder.
    fails_with(
        &base_env(&db, &[]),
        db.dir.path(),
        &["backup", "--out", &good_arg],
        "exists",
    );
    fails_with(
        &base_env(&db, &[]),
        db.dir.path(),
        &["backup", "--out", "/nonexistent/dir/x.backup"],
        "does not exist",
    );
}

/// SQLite → PostgreSQL: every table's rows, the usage totals and statistics equal; keys, the
/// route credential and new rows (ids after the copied ones) work on the new store; bad targets
/// are refused with their reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_moves_an_instance_to_postgres() {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    let key = fill(&db, &mock);
    // Deleted rows leave gaps the new sequences must step over.
    let (gone, _) = add_key(&db, "gone", &[]);
    // Text that COPY's format must escape arrives as it was.
    let odd = "tab\there\nline \\N back\\slash \r 中文 é";
    let (odd_id, _) = add_key(&db, "odd", &["--description", odd]);
    let server = Server::start(&db, &[]).await;
    key_and_credential_work(&server, &key).await;
    server.wait_flushed().await;
    let pg = TestDb::new(Backend::Postgres).await;
    let env = base_env(&db, &[]);
    let cwd = db.dir.path();
    fails_with(
        &env,
        cwd,
        &["store", "copy", "--to", &pg.url],
        "stop `tollgate serve`",
    );
    let mut server = server;
    assert!(server.stop().await);
    fails_with(
        &env,
        cwd,
        &["store", "copy", "--to", "mysql://u@h/db"],
        "must be a PostgreSQL URL",
    );
    fails_with(
        &env,
        cwd,
        &[
            "store",
            "copy",
            "--to",
            "postgres://postgres@127.0.0.1:1/nowhere",
        ],
        "is unreachable",
    );

    let copied = json_of(
        &cli_env(&env, cwd, &["store", "copy", "--to", &pg.url, "--json"]),
        "store copy",
    );
    for table in copied["tables"].as_array().expect("tables") {
        assert_eq!(table["source"], table["target"], "{table}");
    }
    let events = copied["target"]["usage"]["events"]
        .as_i64()
        .expect("events");
    assert!(events >= 3000, "{events}");
    assert_same(
        &copied["source"]["usage"],
        &copied["target"]["usage"],
        "usage totals",
    );
    let tables: Vec<&str> = copied["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(|t| t["table"].as_str())
        .collect();
    for table in copied["source"]["tables"]
        .as_object()
        .expect("tables")
        .keys()
    {
        assert!(
            tables.contains(&table.as_str())
                || ["store_revision", "edge_feed", "leases"].contains(&table.as_str()),
            "table {table} is copied"
        );
    }
    let pg_env = env_for(&pg, &pg.url, &pg.dir.path().join("data"), &[]);
    assert_same(
        &stats(&pg_env, pg.dir.path()),
        &stats(&env, cwd),
        "usage statistics on SQLite and PostgreSQL",
    );
    let described = |listed: Value| {
        listed
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["id"] == odd_id)
            .map(|k| k["description"].clone())
            .expect("the odd key")
    };
    assert_eq!(described(cli_json(&pg, &["key", "list", "--json"])), odd);
    assert_eq!(described(cli_json(&db, &["key", "list", "--json"])), odd);
    // Again into the same (now full) database: refused, nothing changed.
    fails_with(
        &env,
        cwd,
        &["store", "copy", "--to", &pg.url],
        "is not empty",
    );

    let server = Server::start(&pg, &[]).await;
    key_and_credential_work(&server, &key).await;
    server.wait_flushed().await;
    // New rows take ids after the ones SQLite gave, even the deleted key's.
    let (id, _) = add_key(&pg, "after-move", &[]);
    assert!(id > gone, "new key id {id} after {gone}");
    let events_after = stats(&pg_env, pg.dir.path());
    let before = stats(&env, cwd);
    assert!(
        events_after["calls"].as_i64() > before["calls"].as_i64(),
        "the new store records calls: {events_after} vs {before}"
    );
}

/// Writes a route's sealed credential straight into the store.
async fn set_sealed_credential(db: &TestDb, id: i64, sealed: &[u8]) {
    let sql = "UPDATE routes SET sealed_credential = $1 WHERE id = $2";
    match db.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&db.url).await.expect("sqlite");
            sqlx::query(sql)
                .bind(sealed)
                .bind(id)
                .execute(&pool)
                .await
                .expect("update");
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&db.url).await.expect("pg");
            sqlx::query(sql)
                .bind(sealed)
                .bind(id)
                .execute(&pool)
                .await
                .expect("update");
            pool.close().await;
        }
    }
}

/// The secret a key reveal gives, through the console API.
async fn reveal(server: &Server, id: i64) -> (u16, Value) {
    let admin = Api::login(server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, body) = admin
        .call(Method::POST, &format!("/api/v1/keys/{id}/reveal"), None)
        .await;
    (status.as_u16(), body)
}

/// Rotation re-seals everything in one go: with the new key every reveal and credential works;
/// the old key no longer opens them; bad inputs change nothing.
async fn master_key_rotation_keeps_secrets_working(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    let key = fill(&db, &mock);
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let created = admin
        .ok(
            Method::POST,
            "/api/v1/keys",
            Some(serde_json::json!({"name": "reveal-me"})),
            201,
        )
        .await;
    let id = created["id"].as_i64().expect("id");
    let secret = created["key"].as_str().expect("key").to_owned();
    assert_eq!(reveal(&server, id).await.1["key"], secret.as_str());
    let env = base_env(&db, &[]);
    let cwd = db.dir.path();
    if backend == Backend::Sqlite {
        fails_with(
            &env,
            cwd,
            &["master-key", "rotate"],
            "stop `tollgate serve`",
        );
    }
    let mut server = server;
    assert!(server.stop().await);

    // A value sealed with some other key stops the rotation before anything changes.
    let broken = crate::harness::add_route(&db, "broken", "/broken", &mock.url(), &[]);
    let broken_id = broken["id"].as_i64().expect("route id");
    set_sealed_credential(&db, broken_id, &[2_u8; 80]).await;
    let key_file = db.dir.path().join("never-used.key");
    std::fs::write(&key_file, NEW_MASTER_KEY).expect("write");
    fails_with(
        &env,
        cwd,
        &[
            "master-key",
            "rotate",
            "--new-key-file",
            &key_file.display().to_string(),
        ],
        &format!("route {broken_id}'s credential"),
    );
    assert!(cli(&db, &["route", "remove", "broken"]).status.success());
    let server = Server::start(&db, &console_env()).await;
    assert_eq!(
        reveal(&server, id).await.1["key"],
        secret.as_str(),
        "the refused rotation changed nothing"
    );
    let mut server = server;
    assert!(server.stop().await);

    // Bad inputs first: none of them changes a byte.
    let short = base_env(&db, &[("SHORT_KEY", "too-short")]);
    fails_with(
        &short,
        cwd,
        &["master-key", "rotate", "--new-key-env", "SHORT_KEY"],
        "--new-key-env: the master key must be at least 32",
    );
    fails_with(
        &env,
        cwd,
        &["master-key", "rotate", "--new-key-env", "UNSET_VAR_X"],
        "--new-key-env UNSET_VAR_X",
    );
    let same = base_env(&db, &[("SAME_KEY", MASTER_KEY)]);
    fails_with(
        &same,
        cwd,
        &["master-key", "rotate", "--new-key-env", "SAME_KEY"],
        "is the one in force",
    );
    let mut none = base_env(&db, &[]);
    none.retain(|(k, _)| k != "TOLLGATE_MASTER_KEY");
    fails_with(
        &none,
        cwd,
        &["master-key", "rotate"],
        "no master key is configured",
    );

    let key_file = db.dir.path().join("new-master.key");
    std::fs::write(&key_file, format!("{NEW_MASTER_KEY}\n")).expect("write");
    let rotated = json_of(
        &cli_env(
            &env,
            cwd,
            &[
                "master-key",
                "rotate",
                "--new-key-file",
                &key_file.display().to_string(),
                "--json",
            ],
        ),
        "master-key rotate",
    );
    assert!(rotated["keys"].as_i64().expect("keys") >= 13, "{rotated}");
    assert_eq!(rotated["routes"], 1, "{rotated}");
    assert!(
        rotated.get("master_key").is_none(),
        "a given key is never printed"
    );

    // The old key opens nothing any more.
    let old = Server::start(&db, &console_env()).await;
    let (status, _) = reveal(&old, id).await;
    assert_ne!(status, 200, "the old key no longer reveals");
    let mut old = old;
    assert!(old.stop().await);
    let mut with_new = console_env();
    with_new.push(("TOLLGATE_MASTER_KEY", NEW_MASTER_KEY));
    let server = Server::start(&db, &with_new).await;
    let (status, body) = reveal(&server, id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["key"], secret.as_str(), "the same key is revealed");
    key_and_credential_work(&server, &key).await;
    let mut server = server;
    assert!(server.stop().await);

    // A generated key goes alone to standard output, or to a new private file.
    let env_new = base_env(&db, &[("TOLLGATE_MASTER_KEY", NEW_MASTER_KEY)]);
    let out = cli_env(&env_new, cwd, &["master-key", "rotate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(printed.len(), 64, "64 hex characters alone: {printed}");
    assert!(printed.bytes().all(|b| b.is_ascii_hexdigit()));
    let env_third = base_env(&db, &[("TOLLGATE_MASTER_KEY", printed.as_str())]);
    let out_file = db.dir.path().join("fourth.key");
    let out = cli_env(
        &env_third,
        cwd,
        &[
            "master-key",
            "rotate",
            "--out",
            &out_file.display().to_string(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "the key went to the file only");
    let fourth = std::fs::read_to_string(&out_file)
        .expect("key file")
        .trim()
        .to_owned();
    let mut with_fourth = console_env();
    with_fourth.push(("TOLLGATE_MASTER_KEY", fourth.as_str()));
    let server = Server::start(&db, &with_fourth).await;
    assert_eq!(reveal(&server, id).await.1["key"], secret.as_str());
    key_and_credential_work(&server, &key).await;
}

both_backends!(master_key_rotation_keeps_secrets_working);

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf, reqwest::Certificate) {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("certificate");
    let cert_pem = made.cert.pem();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, &cert_pem).expect("write cert");
    std::fs::write(&key, made.key_pair.serialize_pem()).expect("write key");
    let trusted = reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("pem");
    (cert, key, trusted)
}

/// HTTPS on both listeners with the configured certificate; plain HTTP is not served there; a
/// silent TLS client is closed after the header timeout; bad files stop the start with the
/// setting's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_serve_tls_with_the_configured_certificate() {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    let key = fill(&db, &mock);
    let (cert, cert_key, trusted) = self_signed(db.dir.path());
    let (cert_s, key_s) = (cert.display().to_string(), cert_key.display().to_string());
    let mut tls_env: Vec<(&str, &str)> = console_env();
    tls_env.extend_from_slice(&[
        ("TOLLGATE_GATEWAY__TLS__CERT", cert_s.as_str()),
        ("TOLLGATE_GATEWAY__TLS__KEY", key_s.as_str()),
        ("TOLLGATE_CONSOLE__TLS__CERT", cert_s.as_str()),
        ("TOLLGATE_CONSOLE__TLS__KEY", key_s.as_str()),
        ("TOLLGATE_GATEWAY__HEADER_READ_TIMEOUT_SECS", "1"),
    ]);
    let server = Server::start(&db, &tls_env).await;
    let https = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(trusted)
        .build()
        .expect("client");
    let resp = https
        .get(format!("https://{}/ai/v1/models", server.gateway))
        .bearer_auth(&key)
        .send()
        .await
        .expect("https call to the gateway");
    assert_eq!(resp.status(), 200);
    let echo: Value = resp.json().await.expect("json");
    assert_eq!(
        echo["headers"]["authorization"],
        format!("Bearer {UPSTREAM_SECRET}")
    );
    assert_eq!(
        echo["headers"]["x-forwarded-proto"], "https",
        "the listener's scheme"
    );
    let health = https
        .get(format!("https://{}/health", server.console))
        .send()
        .await
        .expect("https call to the console");
    assert_eq!(health.status(), 200);
    // Over TLS the session cookie is Secure.
    let login = https
        .post(format!("https://{}/api/v1/auth/login", server.console))
        .json(&serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200);
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("tollgate_session="))
        .expect("session cookie")
        .to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");
    // Plain HTTP on a TLS listener gets no HTTP answer.
    assert!(
        client()
            .get(server.url("/ai/v1/models"))
            .bearer_auth(&key)
            .send()
            .await
            .is_err(),
        "plain HTTP is not served on a TLS listener"
    );
    // A client that starts a handshake and stalls is closed within the header timeout.
    let started = Instant::now();
    let mut stalled = tokio::net::TcpStream::connect(server.gateway)
        .await
        .expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut stalled, &[0x16])
        .await
        .expect("one byte");
    let mut buf = [0_u8; 16];
    let read = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read(&mut stalled, &mut buf),
    )
    .await
    .expect("closed before 10 s");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "closed, no answer: {read:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(server);

    // Bad files stop the start, naming the setting.
    let cwd = db.dir.path();
    let missing = base_env(
        &db,
        &[
            ("TOLLGATE_GATEWAY__TLS__CERT", "/nonexistent/cert.pem"),
            ("TOLLGATE_GATEWAY__TLS__KEY", key_s.as_str()),
        ],
    );
    fails_with(
        &missing,
        cwd,
        &["serve"],
        "gateway.tls.cert /nonexistent/cert.pem: cannot be read",
    );
    let not_pem = db.dir.path().join("not.pem");
    std::fs::write(&not_pem, "just text").expect("write");
    let not_pem = not_pem.display().to_string();
    let env = base_env(
        &db,
        &[
            ("TOLLGATE_CONSOLE__TLS__CERT", cert_s.as_str()),
            ("TOLLGATE_CONSOLE__TLS__KEY", not_pem.as_str()),
        ],
    );
    fails_with(&env, cwd, &["serve"], "console.tls.key");
    let env = base_env(
        &db,
        &[
            ("TOLLGATE_CONSOLE__TLS__CERT", not_pem.as_str()),
            ("TOLLGATE_CONSOLE__TLS__KEY", key_s.as_str()),
        ],
    );
    fails_with(&env, cwd, &["serve"], "console.tls.cert");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let other_key = db.dir.path().join("other-key.pem");
    std::fs::write(&other_key, other.key_pair.serialize_pem()).expect("write");
    let other_key = other_key.display().to_string();
    let env = base_env(
        &db,
        &[
            ("TOLLGATE_GATEWAY__TLS__CERT", cert_s.as_str()),
            ("TOLLGATE_GATEWAY__TLS__KEY", other_key.as_str()),
        ],
    );
    fails_with(&env, cwd, &["serve"], "does not fit the certificate");
    let env = base_env(&db, &[("TOLLGATE_GATEWAY__TLS__CERT", cert_s.as_str())]);
    fails_with(&env, cwd, &["serve"], "key");
}
