//! Budgets rebuilt exactly at start: a day budget in a +05:30 zone starts at :30 past a UTC hour,
//! so the hour holding its start has calls on both sides of it. Only those after the start count,
//! in the server (after a restart too) and in the CLI's local mode, on both backends.

use reqwest::Method;
use serde_json::Value;
use tollgate_core::usage::UsageEvent;
use tollgate_limits::{Enforcement, Limit, LimitKind, Period, Scope, default_alert_at};
use tollgate_store::LimitOwner;

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{Backend, Server, TestDb, add_key, base_env, cli_env};

/// A call of `key` at `ts_ms` that used `tokens` and cost `usd`.
fn call(ts_ms: i64, key: i64, tokens: i64, usd: f64) -> UsageEvent {
    let mut e = UsageEvent::new(ts_ms, "POST", "/oai/v1/chat/completions".to_owned(), 200);
    e.key_id = Some(key);
    e.tokens.prompt = tokens;
    e.tokens.total = tokens;
    e.cost_usd = Some(usd);
    e
}

fn budget_use(limits: &Value, kind: &str) -> i64 {
    limits["limits"]
        .as_array()
        .expect("limits")
        .iter()
        .find(|l| l["kind"]["type"] == kind)
        .and_then(|l| l["usage"]["used"].as_i64())
        .unwrap_or_else(|| panic!("no {kind} use in {limits}"))
}

async fn server_use(server: &Server) -> (i64, i64) {
    let admin = Api::login(server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let limits = admin.ok(Method::GET, "/api/v1/limits", None, 200).await;
    (
        budget_use(&limits, "token_budget"),
        budget_use(&limits, "cost_budget"),
    )
}

async fn budgets_are_rebuilt_exactly_in_a_half_hour_zone(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (key, _) = add_key(&db, "seeded", &[]);
    let zone = "Asia/Kolkata";
    let tz = tollgate_limits::time_zone("time_zone", zone).expect("zone");
    let now = tollgate_core::time::now_ms();
    let (start, _) = tollgate_limits::period_bounds(Period::Day, &tz, now);
    assert_eq!(
        start.rem_euclid(3_600_000),
        1_800_000,
        "the day starts at :30 UTC"
    );
    let store = db.open().await;
    for kind in [
        LimitKind::TokenBudget {
            max: 1_000_000,
            period: Period::Day,
        },
        LimitKind::CostBudget {
            max_micro_usd: 1_000_000_000,
            period: Period::Day,
        },
    ] {
        let limit = Limit {
            id: 1,
            scope: Scope::Key(key),
            kind,
            enforcement: Enforcement::Hard,
            alert_at: default_alert_at(),
            include_reported: false,
        };
        store
            .create_limit(LimitOwner::Key(key), &limit.spec_json(None), "test")
            .await
            .expect("create limit");
    }
    // The day before, in the same UTC hour as the start: not counted. At and after the start:
    // counted. One in an earlier whole hour, one in a later one (if there is a later one yet).
    let mut events = vec![
        call(start - 7_200_000, key, 5_000, 5.0),
        call(start - 60_000, key, 1_000, 1.0),
        call(start, key, 7, 0.007),
        call(start + 60_000.min(now - start), key, 11, 0.011),
    ];
    let mut expected = (18, 18_000);
    if now - start > 3_600_000 {
        events.push(call(start + 3_600_000, key, 100, 0.1));
        expected = (118, 118_000);
    }
    store.write_usage(&events).await.expect("write");

    let mut env = console_env();
    env.push(("TOLLGATE_LIMITS__TIME_ZONE", zone));
    let mut server = Server::start(&db, &env).await;
    assert_eq!(server_use(&server).await, expected, "at start");

    // Across a restart, with a call recorded while the server was down.
    assert!(server.stop().await, "clean stop");
    store
        .write_usage(&[call(start + 30_000.min(now - start), key, 3, 0.003)])
        .await
        .expect("write");
    let expected = (expected.0 + 3, expected.1 + 3_000);
    let server = Server::start(&db, &env).await;
    assert_eq!(server_use(&server).await, expected, "after a restart");
    drop(server);

    // The CLI's local mode reads the same.
    let out = cli_env(
        &base_env(&db, &[("TOLLGATE_LIMITS__TIME_ZONE", zone)]),
        db.dir.path(),
        &["limit", "list", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let limits: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (
            budget_use(&limits, "token_budget"),
            budget_use(&limits, "cost_budget")
        ),
        expected,
        "{limits}"
    );
}
both_backends!(budgets_are_rebuilt_exactly_in_a_half_hour_zone);
