//! The layer and the reporter against a tiny local stand-in for tollgate's ingest API that counts
//! requests, checks credentials, and fails or stalls on demand.

#![expect(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers fail loudly"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "tests start servers and workers on their own runtime, which ends with the test"
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tollgate_middleware::{
    ApiKeyHash, FlushError, LlmUsage, RouteName, UsageRecord, UsageReporter, UsageSlot,
};

const SECRET: &str = "test-ingest-secret";

/// The stand-in ingest server's state.
#[derive(Default)]
struct Ingest {
    batches: Mutex<Vec<Vec<Value>>>,
    requests: AtomicUsize,
    unauthorized: AtomicUsize,
    fail_next: AtomicUsize,
    always_fail: AtomicBool,
    delay_ms: AtomicU64,
    /// The `X-Tollgate-Timestamp` of every request that had one.
    timestamps: Mutex<Vec<u64>>,
}

impl Ingest {
    fn batch_sizes(&self) -> Vec<usize> {
        self.batches.lock().unwrap().iter().map(Vec::len).collect()
    }

    fn events(&self) -> Vec<Value> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }
}

async fn ingest_handler(
    State(state): State<Arc<Ingest>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let bearer_ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {SECRET}"));
    // The server's rule: HMAC of "{timestamp}.{body}", the timestamp within 300 s of now.
    let timestamp = headers
        .get("x-tollgate-timestamp")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(ts) = timestamp {
        state.timestamps.lock().unwrap().push(ts);
    }
    let now = u64::try_from(tollgate_core::time::now_ms() / 1000).unwrap();
    let signature_ok = headers
        .get("x-tollgate-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|v| hex::decode(v).ok())
        .zip(timestamp)
        .is_some_and(|(given, ts)| {
            let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
            mac.update(format!("{ts}.").as_bytes());
            mac.update(&body);
            mac.verify_slice(&given).is_ok() && now.abs_diff(ts) <= 300
        });
    if !bearer_ok && !signature_ok {
        state.unauthorized.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    if state.always_fail.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let events: Vec<Value> = serde_json::from_slice(&body).expect("a JSON array");
    state.batches.lock().unwrap().push(events);
    StatusCode::ACCEPTED
}

/// Starts the stand-in ingest server; returns its state and base URL.
async fn start_ingest() -> (Arc<Ingest>, String) {
    let state = Arc::new(Ingest::default());
    let app = Router::new()
        .route("/api/v1/usage/events", post(ingest_handler))
        .with_state(state.clone());
    let base = serve(app).await;
    (state, base)
}

/// Serves `app` on a loopback port (with connect info) and returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

/// A base URL where nothing listens.
async fn dead_base() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn builder(base: &str) -> tollgate_middleware::ReporterBuilder {
    UsageReporter::builder(base)
        .bearer(SECRET)
        .http_client(http())
        .retry_backoff(Duration::from_millis(20))
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The host service used by the layer tests.
fn host_app() -> Router {
    Router::new()
        .route(
            "/plain",
            get(|| async { ([("x-host", "yes")], "plain body") }),
        )
        .route(
            "/v1/chat",
            post(|Json(body): Json<Value>| async move {
                let model = body["model"].as_str().unwrap_or("none").to_owned();
                let mut res = Json(serde_json::json!({"ok": true})).into_response();
                res.extensions_mut().insert(LlmUsage {
                    cached_tokens: 2,
                    ..LlmUsage::new(model, 11, 7)
                });
                res.extensions_mut()
                    .insert(ApiKeyHash::of_key("ntk_caller"));
                res.extensions_mut().insert(RouteName("chat".into()));
                res
            }),
        )
        .route(
            "/fail",
            get(|| async { (StatusCode::BAD_GATEWAY, "upstream down") }),
        )
        .route("/stream", get(slow_stream))
        .route("/endless", get(endless))
}

/// Two chunks 500 ms apart; the usage is set at the end through the slot (when the layer is on).
async fn slow_stream(slot: Option<Extension<UsageSlot>>) -> Response {
    let chunks = futures_util::stream::iter(0..2).then(move |i| {
        let slot = slot.clone();
        async move {
            if i == 1 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Some(Extension(slot)) = slot {
                    slot.set(LlmUsage::new("streamer", 1, 2));
                }
            }
            Ok::<_, std::convert::Infallible>(format!("chunk{i};"))
        }
    });
    axum::body::Body::from_stream(chunks).into_response()
}

/// A chunk every 20 ms, forever.
async fn endless() -> Response {
    let chunks = futures_util::stream::unfold(0u64, |i| async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Some((Ok::<_, std::convert::Infallible>(format!("{i};")), i + 1))
    });
    axum::body::Body::from_stream(chunks).into_response()
}

#[tokio::test]
async fn batches_by_size_then_by_interval() {
    let (ingest, base) = start_ingest().await;
    let reporter = builder(&base)
        .batch_size(3)
        .flush_interval(Duration::from_millis(1000))
        .build()
        .unwrap();
    let started = Instant::now();
    for i in 0..7 {
        assert!(reporter.record(UsageRecord::new("GET", format!("/r/{i}"), 200)));
    }
    eventually("two full batches", || ingest.batch_sizes() == [3, 3]).await;
    // The seventh waits for the interval.
    if started.elapsed() < Duration::from_millis(900) {
        assert_eq!(ingest.batch_sizes(), [3, 3]);
    }
    eventually("the partial batch", || ingest.batch_sizes() == [3, 3, 1]).await;
    assert!(started.elapsed() >= Duration::from_millis(1000));
    let paths: Vec<_> = ingest
        .events()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paths, (0..7).map(|i| format!("/r/{i}")).collect::<Vec<_>>());
    // The server stores the batch before it answers: wait for the answer to be counted.
    eventually("the last answer", || reporter.stats().delivered == 7).await;
    let stats = reporter.stats();
    assert_eq!(
        (
            stats.recorded,
            stats.delivered,
            stats.pending,
            stats.dropped()
        ),
        (7, 7, 0, 0)
    );
    assert_eq!(stats.requests, 3);
}

