//! Usage in Prometheus and traces, through the real binary: calls to the mock upstream (an LLM
//! route with a priced model, JSON and a stream), a reported event, then `/metrics` against the
//! analytics API for the same calls; `promtool check metrics` on the live exposition; the
//! Grafana dashboard's series against the live names; the cardinality caps; and OpenTelemetry
//! spans received by a small OTLP/HTTP receiver, with the `traceparent` the upstream got.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest as _;
use tollgate_mock_upstream::MockUpstream;

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{Backend, Server, TestDb, add_key, add_route, client};

/// A client's trace context: version, trace id, parent span id, sampled.
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN_ID: &str = "b7ad6b7169203331";

/// One sample of the exposition.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// The samples of a Prometheus text exposition (label values here hold no `",`).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("sample value");
            let (name, labels) = match series.split_once('{') {
                None => (series, BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("closing brace");
                    let labels = body
                        .split("\",")
                        .filter(|p| !p.is_empty())
                        .map(|pair| {
                            let (k, v) = pair.split_once("=\"").expect("label");
                            (k.to_owned(), v.trim_end_matches('"').to_owned())
                        })
                        .collect();
                    (name, labels)
                }
            };
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().expect("number"),
            }
        })
        .collect()
}

/// The sum of a metric's samples whose labels include `filter`.
fn sum(samples: &[Sample], name: &str, filter: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            filter
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// A metric's sums by one label.
fn by_label(
    samples: &[Sample],
    name: &str,
    label: &str,
    filter: &[(&str, &str)],
) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == name) {
        if filter
            .iter()
            .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            && let Some(value) = s.labels.get(label)
        {
            *out.entry(value.clone()).or_insert(0.0) += s.value;
        }
    }
    out
}

