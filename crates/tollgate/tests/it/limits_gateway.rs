//! Limits enforced by the gateway of the real binary: rate, concurrency and budget refusals with
//! their codes, `Retry-After` and `x-ratelimit-*` headers, model allow-lists, Anthropic-shaped
//! refusals, refused calls in the call logs, budgets surviving a restart, two instances sharing
//! one Redis exactly, and both Redis fail modes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tollgate_limits::{Enforcement, Limit, LimitKind, Period, Scope, Window, default_alert_at};
use tollgate_mock_upstream::MockUpstream;
use tollgate_store::{LimitOwner, Store};

use crate::both_backends;
use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{Backend, Server, TestDb, add_key, add_route, base_env, client, command};

pub(crate) const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Stores a hard limit on `owner`; returns its id.
pub(crate) async fn put_limit(store: &dyn Store, owner: LimitOwner, kind: LimitKind) -> i64 {
    let limit = Limit {
        id: 1,
        scope: Scope::Instance,
        kind,
        enforcement: Enforcement::Hard,
        alert_at: default_alert_at(),
        include_reported: false,
    };
    store
        .create_limit(owner, &limit.spec_json(None), "test")
        .await
        .expect("create limit")
        .id
}

/// A mock upstream, a store on `backend` with an `openai` route `/oai` to it, and one key named
/// `name`: what most limit tests start from.
pub(crate) async fn openai_key(
    backend: Backend,
    name: &str,
) -> (MockUpstream, TestDb, i64, String, Arc<dyn Store>) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    add_route(
        &db,
        "oai",
        "/oai",
        &mock.url(),
        &["--strip-prefix", "--kind", "openai"],
    );
    let (key_id, key) = add_key(&db, name, &[]);
    let store = db.open().await;
    (mock, db, key_id, key, store)
}

/// Limit `limit_id` as the limits API lists it for key `key_id`, with its current use.
pub(crate) async fn listed_limit(admin: &Api, key_id: i64, limit_id: i64) -> Value {
    let limits = admin
        .ok(
            Method::GET,
            &format!("/api/v1/limits?scope=key&id={key_id}"),
            None,
            200,
        )
        .await;
    limits
        .as_array()
        .or_else(|| limits["limits"].as_array())
        .and_then(|l| l.iter().find(|x| x["id"] == limit_id).cloned())
        .unwrap_or_else(|| panic!("limit {limit_id} not listed: {limits}"))
}

/// An OpenAI chat call for `model` asking for one completion token; the mock reports `prompt`
/// and `completion` tokens.
pub(crate) async fn chat(
    http: &reqwest::Client,
    server: &Server,
    key: &str,
    model: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = http
        .post(server.url("/oai/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({
            "model": model,
            "max_tokens": 1,
            "messages": [{"role": "user", "content": "hi"}],
        }));
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    req.send().await.expect("send")
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Checks a refusal's status, code and `Retry-After`; returns its body.
async fn refused(resp: reqwest::Response, status: u16, code: &str, retry_after: bool) -> Value {
    assert_eq!(resp.status().as_u16(), status, "{code}");
    if retry_after {
        let wait: u64 = header(&resp, "retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{code} without a Retry-After"));
        assert!(wait >= 1, "Retry-After {wait}");
    }
    let body: Value = resp.json().await.expect("json refusal");
    let got = body["error"]["code"].as_str().unwrap_or_default();
    assert_eq!(got, code, "{body}");
    body
}

