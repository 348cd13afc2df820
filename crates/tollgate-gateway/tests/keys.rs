//! Forged keys (valid CRC32 checksum, no such key) against the real gateway, SQLite store and
//! usage writer: store reads stay bounded, a valid key stays cached and answered, the address
//! gets 429 past its limit, and the usage rows are folded into summaries. Also the LLM-body peek's
//! byte budget, which shares the fixture.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions fail loudly too"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "tests start servers and workers on their own runtime, which ends with the test"
)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tollgate_core::{ApiKey, RouteKind, UsageEvent};
use tollgate_gateway::metrics::Metrics;
use tollgate_gateway::writer::{Durability, UsageWriter, WriterConfig};
use tollgate_gateway::{Gateway, GatewayConfig};
use tollgate_mock_upstream::MockUpstream;
use tollgate_store::{
    KeyQueries, NewKey, NewRoute, RouteQueries, Store, TeamQueries, UsageQueries,
};
use tollgate_store_sqlite::SqliteStore;

const FAILURES_PER_MINUTE: u32 = 60;
const FORGED: usize = 2_000;
const CONCURRENCY: usize = 32;

struct Fixture {
    _dir: TempDir,
    store: Arc<SqliteStore>,
    metrics: Arc<Metrics>,
    _mock: MockUpstream,
    addr: SocketAddr,
    valid: ApiKey,
    team_id: i64,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    writer: Option<UsageWriter>,
}

async fn add_key(store: &SqliteStore, team_id: i64, name: &str) -> ApiKey {
    let key = ApiKey::generate();
    store
        .create_key(NewKey {
            team_id,
            name: name.to_owned(),
            description: String::new(),
            key_hash: key.hash(),
            prefix: key.display_prefix(),
            sealed_key: None,
            created_by: Some("test".to_owned()),
            expires_at_ms: None,
            route_ids: None,
        })
        .await
        .unwrap();
    key
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
        let mock = MockUpstream::start().await.unwrap();
        store
            .create_route(NewRoute {
                team_id: None,
                name: "echo".to_owned(),
                prefix: "/echo".to_owned(),
                upstream_url: mock.url(),
                kind: RouteKind::Http,
                strip_prefix: true,
                connect_timeout_ms: 1_000,
                timeout_ms: 5_000,
                sealed_credential: None,
                credential_header: None,
            })
            .await
            .unwrap();
        store
            .create_route(NewRoute {
                team_id: None,
                name: "openai".to_owned(),
                prefix: "/openai".to_owned(),
                upstream_url: mock.url(),
                kind: RouteKind::Openai,
                strip_prefix: true,
                connect_timeout_ms: 1_000,
                timeout_ms: 5_000,
                sealed_credential: None,
                credential_header: None,
            })
            .await
            .unwrap();
        let valid = add_key(&store, team_id, "valid").await;

        let metrics = Metrics::new();
        let dyn_store: Arc<dyn Store> = store.clone();
        let (writer, sink) = UsageWriter::start(
            dyn_store.clone(),
            WriterConfig {
                queue_capacity: 10_000,
                batch_size: 500,
                batch_interval: Duration::from_millis(20),
                spool_dir: dir.path().join("spool"),
                durability: Durability::Memory,
            },
            metrics.clone(),
        )
        .unwrap();
        let mut config = GatewayConfig {
            failed_key_lookups_per_minute: FAILURES_PER_MINUTE,
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
        let server = tokio::spawn(async move {
            gateway
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await
        });
        Self {
            _dir: dir,
            store,
            metrics,
            _mock: mock,
            addr,
            valid,
            team_id,
            stop: Some(stop),
            server: Some(server),
            writer: Some(writer),
        }
    }

    /// Stops the gateway (which writes the open minute's summaries) and flushes the writer.
    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        if let Some(writer) = self.writer.take() {
            writer.shutdown().await;
        }
    }

    fn metric(&self, name: &str) -> u64 {
        let text = self.metrics.render();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in {text}"))
    }
}

fn client_from(ip: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip)
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap()
}

