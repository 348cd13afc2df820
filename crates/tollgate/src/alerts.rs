//! Alerts in `serve`: the dispatcher over the store (channels with their secrets opened by the
//! master key, a once-only ledger of crossings, every delivery attempt, the evaluator's lease),
//! budget crossings from the limiter, and the evaluation loop.
//!
//! Every instance dispatches what it sees; the store's claim lets one delivery through per
//! crossing, so two instances that both see a budget cross 80 % send one alert. The rules
//! (expiring keys, a degraded store or Redis, a spool that does not drain) run on the one
//! instance that holds the evaluator lease; it judges route error rates and unreachable upstreams
//! by the calls it carried itself (the gateway's per-route window of outcomes), which a load
//! balancer in front of the instances makes a fair sample.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tollgate_alerts::{
    Alert, AlertLedger, Attempt, BackendError, BudgetUnit, Channel, ChannelDirectory, Component,
    Degradation, DeliveryLog, Dispatcher, DispatcherConfig, Evaluator, EvaluatorConfig, Jitter,
    KeyExpiry, Lease, ObservationSource, Observations, OutboundPolicy, RetryPolicy, RouteTraffic,
    SpoolStats, UpstreamHealth,
};
use tollgate_console::api::alerts::AlertRules;
use tollgate_console::rules::alerts::{delivery_record, open_channel};
use tollgate_core::crypto::MasterKey;
use tollgate_core::time::now_ms;
use tollgate_gateway::metrics::Metrics;
use tollgate_limits::{Crossing, LimitKind, Limiter};
use tollgate_store::Store;

use crate::config::Config;

/// Alerts waiting for the dispatcher; beyond this they are dropped (and logged) rather than
/// holding up a call.
const QUEUE: usize = 1024;

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn boxed(e: impl std::error::Error + Send + Sync + 'static) -> BackendError {
    Box::new(e)
}

/// The dispatcher's storage, in the store every instance shares.
pub struct StoreAlerts {
    store: Arc<dyn Store>,
    master: Option<MasterKey>,
    /// This process, as a lease holder.
    holder: String,
}

impl StoreAlerts {
    /// Storage over `store`; channels open with `master`. `holder` names this process.
    pub fn new(store: Arc<dyn Store>, master: Option<MasterKey>, holder: String) -> Self {
        Self {
            store,
            master,
            holder,
        }
    }
}

#[async_trait]
impl AlertLedger for StoreAlerts {
    async fn claim(&self, dedup_key: &str, ttl: Duration) -> Result<bool, BackendError> {
        self.store
            .claim_alert(dedup_key, now_ms(), ms(ttl))
            .await
            .map_err(boxed)
    }
}

#[async_trait]
impl DeliveryLog for StoreAlerts {
    async fn record(&self, attempt: Attempt) -> Result<(), BackendError> {
        self.store
            .record_alert_delivery(&delivery_record(&attempt))
            .await
            .map(|_| ())
            .map_err(boxed)
    }
}

#[async_trait]
impl Lease for StoreAlerts {
    async fn hold(&self, name: &str, ttl: Duration) -> Result<bool, BackendError> {
        self.store
            .hold_lease(name, &self.holder, now_ms(), ms(ttl))
            .await
            .map_err(boxed)
    }
}

#[async_trait]
impl ChannelDirectory for StoreAlerts {
    async fn channels(&self) -> Result<Vec<Channel>, BackendError> {
        let records = self.store.list_alert_channels().await.map_err(boxed)?;
        let Some(master) = &self.master else {
            if !records.is_empty() {
                tracing::warn!(
                    "alert channels exist but no master key is configured; alerts are not sent"
                );
            }
            return Ok(Vec::new());
        };
        let mut channels = Vec::with_capacity(records.len());
        for record in &records {
            match open_channel(record, master) {
                Ok(channel) => channels.push(channel),
                Err(e) => tracing::warn!(error = %e, "an alert channel is skipped"),
            }
        }
        Ok(channels)
    }
}

