//! The gateway end to end in one process: a real SQLite store, the real usage writer, the mock
//! upstream, and reqwest (or a raw socket where reqwest would normalise the request) as client.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions fail loudly too"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "tests start servers and workers on their own runtime, which ends with the test"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tollgate_core::crypto::{MasterKey, SealedRow};
use tollgate_core::pricing::{ModelPrice, PriceTable, Prices};
use tollgate_core::time::now_ms;
use tollgate_core::{ApiKey, RouteKind, UsageEvent};
use tollgate_gateway::metrics::Metrics;
use tollgate_gateway::writer::{Durability, UsageWriter, WriterConfig};
use tollgate_gateway::{Gateway, GatewayConfig};
use tollgate_mock_upstream::{MockUpstream, RecordedRequest};
use tollgate_store::{
    KeyQueries, NewKey, NewRoute, RouteQueries, RouteRecord, RouteUpdate, Store, TeamQueries,
    UsageQueries,
};
use tollgate_store_sqlite::SqliteStore;

const MAX_BODY: u64 = 64 * 1024;

struct Keys {
    main: ApiKey,
    main_id: i64,
    limited: ApiKey,
    expired: ApiKey,
    revoked: ApiKey,
}

struct Fixture {
    _dir: TempDir,
    store: Arc<SqliteStore>,
    gateway: Gateway,
    metrics: Arc<Metrics>,
    mock: MockUpstream,
    base: String,
    addr: SocketAddr,
    http: reqwest::Client,
    keys: Keys,
    team_id: i64,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    writer: Option<UsageWriter>,
}

fn master_key() -> MasterKey {
    MasterKey::new(&"m".repeat(40)).unwrap()
}

#[expect(
    clippy::too_many_arguments,
    reason = "a test helper mirroring NewRoute"
)]
async fn add_route(
    store: &SqliteStore,
    team_id: Option<i64>,
    name: &str,
    prefix: &str,
    upstream: &str,
    kind: RouteKind,
    strip_prefix: bool,
    timeout_ms: i64,
    credential: Option<&str>,
) -> RouteRecord {
    let route = store
        .create_route(NewRoute {
            team_id,
            name: name.to_owned(),
            prefix: prefix.to_owned(),
            upstream_url: upstream.to_owned(),
            kind,
            strip_prefix,
            connect_timeout_ms: 1_000,
            timeout_ms,
            sealed_credential: None,
            credential_header: None,
        })
        .await
        .unwrap();
    match credential {
        // Sealed for the route's id, which exists once the route does.
        Some(c) => store
            .update_route(
                route.id,
                RouteUpdate {
                    sealed_credential: Some(Some(
                        master_key().seal(c.as_bytes(), SealedRow::RouteCredential(route.id)),
                    )),
                    ..RouteUpdate::default()
                },
            )
            .await
            .unwrap(),
        None => route,
    }
}

async fn add_key(
    store: &SqliteStore,
    team_id: i64,
    name: &str,
    expires_at_ms: Option<i64>,
    route_ids: Option<Vec<i64>>,
) -> (ApiKey, i64) {
    let key = ApiKey::generate();
    let record = store
        .create_key(NewKey {
            team_id,
            name: name.to_owned(),
            description: String::new(),
            key_hash: key.hash(),
            prefix: key.display_prefix(),
            sealed_key: None,
            created_by: Some("test".to_owned()),
            expires_at_ms,
            route_ids,
        })
        .await
        .unwrap();
    (key, record.id)
}

async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

impl Fixture {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tweak: impl FnOnce(&mut GatewayConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("tollgate.db").display());
        let store = Arc::new(SqliteStore::connect(&url).await.unwrap());
        store.migrate().await.unwrap();
        let team_id = store.ensure_team("default").await.unwrap().id;
        let other_team = store.ensure_team("other").await.unwrap().id;

        let mock = MockUpstream::start().await.unwrap();
        let up = mock.url();
        let dead = format!("http://127.0.0.1:{}", closed_port().await);
        let http = RouteKind::Http;
        let echo = add_route(
            &store,
            None,
            "echo",
            "/echo",
            &up,
            http,
            true,
            5_000,
            Some("svc-secret"),
        )
        .await;
        let v2 = format!("{up}/v2base");
        add_route(
            &store, None, "echo-v2", "/echo/v2", &v2, http, true, 5_000, None,
        )
        .await;
        add_route(&store, None, "keep", "/keep", &up, http, false, 5_000, None).await;
        add_route(&store, None, "slow", "/slow", &up, http, true, 400, None).await;
        add_route(
            &store, None, "dead", "/dead", &dead, http, true, 1_000, None,
        )
        .await;
        add_route(
            &store,
            Some(other_team),
            "other",
            "/other",
            &up,
            http,
            true,
            5_000,
            None,
        )
        .await;
        let foreign = MasterKey::new(&"f".repeat(40))
            .unwrap()
            .seal(b"sealed elsewhere", SealedRow::RouteCredential(0));
        store
            .create_route(NewRoute {
                team_id: None,
                name: "badcred".to_owned(),
                prefix: "/badcred".to_owned(),
                upstream_url: up.clone(),
                kind: http,
                strip_prefix: true,
                connect_timeout_ms: 1_000,
                timeout_ms: 5_000,
                sealed_credential: Some(foreign),
                credential_header: None,
            })
            .await
            .unwrap();
        let openai = RouteKind::Openai;
        add_route(
            &store,
            None,
            "openai",
            "/openai",
            &up,
            openai,
            true,
            5_000,
            Some("sk-upstream"),
        )
        .await;
        let anthropic = RouteKind::Anthropic;
        add_route(
            &store,
            None,
            "anthropic",
            "/anthropic",
            &up,
            anthropic,
            true,
            5_000,
            Some("ak-up"),
        )
        .await;