async fn call(client: &reqwest::Client, addr: SocketAddr, key: &str) -> u16 {
    client
        .get(format!("http://{addr}/echo/x"))
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// How many calls a refused-key row stands for: 1, or the count a summary row names.
fn calls_of(event: &UsageEvent) -> u64 {
    if event.path != "*" {
        return 1;
    }
    let error = event.error.as_deref().unwrap_or_default();
    error
        .split("summary of ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("summary row without a count: {event:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_keys_are_bounded_limited_and_folded() {
    let mut fx = Fixture::start().await;
    let local = IpAddr::from([127, 0, 0, 1]);
    let client = client_from(local);
    assert_eq!(call(&client, fx.addr, fx.valid.expose()).await, 200);
    let reads_before = fx.metric("tollgate_gateway_key_store_reads_total");
    assert_eq!(reads_before, 1, "the valid key was read once");

    let forged: Vec<ApiKey> = (0..FORGED).map(|_| ApiKey::generate()).collect();
    let statuses: Vec<u16> = futures_util::stream::iter(forged.iter())
        .map(|key| call(&client, fx.addr, key.expose()))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let unauthorized = statuses.iter().filter(|&&s| s == 401).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(unauthorized + limited, FORGED, "{statuses:?}");
    // One store read per unknown key that got past the limiter: the quota plus the calls already
    // in flight when it ran out, plus at most a few cells refilled during the flood.
    let reads = fx.metric("tollgate_gateway_key_store_reads_total") - reads_before;
    let bound = u64::from(FAILURES_PER_MINUTE) + CONCURRENCY as u64 + 10;
    assert!(
        reads <= bound,
        "{reads} store reads for {FORGED} forged keys (bound {bound})"
    );
    assert_eq!(
        reads, unauthorized as u64,
        "exactly one store read per unknown key"
    );
    assert!(limited >= FORGED - bound as usize, "{limited} answered 429");
    eprintln!("{FORGED} forged keys: {reads} store reads, {unauthorized} × 401, {limited} × 429");

    // The valid key is still cached and answered, from the same address, without a store read.
    for _ in 0..20 {
        assert_eq!(call(&client, fx.addr, fx.valid.expose()).await, 200);
    }
    assert_eq!(
        fx.metric("tollgate_gateway_key_store_reads_total") - reads_before,
        reads,
        "the valid key did not need the store again"
    );
    // A key not yet cached from the limited address waits like any other...
    let fresh = add_key(&fx.store, fx.team_id, "fresh").await;
    assert_eq!(call(&client, fx.addr, fresh.expose()).await, 429);
    // ...while another address is not limited by this one's failures.
    let other = client_from(IpAddr::from([127, 0, 0, 2]));
    assert_eq!(
        call(&other, fx.addr, ApiKey::generate().expose()).await,
        401
    );
    assert_eq!(call(&other, fx.addr, fresh.expose()).await, 200);

    fx.stop().await;
    let events = fx.store.recent_usage(100_000).await.unwrap();
    let refused: Vec<&UsageEvent> = events
        .iter()
        .filter(|e| e.status == 401 || e.status == 429)
        .collect();
    let from_local: Vec<&&UsageEvent> = refused
        .iter()
        .filter(|e| e.client_ip.as_deref() == Some("127.0.0.1"))
        .collect();
    // The forged calls plus the fresh key's 429, all accounted for...
    let represented: u64 = from_local.iter().map(|e| calls_of(e)).sum();
    assert_eq!(represented, FORGED as u64 + 1, "{from_local:#?}");
    // ...in at most 10 rows a minute plus a summary per status (two minutes if the test straddled one).
    assert!(
        from_local.len() <= 2 * (10 + 2),
        "{} rows",
        from_local.len()
    );
    assert!(
        refused.iter().all(|e| e.key_hash.is_none()),
        "unknown keys' hashes are not recorded"
    );
    let folded = fx.metric("tollgate_gateway_refused_key_events_folded_total");
    assert_eq!(
        folded + from_local.iter().filter(|e| e.path != "*").count() as u64,
        FORGED as u64 + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_bodies_past_the_peek_budget_are_forwarded_unread() {
    let mut fx = Fixture::start_with(|config| {
        config.llm_peek_bytes = 1024;
        // Smaller than the body below: no peek fits.
        config.peek_budget_bytes = 10;
    })
    .await;
    let client = client_from(IpAddr::from([127, 0, 0, 1]));
    let response = client
        .post(format!("http://{}/openai/v1/chat/completions", fx.addr))
        .header("authorization", format!("Bearer {}", fx.valid.expose()))
        .json(&serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "served, not refused");
    assert_eq!(fx.metric("tollgate_gateway_peeks_skipped_total"), 1);
    fx.stop().await;
}

/// Behind a trusted proxy the limiter counts each forwarded client, not the proxy: one client's
/// forged keys do not lock out the others. The 429 says when to try again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_behind_a_trusted_proxy_are_limited_one_by_one() {
    let mut fx = Fixture::start_with(|config| {
        config.failed_key_lookups_per_minute = 5;
        config.trusted_proxies =
            tollgate_core::net::TrustedProxies::parse(&["127.0.0.1".to_owned()]).unwrap();
    })
    .await;
    let proxy = client_from(IpAddr::from([127, 0, 0, 1]));
    let call_for = |client: &'static str, key: String| {
        let proxy = proxy.clone();
        let addr = fx.addr;
        async move {
            proxy
                .get(format!("http://{addr}/echo/x"))
                .header("authorization", format!("Bearer {key}"))
                .header("x-forwarded-for", client)
                .send()
                .await
                .unwrap()
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let answer = call_for("203.0.113.7", ApiKey::generate().expose().to_owned()).await;
        statuses.push(answer.status().as_u16());
        if answer.status() == 429 {
            assert_eq!(
                answer.headers().get("retry-after").unwrap(),
                "12",
                "60 s / 5 look-ups"
            );
        }
    }
    // The quota of 5 (give or take the cell the limiter checks before spending) runs out, then
    // every further unknown key from this client is refused without a store read.
    assert_eq!(&statuses[..5], [401; 5], "{statuses:?}");
    assert_eq!(&statuses[6..], [429; 2], "{statuses:?}");
    // Another client of the same proxy still has its own quota, and its valid key works.
    let other = call_for("198.51.100.9", ApiKey::generate().expose().to_owned()).await;
    assert_eq!(other.status(), 401);
    let valid = call_for("198.51.100.9", fx.valid.expose().to_owned()).await;
    assert_eq!(valid.status(), 200);
    fx.stop().await;
    let rows = fx.store.recent_usage(100).await.unwrap();
    assert!(
        rows.iter()
            .any(|e| e.client_ip.as_deref() == Some("203.0.113.7")),
        "rows name the forwarded client: {rows:?}"
    );
}
