//! Alerts end to end: channels from the CLI and the console, signed deliveries to a real
//! receiver on loopback, retries after a 500 with every attempt listed, once-only delivery with
//! two servers on one store.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};

use crate::console::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, console_env};
use crate::harness::{Backend, Server, TestDb, add_key, base_env, cli_env};

/// What the receiver got: each request's timestamp and signature headers and its body.
#[derive(Clone, Debug)]
struct Hit {
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

#[derive(Clone, Default)]
pub struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Statuses to answer, in order; 200 once they run out.
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }

    fn bodies(&self) -> Vec<Value> {
        self.hits()
            .iter()
            .map(|h| serde_json::from_slice(&h.body).expect("JSON body"))
            .collect()
    }
}

async fn hook(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    r.hits.lock().expect("hits").push(Hit {
        timestamp: header("x-tollgate-timestamp"),
        signature: header("x-tollgate-signature"),
        body: body.to_vec(),
    });
    let status = r.script.lock().expect("script").pop_front().unwrap_or(200);
    StatusCode::from_u16(status).expect("status")
}

/// A webhook receiver on 127.0.0.1 answering `script` in order.
pub async fn receiver(script: &[u16]) -> (SocketAddr, Receiver) {
    let r = Receiver::default();
    r.script.lock().expect("script").extend(script);
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, r)
}

