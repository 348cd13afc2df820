//! The [`Gateway`] handle the binary wires, serving its calls through the shared accept loop of
//! [`crate::listener`] (HTTP/1.1 keep-alive and h2c, timeouts, connection cap, graceful shutdown).

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::future::BoxFuture;
use http::HeaderValue;
use hyper::body::Incoming;
use hyper::service::service_fn;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tollgate_core::crypto::MasterKey;
use tollgate_core::net::TrustedProxies;
use tollgate_core::pricing::Prices;
use tollgate_store::{Store, StoreError};

use crate::keys::{KeyCache, RefusedKeyEvents};
use crate::limits::GatewayLimits;
use crate::listener::{self, Builders, ListenerSettings};
use crate::metrics::Metrics;
use crate::proxy;
use crate::state::{self, RouteState, Upstreams};
use crate::writer::UsageSink;

/// One call's future, boxed (see `serve`).
type CallFuture = BoxFuture<'static, Result<http::Response<proxy::GatewayBody>, Infallible>>;

/// Settings of the data plane.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Request bodies larger than this are refused with 413 `payload_too_large`.
    pub max_body_bytes: u64,
    /// LLM request bodies up to this size are read whole to find the `model`; larger ones stream.
    pub llm_peek_bytes: usize,
    /// Request headers larger than this in total are refused with 431 `header_too_large`.
    pub max_header_bytes: usize,
    /// Opens the routes' sealed upstream credentials.
    pub master_key: Option<MasterKey>,
    /// Prices the LLM calls: the table in force, shared with the console, which replaces it when
    /// prices are set there; the refresher reloads the store's overrides on a revision change.
    pub prices: Arc<Prices>,
    /// How often the store's revision is polled for key and route changes.
    pub refresh_interval: Duration,
    /// Longest wait for in-flight calls (streams included) at shutdown.
    pub drain_timeout: Duration,
    /// Connection timeouts and cap of the gateway listener (its `drain_timeout` is overridden by
    /// the one above).
    pub listener: ListenerSettings,
    /// Longest time the whole peek of an LLM body may take; slower bodies get 408.
    pub body_read_timeout: Duration,
    /// Most bytes all concurrent LLM-body peeks may hold; past it bodies are forwarded unread.
    pub peek_budget_bytes: usize,
    /// Failed key look-ups (unknown keys) allowed per client address per minute; past it the
    /// address gets 429 `rate_limited` for keys not already cached, without a store read.
    pub failed_key_lookups_per_minute: u32,
    /// Peers whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed and extended; every
    /// other client's are replaced.
    pub trusted_proxies: TrustedProxies,
    /// The limits and model allow-lists to enforce; `None` enforces none.
    pub limits: Option<Arc<GatewayLimits>>,
    /// Traces of the calls (`[otel]`); `None` traces nothing and passes a client's
    /// `traceparent` through untouched.
    pub tracing: Option<Arc<crate::otel::Tracing>>,
    /// Certificates upstream TLS servers are trusted to present besides the public web PKI
    /// (`gateway.upstream_ca_file`, read by [`crate::read_upstream_ca`]).
    pub upstream_ca: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Offer `h2` by ALPN to TLS upstreams (`gateway.upstream_http2`, on by default); HTTP/1.1
    /// only when false.
    pub upstream_http2: bool,
    /// Retries and cooldowns of `llm` routes' pools (`gateway.llm_*`).
    pub pools: crate::llm::PoolSettings,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 * 1024 * 1024,
            llm_peek_bytes: 4 * 1024 * 1024,
            max_header_bytes: 32 * 1024,
            master_key: None,
            prices: Arc::new(Prices::default()),
            refresh_interval: Duration::from_millis(250),
            drain_timeout: Duration::from_secs(30),
            listener: ListenerSettings::default(),
            body_read_timeout: Duration::from_secs(30),
            peek_budget_bytes: 256 * 1024 * 1024,
            failed_key_lookups_per_minute: 60,
            trusted_proxies: TrustedProxies::default(),
            limits: None,
            tracing: None,
            upstream_ca: Vec::new(),
            upstream_http2: true,
            pools: crate::llm::PoolSettings::default(),
        }
    }
}

