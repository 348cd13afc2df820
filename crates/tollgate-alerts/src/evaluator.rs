//! Rules that turn observations into alerts, and the lease that lets one instance run them.
//!
//! The rules are pure: the same observations at the same time give the same alerts, with the
//! same dedup keys, on any instance. An ongoing condition is reported again on every evaluation;
//! the ledger lets one delivery through per crossing (per budget period and threshold, per key
//! expiry and notice, per re-notification period for operational conditions).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::mpsc;
use tollgate_core::time::now_ms;

use crate::alert::{Alert, BudgetUnit, Component};
use crate::delivery::BackendError;

use tollgate_core::time::DAY_MS;
/// The lease name the evaluation loop holds.
const EVALUATOR_LEASE: &str = "alerts-evaluator";

/// Thresholds of the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluatorConfig {
    /// Notices before a key expires, in days (each is sent once per key and expiry).
    pub key_expiry_days: Vec<u32>,
    /// A route alerts when more than this percentage of its calls fail over the window.
    pub error_rate_pct: f64,
    /// ...and it had at least this many calls (one failure in one call is not a trend).
    pub error_min_calls: u64,
    /// The window the caller counts route errors over.
    pub error_window: Duration,
    /// An upstream alerts after it has been unreachable this long.
    pub upstream_grace: Duration,
    /// Redis or the store alerts after it has been degraded this long.
    pub degraded_grace: Duration,
    /// The spool alerts after it has held events without shrinking this long.
    pub spool_stall: Duration,
    /// An ongoing operational condition is reported again after this long.
    pub renotify: Duration,
}

impl Default for EvaluatorConfig {
    /// Keys at 7 days and 1 day; routes above 10 % over 5 minutes with at least 20 calls;
    /// upstreams after 1 minute; Redis and store after 30 s; the spool after 5 minutes; again
    /// every hour.
    fn default() -> Self {
        Self {
            key_expiry_days: vec![7, 1],
            error_rate_pct: 10.0,
            error_min_calls: 20,
            error_window: Duration::from_secs(300),
            upstream_grace: Duration::from_secs(60),
            degraded_grace: Duration::from_secs(30),
            spool_stall: Duration::from_secs(300),
            renotify: Duration::from_secs(3_600),
        }
    }
}

impl EvaluatorConfig {
    /// Checks the thresholds; the error names the setting that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.key_expiry_days.contains(&0) {
            return Err("key_expiry_days: every notice must be at least 1 day".into());
        }
        if !(self.error_rate_pct.is_finite() && (0.0..100.0).contains(&self.error_rate_pct)) {
            return Err(format!(
                "error_rate_pct: {} is not a percentage from 0 up to (not including) 100",
                self.error_rate_pct
            ));
        }
        if self.error_min_calls == 0 {
            return Err("error_min_calls: must be at least 1".into());
        }
        if self.error_window.is_zero() {
            return Err("error_window: must be longer than zero".into());
        }
        if self.renotify < Duration::from_secs(60) {
            return Err("renotify: must be at least one minute".into());
        }
        Ok(())
    }
}

/// A key that may expire (active keys only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExpiry {
    /// The key's id.
    pub key_id: i64,
    /// The key's name.
    pub name: String,
    /// When it expires, if ever.
    pub expires_at_ms: Option<i64>,
}

/// A route's calls over the error window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTraffic {
    /// The route's name.
    pub route: String,
    /// Calls forwarded or attempted.
    pub calls: u64,
    /// Of those, upstream 5xx answers and connection failures.
    pub errors: u64,
}

/// Whether a route's upstream answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamHealth {
    /// The route's name.
    pub route: String,
    /// Since when it has not answered; `None` when it does.
    pub unreachable_since_ms: Option<i64>,
    /// The last connection error.
    pub last_error: String,
}

/// A component running degraded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Degradation {
    /// Which one.
    pub component: Component,
    /// Since when.
    pub since_ms: i64,
    /// The last error.
    pub detail: String,
}

/// The usage spool's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolStats {
    /// Bytes waiting to be written to the store.
    pub pending_bytes: u64,
    /// The last time the spool shrank or was empty.
    pub last_progress_ms: i64,
}

/// Everything the rules look at, gathered by the caller.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observations {
    /// Active keys.
    pub keys: Vec<KeyExpiry>,
    /// Per-route calls over the error window.
    pub routes: Vec<RouteTraffic>,
    /// Per-route upstream health.
    pub upstreams: Vec<UpstreamHealth>,
    /// Components currently degraded.
    pub degraded: Vec<Degradation>,
    /// The spool, when there is one.
    pub spool: Option<SpoolStats>,
}

