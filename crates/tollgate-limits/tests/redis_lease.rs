//! Leased headroom on the Redis counters (the real Redis at 127.0.0.1:6379): far from a limit's
//! end an instance admits from blocks it took from Redis; near the end every call is decided in
//! Redis, so two instances still admit exactly the limit and never more.
#![expect(
    clippy::expect_used,
    reason = "test helpers outside #[test] functions fail loudly too"
)]

use std::sync::Arc;
use std::time::Duration;

use tollgate_limits::{
    Limit, LimitKind, Limiter, LimiterConfig, Period, RedisConfig, RedisCounters, RefusalCode,
    Window, ZeroSeed,
};

mod common;

use common::{Namespace, REDIS, call, limit};

impl Namespace {
    fn conn(&self) -> redis::Connection {
        redis::Client::open(REDIS)
            .and_then(|c| c.get_connection())
            .expect("Redis at 127.0.0.1:6379")
    }

    fn keys(&self, what: &str) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(format!("{{{}}}:{what}", self.0))
            .query(&mut self.conn())
            .expect("KEYS")
    }
}

async fn limiter(ns: &Namespace, lease_calls: u32, limits: Vec<Limit>) -> Limiter {
    let config = RedisConfig {
        namespace: ns.0.clone(),
        lease_calls,
        lease_instances: 2,
        ..RedisConfig::new(REDIS)
    };
    let counters = RedisCounters::connect(config, Arc::new(ZeroSeed))
        .await
        .expect("Redis at 127.0.0.1:6379");
    Limiter::new(limits, Arc::new(counters), LimiterConfig::default()).expect("valid limits")
}

/// A request limit and a token budget on key 1 that the tests never come near: every check
/// takes blocks.
fn far_from_the_end() -> Vec<Limit> {
    vec![
        limit(
            1,
            LimitKind::Requests {
                per: Window::Minute,
                max: 1_000_000,
            },
        ),
        limit(
            2,
            LimitKind::TokenBudget {
                max: 1_000_000_000,
                period: Period::Month,
            },
        ),
    ]
}