/// Longest wait at shutdown for usage still being counted (a count takes milliseconds; a
/// vocabulary load, under a second).
const DEFERRED_WAIT: Duration = Duration::from_secs(10);
/// Most keys the cache holds.
const KEY_CACHE_CAPACITY: u64 = 100_000;
/// Most unknown keys remembered; a separate cache, so unknown keys never evict known ones.
const NEGATIVE_CACHE_CAPACITY: u64 = 10_000;
/// Longest a cached key (or a negative entry) lives even without a revision change.
const KEY_CACHE_TTL: Duration = Duration::from_secs(60);

/// Everything the request path shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sink: UsageSink,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) config: GatewayConfig,
    pub(crate) routes: ArcSwap<RouteState>,
    pub(crate) keys: KeyCache,
    /// Folds floods of refused-key calls into summary rows.
    pub(crate) refused_keys: RefusedKeyEvents,
    /// Bytes the LLM-body peeks may still hold (one permit a byte).
    pub(crate) peek_budget: Arc<Semaphore>,
    pub(crate) upstreams: Upstreams,
    /// The store revision the routes and keys reflect.
    pub(crate) revision: AtomicI64,
    /// Usage events still being counted off the request path.
    pub(crate) deferred: Arc<proxy::Deferred>,
    shutdown: watch::Sender<bool>,
}

/// What one client connection's calls share.
pub(crate) struct Peer {
    pub(crate) shared: Arc<Shared>,
    /// The peer's address (a trusted proxy's or the client's); the failed-look-up limiter keys on it.
    pub(crate) addr: IpAddr,
    /// The client's IP address as text, for usage events.
    pub(crate) ip: String,
    /// The same, ready to append to `X-Forwarded-For`.
    pub(crate) ip_header: HeaderValue,
}

