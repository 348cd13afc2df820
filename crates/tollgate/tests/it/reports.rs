//! Usage over time from the command line and the server's housekeeping: `tollgate demo`,
//! `tollgate usage stats | top | export`, and retention removing exactly what is due.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::both_backends;
use crate::console::console_env;
use crate::harness::{Backend, Server, TestDb, cli, cli_json};
use tollgate_core::UsageEvent;

async fn demo_data_feeds_the_usage_commands(backend: Backend) {
    let db = TestDb::new(backend).await;
    let out = cli(
        &db,
        &["demo", "--events", "3000", "--days", "3", "--seed", "7"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("3000 demo events"));

    let stats = cli_json(&db, &["usage", "stats", "--since", "4d", "--json"]);
    assert_eq!(stats["summary"]["calls"], 3000);
    let errors = stats["summary"]["errors"].as_i64().expect("errors");
    assert!(
        errors > 30 && errors < 600,
        "a realistic error share: {errors}"
    );
    assert!(
        stats["summary"]["total_tokens"]
            .as_i64()
            .is_some_and(|t| t > 0)
    );

    let top = cli_json(
        &db,
        &[
            "usage", "top", "--by", "model", "--order", "tokens", "--since", "4d", "--limit", "3",
            "--json",
        ],
    );
    let items = top.as_array().expect("items");
    assert_eq!(items.len(), 3);
    let tokens: Vec<i64> = items
        .iter()
        .map(|i| i["total_tokens"].as_i64().expect("tokens"))
        .collect();
    assert!(
        tokens.windows(2).all(|w| w[0] >= w[1]),
        "ordered by tokens: {tokens:?}"
    );
    let by_key = cli_json(
        &db,
        &[
            "usage", "top", "--by", "key", "--since", "4d", "--limit", "100", "--json",
        ],
    );
    let calls: i64 = by_key
        .as_array()
        .expect("keys")
        .iter()
        .map(|i| i["calls"].as_i64().expect("calls"))
        .sum();
    assert_eq!(calls, 3000, "every demo call belongs to a demo key");

    // Exports stream every event, in each format.
    let file = db.dir.path().join("events.ndjson");
    let out = cli(
        &db,
        &[
            "usage",
            "export",
            "--format",
            "ndjson",
            "--since",
            "4d",
            "--output",
            file.to_str().expect("path"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).expect("export");
    assert_eq!(text.lines().count(), 3000);
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok())
    );
    let out = cli(
        &db,
        &[
            "usage", "export", "--format", "csv", "--since", "4d", "--model", "gpt-4o",
        ],
    );
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(
        csv.lines().next().is_some_and(|h| h.starts_with("id,ts,")),
        "{csv:.200}"
    );
    assert!(csv.lines().skip(1).all(|l| l.contains(",gpt-4o,")));
    let out = cli(
        &db,
        &[
            "usage", "export", "--format", "json", "--since", "4d", "--key", "999999",
        ],
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).expect("json"),
        json!([]),
        "an empty export is still valid JSON"
    );

    // Bad input: one line naming the flag, nothing printed on stdout.
    for bad in [
        &["usage", "stats", "--since", "forever"][..],
        &["usage", "stats", "--since", "500d"],
        &["usage", "stats", "--since", "1d", "--until", "2d"],
        &["usage", "top", "--limit", "0"],
        &["demo", "--events", "0"],
    ] {
        let out = cli(&db, bad);
        assert!(!out.status.success(), "{bad:?}");
        assert!(out.stdout.is_empty(), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{bad:?}: {err}"
        );
    }
    // A word outside a flag's fixed set is a usage error of the parser, which lists the words.
    for (bad, flag) in [
        (&["usage", "top", "--by", "colour"][..], "--by"),
        (&["usage", "export", "--format", "xml"], "--format"),
    ] {
        let out = cli(&db, bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(out.stdout.is_empty(), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("error: invalid value")
                && err.contains(flag)
                && err.contains("possible values"),
            "{bad:?}: {err}"
        );
    }
}
both_backends!(demo_data_feeds_the_usage_commands);

async fn retention_removes_exactly_what_is_due(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut env = console_env();
    env.extend([
        ("TOLLGATE_RETENTION__DAYS", "2"),
        ("TOLLGATE_RETENTION__CLEANUP_INTERVAL", "1s"),
        ("TOLLGATE_RETENTION__MAX_ROWS", "4"),
    ]);
    // Running: its clean-up is what is tested.
    let _server = Server::start(&db, &env).await;
    let now = tollgate_core::time::now_ms();
    let day = 86_400_000;
    // Two events older than two days, six recent ones: age removes two, the row limit two more.
    let ages = [
        5 * day,
        3 * day,
        day,
        50_000,
        40_000,
        30_000,
        20_000,
        10_000,
    ];
    // Written through the store: ingest refuses events already older than the retention.
    let events: Vec<UsageEvent> = ages
        .iter()
        .enumerate()
        .map(|(i, age)| UsageEvent::new(now - age, "GET", format!("/r/{i}"), 200))
        .collect();
    let store = db.open().await;
    assert_eq!(store.write_usage(&events).await.expect("write"), 8);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = store.recent_usage(100).await.expect("usage");
        if left.len() == 4 {
            let mut paths: Vec<String> = left.iter().map(|e| e.path.clone()).collect();
            paths.sort();
            assert_eq!(
                paths,
                ["/r/4", "/r/5", "/r/6", "/r/7"],
                "the newest four stay"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention left {} events",
            left.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Roll-ups outlive raw events: the calls still count in the totals.
    let calls: i64 = crate::harness::rollup_calls(store.as_ref()).await;
    assert_eq!(calls, 8);
}
both_backends!(retention_removes_exactly_what_is_due);
