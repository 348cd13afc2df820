//! The limiter on in-process counters: every kind of limit, all-or-nothing admission,
//! reservations and their expiry, period rollover, readings, soft limits and crossings.
#![expect(
    clippy::expect_used,
    reason = "test helpers outside #[test] functions fail loudly too"
)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tollgate_limits::{
    BudgetSeed, Enforcement, Limit, LimitKind, Limiter, LimiterConfig, LocalCounters, Period,
    RefusalCode, Reported, Request, Scope, SeedError, Window, ZeroSeed, period_bounds, time_zone,
};

const KEY: i64 = 7;
const TEAM: i64 = 3;
const ROUTE: i64 = 11;
/// 2026-03-31T14:00:00Z, a Tuesday.
const T0: i64 = 1_774_965_600_000;

fn limit(id: i64, scope: Scope, kind: LimitKind) -> Limit {
    Limit {
        id,
        scope,
        kind,
        enforcement: Enforcement::Hard,
        alert_at: vec![80, 100],
        include_reported: false,
    }
}

fn soft(mut l: Limit) -> Limit {
    l.enforcement = Enforcement::Soft;
    l
}

struct Fixture {
    limiter: Limiter,
    now: Arc<AtomicI64>,
}

fn fixture(limits: Vec<Limit>, seed: Arc<dyn BudgetSeed>, tz: &str) -> Fixture {
    let now = Arc::new(AtomicI64::new(T0));
    let clock_now = Arc::clone(&now);
    let config = LimiterConfig {
        time_zone: time_zone("time_zone", tz).expect("zone"),
        reservation_ttl: Duration::from_secs(600),
        clock: Arc::new(move || clock_now.load(Ordering::SeqCst)),
    };
    let limiter = Limiter::new(limits, Arc::new(LocalCounters::new(seed)), config).expect("valid");
    Fixture { limiter, now }
}

fn local(limits: Vec<Limit>) -> Fixture {
    fixture(limits, Arc::new(ZeroSeed), "UTC")
}

impl Fixture {
    fn at(&self, ms: i64) {
        self.now.store(ms, Ordering::SeqCst);
    }

    fn call(&self, tokens: u64, cost: i64) -> Request {
        Request {
            team_id: Some(TEAM),
            key_id: Some(KEY),
            route_id: Some(ROUTE),
            estimate_tokens: tokens,
            estimate_cost_micro: cost,
            now_ms: self.now.load(Ordering::SeqCst),
        }
    }

    async fn usage_of(&self, id: i64) -> tollgate_limits::LimitUsage {
        self.limiter
            .usage()
            .await
            .expect("usage")
            .into_iter()
            .find(|u| u.limit_id == id)
            .expect("limit listed")
    }
}

#[tokio::test]
async fn requests_per_minute_slide_and_say_when_to_retry() {
    let f = local(vec![limit(
        1,
        Scope::Key(KEY),
        LimitKind::Requests {
            per: Window::Minute,
            max: 3,
        },
    )]);
    for i in 0..3 {
        f.at(T0 + i * 10_000);
        let a = f.limiter.admit(&f.call(0, 0)).await.expect("admitted");
        let h = a.headers().requests.expect("request headers");
        assert_eq!(
            (h.limit, h.remaining),
            (3, 2 - u64::try_from(i).expect("small"))
        );
        a.settle(0, 0).await.expect("settled");
    }
    f.at(T0 + 30_000);
    let r = f
        .limiter
        .admit(&f.call(0, 0))
        .await
        .expect_err("fourth refused");
    assert_eq!(r.code, RefusalCode::RateLimited);
    assert_eq!(r.code.as_str(), "rate_limited");
    assert_eq!((r.limit_id, r.scope), (Some(1), Some(Scope::Key(KEY))));
    assert_eq!(r.retry_after, Some(Duration::from_secs(30)));
    assert_eq!(r.retry_after_secs(), Some(30));
    // The first request leaves the window a minute after it was made.
    f.at(T0 + 60_000);
    f.limiter.admit(&f.call(0, 0)).await.expect("slot freed");
    // Another key is not limited.
    let mut other = f.call(0, 0);
    other.key_id = Some(KEY + 1);
    f.limiter.admit(&other).await.expect("another key");
}

