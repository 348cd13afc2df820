//! The limiter on Redis counters (the real Redis at 127.0.0.1:6379): two limiters with their own
//! connections stand for two instances; a TCP proxy the test controls cuts Redis off and back.
//! Each test uses its own key namespace and deletes its keys.
#![expect(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail loudly too"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "tests start servers and workers on their own runtime, which ends with the test"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Barrier, Mutex};
use tokio::task::JoinHandle;
use tollgate_limits::{
    FailMode, Limit, LimitKind, Limiter, LimiterConfig, Period, RedisConfig, RedisCounters,
    RedisSetupError, RefusalCode, Scope, Window, ZeroSeed,
};

mod common;

use common::{Namespace, REDIS, call, limit};

impl Namespace {
    fn config(&self, url: &str, mode: FailMode) -> RedisConfig {
        RedisConfig {
            namespace: self.0.clone(),
            fail_mode: mode,
            timeout: Duration::from_millis(250),
            ..RedisConfig::new(url)
        }
    }
}

async fn limiter(ns: &Namespace, url: &str, mode: FailMode, limits: Vec<Limit>) -> Limiter {
    let counters = RedisCounters::connect(ns.config(url, mode), Arc::new(ZeroSeed))
        .await
        .expect("Redis at 127.0.0.1:6379");
    Limiter::new(limits, Arc::new(counters), LimiterConfig::default()).expect("valid limits")
}

