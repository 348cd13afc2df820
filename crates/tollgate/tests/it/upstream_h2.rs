//! HTTP/2 to upstreams that offer it: over TLS the gateway offers `h2` and `http/1.1` by ALPN
//! and uses whichever the upstream picks; plain-HTTP upstreams stay on HTTP/1.1. The upstream is
//! the mock speaking TLS with a self-signed certificate, trusted through
//! `gateway.upstream_ca_file`. On h2, usage capture, SSE, timeouts and 499 behave as on HTTP/1.1,
//! nothing HTTP/2 forbids is sent, and concurrent calls share one connection.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use reqwest::Version;
use tollgate_mock_upstream::{MockUpstream, TlsOffer};

use crate::both_backends;
use crate::harness::{Backend, Server, TestDb, add_key, add_route, client, wait_events};

/// Writes the mock's certificate next to the store and starts the gateway trusting it, with its
/// default settings (h2 offered) and `env` besides.
async fn start_trusting(db: &TestDb, mock: &MockUpstream, env: &[(&str, &str)]) -> Server {
    let pem = mock.ca_pem().expect("a TLS mock has a certificate");
    let path = db.dir.path().join("upstream-ca.pem");
    std::fs::write(&path, pem).expect("write the CA file");
    let path = path.display().to_string();
    let mut env = env.to_vec();
    env.push(("TOLLGATE_GATEWAY__UPSTREAM_CA_FILE", path.as_str()));
    Server::start(db, &env).await
}

/// A TLS mock offering h2 and HTTP/1.1, an `http` route `/plain` to it, a key, and the gateway
/// trusting the mock with `env` besides.
async fn gateway_to_h2_mock(env: &[(&str, &str)]) -> (MockUpstream, TestDb, String, Server) {
    let mock = MockUpstream::start_tls(TlsOffer::H2AndHttp1)
        .await
        .expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    add_route(&db, "plain", "/plain", &mock.url(), &["--strip-prefix"]);
    let (_, key) = add_key(&db, "k", &[]);
    let server = start_trusting(&db, &mock, env).await;
    (mock, db, key, server)
}

/// A counter from `/metrics`, 0 when the series does not exist yet.
async fn counter(server: &Server, series: &str) -> f64 {
    server
        .metrics()
        .await
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

const H2_CALLS: &str = "tollgate_gateway_upstream_calls_total{protocol=\"h2\"}";
const H1_CALLS: &str = "tollgate_gateway_upstream_calls_total{protocol=\"http/1.1\"}";

async fn chat(server: &Server, key: &str, stream: bool, prompt: u32, completion: u32) -> String {
    let resp = client()
        .post(server.url("/openai/v1/chat/completions"))
        .bearer_auth(key)
        .header("x-mock-prompt-tokens", prompt.to_string())
        .header("x-mock-completion-tokens", completion.to_string())
        .json(&serde_json::json!({
            "model": "gpt-4o-mini",
            "stream": stream,
            "messages": [{"role": "user", "content": "hello"}],
        }))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "stream={stream}");
    resp.text().await.expect("body")
}