#[tokio::test]
async fn tokens_per_minute_reserve_the_estimate_and_settle_to_the_use() {
    let f = local(vec![limit(
        1,
        Scope::Team(TEAM),
        LimitKind::TokensPerMinute { max: 1000 },
    )]);
    let a = f.limiter.admit(&f.call(600, 0)).await.expect("600 of 1000");
    assert_eq!(a.headers().tokens.expect("token headers").remaining, 400);
    let r = f
        .limiter
        .admit(&f.call(500, 0))
        .await
        .expect_err("600 + 500 > 1000");
    assert_eq!(r.code, RefusalCode::RateLimited);
    assert_eq!(r.retry_after, Some(Duration::from_secs(60)));
    // The call used far less than estimated: the difference comes back.
    a.settle(100, 0).await.expect("settled");
    let b = f.limiter.admit(&f.call(500, 0)).await.expect("100 + 500");
    assert_eq!(b.headers().tokens.expect("token headers").remaining, 400);
    // An estimate larger than the limit never fits: waiting does not help.
    let r = f
        .limiter
        .admit(&f.call(1001, 0))
        .await
        .expect_err("too large");
    assert_eq!(r.retry_after, None);
    // A minute later the window is empty again.
    f.at(T0 + 61_000);
    f.limiter
        .admit(&f.call(1000, 0))
        .await
        .expect("window slid");
}

#[tokio::test]
async fn concurrency_is_held_until_settled_or_dropped() {
    let f = local(vec![limit(
        1,
        Scope::Route(ROUTE),
        LimitKind::Concurrency { max: 2 },
    )]);
    let a = f.limiter.admit(&f.call(0, 0)).await.expect("first");
    let b = f.limiter.admit(&f.call(0, 0)).await.expect("second");
    let r = f.limiter.admit(&f.call(0, 0)).await.expect_err("third");
    assert_eq!(r.code, RefusalCode::ConcurrencyLimited);
    assert_eq!(r.code.as_str(), "concurrency_limited");
    a.settle(5, 0).await.expect("settled");
    let c = f
        .limiter
        .admit(&f.call(0, 0))
        .await
        .expect("a slot after settle");
    drop(b);
    let d = f
        .limiter
        .admit(&f.call(0, 0))
        .await
        .expect("a slot after drop");
    assert_eq!(f.usage_of(1).await.used, 2);
    drop((c, d));
    assert_eq!(f.usage_of(1).await.used, 0);
}

#[tokio::test]
async fn token_budget_counts_settled_plus_reserved() {
    let f = local(vec![limit(
        1,
        Scope::Key(KEY),
        LimitKind::TokenBudget {
            max: 100,
            period: Period::Day,
        },
    )]);
    let a = f.limiter.admit(&f.call(60, 0)).await.expect("60 reserved");
    let r = f
        .limiter
        .admit(&f.call(50, 0))
        .await
        .expect_err("60 + 50 > 100");
    assert_eq!(r.code, RefusalCode::BudgetExceeded);
    assert_eq!(r.code.as_str(), "budget_exceeded");
    // Until the end of the UTC day.
    assert_eq!(r.retry_after, Some(Duration::from_secs(10 * 3600)));
    let u = f.usage_of(1).await;
    assert_eq!((u.used, u.reserved, u.remaining), (0, 60, 40));
    a.settle(30, 0).await.expect("settled");
    let u = f.usage_of(1).await;
    assert_eq!((u.used, u.reserved, u.remaining), (30, 0, 70));
    assert_eq!(u.resets_at_ms, Some(T0 + 10 * 3_600_000));
    // Exactly reaching the budget is admitted; after that, even a call estimated at zero is not.
    let b = f
        .limiter
        .admit(&f.call(70, 0))
        .await
        .expect("30 + 70 = 100");
    b.settle(70, 0).await.expect("settled");
    let r = f.limiter.admit(&f.call(0, 0)).await.expect_err("spent");
    assert_eq!(r.code, RefusalCode::BudgetExceeded);
}