/// The data plane: authenticates keys, matches routes and proxies calls. Cloning is cheap.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("routes", &self.route_count())
            .field("key_cache_entries", &self.key_cache_entries())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Loads the routes and sets up the upstream clients.
    pub async fn new(
        store: Arc<dyn Store>,
        sink: UsageSink,
        metrics: Arc<Metrics>,
        config: GatewayConfig,
    ) -> Result<Self, StoreError> {
        let upstreams = Upstreams::new(&config.upstream_ca, config.upstream_http2)
            .map_err(|err| StoreError::Internal(format!("TLS client setup failed: {err}")))?;
        let (shutdown, _) = watch::channel(false);
        let keys = KeyCache::new(
            KEY_CACHE_CAPACITY,
            NEGATIVE_CACHE_CAPACITY,
            KEY_CACHE_TTL,
            config.failed_key_lookups_per_minute,
            metrics.clone(),
        );
        let peek_budget = Arc::new(Semaphore::new(
            config.peek_budget_bytes.min(Semaphore::MAX_PERMITS),
        ));
        let shared = Arc::new(Shared {
            store,
            sink,
            metrics,
            config,
            routes: ArcSwap::from_pointee(RouteState::default()),
            keys,
            refused_keys: RefusedKeyEvents::new(),
            peek_budget,
            upstreams,
            revision: AtomicI64::new(0),
            deferred: Arc::default(),
            shutdown,
        });
        // The revision is read before the routes so that a change in between is seen again.
        let revision = shared.store.revision().await?;
        let routes = state::load_routes(&shared).await?;
        state::load_prices(&shared).await?;
        if let Some(limits) = &shared.config.limits {
            limits.reload(&*shared.store).await?;
        }
        crate::vocab::preload(routes.vocabularies.iter().copied());
        shared.routes.store(Arc::new(routes));
        shared
            .revision
            .store(revision, std::sync::atomic::Ordering::Release);
        Ok(Self { shared })
    }

    /// Starts polling the store's revision: on a change the routes are reloaded and the key cache
    /// emptied; while the store is down the old state stays. Stops when shutdown begins.
    #[expect(
        clippy::disallowed_methods,
        reason = "the refresher stops on the gateway's shutdown signal; the caller keeps the handle"
    )]
    pub fn spawn_refresher(&self) -> tokio::task::JoinHandle<()> {
        let stop = self.shared.shutdown.subscribe();
        tokio::spawn(state::refresh_loop(
            Arc::downgrade(&self.shared),
            self.shared.config.refresh_interval,
            stop,
        ))
    }

    /// Serves gateway calls on `listener` until `shutdown` resolves; then stops accepting, lets
    /// in-flight calls (streams included) finish for up to `drain_timeout`, and returns.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let mut settings = self.shared.config.listener.clone();
        settings.name = "gateway";
        settings.drain_timeout = self.shared.config.drain_timeout;
        let builder = self.connection_builder(&settings);
        let shared = self.shared.clone();
        let background = self.shared.clone();
        let result = listener::serve(
            listener,
            settings,
            builder,
            self.shared.metrics.clone(),
            move |addr: SocketAddr| {
                let ip = addr.ip().to_string();
                let ip_header =
                    HeaderValue::from_str(&ip).unwrap_or(HeaderValue::from_static("unknown"));
                let peer = Arc::new(Peer {
                    shared: shared.clone(),
                    addr: addr.ip(),
                    ip,
                    ip_header,
                });
                service_fn(move |req: http::Request<Incoming>| -> CallFuture {
                    let peer = peer.clone();
                    // Boxed: hyper keeps room for one service future in every connection for as
                    // long as it is open, so an unboxed call (~10 KiB of state) would be held by
                    // each idle keep-alive connection and each open stream after its head.
                    Box::pin(async move { Ok::<_, Infallible>(proxy::handle(peer, req).await) })
                })
            },
            async move {
                shutdown.await;
                // The refresher stops with the listener, before the drain.
                background.shutdown.send_replace(true);
            },
        )
        .await;
        self.shared.shutdown.send_replace(true);
        // Events whose usage is still being counted go to the writer before it is flushed.
        if tokio::time::timeout(DEFERRED_WAIT, self.shared.deferred.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!("usage of some calls still being counted at shutdown");
        }
        // The minute in progress gets its summary rows before the usage writer is flushed.
        self.shared
            .refused_keys
            .flush_ended(i64::MAX, &self.shared.sink);
        result
    }

    /// Approximate number of keys in the cache.
    pub fn key_cache_entries(&self) -> u64 {
        self.shared.keys.entry_count()
    }

    /// The limits the gateway enforces, if any.
    pub fn limits(&self) -> Option<&Arc<GatewayLimits>> {
        self.shared.config.limits.as_ref()
    }

    /// Whether limit counters run on their fallback because Redis is unreachable (`false`
    /// without limits).
    pub fn limits_degraded(&self) -> bool {
        self.shared
            .config
            .limits
            .as_ref()
            .is_some_and(|l| l.limiter().degraded())
    }

    /// Number of enabled routes.
    pub fn route_count(&self) -> usize {
        self.shared.routes.load().table.len()
    }

    fn connection_builder(&self, settings: &ListenerSettings) -> Builders {
        let max_header = self.shared.config.max_header_bytes;
        let mut builders = settings.builders();
        // hyper's own limits sit above ours so that oversized headers get the JSON refusal.
        builders.max_header_bytes(
            (max_header.saturating_mul(2)).max(400 * 1024),
            u32::try_from(max_header.saturating_mul(2))
                .unwrap_or(u32::MAX)
                .max(64 * 1024),
        );
        builders
    }
}