/// JSON and SSE calls through an h2 upstream arrive as HTTP/2 and their usage is captured
/// exactly, as on HTTP/1.1; the protocol metric counts them as h2.
async fn llm_calls_go_over_h2_with_usage(backend: Backend) {
    let mock = MockUpstream::start_tls(TlsOffer::H2AndHttp1)
        .await
        .expect("mock");
    let db = TestDb::new(backend).await;
    add_route(
        &db,
        "llm",
        "/openai",
        &mock.url(),
        &["--kind", "openai", "--strip-prefix"],
    );
    let (_, key) = add_key(&db, "k", &[]);
    let server = start_trusting(&db, &mock, &[]).await;

    let json = chat(&server, &key, false, 13, 5).await;
    let answer: serde_json::Value = serde_json::from_str(&json).expect("JSON answer");
    assert_eq!(answer["usage"]["prompt_tokens"], 13);
    assert_eq!(answer["usage"]["completion_tokens"], 5);
    let sse = chat(&server, &key, true, 17, 9).await;
    assert!(sse.contains("data: [DONE]"), "the stream ends: {sse}");
    assert!(
        !sse.contains("\"usage\":{"),
        "the usage chunk the gateway asked for is hidden from a client that did not: {sse}"
    );

    let store = db.open().await;
    let events = wait_events(&*store, 2).await;
    let mut tokens: Vec<(i64, i64, bool)> = events
        .iter()
        .map(|e| (e.tokens.prompt, e.tokens.completion, e.estimated))
        .collect();
    tokens.sort_unstable();
    assert_eq!(tokens, vec![(13, 5, false), (17, 9, false)]);
    assert!(events.iter().all(|e| e.status == 200));

    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.version, Version::HTTP_2, "{}", request.path);
        assert_eq!(request.path, "/v1/chat/completions");
    }
    assert_eq!(counter(&server, H2_CALLS).await, 2.0);
    assert_eq!(counter(&server, H1_CALLS).await, 0.0);
}
both_backends!(llm_calls_go_over_h2_with_usage);

/// Many concurrent calls to an h2 upstream share its one connection; the same load against an
/// upstream that only speaks HTTP/1.1 over TLS needs a connection per call in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_one_h2_connection() {
    const CALLS: usize = 40;
    let h2 = MockUpstream::start_tls(TlsOffer::H2AndHttp1)
        .await
        .expect("mock");
    let h1 = MockUpstream::start_tls(TlsOffer::Http1Only)
        .await
        .expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    add_route(&db, "h2", "/h2", &h2.url(), &["--strip-prefix"]);
    add_route(&db, "h1", "/h1", &h1.url(), &["--strip-prefix"]);
    let (_, key) = add_key(&db, "k", &[]);
    // One file trusting both mocks' certificates.
    let pem = format!("{}{}", h2.ca_pem().expect("pem"), h1.ca_pem().expect("pem"));
    let path = db.dir.path().join("both-ca.pem");
    std::fs::write(&path, pem).expect("write the CA file");
    let path = path.display().to_string();
    // h2 is offered by default: no `upstream_http2` setting here.
    let server = Server::start(
        &db,
        &[("TOLLGATE_GATEWAY__UPSTREAM_CA_FILE", path.as_str())],
    )
    .await;
    let http = client();

    for prefix in ["/h2", "/h1"] {
        // A first call opens the connection (and settles the protocol by ALPN).
        let resp = http
            .get(server.url(&format!("{prefix}/static")))
            .bearer_auth(&key)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
        let calls = (0..CALLS).map(|_| {
            let http = http.clone();
            let url = server.url(&format!("{prefix}/static"));
            let key = key.clone();
            async move {
                let resp = http
                    .get(url)
                    .bearer_auth(key)
                    .header("x-mock-latency-ms", "300")
                    .send()
                    .await
                    .expect("send");
                assert_eq!(resp.status(), 200);
                resp.bytes().await.expect("body");
            }
        });
        futures_util::future::join_all(calls).await;
    }

    assert_eq!(h2.request_count(), CALLS + 1);
    assert!(h2.requests().iter().all(|r| r.version == Version::HTTP_2));
    assert_eq!(
        h2.connection_count(),
        1,
        "every call to the h2 upstream went over its one connection"
    );
    assert_eq!(h1.request_count(), CALLS + 1);
    assert!(h1.requests().iter().all(|r| r.version == Version::HTTP_11));
    assert!(
        h1.connection_count() >= CALLS / 2,
        "HTTP/1.1 needs a connection per call in flight (opened {})",
        h1.connection_count()
    );
    assert_eq!(counter(&server, H2_CALLS).await, (CALLS + 1) as f64);
    assert_eq!(counter(&server, H1_CALLS).await, (CALLS + 1) as f64);
}