        let (main, main_id) = add_key(&store, team_id, "main", None, None).await;
        let (limited, _) = add_key(&store, team_id, "limited", None, Some(vec![echo.id])).await;
        let (expired, _) = add_key(&store, team_id, "expired", Some(now_ms() - 60_000), None).await;
        let (revoked, revoked_id) = add_key(&store, team_id, "revoked", None, None).await;
        store.revoke_key(revoked_id, now_ms()).await.unwrap();

        let metrics = Metrics::new();
        let writer_config = WriterConfig {
            queue_capacity: 10_000,
            batch_size: 200,
            batch_interval: Duration::from_millis(20),
            spool_dir: dir.path().join("spool"),
            durability: Durability::Memory,
        };
        let dyn_store: Arc<dyn Store> = store.clone();
        let (writer, sink) =
            UsageWriter::start(dyn_store.clone(), writer_config, metrics.clone()).unwrap();
        let mut prices = PriceTable::default();
        prices.0.insert(
            "gpt-4o-mini".to_owned(),
            ModelPrice {
                input: 0.15,
                output: 0.6,
                cached_input: None,
                reasoning: None,
            },
        );
        let mut config = GatewayConfig {
            max_body_bytes: MAX_BODY,
            master_key: Some(master_key()),
            prices: Arc::new(Prices::new(prices)),
            ..GatewayConfig::default()
        };
        tweak(&mut config);
        let gateway = Gateway::new(dyn_store, sink, metrics.clone(), config)
            .await
            .unwrap();
        gateway.spawn_refresher();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = gateway.clone();
        let server = tokio::spawn(async move {
            serving
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await
        });
        Self {
            _dir: dir,
            store,
            gateway,
            metrics,
            mock,
            base: format!("http://{addr}"),
            addr,
            http: reqwest::Client::new(),
            keys: Keys {
                main,
                main_id,
                limited,
                expired,
                revoked,
            },
            team_id,
            stop: Some(stop),
            server: Some(server),
            writer: Some(writer),
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base))
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.keys.main.expose())
    }

    /// The one usage event with this request id, waiting for the writer.
    async fn event(&self, request_id: &str) -> UsageEvent {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut found: Vec<UsageEvent> = self
                .store
                .recent_usage(10_000)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.request_id.as_deref() == Some(request_id))
                .collect();
            assert!(
                found.len() <= 1,
                "more than one event for {request_id}: {found:?}"
            );
            if let Some(event) = found.pop() {
                return event;
            }
            assert!(Instant::now() < deadline, "no usage event for {request_id}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Like [`Fixture::event`], then checks that no second event for the call turns up.
    async fn only_event(&self, request_id: &str) -> UsageEvent {
        let event = self.event(request_id).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let count = self
            .store
            .recent_usage(10_000)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.request_id.as_deref() == Some(request_id))
            .count();
        assert_eq!(count, 1, "exactly one event for {request_id}");
        event
    }

    /// The request the mock received with this request id.
    fn upstream_request(&self, request_id: &str) -> Option<RecordedRequest> {
        self.mock
            .requests()
            .into_iter()
            .find(|r| r.header("x-request-id") == Some(request_id))
    }

    async fn stop(&mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = match self.server.take() {
            Some(server) => server.await.unwrap(),
            None => Ok(()),
        };
        if let Some(writer) = self.writer.take() {
            writer.shutdown().await;
        }
        result
    }
}

fn rid(label: &str) -> String {
    format!("{label}-{}", uuid::Uuid::now_v7())
}

/// Checks the refusal shape and returns the error code.
async fn refusal(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["error"]["type"].as_str().is_some(), "{body}");
    body["error"]["code"].as_str().unwrap().to_owned()
}

