//! `usage.durability`: what a kill -9 under load may lose. In `spool` mode, nothing a client saw
//! complete; in `memory` mode, at most the stated window (queue capacity plus the batch being
//! written), counted by `usage_events_in_memory`.

use std::time::{Duration, Instant};

use tollgate_mock_upstream::MockUpstream;

use crate::both_backends;
use crate::harness::{Backend, Server, TestDb, add_key, add_route};
use crate::resilience::{assert_each_once, load};

/// Runs load from 16 clients and sends SIGKILL to the server halfway; answers the request ids
/// of every response the clients read to the end (the acknowledged calls).
async fn load_and_kill(server: &Server, key: &str) -> Vec<String> {
    let pid = server.pid();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let ids = load(
        server,
        key,
        16,
        Instant::now() + Duration::from_millis(2500),
        5,
    )
    .await;
    killer.await.expect("killer");
    ids
}

async fn kill_9_under_load_in_spool_mode_loses_no_acknowledged_event(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    add_route(&db, "echo", "/echo", &mock.url(), &[]);
    let (_, key) = add_key(&db, "k", &[]);
    let env = [
        ("TOLLGATE_USAGE__DURABILITY", "spool"),
        // A long batch interval: in memory mode events would sit in the queue when the kill comes.
        ("TOLLGATE_WRITER__BATCH_INTERVAL_MS", "1000"),
    ];
    let server = Server::start(&db, &env).await;
    let ids = load_and_kill(&server, &key).await;
    assert!(ids.len() > 50, "load reached the gateway: {}", ids.len());
    drop(server);

    // The next start replays the spool: every acknowledged call is stored, once.
    let restarted = Server::start(&db, &env).await;
    restarted.wait_flushed().await;
    let store = db.open().await;
    assert_each_once(store.as_ref(), &ids).await;
    assert_eq!(
        restarted
            .metric("tollgate_usage_events_dropped_total")
            .await,
        0.0
    );
}
both_backends!(kill_9_under_load_in_spool_mode_loses_no_acknowledged_event);

async fn kill_9_in_memory_mode_loses_at_most_the_stated_window(backend: Backend) {
    const QUEUE: usize = 2000;
    const BATCH: usize = 100;
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    add_route(&db, "echo", "/echo", &mock.url(), &[]);
    let (_, key) = add_key(&db, "k", &[]);
    let env = [
        ("TOLLGATE_WRITER__QUEUE_CAPACITY", "2000"),
        ("TOLLGATE_WRITER__BATCH_SIZE", "100"),
        ("TOLLGATE_WRITER__BATCH_INTERVAL_MS", "1000"),
    ];
    let server = Server::start(&db, &env).await;
    // The window is visible before the crash: events held only in memory.
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("tollgate_usage_events_in_memory "),
        "{metrics}"
    );
    let ids = load_and_kill(&server, &key).await;
    assert!(ids.len() > 50, "load reached the gateway: {}", ids.len());
    drop(server);

    let restarted = Server::start(&db, &env).await;
    restarted.wait_flushed().await;
    let store = db.open().await;
    let stored: std::collections::HashSet<String> = store
        .recent_usage(1_000_000)
        .await
        .expect("recent usage")
        .into_iter()
        .filter_map(|e| e.request_id)
        .collect();
    let lost = ids.iter().filter(|id| !stored.contains(*id)).count();
    assert!(
        lost <= QUEUE + BATCH,
        "{lost} acknowledged events lost, more than the window of {QUEUE} + {BATCH}"
    );
}
both_backends!(kill_9_in_memory_mode_loses_at_most_the_stated_window);
