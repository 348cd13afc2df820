//! Latency percentiles from the sketches, through the real writer: known distributions (uniform,
//! bimodal, heavy-tailed) go in through ingest over several days, keys, teams and models, and
//! every percentile the API reports is checked against the exact one computed here from the same
//! latencies, after the sketches were merged across hours, days and groups.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;
use tollgate_core::sketch::RELATIVE_ERROR;
use tollgate_core::time::{DAY_MS, HOUR_MS};

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{Backend, Server, TestDb};

/// The percentiles the API reports, with their quantiles.
const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 0.5),
    ("p90", 0.9),
    ("p95", 0.95),
    ("p99", 0.99),
    ("p999", 0.999),
];

/// One generated call.
#[derive(Debug, Clone)]
struct Call {
    key: usize,
    day: i64,
    ts: i64,
    model: &'static str,
    latency_us: i64,
    upstream_us: Option<i64>,
    last_byte_us: Option<i64>,
}

/// A small deterministic generator (xorshift), so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        #[expect(clippy::cast_precision_loss, reason = "53 bits of a u64")]
        let f = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        f
    }
}

/// A latency of key `key`'s distribution, µs: uniform 5–500 ms, bimodal (70 % 20–40 ms, 30 %
/// 700–1500 ms), or heavy-tailed (Pareto, 10 ms scale, shape 1.2, at most 8 minutes).
fn latency_us(key: usize, rng: &mut Rng) -> i64 {
    let ms = match key {
        0 => 5.0 + 495.0 * rng.next(),
        1 if rng.next() < 0.7 => 20.0 + 20.0 * rng.next(),
        1 => 700.0 + 800.0 * rng.next(),
        _ => (10.0 * (1.0 - rng.next()).powf(-1.0 / 1.2)).min(480_000.0),
    };
    #[expect(clippy::cast_possible_truncation, reason = "at most 8 minutes in µs")]
    let us = (ms * 1000.0).round() as i64;
    us
}

/// The latency of rank `⌊q · (n - 1)⌋` of `values` (µs), ms: the rank a sketch's estimate is
/// stated for.
fn exact_ms(values: &[i64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "small test sizes"
    )]
    let rank = (q * (sorted.len() - 1) as f64).floor() as usize;
    #[expect(clippy::cast_precision_loss, reason = "latencies far below 2^52")]
    let ms = sorted[rank] as f64 / 1000.0;
    ms
}

/// Checks every percentile of `answer` (total, and upstream to first and to last byte where
/// calls have them) against the exact ones of `calls`.
fn check(what: &str, answer: &Value, calls: &[&Call]) {
    assert_eq!(answer["calls"].as_u64(), Some(calls.len() as u64), "{what}");
    assert_eq!(answer["coarse"], false, "{what}: {answer}");
    let total: Vec<i64> = calls.iter().map(|c| c.latency_us).collect();
    let upstream: Vec<i64> = calls.iter().filter_map(|c| c.upstream_us).collect();
    let last_byte: Vec<i64> = calls.iter().filter_map(|c| c.last_byte_us).collect();
    for (p, q) in PERCENTILES {
        for (field, values) in [
            (format!("{p}_latency_ms"), &total),
            (format!("upstream_{p}_latency_ms"), &upstream),
            (format!("upstream_last_byte_{p}_ms"), &last_byte),
        ] {
            if values.is_empty() {
                assert_eq!(answer[&field], Value::Null, "{what}: {field}");
                continue;
            }
            let truth = exact_ms(values, q);
            let got = answer[&field].as_f64().unwrap_or(f64::NAN);
            // The sketch's stated error (2 %), well inside the 5 % asked for.
            assert!(
                (got - truth).abs() <= truth * RELATIVE_ERROR * 1.000_001,
                "{what}: {field} reported {got}, exact {truth}"
            );
        }
    }
}