#[tokio::test]
async fn retries_with_the_same_ids_until_the_server_recovers() {
    let (ingest, base) = start_ingest().await;
    ingest.fail_next.store(2, Ordering::SeqCst);
    let reporter = builder(&base)
        .flush_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let record = UsageRecord::new("POST", "/x", 201);
    let id = record.id;
    reporter.record(record);
    reporter.record(UsageRecord::new("POST", "/y", 201));
    reporter.flush().await.expect("delivered after retries");
    assert_eq!(ingest.requests.load(Ordering::SeqCst), 3);
    assert_eq!(ingest.batch_sizes(), [2]);
    assert_eq!(ingest.events()[0]["id"], id.to_string());
    let stats = reporter.stats();
    assert_eq!((stats.delivered, stats.retries, stats.dropped()), (2, 2, 0));
    // Nothing left: a second flush sends nothing.
    reporter.flush().await.expect("nothing to send");
    assert_eq!(ingest.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retries_in_the_background_with_backoff() {
    let (ingest, base) = start_ingest().await;
    ingest.fail_next.store(3, Ordering::SeqCst);
    let reporter = builder(&base)
        .batch_size(1)
        .flush_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    reporter.record(UsageRecord::new("GET", "/bg", 200));
    eventually("delivery after three failures", || {
        reporter.stats().delivered == 1
    })
    .await;
    assert_eq!(ingest.requests.load(Ordering::SeqCst), 4);
    assert_eq!(reporter.stats().retries, 3);
}

#[tokio::test]
async fn gives_up_after_the_retries_and_counts_the_drop() {
    let (ingest, base) = start_ingest().await;
    ingest.always_fail.store(true, Ordering::SeqCst);
    let reporter = builder(&base)
        .max_retries(2)
        .flush_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    for _ in 0..4 {
        reporter.record(UsageRecord::new("GET", "/z", 200));
    }
    assert_eq!(
        reporter.flush().await,
        Err(FlushError::Undelivered { undelivered: 4 })
    );
    assert_eq!(
        ingest.requests.load(Ordering::SeqCst),
        3,
        "one try and two retries"
    );
    let stats = reporter.stats();
    assert_eq!(
        (stats.dropped_undeliverable, stats.pending, stats.delivered),
        (4, 0, 0)
    );
}

#[tokio::test]
async fn a_refused_batch_is_not_retried() {
    let (ingest, base) = start_ingest().await;
    let reporter = UsageReporter::builder(&base)
        .bearer("the-wrong-secret")
        .http_client(http())
        .build()
        .unwrap();
    reporter.record(UsageRecord::new("GET", "/z", 200));
    assert_eq!(
        reporter.flush().await,
        Err(FlushError::Undelivered { undelivered: 1 })
    );
    assert_eq!(ingest.unauthorized.load(Ordering::SeqCst), 1);
    assert_eq!(reporter.stats().retries, 0);
}

#[tokio::test]
async fn signs_bodies_with_hmac() {
    let (ingest, base) = start_ingest().await;
    let reporter = UsageReporter::builder(&base)
        .signature(SECRET)
        .http_client(http())
        .build()
        .unwrap();
    reporter.record(UsageRecord::new("GET", "/signed", 200));
    reporter.shutdown().await.expect("delivered");
    assert_eq!(ingest.batch_sizes(), [1]);
    assert_eq!(ingest.unauthorized.load(Ordering::SeqCst), 0);
    // After shutdown, records are dropped and counted; the reporter answers Closed.
    assert!(!reporter.record(UsageRecord::new("GET", "/late", 200)));
    assert_eq!(reporter.stats().dropped_after_shutdown, 1);
    assert_eq!(reporter.flush().await, Err(FlushError::Closed));
}

#[tokio::test]
async fn signs_every_attempt_with_a_fresh_timestamp() {
    let (ingest, base) = start_ingest().await;
    ingest.fail_next.store(1, Ordering::SeqCst);
    let reporter = UsageReporter::builder(&base)
        .signature(SECRET)
        .retry_backoff(Duration::from_millis(1_100))
        .http_client(http())
        .build()
        .unwrap();
    reporter.record(UsageRecord::new("GET", "/retried", 200));
    reporter.flush().await.expect("delivered on the retry");
    let stamps = ingest.timestamps.lock().unwrap().clone();
    assert_eq!(stamps.len(), 2, "{stamps:?}");
    assert!(
        stamps[1] > stamps[0],
        "the retry must be signed anew: {stamps:?}"
    );
    assert_eq!(ingest.unauthorized.load(Ordering::SeqCst), 0);
    assert_eq!(ingest.batch_sizes(), [1]);
}

#[test]
fn the_signature_covers_the_timestamp() {
    let a = tollgate_middleware::sign(b"k", 1_700_000_000, b"[]").unwrap();
    let b = tollgate_middleware::sign(b"k", 1_700_000_001, b"[]").unwrap();
    assert_ne!(a, b);
    let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
    mac.update(b"1700000000.[]");
    assert_eq!(
        a,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
}

#[tokio::test]
async fn drops_and_counts_when_the_queue_is_full() {
    let (ingest, base) = start_ingest().await;
    ingest.delay_ms.store(3_000, Ordering::SeqCst);
    let reporter = builder(&base)
        .batch_size(1)
        .channel_capacity(2)
        .build()
        .unwrap();
    // The task takes the first and stalls sending it…
    assert!(reporter.record(UsageRecord::new("GET", "/0", 200)));
    eventually("the stalled request", || {
        ingest.requests.load(Ordering::SeqCst) == 1
    })
    .await;
    // …so the queue holds two more, and the rest are dropped without waiting.
    let started = Instant::now();
    let queued: Vec<bool> = (1..=10)
        .map(|i| reporter.record(UsageRecord::new("GET", format!("/{i}"), 200)))
        .collect();
    assert!(started.elapsed() < Duration::from_millis(200));
    assert_eq!(queued.iter().filter(|q| **q).count(), 2);
    let stats = reporter.stats();
    assert_eq!(stats.dropped_queue_full, 8);
    assert_eq!(stats.recorded, 3);
    assert_eq!(stats.pending, 3);
}

#[tokio::test]
async fn the_backlog_is_bounded_while_the_server_is_down() {
    let reporter = builder(&dead_base().await)
        .batch_size(2)
        .max_backlog(4)
        .max_retries(100)
        .flush_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    for i in 0..10 {
        reporter.record(UsageRecord::new("GET", format!("/{i}"), 200));
    }
    eventually("the backlog to overflow", || {
        let s = reporter.stats();
        s.dropped_backlog_full == 6 && s.pending == 4
    })
    .await;
}

/// Requests every endpoint of `base` and returns (status, a header, body) of each.
async fn sample(base: &str) -> Vec<(u16, Option<String>, String)> {
    let http = http();
    let mut out = Vec::new();
    for (method, path) in [
        ("GET", "/plain?q=1"),
        ("POST", "/v1/chat"),
        ("GET", "/fail"),
        ("GET", "/missing"),
        ("GET", "/stream"),
    ] {
        let req = if method == "POST" {
            http.post(format!("{base}{path}"))
                .json(&serde_json::json!({"model": "m1"}))
        } else {
            http.get(format!("{base}{path}"))
        };
        let resp = req.header("user-agent", "probe/1.0").send().await.unwrap();
        let status = resp.status().as_u16();
        let header = resp
            .headers()
            .get("x-host")
            .map(|v| v.to_str().unwrap().to_owned());
        out.push((status, header, resp.text().await.unwrap()));
    }
    out
}

#[tokio::test]
async fn records_what_the_host_answered() {
    let (ingest, base) = start_ingest().await;
    let reporter = builder(&base)
        .service("host-svc")
        .flush_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let host = serve(host_app().layer(reporter.layer())).await;
    let answers = sample(&host).await;
    reporter.flush().await.expect("delivered");
    let events = ingest.events();
    assert_eq!(events.len(), 5, "{events:#?}");
    let by_path = |p: &str| {
        events
            .iter()
            .find(|e| e["path"] == p)
            .unwrap_or_else(|| panic!("no event for {p}: {events:#?}"))
    };
    let plain = by_path("/plain");
    assert_eq!(plain["method"], "GET");
    assert_eq!(plain["status"], 200);
    assert_eq!(plain["route"], "host-svc");
    assert_eq!(plain["user_agent"], "probe/1.0");
    assert_eq!(plain["client_ip"], "127.0.0.1");
    assert_eq!(plain["source"], "middleware");
    assert_eq!(plain["prompt_tokens"], 0);
    assert!(plain.get("model").is_none());
    assert!(plain["latency_ms"].as_f64().unwrap() >= 0.0);
    let id = plain["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);

    let chat = by_path("/v1/chat");
    assert_eq!(chat["method"], "POST");
    assert_eq!(chat["model"], "m1");
    assert_eq!(
        (
            &chat["prompt_tokens"],
            &chat["completion_tokens"],
            &chat["cached_tokens"]
        ),
        (&Value::from(11), &Value::from(7), &Value::from(2))
    );
    assert_eq!(chat["route"], "chat");
    assert_eq!(chat["key_hash"], ApiKeyHash::of_key("ntk_caller").as_str());

    assert_eq!(by_path("/fail")["status"], 502);
    assert_eq!(by_path("/missing")["status"], 404);

    // The stream was measured whole, and its usage came through the slot at the end.
    let stream = by_path("/stream");
    assert_eq!(stream["status"], 200);
    assert_eq!(stream["model"], "streamer");
    assert_eq!(stream["completion_tokens"], 2);
    assert!(stream["latency_ms"].as_f64().unwrap() >= 490.0, "{stream}");
    assert!(
        stream["upstream_latency_ms"].as_f64().unwrap() < 400.0,
        "{stream}"
    );
    // The wrapped service's body ended with the call: its last byte is the whole latency.
    assert_eq!(
        stream["upstream_last_byte_ms"], stream["latency_ms"],
        "{stream}"
    );
    assert!(stream.get("error").is_none());

    // The answers are what the host gives without the layer.
    let bare = serve(host_app()).await;
    assert_eq!(answers, sample(&bare).await);
}

#[tokio::test]
async fn a_client_that_goes_away_is_recorded_as_499() {
    let (ingest, base) = start_ingest().await;
    let reporter = builder(&base).build().unwrap();
    let host = serve(host_app().layer(reporter.layer())).await;
    let mut resp = http().get(format!("{host}/endless")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let _first = resp.chunk().await.unwrap();
    drop(resp);
    eventually("the abandoned call", || reporter.stats().recorded == 1).await;
    reporter.flush().await.expect("delivered");
    let events = ingest.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["status"], 499);
    assert!(
        events[0].get("upstream_last_byte_ms").is_none(),
        "the body never ended: {}",
        events[0]
    );
    assert!(
        events[0]["error"]
            .as_str()
            .unwrap()
            .contains("went away before the end of the 200 response"),
        "{}",
        events[0]
    );
}

#[tokio::test]
async fn the_host_is_not_delayed_when_ingest_is_down_or_slow() {
    let (slow, slow_base) = start_ingest().await;
    slow.delay_ms.store(5_000, Ordering::SeqCst);
    for base in [dead_base().await, slow_base] {
        let reporter = builder(&base)
            .batch_size(1)
            .channel_capacity(4)
            .request_timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let host = serve(host_app().layer(reporter.layer())).await;
        let http = http();
        for _ in 0..20 {
            let started = Instant::now();
            let resp = http.get(format!("{host}/plain")).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.text().await.unwrap(), "plain body");
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "a call took {:?} with ingest at {base}",
                started.elapsed()
            );
        }
        // The stream's first chunk arrives before its end: the body is not buffered.
        let started = Instant::now();
        let mut resp = http.get(format!("{host}/stream")).send().await.unwrap();
        let first = resp.chunk().await.unwrap().unwrap();
        assert_eq!(&first[..], b"chunk0;");
        assert!(started.elapsed() < Duration::from_millis(400));
        assert_eq!(resp.chunk().await.unwrap().unwrap(), "chunk1;");
        assert!(resp.chunk().await.unwrap().is_none());
        let stats = reporter.stats();
        assert_eq!(stats.recorded + stats.dropped_queue_full, 21, "{stats:?}");
        assert_eq!(stats.delivered, 0);
    }
}

#[tokio::test]
async fn the_builder_refuses_bad_settings() {
    assert!(UsageReporter::builder("not a url").build().is_err());
    assert!(UsageReporter::builder("ftp://x").build().is_err());
    assert!(
        UsageReporter::builder("http://x")
            .batch_size(0)
            .build()
            .is_err()
    );
    assert!(
        UsageReporter::builder("http://x")
            .batch_size(20_000)
            .build()
            .is_err()
    );
    assert!(
        UsageReporter::builder("http://x")
            .channel_capacity(0)
            .build()
            .is_err()
    );
}

#[test]
fn building_outside_a_runtime_is_an_error() {
    assert!(matches!(
        UsageReporter::builder("http://x").build(),
        Err(tollgate_middleware::BuildError::NoRuntime)
    ));
}