/// Gathers [`Observations`] for the evaluation loop (the lead's wiring reads the store, the
/// gateway's counters and the health monitors).
#[async_trait]
pub trait ObservationSource: Send + Sync {
    /// What is true now.
    async fn observe(&self) -> Result<Observations, BackendError>;
}

/// A lease among instances, so one evaluates at a time (the store or Redis in production).
#[async_trait]
pub trait Lease: Send + Sync {
    /// Takes or renews `name` for `ttl`: true while this holder has it.
    async fn hold(&self, name: &str, ttl: Duration) -> Result<bool, BackendError>;
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The alert rules with their thresholds.
#[derive(Debug, Clone)]
pub struct Evaluator {
    config: EvaluatorConfig,
    /// Notice days, smallest first.
    notice_days: Vec<u32>,
}

impl Evaluator {
    /// Rules with these thresholds; the error names the setting that is wrong.
    pub fn new(config: EvaluatorConfig) -> Result<Self, String> {
        config.validate()?;
        let mut notice_days = config.key_expiry_days.clone();
        notice_days.sort_unstable();
        notice_days.dedup();
        Ok(Self {
            config,
            notice_days,
        })
    }

    /// The thresholds.
    pub fn config(&self) -> &EvaluatorConfig {
        &self.config
    }

    /// The alerts `observations` call for at `now_ms`.
    pub fn evaluate(&self, observations: &Observations, now_ms: i64) -> Vec<Alert> {
        let c = &self.config;
        let renotify = duration_ms(c.renotify).max(1);
        let period_start_ms = now_ms - now_ms.rem_euclid(renotify);
        let lasted =
            |since: i64, grace: Duration| now_ms.saturating_sub(since) >= duration_ms(grace);
        let mut alerts = Vec::new();
        for key in &observations.keys {
            let Some(expires_at_ms) = key.expires_at_ms else {
                continue;
            };
            let left = expires_at_ms.saturating_sub(now_ms);
            if left <= 0 {
                continue;
            }
            // The nearest notice only: a key found 12 hours before expiry gets the 1-day notice,
            // not the 7-day one as well.
            if let Some(&days) = self
                .notice_days
                .iter()
                .find(|&&d| left <= i64::from(d).saturating_mul(DAY_MS))
            {
                alerts.push(Alert::KeyExpiring {
                    key_id: key.key_id,
                    name: key.name.clone(),
                    expires_at_ms,
                    days,
                });
            }
        }
        for route in &observations.routes {
            if route.calls < c.error_min_calls || route.calls == 0 {
                continue;
            }
            let rate_pct = route.errors.min(route.calls) as f64 * 100.0 / route.calls as f64;
            if rate_pct > c.error_rate_pct {
                alerts.push(Alert::RouteErrorRate {
                    route: route.route.clone(),
                    rate_pct,
                    calls: route.calls,
                    errors: route.errors.min(route.calls),
                    window_secs: c.error_window.as_secs(),
                    period_start_ms,
                });
            }
        }
        for upstream in &observations.upstreams {
            if let Some(since_ms) = upstream.unreachable_since_ms
                && lasted(since_ms, c.upstream_grace)
            {
                alerts.push(Alert::UpstreamUnreachable {
                    route: upstream.route.clone(),
                    error: upstream.last_error.clone(),
                    since_ms,
                    period_start_ms,
                });
            }
        }
        for degraded in &observations.degraded {
            if lasted(degraded.since_ms, c.degraded_grace) {
                alerts.push(Alert::Degraded {
                    component: degraded.component,
                    detail: degraded.detail.clone(),
                    since_ms: degraded.since_ms,
                    period_start_ms,
                });
            }
        }
        if let Some(spool) = observations.spool
            && spool.pending_bytes > 0
            && lasted(spool.last_progress_ms, c.spool_stall)
        {
            alerts.push(Alert::SpoolNotDraining {
                pending_bytes: spool.pending_bytes,
                since_ms: spool.last_progress_ms,
                period_start_ms,
            });
        }
        alerts
    }

    /// Evaluates every `every` while this instance holds the evaluator lease, sending alerts to
    /// the dispatcher's queue, until that queue closes. A lease that cannot answer (its store is
    /// down) does not stop evaluation: the alert about the outage matters more than a possible
    /// repeat.
    pub async fn run(
        &self,
        source: Arc<dyn ObservationSource>,
        lease: Arc<dyn Lease>,
        alerts: mpsc::Sender<Alert>,
        every: Duration,
    ) {
        let every = every.max(Duration::from_millis(10));
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = alerts.closed() => return,
            }
            match lease.hold(EVALUATOR_LEASE, every.saturating_mul(3)).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "evaluator lease unavailable; evaluating anyway");
                }
            }
            let observations = match source.observe().await {
                Ok(observations) => observations,
                Err(e) => {
                    tracing::warn!(error = %e, "alert observations could not be gathered");
                    continue;
                }
            };
            for alert in self.evaluate(&observations, now_ms()) {
                if let Err(e) = alerts.try_send(alert) {
                    tracing::warn!(error = %e, "alert queue full or closed; alert dropped until the next evaluation");
                }
            }
        }
    }
}