/// A plain-HTTP upstream stays on HTTP/1.1 (with the `Host` of the upstream URL), and an upstream
/// that offers only `http/1.1` over TLS still works, with its usage captured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_upstreams_stay_on_http1() {
    let plain = MockUpstream::start().await.expect("mock");
    let tls_h1 = MockUpstream::start_tls(TlsOffer::Http1Only)
        .await
        .expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    add_route(&db, "plain", "/plain", &plain.url(), &["--strip-prefix"]);
    add_route(
        &db,
        "llm",
        "/openai",
        &tls_h1.url(),
        &["--kind", "openai", "--strip-prefix"],
    );
    let (_, key) = add_key(&db, "k", &[]);
    let server = start_trusting(&db, &tls_h1, &[]).await;

    let resp = client()
        .post(server.url("/plain/echo"))
        .bearer_auth(&key)
        .body("over plain http")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let sse = chat(&server, &key, true, 21, 4).await;
    assert!(sse.contains("data: [DONE]"));

    let [request] = plain.requests().try_into().expect("one request");
    assert_eq!(request.version, Version::HTTP_11);
    assert_eq!(
        request.header("host"),
        Some(plain.addr().to_string().as_str())
    );
    assert_eq!(request.body.as_ref(), b"over plain http");
    let [request] = tls_h1.requests().try_into().expect("one request");
    assert_eq!(request.version, Version::HTTP_11);
    assert_eq!(
        request.header("host"),
        Some(tls_h1.addr().to_string().as_str()),
        "the client sets Host from the upstream URL on HTTP/1.1 over TLS"
    );
    let store = db.open().await;
    let events = wait_events(&*store, 2).await;
    let llm = events
        .iter()
        .find(|e| e.route.as_deref() == Some("llm"))
        .expect("the LLM call's event");
    assert_eq!((llm.tokens.prompt, llm.tokens.completion), (21, 4));
    assert!(!llm.estimated);
    assert_eq!(counter(&server, H1_CALLS).await, 2.0);
    assert_eq!(counter(&server, H2_CALLS).await, 0.0);
}

/// Headers HTTP/2 forbids (connection-specific ones, `host`) are not sent to an h2 upstream even
/// when the client sends them; a streamed (chunked) request body arrives whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_forbidden_on_h2_are_not_sent() {
    let (mock, _db, key, server) = gateway_to_h2_mock(&[]).await;

    let pieces = ["first piece, ", "second piece"];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(
        pieces.map(|p| Ok::<_, std::io::Error>(p.as_bytes().to_vec())),
    ));
    let resp = client()
        .post(server.url("/plain/echo"))
        .bearer_auth(&key)
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "named by connection")
        .header("keep-alive", "timeout=5")
        .header("proxy-connection", "keep-alive")
        .header("te", "trailers")
        .header("upgrade", "websocket")
        .header("x-end-to-end", "kept")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "h2 would refuse a forbidden header");
    let [request] = mock.requests().try_into().expect("one request");
    assert_eq!(request.version, Version::HTTP_2);
    for name in [
        "connection",
        "x-hop",
        "keep-alive",
        "proxy-connection",
        "te",
        "transfer-encoding",
        "upgrade",
        "host",
    ] {
        assert_eq!(request.header(name), None, "{name} was sent on h2");
    }
    assert_eq!(request.header("x-end-to-end"), Some("kept"));
    assert_eq!(request.body.as_ref(), pieces.concat().as_bytes());
}

/// On h2 the route's timeout still ends a call whose head is late (504), and a client that hangs
/// up mid-stream is recorded as 499.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_hang_ups_on_h2() {
    let mock = MockUpstream::start_tls(TlsOffer::H2AndHttp1)
        .await
        .expect("mock");
    let db = TestDb::new(Backend::Sqlite).await;
    add_route(
        &db,
        "slow",
        "/slow",
        &mock.url(),
        &["--strip-prefix", "--timeout", "1s"],
    );
    add_route(&db, "plain", "/plain", &mock.url(), &["--strip-prefix"]);
    let (_, key) = add_key(&db, "k", &[]);
    let server = start_trusting(&db, &mock, &[]).await;

    let started = Instant::now();
    let resp = client()
        .get(server.url("/slow/static"))
        .bearer_auth(&key)
        .header("x-mock-latency-ms", "5000")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 504);
    let error: serde_json::Value = resp.json().await.expect("error JSON");
    assert_eq!(error["error"]["code"], "upstream_timeout", "{error}");
    assert!(started.elapsed() < Duration::from_secs(4));

    let resp = client()
        .get(server.url("/plain/sse"))
        .bearer_auth(&key)
        .header("x-mock-chunks", "50")
        .header("x-mock-chunk-delay-ms", "200")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    let first = body.next().await.expect("a first event").expect("chunk");
    assert!(!first.is_empty());
    drop(body);

    let store = db.open().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = store.recent_usage(100).await.expect("events");
        if events.iter().any(|e| e.status == 499) {
            assert!(events.iter().any(|e| e.status == 504));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 499 recorded: {:?}",
            events.iter().map(|e| e.status).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.version == Version::HTTP_2));
}

