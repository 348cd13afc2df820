//! No usage event is lost: not at shutdown under load, not when the store goes away mid-load.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tollgate_mock_upstream::MockUpstream;

use crate::both_backends;
use crate::harness::{Backend, Server, TestDb, add_key, add_route, client, wait_events};

/// Sends requests from `workers` loops until `until`; returns the request ids of every response.
pub(crate) async fn load(
    server: &Server,
    key: &str,
    workers: usize,
    until: Instant,
    latency_ms: u32,
) -> Vec<String> {
    let ids = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (url, key, ids) = (server.url("/echo/x"), key.to_owned(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let http = client();
            while Instant::now() < until {
                let sent = http
                    .get(&url)
                    .bearer_auth(&key)
                    .header("x-mock-latency-ms", latency_ms.to_string())
                    .send()
                    .await;
                match sent {
                    Ok(resp) => {
                        let id = resp
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        // Reading the body to the end is what makes the call complete.
                        if resp.bytes().await.is_ok()
                            && let Some(id) = id
                        {
                            ids.lock().await.push(id);
                        }
                    }
                    // Refused after shutdown began: never reached the gateway, so no event.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("load task");
    }
    Arc::try_unwrap(ids).expect("ids").into_inner()
}

pub(crate) async fn assert_each_once(store: &dyn tollgate_store::Store, ids: &[String]) {
    let events = wait_events(store, ids.len()).await;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for e in &events {
        *seen
            .entry(e.request_id.as_deref().unwrap_or(""))
            .or_default() += 1;
    }
    for id in ids {
        assert_eq!(
            seen.get(id.as_str()).copied(),
            Some(1),
            "request {id} must be recorded exactly once"
        );
    }
    let rollup_calls: i64 = crate::harness::rollup_calls(store).await;
    assert_eq!(
        usize::try_from(rollup_calls).expect("fits"),
        events.len(),
        "roll-ups count every event once"
    );
}

async fn graceful_shutdown_under_load_loses_nothing(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    add_route(&db, "echo", "/echo", &mock.url(), &[]);
    let (_, key) = add_key(&db, "k", &[]);
    let mut server = Server::start(&db, &[]).await;
    let until = Instant::now() + Duration::from_millis(2500);
    let pid = server.pid();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    });
    let ids = load(&server, &key, 16, until, 150).await;
    killer.await.expect("killer");
    assert!(server.stop().await, "clean exit: {}", server.logs());
    assert!(ids.len() > 50, "load reached the gateway: {}", ids.len());
    assert!(server.logs().contains("dropped=0"), "{}", server.logs());
    let store = db.open().await;
    assert_each_once(store.as_ref(), &ids).await;
    assert_eq!(
        store.count_usage().await.expect("count"),
        i64::try_from(ids.len()).expect("fits")
    );
}
both_backends!(graceful_shutdown_under_load_loses_nothing);

/// Makes the store refuse writes until the returned guard is released.
async fn take_store_away(db: &TestDb) -> Box<dyn std::any::Any + Send> {
    use sqlx::Connection;
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url)
                .await
                .expect("connect");
            sqlx::query("BEGIN EXCLUSIVE")
                .execute(&mut conn)
                .await
                .expect("lock");
            Box::new(conn)
        }
        Backend::Postgres => {
            let name = db.url.rsplit('/').next().expect("db name").to_owned();
            let admin = std::env::var("TOLLGATE_TEST_PG_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("admin connect");
            sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
                .execute(&mut conn)
                .await
                .expect("alter");
            sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
                .bind(&name)
                .execute(&mut conn)
                .await
                .expect("terminate");
            Box::new((conn, name))
        }
    }
}

async fn give_store_back(backend: Backend, guard: Box<dyn std::any::Any + Send>) {
    match backend {
        Backend::Sqlite => {
            let mut conn = guard
                .downcast::<sqlx::SqliteConnection>()
                .expect("sqlite guard");
            sqlx::query("COMMIT")
                .execute(&mut *conn)
                .await
                .expect("unlock");
        }
        Backend::Postgres => {
            let (mut conn, name) = *guard
                .downcast::<(sqlx::PgConnection, String)>()
                .expect("pg guard");
            sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
                .execute(&mut conn)
                .await
                .expect("alter");
        }
    }
}

async fn a_store_outage_spools_then_replays_exactly_once(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    add_route(&db, "echo", "/echo", &mock.url(), &[]);
    let (_, key) = add_key(&db, "k", &[]);
    let server = Server::start(&db, &[]).await;
    // Warm the key cache so calls keep flowing while the store is away.
    let mut ids = load(
        &server,
        &key,
        2,
        Instant::now() + Duration::from_millis(300),
        0,
    )
    .await;
    server.wait_flushed().await;

    let guard = take_store_away(&db).await;
    // Longer than the SQLite busy timeout, so writes really fail rather than wait.
    ids.extend(load(&server, &key, 8, Instant::now() + Duration::from_secs(7), 5).await);
    assert!(
        server.metric("tollgate_usage_events_spooled_total").await > 0.0,
        "the outage sent events to the spool"
    );
    give_store_back(backend, guard).await;

    ids.extend(
        load(
            &server,
            &key,
            2,
            Instant::now() + Duration::from_millis(500),
            0,
        )
        .await,
    );
    server.wait_flushed().await;
    assert_eq!(
        server.metric("tollgate_usage_events_dropped_total").await,
        0.0
    );
    let store = db.open().await;
    assert_each_once(store.as_ref(), &ids).await;
}
both_backends!(a_store_outage_spools_then_replays_exactly_once);
