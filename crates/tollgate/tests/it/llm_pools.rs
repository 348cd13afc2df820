//! Pools through the real binary: retries on 5xx, 429 and connect errors before the first byte,
//! never after it; circuits that open, cool down and recover; fallback models; usage counted
//! once; the per-target metrics.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tollgate_mock_upstream::{Fault, MockUpstream};

use crate::harness::{Backend, Server, TestDb, add_key, add_route, client, wait_events};
use crate::llm_routing::{add_model, add_target, chat};

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    listener.local_addr().expect("addr").port()
}

async fn metric_value(server: &Server, line_start: &str) -> f64 {
    let text = server.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(line_start).map(str::trim))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_moves_on_before_the_first_byte_and_cools_a_failing_target_down() {
    let a = MockUpstream::start().await.expect("mock");
    let b = MockUpstream::start().await.expect("mock");
    let c = MockUpstream::start().await.expect("mock");
    let dead = format!("http://127.0.0.1:{}/v1", closed_port().await);
    let db = TestDb::new(Backend::Sqlite).await;
    let v1 = |m: &MockUpstream| format!("{}/v1", m.url());
    for (name, url) in [
        ("ta", v1(&a)),
        ("tb", v1(&b)),
        ("tc", v1(&c)),
        ("tdead", dead),
    ] {
        add_target(
            &db,
            name,
            &format!("secret-{name}"),
            &["--provider", "openai_compatible", "--base-url", &url],
        );
    }
    // least_busy with nothing in flight keeps the pool's order: the first target is tried first.
    add_model(
        &db,
        "pooled",
        &[
            "--target",
            "ta",
            "--target",
            "tb",
            "--strategy",
            "least_busy",
        ],
    );
    add_model(
        &db,
        "dead-first",
        &[
            "--target",
            "tdead",
            "--target",
            "tc",
            "--strategy",
            "least_busy",
        ],
    );
    add_model(&db, "backup", &["--target", "tc"]);
    add_model(&db, "primary", &["--target", "ta", "--fallback", "backup"]);
    add_route(
        &db,
        "llm",
        "/llm",
        "http://127.0.0.1:9",
        &["--kind", "llm", "--timeout", "1s"],
    );
    let (_, key) = add_key(&db, "app", &[]);
    let server = Server::start(
        &db,
        &[
            ("TOLLGATE_GATEWAY__LLM_CIRCUIT_FAILURES", "3"),
            ("TOLLGATE_GATEWAY__LLM_CIRCUIT_COOLDOWN_MS", "1000"),
            ("TOLLGATE_GATEWAY__LLM_MAX_ATTEMPTS", "3"),
        ],
    )
    .await;
    let http = client();
    let call = |model: &str| {
        http.post(server.url("/llm/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&chat(model))
            .send()
    };

    // 5xx on the first target: every call still succeeds, on the second.
    a.set_fault(Some(Fault::Status {
        status: 500,
        retry_after: None,
    }));
    for _ in 0..5 {
        let resp = call("pooled").await.expect("send");
        assert_eq!(resp.status(), 200, "{}", server.logs());
    }
    // Three failures in a row opened its circuit: calls four and five did not try it.
    assert_eq!(a.request_count(), 3);
    assert_eq!(b.request_count(), 5);
    assert_eq!(
        metric_value(&server, "tollgate_gateway_llm_circuit_open{target=\"ta\"}").await,
        1.0
    );
    assert_eq!(
        metric_value(
            &server,
            "tollgate_gateway_llm_attempts_total{target=\"ta\",outcome=\"error\"}"
        )
        .await,
        3.0
    );
    assert_eq!(
        metric_value(&server, "tollgate_gateway_llm_retries_total{target=\"tb\"}").await,
        3.0
    );

    // After the cooldown one probe goes through; it succeeds and the circuit closes.
    a.set_fault(None);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(call("pooled").await.expect("send").status(), 200);
    assert_eq!(a.request_count(), 4, "the probe");
    assert_eq!(b.request_count(), 5);
    assert_eq!(
        metric_value(&server, "tollgate_gateway_llm_circuit_open{target=\"ta\"}").await,
        0.0
    );

    // 429 with a short Retry-After: the call moves on at once.
    a.set_fault(Some(Fault::Status {
        status: 429,
        retry_after: Some(30),
    }));
    assert_eq!(call("pooled").await.expect("send").status(), 200);
    assert_eq!(b.request_count(), 6);
    // Retry-After keeps the target out: the next call does not try it.
    assert_eq!(call("pooled").await.expect("send").status(), 200);
    assert_eq!(a.request_count(), 5);
    assert_eq!(b.request_count(), 7);
    a.set_fault(None);

    // A connect error moves on too.
    assert_eq!(call("dead-first").await.expect("send").status(), 200);
    assert_eq!(c.request_count(), 1);

    // A whole pool down: the fallback model answers, under its own name.
    assert_eq!(
        call("primary").await.expect("send").status(),
        200,
        "ta still cooling down"
    );
    let seen = c.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].body_json().expect("json")["model"], "backup");
    assert_eq!(
        metric_value(
            &server,
            "tollgate_gateway_llm_fallbacks_total{model=\"backup\"}"
        )
        .await,
        1.0
    );

    // Usage: one event per call, counted once however many attempts it took.
    let store = db.open().await;
    let events = wait_events(&*store, 10).await;
    assert_eq!(events.len(), 10, "{events:#?}");
    assert!(events.iter().all(|e| e.status == 200));
    assert!(
        events
            .iter()
            .all(|e| e.tokens.prompt == 11 && e.tokens.completion == 7)
    );
    let with_retries = events
        .iter()
        .filter(|e| {
            e.attempts
                .as_deref()
                .is_some_and(|a| a.contains("\"status\":500"))
        })
        .count();
    assert_eq!(with_retries, 3, "{events:#?}");
    // The upstream times are those of the attempt that answered, retried or not.
    assert!(
        events.iter().all(|e| {
            e.upstream_latency_us.is_some()
                && e.upstream_latency_us <= e.upstream_last_byte_us
                && e.upstream_last_byte_us <= Some(e.latency_us)
        }),
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_never_retried_after_its_first_byte() {
    let a = MockUpstream::start().await.expect("mock");
    let b = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    for (name, m) in [("ta", &a), ("tb", &b)] {
        add_target(
            &db,
            name,
            "secret",
            &[
                "--provider",
                "openai_compatible",
                "--base-url",
                &format!("{}/v1", m.url()),
            ],
        );
    }
    add_model(
        &db,
        "pooled",
        &[
            "--target",
            "ta",
            "--target",
            "tb",
            "--strategy",
            "least_busy",
        ],
    );
    add_route(
        &db,
        "llm",
        "/llm",
        "http://127.0.0.1:9",
        &["--kind", "llm", "--timeout", "1s"],
    );
    let (_, key) = add_key(&db, "app", &[]);
    let server = Server::start(&db, &[]).await;
    // The head and the first events arrive, then the upstream stalls past the route's timeout.
    let mut body = chat("pooled");
    body["stream"] = json!(true);
    let resp = client()
        .post(server.url("/llm/v1/chat/completions"))
        .bearer_auth(&key)
        .header("x-mock-chunks", "50")
        .header("x-mock-chunk-delay-ms", "1500")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.expect("a first chunk").expect("bytes");
    assert!(!first.is_empty());
    while let Some(chunk) = stream.next().await {
        if chunk.is_err() {
            break;
        }
    }
    assert_eq!(a.request_count(), 1);
    assert_eq!(
        b.request_count(),
        0,
        "no retry once a byte reached the client"
    );
    let store = db.open().await;
    let events = wait_events(&*store, 1).await;
    let attempts: Value =
        serde_json::from_str(events[0].attempts.as_deref().expect("attempts")).expect("json");
    assert_eq!(attempts.as_array().expect("list").len(), 1);
    assert_eq!(attempts[0]["target"], "ta");
}
