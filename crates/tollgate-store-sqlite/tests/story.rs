//! The shared store story on SQLite, and the ways an SQLite file becomes unusable.

use std::path::Path;
use std::sync::Arc;

use tollgate_core::UsageEvent;
use tollgate_core::time::now_ms;
use tollgate_store::{Store, StoreError, TeamQueries, UsageQueries, testing};
use tollgate_store_sqlite::SqliteStore;

fn url_of(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

#[tokio::test]
async fn the_store_story() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&url_of(&dir.path().join("tollgate.db")))
        .await
        .unwrap();
    assert_eq!(store.backend(), "sqlite");
    testing::run_all(&store).await;
    testing::closing_makes_it_unavailable(&store).await;
}

// Two stores on one file stand in for two processes (a server and the CLI, or two instances):
// they contend for the file lock, not for one in-process writer connection.
#[tokio::test]
async fn concurrent_stores_on_one_file_store_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = url_of(&dir.path().join("shared.db"));
    let mut stores: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(SqliteStore::connect(&url).await.unwrap()));
    }
    testing::concurrent_writers_store_each_event_once(stores.clone()).await;
    for store in stores {
        store.close().await;
    }
}

#[tokio::test]
async fn connect_creates_the_folder_and_file_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/data/tollgate.db");
    let store = SqliteStore::connect(&url_of(&path)).await.unwrap();
    assert!(path.is_file(), "connect did not create {}", path.display());
    store.migrate().await.unwrap();
    store.ensure_team("wal-check").await.unwrap();
    let wal = dir.path().join("nested/data/tollgate.db-wal");
    assert!(
        wal.is_file(),
        "no write-ahead log at {}: not in WAL mode",
        wal.display()
    );
    store.close().await;
}

#[tokio::test]
async fn connect_does_not_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&url_of(&dir.path().join("t.db")))
        .await
        .unwrap();
    match store.revision().await {
        Err(StoreError::Internal(msg)) => assert!(msg.contains("store_revision"), "{msg}"),
        other => panic!("expected an Internal error on an unmigrated store, got {other:?}"),
    }
}

// Tests run as root, whom file permissions do not stop: a read-only connection stands in for a
// file that cannot be written.
#[tokio::test]
async fn a_read_only_database_is_unavailable_for_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tollgate.db");
    let writable = SqliteStore::connect(&url_of(&path)).await.unwrap();
    writable.migrate().await.unwrap();

    let read_only = SqliteStore::connect(&format!("{}?mode=ro", url_of(&path)))
        .await
        .unwrap();
    assert!(
        read_only.team_by_name("default").await.unwrap().is_some(),
        "reads still work"
    );
    match read_only
        .write_usage(&[UsageEvent::new(now_ms(), "GET", "/", 200)])
        .await
    {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("readonly"), "{msg}"),
        other => panic!("write_usage on a read-only file: expected Unavailable, got {other:?}"),
    }
    match read_only.ensure_team("new-team").await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("ensure_team on a read-only file: expected Unavailable, got {other:?}"),
    }
    assert_eq!(
        writable.count_usage().await.unwrap(),
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn a_path_under_a_regular_file_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"not a folder").unwrap();
    match SqliteStore::connect(&url_of(&blocker.join("tollgate.db"))).await {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("blocker"), "{msg}"),
        other => panic!("expected Unavailable, got {:?}", other.map(|_| "a store")),
    }
}

#[tokio::test]
async fn a_bad_url_is_refused() {
    match SqliteStore::connect("sqlite://x.db?mode=sideways").await {
        Err(StoreError::Internal(msg)) => assert!(msg.contains("invalid SQLite URL"), "{msg}"),
        other => panic!(
            "expected an error naming the URL, got {:?}",
            other.map(|_| "a store")
        ),
    }
}

