//! The in-process middleware (`tollgate-middleware`) reporting a host service's calls to the real
//! binary's ingest API: every call stored once, with source `middleware`, the method, path,
//! status, model and tokens the host saw, attributed to the caller's key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::Extension;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tollgate_core::{UsageEvent, UsageSource};
use tollgate_middleware::{ApiKeyHash, LlmUsage, RouteName, UsageRecord, UsageReporter, UsageSlot};

use crate::both_backends;
use crate::console::{INGEST_SECRET, console_env};
use crate::harness::{Backend, Server, TestDb, add_key, client, wait_events};

/// Like the crate's `echo_service` example: a plain route, an LLM-style route that sets
/// `LlmUsage` (and the caller's key hash), a failing route, and a stream whose usage is known at
/// its end.
fn host_app() -> Router {
    Router::new()
        .route("/echo", get(|| async { "echo" }))
        .route("/v1/chat", post(chat))
        .route(
            "/broken",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route("/v1/stream", get(stream))
}

async fn chat(headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let prompt = body["prompt_tokens"].as_u64().unwrap_or_default();
    let completion = body["completion_tokens"].as_u64().unwrap_or_default();
    let status = if model == "overloaded" {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::OK
    };
    let mut res = (status, Json(json!({"model": model}))).into_response();
    res.extensions_mut()
        .insert(LlmUsage::new(model, prompt, completion));
    res.extensions_mut().insert(RouteName("chat".into()));
    if let Some(key) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        res.extensions_mut().insert(ApiKeyHash::of_key(key));
    }
    res
}

async fn stream(Extension(slot): Extension<UsageSlot>) -> Response {
    let chunks = futures_util::stream::iter(0..3).then(move |i| {
        let slot = slot.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if i == 2 {
                slot.set(LlmUsage::new("streamer-1", 4, 9));
            }
            Ok::<_, std::convert::Infallible>(format!("part{i};"))
        }
    });
    axum::body::Body::from_stream(chunks).into_response()
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    format!("http://{addr}")
}

/// (method, path, status, model, prompt, completion, route) of an event.
type Seen = (
    String,
    String,
    u16,
    Option<String>,
    i64,
    i64,
    Option<String>,
);

fn seen(e: &UsageEvent) -> Seen {
    (
        e.method.clone(),
        e.path.clone(),
        e.status,
        e.model.clone(),
        e.tokens.prompt,
        e.tokens.completion,
        e.route.clone(),
    )
}

