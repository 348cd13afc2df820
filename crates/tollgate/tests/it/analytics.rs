//! Usage analytics through the real binary: known events go in through ingest, and every answer
//! is computed independently in the test from the same list (never by the same SQL): totals,
//! percentiles within the latency sketches' stated error, hourly series, top-N, role filtering, call
//! logs with cursors, streamed exports, and bad input.

use std::collections::{BTreeMap, HashSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;
use tollgate_core::sketch::RELATIVE_ERROR;

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env, invite_user};
use crate::harness::{Backend, Server, TestDb};

use tollgate_core::time::HOUR_MS;

/// One generated call.
#[derive(Debug, Clone)]
struct Call {
    key: usize,
    ts: i64,
    status: u16,
    latency_ms: f64,
    model: Option<&'static str>,
    prompt: i64,
    completion: i64,
    path: String,
}

/// The latency of rank `⌊q · (n - 1)⌋` of `values`: the rank a latency sketch's estimate is
/// stated for.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "small test sizes"
    )]
    let rank = (q * (values.len() - 1) as f64).floor() as usize;
    values[rank]
}

/// Whether `reported` is within the latency sketches' stated error of `truth`.
fn within_resolution(reported: f64, truth: f64) -> bool {
    (reported - truth).abs() <= truth * RELATIVE_ERROR * 1.000_001
}

