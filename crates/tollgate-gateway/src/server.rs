//! The gateway listener: hyper 1 connections (HTTP/1.1 keep-alive and h2c), one task each, with
//! graceful shutdown; and the [`Gateway`] handle the binary wires.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::HeaderValue;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tollgate_core::crypto::MasterKey;
use tollgate_core::net::TrustedProxies;
use tollgate_core::pricing::PriceTable;
use tollgate_store::{Store, StoreError};

use crate::auth::KeyCache;
use crate::metrics::Metrics;
use crate::proxy;
use crate::state::{self, RouteState, Upstreams};
use crate::writer::UsageSink;

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
    /// Prices the LLM calls.
    pub prices: PriceTable,
    /// How often the store's revision is polled for key and route changes.
    pub refresh_interval: Duration,
    /// Longest wait for in-flight calls (streams included) at shutdown.
    pub drain_timeout: Duration,
    /// Peers whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed and extended; every
    /// other client's are replaced.
    pub trusted_proxies: TrustedProxies,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 * 1024 * 1024,
            llm_peek_bytes: 4 * 1024 * 1024,
            max_header_bytes: 32 * 1024,
            master_key: None,
            prices: PriceTable::default(),
            refresh_interval: Duration::from_millis(250),
            drain_timeout: Duration::from_secs(30),
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// Most keys the cache holds.
const KEY_CACHE_CAPACITY: u64 = 100_000;
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
    pub(crate) upstreams: Upstreams,
    /// The store revision the routes and keys reflect.
    pub(crate) revision: AtomicI64,
    shutdown: watch::Sender<bool>,
}

/// What one client connection's calls share.
pub(crate) struct Peer {
    pub(crate) shared: Arc<Shared>,
    /// The peer's address (a trusted proxy's or the client's).
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
        let upstreams = Upstreams::new()
            .map_err(|err| StoreError::Internal(format!("TLS client setup failed: {err}")))?;
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            store,
            sink,
            metrics,
            config,
            routes: ArcSwap::from_pointee(RouteState::default()),
            keys: KeyCache::new(KEY_CACHE_CAPACITY, KEY_CACHE_TTL),
            upstreams,
            revision: AtomicI64::new(0),
            shutdown,
        });
        // The revision is read before the routes so that a change in between is seen again.
        let revision = shared.store.revision().await?;
        let routes = state::load_routes(&shared).await?;
        shared.routes.store(Arc::new(routes));
        shared
            .revision
            .store(revision, std::sync::atomic::Ordering::Release);
        Ok(Self { shared })
    }

    /// Starts polling the store's revision: on a change the routes are reloaded and the key cache
    /// emptied; while the store is down the old state stays. Stops when shutdown begins.
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
        let builder = self.connection_builder();
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => self.spawn_connection(&builder, &graceful, stream, addr),
                    Err(err) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %err, "gateway accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        self.shared.shutdown.send_replace(true);
        let open = graceful.count();
        tracing::info!(connections = open, "gateway draining in-flight calls");
        if tokio::time::timeout(self.shared.config.drain_timeout, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?self.shared.config.drain_timeout,
                "gateway drain timed out; remaining calls are cut"
            );
        }
        Ok(())
    }

    /// Approximate number of keys in the cache.
    pub fn key_cache_entries(&self) -> u64 {
        self.shared.keys.entry_count()
    }

    /// Number of enabled routes.
    pub fn route_count(&self) -> usize {
        self.shared.routes.load().table.len()
    }

    fn connection_builder(&self) -> auto::Builder<TokioExecutor> {
        let max_header = self.shared.config.max_header_bytes;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // hyper's own limits sit above ours so that oversized headers get the JSON refusal.
        builder
            .http1()
            .keep_alive(true)
            .timer(TokioTimer::new())
            .max_buf_size((max_header.saturating_mul(2)).max(400 * 1024));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(
                u32::try_from(max_header.saturating_mul(2))
                    .unwrap_or(u32::MAX)
                    .max(64 * 1024),
            );
        builder
    }

    fn spawn_connection(
        &self,
        builder: &auto::Builder<TokioExecutor>,
        graceful: &GracefulShutdown,
        stream: tokio::net::TcpStream,
        addr: SocketAddr,
    ) {
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "TCP_NODELAY not set");
        }
        let ip = addr.ip().to_string();
        let ip_header = HeaderValue::from_str(&ip).unwrap_or(HeaderValue::from_static("unknown"));
        let peer = Arc::new(Peer {
            shared: self.shared.clone(),
            addr: addr.ip(),
            ip,
            ip_header,
        });
        let service = service_fn(move |req: http::Request<Incoming>| {
            let peer = peer.clone();
            async move { Ok::<_, Infallible>(proxy::handle(peer, req).await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!(error = %err, "gateway connection ended with an error");
            }
        });
    }
}