#[tokio::test]
async fn cost_budget_uses_micro_usd() {
    let f = local(vec![limit(
        1,
        Scope::Instance,
        LimitKind::CostBudget {
            max_micro_usd: 1_000_000,
            period: Period::Total,
        },
    )]);
    let a = f
        .limiter
        .admit(&f.call(10, 400_000))
        .await
        .expect("0.40 USD");
    a.settle(10, 900_000).await.expect("settled at 0.90 USD");
    let r = f
        .limiter
        .admit(&f.call(10, 200_000))
        .await
        .expect_err("0.90 + 0.20 > 1");
    assert_eq!(r.code, RefusalCode::BudgetExceeded);
    // A total budget never resets: no Retry-After.
    assert_eq!(r.retry_after, None);
}

#[tokio::test]
async fn a_refusal_takes_nothing_from_the_other_limits() {
    let f = local(vec![
        limit(
            1,
            Scope::Instance,
            LimitKind::Requests {
                per: Window::Minute,
                max: 100,
            },
        ),
        limit(
            2,
            Scope::Team(TEAM),
            LimitKind::TokensPerMinute { max: 10_000 },
        ),
        limit(3, Scope::Key(KEY), LimitKind::Concurrency { max: 10 }),
        limit(
            4,
            Scope::Route(ROUTE),
            LimitKind::TokenBudget {
                max: 100,
                period: Period::Month,
            },
        ),
    ]);
    let r = f
        .limiter
        .admit(&f.call(500, 0))
        .await
        .expect_err("budget refuses");
    assert_eq!(r.limit_id, Some(4));
    for u in f.limiter.usage().await.expect("usage") {
        assert_eq!(
            (u.used, u.reserved),
            (0, 0),
            "limit {} took something",
            u.limit_id
        );
    }
    let a = f
        .limiter
        .admit(&f.call(50, 0))
        .await
        .expect("fits everywhere");
    let used: Vec<(i64, i64, i64)> = f
        .limiter
        .usage()
        .await
        .expect("usage")
        .iter()
        .map(|u| (u.limit_id, u.used, u.reserved))
        .collect();
    assert_eq!(used, vec![(1, 1, 0), (2, 50, 0), (3, 1, 0), (4, 0, 50)]);
    drop(a);
}

#[tokio::test]
async fn an_unsettled_reservation_expires_after_its_ttl() {
    let f = local(vec![
        limit(
            1,
            Scope::Key(KEY),
            LimitKind::TokenBudget {
                max: 100,
                period: Period::Total,
            },
        ),
        limit(2, Scope::Key(KEY), LimitKind::Concurrency { max: 1 }),
    ]);
    let a = f.limiter.admit(&f.call(90, 0)).await.expect("reserved");
    // The call crashed: the admission is never settled.
    drop(a);
    assert_eq!(f.usage_of(2).await.used, 0, "the lease is released at once");
    f.at(T0 + 599_000);
    assert_eq!(f.usage_of(1).await.reserved, 90, "kept until the TTL");
    f.limiter
        .admit(&f.call(20, 0))
        .await
        .expect_err("still reserved");
    f.at(T0 + 600_000);
    assert_eq!(f.usage_of(1).await.reserved, 0, "expired");
    f.limiter.admit(&f.call(20, 0)).await.expect("free again");
}

#[tokio::test]
async fn a_settle_after_the_ttl_still_counts_the_use() {
    let f = local(vec![limit(
        1,
        Scope::Key(KEY),
        LimitKind::TokenBudget {
            max: 100,
            period: Period::Total,
        },
    )]);
    let a = f.limiter.admit(&f.call(10, 0)).await.expect("reserved");
    f.at(T0 + 3_600_000);
    a.settle(40, 0).await.expect("settled late");
    let u = f.usage_of(1).await;
    assert_eq!((u.used, u.reserved), (40, 0));
}