// A batch longer than one INSERT statement, with events stored before spread over every
// statement: only the new events are stored and counted, and the stored copy of a replayed event
// is the first one.
#[tokio::test]
async fn a_long_batch_mixing_replays_counts_only_the_new_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&url_of(&dir.path().join("replays.db")))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    // 2005-01-01, 3000 events a second apart.
    let base = 1_104_537_600_000;
    let events: Vec<UsageEvent> = (0..3000)
        .map(|i| {
            let mut e = UsageEvent::new(base + i * 1000, "GET", "/replays", 200);
            e.tokens.prompt = 1;
            e
        })
        .collect();
    let first: Vec<UsageEvent> = events.iter().step_by(3).cloned().collect();
    assert_eq!(store.write_usage(&first).await.unwrap(), 1000);
    // The replayed copies carry other figures: counting one of them would show in the sums.
    let mut replayed = events.clone();
    for e in replayed.iter_mut().step_by(3) {
        e.tokens.prompt = 1_000;
    }
    assert_eq!(store.write_usage(&replayed).await.unwrap(), 2000);
    assert_eq!(store.write_usage(&replayed).await.unwrap(), 0);
    assert_eq!(store.count_usage().await.unwrap(), 3000);
    let rollups = store.rollups(base, base + 2 * 3_600_000).await.unwrap();
    assert_eq!(rollups.iter().map(|r| r.calls).sum::<i64>(), 3000);
    assert_eq!(rollups.iter().map(|r| r.prompt_tokens).sum::<i64>(), 3000);
    store.close().await;
}

/// Prints the rate: the target is 50k events/s in a release build (`cargo test --release`).
#[tokio::test]
async fn usage_write_rate() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&url_of(&dir.path().join("rate.db")))
        .await
        .unwrap();
    let rate = testing::measure_write_rate(&store, 20, 1_000).await;
    println!("sqlite write_usage: {rate:.0} events/s (batches of 1000)");
    store.close().await;
}

// After `database or disk is full` SQLite may roll the whole transaction back itself. sqlx's own
// transaction then failed its ROLLBACK ("no transaction is active"), kept its depth at one and
// refused every later batch (`begin_with at non-zero transaction depth`) until a restart. A
// trigger raising ROLLBACK makes SQLite end the transaction exactly that way.
#[tokio::test]
async fn a_transaction_sqlite_rolled_back_itself_does_not_wedge_later_usage_writes() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = url_of(&dir.path().join("tollgate.db"));
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE test_disk_full (full_now INTEGER NOT NULL)")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query("INSERT INTO test_disk_full VALUES (1)")
        .execute(&mut other)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER test_disk_full BEFORE INSERT ON usage_events \
         WHEN (SELECT full_now FROM test_disk_full) = 1 \
         BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END",
    )
    .execute(&mut other)
    .await
    .unwrap();

    let event = || UsageEvent::new(now_ms(), "POST", "/v1/chat/completions", 200);
    for _ in 0..3 {
        let refused = store.write_usage(&[event(), event()]).await;
        assert!(refused.is_err(), "the full disk refuses the batch");
    }
    assert_eq!(store.count_usage().await.unwrap(), 0);

    sqlx::query("UPDATE test_disk_full SET full_now = 0")
        .execute(&mut other)
        .await
        .unwrap();
    let later: Vec<UsageEvent> = (0..5).map(|_| event()).collect();
    assert_eq!(
        store.write_usage(&later).await.unwrap(),
        5,
        "the same store writes again without a restart"
    );
    assert_eq!(
        store.write_usage(&later).await.unwrap(),
        0,
        "each event once"
    );
    assert_eq!(store.count_usage().await.unwrap(), 5);
}

/// Control-plane writes (audit rows here: one per failed sign-in) reach the database file: before,
/// only usage commits asked for a checkpoint and the writer's autocheckpoint was never seen to
/// run, so 40,000 failed sign-ins left a 1.3 GB WAL beside a 4 KiB database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_writes_reach_the_database_file() {
    use tollgate_store::AuditQueries;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tollgate.db");
    let store = SqliteStore::connect(&url_of(&file)).await.unwrap();
    store.migrate().await.unwrap();
    for i in 0..3_000 {
        store
            .append_audit(tollgate_store::NewAuditEntry {
                actor: "bench@example.com".into(),
                actor_user_id: None,
                action: "auth.login_failed".into(),
                entity_type: "user".into(),
                entity_id: Some(format!("user{i}@example.com")),
                summary: "wrong password".into(),
                ip: Some("203.0.113.7".into()),
                team_id: None,
            })
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let db_len = std::fs::metadata(&file).unwrap().len();
    assert!(
        db_len > 256 << 10,
        "3,000 audit rows, and the database file holds {db_len} bytes"
    );
    store.close().await;
}

