//! Two real instances on one PostgreSQL database and one Redis, with limits far from their end:
//! the instances admit most calls from headroom leased from Redis (no round trip), and still no
//! call past a limit is admitted — near the end every call is decided in Redis, and once the
//! leased blocks have ended the count is exact. Budgets leased the same way end with exactly the
//! tokens the admitted calls used.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tollgate_limits::{LimitKind, Period, Window};
use tollgate_store::LimitOwner;

use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{Backend, Server, client};
use crate::limits_gateway::{
    REDIS_URL, chat, listed_limit, openai_key, put_limit, redis_env, start_with,
};

/// Requests a minute the key may make: far above the leasing threshold (2 × 64 calls × 4
/// instances = 512 left), so blocks are leased for most of the way.
const RATE: u64 = 1_500;
/// Tokens each call uses (the mock reports 3 + 2).
const CALL_TOKENS: u64 = 5;
const CLIENTS: usize = 32;

/// Every client calls (alternating instances) until it is refused; returns the calls admitted.
async fn round(servers: &Arc<[Server; 2]>, key: &str) -> u64 {
    let http = client();
    let mut clients = Vec::new();
    for n in 0..CLIENTS {
        let (servers, http, key) = (Arc::clone(servers), http.clone(), key.to_owned());
        clients.push(tokio::spawn(async move {
            let usage = [
                ("x-mock-prompt-tokens", "3"),
                ("x-mock-completion-tokens", "2"),
            ];
            let mut admitted = 0_u64;
            for i in 0.. {
                let server = &servers[(n + i) % 2];
                let resp = chat(&http, server, &key, "gpt-4o", &usage).await;
                let status = resp.status();
                resp.bytes().await.expect("body");
                match status {
                    StatusCode::OK => admitted += 1,
                    StatusCode::TOO_MANY_REQUESTS => break,
                    other => panic!("unexpected status {other}"),
                }
            }
            admitted
        }));
    }
    let mut admitted = 0;
    for c in clients {
        admitted += c.await.expect("join");
    }
    admitted
}

/// The value of an unlabelled sample in a Prometheus exposition (0 when absent).
fn sample(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_lease_headroom_and_still_count_exactly() {
    let (mock, db, key_id, key, store) = openai_key(Backend::Postgres, "leased").await;
    put_limit(
        &*store,
        LimitOwner::Key(key_id),
        LimitKind::Requests {
            per: Window::Minute,
            max: RATE,
        },
    )
    .await;
    // A token budget the calls never reach: leased too, and settled through the flusher.
    let budget_id = put_limit(
        &*store,
        LimitOwner::Key(key_id),
        LimitKind::TokenBudget {
            max: 10_000_000,
            period: Period::Month,
        },
    )
    .await;
    let namespace = format!("it-{}", uuid::Uuid::new_v4().simple());
    let envs = ["a", "b"].map(|data| {
        let mut env = redis_env(&db, &namespace, data, REDIS_URL, "fail_open");
        env.extend(console_env().into_iter().map(|(k, v)| (k, v.to_owned())));
        env
    });
    let [env_a, env_b] = envs;
    let a = start_with(&db, &env_a).await;
    let b = start_with(&db, &env_b).await;
    let servers = Arc::new([a, b]);

    let first = round(&servers, &key).await;
    assert!(
        first <= RATE,
        "{first} calls admitted against {RATE} a minute"
    );
    // Permits left unused in blocks are counted as used until their block ends (at most a
    // second); then every call is decided in Redis, one at a time, up to the exact limit.
    let mut total = first;
    for _ in 0..4 {
        if total == RATE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        total += round(&servers, &key).await;
    }
    assert_eq!(
        total, RATE,
        "exactly {RATE} admitted (first round: {first})"
    );
    assert_eq!(
        mock.request_count(),
        usize::try_from(RATE).expect("small"),
        "exactly the admitted calls forwarded"
    );

    // Leases engaged: most calls were admitted in the process (the metric is synced with the
    // limiter every refresh tick).
    let mut leased = 0;
    for _ in 0..50 {
        leased = 0;
        for server in servers.iter() {
            let metrics = server.metrics().await;
            assert!(metrics.contains("tollgate_limits_degraded 0"), "{metrics}");
            leased += sample(&metrics, "tollgate_limit_leased_admissions_total");
        }
        if leased >= RATE / 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("admitted {total} ({first} in the first round), {leased} from leased blocks");
    assert!(
        (RATE / 3..RATE).contains(&leased),
        "{leased} of {RATE} calls admitted from leased blocks"
    );

    // The budget's use, read through the API (which flushes this instance's blocks first, and
    // sees the other's once its flusher ran): every admitted call's exact tokens.
    let admin = Api::login(&servers[0], ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let want = RATE * CALL_TOKENS;
    let mut used = Value::Null;
    for _ in 0..50 {
        used = listed_limit(&admin, key_id, budget_id).await["usage"].clone();
        if used["used"] == want && used["reserved"].as_u64().unwrap_or(0) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        used["used"], want,
        "{RATE} calls × {CALL_TOKENS} tokens: {used}"
    );
    drop(servers);
    mock.shutdown().await;
}