/// A `gateway.upstream_ca_file` that cannot be read or holds no usable certificate is refused at
/// load with a message naming the setting and the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_upstream_ca_file_is_refused_at_load() {
    let db = TestDb::new(Backend::Sqlite).await;
    let missing = db.dir.path().join("missing.pem");
    let garbage = db.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let broken = db.dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    for (path, says) in [
        (&missing, "cannot read"),
        (&garbage, "holds no certificate"),
        (&broken, "unusable"),
    ] {
        let path = path.display().to_string();
        let env = crate::harness::base_env(
            &db,
            &[("TOLLGATE_GATEWAY__UPSTREAM_CA_FILE", path.as_str())],
        );
        for args in [&["config"][..], &["serve"][..]] {
            let out = crate::harness::cli_env(&env, db.dir.path(), args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} accepted {path}");
            assert!(
                stderr.contains("gateway.upstream_ca_file") && stderr.contains(says),
                "{args:?} with {path}: {stderr}"
            );
            assert!(
                stderr.contains(&path),
                "the message names the file: {stderr}"
            );
        }
    }
}

/// More calls at once than one h2 connection carries (100) open more connections instead of
/// waiting behind the upstream's stream limit; once they end, later calls reuse those
/// connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_calls_than_one_h2_connection_carries_open_more_connections() {
    const CALLS: usize = 250;
    let (mock, _db, key, server) = gateway_to_h2_mock(&[]).await;
    let http = client();
    let wave = |latency_ms: &'static str| {
        futures_util::future::join_all((0..CALLS).map(|_| {
            let http = http.clone();
            let url = server.url("/plain/static");
            let key = key.clone();
            async move {
                let resp = http
                    .get(url)
                    .bearer_auth(key)
                    .header("x-mock-latency-ms", latency_ms)
                    .send()
                    .await
                    .expect("send");
                assert_eq!(resp.status(), 200);
                resp.bytes().await.expect("body");
            }
        }))
    };
    // One-second calls, so that all of them are in flight at once.
    wave("1000").await;
    assert_eq!(mock.request_count(), CALLS);
    assert!(mock.requests().iter().all(|r| r.version == Version::HTTP_2));
    assert_eq!(
        mock.connection_count(),
        CALLS.div_ceil(100),
        "100 calls per connection, opened one at a time"
    );
    wave("10").await;
    assert_eq!(mock.request_count(), 2 * CALLS);
    assert_eq!(
        mock.connection_count(),
        CALLS.div_ceil(100),
        "the open ones were reused"
    );
    assert_eq!(counter(&server, H2_CALLS).await, (2 * CALLS) as f64);
}

/// With `gateway.upstream_http2 = false` the gateway offers only `http/1.1`, even to an upstream
/// that would speak h2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_http2_off_keeps_tls_upstreams_on_http1() {
    let (mock, _db, key, server) =
        gateway_to_h2_mock(&[("TOLLGATE_GATEWAY__UPSTREAM_HTTP2", "false")]).await;
    let resp = client()
        .get(server.url("/plain/static"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let [request] = mock.requests().try_into().expect("one request");
    assert_eq!(request.version, Version::HTTP_11);
    assert_eq!(counter(&server, H1_CALLS).await, 1.0);
    assert_eq!(counter(&server, H2_CALLS).await, 0.0);
}