// The shared conflict mapping names the constraint SQLite's messages point at.
#[tokio::test]
async fn unique_violations_name_their_constraint() {
    let dir = tempfile::tempdir().unwrap();
    let url = url_of(&dir.path().join("unique.db"));
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    for (sql, expected) in tollgate_store_sql::UNIQUE_VIOLATIONS {
        let result = sqlx::query(sql).execute(&pool).await;
        match expected {
            None => assert!(result.is_ok(), "`{sql}` failed: {result:?}"),
            Some(key) => {
                let err = result.expect_err(sql);
                assert_eq!(
                    tollgate_store_sql::UniqueKey::violated_by(&err),
                    Some(key),
                    "{err}"
                );
            }
        }
    }
    pool.close().await;
    store.close().await;
}

/// Migration 0014 sums the roll-ups written before it into summary rows.
#[tokio::test]
async fn old_rollups_become_summary_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = url_of(&dir.path().join("old.db"));
    let store = SqliteStore::connect(&url).await.unwrap();
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut before = sqlx::migrate::Migrator::new(migrations.as_path())
        .await
        .unwrap();
    let kept: Vec<_> = before
        .migrations
        .iter()
        .filter(|m| m.version < 14)
        .cloned()
        .collect();
    before.migrations = std::borrow::Cow::Owned(kept);
    before.run(&db).await.unwrap();
    for sql in testing::summaries::OLD_ROLLUPS.iter() {
        sqlx::query(sql).execute(&db).await.unwrap();
    }
    db.close().await;
    store.migrate().await.unwrap();
    testing::summaries::summaries_sum_the_old_rollups(&store).await;
    store.close().await;
}

/// This process's threads whose name starts with `prefix`, with their nice values (a thread
/// that ends while it is read is left out).
#[cfg(target_os = "linux")]
fn nice_of_threads(prefix: &str) -> Vec<(String, i64)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            if !comm.starts_with(prefix) {
                return None;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // Fields after the command's closing parenthesis start at the third; nice is the 19th.
            let after = stat.get(stat.rfind(')')? + 2..)?;
            let nice = after.split(' ').nth(16)?.parse().ok()?;
            Some((comm.trim_end().to_owned(), nice))
        })
        .collect()
}

// The writer's and the checkpointer's threads yield to the gateway (nice 3); the read
// connections, which answer the console, keep the default.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_writer_and_checkpointer_threads_run_at_a_lower_priority() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::connect(&url_of(&dir.path().join("nice.db")))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let events: Vec<UsageEvent> = (0..100)
        .map(|i| UsageEvent::new(now_ms() - i, "GET", "/nice", 200))
        .collect();
    assert_eq!(store.write_usage(&events).await.unwrap(), 100);
    assert_eq!(store.count_usage().await.unwrap(), 100);
    // The checkpointer opens its connection at its first pass, a quarter of a second in, and
    // lowers its thread once the connection is open.
    let mut checkpointer = Vec::new();
    for _ in 0..100 {
        checkpointer = nice_of_threads("tgsql-ckpt-");
        if !checkpointer.is_empty() && checkpointer.iter().all(|(_, nice)| *nice == 3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let writer = nice_of_threads("tgsql-writer-");
    assert!(!writer.is_empty(), "no writer connection thread found");
    assert!(
        !checkpointer.is_empty(),
        "no checkpointer connection thread found"
    );
    for (name, nice) in writer.iter().chain(&checkpointer) {
        assert_eq!(*nice, 3, "thread {name} runs at nice {nice}");
    }
    let readers = nice_of_threads("sqlx-sqlite-wor");
    assert!(!readers.is_empty(), "no read connection thread found");
    for (name, nice) in &readers {
        assert_eq!(*nice, 0, "read thread {name} runs at nice {nice}");
    }
    store.close().await;
}