/// The budget alert a use level calls for: the highest of `alert_at` (percent of `max`) that
/// `used` has reached, or `None`. Only the highest, so a jump from 50 % to 105 % sends the 100 %
/// alert alone; the ledger keeps each threshold to one delivery per period.
pub fn budget_crossing(
    limit_id: i64,
    scope: &str,
    alert_at: &[u16],
    used: f64,
    max: f64,
    unit: BudgetUnit,
    period_start_ms: i64,
) -> Option<Alert> {
    if !(max.is_finite() && max > 0.0 && used.is_finite()) {
        return None;
    }
    let reached = used * 100.0 / max;
    let threshold_pct = alert_at
        .iter()
        .copied()
        .filter(|&t| t > 0 && reached >= f64::from(t))
        .max()?;
    Some(Alert::BudgetCrossing {
        limit_id,
        scope: scope.to_owned(),
        threshold_pct,
        used,
        max,
        unit,
        period_start_ms,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// In-process leases: one table shared by holders (tests run several "instances" on one).
#[derive(Debug, Clone, Default)]
pub struct MemoryLeases {
    table: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

impl MemoryLeases {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The lease handle of one holder (one instance).
    pub fn holder(&self, id: impl Into<String>) -> MemoryLease {
        MemoryLease {
            table: Arc::clone(&self.table),
            id: id.into(),
        }
    }
}

/// One holder's view of a [`MemoryLeases`] table.
#[derive(Debug, Clone)]
pub struct MemoryLease {
    table: Arc<Mutex<HashMap<String, (String, Instant)>>>,
    id: String,
}

#[async_trait]
impl Lease for MemoryLease {
    async fn hold(&self, name: &str, ttl: Duration) -> Result<bool, BackendError> {
        let now = Instant::now();
        let mut table = lock(&self.table);
        let free = table
            .get(name)
            .is_none_or(|(holder, until)| *holder == self.id || *until <= now);
        if free {
            let ttl = ttl.min(Duration::from_secs(86_400));
            table.insert(name.to_owned(), (self.id.clone(), now + ttl));
        }
        Ok(free)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_765_000_000_000;

    fn evaluator() -> Evaluator {
        Evaluator::new(EvaluatorConfig::default()).unwrap()
    }

    #[test]
    fn keys_get_the_nearest_notice_once_per_expiry() {
        let keys = vec![
            KeyExpiry {
                key_id: 1,
                name: "ci".into(),
                expires_at_ms: Some(NOW + 6 * DAY_MS),
            },
            KeyExpiry {
                key_id: 2,
                name: "app".into(),
                expires_at_ms: Some(NOW + DAY_MS / 2),
            },
            KeyExpiry {
                key_id: 3,
                name: "far".into(),
                expires_at_ms: Some(NOW + 30 * DAY_MS),
            },
            KeyExpiry {
                key_id: 4,
                name: "gone".into(),
                expires_at_ms: Some(NOW - 1),
            },
            KeyExpiry {
                key_id: 5,
                name: "never".into(),
                expires_at_ms: None,
            },
        ];
        let alerts = evaluator().evaluate(
            &Observations {
                keys,
                ..Default::default()
            },
            NOW,
        );
        let keys: Vec<String> = alerts.iter().map(Alert::dedup_key).collect();
        assert_eq!(
            keys,
            [
                format!("key_expiring:1:{}:7", NOW + 6 * DAY_MS),
                format!("key_expiring:2:{}:1", NOW + DAY_MS / 2),
            ]
        );
    }

    #[test]
    fn route_errors_need_volume_and_a_rate_above_the_threshold() {
        let routes = vec![
            RouteTraffic {
                route: "hot".into(),
                calls: 100,
                errors: 11,
            },
            RouteTraffic {
                route: "edge".into(),
                calls: 100,
                errors: 10,
            },
            RouteTraffic {
                route: "quiet".into(),
                calls: 3,
                errors: 3,
            },
        ];
        let alerts = evaluator().evaluate(
            &Observations {
                routes,
                ..Default::default()
            },
            NOW,
        );
        assert_eq!(alerts.len(), 1);
        let Alert::RouteErrorRate {
            route,
            rate_pct,
            window_secs,
            period_start_ms,
            ..
        } = &alerts[0]
        else {
            panic!("{alerts:?}")
        };
        assert_eq!(route, "hot");
        assert!((rate_pct - 11.0).abs() < 1e-9);
        assert_eq!(*window_secs, 300);
        assert_eq!(*period_start_ms, NOW - NOW.rem_euclid(3_600_000));
        // The same condition later in the hour has the same key; the next hour, a new one.
        let again = evaluator().evaluate(
            &Observations {
                routes: vec![RouteTraffic {
                    route: "hot".into(),
                    calls: 50,
                    errors: 40,
                }],
                ..Default::default()
            },
            *period_start_ms + 3_599_999,
        );
        assert_eq!(again[0].dedup_key(), alerts[0].dedup_key());
        let next = evaluator().evaluate(
            &Observations {
                routes: vec![RouteTraffic {
                    route: "hot".into(),
                    calls: 50,
                    errors: 40,
                }],
                ..Default::default()
            },
            *period_start_ms + 3_600_000,
        );
        assert_ne!(next[0].dedup_key(), alerts[0].dedup_key());
    }

    #[test]
    fn outages_alert_after_their_grace() {
        let observations = Observations {
            upstreams: vec![
                UpstreamHealth {
                    route: "down".into(),
                    unreachable_since_ms: Some(NOW - 61_000),
                    last_error: "connection refused".into(),
                },
                UpstreamHealth {
                    route: "blip".into(),
                    unreachable_since_ms: Some(NOW - 5_000),
                    last_error: "reset".into(),
                },
                UpstreamHealth {
                    route: "fine".into(),
                    unreachable_since_ms: None,
                    last_error: String::new(),
                },
            ],
            degraded: vec![
                Degradation {
                    component: Component::Redis,
                    since_ms: NOW - 31_000,
                    detail: "refused".into(),
                },
                Degradation {
                    component: Component::Store,
                    since_ms: NOW - 1_000,
                    detail: "slow".into(),
                },
            ],
            spool: Some(SpoolStats {
                pending_bytes: 4096,
                last_progress_ms: NOW - 301_000,
            }),
            ..Default::default()
        };
        let kinds: Vec<String> = evaluator()
            .evaluate(&observations, NOW)
            .iter()
            .map(|a| {
                a.dedup_key()
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            kinds,
            ["upstream_unreachable", "degraded", "spool_not_draining"]
        );
        let empty_spool = Observations {
            spool: Some(SpoolStats {
                pending_bytes: 0,
                last_progress_ms: 0,
            }),
            ..Default::default()
        };
        assert!(evaluator().evaluate(&empty_spool, NOW).is_empty());
    }

    #[test]
    fn budget_crossings_report_the_highest_threshold_reached() {
        let at = [80, 100];
        let crossing =
            |used| budget_crossing(9, "team ml", &at, used, 1000.0, BudgetUnit::Tokens, 0);
        assert_eq!(crossing(799.0), None);
        assert_eq!(
            crossing(800.0).map(|a| a.dedup_key()),
            Some("budget:9:0:80".into())
        );
        assert_eq!(
            crossing(1500.0).map(|a| a.dedup_key()),
            Some("budget:9:0:100".into())
        );
        assert_eq!(
            budget_crossing(9, "x", &at, 5.0, 0.0, BudgetUnit::Usd, 0),
            None
        );
        assert_eq!(
            budget_crossing(9, "x", &at, f64::NAN, 1.0, BudgetUnit::Usd, 0),
            None
        );
    }

    #[test]
    fn bad_thresholds_are_named() {
        let bad = |c: EvaluatorConfig| Evaluator::new(c).unwrap_err();
        let d = EvaluatorConfig::default;
        assert!(
            bad(EvaluatorConfig {
                key_expiry_days: vec![0],
                ..d()
            })
            .starts_with("key_expiry_days")
        );
        assert!(
            bad(EvaluatorConfig {
                error_rate_pct: 100.0,
                ..d()
            })
            .starts_with("error_rate_pct")
        );
        assert!(
            bad(EvaluatorConfig {
                error_rate_pct: f64::NAN,
                ..d()
            })
            .starts_with("error_rate_pct")
        );
        assert!(
            bad(EvaluatorConfig {
                error_min_calls: 0,
                ..d()
            })
            .starts_with("error_min_calls")
        );
        assert!(
            bad(EvaluatorConfig {
                renotify: Duration::from_secs(1),
                ..d()
            })
            .starts_with("renotify")
        );
    }

    #[tokio::test]
    async fn one_holder_has_the_lease_until_it_lapses() {
        let leases = MemoryLeases::new();
        let (a, b) = (leases.holder("a"), leases.holder("b"));
        let ttl = Duration::from_millis(400);
        assert!(a.hold("eval", ttl).await.unwrap());
        assert!(!b.hold("eval", ttl).await.unwrap());
        assert!(a.hold("eval", ttl).await.unwrap());
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(b.hold("eval", ttl).await.unwrap());
        assert!(!a.hold("eval", ttl).await.unwrap());
    }
}
