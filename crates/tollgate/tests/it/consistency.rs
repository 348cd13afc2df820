//! Answers that must agree with each other and with their documentation: the seed statistics'
//! success rate in one unit, `range=` on the export like every usage endpoint, key names in
//! exports, the idle-key filters, and the sync type a reading gets by default.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;
use tollgate_core::time::{DAY_MS, now_ms};

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env, ingest};
use crate::harness::{Backend, Server, TestDb, cli};

/// Creates a key through the API; returns (id, hash of the secret).
async fn key(admin: &Api, name: &str) -> (i64, String) {
    let created = admin
        .ok(
            Method::POST,
            "/api/v1/keys",
            Some(json!({ "name": name })),
            201,
        )
        .await;
    let hash = hex::encode(sha2::Sha256::digest(
        created["key"].as_str().expect("key").as_bytes(),
    ));
    (created["id"].as_i64().expect("id"), hash)
}

fn event(id: &str, ts: i64, hash: &str, status: u16) -> Value {
    json!({"id": id, "ts": ts, "key_hash": hash, "method": "POST", "path": "/v1/chat",
           "status": status, "latency_ms": 12.0, "prompt_tokens": 3, "completion_tokens": 4})
}

fn ids(list: &Value) -> BTreeSet<i64> {
    list.as_array()
        .expect("list")
        .iter()
        .map(|k| k["id"].as_i64().expect("id"))
        .collect()
}

