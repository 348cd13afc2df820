//! Admission latency: p50/p99/max of `Limiter::admit` over 100 000 decisions, with a generous
//! request rate limit, a tokens-per-minute limit, a concurrency limit and a token budget on every
//! call, on local counters and on Redis (`TOLLGATE_REDIS_URL`, default 127.0.0.1:6379).
//! Each admission is settled after it is timed, as the gateway does when the response ends.
//!
//! `cargo run --release -p tollgate-limits --example admit_bench [decisions]`
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_limits::{
    Counters, Enforcement, FailMode, Limit, LimitKind, Limiter, LimiterConfig, LocalCounters,
    Period, RedisConfig, RedisCounters, Request, Scope, Window, ZeroSeed,
};

fn limits() -> Vec<Limit> {
    let l = |id, scope, kind| Limit {
        id,
        scope,
        kind,
        enforcement: Enforcement::Hard,
        alert_at: vec![80, 100],
        include_reported: false,
    };
    vec![
        l(
            1,
            Scope::Instance,
            LimitKind::Requests {
                per: Window::Minute,
                max: 1_000_000,
            },
        ),
        l(
            2,
            Scope::Team(2),
            LimitKind::TokensPerMinute { max: 1 << 50 },
        ),
        l(3, Scope::Key(1), LimitKind::Concurrency { max: 1_000 }),
        l(
            4,
            Scope::Key(1),
            LimitKind::TokenBudget {
                max: 1 << 50,
                period: Period::Month,
            },
        ),
    ]
}

async fn run(name: &str, counters: Arc<dyn Counters>, decisions: usize) -> Result<(), String> {
    let limiter =
        Limiter::new(limits(), counters, LimiterConfig::default()).map_err(|e| e.to_string())?;
    let mut took = Vec::with_capacity(decisions);
    for _ in 0..decisions {
        let req = Request {
            team_id: Some(2),
            key_id: Some(1),
            route_id: Some(3),
            estimate_tokens: 500,
            estimate_cost_micro: 0,
            now_ms: tollgate_core::time::now_ms(),
        };
        let start = Instant::now();
        let admission = limiter.admit(&req).await.map_err(|r| r.to_string())?;
        took.push(start.elapsed());
        admission.settle(420, 0).await.map_err(|e| e.to_string())?;
    }
    let note = if limiter.degraded() {
        " (DEGRADED: Redis unreachable)"
    } else {
        ""
    };
    print_quantiles(name, decisions, took, note);
    Ok(())
}

fn print_quantiles(name: &str, decisions: usize, mut took: Vec<Duration>, note: &str) {
    took.sort_unstable();
    let at = |q: f64| {
        let i = ((took.len() as f64 - 1.0) * q).round() as usize;
        took.get(i).copied().unwrap_or(Duration::ZERO)
    };
    println!(
        "{name:>6}: {decisions} decisions, p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}{note}",
        at(0.50),
        at(0.99),
        at(0.999),
        at(1.0),
    );
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let decisions: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    run(
        "local",
        Arc::new(LocalCounters::new(Arc::new(ZeroSeed))),
        decisions,
    )
    .await?;

    let url =
        std::env::var("TOLLGATE_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let mut config = RedisConfig::new(url);
    config.namespace = format!("bench-{}", std::process::id());
    config.fail_mode = FailMode::FailClosed;
    let pattern = format!("{{{}}}:*", config.namespace);
    let client = redis::Client::open(config.url.as_str()).map_err(|e| e.to_string())?;
    let redis = RedisCounters::connect(config, Arc::new(ZeroSeed))
        .await
        .map_err(|e| e.to_string())?;
    let outcome = run("redis", Arc::new(redis), decisions).await;
    // Leave nothing behind in Redis.
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    // The floor on this machine: a bare PING round trip, measured the same way.
    let mut took = Vec::with_capacity(decisions);
    for _ in 0..decisions {
        let start = Instant::now();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        took.push(start.elapsed());
    }
    print_quantiles("ping", decisions, took, "");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    outcome
}