async fn embedded_limits_refuse_with_codes_and_headers(backend: Backend) {
    let (mock, db, rate_id, rate_key, store) = openai_key(backend, "rate").await;
    let ant = add_route(
        &db,
        "ant",
        "/ant",
        &mock.url(),
        &["--strip-prefix", "--kind", "anthropic"],
    );
    let (slow_id, slow_key) = add_key(&db, "slow", &[]);
    let (budget_id, budget_key) = add_key(&db, "budget", &[]);
    let (models_id, models_key) = add_key(&db, "models", &[]);
    let (_, free_key) = add_key(&db, "free", &[]);
    put_limit(
        &*store,
        LimitOwner::Key(rate_id),
        LimitKind::Requests {
            per: Window::Minute,
            max: 3,
        },
    )
    .await;
    put_limit(
        &*store,
        LimitOwner::Key(slow_id),
        LimitKind::Concurrency { max: 1 },
    )
    .await;
    put_limit(
        &*store,
        LimitOwner::Key(budget_id),
        LimitKind::TokenBudget {
            max: 100,
            period: Period::Month,
        },
    )
    .await;
    let ant_id = ant["id"].as_i64().expect("route id");
    put_limit(
        &*store,
        LimitOwner::Route(ant_id),
        LimitKind::Requests {
            per: Window::Hour,
            max: 1,
        },
    )
    .await;
    store
        .set_key_models(models_id, Some("gpt-4o*, mock-*"))
        .await
        .expect("models");
    let env = console_env();
    let mut server = Server::start(&db, &env).await;
    let http = client();

    // 3 requests a minute: 3 × 200 with the remaining count going down, then 429.
    for remaining in (0..3).rev() {
        let resp = chat(&http, &server, &rate_key, "gpt-4o", &[]).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header(&resp, "x-ratelimit-limit-requests"), Some("3"));
        assert_eq!(
            header(&resp, "x-ratelimit-remaining-requests"),
            Some(remaining.to_string().as_str())
        );
        assert!(header(&resp, "x-ratelimit-reset-requests").is_some());
    }
    let body = refused(
        chat(&http, &server, &rate_key, "gpt-4o", &[]).await,
        429,
        "rate_limited",
        true,
    )
    .await;
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    // A key without limits gets no rate headers and is never refused.
    for _ in 0..5 {
        let resp = chat(&http, &server, &free_key, "gpt-4o", &[]).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(header(&resp, "x-ratelimit-limit-requests").is_none());
    }

    // Concurrency 1: a second call while a slow one is in flight is refused; the lease goes
    // back when the slow call ends.
    let slow = {
        let (http, url, key) = (
            http.clone(),
            server.url("/oai/v1/chat/completions"),
            slow_key.clone(),
        );
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(key)
                .header("x-mock-latency-ms", "1500")
                .json(&json!({"model": "gpt-4o", "messages": []}))
                .send()
                .await
                .expect("slow call")
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    refused(
        chat(&http, &server, &slow_key, "gpt-4o", &[]).await,
        429,
        "concurrency_limited",
        false,
    )
    .await;
    assert_eq!(slow.await.expect("join"), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let resp = chat(&http, &server, &slow_key, "gpt-4o", &[]).await;
        if resp.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the lease was not released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Budget 100 tokens, 40 per call as the mock reports, estimates of a few tokens: calls are
    // admitted while settled + reserved + estimate fit, so the third (which crosses to 120) is
    // the last admitted.
    let usage = [
        ("x-mock-prompt-tokens", "30"),
        ("x-mock-completion-tokens", "10"),
    ];
    for n in 0..3 {
        let resp = chat(&http, &server, &budget_key, "gpt-4o", &usage).await;
        assert_eq!(resp.status(), StatusCode::OK, "budget call {n}");
        assert_eq!(header(&resp, "x-ratelimit-limit-tokens"), Some("100"));
        // Settling happens as the response ends; give it a moment before the next call.
        resp.bytes().await.expect("body");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    refused(
        chat(&http, &server, &budget_key, "gpt-4o", &usage).await,
        429,
        "budget_exceeded",
        true,
    )
    .await;

    // Model allow-list: another model is refused before it leaves, naming it.
    let upstream_calls = mock.request_count();
    let body = refused(
        chat(&http, &server, &models_key, "claude-3-opus", &[]).await,
        403,
        "model_not_allowed",
        false,
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("claude-3-opus")),
        "{body}"
    );
    assert_eq!(
        mock.request_count(),
        upstream_calls,
        "nothing was forwarded"
    );
    let resp = chat(&http, &server, &models_key, "GPT-4o-mini", &[]).await;
    assert_eq!(resp.status(), StatusCode::OK);

    // Anthropic route: the refusal has Anthropic's error shape.
    let anthropic = |http: reqwest::Client, url: String, key: String| async move {
        http.post(url)
            .header("x-api-key", key)
            .json(&json!({"model": "claude-3", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .expect("anthropic call")
    };
    let url = server.url("/ant/v1/messages");
    let first = anthropic(http.clone(), url.clone(), free_key.clone()).await;
    assert_eq!(first.status(), StatusCode::OK);
    let second = anthropic(http.clone(), url, free_key.clone()).await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&second, "retry-after").is_some());
    let body: Value = second.json().await.expect("json");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );

    // Refusals are in the call logs with their status and code, and counted in the metrics.
    server.wait_flushed().await;
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, page) = admin
        .call(
            Method::GET,
            &format!("/api/v1/logs?key_id={rate_id}&status=429"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{page}");
    assert!(
        items[0]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("rate_limited")),
        "{page}"
    );
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(r#"tollgate_limit_refusals_total{code="rate_limited",scope="key"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tollgate_limit_refusals_total{code="budget_exceeded",scope="key"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains("tollgate_limit_admit_duration_seconds_count{backend=\"local\"}"));

    // A restart rebuilds the month's spend from the store: the budget stays spent.
    assert!(server.stop().await, "clean stop");
    let server = Server::start(&db, &env).await;
    refused(
        chat(&http, &server, &budget_key, "gpt-4o", &usage).await,
        429,
        "budget_exceeded",
        true,
    )
    .await;
    drop(server);
    mock.shutdown().await;
}
both_backends!(embedded_limits_refuse_with_codes_and_headers);

async fn limits_change_without_a_restart(backend: Backend) {
    let (mock, db, key_id, key, store) = openai_key(backend, "k").await;
    let server = Server::start(&db, &[]).await;
    let http = client();
    assert_eq!(
        chat(&http, &server, &key, "gpt-4o", &[]).await.status(),
        StatusCode::OK
    );
    put_limit(
        &*store,
        LimitOwner::Key(key_id),
        LimitKind::Requests {
            per: Window::Minute,
            max: 1,
        },
    )
    .await;
    store
        .set_key_models(key_id, Some("gpt-*"))
        .await
        .expect("models");
    // Within a second the gateway has the new limit and allow-list.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let resp = chat(&http, &server, &key, "o3", &[]).await;
        if resp.status() == StatusCode::FORBIDDEN {
            break;
        }
        assert!(Instant::now() < deadline, "allow-list not loaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        chat(&http, &server, &key, "gpt-4o", &[]).await.status(),
        StatusCode::OK
    );
    refused(
        chat(&http, &server, &key, "gpt-4o", &[]).await,
        429,
        "rate_limited",
        true,
    )
    .await;
    drop(server);
    mock.shutdown().await;
}
both_backends!(limits_change_without_a_restart);

/// Environment of one instance sharing Redis under `namespace`, with its own data folder.
pub(crate) fn redis_env<'a>(
    db: &TestDb,
    namespace: &'a str,
    data: &'a str,
    redis_url: &'a str,
    fail_mode: &'a str,
) -> Vec<(&'a str, String)> {
    vec![
        ("TOLLGATE_REDIS_URL", redis_url.to_owned()),
        ("TOLLGATE_LIMITS__NAMESPACE", namespace.to_owned()),
        ("TOLLGATE_LIMITS__FAIL_MODE", fail_mode.to_owned()),
        (
            "TOLLGATE_DATA_DIR",
            db.dir.path().join(data).display().to_string(),
        ),
    ]
}

pub(crate) async fn start_with(db: &TestDb, env: &[(&str, String)]) -> Server {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start(db, &pairs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_a_rate_limit_exactly_through_redis() {
    let (mock, db, key_id, key, store) = openai_key(Backend::Postgres, "shared").await;
    put_limit(
        &*store,
        LimitOwner::Key(key_id),
        LimitKind::Requests {
            per: Window::Minute,
            max: 10,
        },
    )
    .await;
    let namespace = format!("it-{}", uuid::Uuid::new_v4().simple());
    let a = start_with(
        &db,
        &redis_env(&db, &namespace, "a", REDIS_URL, "fail_open"),
    )
    .await;
    let b = start_with(
        &db,
        &redis_env(&db, &namespace, "b", REDIS_URL, "fail_open"),
    )
    .await;
    let servers = Arc::new([a, b]);
    let http = client();
    let start = Arc::new(tokio::sync::Barrier::new(40));
    let mut clients = Vec::new();
    for n in 0..40 {
        let (servers, http, key, start) = (
            Arc::clone(&servers),
            http.clone(),
            key.clone(),
            Arc::clone(&start),
        );
        clients.push(tokio::spawn(async move {
            start.wait().await;
            let server = &servers[n % 2];
            chat(&http, server, &key, "gpt-4o", &[]).await.status()
        }));
    }
    let mut ok = 0;
    let mut limited = 0;
    for c in clients {
        match c.await.expect("join") {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, limited), (10, 30), "exactly 10 of 40 admitted");
    assert_eq!(mock.request_count(), 10, "exactly 10 forwarded");
    for server in servers.iter() {
        let metrics = server.metrics().await;
        assert!(metrics.contains("tollgate_limit_admit_duration_seconds_count{backend=\"redis\"}"));
        assert!(metrics.contains("tollgate_limits_degraded 0"), "{metrics}");
    }
    drop(servers);
    mock.shutdown().await;
}

/// A TCP proxy to Redis that the test can cut: afterwards every connection is closed and new
/// ones are refused.
struct CuttableProxy {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { addr, task }
    }

    /// Drops the listener and every connection.
    fn cut(&self) {
        self.task.abort();
    }
}

async fn redis_cut_mid_run(fail_mode: &str) -> (StatusCode, Value, String, Value) {
    let (mock, db, key_id, key, store) = openai_key(Backend::Sqlite, "k").await;
    put_limit(
        &*store,
        LimitOwner::Key(key_id),
        LimitKind::Requests {
            per: Window::Minute,
            max: 100,
        },
    )
    .await;
    let proxy = CuttableProxy::start(SocketAddr::from(([127, 0, 0, 1], 6379))).await;
    let url = format!("redis://{}", proxy.addr);
    let namespace = format!("it-{}", uuid::Uuid::new_v4().simple());
    let server = start_with(&db, &redis_env(&db, &namespace, "data", &url, fail_mode)).await;
    let http = client();
    let resp = chat(&http, &server, &key, "gpt-4o", &[]).await;
    assert_eq!(resp.status(), StatusCode::OK, "with Redis reachable");
    assert_eq!(header(&resp, "x-ratelimit-remaining-requests"), Some("99"));
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resp = chat(&http, &server, &key, "gpt-4o", &[]).await;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let metrics = server.metrics().await;
    let health: Value = client()
        .get(server.console_url("/health/detailed"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("health json");
    drop(server);
    mock.shutdown().await;
    (status, body, metrics, health)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_fail_open_admits_and_reports_degraded() {
    let (status, body, metrics, health) = redis_cut_mid_run("fail_open").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(metrics.contains("tollgate_limits_degraded 1"), "{metrics}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(
        health["components"]["limits"]["status"], "degraded",
        "{health}"
    );
    assert_eq!(
        health["components"]["limits"]["backend"], "redis",
        "{health}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_fail_closed_refuses_with_503() {
    let (status, body, metrics, _) = redis_cut_mid_run("fail_closed").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "limits_unavailable", "{body}");
    assert!(
        metrics
            .contains(r#"tollgate_limit_refusals_total{code="limits_unavailable",scope="none"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_redis_url_or_zone_stops_the_start_naming_the_key() {
    let db = TestDb::new(Backend::Sqlite).await;
    for (extra, named) in [
        (
            ("TOLLGATE_REDIS_URL", "redis://127.0.0.1:1"),
            "limits.redis_url",
        ),
        (
            ("TOLLGATE_REDIS_URL", "http://127.0.0.1:6379"),
            "limits.redis_url",
        ),
        (
            ("TOLLGATE_LIMITS__TIME_ZONE", "Mars/Olympus"),
            "limits.time_zone",
        ),
    ] {
        let env = base_env(&db, &[extra]);
        let out = tokio::task::spawn_blocking({
            let cwd = db.dir.path().to_owned();
            move || command(&env, &cwd).arg("serve").output().expect("run")
        })
        .await
        .expect("join");
        assert!(!out.status.success(), "{extra:?} started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(named), "{extra:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_settle_and_a_client_hang_up_releases_its_slot() {
    let (mock, db, key_id, key, store) = openai_key(Backend::Sqlite, "stream").await;
    put_limit(
        &*store,
        LimitOwner::Key(key_id),
        LimitKind::Concurrency { max: 1 },
    )
    .await;
    put_limit(
        &*store,
        LimitOwner::Key(key_id),
        LimitKind::TokenBudget {
            max: 1000,
            period: Period::Day,
        },
    )
    .await;
    let server = Server::start(&db, &[]).await;
    let http = client();
    let stream = |chunks: &'static str, delay: &'static str| {
        http.post(server.url("/oai/v1/chat/completions"))
            .bearer_auth(&key)
            .header("x-mock-prompt-tokens", "300")
            .header("x-mock-completion-tokens", "100")
            .header("x-mock-chunks", chunks)
            .header("x-mock-chunk-delay-ms", delay)
            .json(&json!({
                "model": "gpt-4o",
                "max_tokens": 1,
                "stream": true,
                "messages": [{"role": "user", "content": "hi"}],
            }))
            .send()
    };

    // A whole stream settles to the usage its last event reports (400 tokens).
    let resp = stream("3", "0").await.expect("stream");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "x-ratelimit-limit-tokens"), Some("1000"));
    resp.bytes().await.expect("stream body");

    // A client that hangs up mid-stream: the slot comes back at once.
    let mut resp = stream("50", "200").await.expect("stream");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.chunk().await.expect("first chunk").is_some());
    drop(resp);
    let deadline = Instant::now() + Duration::from_secs(3);
    let resp = loop {
        let resp = chat(&http, &server, &key, "gpt-4o", &[]).await;
        if resp.status() == StatusCode::OK {
            break resp;
        }
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            Instant::now() < deadline,
            "the hung-up stream still holds the concurrency slot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The settled stream's 400 tokens count against the budget.
    let remaining: u64 = header(&resp, "x-ratelimit-remaining-tokens")
        .and_then(|v| v.parse().ok())
        .expect("remaining tokens");
    assert!(remaining <= 600, "remaining {remaining}");
    resp.bytes().await.expect("body");
    server.wait_flushed().await;
    let events = crate::harness::wait_events(&*store, 3).await;
    assert!(
        events.iter().any(|e| e.status == 499),
        "the hang-up is recorded as 499"
    );
    drop(server);
    mock.shutdown().await;
}

/// A cost budget priced from the configured price table: 40 tokens at $0.01 each cost $0.40 a
/// call, so against $1.00 the third call (which crosses) is the last admitted; the spend
/// survives a restart; the limits API shows it (in micro-USD, like the ceiling).
async fn a_cost_budget_refuses_once_spent_from_the_price_table(backend: Backend) {
    let (mock, db, key_id, key, store) = openai_key(backend, "priced").await;
    let limit_id = put_limit(
        &*store,
        LimitOwner::Key(key_id),
        LimitKind::CostBudget {
            max_micro_usd: 1_000_000,
            period: Period::Month,
        },
    )
    .await;
    let mut env = console_env();
    // $10,000 per million tokens, in and out: one cent a token.
    env.extend([
        ("TOLLGATE_PRICES__GPT-4O__INPUT", "10000"),
        ("TOLLGATE_PRICES__GPT-4O__OUTPUT", "10000"),
    ]);
    let mut server = Server::start(&db, &env).await;
    let http = client();
    let usage = [
        ("x-mock-prompt-tokens", "30"),
        ("x-mock-completion-tokens", "10"),
    ];
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let resp = chat(&http, &server, &key, "gpt-4o", &usage).await;
        statuses.push(resp.status().as_u16());
        resp.bytes().await.expect("body");
    }
    assert_eq!(
        statuses,
        [200, 200, 200],
        "$0.40, $0.80, then $1.20: the crossing call passes"
    );
    let body = refused(
        chat(&http, &server, &key, "gpt-4o", &usage).await,
        429,
        "budget_exceeded",
        true,
    )
    .await;
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    // The limits API reports the spend in dollars.
    let admin = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let listed = listed_limit(&admin, key_id, limit_id).await;
    assert_eq!(listed["kind"]["type"], "cost_budget", "{listed}");
    assert_eq!(
        listed["usage"]["used"], 1_200_000,
        "$1.20 spent, in micro-USD like the ceiling: {listed}"
    );
    assert_eq!(listed["usage"]["remaining"], 0, "{listed}");

    // The spend is rebuilt from the store at start.
    assert!(server.stop().await, "clean stop");
    let server = Server::start(&db, &env).await;
    refused(
        chat(&http, &server, &key, "gpt-4o", &usage).await,
        429,
        "budget_exceeded",
        true,
    )
    .await;
    drop(server);
    mock.shutdown().await;
}
both_backends!(a_cost_budget_refuses_once_spent_from_the_price_table);

/// A call is first checked with its prompt's byte count (a bound on its tokens); where that bound
/// does not fit a budget, the prompt is counted with the vocabulary and the call decided again,
/// so a long prompt is admitted exactly where its tokens fit, and refused where they do not.
async fn a_prompt_is_counted_where_its_byte_bound_does_not_fit(backend: Backend) {
    let (mock, db, key_id, key, store) = openai_key(backend, "long").await;
    put_limit(
        &*store,
        LimitOwner::Key(key_id),
        LimitKind::TokenBudget {
            max: 300,
            period: Period::Month,
        },
    )
    .await;
    let server = Server::start(&db, &console_env()).await;
    let http = client();
    // 600 bytes, but 100 tokens in any of the BPE vocabularies (" hello" is one token), and
    // 150 before the vocabulary loads (a quarter of the bytes).
    let prompt = " hello".repeat(100);
    let call = |max_tokens: u64| {
        http.post(server.url("/oai/v1/chat/completions"))
            .bearer_auth(&key)
            .header("x-mock-prompt-tokens", "100")
            .header("x-mock-completion-tokens", "10")
            .json(&json!({
                "model": "gpt-4o",
                "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": prompt}],
            }))
            .send()
    };
    // 600 + 10 > 300, but 100 (or 150) + 10 fits: admitted.
    let resp = call(10).await.expect("send");
    assert_eq!(resp.status(), StatusCode::OK, "the exact count fits");
    resp.bytes().await.expect("body");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // 110 settled; 110 + 100 (or 150) + 30 fits.
    let resp = call(30).await.expect("send");
    assert_eq!(resp.status(), StatusCode::OK, "the exact count still fits");
    resp.bytes().await.expect("body");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // 220 settled; 220 + 100 + 10 = 330 does not fit, counted exactly or not.
    refused(call(10).await.expect("send"), 429, "budget_exceeded", true).await;
    drop(server);
    mock.shutdown().await;
}
both_backends!(a_prompt_is_counted_where_its_byte_bound_does_not_fit);