pub const ALLOW_LOOPBACK: (&str, &str) = ("TOLLGATE_UPSTREAM_ALLOWLIST", r#"["127.0.0.1"]"#);

fn run(db: &TestDb, extra: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    cli_env(&base_env(db, extra), db.dir.path(), args)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn cli_channel_and_test_reach_a_signed_receiver(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (addr, received) = receiver(&[]).await;
    let webhook = format!("http://{addr}/hook?token=sekrit");

    // Loopback needs the allow-list; bad input names its flag; nothing is written.
    let refused = run(
        &db,
        &[],
        &[
            "alert",
            "channel",
            "add",
            "--name",
            "ops",
            "--webhook",
            &webhook,
        ],
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("--webhook") && stderr(&refused).contains("loopback"),
        "{}",
        stderr(&refused)
    );
    let refused = run(
        &db,
        &[ALLOW_LOOPBACK],
        &[
            "alert",
            "channel",
            "add",
            "--name",
            "ops",
            "--webhook",
            &webhook,
            "--format",
            "teams",
        ],
    );
    assert!(
        stderr(&refused).contains("--format"),
        "{}",
        stderr(&refused)
    );
    let refused = run(
        &db,
        &[ALLOW_LOOPBACK],
        &[
            "alert",
            "channel",
            "add",
            "--name",
            " ",
            "--webhook",
            &webhook,
        ],
    );
    assert!(stderr(&refused).contains("--name"), "{}", stderr(&refused));
    let refused = run(
        &db,
        &[ALLOW_LOOPBACK],
        &[
            "alert",
            "channel",
            "add",
            "--name",
            "ops",
            "--webhook",
            "ftp://x/y",
        ],
    );
    assert!(
        stderr(&refused).contains("--webhook"),
        "{}",
        stderr(&refused)
    );
    let none = run(&db, &[], &["alert", "channel", "list", "--json"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&none.stdout).expect("json"),
        json!([])
    );

    let added = run(
        &db,
        &[ALLOW_LOOPBACK],
        &[
            "alert",
            "channel",
            "add",
            "--name",
            "ops",
            "--webhook",
            &webhook,
            "--json",
        ],
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let added: Value = serde_json::from_slice(&added.stdout).expect("json");
    let id = added["id"].as_i64().expect("id");
    let secret = added["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let taken = run(
        &db,
        &[ALLOW_LOOPBACK],
        &[
            "alert",
            "channel",
            "add",
            "--name",
            "ops",
            "--webhook",
            &webhook,
        ],
    );
    assert!(
        !taken.status.success() && stderr(&taken).contains("already exists"),
        "{}",
        stderr(&taken)
    );

    // The list shows the origin only: the query's token stays out.
    let list = run(&db, &[], &["alert", "channel", "list", "--json"]);
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        !text.contains("sekrit") && !text.contains(&secret),
        "{text}"
    );
    let list: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(list[0]["url"], format!("http://{addr}/hook"));
    assert_eq!(list[0]["format"], "generic");

    let tested = run(
        &db,
        &[ALLOW_LOOPBACK],
        &["alert", "test", &id.to_string(), "--json"],
    );
    assert!(tested.status.success(), "{}", stderr(&tested));
    let tested: Value = serde_json::from_slice(&tested.stdout).expect("json");
    assert_eq!(tested["status"], "delivered");
    assert_eq!(tested["http_status"], 200);
    let hits = received.hits();
    assert_eq!(hits.len(), 1);
    let now = tollgate_core::time::now_ms() / 1000;
    tollgate_alerts::verify(
        &secret,
        &hits[0].timestamp,
        &hits[0].signature,
        &hits[0].body,
        now,
        300,
    )
    .expect("the delivery verifies with the secret shown once");
    let body = &received.bodies()[0];
    assert_eq!(body["kind"], "test");
    assert!(
        body["dedup_key"]
            .as_str()
            .expect("key")
            .starts_with("test:")
    );

    // The attempt is recorded; removing the channel removes it from the list.
    let store = db.open().await;
    let deliveries = store
        .list_alert_deliveries(Some(id), 10)
        .await
        .expect("deliveries");
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        (deliveries[0].status.as_str(), deliveries[0].http_status),
        ("delivered", Some(200))
    );
    let removed = run(&db, &[], &["alert", "channel", "remove", &id.to_string()]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    let gone = run(&db, &[], &["alert", "channel", "remove", &id.to_string()]);
    assert!(
        stderr(&gone).contains("does not exist"),
        "{}",
        stderr(&gone)
    );
}
crate::both_backends!(cli_channel_and_test_reach_a_signed_receiver);

/// Settings that make the evaluator and retries quick.
fn quick_alerts() -> Vec<(&'static str, &'static str)> {
    let mut env = console_env();
    env.extend([
        ALLOW_LOOPBACK,
        ("TOLLGATE_ALERTS__EVALUATE_INTERVAL_SECS", "1"),
        ("TOLLGATE_ALERTS__RETRY_BASE_MS", "100"),
        ("TOLLGATE_ALERTS__MAX_ATTEMPTS", "3"),
    ]);
    env
}

async fn wait_for<F: Fn(&[Value]) -> bool>(root: &Api, what: &str, done: F) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = root
            .ok(Method::GET, "/api/v1/alerts/deliveries", None, 200)
            .await;
        let deliveries = list["deliveries"].as_array().expect("deliveries").clone();
        if done(&deliveries) {
            return deliveries;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not seen in 30 s: {deliveries:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_failing_receiver_is_retried_and_every_attempt_is_listed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (addr, received) = receiver(&[500, 503]).await;
    let server = Server::start(&db, &quick_alerts()).await;
    let root = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    // Bad input is refused by field, and nothing is written.
    for (body, field) in [
        (
            json!({"name": "", "url": format!("http://{addr}/hook")}),
            "name",
        ),
        (json!({"name": "x", "url": "not a url"}), "url"),
        (
            json!({"name": "x", "url": format!("http://{addr}/hook"), "format": "teams"}),
            "format",
        ),
        (json!({"name": "x", "url": "http://10.1.2.3/hook"}), "url"),
    ] {
        let (status, answer) = root
            .call(Method::POST, "/api/v1/alerts/channels", Some(body))
            .await;
        assert_eq!(status.as_u16(), 422, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let empty = root
        .ok(Method::GET, "/api/v1/alerts/channels", None, 200)
        .await;
    assert_eq!(empty["channels"], json!([]));

    let created = root
        .ok(
            Method::POST,
            "/api/v1/alerts/channels",
            Some(json!({"name": "ops", "url": format!("http://{addr}/hook"), "format": "generic"})),
            201,
        )
        .await;
    let id = created["channel"]["id"].as_i64().expect("id");
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert_eq!(created["channel"]["url"], format!("http://{addr}/hook"));
    let (status, _) = root
        .call(
            Method::POST,
            "/api/v1/alerts/channels",
            Some(json!({"name": "ops", "url": format!("http://{addr}/hook")})),
        )
        .await;
    assert_eq!(status.as_u16(), 409);

    // A key expiring within a day: the evaluator announces it; the receiver fails twice.
    let (key_id, _) = add_key(&db, "soon", &["--expires", "12h"]);
    let deliveries = wait_for(&root, "three attempts", |d| {
        d.iter()
            .any(|x| x["status"] == "delivered" && x["kind"] == "key_expiring")
    })
    .await;
    let mut attempts: Vec<&Value> = deliveries
        .iter()
        .filter(|d| d["kind"] == "key_expiring")
        .collect();
    attempts.sort_by_key(|d| d["attempt"].as_i64());
    let seen: Vec<(i64, &str, i64)> = attempts
        .iter()
        .map(|d| {
            (
                d["attempt"].as_i64().expect("attempt"),
                d["status"].as_str().expect("status"),
                d["http_status"].as_i64().expect("http status"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "failed", 500),
            (2, "failed", 503),
            (3, "delivered", 200)
        ]
    );
    let first = attempts[0];
    assert_eq!(first["channel_id"], id);
    assert_eq!(first["channel_name"], "ops");
    assert!(
        first["dedup_key"]
            .as_str()
            .expect("key")
            .starts_with(&format!("key_expiring:{key_id}:"))
    );
    assert!(
        first["summary"]
            .as_str()
            .expect("summary")
            .contains("\"soon\""),
        "{first}"
    );
    assert!(
        first["error"].as_str().expect("error").contains("500"),
        "{first}"
    );
    assert!(
        attempts
            .iter()
            .all(|a| a["dedup_key"] == first["dedup_key"])
    );

    // Every attempt carried the same body, each signed afresh; later evaluations send nothing more.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let hits = received.hits();
    assert_eq!(hits.len(), 3, "{:?}", received.bodies());
    let now = tollgate_core::time::now_ms() / 1000;
    for hit in &hits {
        tollgate_alerts::verify(&secret, &hit.timestamp, &hit.signature, &hit.body, now, 300)
            .expect("signed");
        assert_eq!(hit.body, hits[0].body);
    }

    // Send a test from the console: one attempt, answered at once and listed.
    let test = root
        .ok(
            Method::POST,
            &format!("/api/v1/alerts/channels/{id}/test"),
            None,
            200,
        )
        .await;
    assert_eq!(test["delivery"]["status"], "delivered");
    assert_eq!(test["delivery"]["kind"], "test");
    assert!(test["delivery"]["id"].as_i64().expect("id") > 0);
    let only = root
        .ok(
            Method::GET,
            &format!("/api/v1/alerts/deliveries?channel_id={id}&limit=1"),
            None,
            200,
        )
        .await;
    assert_eq!(only["deliveries"][0]["id"], test["delivery"]["id"]);
    let (status, answer) = root
        .call(Method::GET, "/api/v1/alerts/deliveries?limit=0", None)
        .await;
    assert_eq!(
        (status.as_u16(), &answer["error"]["field"]),
        (422, &json!("limit"))
    );
    let (status, _) = root
        .call(Method::POST, "/api/v1/alerts/channels/999999/test", None)
        .await;
    assert_eq!(status.as_u16(), 404);

    root.ok(
        Method::DELETE,
        &format!("/api/v1/alerts/channels/{id}"),
        None,
        204,
    )
    .await;
    let empty = root
        .ok(Method::GET, "/api/v1/alerts/channels", None, 200)
        .await;
    assert_eq!(empty["channels"], json!([]));
}
crate::both_backends!(a_failing_receiver_is_retried_and_every_attempt_is_listed);

/// Two `tollgate serve` processes on one PostgreSQL database: one evaluates at a time, and an
/// expiring key is announced once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_announce_an_expiring_key_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let (addr, received) = receiver(&[]).await;
    let env = quick_alerts();
    let a = Server::start(&db, &env).await;
    let b = Server::start(&db, &env).await;
    let root = Api::login(&a, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    root.ok(
        Method::POST,
        "/api/v1/alerts/channels",
        Some(json!({"name": "ops", "url": format!("http://{addr}/hook")})),
        201,
    )
    .await;
    for n in 0..3 {
        add_key(&db, &format!("soon{n}"), &["--expires", "6h"]);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.hits().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "3 announcements not seen: {:?}",
            received.bodies()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Several more evaluations on both servers: still one delivery per key.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut keys: Vec<String> = received
        .bodies()
        .iter()
        .map(|b| b["dedup_key"].as_str().expect("key").to_owned())
        .collect();
    keys.sort();
    let before = keys.len();
    keys.dedup();
    assert_eq!((before, keys.len()), (3, 3), "{keys:?}");
    drop((a, b));
}

/// A key's token budget crossed through the gateway of two servers sharing PostgreSQL and
/// Redis: each server's limiter sees the crossings its own calls settle (and the later one sees
/// 80 % again with 100 %), yet each threshold reaches the receiver once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_crossing_through_two_gateways_is_delivered_once() {
    let mock = tollgate_mock_upstream::MockUpstream::start()
        .await
        .expect("mock");
    let db = TestDb::new(Backend::Postgres).await;
    crate::harness::add_route(
        &db,
        "oai",
        "/oai",
        &mock.url(),
        &["--strip-prefix", "--kind", "openai"],
    );
    let (key_id, key) = add_key(&db, "metered", &[]);
    let store = db.open().await;
    let limit = tollgate_limits::Limit {
        id: 1,
        scope: tollgate_limits::Scope::Instance,
        kind: tollgate_limits::LimitKind::TokenBudget {
            max: 100,
            period: tollgate_limits::Period::Month,
        },
        enforcement: tollgate_limits::Enforcement::Hard,
        alert_at: vec![80, 100],
        include_reported: false,
    };
    let limit_id = store
        .create_limit(
            tollgate_store::LimitOwner::Key(key_id),
            &limit.spec_json(None),
            "test",
        )
        .await
        .expect("limit")
        .id;
    let (addr, received) = receiver(&[]).await;
    let namespace = format!("it-alerts-{}", uuid::Uuid::new_v4().simple());
    let mut servers = Vec::new();
    for data in ["a", "b"] {
        let dir = db.dir.path().join(data).display().to_string();
        let mut env = quick_alerts();
        env.extend([
            ("TOLLGATE_REDIS_URL", "redis://127.0.0.1:6379"),
            ("TOLLGATE_LIMITS__NAMESPACE", namespace.as_str()),
            ("TOLLGATE_DATA_DIR", dir.as_str()),
        ]);
        servers.push(Server::start(&db, &env).await);
    }
    let root = Api::login(&servers[0], ADMIN_EMAIL, ADMIN_PASSWORD).await;
    root.ok(
        Method::POST,
        "/api/v1/alerts/channels",
        Some(json!({"name": "ops", "url": format!("http://{addr}/hook"), "format": "generic"})),
        201,
    )
    .await;

    // 40 tokens a call, alternating servers: 40, 80 (crosses 80 %), 120 (crosses 100 %), then
    // refused.
    let http = crate::harness::client();
    let mut statuses = Vec::new();
    for n in 0..4 {
        let resp = http
            .post(servers[n % 2].url("/oai/v1/chat/completions"))
            .bearer_auth(&key)
            .header("x-mock-prompt-tokens", "30")
            .header("x-mock-completion-tokens", "10")
            .json(&json!({"model": "gpt-4o", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .expect("call");
        statuses.push(resp.status().as_u16());
        resp.bytes().await.expect("body");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while received.hits().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "two budget alerts not seen: {:?}",
            received.bodies()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bodies = received.bodies();
    let mut thresholds: Vec<i64> = bodies
        .iter()
        .map(|b| {
            assert_eq!(b["kind"], "budget_crossing", "{b}");
            assert_eq!(b["details"]["limit_id"], limit_id, "{b}");
            assert_eq!(b["details"]["scope"], format!("key {key_id}"), "{b}");
            b["details"]["threshold_pct"].as_i64().expect("threshold")
        })
        .collect();
    thresholds.sort_unstable();
    assert_eq!(thresholds, [80, 100], "each threshold once: {bodies:?}");
    let listed = root
        .ok(Method::GET, "/api/v1/alerts/deliveries", None, 200)
        .await;
    let budget: Vec<&Value> = listed["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .filter(|d| d["kind"] == "budget_crossing")
        .collect();
    assert_eq!(budget.len(), 2, "{listed}");
    assert!(budget.iter().all(|d| d["status"] == "delivered"));
}

/// The gateway's own calls feed the route rules: a route answering 5xx to most calls raises
/// `route_error_rate`, an upstream nobody answers raises `upstream_unreachable`, each once; a
/// route with too few calls and a healthy one raise nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_routes_and_unreachable_upstreams_are_announced() {
    let mock = tollgate_mock_upstream::MockUpstream::start()
        .await
        .expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    crate::harness::add_route(&db, "flaky", "/flaky", &mock.url(), &["--strip-prefix"]);
    crate::harness::add_route(&db, "healthy", "/healthy", &mock.url(), &["--strip-prefix"]);
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    crate::harness::add_route(
        &db,
        "dead",
        "/dead",
        &format!("http://{dead}"),
        &["--strip-prefix"],
    );
    let (_, key) = add_key(&db, "caller", &[]);
    let (addr, received) = receiver(&[]).await;
    let mut env = quick_alerts();
    env.extend([
        ("TOLLGATE_ALERTS__ROUTE_ERROR_MIN_CALLS", "5"),
        ("TOLLGATE_ALERTS__ROUTE_ERROR_WINDOW_MINUTES", "1"),
        ("TOLLGATE_ALERTS__UPSTREAM_UNREACHABLE_SECS", "1"),
    ]);
    let server = Server::start(&db, &env).await;
    let root = Api::login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    // The console shows the rules in effect, as configured.
    let rules = root
        .ok(Method::GET, "/api/v1/alerts/rules", None, 200)
        .await;
    assert_eq!(rules["route_error_min_calls"], 5, "{rules}");
    assert_eq!(rules["route_error_window_secs"], 60, "{rules}");
    assert_eq!(rules["upstream_unreachable_secs"], 1, "{rules}");
    assert_eq!(rules["route_error_rate_pct"], 10.0, "{rules}");
    assert_eq!(rules["key_expiry_days"], json!([7, 1]), "{rules}");
    root.ok(
        Method::POST,
        "/api/v1/alerts/channels",
        Some(json!({"name": "ops", "url": format!("http://{addr}/hook")})),
        201,
    )
    .await;

    let http = crate::harness::client();
    let call = |path: &'static str, status: Option<&'static str>| {
        let mut req = http.get(server.url(path)).bearer_auth(&key);
        if let Some(status) = status {
            req = req.header("x-mock-status", status);
        }
        async move {
            let resp = req.send().await.expect("call");
            let code = resp.status().as_u16();
            resp.bytes().await.expect("body");
            code
        }
    };
    // flaky: 6 of 8 calls fail (75 %); healthy: 8 good calls; dead: 2 calls (too few for a
    // rate, but every one failed to connect).
    for n in 0..8 {
        let failing = n < 6;
        assert_eq!(
            call("/flaky/json", failing.then_some("503")).await,
            if failing { 503 } else { 200 }
        );
        assert_eq!(call("/healthy/json", None).await, 200);
    }
    assert_eq!(call("/dead/json", None).await, 502);
    assert_eq!(call("/dead/json", None).await, 502);

    let deliveries = wait_for(&root, "route alerts", |d| {
        d.iter().any(|x| x["kind"] == "route_error_rate")
            && d.iter().any(|x| x["kind"] == "upstream_unreachable")
    })
    .await;
    // A few more evaluations: nothing is sent twice.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let bodies = received.bodies();
    let kinds: Vec<(&str, &str)> = bodies
        .iter()
        .map(|b| {
            (
                b["kind"].as_str().expect("kind"),
                b["details"]["route"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == ("route_error_rate", "flaky"))
            .count(),
        1,
        "{bodies:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == ("upstream_unreachable", "dead"))
            .count(),
        1,
        "{bodies:?}"
    );
    assert!(
        kinds.iter().all(|(_, route)| *route != "healthy"),
        "a healthy route raises nothing: {bodies:?}"
    );
    assert!(
        !kinds.contains(&("route_error_rate", "dead")),
        "two calls are too few for a rate: {bodies:?}"
    );
    let rate = bodies
        .iter()
        .find(|b| b["kind"] == "route_error_rate")
        .expect("rate alert");
    assert_eq!(rate["details"]["calls"], 8, "{rate}");
    assert_eq!(rate["details"]["errors"], 6, "{rate}");
    let unreachable = deliveries
        .iter()
        .find(|d| d["kind"] == "upstream_unreachable")
        .expect("listed");
    assert_eq!(unreachable["status"], "delivered", "{unreachable}");
}