/// Runs `promtool check metrics` on an exposition; fails (never skips) without promtool.
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool is needed (Debian package `prometheus`, see scripts/test.sh): {e}")
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- exposition ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One chat completion through the gateway's `llm` route.
async fn chat(
    http: &reqwest::Client,
    server: &Server,
    key: &str,
    model: &str,
    stream: bool,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut body = json!({
        "model": model,
        "messages": [{"role": "user", "content": "hello"}],
    });
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    let mut req = http
        .post(server.url("/llm/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.expect("call")
}

/// Every `tollgate_…` series an expression of the dashboard names.
fn dashboard_series(dashboard: &Value) -> BTreeSet<String> {
    let mut exprs = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr" | "definition", Value::String(e)) => out.push(e.clone()),
                        ("query", Value::String(e)) if e.contains("tollgate_") => {
                            out.push(e.clone());
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    walk(dashboard, &mut exprs);
    let mut names = BTreeSet::new();
    for e in &exprs {
        let mut rest = e.as_str();
        while let Some(at) = rest.find("tollgate_") {
            let tail = &rest[at..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    names
}

async fn usage_series_equal_the_analytics_totals(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    add_route(
        &db,
        "llm",
        "/llm",
        &mock.url(),
        &["--strip-prefix", "--kind", "openai"],
    );
    let (_, key) = add_key(&db, "metered", &[]);
    let mut env = console_env();
    // $150 and $600 per million tokens: the cost is not a round number.
    env.extend([
        ("TOLLGATE_PRICES__GPT-4O-MINI__INPUT", "150"),
        ("TOLLGATE_PRICES__GPT-4O-MINI__OUTPUT", "600"),
    ]);
    let server = Server::start(&db, &env).await;
    let http = client();
    let usage = [
        ("x-mock-prompt-tokens", "100"),
        ("x-mock-completion-tokens", "20"),
        ("x-mock-cached-tokens", "10"),
        ("x-mock-reasoning-tokens", "5"),
    ];
    // Traces are off: a client's traceparent goes to the upstream untouched.
    let traceparent = format!("00-{TRACE_ID}-{CLIENT_SPAN_ID}-01");
    for _ in 0..3 {
        let resp = chat(
            &http,
            &server,
            &key,
            "gpt-4o-mini",
            false,
            &[&usage[..], &[("traceparent", traceparent.as_str())]].concat(),
        )
        .await;
        assert_eq!(resp.status(), 200);
        resp.bytes().await.expect("body");
    }
    let resp = chat(
        &http,
        &server,
        &key,
        "gpt-4o-mini",
        true,
        &[
            ("x-mock-prompt-tokens", "40"),
            ("x-mock-completion-tokens", "8"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    resp.bytes().await.expect("stream");
    let resp = chat(&http, &server, &key, "unpriced-model", false, &[]).await;
    assert_eq!(resp.status(), 200);
    resp.bytes().await.expect("body");
    let resp = chat(
        &http,
        &server,
        &key,
        "gpt-4o-mini",
        false,
        &[("x-mock-status", "500")],
    )
    .await;
    assert_eq!(resp.status(), 500);
    resp.bytes().await.expect("body");
    let passed: Vec<_> = mock
        .requests()
        .iter()
        .filter_map(|r| r.header("traceparent").map(str::to_owned))
        .collect();
    assert_eq!(
        passed,
        vec![traceparent.clone(); 3],
        "passed through untouched"
    );

    // One reported call, through ingest: counted under its own source.
    let hash = hex::encode(sha2::Sha256::digest(key.as_bytes()));
    let now = tollgate_core::time::now_ms();
    crate::console::ingest(
        &server,
        &[
            json!({"id": "reported-1", "ts": now, "key_hash": hash, "method": "POST",
                 "path": "/v1/chat", "status": 200, "latency_ms": 12.5, "model": "gpt-4o-mini",
                 "prompt_tokens": 7, "completion_tokens": 3, "cost_usd": 0.25}),
        ],
    )
    .await;
    server.wait_flushed().await;

    let text = server.metrics().await;
    let samples = parse(&text);
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let s = admin
        .ok(Method::GET, "/api/v1/usage/summary?range=1h", None, 200)
        .await;
    assert_eq!(s["calls"], 7, "six gateway calls and one report: {s}");
    let calls = sum(&samples, "tollgate_usage_calls_total", &[]);
    assert_eq!(Some(calls), s["calls"].as_f64(), "calls\n{text}");
    let errors = sum(
        &samples,
        "tollgate_usage_calls_total",
        &[("status_class", "5xx")],
    ) + sum(
        &samples,
        "tollgate_usage_calls_total",
        &[("status_class", "4xx")],
    );
    assert_eq!(Some(errors), s["errors"].as_f64(), "errors\n{text}");
    for (kind, field) in [
        ("prompt", "prompt_tokens"),
        ("completion", "completion_tokens"),
        ("cached", "cached_tokens"),
        ("reasoning", "reasoning_tokens"),
    ] {
        let got = sum(&samples, "tollgate_usage_tokens_total", &[("kind", kind)]);
        assert_eq!(Some(got), s[field].as_f64(), "{kind} tokens\n{text}");
    }
    assert_eq!(
        s["prompt_tokens"].as_i64(),
        Some(3 * 100 + 40 + 11 + 7),
        "what the mock was told to report (the failed call reports none): {s}"
    );
    let cost = sum(&samples, "tollgate_usage_cost_usd_total", &[]);
    let analytics_cost = s["cost_usd"].as_f64().expect("cost");
    assert!(
        (cost - analytics_cost).abs() < 1e-6,
        "cost: /metrics {cost}, analytics {analytics_cost}"
    );
    assert!(
        analytics_cost > 0.25,
        "the priced calls cost something: {s}"
    );

    // By model, against the analytics API's top list.
    let top = admin
        .ok(
            Method::GET,
            "/api/v1/usage/top?range=1h&by=model&limit=100",
            None,
            200,
        )
        .await;
    let calls_by_model = by_label(&samples, "tollgate_usage_calls_total", "model", &[]);
    let tokens_by_model = by_label(
        &samples,
        "tollgate_usage_tokens_total",
        "model",
        &[("kind", "prompt")],
    );
    for item in top.as_array().expect("top") {
        let model = item["name"].as_str().expect("name");
        assert_eq!(
            calls_by_model.get(model).copied(),
            item["calls"].as_f64(),
            "{model} calls"
        );
        assert_eq!(
            tokens_by_model.get(model).copied(),
            item["prompt_tokens"].as_f64(),
            "{model} prompt tokens"
        );
    }
    assert_eq!(calls_by_model.len(), 2, "{calls_by_model:?}");

    // Sources, teams and the route's latency.
    assert_eq!(
        sum(
            &samples,
            "tollgate_usage_calls_total",
            &[("source", "ingest")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &samples,
            "tollgate_usage_calls_total",
            &[("source", "gateway"), ("route", "llm")]
        ),
        6.0
    );
    // The gateway's calls carry the key's team. A report naming its key by hash is counted
    // before the store resolves the hash, so its team is `none` here (the analytics attribute
    // it).
    let teams = by_label(
        &samples,
        "tollgate_usage_calls_total",
        "team_id",
        &[("source", "gateway")],
    );
    assert_eq!(teams.len(), 1, "the key's team: {teams:?}");
    assert!(
        !teams.contains_key("none") && !teams.contains_key("other"),
        "{teams:?}"
    );
    assert_eq!(
        sum(
            &samples,
            "tollgate_usage_calls_total",
            &[("source", "ingest"), ("team_id", "none")]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &samples,
            "tollgate_gateway_call_duration_seconds_count",
            &[("route", "llm")]
        ),
        6.0,
        "gateway calls only: a report's latency was measured elsewhere"
    );
    assert!(
        text.contains("tollgate_gateway_call_duration_seconds_bucket{le=\"0.0001\",route=\"llm\"}"),
        "sub-millisecond buckets\n{text}"
    );
    assert!(
        !text.contains("tollgate_usage_key_"),
        "per-key series are opt-in"
    );
    assert!(!text.contains(&key), "the key never shows");
    assert_eq!(sum(&samples, "tollgate_usage_spool_events", &[]), 0.0);
    promtool_check(&text);

    // The dashboard names only series that exist, and reads its data source from a variable.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/tollgate.json"
    );
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("JSON");
    // Every family the exposition declares (one without samples yet, like refusals, too) and
    // every sample's name.
    let mut live: BTreeSet<String> = samples.iter().map(|s| s.name.clone()).collect();
    for declared in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = declared.split_once(' ').expect("TYPE line");
        live.insert(name.to_owned());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                live.insert(format!("{name}{suffix}"));
            }
        }
    }
    let named = dashboard_series(&dashboard);
    assert!(named.len() >= 10, "{named:?}");
    let missing: Vec<&String> = named.iter().filter(|n| !live.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard names series /metrics lacks: {missing:?}"
    );
    for wanted in [
        "tollgate_usage_calls_total",
        "tollgate_usage_tokens_total",
        "tollgate_usage_cost_usd_total",
        "tollgate_gateway_call_duration_seconds_bucket",
        "tollgate_usage_spool_events",
        "tollgate_usage_oldest_unwritten_age_seconds",
    ] {
        assert!(named.contains(wanted), "the dashboard shows {wanted}");
    }
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    assert!(
        variables
            .iter()
            .any(|v| v["type"] == "datasource" && v["name"] == "datasource"),
        "a data source variable"
    );
    let mut panels = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        panels += 1;
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
    }
    assert!(panels >= 12, "{panels} panels");
    drop(server);
    mock.shutdown().await;
}
both_backends!(usage_series_equal_the_analytics_totals);

/// More models and keys than the caps: the later ones are counted under `other`, the analytics
/// still name each; per-key series appear only when asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_values_over_the_cap_are_counted_as_other() {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    add_route(
        &db,
        "llm",
        "/llm",
        &mock.url(),
        &["--strip-prefix", "--kind", "openai"],
    );
    let (first_id, first) = add_key(&db, "first", &[]);
    let (_, second) = add_key(&db, "second", &[]);
    let mut env = console_env();
    env.extend([
        ("TOLLGATE_METRICS__MAX_MODELS", "2"),
        ("TOLLGATE_METRICS__PER_KEY", "true"),
        ("TOLLGATE_METRICS__MAX_KEYS", "1"),
    ]);
    let server = Server::start(&db, &env).await;
    let http = client();
    for (key, model) in [
        (&first, "model-a"),
        (&first, "model-b"),
        (&first, "model-c"),
        (&first, "model-d"),
        (&second, "model-a"),
    ] {
        let resp = chat(&http, &server, key, model, false, &[]).await;
        assert_eq!(resp.status(), 200);
        resp.bytes().await.expect("body");
    }
    server.wait_flushed().await;
    let text = server.metrics().await;
    let samples = parse(&text);
    let calls = by_label(&samples, "tollgate_usage_calls_total", "model", &[]);
    let expected: BTreeMap<String, f64> = [("model-a", 2.0), ("model-b", 1.0), ("other", 2.0)]
        .into_iter()
        .map(|(m, n)| (m.to_owned(), n))
        .collect();
    assert_eq!(calls, expected, "{text}");
    let by_key = by_label(&samples, "tollgate_usage_key_calls_total", "key_id", &[]);
    let expected: BTreeMap<String, f64> = [(first_id.to_string(), 4.0), ("other".to_owned(), 1.0)]
        .into_iter()
        .collect();
    assert_eq!(by_key, expected, "{text}");
    promtool_check(&text);
    // The store keeps every model.
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let top = admin
        .ok(
            Method::GET,
            "/api/v1/usage/top?range=1h&by=model&limit=100",
            None,
            200,
        )
        .await;
    assert_eq!(top.as_array().map(Vec::len), Some(4), "{top}");

    // A cap of 0 is refused, naming the setting, and nothing starts.
    let bad = crate::harness::cli_env(
        &crate::harness::base_env(&db, &[("TOLLGATE_METRICS__MAX_MODELS", "0")]),
        db.dir.path(),
        &["config"],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("metrics.max_models"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    drop(server);
    mock.shutdown().await;
}

/// What the test's OTLP receiver got.
#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    services: Vec<String>,
}

/// A small OTLP/HTTP receiver: `POST /v1/traces` with a protobuf `ExportTraceServiceRequest`.
async fn otlp_receiver() -> (std::net::SocketAddr, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let state = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let state = state.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut received = state.lock().expect("lock");
                for resource in request.resource_spans {
                    if let Some(name) = resource.resource.as_ref().and_then(|r| {
                        r.attributes
                            .iter()
                            .find(|a| a.key == "service.name")
                            .and_then(text_value)
                    }) {
                        received.services.push(name);
                    }
                    for scope in resource.scope_spans {
                        received.spans.extend(scope.spans);
                    }
                }
                (
                    [(http::header::CONTENT_TYPE, "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, received)
}

fn text_value(kv: &KeyValue) -> Option<String> {
    match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn int_attribute(span: &Span, key: &str) -> Option<i64> {
    match attribute(span, key)? {
        any_value::Value::IntValue(v) => Some(*v),
        _ => None,
    }
}

fn str_attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attribute(span, key)? {
        any_value::Value::StringValue(v) => Some(v.as_str()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_traced_to_an_otlp_receiver_and_the_upstream_joins_the_trace() {
    let mock = MockUpstream::start().await.expect("mock");
    let (receiver, received) = otlp_receiver().await;
    let db = TestDb::new(Backend::Sqlite).await;
    add_route(
        &db,
        "llm",
        "/llm",
        &mock.url(),
        &["--strip-prefix", "--kind", "openai"],
    );
    let (key_id, key) = add_key(&db, "traced", &[]);
    let endpoint = format!("http://{receiver}");
    let env = [
        ("TOLLGATE_OTEL__ENDPOINT", endpoint.as_str()),
        ("TOLLGATE_OTEL__SERVICE_NAME", "tollgate-under-test"),
    ];
    let mut server = Server::start(&db, &env).await;
    let http = client();
    let traceparent = format!("00-{TRACE_ID}-{CLIENT_SPAN_ID}-01");
    let resp = chat(
        &http,
        &server,
        &key,
        "gpt-4o-mini",
        false,
        &[
            ("traceparent", traceparent.as_str()),
            ("x-mock-prompt-tokens", "100"),
            ("x-mock-completion-tokens", "20"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    resp.bytes().await.expect("body");

    // The upstream got the same trace, under a span of the gateway's own.
    let upstream_parent = mock
        .requests()
        .iter()
        .find_map(|r| r.header("traceparent").map(str::to_owned))
        .expect("the upstream got a traceparent");
    let parts: Vec<&str> = upstream_parent.split('-').collect();
    assert_eq!(parts.len(), 4, "{upstream_parent}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", TRACE_ID, "01"));
    assert_ne!(parts[2], CLIENT_SPAN_ID, "a new span id");

    // The spans arrive in the exporter's next batch.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (call, upstream) = loop {
        {
            let got = received.lock().expect("lock");
            let call = got.spans.iter().find(|s| s.name == "gateway call").cloned();
            let upstream = got.spans.iter().find(|s| s.name == "upstream").cloned();
            if let (Some(call), Some(upstream)) = (call, upstream) {
                assert!(
                    got.services.iter().all(|s| s == "tollgate-under-test"),
                    "{:?}",
                    got.services
                );
                break (call, upstream);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no spans received in 30 s: {}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(hex::encode(&call.trace_id), TRACE_ID);
    assert_eq!(
        hex::encode(&call.parent_span_id),
        CLIENT_SPAN_ID,
        "the client's span is the parent"
    );
    assert_eq!(hex::encode(&upstream.trace_id), TRACE_ID);
    assert_eq!(
        upstream.parent_span_id, call.span_id,
        "the upstream span is the call's child"
    );
    assert_eq!(
        hex::encode(&upstream.span_id),
        parts[2],
        "the upstream got the upstream span's id"
    );
    assert_eq!(str_attribute(&call, "tollgate.route"), Some("llm"));
    assert_eq!(
        str_attribute(&call, "gen_ai.request.model"),
        Some("gpt-4o-mini")
    );
    assert_eq!(int_attribute(&call, "tollgate.key_id"), Some(key_id));
    assert_eq!(int_attribute(&call, "http.response.status_code"), Some(200));
    assert_eq!(int_attribute(&call, "gen_ai.usage.input_tokens"), Some(100));
    assert_eq!(int_attribute(&call, "gen_ai.usage.output_tokens"), Some(20));
    assert_eq!(
        int_attribute(&upstream, "http.response.status_code"),
        Some(200)
    );
    let everything = format!("{call:?}{upstream:?}");
    assert!(!everything.contains(&key), "the key is never in a span");
    assert!(server.stop().await, "clean stop");
    mock.shutdown().await;
}

/// A collector that is down costs failed exports, never a call nor the shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_never_fails_a_call() {
    let mock = MockUpstream::start().await.expect("mock");
    // A port that was free a moment ago: nothing answers there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let db = TestDb::new(Backend::Sqlite).await;
    add_route(
        &db,
        "llm",
        "/llm",
        &mock.url(),
        &["--strip-prefix", "--kind", "openai"],
    );
    let (_, key) = add_key(&db, "traced", &[]);
    let endpoint = format!("http://{closed}/v1/traces");
    let env = [
        ("TOLLGATE_OTEL__ENDPOINT", endpoint.as_str()),
        ("TOLLGATE_OTEL__TIMEOUT_MS", "500"),
    ];
    let mut server = Server::start(&db, &env).await;
    let http = client();
    let started = Instant::now();
    for _ in 0..20 {
        let resp = chat(&http, &server, &key, "gpt-4o-mini", false, &[]).await;
        assert_eq!(resp.status(), 200);
        resp.bytes().await.expect("body");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "calls took {:?}",
        started.elapsed()
    );
    // Past the exporter's first batch, still answering.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let resp = chat(&http, &server, &key, "gpt-4o-mini", false, &[]).await;
    assert_eq!(resp.status(), 200);
    resp.bytes().await.expect("body");
    server.wait_flushed().await;
    let stop = Instant::now();
    assert!(server.stop().await, "clean stop: {}", server.logs());
    assert!(
        stop.elapsed() < Duration::from_secs(20),
        "stop took {:?}",
        stop.elapsed()
    );
    mock.shutdown().await;
}
