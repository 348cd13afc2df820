//! Reported calls count like proxied ones: an edge's report (the seed's `{token_hash, route,
//! timestamp}` or a full v1 event) is attributed to a route by name or by the longest prefix of
//! its path, and to a key by hash or id, then shows in the per-route, per-key and per-model
//! views. And ingest forgives what it may: unknown fields are ignored and named, a missing
//! status is unknown, and in a batch each bad event is refused on its own, by index.

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tollgate_core::time::{DAY_MS, now_ms};

use crate::both_backends;
use crate::console::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Api, INGEST_SECRET, console_env, now_secs, sign_ingest,
};
use crate::harness::{Backend, Server, TestDb, add_key, add_route, client, rollup_calls};

/// Posts `body` to `path`, signed with the ingest secret; answers the status and the JSON.
async fn report(server: &Server, path: &str, body: &Value) -> (StatusCode, Value) {
    let text = body.to_string();
    let (ts, sig) = sign_ingest(INGEST_SECRET, now_secs(), text.as_bytes());
    let resp = client()
        .post(server.console_url(path))
        .header("content-type", "application/json")
        .header("x-tollgate-timestamp", ts)
        .header("x-tollgate-signature", sig)
        .body(text)
        .send()
        .await
        .expect("ingest");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn hash_of(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().expect("id")
}

/// `(id, calls)` of each group of a top-N or breakdown answer.
fn calls_by_id(items: &Value) -> HashMap<i64, i64> {
    items
        .as_array()
        .expect("a list")
        .iter()
        .map(|i| {
            (
                i["id"].as_i64().unwrap_or(0),
                i["calls"].as_i64().expect("calls"),
            )
        })
        .collect()
}

async fn seed_reports_count_under_their_route(backend: Backend) {
    let db = TestDb::new(backend).await;
    let svc = id_of(&add_route(&db, "svc", "/svc", "http://127.0.0.1:9", &[]));
    let admin_route = id_of(&add_route(
        &db,
        "svc-admin",
        "/svc/admin",
        "http://127.0.0.1:9",
        &[],
    ));
    let llm = id_of(&add_route(
        &db,
        "llm",
        "/llm",
        "http://127.0.0.1:9",
        &["--kind", "openai"],
    ));
    let (k1, key1) = add_key(&db, "edge-one", &[]);
    let (k2, key2) = add_key(&db, "edge-two", &[]);
    let server = Server::start(&db, &console_env()).await;
    let now = now_ms();

    // The seed's worker sends exactly these three fields, the route being the matched path.
    let seed_reports = [
        (
            json!({"token_hash": hash_of(&key1), "route": "/svc/users/7", "timestamp": now}),
            svc,
            k1,
        ),
        (
            json!({"token_hash": hash_of(&key1), "route": "/svc/admin/flags?x=1", "timestamp": now + 1, "response_status": 500}),
            admin_route,
            k1,
        ),
        (
            json!({"token_hash": hash_of(&key2), "route": "llm", "timestamp": now + 2, "response_status": 200}),
            llm,
            k2,
        ),
        (
            json!({"token_hash": hash_of(&key2), "route": "/svcx/nothing", "timestamp": now + 3}),
            0,
            k2,
        ),
    ];
    for (body, _, _) in &seed_reports {
        let (status, answer) = report(&server, "/api/usage-log", body).await;
        assert_eq!(status, StatusCode::OK, "{body}: {answer}");
        assert_eq!(answer["status"], "logged", "{answer}");
        assert_eq!(answer["accepted"], 1, "{answer}");
    }
    // A v1 event naming its key by id and no route: matched on its path; one naming a route by
    // name is attributed to it whatever its path.
    let (prompt, completion) = (11_u64, 7_u64);
    let events = json!([
        {"id": "v1-a", "ts": now + 4, "key_id": k2, "method": "POST", "path": "/llm/v1/chat/completions", "status": 200, "latency_ms": 20.0, "model": "gpt-4o-mini", "prompt_tokens": prompt, "completion_tokens": completion},
        {"id": "v1-b", "ts": now + 5, "key_hash": hash_of(&key1), "route": "svc", "method": "GET", "path": "/elsewhere", "status": 204, "latency_ms": 2.0}
    ]);
    let (status, answer) = report(&server, "/api/v1/usage/events", &events).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["accepted"], 2, "{answer}");
    server.wait_flushed().await;

    // What each view should hold, counted from what was sent.
    let mut want_routes: HashMap<i64, i64> = HashMap::new();
    let mut want_keys: HashMap<i64, i64> = HashMap::new();
    for (_, route, key) in &seed_reports {
        *want_routes.entry(*route).or_default() += 1;
        *want_keys.entry(*key).or_default() += 1;
    }
    *want_routes.entry(llm).or_default() += 1;
    *want_keys.entry(k2).or_default() += 1;
    *want_routes.entry(svc).or_default() += 1;
    *want_keys.entry(k1).or_default() += 1;

    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let seed_view = admin.ok(Method::GET, "/api/usage/route", None, 200).await;
    assert_eq!(calls_by_id(&seed_view), want_routes, "{seed_view}");
    let by_route = admin
        .ok(
            Method::GET,
            "/api/v1/usage/top?by=route&range=24h&limit=100",
            None,
            200,
        )
        .await;
    assert_eq!(calls_by_id(&by_route), want_routes, "{by_route}");
    let by_key = admin
        .ok(
            Method::GET,
            "/api/v1/usage/top?by=key&range=24h&limit=100",
            None,
            200,
        )
        .await;
    assert_eq!(calls_by_id(&by_key), want_keys, "{by_key}");
    let by_model = admin
        .ok(
            Method::GET,
            "/api/v1/usage/top?by=model&range=24h&limit=100",
            None,
            200,
        )
        .await;
    let model = by_model
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["name"] == "gpt-4o-mini")
        .unwrap_or_else(|| panic!("the reported model: {by_model}"));
    assert_eq!(model["calls"], 1);
    assert_eq!(model["total_tokens"].as_u64(), Some(prompt + completion));
    let llm_view = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/summary?range=24h&route_id={llm}"),
            None,
            200,
        )
        .await;
    assert_eq!(
        llm_view["prompt_tokens"].as_u64(),
        Some(prompt),
        "{llm_view}"
    );
    assert_eq!(llm_view["completion_tokens"].as_u64(), Some(completion));

    let store = db.open().await;
    let rows = store.recent_usage(100).await.expect("usage");
    assert_eq!(rows.len(), seed_reports.len() + 2);
    for row in &rows {
        match row.route_id {
            Some(id) if id == svc => assert_eq!(row.route.as_deref(), Some("svc")),
            Some(id) if id == llm => {
                assert_eq!(row.route.as_deref(), Some("llm"));
                assert_eq!(row.key_id, Some(k2), "key by hash or by id");
            }
            Some(id) => assert_eq!(id, admin_route),
            None => assert_eq!(
                row.route.as_deref(),
                Some("/svcx/nothing"),
                "kept as reported"
            ),
        }
        assert!(
            row.team_id.is_some(),
            "every known key brings its team: {row:?}"
        );
    }
}
both_backends!(seed_reports_count_under_their_route);