async fn usage_answers_match_the_events(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let alpha = admin
        .ok(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "alpha"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("id");
    let beta = admin
        .ok(
            Method::POST,
            "/api/v1/teams",
            Some(json!({"name": "beta"})),
            201,
        )
        .await["id"]
        .as_i64()
        .expect("id");
    let mut keys = Vec::new();
    for (team, name) in [(alpha, "a1"), (alpha, "a2"), (beta, "b1")] {
        let k = admin
            .ok(
                Method::POST,
                "/api/v1/keys",
                Some(json!({"team_id": team, "name": name})),
                201,
            )
            .await;
        keys.push((
            k["id"].as_i64().expect("id"),
            team,
            hex::encode(sha2::Sha256::digest(
                k["key"].as_str().expect("key").as_bytes(),
            )),
        ));
    }
    // Three whole hours, ending at the start of the current hour.
    let now = tollgate_core::time::now_ms();
    let base = now - now.rem_euclid(HOUR_MS) - 3 * HOUR_MS;
    let models = [Some("gpt-4o-mini"), Some("claude-sonnet-4"), None];
    let statuses = [200, 200, 200, 429, 500, 200, 404];
    let mut calls = Vec::new();
    for i in 0..150i64 {
        let iu = usize::try_from(i).expect("small");
        #[expect(clippy::cast_precision_loss, reason = "small numbers")]
        let latency_ms = 0.3 + (i * 37 % 900) as f64 * 1.7;
        calls.push(Call {
            key: iu % 3,
            ts: base + (i * 71_993) % (3 * HOUR_MS),
            status: statuses[iu % statuses.len()],
            latency_ms,
            model: models[iu % 3],
            prompt: 10 + i,
            completion: 2 * i,
            path: if i % 10 == 0 {
                format!("/v1/100%_off/{i}")
            } else {
                format!("/v1/chat/{i}")
            },
        });
    }
    let events: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({"id": format!("an-{i}"), "ts": c.ts, "key_hash": keys[c.key].2, "method": "POST", "path": c.path,
                   "status": c.status, "latency_ms": c.latency_ms, "model": c.model, "prompt_tokens": c.prompt,
                   "completion_tokens": c.completion, "cost_usd": 0.001})
        })
        .collect();
    crate::console::ingest(&server, &events).await;

    let from = base;
    let to = base + 3 * HOUR_MS;
    let range = format!("from={from}&to={to}");
    // Totals and percentiles.
    let s = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/summary?{range}"),
            None,
            200,
        )
        .await;
    let errors = calls.iter().filter(|c| c.status >= 400).count();
    assert_eq!(s["calls"], 150);
    assert_eq!(s["errors"].as_u64(), Some(errors as u64));
    let tokens: i64 = calls.iter().map(|c| c.prompt + c.completion).sum();
    assert_eq!(s["total_tokens"].as_i64(), Some(tokens));
    let mut lat: Vec<f64> = calls.iter().map(|c| c.latency_ms).collect();
    for (field, q) in [
        ("p50_latency_ms", 0.5),
        ("p90_latency_ms", 0.9),
        ("p95_latency_ms", 0.95),
        ("p99_latency_ms", 0.99),
        ("p999_latency_ms", 0.999),
    ] {
        let truth = quantile(&mut lat, q);
        let got = s[field].as_f64().expect(field);
        assert!(
            within_resolution(got, truth),
            "{field}: reported {got}, true {truth}"
        );
    }
    let mean: f64 = lat.iter().sum::<f64>() / 150.0;
    assert!((s["avg_latency_ms"].as_f64().expect("avg") - mean).abs() < 0.01);
    assert!((s["cost_usd"].as_f64().expect("cost") - 0.15).abs() < 1e-6);

    // Hourly series.
    let series = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/series?{range}&bucket=hour"),
            None,
            200,
        )
        .await;
    let points = series.as_array().expect("points");
    assert_eq!(points.len(), 3);
    for (h, p) in points.iter().enumerate() {
        let start = base + i64::try_from(h).expect("h") * HOUR_MS;
        let expected = calls
            .iter()
            .filter(|c| (start..start + HOUR_MS).contains(&c.ts))
            .count();
        assert_eq!(
            (p["ts"].as_i64(), p["calls"].as_u64()),
            (Some(start), Some(expected as u64)),
            "hour {h}"
        );
    }

    // Top models by tokens.
    let top = admin
        .ok(
            Method::GET,
            &format!("/api/v1/usage/top?{range}&by=model&order=tokens"),
            None,
            200,
        )
        .await;
    let mut by_model: BTreeMap<String, i64> = BTreeMap::new();
    for c in &calls {
        *by_model
            .entry(c.model.unwrap_or("(none)").to_owned())
            .or_default() += c.prompt + c.completion;
    }
    let mut expected: Vec<(String, i64)> = by_model.into_iter().collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let got: Vec<(String, i64)> = top
        .as_array()
        .expect("top")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().expect("name").to_owned(),
                t["total_tokens"].as_i64().expect("tokens"),
            )
        })
        .collect();
    assert_eq!(got, expected);

    // A viewer of alpha sees alpha's usage only.
    let vera = invite_user(&server, &admin, alpha, "vera@example.com", "viewer").await;
    let alpha_calls = calls.iter().filter(|c| keys[c.key].1 == alpha).count();
    let mine = vera
        .ok(
            Method::GET,
            &format!("/api/v1/usage/summary?{range}"),
            None,
            200,
        )
        .await;
    assert_eq!(mine["calls"].as_u64(), Some(alpha_calls as u64));
    let (status, _) = vera
        .call(
            Method::GET,
            &format!("/api/v1/usage/summary?{range}&team_id={beta}"),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another team's usage is invisible"
    );
    let top_keys = vera
        .ok(
            Method::GET,
            &format!("/api/v1/usage/top?{range}&by=key&limit=100"),
            None,
            200,
        )
        .await;
    assert!(
        top_keys
            .as_array()
            .expect("top")
            .iter()
            .all(|t| t["name"] != "b1")
    );

    // Call logs: walk every page of 4xx calls; each once, newest first.
    let expected_4xx: Vec<&Call> = calls
        .iter()
        .filter(|c| (400..500).contains(&c.status))
        .collect();
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = admin
            .ok(
                Method::GET,
                &format!("/api/v1/logs?{range}&status=4xx&limit=7{cursor}"),
                None,
                200,
            )
            .await;
        for item in page["items"].as_array().expect("items") {
            seen.push((
                item["ts"].as_i64().expect("ts"),
                item["id"].as_i64().expect("id"),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), expected_4xx.len());
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        seen.len(),
        "no call twice"
    );
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first");
    // Text search matches `%` literally.
    let found = admin
        .ok(
            Method::GET,
            &format!("/api/v1/logs?{range}&q=100%25_off&limit=500"),
            None,
            200,
        )
        .await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(15));
    let one = found["items"][0]["id"].as_i64().expect("id");
    let detail = admin
        .ok(Method::GET, &format!("/api/v1/logs/{one}"), None, 200)
        .await;
    assert!(
        detail["path"]
            .as_str()
            .is_some_and(|p| p.contains("100%_off"))
    );

    // Exports: CSV rows, JSON array and NDJSON lines agree with the events.
    let csv = admin
        .raw(
            Method::GET,
            &format!("/api/v1/usage/export?{range}&format=csv"),
            None,
        )
        .await
        .text()
        .await
        .expect("csv");
    assert_eq!(csv.lines().count(), 151, "header + one line per call");
    let json_export: Value = serde_json::from_str(
        &admin
            .raw(
                Method::GET,
                &format!("/api/v1/usage/export?{range}&format=json&model=gpt-4o-mini"),
                None,
            )
            .await
            .text()
            .await
            .expect("json"),
    )
    .expect("valid JSON");
    assert_eq!(
        json_export.as_array().map(Vec::len),
        Some(
            calls
                .iter()
                .filter(|c| c.model == Some("gpt-4o-mini"))
                .count()
        )
    );
    let nd = admin
        .raw(
            Method::GET,
            &format!("/api/v1/usage/export?{range}&format=ndjson&dataset=top&by=route"),
            None,
        )
        .await
        .text()
        .await
        .expect("ndjson");
    assert!(nd.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));

    // Seed paths.
    let trend = admin
        .ok(Method::GET, "/api/console/usage-trend?days=7", None, 200)
        .await;
    assert_eq!(trend["data"].as_array().map(Vec::len), Some(7));
    let day_calls: i64 = trend["data"]
        .as_array()
        .expect("days")
        .iter()
        .map(|d| d["calls"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(day_calls, 150);
    let stats = admin.ok(Method::GET, "/api/usage/stats", None, 200).await;
    assert_eq!(stats["hourly_trend"].as_array().map(Vec::len), Some(24));
    admin
        .ok(
            Method::PUT,
            "/api/v1/quotas/instance",
            Some(json!({"tokens": 100_000})),
            200,
        )
        .await;
    let card = admin.ok(Method::GET, "/api/console/stats", None, 200).await;
    assert_eq!(card["code"], 0);
    assert_eq!(card["data"]["total_tokens"], 100_000);
    let used = card["data"]["used_tokens"].as_i64().expect("used");
    assert!(used >= tokens, "this month's use includes these calls");
    assert_eq!(
        card["data"]["remaining_tokens"].as_i64(),
        Some((100_000 - used).max(0))
    );

    // Bad input: a 422 naming the parameter, and nothing else.
    for (path, field) in [
        ("/api/console/usage-trend?days=3", "days"),
        ("/api/console/usage-trend?days=91", "days"),
        (
            &format!("/api/v1/usage/summary?from={to}&to={from}") as &str,
            "from",
        ),
        ("/api/v1/usage/summary?colour=red", "colour"),
        ("/api/v1/usage/top?limit=100000", "limit"),
        ("/api/v1/usage/series?range=30d&bucket=hour", "bucket"),
        ("/api/v1/logs?status=7xx", "status"),
        ("/api/v1/logs?cursor=garbage", "cursor"),
        ("/api/v1/usage/export?format=xml", "format"),
    ] {
        let (status, err) = admin.call(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {err}");
        assert_eq!(err["error"]["field"], field, "{path}: {err}");
    }
}
both_backends!(usage_answers_match_the_events);
