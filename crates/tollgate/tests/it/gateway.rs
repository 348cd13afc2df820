//! The gateway through the real binary: every refusal, every key header, forwarding and streaming.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tollgate_mock_upstream::MockUpstream;

use crate::both_backends;
use crate::harness::{Backend, Server, TestDb, add_key, add_route, cli, client, wait_events};

async fn expect_error(resp: reqwest::Response, status: u16, code: &str) {
    assert_eq!(resp.status().as_u16(), status, "expected {code}");
    assert!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .starts_with("application/json"),
        "refusals are JSON"
    );
    let body: serde_json::Value = resp.json().await.expect("json error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn every_refusal_has_its_code(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    add_route(
        &db,
        "echo",
        "/echo",
        &mock.url(),
        &["--strip-prefix", "--timeout", "1s"],
    );
    add_route(&db, "other", "/other", &mock.url(), &[]);
    add_route(&db, "dead", "/dead", "http://127.0.0.1:1", &[]);
    let (_, key) = add_key(&db, "limited", &["--routes", "echo,dead"]);
    let (revoked_id, revoked) = add_key(&db, "revoked", &[]);
    let (_, expiring) = add_key(&db, "expiring", &["--expires", "1s"]);
    assert!(
        cli(&db, &["key", "revoke", &revoked_id.to_string()])
            .status
            .success()
    );
    let server = Server::start(&db, &[("TOLLGATE_GATEWAY__MAX_BODY_BYTES", "1024")]).await;
    let http = client();
    let unknown = tollgate_core::ApiKey::generate();
    let mut typo = key.clone().into_bytes();
    typo[12] = if typo[12] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo).expect("ascii");

    expect_error(
        http.get(server.url("/echo/a")).send().await.expect("send"),
        401,
        "missing_api_key",
    )
    .await;
    for bad in ["garbage", typo.as_str(), unknown.expose()] {
        let resp = http
            .get(server.url("/echo/a"))
            .bearer_auth(bad)
            .send()
            .await
            .expect("send");
        expect_error(resp, 401, "invalid_api_key").await;
    }
    expect_error(
        http.get(server.url("/echo/a"))
            .bearer_auth(&revoked)
            .send()
            .await
            .expect("send"),
        401,
        "revoked_api_key",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    expect_error(
        http.get(server.url("/echo/a"))
            .bearer_auth(&expiring)
            .send()
            .await
            .expect("send"),
        401,
        "expired_api_key",
    )
    .await;
    expect_error(
        http.get(server.url("/other/a"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("send"),
        403,
        "route_not_allowed",
    )
    .await;
    expect_error(
        http.get(server.url("/nowhere"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("send"),
        404,
        "no_route",
    )
    .await;
    let big = vec![b'x'; 4096];
    expect_error(
        http.post(server.url("/echo/a"))
            .bearer_auth(&key)
            .body(big)
            .send()
            .await
            .expect("send"),
        413,
        "payload_too_large",
    )
    .await;
    expect_error(
        http.get(server.url("/dead/a"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("send"),
        502,
        "upstream_unreachable",
    )
    .await;
    let slow = http
        .get(server.url("/echo/a"))
        .bearer_auth(&key)
        .header("x-mock-latency-ms", "3000")
        .send();
    expect_error(slow.await.expect("send"), 504, "upstream_timeout").await;
    let huge_header = "h".repeat(40 * 1024);
    let resp = http
        .get(server.url("/echo/a"))
        .bearer_auth(&key)
        .header("x-big", huge_header)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 431);

    // Every refusal is recorded, with the key where it was valid.
    let store = db.open().await;
    let events = wait_events(store.as_ref(), 11).await;
    let statuses: Vec<u16> = events.iter().map(|e| e.status).collect();
    for status in [401, 403, 404, 413, 502, 504] {
        assert!(
            statuses.contains(&status),
            "{status} recorded: {statuses:?}"
        );
    }
    let not_allowed = events.iter().find(|e| e.status == 403).expect("403 event");
    assert!(
        not_allowed.key_id.is_some(),
        "a valid key's refusal carries the key"
    );
    let missing = events
        .iter()
        .find(|e| e.status == 401 && e.key_hash.is_none());
    assert!(missing.is_some(), "a missing key is recorded without one");
}
both_backends!(every_refusal_has_its_code);

async fn keys_from_every_header_and_clean_forwarding(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    add_route(&db, "echo", "/echo", &mock.url(), &["--strip-prefix"]);
    add_route(&db, "keep", "/keep", &mock.url(), &[]);
    let (_, key) = add_key(&db, "k", &[]);
    let server = Server::start(&db, &[]).await;
    let http = client();
    let forms: [(&str, String); 4] = [
        ("authorization", format!("Bearer {key}")),
        ("X-API-Key", key.clone()),
        ("x-api-key", key.clone()),
        ("api-key", key.clone()),
    ];
    for (header, value) in forms {
        let resp = http
            .get(server.url("/echo/v1/items?x=1"))
            .header(header, value)
            .header("connection", "keep-alive, x-hop")
            .header("x-hop", "drop me")
            .header("x-request-id", "req-123")
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200, "{header}");
        assert_eq!(
            resp.headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok()),
            Some("req-123")
        );
        let echo: serde_json::Value = resp.json().await.expect("echo json");
        assert_eq!(echo["path"], "/v1/items", "prefix stripped");
        assert_eq!(echo["query"], "x=1");
        let headers = echo["headers"].as_object().expect("headers");
        for gone in [
            "authorization",
            "x-api-key",
            "api-key",
            "x-hop",
            "connection",
        ] {
            assert!(
                !headers.contains_key(gone),
                "{gone} must not reach the upstream: {headers:?}"
            );
        }
        assert_eq!(
            headers.get("x-forwarded-for").and_then(|v| v.as_str()),
            Some("127.0.0.1")
        );
        assert_eq!(
            headers.get("x-request-id").and_then(|v| v.as_str()),
            Some("req-123")
        );
    }
    let resp = http
        .get(server.url("/keep/v1"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("send");
    let echo: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(
        echo["path"], "/keep/v1",
        "prefix kept without --strip-prefix"
    );
    assert!(
        echo["headers"]["x-request-id"]
            .as_str()
            .is_some_and(|v| v.len() >= 32),
        "a request id is made when absent"
    );
}
both_backends!(keys_from_every_header_and_clean_forwarding);

async fn the_upstream_credential_is_injected(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    let mut env = crate::harness::base_env(&db, &[("UPSTREAM_SECRET", "sk-upstream-123")]);
    env.retain(|(k, _)| k != "TOLLGATE_GATEWAY_LISTEN" && k != "TOLLGATE_CONSOLE_LISTEN");
    let out = crate::harness::cli_env(
        &env,
        db.dir.path(),
        &[
            "route",
            "add",
            "--name",
            "ai",
            "--prefix",
            "/ai",
            "--upstream",
            &mock.url(),
            "--kind",
            "openai",
            "--strip-prefix",
            "--upstream-key-env",
            "UPSTREAM_SECRET",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = crate::harness::cli_json(&db, &["route", "list", "--json"]);
    assert_eq!(listed[0]["has_credential"], true);
    assert!(
        !listed.to_string().contains("sk-upstream-123"),
        "the credential is never shown"
    );
    let (_, key) = add_key(&db, "k", &[]);
    let server = Server::start(&db, &[]).await;
    let resp = client()
        .get(server.url("/ai/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("send");
    let echo: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(echo["headers"]["authorization"], "Bearer sk-upstream-123");
    assert!(
        !server.logs().contains("sk-upstream-123") && !server.logs().contains(&key),
        "secrets never logged"
    );
}
both_backends!(the_upstream_credential_is_injected);

async fn streams_are_not_buffered(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    add_route(&db, "s", "/s", &mock.url(), &["--strip-prefix"]);
    let (_, key) = add_key(&db, "k", &[]);
    let server = Server::start(&db, &[]).await;
    let started = Instant::now();
    let resp = client()
        .get(server.url("/s/sse"))
        .bearer_auth(&key)
        .header("x-mock-chunks", "5")
        .header("x-mock-chunk-delay-ms", "400")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let first = body.next().await.expect("a first chunk").expect("chunk");
    let first_at = started.elapsed();
    assert!(!first.is_empty());
    let mut rest = 0;
    while let Some(chunk) = body.next().await {
        rest += chunk.expect("chunk").len();
    }
    let done_at = started.elapsed();
    assert!(rest > 0);
    assert!(
        done_at >= Duration::from_millis(1600),
        "the upstream took ~2 s: {done_at:?}"
    );
    assert!(
        first_at < done_at / 2,
        "first chunk at {first_at:?} must come long before the end at {done_at:?}"
    );
}
both_backends!(streams_are_not_buffered);

async fn a_revoked_key_is_refused_within_a_second(backend: Backend) {
    let mock = MockUpstream::start().await.expect("mock");
    let db = TestDb::new(backend).await;
    add_route(&db, "echo", "/echo", &mock.url(), &[]);
    let (id, key) = add_key(&db, "k", &[]);
    let server = Server::start(&db, &[]).await;
    let http = client();
    assert_eq!(
        http.get(server.url("/echo"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("send")
            .status(),
        200
    );
    assert!(
        cli(&db, &["key", "revoke", &id.to_string()])
            .status
            .success()
    );
    let revoked_at = Instant::now();
    loop {
        let status = http
            .get(server.url("/echo"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("send")
            .status();
        if status == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "still accepted after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A route added from the CLI is live within a second too.
    add_route(&db, "late", "/late", &mock.url(), &[]);
    let (_, key2) = add_key(&db, "k2", &[]);
    let added_at = Instant::now();
    loop {
        let status = http
            .get(server.url("/late/x"))
            .bearer_auth(&key2)
            .send()
            .await
            .expect("send")
            .status();
        if status == 200 {
            break;
        }
        assert!(
            added_at.elapsed() < Duration::from_secs(1),
            "new route and key not live after 1 s ({status})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
both_backends!(a_revoked_key_is_refused_within_a_second);

#[tokio::test]
async fn health_and_metrics_answer() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = Server::start(&db, &[]).await;
    let http = client();
    let health: serde_json::Value = http
        .get(server.console_url("/health"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    let detailed: serde_json::Value = http
        .get(server.console_url("/health/detailed"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(detailed["status"], "ok", "{detailed}");
    assert_eq!(detailed["components"]["store"]["status"], "ok");
    assert!(
        detailed["components"]["store"]["round_trip_ms"]
            .as_f64()
            .is_some()
    );
    let _ = http.get(server.url("/x")).send().await.expect("send");
    server.wait_flushed().await;
    let text = server.metrics().await;
    assert!(
        text.contains("tollgate_gateway_requests_total{status=\"401\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("tollgate_gateway_request_duration_seconds_bucket"),
        "{text}"
    );
    assert_eq!(
        server.metric("tollgate_usage_events_written_total").await,
        1.0
    );
    assert_eq!(
        server.metric("tollgate_usage_events_dropped_total").await,
        0.0
    );
}