/// Sends raw bytes and returns the whole answer (the request must ask for `Connection: close`).
async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_json_with_its_status_and_is_recorded() {
    let fx = Fixture::start().await;
    let main = || Some(fx.keys.main.expose().to_owned());
    let key = |k: &ApiKey| Some(k.expose().to_owned());
    let unknown = ApiKey::generate();
    let cases: Vec<(&str, Option<String>, &str, u16, &str)> = vec![
        ("missing", None, "/echo/x", 401, "missing_api_key"),
        (
            "garbage",
            Some("ntk_garbage".to_owned()),
            "/echo/x",
            401,
            "invalid_api_key",
        ),
        ("unknown", key(&unknown), "/echo/x", 401, "invalid_api_key"),
        (
            "expired",
            key(&fx.keys.expired),
            "/echo/x",
            401,
            "expired_api_key",
        ),
        (
            "revoked",
            key(&fx.keys.revoked),
            "/echo/x",
            401,
            "revoked_api_key",
        ),
        (
            "limited",
            key(&fx.keys.limited),
            "/keep/x",
            403,
            "route_not_allowed",
        ),
        ("team", main(), "/other/x", 403, "route_not_allowed"),
        ("noroute", main(), "/nowhere", 404, "no_route"),
        ("dead", main(), "/dead/x", 502, "upstream_unreachable"),
        ("badcred", main(), "/badcred/x", 502, "route_misconfigured"),
    ];
    for (label, key, path, status, code) in cases {
        let id = rid(label);
        let mut request = fx.get(path).header("x-request-id", &id);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["x-request-id"], id.as_str(), "{label}");
        assert_eq!(refusal(response, status).await, code, "{label}");
        let event = fx.event(&id).await;
        assert_eq!(event.status, status, "{label}");
        assert!(
            event.error.as_deref().is_some_and(|e| e.contains(code)),
            "{label}: {event:?}"
        );
        assert_eq!(event.path, path);
        assert_eq!(event.method, "GET");
        assert_eq!(event.client_ip.as_deref(), Some("127.0.0.1"));
        let key_known = !matches!(label, "missing" | "garbage" | "unknown");
        assert_eq!(event.key_id.is_some(), key_known, "{label}: {event:?}");
        assert_eq!(event.team_id.is_some(), key_known, "{label}: {event:?}");
    }
    // The limited key may call the route it lists.
    let ok = fx
        .get("/echo/x")
        .header("x-api-key", fx.keys.limited.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let rendered = fx.metrics.render();
    assert!(
        rendered.contains(r#"tollgate_gateway_requests_total{status="401"} 5"#),
        "{rendered}"
    );
    assert!(
        rendered.contains(r#"tollgate_gateway_requests_total{status="502"} 2"#),
        "{rendered}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_header_works_and_the_key_never_reaches_the_upstream() {
    let fx = Fixture::start().await;
    let key = fx.keys.main.expose();
    for (header, value) in [
        ("authorization", format!("Bearer {key}")),
        ("X-API-Key", key.to_owned()),
        ("x-api-key", key.to_owned()),
        ("api-key", key.to_owned()),
    ] {
        let id = rid("header");
        let response = fx
            .get("/echo/hello")
            .header(header, &value)
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{header}");
        let seen = fx.upstream_request(&id).unwrap();
        assert_eq!(seen.path, "/hello");
        // The route's credential replaces whatever the client sent.
        assert_eq!(
            seen.header("authorization"),
            Some("Bearer svc-secret"),
            "{header}"
        );
        assert_eq!(seen.header("x-api-key"), None, "{header}");
        assert_eq!(seen.header("api-key"), None, "{header}");
        assert!(
            seen.headers.iter().all(|(_, v)| !v.contains(key)),
            "the tollgate key leaked upstream via {header}"
        );
        let event = fx.event(&id).await;
        assert_eq!(event.status, 200);
        assert_eq!(event.key_id, Some(fx.keys.main_id));
        assert_eq!(event.key_hash, Some(fx.keys.main.hash()));
        assert_eq!(event.team_id, Some(fx.team_id));
        assert_eq!(event.route.as_deref(), Some("echo"));
        assert!(event.upstream_latency_us.is_some());
        assert!(event.error.is_none());
        let (first, last) = (event.upstream_latency_us, event.upstream_last_byte_us);
        assert!(
            first <= last && last <= Some(event.latency_us),
            "first byte ≤ last byte ≤ total: {event:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_go_and_forwarding_headers_come() {
    let fx = Fixture::start().await;
    let id = rid("hops");
    let answer = raw(
        fx.addr,
        &format!(
            "GET /echo/h?a=1&b=2 HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: {}\r\n\
             Connection: close, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\n\
             Proxy-Authorization: Basic abc\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\
             Trailer: X-Foo\r\nUpgrade: websocket\r\nX-Forwarded-For: 10.1.2.3\r\nX-Kept: yes\r\n\
             X-Request-Id: {id}\r\nUser-Agent: hop-test/1\r\n\r\n",
            fx.bearer()
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains(&format!("x-request-id: {id}")),
        "{answer}"
    );
    let seen = fx.upstream_request(&id).unwrap();
    assert_eq!(seen.path, "/h?a=1&b=2");
    for gone in [
        "x-hop",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "connection",
    ] {
        assert_eq!(seen.header(gone), None, "{gone} was forwarded");
    }
    assert_eq!(seen.header("x-kept"), Some("yes"));
    // The peer is no trusted proxy: its X-Forwarded-For is replaced, not extended.
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(
        seen.header("host"),
        Some(fx.mock.addr().to_string().as_str())
    );
    let event = fx.event(&id).await;
    assert_eq!(event.path, "/echo/h", "no query in the recorded path");
    assert_eq!(event.user_agent.as_deref(), Some("hop-test/1"));

    // Without an incoming id, one is made (a UUID) and sent both ways.
    let response = fx
        .get("/echo/fresh")
        .header("authorization", fx.bearer())
        .send()
        .await
        .unwrap();
    let made = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    assert!(fx.upstream_request(&made).is_some());
    assert_eq!(fx.event(&made).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_follow_strip_prefix_and_the_longest_prefix() {
    let fx = Fixture::start().await;
    for (path, upstream_path, route) in [
        ("/echo/a/b?x=1", "/a/b?x=1", "echo"),
        ("/echo", "/", "echo"),
        ("/echo/v2/a", "/v2base/a", "echo-v2"),
        ("/echo/v2", "/v2base", "echo-v2"),
        ("/echo/v2x", "/v2x", "echo"),
        ("/keep/a", "/keep/a", "keep"),
    ] {
        let id = rid("path");
        let response = fx
            .get(path)
            .header("authorization", fx.bearer())
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            fx.upstream_request(&id).unwrap().path,
            upstream_path,
            "{path}"
        );
        assert_eq!(fx.event(&id).await.route.as_deref(), Some(route), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_are_refused() {
    let fx = Fixture::start().await;
    for path in ["/echo/../admin", "/echo/%2e%2e/admin", "/echo/./x"] {
        let answer = raw(
            fx.addr,
            &format!(
                "GET {path} HTTP/1.1\r\nHost: g\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
                fx.bearer()
            ),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains(r#""code":"invalid_path""#), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_reach_the_client_chunk_by_chunk() {
    let fx = Fixture::start().await;
    let id = rid("sse");
    let started = Instant::now();
    let mut response = fx
        .get("/echo/sse")
        .header("authorization", fx.bearer())
        .header("x-request-id", &id)
        .header("x-mock-chunks", "5")
        .header("x-mock-chunk-delay-ms", "300")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut arrivals = Vec::new();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        arrivals.push(started.elapsed());
        body.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(body).unwrap();
    assert_eq!(text.matches("data: ").count(), 5, "{text}");
    let first = arrivals[0];
    let last = *arrivals.last().unwrap();
    assert!(
        last >= Duration::from_millis(1_100),
        "the upstream takes 1.2 s: {last:?}"
    );
    assert!(
        last - first >= Duration::from_millis(900),
        "the first chunk must arrive long before the last: first {first:?}, last {last:?}"
    );
    let event = fx.only_event(&id).await;
    assert_eq!(event.status, 200);
    assert!(
        event.latency_us >= 1_100_000,
        "latency counts until the body ended: {event:?}"
    );
    assert!(event.upstream_latency_us.unwrap() < 1_000_000, "{event:?}");
    // The upstream's last byte came at the stream's end, 1.2 s in: upstream time, not the
    // gateway's.
    let last_byte = event.upstream_last_byte_us.expect("the stream ended");
    assert!(
        (1_100_000..=event.latency_us).contains(&last_byte),
        "{event:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_is_recorded_as_499() {
    let fx = Fixture::start().await;
    // Mid-stream: take one chunk, then drop the connection.
    let id = rid("drop-mid");
    let mut response = fx
        .get("/echo/sse")
        .header("authorization", fx.bearer())
        .header("x-request-id", &id)
        .header("x-mock-chunks", "50")
        .header("x-mock-chunk-delay-ms", "100")
        .send()
        .await
        .unwrap();
    assert!(response.chunk().await.unwrap().is_some());
    drop(response);
    let event = fx.only_event(&id).await;
    assert_eq!(event.status, 499, "{event:?}");
    assert!(
        event.error.as_deref().is_some_and(|e| e.contains("client")),
        "{event:?}"
    );
    assert!(event.latency_us < 4_000_000, "{event:?}");
    assert_eq!(
        event.upstream_last_byte_us, None,
        "the upstream's answer never ended: {event:?}"
    );

    // Before the head: the client gives up while the upstream is still thinking.
    let id = rid("drop-head");
    let result = fx
        .get("/echo/late")
        .header("authorization", fx.bearer())
        .header("x-request-id", &id)
        .header("x-mock-latency-ms", "3000")
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(result.is_err());
    let event = fx.only_event(&id).await;
    assert_eq!(event.status, 499, "{event:?}");
    assert!(
        event.latency_us < 2_500_000,
        "recorded when the client left: {event:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_timeouts_give_504_or_end_the_stream() {
    let fx = Fixture::start().await;
    // No head within the route's 400 ms.
    let id = rid("hang-head");
    let started = Instant::now();
    let response = fx
        .get("/slow/x")
        .header("authorization", fx.bearer())
        .header("x-request-id", &id)
        .header("x-mock-latency-ms", "5000")
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(response, 504).await, "upstream_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let event = fx.event(&id).await;
    assert_eq!(event.status, 504);
    assert!(
        event
            .error
            .as_deref()
            .is_some_and(|e| e.contains("upstream_timeout"))
    );

    // A head, then silence: the stream is cut after the idle timeout and the event says why.
    let id = rid("hang-body");
    let started = Instant::now();
    let response = fx
        .get("/slow/x")
        .header("authorization", fx.bearer())
        .header("x-request-id", &id)
        .header("x-mock-hang", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = tokio::time::timeout(Duration::from_secs(5), response.bytes())
        .await
        .unwrap();
    assert!(body.is_err(), "a cut stream must not look complete");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let event = fx.only_event(&id).await;
    assert_eq!(event.status, 200);
    assert!(
        event
            .error
            .as_deref()
            .is_some_and(|e| e.contains("upstream_timeout")),
        "{event:?}"
    );
    assert!(event.upstream_latency_us.is_some(), "{event:?}");
    assert_eq!(
        event.upstream_last_byte_us, None,
        "a cut stream never ended"
    );
    assert!(
        fx.metrics
            .render()
            .contains("tollgate_gateway_upstream_errors_total 2")
    );

    // A connect that never completes: a listener whose accept queue is full drops new SYNs.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let blackhole = socket.listen(1).unwrap();
    let target = blackhole.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(target)).await
        {
            fillers.push(stream);
        }
    }
    let before = fx.gateway.route_count();
    add_route(
        &fx.store,
        None,
        "blackhole",
        "/blackhole",
        &format!("http://{target}"),
        RouteKind::Http,
        true,
        5_000,
        None,
    )
    .await;
    while fx.gateway.route_count() == before {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let id = rid("connect-timeout");
    let started = Instant::now();
    let response = fx
        .get("/blackhole/x")
        .header("authorization", fx.bearer())
        .header("x-request-id", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(response, 504).await, "upstream_timeout");
    // The route's connect timeout is 1 s; its response timeout (5 s) did not fire.
    assert!(
        started.elapsed() < Duration::from_millis(3_000),
        "{:?}",
        started.elapsed()
    );
    let event = fx.event(&id).await;
    assert!(
        event
            .error
            .as_deref()
            .is_some_and(|e| e.contains("connect")),
        "{event:?}"
    );
    drop(fillers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_and_headers_are_refused() {
    let fx = Fixture::start().await;
    let big = vec![b'x'; usize::try_from(MAX_BODY).unwrap() + 1];

    // Declared length over the limit: refused before reading, never forwarded.
    for path in ["/echo/upload", "/openai/v1/chat/completions"] {
        let id = rid("big-declared");
        let response = fx
            .post(path)
            .header("authorization", fx.bearer())
            .header("content-type", "application/json")
            .header("x-request-id", &id)
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(refusal(response, 413).await, "payload_too_large", "{path}");
        assert!(fx.upstream_request(&id).is_none());
        assert_eq!(fx.event(&id).await.status, 413);
    }

    // Streamed (chunked) bodies are counted as they pass.
    for path in ["/echo/upload", "/openai/v1/chat/completions"] {
        let id = rid("big-streamed");
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..8)
            .map(|_| Ok(vec![b'y'; usize::try_from(MAX_BODY / 4).unwrap()]))
            .collect();
        let response = fx
            .post(path)
            .header("authorization", fx.bearer())
            .header("content-type", "application/json")
            .header("x-request-id", &id)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(refusal(response, 413).await, "payload_too_large", "{path}");
        assert_eq!(fx.event(&id).await.status, 413);
    }

    // A body under the limit streams through whole.
    let id = rid("small-streamed");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..4).map(|i| Ok(vec![b'a' + i; 1000])).collect();
    let response = fx
        .post("/echo/upload")
        .header("authorization", fx.bearer())
        .header("x-request-id", &id)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(fx.upstream_request(&id).unwrap().body_len, 4000);

    let id = rid("big-header");
    let response = fx
        .get("/echo/x")
        .header("authorization", fx.bearer())
        .header("x-request-id", &id)
        .header("x-big", "h".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(response, 431).await, "header_too_large");
    assert_eq!(fx.event(&id).await.status, 431);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_within_a_second() {
    let fx = Fixture::start().await;
    let ok = fx
        .get("/echo/x")
        .header("authorization", fx.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "the key is now cached");
    let revoked_at = Instant::now();
    fx.store
        .revoke_key(fx.keys.main_id, now_ms())
        .await
        .unwrap();
    loop {
        let response = fx
            .get("/echo/x")
            .header("authorization", fx.bearer())
            .send()
            .await
            .unwrap();
        if response.status() == 401 {
            assert_eq!(refusal(response, 401).await, "revoked_api_key");
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "still accepted after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(revoked_at.elapsed() < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_added_while_running_is_served_within_a_second() {
    let fx = Fixture::start().await;
    let before = fx.gateway.route_count();
    let response = fx
        .get("/late/x")
        .header("authorization", fx.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(response, 404).await, "no_route");
    let added = Instant::now();
    add_route(
        &fx.store,
        None,
        "late",
        "/late",
        &fx.mock.url(),
        RouteKind::Http,
        true,
        5_000,
        None,
    )
    .await;
    loop {
        let response = fx
            .get("/late/x")
            .header("authorization", fx.bearer())
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            break;
        }
        assert!(
            added.elapsed() < Duration::from_secs(1),
            "route not served after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fx.gateway.route_count(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_calls_get_the_credential_and_their_usage() {
    let fx = Fixture::start().await;
    let id = rid("openai-json");
    let response = fx
        .post("/openai/v1/chat/completions")
        .header("authorization", fx.bearer())
        .header("x-request-id", &id)
        .header("x-mock-prompt-tokens", "13")
        .header("x-mock-completion-tokens", "5")
        .json(&serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["usage"]["prompt_tokens"], 13);
    let seen = fx.upstream_request(&id).unwrap();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.header("authorization"), Some("Bearer sk-upstream"));
    assert_eq!(seen.header("accept-encoding"), Some("identity"));
    let event = fx.event(&id).await;
    assert_eq!(event.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(
        (
            event.tokens.prompt,
            event.tokens.completion,
            event.tokens.total
        ),
        (13, 5, 18)
    );
    assert!(!event.estimated);

    let id = rid("anthropic-sse");
    let response = fx
        .post("/anthropic/v1/messages")
        .header("x-api-key", fx.keys.main.expose())
        .header("x-request-id", &id)
        .header("x-mock-prompt-tokens", "21")
        .header("x-mock-completion-tokens", "9")
        .json(
            &serde_json::json!({"model": "claude-x", "max_tokens": 50, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("message_stop"), "{text}");
    let seen = fx.upstream_request(&id).unwrap();
    assert_eq!(
        seen.header("x-api-key"),
        Some("ak-up"),
        "the route credential, not the key"
    );
    let event = fx.only_event(&id).await;
    assert_eq!(event.model.as_deref(), Some("claude-x"));
    assert_eq!((event.tokens.prompt, event.tokens.completion), (21, 9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_clients_are_served() {
    let fx = Fixture::start().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/echo/h2", fx.base))
        .header("authorization", fx.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(fx.upstream_request(&id).unwrap().path, "/h2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_store_gives_503_for_unknown_keys_and_cached_keys_keep_working() {
    let fx = Fixture::start().await;
    let ok = fx
        .get("/echo/x")
        .header("authorization", fx.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    fx.store.close().await;

    let unknown = ApiKey::generate();
    let response = fx
        .get("/echo/x")
        .header("authorization", format!("Bearer {}", unknown.expose()))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(response, 503).await, "store_unavailable");
    // A malformed key is refused by its checksum: no look-up, so no 503.
    let response = fx
        .get("/echo/x")
        .header("api-key", "ntk_typo")
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(response, 401).await, "invalid_api_key");
    let cached = fx
        .get("/echo/x")
        .header("authorization", fx.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 200);
    // The refresher keeps the old routes while the store is down.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(fx.gateway.route_count() >= 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_streams_finish() {
    let mut fx = Fixture::start().await;
    let id = rid("drain");
    let mut response = fx
        .get("/echo/sse")
        .header("authorization", fx.bearer())
        .header("x-request-id", &id)
        .header("x-mock-chunks", "5")
        .header("x-mock-chunk-delay-ms", "200")
        .send()
        .await
        .unwrap();
    let mut body = response.chunk().await.unwrap().unwrap().to_vec();
    if let Some(stop) = fx.stop.take() {
        stop.send(()).unwrap();
    }
    while let Some(chunk) = response.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
    }
    assert_eq!(
        String::from_utf8(body).unwrap().matches("data: ").count(),
        5
    );
    let server = fx.server.take().unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(fx.addr).await.is_err(),
        "the listener is closed"
    );
    let event = fx.event(&id).await;
    assert_eq!(event.status, 200);
    fx.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_statuses_and_bodiless_answers_are_recorded_as_sent() {
    let fx = Fixture::start().await;
    let id = rid("head");
    let response = fx
        .http
        .head(format!("{}/echo/x", fx.base))
        .header("authorization", fx.bearer())
        .header("x-request-id", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.unwrap().is_empty());
    let event = fx.only_event(&id).await;
    assert!(
        event.upstream_last_byte_us.is_some(),
        "a bodiless answer ends with its head: {event:?}"
    );
    assert_eq!(
        (event.status, event.error),
        (200, None),
        "a HEAD answer is complete, not a hang-up"
    );

    for status in [204_u16, 304, 404, 503] {
        let id = rid("status");
        let response = fx
            .get("/echo/x")
            .header("authorization", fx.bearer())
            .header("x-request-id", &id)
            .header("x-mock-status", status.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        response.bytes().await.unwrap();
        let event = fx.only_event(&id).await;
        assert_eq!(event.status, status, "{event:?}");
        assert_eq!(
            event.error, None,
            "the upstream's own answer is not a gateway failure"
        );
    }
}

/// A `GET` sent byte for byte (reqwest would normalise the path), with `Connection: close`.
async fn raw_get(addr: SocketAddr, target: &str, headers: &str) -> String {
    raw(
        addr,
        &format!("GET {target} HTTP/1.1\r\nHost: g\r\n{headers}Connection: close\r\n\r\n"),
    )
    .await
}

/// Waits until the refresher has loaded `count` routes.
async fn wait_for_routes(fx: &Fixture, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while fx.gateway.route_count() < count {
        assert!(Instant::now() < deadline, "routes not loaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_separators_cannot_escape_the_route_or_reach_a_more_specific_one() {
    let fx = Fixture::start().await;
    let before = fx.gateway.route_count();
    let up = fx.mock.url();
    let http = RouteKind::Http;
    let ng = add_route(
        &fx.store,
        None,
        "ng",
        "/ng",
        &format!("{up}/base"),
        http,
        true,
        5_000,
        None,
    )
    .await;
    let admin = add_route(
        &fx.store,
        None,
        "ng-admin",
        "/ng/admin",
        &format!("{up}/admin-base"),
        http,
        true,
        5_000,
        None,
    )
    .await;
    let (ng_only, _) = add_key(&fx.store, fx.team_id, "ng-only", None, Some(vec![ng.id])).await;
    let (both, _) = add_key(
        &fx.store,
        fx.team_id,
        "both",
        None,
        Some(vec![ng.id, admin.id]),
    )
    .await;
    wait_for_routes(&fx, before + 2).await;
    let auth = |key: &ApiKey| format!("Authorization: Bearer {}\r\n", key.expose());

    // The issue's attack paths, each with the answer it must get now.
    for (target, status, code, names) in [
        ("/ng/..%2finternal/x", 400, "invalid_path", "%2F"),
        ("/ng/%2e%2e%2finternal/x", 400, "invalid_path", "%2F"),
        ("/ng/%2e%2e/internal/x", 400, "invalid_path", "`..`"),
        ("/ng/..%5cinternal/x", 400, "invalid_path", "backslash"),
        ("/ng/admin%2fx", 400, "invalid_path", "%2F"),
        ("/ng/%252f..%252finternal/x", 400, "invalid_path", "%25"),
        ("/ng/%252e%252e/internal", 400, "invalid_path", "%25"),
        ("/ng/..;/internal/x", 400, "invalid_path", "`;`"),
        ("/ng/admin;x/y", 400, "invalid_path", "`;`"),
        ("/ng/a%00b", 400, "invalid_path", "control"),
        ("/ng/a%zz", 400, "invalid_path", "hex"),
        // Normalised, these are under /ng/admin, which this key may not call.
        ("/ng//admin/x", 403, "route_not_allowed", ""),
        ("/ng/%61dmin/x", 403, "route_not_allowed", ""),
        ("/ng/%61%64%6D%69%6E", 403, "route_not_allowed", ""),
    ] {
        let id = rid("escape");
        let answer = raw_get(
            fx.addr,
            target,
            &format!("{}X-Request-Id: {id}\r\n", auth(&ng_only)),
        )
        .await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{target}: {answer}"
        );
        assert!(
            answer.contains(&format!(r#""code":"{code}""#)),
            "{target}: {answer}"
        );
        assert!(
            answer.contains(names),
            "{target}: the message names the problem: {answer}"
        );
        assert!(
            fx.upstream_request(&id).is_none(),
            "{target} reached the upstream"
        );
        let event = fx.event(&id).await;
        assert_eq!(event.status, status, "{target}");
    }

    // What is forwarded is what was matched: normalised path, query as sent.
    for (key, target, upstream_path, route) in [
        (
            &ng_only,
            "/ng/a%2Db//%7euser/?q=%2f..",
            "/base/a-b/~user/?q=%2f..",
            "ng",
        ),
        (&ng_only, "/ng/x%3fy%3Dz", "/base/x%3Fy%3Dz", "ng"),
        (&ng_only, "/ng/.../x", "/base/.../x", "ng"),
        (&both, "/ng//admin/x", "/admin-base/x", "ng-admin"),
        (&both, "/ng/%61dmin", "/admin-base", "ng-admin"),
    ] {
        let id = rid("normal");
        let answer = raw_get(
            fx.addr,
            target,
            &format!("{}X-Request-Id: {id}\r\n", auth(key)),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200 "), "{target}: {answer}");
        let seen = fx.upstream_request(&id).unwrap();
        assert_eq!(seen.path, upstream_path, "{target}");
        assert_eq!(
            fx.event(&id).await.route.as_deref(),
            Some(route),
            "{target}"
        );
    }
    // Nothing ever reached the upstream outside the two base paths.
    for seen in fx.mock.requests() {
        if seen
            .header("x-request-id")
            .is_some_and(|id| id.starts_with("escape") || id.starts_with("normal"))
        {
            assert!(
                seen.path.starts_with("/base/") || seen.path.starts_with("/admin-base"),
                "{seen:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_header_is_honoured() {
    let fx = Fixture::start().await;
    let id = rid("connection");
    let answer = raw_get(
        fx.addr,
        "/echo/c",
        &format!(
            "{}\r\nConnection: keep-alive\r\nConnection: X-Hop-A, x-hop-b\r\nConnection: X-Hop-C\r\n\
             X-Hop-A: 1\r\nX-Hop-B: 2\r\nX-Hop-C: 3\r\nX-Kept: yes\r\nX-Request-Id: {id}\r\n",
            format_args!("Authorization: {}", fx.bearer())
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = fx.upstream_request(&id).unwrap();
    for gone in ["x-hop-a", "x-hop-b", "x-hop-c", "connection"] {
        assert_eq!(seen.header(gone), None, "{gone} was forwarded: {seen:?}");
    }
    assert_eq!(seen.header("x-kept"), Some("yes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_from_a_client_are_not_believed() {
    let fx = Fixture::start().await;
    let id = rid("spoof");
    let answer = raw_get(
        fx.addr,
        "/echo/f",
        &format!(
            "Authorization: {}\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 7.7.7.7\r\n\
             X-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6;proto=https\r\n\
             X-Forwarded-Host: admin.internal\r\nX-Forwarded-Port: 443\r\n\
             X-Forwarded-Proto: https\r\nX-Request-Id: {id}\r\n",
            fx.bearer()
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = fx.upstream_request(&id).unwrap();
    for gone in [
        "x-real-ip",
        "forwarded",
        "x-forwarded-host",
        "x-forwarded-port",
    ] {
        assert_eq!(seen.header(gone), None, "{gone} was forwarded");
    }
    let all = |name: &str| -> Vec<&str> {
        seen.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(all("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(all("x-forwarded-proto"), ["http"]);
    assert_eq!(fx.event(&id).await.client_ip.as_deref(), Some("127.0.0.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_may_speak_for_its_client() {
    let fx = Fixture::start_with(|config| {
        config.trusted_proxies = tollgate_core::net::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    let id = rid("trusted");
    let answer = raw_get(
        fx.addr,
        "/echo/t",
        &format!(
            "Authorization: {}\r\nX-Forwarded-For: 6.6.6.6, 198.51.100.7\r\n\
             X-Forwarded-For: 10.0.0.2\r\nX-Forwarded-Proto: https\r\n\
             X-Forwarded-Host: admin.internal\r\nX-Request-Id: {id}\r\n",
            fx.bearer()
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = fx.upstream_request(&id).unwrap();
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("6.6.6.6, 198.51.100.7, 10.0.0.2, 127.0.0.1")
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("x-forwarded-host"), None);
    // The client is the right-most address that is not a trusted proxy.
    assert_eq!(fx.event(&id).await.client_ip.as_deref(), Some("10.0.0.2"));

    // A proto that is not http or https is replaced by the truth.
    let id = rid("trusted-proto");
    raw_get(
        fx.addr,
        "/echo/t",
        &format!(
            "Authorization: {}\r\nX-Forwarded-Proto: gopher\r\nX-Request-Id: {id}\r\n",
            fx.bearer()
        ),
    )
    .await;
    let seen = fx.upstream_request(&id).unwrap();
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_echoes_headers_never_hands_back_the_credential() {
    let fx = Fixture::start().await;
    for (path, body, secret, header) in [
        ("/echo/x", None, "svc-secret", "authorization"),
        (
            "/anthropic/v1/messages",
            Some(r#"{"model":"claude-3-haiku","max_tokens":5,"messages":[]}"#),
            "ak-up",
            "x-api-key",
        ),
    ] {
        let id = rid("echo-headers");
        let mut request = match body {
            Some(body) => fx
                .post(path)
                .header("content-type", "application/json")
                .body(body),
            None => fx.get(path),
        };
        request = request
            .header("x-api-key", fx.keys.main.expose())
            .header("x-mock-echo-headers", "1")
            .header("x-probe", "echoed")
            .header("x-request-id", &id);
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        // The echo works: the client's own header comes back.
        assert_eq!(response.headers()["x-probe"], "echoed", "{path}");
        // The upstream did receive the credential ...
        let seen = fx.upstream_request(&id).unwrap();
        assert!(seen.header(header).is_some_and(|v| v.contains(secret)));
        // ... but the caller never sees it.
        assert!(response.headers().get(header).is_none(), "{path}");
        for (name, value) in response.headers() {
            assert!(
                !String::from_utf8_lossy(value.as_bytes()).contains(secret),
                "{path}: {name} hands back the credential"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_x_api_key_beside_a_foreign_authorization_is_used_and_that_authorization_forwarded()
 {
    let fx = Fixture::start().await;
    let key = fx.keys.main.expose();
    for key_header in ["x-api-key", "api-key"] {
        let id = rid("beside");
        let response = fx
            .get("/keep/own")
            .header("authorization", "Bearer sk-callers-own-token")
            .header(key_header, key)
            .header("x-request-id", &id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{key_header}");
        let seen = fx.upstream_request(&id).unwrap();
        assert_eq!(
            seen.header("authorization"),
            Some("Bearer sk-callers-own-token"),
            "{key_header}"
        );
        assert!(
            seen.headers.iter().all(|(_, v)| !v.contains(key)),
            "the tollgate key leaked upstream via {key_header}"
        );
        assert_eq!(fx.event(&id).await.key_id, Some(fx.keys.main_id));
    }
    // A route's credential still replaces the caller's Authorization.
    let id = rid("beside-cred");
    let response = fx
        .get("/echo/own")
        .header("authorization", "Basic dXNlcjpwdw==")
        .header("x-api-key", key)
        .header("x-request-id", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = fx.upstream_request(&id).unwrap();
    assert_eq!(seen.header("authorization"), Some("Bearer svc-secret"));
    // Two tollgate keys: the bearer one is used and neither is forwarded.
    let id = rid("two-keys");
    let response = fx
        .get("/keep/two")
        .header("authorization", fx.bearer())
        .header("x-api-key", fx.keys.limited.expose())
        .header("x-request-id", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = fx.upstream_request(&id).unwrap();
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.header("x-api-key"), None);
    assert_eq!(fx.event(&id).await.key_id, Some(fx.keys.main_id));
}