#[tokio::test]
async fn a_day_budget_rolls_over_at_midnight_in_its_zone() {
    // Tokyo is UTC+9: its day ends at 15:00 UTC.
    let f = fixture(
        vec![limit(
            1,
            Scope::Key(KEY),
            LimitKind::TokenBudget {
                max: 100,
                period: Period::Day,
            },
        )],
        Arc::new(ZeroSeed),
        "Asia/Tokyo",
    );
    f.at(T0 + 3_599_000); // 14:59:59 UTC = 23:59:59 in Tokyo
    let a = f
        .limiter
        .admit(&f.call(100, 0))
        .await
        .expect("whole budget");
    a.settle(100, 0).await.expect("settled");
    let r = f.limiter.admit(&f.call(1, 0)).await.expect_err("spent");
    assert_eq!(r.retry_after, Some(Duration::from_secs(1)));
    let u = f.usage_of(1).await;
    assert_eq!(u.resets_at_ms, Some(T0 + 3_600_000));
    f.at(T0 + 3_600_000); // midnight in Tokyo
    f.limiter.admit(&f.call(100, 0)).await.expect("a new day");
    let tz = time_zone("tz", "Asia/Tokyo").expect("zone");
    assert_eq!(
        period_bounds(Period::Day, &tz, T0 + 3_600_000).0,
        T0 + 3_600_000
    );
}

/// A store that answers a fixed use and remembers what it was asked.
#[derive(Default)]
struct FixedSeed {
    tokens: i64,
    cost: i64,
    asked: Mutex<Vec<(Scope, i64, bool)>>,
}

#[async_trait]
impl BudgetSeed for FixedSeed {
    async fn used(
        &self,
        scope: Scope,
        since: i64,
        reported: bool,
    ) -> Result<(i64, i64), SeedError> {
        self.asked
            .lock()
            .expect("lock")
            .push((scope, since, reported));
        Ok((self.tokens, self.cost))
    }
}

struct FailingSeed;

#[async_trait]
impl BudgetSeed for FailingSeed {
    async fn used(&self, _: Scope, _: i64, _: bool) -> Result<(i64, i64), SeedError> {
        Err(SeedError("database is down".to_owned()))
    }
}

#[tokio::test]
async fn budgets_start_from_the_store_once_per_period() {
    let seed = Arc::new(FixedSeed {
        tokens: 950,
        cost: 0,
        asked: Mutex::default(),
    });
    let f = fixture(
        vec![limit(
            1,
            Scope::Team(TEAM),
            LimitKind::TokenBudget {
                max: 1000,
                period: Period::Month,
            },
        )],
        Arc::clone(&seed) as Arc<dyn BudgetSeed>,
        "UTC",
    );
    f.limiter
        .admit(&f.call(50, 0))
        .await
        .expect("950 + 50")
        .settle(50, 0)
        .await
        .expect("settled");
    f.limiter
        .admit(&f.call(1, 0))
        .await
        .expect_err("a restart did not reset the month");
    let month_start = period_bounds(Period::Month, &jiff::tz::TimeZone::UTC, T0).0;
    assert_eq!(
        *seed.asked.lock().expect("lock"),
        vec![(Scope::Team(TEAM), month_start, false)]
    );
}

#[tokio::test]
async fn an_unreadable_store_makes_limits_unavailable() {
    let f = fixture(
        vec![limit(
            1,
            Scope::Team(TEAM),
            LimitKind::TokenBudget {
                max: 1000,
                period: Period::Month,
            },
        )],
        Arc::new(FailingSeed),
        "UTC",
    );
    let r = f
        .limiter
        .admit(&f.call(50, 0))
        .await
        .expect_err("cannot seed");
    assert_eq!(r.code, RefusalCode::LimitsUnavailable);
    assert_eq!(r.code.http_status(), 503);
}