async fn ingest_forgives_what_it_may_and_refuses_what_it_must(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (key_id, key) = add_key(&db, "edge", &[]);
    let server = Server::start(&db, &console_env()).await;
    let hash = hash_of(&key);
    let now = now_ms();
    let good = json!({"id": "ok-1", "ts": now, "key_hash": hash, "method": "GET", "path": "/a", "status": 200, "latency_ms": 1.0, "colo": "AMS"});
    let batch = json!([
        good,
        {"id": "future", "ts": now + 3 * DAY_MS, "key_hash": hash, "method": "GET", "path": "/a", "status": 200, "latency_ms": 1.0},
        {"id": "stale", "ts": now - 31 * DAY_MS, "key_hash": hash, "method": "GET", "path": "/a", "status": 200, "latency_ms": 1.0},
        {"id": "no-status", "ts": now, "key_hash": hash, "method": "GET", "path": "/a", "latency_ms": 1.0, "cf_ray": "x"},
        {"id": "ghost", "ts": now, "key_id": key_id + 1000, "method": "GET", "path": "/a", "status": 200, "latency_ms": 1.0},
        good,
        {"id": "ends-first", "ts": now, "key_hash": hash, "method": "GET", "path": "/a", "status": 200, "latency_ms": 9.0, "upstream_latency_ms": 5.0, "upstream_last_byte_ms": 4.0},
        {"id": "last-byte", "ts": now, "key_hash": hash, "method": "GET", "path": "/a", "status": 200, "latency_ms": 9.0, "upstream_latency_ms": 5.0, "upstream_last_byte_ms": 8.5}
    ]);
    let (status, answer) = report(&server, "/api/v1/usage/events", &batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(
        answer["accepted"], 4,
        "three good events, one sent twice: {answer}"
    );
    let rejected: Vec<(u64, &str)> = answer["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().expect("index"),
                r["field"].as_str().expect("field"),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (1, "ts"),
            (2, "ts"),
            (4, "key_id"),
            (6, "upstream_last_byte_ms")
        ],
        "{answer}"
    );
    assert!(
        answer["rejected"][3]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("must not be less than upstream_latency_ms"),
        "{answer}"
    );
    assert!(
        answer["rejected"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("future")
    );
    assert!(
        answer["rejected"][1]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("retention")
    );
    assert_eq!(answer["ignored_fields"], json!(["cf_ray", "colo"]));

    // The seed's path: the same rules, its own answer shape.
    let logs = json!([
        {"token_hash": hash, "route": "/b", "timestamp": now + 10, "response_status": 201, "edge_colo": "AMS"},
        {"token_hash": hash, "route": "/b", "timestamp": now + 4 * DAY_MS}
    ]);
    let (status, answer) = report(&server, "/api/usage-log", &logs).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "logged");
    assert_eq!(
        (answer["count"].as_u64(), answer["accepted"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(answer["rejected"][0]["index"], 1);
    assert_eq!(answer["rejected"][0]["field"], "timestamp");
    assert_eq!(answer["ignored_fields"], json!(["edge_colo"]));

    // Nothing good: refused whole, naming the first fault; one bad object likewise.
    let (status, err) = report(&server, "/api/usage-log", &json!([logs[1], logs[1]])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["field"], "[0].timestamp", "{err}");
    let (status, err) = report(&server, "/api/usage-log", &logs[1]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["field"], "timestamp", "{err}");
    let (status, err) = report(&server, "/api/v1/usage/events", &batch[4]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["field"], "key_id", "{err}");

    server.wait_flushed().await;
    let store = db.open().await;
    let rows = store.recent_usage(100).await.expect("usage");
    assert_eq!(
        rows.len(),
        4,
        "ok-1 once, no-status, last-byte, the seed's good report: {rows:?}"
    );
    assert_eq!(
        rollup_calls(store.as_ref()).await,
        4,
        "roll-ups count each once"
    );
    let timed = rows
        .iter()
        .find(|r| r.upstream_latency_us.is_some())
        .expect("the event with upstream times");
    assert_eq!(
        (timed.upstream_latency_us, timed.upstream_last_byte_us),
        (Some(5_000), Some(8_500)),
        "{timed:?}"
    );
    let unknown: Vec<u16> = rows
        .iter()
        .filter(|r| r.path == "/a")
        .map(|r| r.status)
        .collect();
    assert!(
        unknown.contains(&tollgate_core::usage::UNKNOWN_STATUS),
        "{unknown:?}"
    );
    let stored_key = store.key_by_id(key_id).await.expect("key").expect("exists");
    let last_used = stored_key.last_used_at_ms.expect("used");
    assert!(
        last_used <= now + 10,
        "a report from the future never moves last use: {last_used}"
    );

    // An unknown status is neither a success nor an error.
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let summary = admin
        .ok(Method::GET, "/api/v1/usage/summary?range=24h", None, 200)
        .await;
    assert_eq!(summary["calls"], 4, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    // The one call that said when its upstream's answer ended (8.5 ms), within 2 %.
    let last_byte = summary["upstream_last_byte_p50_ms"].as_f64().expect("p50");
    assert!((last_byte - 8.5).abs() <= 8.5 * 0.02, "{summary}");
}
both_backends!(ingest_forgives_what_it_may_and_refuses_what_it_must);