async fn percentiles_match_known_distributions(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let mut teams = Vec::new();
    for name in ["alpha", "beta"] {
        let team = admin
            .ok(
                Method::POST,
                "/api/v1/teams",
                Some(json!({ "name": name })),
                201,
            )
            .await;
        teams.push(team["id"].as_i64().expect("team id"));
    }
    // Uniform and bimodal in team alpha, heavy-tailed in beta.
    let mut keys = Vec::new();
    for (team, name) in [
        (teams[0], "uniform"),
        (teams[0], "bimodal"),
        (teams[1], "heavy"),
    ] {
        let k = admin
            .ok(
                Method::POST,
                "/api/v1/keys",
                Some(json!({ "team_id": team, "name": name })),
                201,
            )
            .await;
        let hash = hex::encode(sha2::Sha256::digest(
            k["key"].as_str().expect("key").as_bytes(),
        ));
        keys.push((k["id"].as_i64().expect("key id"), hash));
    }

    // From 05:00 three days ago to the start of the current hour: hourly edges around whole
    // days, so that both sketch tables are read and merged.
    let now = tollgate_core::time::now_ms();
    let today = now - now.rem_euclid(DAY_MS);
    let from = today - 3 * DAY_MS + 5 * HOUR_MS;
    let to = now - now.rem_euclid(HOUR_MS);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let models = ["gpt-4o", "claude-sonnet-4"];
    let mut calls = Vec::new();
    for i in 0..3000_usize {
        let key = i % 3;
        #[expect(clippy::cast_possible_truncation, reason = "within the range")]
        let ts = from + (rng.next() * (to - from) as f64) as i64;
        let latency_us = latency_us(key, &mut rng);
        let model = models[(i / 3) % 2];
        calls.push(Call {
            key,
            day: ts - ts.rem_euclid(DAY_MS),
            ts,
            model,
            latency_us,
            // Only the first model's calls report the upstream's time to first byte, 80 % of
            // the total; four in five of those its time to last byte too, 90 %.
            upstream_us: (model == models[0]).then_some(latency_us * 4 / 5),
            last_byte_us: (model == models[0] && i % 5 != 0).then_some(latency_us * 9 / 10),
        });
    }
    for (n, chunk) in calls.chunks(500).enumerate() {
        let events: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, c)| {
                #[expect(clippy::cast_precision_loss, reason = "latencies far below 2^52")]
                let ms = |us: i64| us as f64 / 1000.0;
                json!({"id": format!("pct-{n}-{i}"), "ts": c.ts, "key_hash": keys[c.key].1,
                       "method": "POST", "path": "/v1/chat/completions", "status": 200,
                       "latency_ms": ms(c.latency_us),
                       "upstream_latency_ms": c.upstream_us.map(ms),
                       "upstream_last_byte_ms": c.last_byte_us.map(ms), "model": c.model})
            })
            .collect();
        crate::console::ingest(&server, &events).await;
    }

    let range = format!("from={from}&to={to}");
    let all: Vec<&Call> = calls.iter().collect();
    let summary = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/summary?{range}"),
            None,
            200,
        )
        .await;
    check("all calls", &summary, &all);

    // One team: two distributions merged.
    let alpha = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/summary?{range}&team_id={}", teams[0]),
            None,
            200,
        )
        .await;
    let in_alpha: Vec<&Call> = calls.iter().filter(|c| c.key < 2).collect();
    check("team alpha", &alpha, &in_alpha);

    // Per key and per model, from the top lists.
    let top_keys = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/top?{range}&by=key"),
            None,
            200,
        )
        .await;
    for (k, (id, _)) in keys.iter().enumerate() {
        let item = top_keys
            .as_array()
            .expect("top keys")
            .iter()
            .find(|t| t["id"].as_i64() == Some(*id))
            .expect("the key is listed");
        let of_key: Vec<&Call> = calls.iter().filter(|c| c.key == k).collect();
        check(&format!("key {k}"), item, &of_key);
    }
    let top_models = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/top?{range}&by=model"),
            None,
            200,
        )
        .await;
    for model in models {
        let item = top_models
            .as_array()
            .expect("top models")
            .iter()
            .find(|t| t["name"] == model)
            .expect("the model is listed");
        let of_model: Vec<&Call> = calls.iter().filter(|c| c.model == model).collect();
        check(model, item, &of_model);
    }
    // Per team and per route (these calls matched no route: one group, route 0), from the
    // teams' and the routes' summary rows.
    let top_teams = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/top?{range}&by=team"),
            None,
            200,
        )
        .await;
    for (t, team) in teams.iter().enumerate() {
        let item = top_teams
            .as_array()
            .expect("top teams")
            .iter()
            .find(|i| i["id"].as_i64() == Some(*team))
            .expect("the team is listed");
        let of_team: Vec<&Call> = calls.iter().filter(|c| (c.key == 2) == (t == 1)).collect();
        check(&format!("team {t}"), item, &of_team);
    }
    let top_routes = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/top?{range}&by=route"),
            None,
            200,
        )
        .await;
    let routes = top_routes.as_array().expect("top routes");
    assert_eq!(routes.len(), 1, "{top_routes}");
    check("route 0", &routes[0], &all);
    // Only the groups ranked first have their sketches read: the one key listed is exact.
    let first_key = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/top?{range}&by=key&limit=1"),
            None,
            200,
        )
        .await;
    let first_key = first_key.as_array().expect("top key");
    assert_eq!(first_key.len(), 1);
    let k = keys
        .iter()
        .position(|(id, _)| first_key[0]["id"].as_i64() == Some(*id))
        .expect("a known key");
    let of_key: Vec<&Call> = calls.iter().filter(|c| c.key == k).collect();
    check("the first key alone", &first_key[0], &of_key);
    // One key, per model: the detailed rows.
    let key_models = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/top?{range}&by=model&key_id={}", keys[1].0),
            None,
            200,
        )
        .await;
    for model in models {
        let item = key_models
            .as_array()
            .expect("the key's models")
            .iter()
            .find(|t| t["name"] == model)
            .expect("the model is listed");
        let of_both: Vec<&Call> = calls
            .iter()
            .filter(|c| c.key == 1 && c.model == model)
            .collect();
        check(&format!("bimodal key, {model}"), item, &of_both);
    }

    // One key and one model: the filters select sketch rows too.
    let one = admin
        .ok(
            Method::GET,
            &format!(
                "/api/v1/usage/summary?{range}&key_id={}&model={}",
                keys[2].0, models[0]
            ),
            None,
            200,
        )
        .await;
    let of_one: Vec<&Call> = calls
        .iter()
        .filter(|c| c.key == 2 && c.model == models[0])
        .collect();
    check("heavy key, first model", &one, &of_one);

    // Per day: the edge days are merged from hours, the others read whole.
    let series = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/series?{range}&bucket=day"),
            None,
            200,
        )
        .await;
    let mut by_day: BTreeMap<i64, Vec<&Call>> = BTreeMap::new();
    for c in &calls {
        by_day.entry(c.day).or_default().push(c);
    }
    for point in series.as_array().expect("points") {
        let day = point["ts"].as_i64().expect("ts");
        match by_day.get(&day) {
            Some(of_day) => check(&format!("day {day}"), point, of_day),
            None => assert_eq!(point["calls"], 0),
        }
    }

    // A status class filter: sketches are not kept per status class, so the answer says its
    // percentiles are the coarse buckets'.
    let ok_only = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/summary?{range}&status_class=2"),
            None,
            200,
        )
        .await;
    assert_eq!(ok_only["calls"].as_u64(), Some(calls.len() as u64));
    assert_eq!(ok_only["coarse"], true, "{ok_only}");

    // Roll-ups written before migration 0014 have no sketch: take the first day's away, as if
    // it had been rolled up then. A range holding it falls back to the coarse buckets' upper
    // bounds and says so; a range after it stays exact.
    let first_day = from - from.rem_euclid(DAY_MS);
    forget_sketches_before(&db, first_day + DAY_MS).await;
    let old = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/summary?{range}"),
            None,
            200,
        )
        .await;
    assert_eq!(old["coarse"], true, "{old}");
    assert_eq!(
        old["calls"].as_u64(),
        Some(calls.len() as u64),
        "the summary rows keep their counts: {old}"
    );
    let p95 = old["p95_latency_ms"].as_f64().expect("coarse p95");
    assert!(
        tollgate_core::usage::LATENCY_BUCKETS_MS.contains(&p95),
        "a coarse p95 is a bucket bound: {p95}"
    );
    let later_from = first_day + DAY_MS;
    let later = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/summary?from={later_from}&to={to}"),
            None,
            200,
        )
        .await;
    let after: Vec<&Call> = calls.iter().filter(|c| c.ts >= later_from).collect();
    check("after the first day", &later, &after);
}