/// Runs 40 concurrent admissions, half on each limiter, holding every admission until all 40
/// have been decided; returns how many were admitted.
async fn forty_at_once(a: &Limiter, b: &Limiter, tokens: u64) -> usize {
    let barrier = Arc::new(Barrier::new(40));
    let tasks: Vec<JoinHandle<bool>> = (0..40)
        .map(|i| {
            let limiter = if i % 2 == 0 { a.clone() } else { b.clone() };
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                let admitted = limiter.admit(&call(tokens)).await;
                barrier.wait().await;
                admitted.is_ok()
            })
        })
        .collect();
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.expect("task"));
    }
    admitted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_a_rate_limit_exactly() {
    let ns = Namespace::new();
    let limits = vec![limit(
        1,
        LimitKind::Requests {
            per: Window::Minute,
            max: 10,
        },
    )];
    let a = limiter(&ns, REDIS, FailMode::FailOpen, limits.clone()).await;
    let b = limiter(&ns, REDIS, FailMode::FailOpen, limits).await;
    assert_eq!(forty_at_once(&a, &b, 0).await, 10);
    let r = b.admit(&call(0)).await.expect_err("still limited");
    assert_eq!(r.code, RefusalCode::RateLimited);
    assert!(
        r.retry_after.is_some_and(|d| d <= Duration::from_secs(60)),
        "{r:?}"
    );
    assert_eq!(a.usage().await.expect("usage")[0].used, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_a_concurrency_limit_exactly() {
    let ns = Namespace::new();
    let limits = vec![limit(1, LimitKind::Concurrency { max: 10 })];
    let a = limiter(&ns, REDIS, FailMode::FailOpen, limits.clone()).await;
    let b = limiter(&ns, REDIS, FailMode::FailOpen, limits).await;
    assert_eq!(forty_at_once(&a, &b, 0).await, 10);
    // Every admission was dropped unsettled: the leases are released (asynchronously).
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.usage().await.expect("usage")[0].used != 0 {
        assert!(Instant::now() < deadline, "leases were not released");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held = a.admit(&call(0)).await.expect("free again");
    held.settle(0, 0).await.expect("settled");
    assert_eq!(b.usage().await.expect("usage")[0].used, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_a_token_budget_exactly() {
    let ns = Namespace::new();
    let limits = vec![limit(
        1,
        LimitKind::TokenBudget {
            max: 1_000,
            period: Period::Day,
        },
    )];
    let a = limiter(&ns, REDIS, FailMode::FailOpen, limits.clone()).await;
    let b = limiter(&ns, REDIS, FailMode::FailOpen, limits).await;
    assert_eq!(forty_at_once(&a, &b, 100).await, 10);

    // The dropped admissions' reservations stay until their TTL: settle new ones instead.
    let ns2 = Namespace::new();
    let limits = vec![limit(
        1,
        LimitKind::TokenBudget {
            max: 1_000,
            period: Period::Day,
        },
    )];
    let a = limiter(&ns2, REDIS, FailMode::FailOpen, limits.clone()).await;
    let b = limiter(&ns2, REDIS, FailMode::FailOpen, limits).await;
    let first = a.admit(&call(600)).await.expect("600 reserved");
    b.admit(&call(500)).await.expect_err("600 + 500 > 1000");
    first.settle(200, 0).await.expect("settled on a");
    let u = &b.usage().await.expect("usage")[0];
    assert_eq!((u.used, u.reserved, u.remaining), (200, 0, 800));
    b.admit(&call(800))
        .await
        .expect("200 + 800")
        .settle(800, 0)
        .await
        .expect("settled on b");
    let r = a.admit(&call(0)).await.expect_err("spent");
    assert_eq!(r.code, RefusalCode::BudgetExceeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_per_minute_settle_across_instances() {
    let ns = Namespace::new();
    let limits = vec![limit(1, LimitKind::TokensPerMinute { max: 1_000 })];
    let a = limiter(&ns, REDIS, FailMode::FailOpen, limits.clone()).await;
    let b = limiter(&ns, REDIS, FailMode::FailOpen, limits).await;
    let first = a.admit(&call(900)).await.expect("900 reserved");
    assert_eq!(first.headers().tokens.expect("headers").remaining, 100);
    b.admit(&call(200)).await.expect_err("900 + 200 > 1000");
    first.settle(100, 0).await.expect("settled");
    let second = b.admit(&call(200)).await.expect("100 + 200");
    assert_eq!(second.headers().tokens.expect("headers").remaining, 700);
}

/// A TCP proxy in front of Redis that the test can cut off (closing every connection and
/// refusing new ones) and restore.
struct Proxy {
    url: String,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let open = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (open2, links2) = (Arc::clone(&open), Arc::clone(&links));
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !open2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect("127.0.0.1:6379").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links2.lock().await.push(link);
            }
        });
        Self {
            url,
            open,
            links,
            accept,
        }
    }

    async fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for link in self.links.lock().await.drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Calls `usage` (which probes Redis while degraded) until the limiter is no longer degraded.
async fn wait_recovered(l: &Limiter) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let _ = l.usage().await;
        if !l.degraded() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "did not recover from the Redis outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_open_falls_back_to_local_counters_and_recovers() {
    let ns = Namespace::new();
    let proxy = Proxy::start().await;
    let limits = vec![limit(
        1,
        LimitKind::Requests {
            per: Window::Minute,
            max: 2,
        },
    )];
    let l = limiter(&ns, &proxy.url, FailMode::FailOpen, limits).await;
    l.admit(&call(0)).await.expect("first, counted in Redis");
    assert!(!l.degraded());

    proxy.cut().await;
    // Local counters start empty: this instance alone may now admit a whole window.
    l.admit(&call(0)).await.expect("local 1");
    assert!(l.degraded());
    assert_eq!(l.degradations(), 1);
    l.admit(&call(0)).await.expect("local 2");
    let r = l.admit(&call(0)).await.expect_err("local limit");
    assert_eq!(r.code, RefusalCode::RateLimited);

    proxy.restore();
    wait_recovered(&l).await;
    // Back on Redis, which counted one request.
    l.admit(&call(0)).await.expect("second in Redis");
    l.admit(&call(0)).await.expect_err("Redis limit");
    assert_eq!(l.degradations(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_closed_refuses_while_redis_is_unreachable_and_recovers() {
    let ns = Namespace::new();
    let proxy = Proxy::start().await;
    let limits = vec![limit(
        1,
        LimitKind::Requests {
            per: Window::Minute,
            max: 5,
        },
    )];
    let l = limiter(&ns, &proxy.url, FailMode::FailClosed, limits).await;
    l.admit(&call(0)).await.expect("Redis reachable");

    proxy.cut().await;
    let started = Instant::now();
    let r = l.admit(&call(0)).await.expect_err("fails closed");
    assert_eq!(r.code, RefusalCode::LimitsUnavailable);
    assert_eq!(r.code.as_str(), "limits_unavailable");
    assert_eq!(r.code.http_status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(l.degraded());
    // While degraded, refusals come at once, without waiting on Redis.
    let started = Instant::now();
    l.admit(&call(0)).await.expect_err("still closed");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "took {:?}",
        started.elapsed()
    );

    proxy.restore();
    wait_recovered(&l).await;
    l.admit(&call(0)).await.expect("admitted again");
    assert_eq!(l.usage().await.expect("usage")[0].used, 2);
}

#[tokio::test]
async fn a_wrong_redis_url_is_a_clear_error() {
    let ns = Namespace::new();
    let err = RedisCounters::connect(
        ns.config("http://example", FailMode::FailOpen),
        Arc::new(ZeroSeed),
    )
    .await
    .expect_err("not a Redis URL");
    assert!(matches!(err, RedisSetupError::Url(_)), "{err}");
    assert!(err.to_string().starts_with("redis_url:"), "{err}");

    let started = Instant::now();
    let secret = "redis://:hunter2@127.0.0.1:1";
    let err = RedisCounters::connect(ns.config(secret, FailMode::FailOpen), Arc::new(ZeroSeed))
        .await
        .expect_err("closed port");
    assert!(matches!(err, RedisSetupError::Unreachable(..)), "{err}");
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
    assert!(
        !err.to_string().contains("hunter2"),
        "the password leaked: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );

    let mut bad = ns.config(REDIS, FailMode::FailOpen);
    bad.namespace = "has space".to_owned();
    let err = RedisCounters::connect(bad, Arc::new(ZeroSeed))
        .await
        .expect_err("bad namespace");
    assert!(err.to_string().starts_with("redis_namespace:"), "{err}");
    assert!(!format!("{:?}", ns.config(secret, FailMode::FailOpen)).contains("hunter2"));
}

/// A store that says the scope already used 950 tokens, and counts how often it was asked.
struct StoreSaid950(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl tollgate_limits::BudgetSeed for StoreSaid950 {
    async fn used(
        &self,
        _: Scope,
        _: i64,
        _: bool,
    ) -> Result<(i64, i64), tollgate_limits::SeedError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok((950, 0))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_is_seeded_from_the_store_once_for_all_instances() {
    let ns = Namespace::new();
    let seed = Arc::new(StoreSaid950(std::sync::atomic::AtomicUsize::new(0)));
    let limits = vec![limit(
        1,
        LimitKind::TokenBudget {
            max: 1_000,
            period: Period::Month,
        },
    )];
    let mut instances = Vec::new();
    for _ in 0..2 {
        let counters =
            RedisCounters::connect(ns.config(REDIS, FailMode::FailOpen), Arc::clone(&seed) as _)
                .await
                .expect("Redis");
        instances.push(
            Limiter::new(limits.clone(), Arc::new(counters), LimiterConfig::default())
                .expect("valid"),
        );
    }
    let a = instances[0].admit(&call(50)).await.expect("950 + 50");
    instances[1]
        .admit(&call(1))
        .await
        .expect_err("the second instance sees the seed and the reservation");
    a.settle(50, 0).await.expect("settled");
    assert_eq!(instances[1].usage().await.expect("usage")[0].used, 1_000);
    assert_eq!(
        seed.0.load(Ordering::SeqCst),
        1,
        "seeded once per period, not per instance"
    );
}
