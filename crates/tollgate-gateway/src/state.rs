//! What the gateway knows of the store: the route table (swapped whole, read without locks), the
//! upstream clients, and the refresher that polls the store's revision.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use http::uri::{Authority, Scheme};
use http::{HeaderName, HeaderValue};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::watch;
use tollgate_core::crypto::{MasterKey, SealedRow};
use tollgate_core::tokenize::Vocabulary;
use tollgate_core::{RouteKind, RouteTable};
use tollgate_store::{RouteRecord, StoreError};

use crate::server::Shared;
use crate::upstream::UpstreamClient;

/// How often limiter state of quiet addresses is dropped.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(10);

/// How the gateway authenticates to a route's upstream.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    /// Nothing to inject.
    None,
    /// A header to set, its value marked sensitive.
    Header(HeaderName, HeaderValue),
    /// The sealed credential cannot be opened; calls are refused (the reason was logged at load).
    Unusable,
}

/// A route ready for the request path: everything parsed and opened once, at load.
#[derive(Debug)]
pub(crate) struct RouteEntry {
    pub(crate) record: RouteRecord,
    /// `None` when the upstream URL does not parse (logged at load; calls are refused).
    pub(crate) upstream: Option<UpstreamBase>,
    pub(crate) credential: Credential,
    pub(crate) timeout: Duration,
    pub(crate) client: UpstreamClient,
}

/// The parts of a route's upstream URL.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamBase {
    pub(crate) scheme: Scheme,
    pub(crate) authority: Authority,
    /// The `Host` header sent upstream.
    pub(crate) host: HeaderValue,
    /// The base path without its trailing `/` (empty for the root).
    pub(crate) path: String,
}

impl UpstreamBase {
    /// The parts of `url`; `None` unless it is an absolute http(s) URL.
    pub(crate) fn parse(url: &str) -> Option<Self> {
        let uri: http::Uri = url.parse().ok()?;
        let scheme = uri.scheme()?.clone();
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return None;
        }
        let authority = uri.authority()?.clone();
        let host = HeaderValue::from_str(authority.as_str()).ok()?;
        let path = uri.path().trim_end_matches('/').to_owned();
        Some(Self {
            scheme,
            authority,
            host,
            path,
        })
    }
}

/// The enabled routes, matched by longest prefix.
#[derive(Debug, Default)]
pub(crate) struct RouteState {
    pub(crate) table: RouteTable<Arc<RouteEntry>>,
    /// The tokenizer vocabularies the enabled routes' calls are likely counted with.
    pub(crate) vocabularies: Vec<Vocabulary>,
    /// The models and targets `llm` routes send calls to.
    pub(crate) models: Arc<crate::llm::Catalogue>,
}

/// Upstream clients, one per connect timeout (the connector owns the timeout), shared by every
/// route with that timeout so that their connection pools survive route reloads.
pub(crate) struct Upstreams {
    tls: rustls::ClientConfig,
    /// Whether `h2` is offered by ALPN (`gateway.upstream_http2`).
    http2: bool,
    clients: Mutex<HashMap<Duration, UpstreamClient>>,
}

/// Reads the certificates (PEM, one or more) of a `gateway.upstream_ca_file`, which upstream
/// TLS servers are trusted to present besides the public web PKI. The error names the file and
/// what is wrong with it.
pub fn read_upstream_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|err| format!("cannot read {shown}: {err}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("{shown} is not PEM certificates: {err}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{shown} holds no certificate (expected -----BEGIN CERTIFICATE----- blocks)"
        ));
    }
    let mut roots = RootCertStore::empty();
    for (n, cert) in certs.iter().enumerate() {
        roots
            .add(cert.clone())
            .map_err(|err| format!("{shown}: certificate {} is unusable: {err}", n + 1))?;
    }
    Ok(certs)
}

