//! The shared store story on PostgreSQL. Each test makes its own database and drops it (see
//! `common`).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "the database helpers fail the test loudly, like the tests themselves"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "tests start servers and workers on their own runtime, which ends with the test"
)]

mod common;

use std::sync::Arc;

use common::{ADMIN_URLS, with_database, with_test_database};
use tollgate_store::{Store, StoreError, testing};
use tollgate_store_postgres::PostgresStore;
use uuid::Uuid;

#[tokio::test]
async fn the_store_story() {
    with_test_database(|url| async move {
        let store = PostgresStore::connect(&url).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        testing::run_all(&store).await;
        testing::closing_makes_it_unavailable(&store).await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_instances_store_each_event_once() {
    with_test_database(|url| async move {
        let mut stores: Vec<Arc<dyn Store>> = Vec::new();
        for _ in 0..3 {
            stores.push(Arc::new(PostgresStore::connect(&url).await.unwrap()));
        }
        testing::concurrent_writers_store_each_event_once(stores.clone()).await;
        for store in stores {
            store.close().await;
        }
    })
    .await;
}

#[tokio::test]
async fn connect_does_not_migrate() {
    with_test_database(|url| async move {
        let store = PostgresStore::connect(&url).await.unwrap();
        match store.revision().await {
            Err(StoreError::Internal(msg)) => assert!(msg.contains("store_revision"), "{msg}"),
            other => panic!("expected an Internal error on an unmigrated store, got {other:?}"),
        }
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_closed_port_is_unavailable() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres:s3cret@127.0.0.1:{port}/postgres");
    match PostgresStore::connect(&url).await {
        Err(StoreError::Unavailable(msg)) => {
            let server = format!("127.0.0.1:{port}");
            assert!(
                msg.contains(&server),
                "the message should name the server: {msg}"
            );
            assert!(
                !msg.contains("s3cret"),
                "the message leaks the password: {msg}"
            );
        }
        other => panic!("expected Unavailable, got {:?}", other.map(|_| "a store")),
    }
}

#[tokio::test]
async fn a_missing_database_is_unavailable() {
    let url = std::env::var("TOLLGATE_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| ADMIN_URLS[0].to_owned());
    let missing = with_database(
        &url,
        &format!("tollgate_missing_{}", Uuid::now_v7().simple()),
    );
    match PostgresStore::connect(&missing).await {
        Err(StoreError::Unavailable(msg)) => assert!(msg.contains("tollgate_missing_"), "{msg}"),
        other => panic!("expected Unavailable, got {:?}", other.map(|_| "a store")),
    }
}

#[tokio::test]
async fn a_bad_url_is_refused_without_leaking_the_password() {
    match PostgresStore::connect("postgres://user:s3cret@host:notaport/db").await {
        Err(StoreError::Internal(msg)) => {
            assert!(msg.contains("invalid PostgreSQL URL"), "{msg}");
            assert!(
                !msg.contains("s3cret"),
                "the message leaks the password: {msg}"
            );
        }
        other => panic!("expected Internal, got {:?}", other.map(|_| "a store")),
    }
}

/// Prints the rate of batches of 1000.
#[tokio::test]
async fn usage_write_rate() {
    with_test_database(|url| async move {
        let store = PostgresStore::connect(&url).await.unwrap();
        let rate = testing::measure_write_rate(&store, 20, 1_000).await;
        println!("postgres write_usage: {rate:.0} events/s (batches of 1000)");
        store.close().await;
    })
    .await;
}

#[test]
fn the_database_in_a_url_is_replaced() {
    assert_eq!(
        with_database("postgres://u@h:5432/postgres", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    assert_eq!(
        with_database("postgres://u@h/db?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
}

// The shared conflict mapping names the constraints PostgreSQL reports.
#[tokio::test]
async fn unique_violations_name_their_constraint() {
    with_test_database(|url| async move {
        let store = PostgresStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
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
    })
    .await;
}

/// Migration 0018: the roll-up tables, which the usage writer updates in every batch, keep room
/// on each page for a row's next version (a HOT update, no new index entries).
#[tokio::test]
async fn the_rollup_tables_keep_room_for_updates() {
    with_test_database(|url| async move {
        let store = PostgresStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let options: Vec<(String, Vec<String>)> = sqlx::query_as(
            "SELECT relname::text, COALESCE(reloptions, '{}') FROM pg_class \
             WHERE relname IN ('usage_hourly', 'usage_daily', 'summary_hourly', 'summary_daily') \
             ORDER BY relname",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let want: Vec<(String, Vec<String>)> = [
            "summary_daily",
            "summary_hourly",
            "usage_daily",
            "usage_hourly",
        ]
        .into_iter()
        .map(|t| (t.to_owned(), vec!["fillfactor=70".to_owned()]))
        .collect();
        assert_eq!(options, want);
        pool.close().await;
        store.close().await;
    })
    .await;
}

/// Migration 0014 sums the roll-ups written before it into summary rows.
#[tokio::test]
async fn old_rollups_become_summary_rows() {
    with_test_database(|url| async move {
        let db = sqlx::PgPool::connect(&url).await.unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut before = sqlx::migrate::Migrator::new(dir.as_path()).await.unwrap();
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
        let store = PostgresStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        testing::summaries::summaries_sum_the_old_rollups(&store).await;
        store.close().await;
    })
    .await;
}