/// Admits calls of `tokens` on `a` and `b` in turn, settling each at once with `tokens`, until
/// both refuse; then waits for unused blocks to come back (request blocks end within a second,
/// budget blocks are given back at the next flush once the headroom is small) and goes on, until
/// a whole round after the wait admits nothing. Returns the calls admitted.
async fn drain(a: &Limiter, b: &Limiter, tokens: u64, code: RefusalCode) -> u64 {
    let mut admitted = 0;
    loop {
        let before = admitted;
        let mut open = [true, true];
        while open.iter().any(|o| *o) {
            for (i, l) in [a, b].into_iter().enumerate() {
                if !open[i] {
                    continue;
                }
                match l.admit(&call(tokens)).await {
                    Ok(admission) => {
                        admitted += 1;
                        admission.settle(tokens, 0).await.expect("settled");
                    }
                    Err(r) => {
                        assert_eq!(r.code, code, "{r:?}");
                        open[i] = false;
                    }
                }
            }
        }
        if admitted == before {
            return admitted;
        }
        tokio::time::sleep(Duration::from_millis(1_200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_from_the_end_calls_are_admitted_from_leased_blocks() {
    let ns = Namespace::new();
    let limits = far_from_the_end();
    let a = limiter(&ns, 64, limits).await;
    for _ in 0..200 {
        let admission = a.admit(&call(50)).await.expect("admitted");
        let h = admission.headers();
        assert!(h.requests.is_some_and(|r| r.remaining < 1_000_000), "{h:?}");
        admission.settle(30, 0).await.expect("settled");
    }
    // The sliding log holds blocks of 64 entries named after their lease, not one per call.
    let log = ns.keys("r:1:*");
    assert_eq!(log.len(), 1, "{log:?}");
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(&log[0])
        .arg(0)
        .arg(-1)
        .query(&mut ns.conn())
        .expect("ZRANGE");
    let leased = members.iter().filter(|m| m.contains(":L")).count();
    assert!(leased >= 3 * 64, "{leased} of {} leased", members.len());
    // The use as the instance reports it is exact: its unused permits are given back and its
    // settled use flushed before it reads.
    let usage = a.usage().await.expect("usage");
    assert_eq!(usage[0].used, 200);
    assert_eq!(usage[1].used, 200 * 30);
    // Another instance sees the same once the blocks are back.
    let b = limiter(&ns, 64, a.limits()).await;
    let seen = b.usage().await.expect("usage");
    assert_eq!((seen[0].used, seen[1].used), (200, 6_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_leasing_instances_admit_exactly_a_request_limit() {
    let ns = Namespace::new();
    // Blocks of 16 while more than 2 × 16 × 2 = 64 are left.
    let limits = vec![limit(
        1,
        LimitKind::Requests {
            per: Window::Minute,
            max: 300,
        },
    )];
    let a = limiter(&ns, 16, limits.clone()).await;
    let b = limiter(&ns, 16, limits).await;
    assert_eq!(drain(&a, &b, 0, RefusalCode::RateLimited).await, 300);
    assert_eq!(a.usage().await.expect("usage")[0].used, 300);
    // Most of them came from blocks: 300 - 64 left room for leases of 16.
    let log = ns.keys("r:1:*");
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(&log[0])
        .arg(0)
        .arg(-1)
        .query(&mut ns.conn())
        .expect("ZRANGE");
    let leased = members.iter().filter(|m| m.contains(":L")).count();
    assert!(leased >= 200, "{leased} of {} leased", members.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_leasing_instances_admit_exactly_a_token_budget() {
    let ns = Namespace::new();
    // Blocks of 16 calls × 10 tokens while more than 2 × 160 × 2 = 640 tokens are left.
    let limits = vec![limit(
        1,
        LimitKind::TokenBudget {
            max: 30_000,
            period: Period::Day,
        },
    )];
    let a = limiter(&ns, 16, limits.clone()).await;
    let b = limiter(&ns, 16, limits).await;
    assert_eq!(drain(&a, &b, 10, RefusalCode::BudgetExceeded).await, 3_000);
    let u = &b.usage().await.expect("usage")[0];
    assert_eq!((u.used, u.remaining), (30_000, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_call_settles_in_the_process_and_a_redis_admitted_one_does_not() {
    let ns = Namespace::new();
    let limits = far_from_the_end();
    let a = limiter(&ns, 64, limits).await;
    // The first call is decided in Redis (which grants the blocks with it): its settlement
    // needs Redis, so the synchronous path hands the admission back untouched.
    let first = a.admit(&call(50)).await.expect("admitted");
    let first = first
        .settle_now(30, 0)
        .expect_err("a call admitted in Redis settles there");
    (*first).settle(30, 0).await.expect("settled in Redis");
    // The next ones come mostly from the blocks and settle at once, with no round trip; one
    // that takes a fresh block is decided in Redis and settles there.
    let mut in_process = 0;
    for i in 0..99 {
        let before = a.leased_admissions();
        let admission = a.admit(&call(50)).await.expect("admitted");
        let leased = a.leased_admissions() > before;
        match admission.settle_now(30, 0) {
            Ok(()) => {
                assert!(
                    leased,
                    "call {i} was decided in Redis but settled in the process"
                );
                in_process += 1;
            }
            Err(admission) => {
                assert!(
                    !leased,
                    "leased call {i} needed Redis to settle: {admission:?}"
                );
                (*admission).settle(30, 0).await.expect("settled in Redis");
            }
        }
    }
    assert!(
        in_process >= 90,
        "{in_process} of 99 settled in the process"
    );
    // Every settlement counted exactly once, as read after the blocks are flushed.
    let usage = a.usage().await.expect("usage");
    assert_eq!((usage[0].used, usage[1].used), (100, 100 * 30));
}