#[tokio::test]
async fn readings_count_only_on_budgets_that_include_them() {
    let mut with = limit(
        1,
        Scope::Key(KEY),
        LimitKind::TokenBudget {
            max: 1000,
            period: Period::Day,
        },
    );
    with.include_reported = true;
    let without = limit(
        2,
        Scope::Key(KEY),
        LimitKind::TokenBudget {
            max: 1000,
            period: Period::Day,
        },
    );
    let seed = Arc::new(FixedSeed::default());
    let f = fixture(
        vec![with, without],
        Arc::clone(&seed) as Arc<dyn BudgetSeed>,
        "UTC",
    );
    let reading = Reported {
        team_id: Some(TEAM),
        key_id: Some(KEY),
        route_id: None,
        tokens: 350,
        cost_micro: 0,
    };
    f.limiter.record_reported(&reading).await.expect("recorded");
    assert_eq!(f.usage_of(1).await.used, 350);
    assert_eq!(f.usage_of(2).await.used, 0);
    let day = period_bounds(Period::Day, &jiff::tz::TimeZone::UTC, T0).0;
    let asked = seed.asked.lock().expect("lock").clone();
    assert!(asked.contains(&(Scope::Key(KEY), day, true)), "{asked:?}");
    assert!(asked.contains(&(Scope::Key(KEY), day, false)), "{asked:?}");
}

#[tokio::test]
async fn soft_limits_never_refuse_but_report_each_crossing_once() {
    let mut budget = soft(limit(
        1,
        Scope::Key(KEY),
        LimitKind::TokenBudget {
            max: 100,
            period: Period::Day,
        },
    ));
    budget.alert_at = vec![50, 80, 100];
    let f = local(vec![
        budget,
        soft(limit(
            2,
            Scope::Key(KEY),
            LimitKind::Requests {
                per: Window::Minute,
                max: 1,
            },
        )),
    ]);
    let mut crossings = f.limiter.subscribe();
    for _ in 0..3 {
        let a = f
            .limiter
            .admit(&f.call(40, 0))
            .await
            .expect("soft never refuses");
        assert_eq!(a.headers().requests, None, "soft limits are not advertised");
        a.settle(45, 0).await.expect("settled");
    }
    let got: Vec<(u16, i64)> = std::iter::from_fn(|| crossings.try_recv().ok())
        .map(|c| (c.threshold_pct, c.used))
        .collect();
    // 45 → none, 90 → 50 % and 80 %, 135 → 100 %; each once.
    assert_eq!(got, vec![(50, 90), (80, 90), (100, 135)]);
    let a = f
        .limiter
        .admit(&f.call(40, 0))
        .await
        .expect("still admitted");
    a.settle(45, 0).await.expect("settled");
    assert!(crossings.try_recv().is_err(), "no crossing twice");
    assert_eq!(f.usage_of(2).await.used, 4, "soft rate limits still count");
}

#[tokio::test]
async fn a_hard_budget_refusal_reports_the_100_percent_crossing() {
    let f = local(vec![limit(
        1,
        Scope::Key(KEY),
        LimitKind::TokenBudget {
            max: 100,
            period: Period::Day,
        },
    )]);
    let mut crossings = f.limiter.subscribe();
    f.limiter
        .admit(&f.call(30, 0))
        .await
        .expect("ok")
        .settle(30, 0)
        .await
        .expect("settled");
    f.limiter
        .admit(&f.call(90, 0))
        .await
        .expect_err("30 + 90 > 100");
    let got: Vec<u16> = std::iter::from_fn(|| crossings.try_recv().ok())
        .map(|c| c.threshold_pct)
        .collect();
    assert_eq!(got, vec![80, 100]);
}