impl Upstreams {
    /// Sets up TLS (ring, webpki roots plus `extra_roots`, ALPN h2 when `http2`, and http/1.1).
    pub(crate) fn new(
        extra_roots: &[CertificateDer<'static>],
        http2: bool,
    ) -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for cert in extra_roots {
            roots.add(cert.clone())?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            tls,
            http2,
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// The client whose connector gives up connecting after `connect_timeout`.
    pub(crate) fn client(&self, connect_timeout: Duration) -> UpstreamClient {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients
            .entry(connect_timeout)
            .or_insert_with(|| {
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_nodelay(true);
                http.set_connect_timeout(Some(connect_timeout));
                http.set_keepalive(Some(Duration::from_secs(60)));
                // `enable_http2` offers `h2` before `http/1.1` by ALPN; the upstream picks.
                let builder = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(self.tls.clone())
                    .https_or_http()
                    .enable_http1();
                let tls = if self.http2 {
                    builder.enable_http2().wrap_connector(http.clone())
                } else {
                    builder.wrap_connector(http.clone())
                };
                // Plain-HTTP upstreams: the own HTTP/1.1 pool, driven in each call's task.
                UpstreamClient::new(http, tls)
            })
            .clone()
    }
}

fn millis(ms: i64, fallback: u64) -> Duration {
    Duration::from_millis(
        u64::try_from(ms)
            .ok()
            .filter(|&v| v > 0)
            .unwrap_or(fallback),
    )
}

fn open_credential(record: &RouteRecord, master_key: Option<&MasterKey>) -> Credential {
    let Some(sealed) = record.sealed_credential.as_deref() else {
        return Credential::None;
    };
    let Some(master_key) = master_key else {
        tracing::error!(
            route = %record.name,
            "route has an upstream credential but no master key is configured; its calls are refused"
        );
        return Credential::Unusable;
    };
    let secret = match master_key.open_text(sealed, SealedRow::RouteCredential(record.id)) {
        Ok(secret) => secret,
        Err(err) => {
            tracing::error!(route = %record.name, error = %err, "route credential cannot be opened; its calls are refused");
            return Credential::Unusable;
        }
    };
    let (name, text) = match (&record.credential_header, record.kind) {
        (Some(header), _) => match HeaderName::from_bytes(header.name.as_bytes()) {
            Ok(name) => (name, header.value(&secret)),
            Err(_) => {
                tracing::error!(route = %record.name, "route credential header is not a header name; its calls are refused");
                return Credential::Unusable;
            }
        },
        (None, RouteKind::Anthropic) => (HeaderName::from_static("x-api-key"), secret),
        (None, RouteKind::Openai | RouteKind::Http | RouteKind::Llm) => {
            (http::header::AUTHORIZATION, format!("Bearer {secret}"))
        }
    };
    match HeaderValue::from_str(&text) {
        Ok(mut value) => {
            value.set_sensitive(true);
            Credential::Header(name, value)
        }
        Err(_) => {
            tracing::error!(route = %record.name, "route credential is not a valid header value; its calls are refused");
            Credential::Unusable
        }
    }
}

impl RouteState {
    /// Builds the table from the store's routes; disabled routes are left out.
    pub(crate) fn build(
        routes: Vec<RouteRecord>,
        master_key: Option<&MasterKey>,
        upstreams: &Upstreams,
    ) -> Self {
        let mut vocabularies = Vec::new();
        let entries = routes
            .into_iter()
            .filter(|r| r.enabled)
            .inspect(|r| {
                if let Some(vocabulary) = crate::vocab::for_kind(r.kind)
                    && !vocabularies.contains(&vocabulary)
                {
                    vocabularies.push(vocabulary);
                }
            })
            .map(|record| {
                let upstream = UpstreamBase::parse(&record.upstream_url);
                // An `llm` route's calls go to its models' targets, not to its own upstream.
                if upstream.is_none() && record.kind != RouteKind::Llm {
                    tracing::error!(
                        route = %record.name,
                        upstream = %record.upstream_url,
                        "route upstream is not an http(s) URL; its calls are refused"
                    );
                }
                let credential = open_credential(&record, master_key);
                let connect_timeout = millis(record.connect_timeout_ms, 5_000);
                let entry = RouteEntry {
                    upstream,
                    credential,
                    timeout: millis(record.timeout_ms, 60_000),
                    client: upstreams.client(connect_timeout),
                    record,
                };
                (entry.record.prefix.clone(), Arc::new(entry))
            })
            .collect();
        Self {
            table: RouteTable::new(entries),
            vocabularies,
            models: Arc::default(),
        }
    }
}

/// Loads the routes from the store.
pub(crate) async fn load_routes(shared: &Shared) -> Result<RouteState, StoreError> {
    let routes = shared.store.list_routes().await?;
    let targets = shared.store.list_targets().await?;
    let models = shared.store.list_models().await?;
    let master_key = shared.config.master_key.as_ref();
    let mut state = RouteState::build(routes, master_key, &shared.upstreams);
    let catalogue =
        crate::llm::Catalogue::build(targets, models, master_key, &shared.metrics.llm_health);
    catalogue.publish(&shared.metrics);
    state.models = Arc::new(catalogue);
    Ok(state)
}

/// Loads the price overrides from the store into the prices in force.
pub(crate) async fn load_prices(shared: &Shared) -> Result<(), StoreError> {
    let overrides = shared.store.list_price_overrides().await?;
    shared
        .config
        .prices
        .set_overrides(overrides.iter().map(|o| (o.model.as_str(), o.price)));
    Ok(())
}

/// Polls the store's revision; on a change, empties the key cache and reloads the limits and the
/// routes. Keeps
/// the old state while the store is down. Ends when shutdown begins or the gateway is gone.
pub(crate) async fn refresh_loop(
    shared: Weak<Shared>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let stopped = async move {
        // An error means the gateway (the sender) is gone: stop as well.
        let _ = stop.wait_for(|stopping| *stopping).await;
    };
    tokio::pin!(stopped);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut store_down = false;
    let mut housekeeping = Instant::now();
    loop {
        let step = async {
            ticker.tick().await;
            match shared.upgrade() {
                Some(shared) => {
                    refresh_once(&shared, &mut store_down).await;
                    if let Some(limits) = &shared.config.limits {
                        shared
                            .metrics
                            .limits_degraded
                            .set(i64::from(limits.limiter().degraded()));
                        let leased = limits.limiter().leased_admissions();
                        let counted = shared.metrics.limits_leased.get();
                        shared
                            .metrics
                            .limits_leased
                            .inc_by(leased.saturating_sub(counted));
                    }
                    shared
                        .refused_keys
                        .flush_ended(tollgate_core::time::now_ms(), &shared.sink);
                    if housekeeping.elapsed() >= HOUSEKEEPING_INTERVAL {
                        shared.keys.forget_quiet_addresses();
                        housekeeping = Instant::now();
                    }
                    true
                }
                None => false,
            }
        };
        tokio::select! {
            biased;
            () = &mut stopped => break,
            alive = step => if !alive { break },
        }
    }
    tracing::debug!("route and key refresher stopped");
}

async fn refresh_once(shared: &Shared, store_down: &mut bool) {
    let revision = match shared.store.revision().await {
        Ok(revision) => revision,
        Err(err) => {
            if !*store_down {
                tracing::warn!(error = %err, "store unreachable; the gateway keeps its routes and cached keys");
                *store_down = true;
            }
            return;
        }
    };
    if *store_down {
        tracing::info!("store reachable again");
        *store_down = false;
    }
    if revision == shared.revision.load(std::sync::atomic::Ordering::Acquire) {
        return;
    }
    // Keys first: a revocation must take effect even if the routes cannot be reloaded yet.
    shared.keys.invalidate_all();
    if let Some(limits) = &shared.config.limits
        && let Err(err) = limits.reload(&*shared.store).await
    {
        tracing::warn!(error = %err, "store changed but the limits could not be reloaded; retrying");
        return;
    }
    if let Err(err) = load_prices(shared).await {
        tracing::warn!(error = %err, "store changed but the prices could not be reloaded; retrying");
        return;
    }
    match load_routes(shared).await {
        Ok(state) => {
            tracing::info!(
                revision,
                routes = state.table.len(),
                "store changed; routes reloaded"
            );
            crate::vocab::preload(state.vocabularies.iter().copied());
            shared.routes.store(Arc::new(state));
            shared
                .revision
                .store(revision, std::sync::atomic::Ordering::Release);
        }
        Err(err) => {
            tracing::warn!(error = %err, "store changed but the routes could not be reloaded; retrying");
        }
    }
}
