//! The tollgate control plane, served on the console listener: the REST API under `/api/v1`, the
//! seed-compatible paths, the OpenAPI document and its docs page, health and metrics.
//!
//! Every route is authenticated by [`auth::authenticate`] unless listed in [`auth::PUBLIC_PATHS`].
//! Layers, outermost first: catch-panic → security headers → body limit → seed-shaped refusals
//! (seed-compatible paths only) → authentication → handler.

// Before `api`: the operation tables there use its macros.
#[macro_use]
mod operations;
pub mod api;
pub mod audit;
pub mod auth;
mod docs;
pub mod error;
pub mod extract;
mod health;
pub mod rules;
pub mod ui;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use secrecy::SecretString;
use tollgate_core::crypto::MasterKey;
use tollgate_core::pricing::Prices;
use tollgate_gateway::Gateway;
use tollgate_gateway::metrics::Metrics;
use tollgate_gateway::writer::UsageSink;
use tollgate_store::Store;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::ApiError;

/// Largest request body the console reads (ingest batches included).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Console settings from the configuration.
#[derive(Debug, Clone, Default)]
pub struct ConsoleSettings {
    /// The configured ingest secret (a secret rotated from the console takes precedence).
    pub ingest_secret: Option<SecretString>,
    /// Accept ingest without credentials (explicit opt-in).
    pub ingest_open: bool,
    /// Raw usage retention, days (shown in settings).
    pub retention_days: u32,
    /// Peers whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed (see [`auth::Origin`]).
    pub trusted_proxies: tollgate_core::net::TrustedProxies,
    /// Internal upstream hosts team admins may route to anyway.
    pub upstream_allowlist: tollgate_core::upstream::UpstreamAllowlist,
    /// This instance's own listeners (gateway and console), which no team route may target.
    pub own_listeners: Vec<std::net::SocketAddr>,
}

/// What the console's handlers share.
#[derive(Clone)]
pub struct ConsoleState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// The gateway, for its cache and route figures.
    pub gateway: Gateway,
    /// The usage writer's input: ingested events go where the gateway's go.
    pub sink: UsageSink,
    /// When the process started.
    pub started: Instant,
    /// The master key, when configured.
    pub master_key: Option<MasterKey>,
    /// The prices in force (shared with the gateway): ingested events without a cost are
    /// priced with them, and the Prices page shows and changes them.
    pub prices: Arc<Prices>,
    /// Settings from the configuration.
    pub settings: Arc<ConsoleSettings>,
    /// Sign-in throttling.
    pub throttle: auth::SharedThrottle,
    /// The ingest secret in force.
    pub ingest_secret: Arc<api::ingest::IngestSecret>,
    /// The gateway's limit engine, when this process runs one: limit changes reach it at once
    /// (other instances through the store revision), and the Limits page reads its use.
    pub limiter: Option<Arc<tollgate_limits::Limiter>>,
    /// The alert dispatcher, for "send a test"; `None` where the server delivers no alerts.
    pub alerts: Option<tollgate_alerts::Dispatcher>,
    /// The alert rules the server evaluates, shown on the Alerts page.
    pub alert_rules: Option<Arc<api::alerts::AlertRules>>,
}

impl ConsoleState {
    /// State with a fresh throttle and secret cache.
    #[expect(clippy::too_many_arguments, reason = "wiring happens once, in `serve`")]
    pub fn new(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        gateway: Gateway,
        sink: UsageSink,
        started: Instant,
        master_key: Option<MasterKey>,
        prices: Arc<Prices>,
        settings: ConsoleSettings,
    ) -> Self {
        Self {
            store,
            metrics,
            gateway,
            sink,
            started,
            master_key,
            prices,
            settings: Arc::new(settings),
            throttle: Arc::new(auth::Throttle::default()),
            ingest_secret: Arc::new(api::ingest::IngestSecret::default()),
            limiter: None,
            alerts: None,
            alert_rules: None,
        }
    }
}

/// The content security policy of every console response: nothing from other origins.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The console's router. Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so
/// that client addresses reach the audit log and the sign-in throttle.
#[expect(
    clippy::disallowed_methods,
    reason = "an exception: the sign-in throttle's shrink loop has no stop signal and ends only with the runtime"
)]
pub fn router(state: ConsoleState) -> Router {
    // The OpenAPI document is built on its first request, not here (see `operations.rs`).
    let api = api::served();
    let throttle = state.throttle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            tick.tick().await;
            throttle.shrink();
        }
    });
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    api.route("/api/openapi.json", get(docs::openapi))
        .route("/api/docs", get(docs::page))
        .route("/api/docs.js", get(docs::script))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        // Outside authentication, so that its 401s take the seeds' shape on their paths.
        .route_layer(axum::middleware::from_fn(api::compat::refusals))
        .fallback(ui::fallback)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(header(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(header::CACHE_CONTROL, "no-store"))
        .layer(CompressionLayer::new())
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a console handler panicked".into()).into_response()
        }))
}

/// The OpenAPI document of the console API, as served at `/api/openapi.json` (built anew on each
/// call: the console keeps the one it built first).
pub fn openapi_json() -> String {
    api::router()
        .into_openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into())
}