#[tokio::test]
async fn headers_show_the_tightest_limit() {
    let f = local(vec![
        limit(
            1,
            Scope::Instance,
            LimitKind::Requests {
                per: Window::Second,
                max: 100,
            },
        ),
        limit(
            2,
            Scope::Key(KEY),
            LimitKind::Requests {
                per: Window::Hour,
                max: 5,
            },
        ),
        limit(
            3,
            Scope::Key(KEY),
            LimitKind::TokensPerMinute { max: 10_000 },
        ),
        limit(
            4,
            Scope::Team(TEAM),
            LimitKind::TokenBudget {
                max: 1_000,
                period: Period::Day,
            },
        ),
    ]);
    let a = f.limiter.admit(&f.call(100, 0)).await.expect("admitted");
    let h = a.headers();
    let r = h.requests.expect("requests");
    assert_eq!(
        (r.limit, r.remaining, r.reset),
        (5, 4, Duration::from_secs(3600))
    );
    let t = h.tokens.expect("tokens");
    assert_eq!(
        (t.limit, t.remaining, t.reset),
        (1_000, 900, Duration::from_secs(10 * 3600))
    );
    assert_eq!(tollgate_limits::format_reset(r.reset), "1h0m0s");
    assert_eq!(tollgate_limits::format_reset(t.reset), "10h0m0s");
    for (reset, text) in [
        (Duration::ZERO, "0ms"),
        (Duration::from_millis(999), "999ms"),
        (Duration::from_millis(1_000), "1s"),
        (Duration::from_millis(1_001), "2s"),
        (Duration::from_secs(59), "59s"),
        (Duration::from_secs(360), "6m0s"),
        (Duration::from_secs(3_725), "1h2m5s"),
        (Duration::from_secs(36_000), "10h0m0s"),
    ] {
        assert_eq!(tollgate_limits::format_reset(reset), text, "{reset:?}");
    }
}

#[tokio::test]
async fn replacing_limits_applies_at_once_and_rejects_invalid_sets() {
    let f = local(vec![limit(
        1,
        Scope::Key(KEY),
        LimitKind::Requests {
            per: Window::Minute,
            max: 1,
        },
    )]);
    f.limiter.admit(&f.call(0, 0)).await.expect("first");
    f.limiter.admit(&f.call(0, 0)).await.expect_err("limited");
    let bad = limit(2, Scope::Key(KEY), LimitKind::Concurrency { max: 0 });
    let e = f.limiter.set_limits(vec![bad]).expect_err("invalid");
    assert_eq!(e.field, "kind.max");
    f.limiter
        .admit(&f.call(0, 0))
        .await
        .expect_err("old limits still in force");
    let dup = limit(1, Scope::Key(KEY), LimitKind::Concurrency { max: 1 });
    assert_eq!(
        f.limiter
            .set_limits(vec![dup.clone(), dup])
            .expect_err("twice")
            .field,
        "id"
    );
    f.limiter.set_limits(vec![]).expect("valid");
    f.limiter.admit(&f.call(0, 0)).await.expect("no limits");
    assert!(f.limiter.limits().is_empty());
}

#[tokio::test]
async fn over_admission_is_at_most_what_the_calls_in_flight_use_beyond_their_estimates() {
    let f = local(vec![limit(
        1,
        Scope::Key(KEY),
        LimitKind::TokenBudget {
            max: 100,
            period: Period::Day,
        },
    )]);
    let mut in_flight = Vec::new();
    for _ in 0..10 {
        in_flight.push(
            f.limiter
                .admit(&f.call(10, 0))
                .await
                .expect("within the budget"),
        );
    }
    // The eleventh call would cross the budget: the tenth was the last admitted.
    let r = f.limiter.admit(&f.call(10, 0)).await.expect_err("crosses");
    assert_eq!(r.code, RefusalCode::BudgetExceeded);
    // Each call in flight used 15 tokens against an estimate of 10.
    for a in in_flight {
        a.settle(15, 0).await.expect("settled");
    }
    let u = f.usage_of(1).await;
    assert_eq!(
        u.used, 150,
        "overrun = 10 calls in flight × 5 tokens beyond their estimate"
    );
    assert_eq!(u.remaining, 0);
    f.limiter
        .admit(&f.call(0, 0))
        .await
        .expect_err("nothing more until the period ends");
}