async fn middleware_events_reach_the_store_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db, &console_env()).await;
    let (key_id, key) = add_key(&db, "mw-caller", &[]);

    let reporter = UsageReporter::builder(server.console_url(""))
        .signature(INGEST_SECRET)
        .service("it-service")
        .batch_size(4)
        .flush_interval(Duration::from_secs(60))
        .http_client(client())
        .build()
        .expect("reporter");
    let host = serve(host_app().layer(reporter.layer())).await;

    let http = client();
    let get = |path: &str| {
        http.get(format!("{host}{path}"))
            .header("user-agent", "mw-it/1.0")
            .send()
    };
    let chat = |model: &str, prompt: u64, completion: u64, key: Option<&str>| {
        let mut req = http.post(format!("{host}/v1/chat")).json(
            &json!({"model": model, "prompt_tokens": prompt, "completion_tokens": completion}),
        );
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        req.send()
    };
    let mut statuses = Vec::new();
    for resp in [
        get("/echo?secret=not-recorded").await,
        get("/broken").await,
        get("/nowhere").await,
        chat("gpt-4o-mini", 120, 30, Some(&key)).await,
        chat("claude-3-haiku", 7, 5, None).await,
        chat("overloaded", 3, 0, None).await,
        get("/v1/stream").await,
    ] {
        let resp = resp.expect("host answers");
        statuses.push(resp.status().as_u16());
        resp.bytes().await.expect("whole body");
    }
    assert_eq!(statuses, [200, 503, 404, 200, 200, 429, 200]);

    reporter.flush().await.expect("everything delivered");
    let stats = reporter.stats();
    assert_eq!(
        (
            stats.recorded,
            stats.delivered,
            stats.pending,
            stats.dropped()
        ),
        (7, 7, 0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.requests, 2, "a full batch of 4, then the flush of 3");

    server.wait_flushed().await;
    let store = db.open().await;
    let events = wait_events(&*store, 7).await;
    assert_eq!(events.len(), 7, "{events:#?}");
    let mut by_path: BTreeMap<(String, Option<String>), &UsageEvent> = BTreeMap::new();
    for e in &events {
        assert_eq!(e.source, UsageSource::Middleware, "{e:?}");
        assert_eq!(e.client_ip.as_deref(), Some("127.0.0.1"), "{e:?}");
        assert!(
            e.latency_us >= 0 && e.upstream_latency_us.is_some(),
            "{e:?}"
        );
        by_path.insert((e.path.clone(), e.model.clone()), e);
    }
    let svc = Some("it-service".to_owned());
    let chat_route = Some("chat".to_owned());
    let mut got: Vec<Seen> = events.iter().map(seen).collect();
    got.sort();
    let mut want: Vec<Seen> = vec![
        ("GET".into(), "/echo".into(), 200, None, 0, 0, svc.clone()),
        ("GET".into(), "/broken".into(), 503, None, 0, 0, svc.clone()),
        (
            "GET".into(),
            "/nowhere".into(),
            404,
            None,
            0,
            0,
            svc.clone(),
        ),
        (
            "POST".into(),
            "/v1/chat".into(),
            200,
            Some("gpt-4o-mini".into()),
            120,
            30,
            chat_route.clone(),
        ),
        (
            "POST".into(),
            "/v1/chat".into(),
            200,
            Some("claude-3-haiku".into()),
            7,
            5,
            chat_route.clone(),
        ),
        (
            "POST".into(),
            "/v1/chat".into(),
            429,
            Some("overloaded".into()),
            3,
            0,
            chat_route,
        ),
        (
            "GET".into(),
            "/v1/stream".into(),
            200,
            Some("streamer-1".into()),
            4,
            9,
            svc,
        ),
    ];
    want.sort();
    assert_eq!(got, want);

    let echo = by_path[&("/echo".to_owned(), None)];
    assert_eq!(echo.user_agent.as_deref(), Some("mw-it/1.0"));
    assert_eq!(echo.key_id, None);
    let keyed = by_path[&("/v1/chat".to_owned(), Some("gpt-4o-mini".to_owned()))];
    assert_eq!(
        keyed.key_id,
        Some(key_id),
        "attributed through the key hash"
    );
    assert_eq!(keyed.tokens.total, 150);
    let stream = by_path[&("/v1/stream".to_owned(), Some("streamer-1".to_owned()))];
    assert_eq!(stream.tokens.total, 13);
    assert!(
        stream.latency_us >= 60_000,
        "the stream is timed to its end: {stream:?}"
    );

    // A second flush sends nothing; a record repeated under the same id is stored once.
    reporter.flush().await.expect("nothing pending");
    assert_eq!(reporter.stats().requests, 2);
    let again = UsageRecord::new("PUT", "/replayed", 201);
    assert!(reporter.record(again.clone()));
    reporter.flush().await.expect("first copy");
    assert!(reporter.record(again));
    reporter.shutdown().await.expect("second copy");
    assert_eq!(reporter.stats().delivered, 9);
    server.wait_flushed().await;
    let events = wait_events(&*store, 8).await;
    assert_eq!(
        events.len(),
        8,
        "the replayed id is stored once: {events:#?}"
    );
    assert_eq!(events.iter().filter(|e| e.path == "/replayed").count(), 1);
}
both_backends!(middleware_events_reach_the_store_once);