/// Leaves the summary tables before `before_ms` as migration 0014 leaves those of roll-ups written
/// before it: summary rows with their counts and empty sketches, no detailed rows.
async fn forget_sketches_before(db: &TestDb, before_ms: i64) {
    let empty = tollgate_core::sketch::LatencySketch::new().encode();
    let statements = [
        "UPDATE summary_hourly SET total = $2, upstream = $2, upstream_last_byte = $2 \
         WHERE hour < $1",
        "UPDATE summary_daily SET total = $2, upstream = $2, upstream_last_byte = $2 \
         WHERE day < $1",
        "DELETE FROM summary_hourly WHERE hour < $1 AND kind = 4",
        "DELETE FROM summary_daily WHERE day < $1 AND kind = 4",
    ];
    // The same statements on either backend's pool (sqlx's pools differ in type).
    macro_rules! forget {
        ($pool:expr) => {{
            let pool = $pool;
            for sql in statements {
                let q = sqlx::query(sql).bind(before_ms);
                let q = if sql.starts_with("UPDATE") {
                    q.bind(&empty)
                } else {
                    q
                };
                q.execute(&pool).await.expect("forget sketches");
            }
        }};
    }
    match db.backend {
        Backend::Sqlite => forget!(sqlx::SqlitePool::connect(&db.url).await.expect("sqlite")),
        Backend::Postgres => forget!(sqlx::PgPool::connect(&db.url).await.expect("pg")),
    }
}

both_backends!(percentiles_match_known_distributions);