/// The budget alert a limiter crossing reports, with the unit read from the limit.
pub fn crossing_alert(crossing: &Crossing, kind: Option<&LimitKind>) -> Alert {
    let (unit, scale) = match kind {
        Some(LimitKind::CostBudget { .. }) => (BudgetUnit::Usd, 1_000_000.0),
        _ => (BudgetUnit::Tokens, 1.0),
    };
    Alert::BudgetCrossing {
        limit_id: crossing.limit_id,
        scope: crossing.scope.to_string(),
        threshold_pct: crossing.threshold_pct,
        used: crossing.used as f64 / scale,
        max: crossing.max as f64 / scale,
        unit,
        period_start_ms: crossing.period_start_ms,
    }
}

/// Forwards every budget crossing of `limiter` to the dispatcher's queue until either closes.
#[expect(
    clippy::disallowed_methods,
    reason = "the caller owns the task's end: `Alerts::stop` aborts it at shutdown"
)]
pub fn forward_crossings(limiter: Arc<Limiter>, alerts: mpsc::Sender<Alert>) -> JoinHandle<()> {
    let mut crossings = limiter.subscribe();
    tokio::spawn(async move {
        loop {
            let crossing = tokio::select! {
                next = crossings.recv() => next,
                () = alerts.closed() => return,
            };
            match crossing {
                Ok(crossing) => {
                    let limits = limiter.limits();
                    let kind = limits
                        .iter()
                        .find(|l| l.id == crossing.limit_id)
                        .map(|l| &l.kind);
                    if let Err(e) = alerts.try_send(crossing_alert(&crossing, kind)) {
                        tracing::warn!(limit_id = crossing.limit_id, error = %e, "budget alert dropped: the alert queue is full");
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "budget crossings were missed: too many at once");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}

/// Since when a condition has held, and its last detail.
#[derive(Default)]
struct Since {
    store: Option<(i64, String)>,
    redis: Option<i64>,
    /// Spool bytes last seen and when the spool last shrank or was empty.
    spool: (i64, i64),
}

/// What the rules look at, read from the store, the limiter and the writer's metrics.
struct Observer {
    store: Arc<dyn Store>,
    limiter: Option<Arc<Limiter>>,
    metrics: Arc<Metrics>,
    since: Mutex<Since>,
    /// Minutes of route outcomes the error-rate rule looks at.
    error_window_minutes: usize,
}

#[async_trait]
impl ObservationSource for Observer {
    async fn observe(&self) -> Result<Observations, BackendError> {
        let now = now_ms();
        let keys = match self.store.list_keys(None).await {
            Ok(keys) => Ok(keys
                .into_iter()
                .filter(|k| k.revoked_at_ms.is_none())
                .map(|k| KeyExpiry {
                    key_id: k.id,
                    name: k.name,
                    expires_at_ms: k.expires_at_ms,
                })
                .collect()),
            Err(e) => Err(e.to_string()),
        };
        let store_error = match (&keys, self.store.ping().await) {
            (Err(e), _) => Some(e.clone()),
            (Ok(_), Err(e)) => Some(e.to_string()),
            (Ok(_), Ok(())) => None,
        };
        let redis_degraded = self.limiter.as_ref().is_some_and(|l| l.degraded());
        let spool_bytes = self.metrics.spool_bytes_now();
        let mut since = self.since.lock().unwrap_or_else(PoisonError::into_inner);
        since.store = match (store_error, since.store.take()) {
            (Some(detail), Some((at, _))) => Some((at, detail)),
            (Some(detail), None) => Some((now, detail)),
            (None, _) => None,
        };
        since.redis = match (redis_degraded, since.redis) {
            (true, Some(at)) => Some(at),
            (true, None) => Some(now),
            (false, _) => None,
        };
        let (last_bytes, _) = since.spool;
        if spool_bytes == 0 || spool_bytes < last_bytes {
            since.spool.1 = now;
        }
        since.spool.0 = spool_bytes;
        let mut degraded = Vec::new();
        if let Some((at, detail)) = &since.store {
            degraded.push(Degradation {
                component: Component::Store,
                since_ms: *at,
                detail: detail.clone(),
            });
        }
        if let Some(at) = since.redis {
            degraded.push(Degradation {
                component: Component::Redis,
                since_ms: at,
                detail: "Redis does not answer; limits are counted by each instance alone, or \
                         refused (fail_closed)"
                    .into(),
            });
        }
        let outcomes = self.metrics.routes.snapshot(now, self.error_window_minutes);
        Ok(Observations {
            keys: keys.unwrap_or_default(),
            routes: outcomes
                .iter()
                .map(|o| RouteTraffic {
                    route: o.route.clone(),
                    calls: o.calls,
                    errors: o.errors,
                })
                .collect(),
            upstreams: outcomes
                .into_iter()
                .map(|o| UpstreamHealth {
                    route: o.route,
                    unreachable_since_ms: o.unreachable_since_ms,
                    last_error: o.last_error,
                })
                .collect(),
            degraded,
            spool: Some(SpoolStats {
                pending_bytes: u64::try_from(spool_bytes).unwrap_or(0),
                last_progress_ms: since.spool.1,
            }),
        })
    }
}

/// The alert machinery of a running server.
pub struct Alerts {
    /// Delivers alerts; the console's "send a test" uses it too.
    pub dispatcher: Dispatcher,
    /// The rules the evaluator runs, for the console.
    pub rules: Arc<AlertRules>,
    sender: mpsc::Sender<Alert>,
    tasks: Vec<JoinHandle<()>>,
}

impl Alerts {
    /// Reports the budget crossings of `limiter` from now on.
    pub fn follow(&mut self, limiter: Arc<Limiter>) {
        self.tasks
            .push(forward_crossings(limiter, self.sender.clone()));
    }

    /// Stops evaluating and dispatching (deliveries under way are abandoned; their attempts so
    /// far are recorded).
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// A name for this process among instances: host name, process id and a random part.
fn holder_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "tollgate".into());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// The dispatcher's settings from the configuration.
pub fn dispatcher_config(
    config: &Config,
    own_listeners: Vec<std::net::SocketAddr>,
) -> DispatcherConfig {
    let mut dispatch = DispatcherConfig::new(holder_name());
    dispatch.retry = RetryPolicy {
        base: Duration::from_millis(config.alerts.retry_base_ms),
        cap: Duration::from_secs(config.alerts.retry_cap_secs),
        max_attempts: config.alerts.max_attempts,
        jitter: Jitter::Full,
    };
    dispatch.outbound = OutboundPolicy::new(config.upstream_allowlist(), own_listeners);
    dispatch
}

/// The rules an evaluator runs, as the console shows them.
fn rules_of(evaluate_interval_secs: u64, c: &EvaluatorConfig) -> AlertRules {
    AlertRules {
        evaluate_interval_secs,
        key_expiry_days: c.key_expiry_days.clone(),
        route_error_rate_pct: c.error_rate_pct,
        route_error_min_calls: c.error_min_calls,
        route_error_window_secs: c.error_window.as_secs(),
        upstream_unreachable_secs: c.upstream_grace.as_secs(),
        degraded_secs: c.degraded_grace.as_secs(),
        spool_stall_secs: c.spool_stall.as_secs(),
        renotify_secs: c.renotify.as_secs(),
    }
}

/// Starts the dispatcher and the evaluation loop; with `limiter`, budget crossings are reported.
#[expect(
    clippy::disallowed_methods,
    reason = "the tasks' handles are kept in `Alerts`, whose `stop` ends them at shutdown"
)]
pub fn start(
    config: &Config,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    limiter: Option<Arc<Limiter>>,
    own_listeners: Vec<std::net::SocketAddr>,
) -> anyhow::Result<Alerts> {
    let dispatch = dispatcher_config(config, own_listeners);
    let storage = Arc::new(StoreAlerts::new(
        store.clone(),
        config.master_key(),
        dispatch.instance.clone(),
    ));
    let dispatcher = Dispatcher::new(dispatch, storage.clone(), storage.clone(), storage.clone())
        .map_err(anyhow::Error::msg)?;
    let evaluator = Evaluator::new(EvaluatorConfig {
        key_expiry_days: config.alerts.key_expiry_days.clone(),
        error_rate_pct: config.alerts.route_error_rate_pct,
        error_min_calls: config.alerts.route_error_min_calls,
        error_window: Duration::from_secs(u64::from(config.alerts.route_error_window_minutes) * 60),
        upstream_grace: Duration::from_secs(config.alerts.upstream_unreachable_secs),
        ..EvaluatorConfig::default()
    })
    .map_err(|e| anyhow::anyhow!("alerts.{e}"))?;
    let rules = Arc::new(rules_of(
        config.alerts.evaluate_interval_secs,
        evaluator.config(),
    ));
    let (sender, queue) = mpsc::channel(QUEUE);
    let mut tasks = vec![dispatcher.spawn(queue)];
    let observer = Arc::new(Observer {
        store,
        limiter: limiter.clone(),
        metrics,
        since: Mutex::new(Since::default()),
        error_window_minutes: usize::try_from(config.alerts.route_error_window_minutes)
            .unwrap_or(5),
    });
    let every = Duration::from_secs(config.alerts.evaluate_interval_secs);
    let evaluations = sender.clone();
    tasks.push(tokio::spawn(async move {
        evaluator.run(observer, storage, evaluations, every).await;
    }));
    let mut alerts = Alerts {
        dispatcher,
        rules,
        sender,
        tasks,
    };
    if let Some(limiter) = limiter {
        alerts.follow(limiter);
    }
    Ok(alerts)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use axum::extract::State;
    use axum::http::HeaderMap;
    use tollgate_console::rules::alerts::{ChannelDraft, create};
    use tollgate_console::rules::{Actor, Rules};
    use tollgate_core::upstream::UpstreamAllowlist;
    use tollgate_limits::{
        Enforcement, Limit, LimiterConfig, LocalCounters, Period, Request, Scope, ZeroSeed,
    };
    use tollgate_store_sqlite::SqliteStore;

    use super::*;

    type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

    /// A webhook receiver on loopback keeping each body with its signature.
    #[expect(
        clippy::disallowed_methods,
        reason = "the receiver serves until the test's runtime ends"
    )]
    async fn receiver() -> (std::net::SocketAddr, Received) {
        let received: Received = Arc::default();
        let app =
            axum::Router::new()
                .route(
                    "/hook",
                    axum::routing::post(
                        |State(seen): State<Received>,
                         headers: HeaderMap,
                         body: axum::body::Bytes| async move {
                            let signature = headers
                                .get("x-tollgate-signature")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            seen.lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .push((signature, body.to_vec()));
                            "ok"
                        },
                    ),
                )
                .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, received)
    }

    fn budget_limiter() -> Arc<Limiter> {
        let limit = Limit {
            id: 1,
            scope: Scope::Key(7),
            kind: LimitKind::TokenBudget {
                max: 100,
                period: Period::Total,
            },
            enforcement: Enforcement::Hard,
            alert_at: vec![80, 100],
            include_reported: false,
        };
        Arc::new(
            Limiter::new(
                vec![limit],
                Arc::new(LocalCounters::new(Arc::new(ZeroSeed))),
                LimiterConfig::default(),
            )
            .expect("limiter"),
        )
    }

    /// Two instances (each its own limiter and dispatcher) share one store: both see the budget
    /// cross 80 %, the receiver hears of it once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crossing_seen_by_two_instances_is_delivered_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url).await.expect("store"));
        store.migrate().await.expect("migrate");
        let master = MasterKey::new("a-master-key-for-tests-0123456789abcdef").expect("key");
        let (addr, received) = receiver().await;
        let allow = UpstreamAllowlist::parse(&["127.0.0.1"]).expect("allowlist");
        let rules = Rules {
            store: store.as_ref(),
            master_key: Some(&master),
            upstream_allowlist: &allow,
            own_listeners: &[],
        };
        let (_, secret) = create(
            &rules,
            &Actor::Operator("cli:test"),
            ChannelDraft {
                name: "ops".into(),
                url: format!("http://{addr}/hook"),
                format: None,
            },
        )
        .await
        .expect("channel");

        let mut instances = Vec::new();
        for n in 0..2 {
            let mut dispatch = DispatcherConfig::new(format!("instance-{n}"));
            dispatch.outbound = OutboundPolicy::new(allow.clone(), Vec::new());
            let storage = Arc::new(StoreAlerts::new(
                store.clone(),
                Some(master.clone()),
                format!("instance-{n}"),
            ));
            let dispatcher = Dispatcher::new(dispatch, storage.clone(), storage.clone(), storage)
                .expect("dispatcher");
            let (sender, queue) = mpsc::channel(16);
            let limiter = budget_limiter();
            let mut alerts = Alerts {
                dispatcher: dispatcher.clone(),
                rules: Arc::new(rules_of(60, &EvaluatorConfig::default())),
                sender,
                tasks: vec![dispatcher.spawn(queue)],
            };
            alerts.follow(limiter.clone());
            instances.push((alerts, limiter));
        }
        for (_, limiter) in &instances {
            let admission = limiter
                .admit(&Request {
                    key_id: Some(7),
                    now_ms: now_ms(),
                    ..Request::default()
                })
                .await
                .expect("admitted");
            admission.settle(85, 0).await.expect("settled");
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let attempts = store
                .list_alert_deliveries(None, 10)
                .await
                .expect("deliveries");
            if attempts.len() >= 2 || std::time::Instant::now() > deadline {
                break;
            }
            if !attempts.is_empty() {
                // Let the second instance's alert arrive and be refused by the ledger.
                tokio::time::sleep(Duration::from_millis(500)).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got = received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert_eq!(got.len(), 1, "one delivery for one crossing");
        let body: serde_json::Value = serde_json::from_slice(&got[0].1).expect("JSON body");
        assert_eq!(body["kind"], "budget_crossing");
        assert_eq!(body["dedup_key"], "budget:1:0:80");
        assert_eq!(body["details"]["scope"], "key 7");
        assert_eq!(body["details"]["unit"], "tokens");
        assert!(got[0].0.starts_with("sha256="), "{}", got[0].0);
        let deliveries = store
            .list_alert_deliveries(None, 10)
            .await
            .expect("deliveries");
        let by_status: BTreeMap<String, usize> =
            deliveries.iter().fold(BTreeMap::new(), |mut m, d| {
                *m.entry(d.status.clone()).or_default() += 1;
                m
            });
        assert_eq!(by_status.get("delivered"), Some(&1), "{deliveries:?}");
        assert_eq!(deliveries.len(), 1, "{deliveries:?}");
        assert_eq!(deliveries[0].kind, "budget_crossing");
        assert!(
            deliveries[0].summary.contains("80 %"),
            "{:?}",
            deliveries[0]
        );
        assert!(!secrecy::ExposeSecret::expose_secret(&secret).is_empty());
        for (alerts, _) in instances {
            alerts.stop();
        }
    }

    #[test]
    fn cost_crossings_read_in_dollars() {
        let crossing = Crossing {
            limit_id: 3,
            scope: Scope::Team(2),
            period_start_ms: 1_764_547_200_000,
            threshold_pct: 100,
            used: 2_500_000,
            max: 2_000_000,
        };
        let kind = LimitKind::CostBudget {
            max_micro_usd: 2_000_000,
            period: Period::Month,
        };
        let alert = crossing_alert(&crossing, Some(&kind));
        assert_eq!(
            alert.summary(),
            "Budget of team 2 reached 100 %: $2.50 of $2.00 since 2025-12-01T00:00:00Z"
        );
        assert_eq!(alert.dedup_key(), "budget:3:1764547200000:100");
    }
}