async fn usage_answers_agree(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (busy, busy_hash) = key(&admin, "busy").await;
    let (dormant, dormant_hash) = key(&admin, "dormant").await;
    let (never, _) = key(&admin, "never").await;
    let now = now_ms();
    let statuses = [200, 200, 201, 500];
    let mut events: Vec<Value> = statuses
        .iter()
        .enumerate()
        .map(|(i, s)| event(&format!("busy-{i}"), now - 60_000, &busy_hash, *s))
        .collect();
    events.push(event("dormant-0", now - 10 * DAY_MS, &dormant_hash, 200));
    ingest(&server, &events).await;

    // Seed 000's statistics: one unit, the percent, at the top level and in every list.
    let ok = statuses.iter().filter(|s| **s < 400).count();
    let expected_percent = (ok as f64 * 10_000.0 / statuses.len() as f64).round() / 100.0;
    let stats = admin.ok(Method::GET, "/api/usage/stats", None, 200).await;
    assert_eq!(
        stats["success_rate"].as_f64(),
        Some(expected_percent),
        "{stats}"
    );
    let top_busy = stats["top_tokens"]
        .as_array()
        .expect("top_tokens")
        .iter()
        .find(|t| t["id"] == busy)
        .expect("busy in top_tokens")
        .clone();
    assert_eq!(
        top_busy["success_rate"].as_f64(),
        Some(expected_percent),
        "{stats}"
    );
    assert_eq!(top_busy["calls"].as_u64(), Some(statuses.len() as u64));
    // Each list item says the same as the v1 top list (a share there), times 100.
    let v1 = admin
        .ok(
            Method::GET,
            "/api/v1/usage/top?by=route&range=24h",
            None,
            200,
        )
        .await;
    for list in ["top_routes", "route_distribution"] {
        for item in stats[list].as_array().expect(list) {
            let share = v1["items"]
                .as_array()
                .or(v1.as_array())
                .expect("v1 items")
                .iter()
                .find(|t| t["name"] == item["name"])
                .and_then(|t| t["success_rate"].as_f64())
                .expect("same route in v1");
            let percent = (share * 10_000.0).round() / 100.0;
            assert_eq!(
                item["success_rate"].as_f64(),
                Some(percent),
                "{list}: {item}"
            );
        }
    }

    // The export takes `range=` as every usage endpoint does, and names each call's key.
    let week = admin
        .raw(
            Method::GET,
            "/api/v1/usage/export?range=7d&format=json",
            None,
        )
        .await;
    assert_eq!(week.status(), StatusCode::OK);
    let week: Value = week.json().await.expect("json export");
    let rows = week.as_array().expect("rows");
    assert_eq!(
        rows.len(),
        statuses.len(),
        "the 10-day-old call is outside 7d"
    );
    for row in rows {
        assert_eq!(row["key_id"], busy);
        assert_eq!(row["key_name"], "busy");
        let fields: Vec<&String> = row.as_object().expect("object").keys().collect();
        let at = fields.iter().position(|f| *f == "key_id").expect("key_id");
        assert_eq!(fields[at + 1], "key_name", "the name sits beside the id");
    }
    let month = admin
        .raw(
            Method::GET,
            "/api/v1/usage/export?range=30d&format=csv",
            None,
        )
        .await
        .text()
        .await
        .expect("csv");
    assert_eq!(month.lines().count(), events.len() + 1, "{month}");
    assert!(
        month
            .lines()
            .next()
            .expect("header")
            .contains("key_id,key_name")
    );
    assert!(month.contains(",dormant,"), "{month}");
    for series in ["series", "top"] {
        let resp = admin
            .raw(
                Method::GET,
                &format!("/api/v1/usage/export?dataset={series}&range=30d&format=json"),
                None,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{series}");
    }
    for path in [
        format!("/api/v1/usage/export?range=7d&from={}", now - DAY_MS),
        "/api/v1/usage/export?range=500d".to_owned(),
        "/api/v1/usage/export?range=soon".to_owned(),
        "/api/v1/usage/export?dataset=top&range=soon".to_owned(),
    ] {
        let (status, err) = admin.call(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {err}");
        assert_eq!(err["error"]["field"], "range", "{path}: {err}");
    }
    // The CLI's export names the key too.
    let out = cli(
        &db,
        &["usage", "export", "--format", "csv", "--since", "30d"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .next()
            .expect("header")
            .contains("key_id,key_name")
    );
    assert!(
        text.contains(",busy,") && text.contains(",dormant,"),
        "{text}"
    );

    // Keys by use: never used, and idle for N days (never-used keys are idle too).
    let all = admin.ok(Method::GET, "/api/v1/keys", None, 200).await;
    assert_eq!(ids(&all), BTreeSet::from([busy, dormant, never]));
    let unused = admin
        .ok(Method::GET, "/api/v1/keys?unused=true", None, 200)
        .await;
    assert_eq!(ids(&unused), BTreeSet::from([never]));
    let idle_week = admin
        .ok(Method::GET, "/api/v1/keys?idle_days=7", None, 200)
        .await;
    assert_eq!(ids(&idle_week), BTreeSet::from([dormant, never]));
    let idle_month = admin
        .ok(Method::GET, "/api/v1/keys?idle_days=30", None, 200)
        .await;
    assert_eq!(ids(&idle_month), BTreeSet::from([never]));
    for path in [
        "/api/v1/keys?idle_days=0",
        "/api/v1/keys?idle_days=4000",
        "/api/v1/keys?unused=true&idle_days=3",
    ] {
        let (status, err) = admin.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {err}");
        assert_eq!(err["error"]["field"], "idle_days", "{path}: {err}");
    }
    let out = cli(&db, &["key", "list", "--idle-days", "7", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(ids(&listed), BTreeSet::from([dormant, never]));
    let out = cli(&db, &["key", "list", "--idle-days", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--idle-days"));

    // A reading's sync type: `api` from the seed's path, `manual` from the console's, as the
    // OpenAPI document says.
    admin
        .ok(
            Method::POST,
            "/api/record_token_usage",
            Some(json!({"tokens": 1000})),
            200,
        )
        .await;
    admin
        .ok(
            Method::POST,
            "/api/v1/counters/default/readings",
            Some(json!({"reading": 2000})),
            201,
        )
        .await;
    let history = admin
        .ok(Method::GET, "/api/v1/counters/default/readings", None, 200)
        .await;
    let types: Vec<&str> = history
        .as_array()
        .expect("readings")
        .iter()
        .map(|r| r["sync_type"].as_str().expect("sync_type"))
        .collect();
    assert_eq!(types, ["manual", "api"], "newest first");
    let doc: Value = admin
        .raw(Method::GET, "/api/openapi.json", None)
        .await
        .json()
        .await
        .expect("openapi");
    let schemas = &doc["components"]["schemas"];
    let seed = schemas["RecordTokenUsage"]["properties"]["sync_type"]["description"]
        .as_str()
        .expect("seed doc");
    let v1 = schemas["ReadingCreate"]["properties"]["sync_type"]["description"]
        .as_str()
        .expect("v1 doc");
    assert!(seed.starts_with("`api` (the default"), "{seed}");
    assert!(v1.starts_with("`manual` (the default"), "{v1}");
}
both_backends!(usage_answers_agree);
