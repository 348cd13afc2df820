//! The limiter: which limits apply to a call, admission, settlement, crossings and usage.

use std::collections::HashSet;

use rustc_hash::FxHashMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use jiff::tz::TimeZone;
use serde::Serialize;
use smallvec::SmallVec;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::counters::{
    Attempt, Check, Counter, Counters, CountersError, Outcome, Settlement, States, Unit,
};
use crate::model::{FieldError, Limit, LimitKind, Period, Scope, period_bounds};

/// Where the limiter reads the time (epoch ms); tests inject their own.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// How the limiter computes periods and how long reservations last.
#[derive(Clone)]
pub struct LimiterConfig {
    /// The zone in which calendar periods (day, week, month) start; UTC by default.
    pub time_zone: TimeZone,
    /// How long an unsettled reservation or in-flight lease lasts (a crashed call's never leaks).
    pub reservation_ttl: Duration,
    /// The clock used for settlements, readings and usage (admissions carry their own time).
    pub clock: Clock,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        Self {
            time_zone: TimeZone::UTC,
            reservation_ttl: Duration::from_secs(600),
            clock: Arc::new(tollgate_core::time::now_ms),
        }
    }
}

impl fmt::Debug for LimiterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimiterConfig")
            .field("time_zone", &self.time_zone.iana_name())
            .field("reservation_ttl", &self.reservation_ttl)
            .finish_non_exhaustive()
    }
}

/// One call to admit: who makes it, through which route, and what it is expected to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Request {
    /// The team of the key, if any.
    pub team_id: Option<i64>,
    /// The key the call is made with.
    pub key_id: Option<i64>,
    /// The route it goes through.
    pub route_id: Option<i64>,
    /// Estimated tokens (prompt + completion); reserved on token limits until settled.
    pub estimate_tokens: u64,
    /// Estimated cost in micro-USD; reserved on cost budgets until settled.
    pub estimate_cost_micro: i64,
    /// Now, epoch ms.
    pub now_ms: i64,
}

/// A token-counter reading (not gateway traffic): counts only on budgets with `include_reported`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reported {
    /// The team of the key that reported, if any.
    pub team_id: Option<i64>,
    /// The key that reported.
    pub key_id: Option<i64>,
    /// The route, if the reading names one.
    pub route_id: Option<i64>,
    /// Tokens in the reading.
    pub tokens: u64,
    /// Their cost in micro-USD.
    pub cost_micro: i64,
}

/// Why a call was refused, with its wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// A request or token rate limit is reached.
    RateLimited,
    /// A token or cost budget is spent.
    BudgetExceeded,
    /// Too many calls in flight.
    ConcurrencyLimited,
    /// The shared counters cannot be reached and limits fail closed.
    LimitsUnavailable,
}

impl RefusalCode {
    /// The code on the wire: `rate_limited`, `budget_exceeded`, `concurrency_limited`,
    /// `limits_unavailable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::BudgetExceeded => "budget_exceeded",
            Self::ConcurrencyLimited => "concurrency_limited",
            Self::LimitsUnavailable => "limits_unavailable",
        }
    }

    /// The HTTP status to answer with: 429, or 503 when limits are unavailable.
    pub fn http_status(self) -> u16 {
        match self {
            Self::LimitsUnavailable => 503,
            _ => 429,
        }
    }
}

impl fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused call: the code, the limit that refused it, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub code: RefusalCode,
    /// The limit that refused (none for `limits_unavailable`).
    pub limit_id: Option<i64>,
    /// That limit's scope.
    pub scope: Option<Scope>,
    /// When trying again may succeed; `None` when waiting will not help (a total budget is
    /// spent, or the call alone is larger than the limit).
    pub retry_after: Option<Duration>,
    /// Whether the refusing counter took the call's estimate (a tokens-per-minute rate or a
    /// budget), so that the same call with a smaller estimate might have been admitted.
    pub by_estimate: bool,
}

impl Refusal {
    /// `Retry-After` in whole seconds, rounded up.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
            .map(|d| d.as_millis().div_ceil(1000).try_into().unwrap_or(u64::MAX))
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.code {
            RefusalCode::RateLimited => "a rate limit is reached",
            RefusalCode::BudgetExceeded => "a budget is spent",
            RefusalCode::ConcurrencyLimited => "too many calls are in flight",
            RefusalCode::LimitsUnavailable => "limits cannot be checked right now",
        };
        f.write_str(what)?;
        if let (Some(id), Some(scope)) = (self.limit_id, self.scope) {
            write!(f, " (limit {id} on {scope})")?;
        }
        Ok(())
    }
}

/// A budget crossing a threshold, reported once per (limit, period, threshold) by this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Crossing {
    /// The budget's limit.
    pub limit_id: i64,
    /// Its scope.
    pub scope: Scope,
    /// Start of the period, epoch ms (0 for a total budget).
    pub period_start_ms: i64,
    /// The threshold crossed, percent.
    pub threshold_pct: u16,
    /// Settled use when it was crossed (tokens or micro-USD).
    pub used: i64,
    /// The budget.
    pub max: i64,
}

/// One limit's current use, for listings and the Limits page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LimitUsage {
    /// The limit.
    pub limit_id: i64,
    /// Requests in the window, tokens in the minute, calls in flight, or settled budget use.
    pub used: i64,
    /// Reserved by calls in flight (budgets).
    pub reserved: i64,
    /// The limit's ceiling.
    pub max: i64,
    /// What is left: max − used − reserved, never below zero.
    pub remaining: i64,
    /// When the use next goes down (epoch ms): the oldest entry leaves the window, or the period
    /// ends. `None` when nothing is counted or the budget is total.
    pub resets_at_ms: Option<i64>,
}

/// The tightest limit of one kind, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLimit {
    /// The limit.
    pub limit: u64,
    /// What is left after this call.
    pub remaining: u64,
    /// When it next goes up.
    pub reset: Duration,
}

/// The tightest request limit and the tightest token limit that apply to a call; the gateway
/// writes them as OpenAI's `x-ratelimit-*` headers (reset times with [`format_reset`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHeaders {
    /// For `x-ratelimit-{limit,remaining,reset}-requests`.
    pub requests: Option<HeaderLimit>,
    /// For `x-ratelimit-{limit,remaining,reset}-tokens`.
    pub tokens: Option<HeaderLimit>,
}

/// Formats a reset time the way OpenAI does: `20ms`, `1s`, `6m0s`, `1h2m5s` (whole seconds,
/// rounded up, from a second on). Written with `itoa`: it is on the path of every limited call.
pub fn format_reset(d: Duration) -> String {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let mut out = String::with_capacity(12);
    let mut digits = itoa::Buffer::new();
    let mut put = |n: u64, unit: &str| {
        out.push_str(digits.format(n));
        out.push_str(unit);
    };
    if ms < 1000 {
        put(ms, "ms");
    } else {
        let secs = ms.div_ceil(1000);
        let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
        if h > 0 {
            put(h, "h");
        }
        if h > 0 || m > 0 {
            put(m, "m");
        }
        put(s, "s");
    }
    out
}

/// The limits that apply to one call (instance, team, key, route: a few), inline.
type Matched = SmallVec<[Arc<Limit>; 4]>;
/// The checks of one call, one per matched limit, inline.
type Checks = SmallVec<[Check; 4]>;

#[derive(Default)]
struct LimitSet {
    all: Vec<Arc<Limit>>,
    /// Looked up four times a call: hashed with Fx (the keys are small integers, not input an
    /// attacker picks freely to collide).
    by_scope: FxHashMap<Scope, Vec<Arc<Limit>>>,
}

impl LimitSet {
    fn new(limits: Vec<Limit>) -> Result<Self, FieldError> {
        let mut set = Self::default();
        let mut ids = HashSet::new();
        for limit in limits {
            let limit = Arc::new(limit.validated()?);
            if !ids.insert(limit.id) {
                return Err(FieldError {
                    field: "id".to_owned(),
                    message: format!("limit {} is given twice", limit.id),
                });
            }
            set.by_scope
                .entry(limit.scope)
                .or_default()
                .push(Arc::clone(&limit));
            set.all.push(limit);
        }
        Ok(set)
    }

    fn matching(&self, team: Option<i64>, key: Option<i64>, route: Option<i64>) -> Matched {
        let scopes = [
            Some(Scope::Instance),
            team.map(Scope::Team),
            key.map(Scope::Key),
            route.map(Scope::Route),
        ];
        scopes
            .into_iter()
            .flatten()
            .filter_map(|s| self.by_scope.get(&s))
            .flatten()
            .cloned()
            .collect()
    }
}

/// The calendar bounds last computed for each budget period (day, week, month), reused while
/// the clock is inside them: working them out in a time zone costs microseconds, and every call
/// under a budget needs them. `start == i64::MIN` means not computed yet.
struct PeriodCache {
    bounds: [(AtomicI64, AtomicI64); 3],
}

impl PeriodCache {
    fn new() -> Self {
        let unset = || (AtomicI64::new(i64::MIN), AtomicI64::new(i64::MIN));
        Self {
            bounds: [unset(), unset(), unset()],
        }
    }

    /// `period_bounds(period, tz, now_ms)`, from the cache when `now_ms` lies inside the bounds
    /// last computed. Two threads may both recompute at a boundary; both store the same answer.
    fn bounds(&self, period: Period, tz: &TimeZone, now_ms: i64) -> (i64, Option<i64>) {
        let slot = match period {
            Period::Day => &self.bounds[0],
            Period::Week => &self.bounds[1],
            Period::Month => &self.bounds[2],
            Period::Total => return period_bounds(period, tz, now_ms),
        };
        // End first: a reader that sees the new end with the old start only recomputes.
        let end = slot.1.load(Ordering::Acquire);
        let start = slot.0.load(Ordering::Acquire);
        if start != i64::MIN && start <= now_ms && now_ms < end {
            return (start, Some(end));
        }
        let (start, end) = period_bounds(period, tz, now_ms);
        if let Some(end) = end {
            slot.0.store(i64::MIN, Ordering::Release);
            slot.1.store(end, Ordering::Release);
            slot.0.store(start, Ordering::Release);
        }
        (start, end)
    }
}

struct Shared {
    limits: ArcSwap<LimitSet>,
    counters: Arc<dyn Counters>,
    tz: TimeZone,
    periods: PeriodCache,
    ttl_ms: i64,
    clock: Clock,
    seq: AtomicU64,
    crossings: broadcast::Sender<Crossing>,
    crossed: Mutex<HashSet<(i64, i64, u16)>>,
}

/// The limit engine: holds the active limits and a counters backend, admits and settles calls.
#[derive(Clone)]
pub struct Limiter {
    shared: Arc<Shared>,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("limits", &self.shared.limits.load().all.len())
            .finish_non_exhaustive()
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Limiter {
    /// A limiter over `limits` (each validated) counting in `counters`.
    pub fn new(
        limits: Vec<Limit>,
        counters: Arc<dyn Counters>,
        config: LimiterConfig,
    ) -> Result<Self, FieldError> {
        let (crossings, _) = broadcast::channel(1024);
        Ok(Self {
            shared: Arc::new(Shared {
                limits: ArcSwap::from_pointee(LimitSet::new(limits)?),
                counters,
                tz: config.time_zone,
                periods: PeriodCache::new(),
                ttl_ms: i64::try_from(config.reservation_ttl.as_millis())
                    .unwrap_or(i64::MAX)
                    .max(1),
                clock: config.clock,
                seq: AtomicU64::new(1),
                crossings,
                crossed: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// Replaces the active limits at once; calls in flight keep the limits they were admitted
    /// with. Nothing changes when one limit is invalid.
    pub fn set_limits(&self, limits: Vec<Limit>) -> Result<(), FieldError> {
        self.shared.limits.store(Arc::new(LimitSet::new(limits)?));
        Ok(())
    }

    /// The active limits.
    pub fn limits(&self) -> Vec<Limit> {
        self.shared
            .limits
            .load()
            .all
            .iter()
            .map(|l| Limit::clone(l))
            .collect()
    }

    /// Receives every budget crossing from now on (each once per limit, period and threshold).
    pub fn subscribe(&self) -> broadcast::Receiver<Crossing> {
        self.shared.crossings.subscribe()
    }

    /// Whether the counters run on a fallback (Redis unreachable).
    pub fn degraded(&self) -> bool {
        self.shared.counters.degraded()
    }

    /// How many times the counters fell back since start.
    pub fn degradations(&self) -> u64 {
        self.shared.counters.degradations()
    }

    /// How many calls were admitted from leased headroom (Redis leases), with no round trip.
    pub fn leased_admissions(&self) -> u64 {
        self.shared.counters.leased_admissions()
    }

    /// Checks a call against every limit whose scope matches (instance, its team, key and
    /// route) and counts it on all of them, or refuses it and counts nothing.
    pub async fn admit(&self, req: &Request) -> Result<Admission, Refusal> {
        let shared = &self.shared;
        let limits = shared
            .limits
            .load()
            .matching(req.team_id, req.key_id, req.route_id);
        let est_tokens = to_i64(req.estimate_tokens);
        let est_cost = req.estimate_cost_micro.max(0);
        let checks: Checks = limits
            .iter()
            .map(|l| check_for(l, shared, req.now_ms, est_tokens, est_cost))
            .collect();
        let seq = shared.seq.fetch_add(1, Ordering::Relaxed);
        let mut admission = Admission {
            shared: Arc::clone(shared),
            checks,
            limits,
            seq,
            admitted_at: req.now_ms,
            local: true,
            states: States::new(),
            settled: false,
        };
        if admission.checks.is_empty() {
            return Ok(admission);
        }
        let attempt = Attempt {
            checks: &admission.checks,
            now_ms: req.now_ms,
            seq,
            ttl_ms: shared.ttl_ms,
        };
        let outcome = match shared.counters.admit_now(&attempt) {
            Some(outcome) => Ok(outcome),
            None => shared.counters.admit(&attempt).await,
        };
        match outcome {
            Ok(Outcome::Admitted { states, local }) => {
                admission.states = states;
                admission.local = local;
                Ok(admission)
            }
            Ok(Outcome::Refused {
                index,
                retry_ms,
                used,
            }) => {
                // Nothing was counted: there is nothing to release.
                admission.settled = true;
                let (Some(check), Some(limit)) =
                    (admission.checks.get(index), admission.limits.get(index))
                else {
                    return Err(unavailable());
                };
                let by_estimate = matches!(
                    check.counter,
                    Counter::Tokens { .. } | Counter::Budget { .. }
                );
                let code = match check.counter {
                    Counter::Requests { .. } | Counter::Tokens { .. } => RefusalCode::RateLimited,
                    Counter::Concurrency { .. } => RefusalCode::ConcurrencyLimited,
                    Counter::Budget {
                        period_start, max, ..
                    } => {
                        shared.note_use(limit, period_start, used, max, true);
                        RefusalCode::BudgetExceeded
                    }
                };
                Err(Refusal {
                    code,
                    limit_id: Some(limit.id),
                    scope: Some(limit.scope),
                    retry_after: retry_ms
                        .map(|ms| Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0))),
                    by_estimate,
                })
            }
            Err(e) => {
                admission.settled = true;
                tracing::warn!(error = %e, "limits could not be checked");
                Err(unavailable())
            }
        }
    }

    /// Adds a token-counter reading to the budgets that count readings (`include_reported`).
    pub async fn record_reported(&self, r: &Reported) -> Result<(), CountersError> {
        let shared = &self.shared;
        let now = (shared.clock)();
        let limits: Matched = shared
            .limits
            .load()
            .matching(r.team_id, r.key_id, r.route_id)
            .into_iter()
            .filter(|l| l.include_reported && l.kind.period().is_some())
            .collect();
        if limits.is_empty() {
            return Ok(());
        }
        let checks: Vec<Check> = limits
            .iter()
            .map(|l| check_for(l, shared, now, 0, 0))
            .collect();
        let used = shared
            .counters
            .settle(&Settlement {
                checks: &checks,
                ticket: None,
                local: false,
                actual_tokens: to_i64(r.tokens),
                actual_cost_micro: r.cost_micro.max(0),
                now_ms: now,
            })
            .await?;
        shared.note_settled(&checks, &limits, &used);
        Ok(())
    }

    /// Every active limit's current use.
    pub async fn usage(&self) -> Result<Vec<LimitUsage>, CountersError> {
        let shared = &self.shared;
        let now = (shared.clock)();
        let set = shared.limits.load();
        let checks: Vec<Check> = set
            .all
            .iter()
            .map(|l| check_for(l, shared, now, 0, 0))
            .collect();
        let states = if checks.is_empty() {
            Vec::new()
        } else {
            shared.counters.peek(&checks, now).await?
        };
        Ok(set
            .all
            .iter()
            .zip(states)
            .map(|(limit, st)| {
                let max = limit.kind.max();
                LimitUsage {
                    limit_id: limit.id,
                    used: st.used,
                    reserved: st.reserved,
                    max,
                    remaining: (max - st.used - st.reserved).max(0),
                    resets_at_ms: st.reset_ms.map(|r| now + r),
                }
            })
            .collect())
    }
}

fn unavailable() -> Refusal {
    Refusal {
        code: RefusalCode::LimitsUnavailable,
        limit_id: None,
        scope: None,
        retry_after: Some(Duration::from_secs(5)),
        by_estimate: false,
    }
}

fn check_for(limit: &Limit, shared: &Shared, now_ms: i64, est_tokens: i64, est_cost: i64) -> Check {
    let counter = match limit.kind {
        LimitKind::Requests { per, .. } => Counter::Requests {
            window_ms: per.millis(),
            max: limit.kind.max(),
        },
        LimitKind::TokensPerMinute { .. } => Counter::Tokens {
            max: limit.kind.max(),
            amount: est_tokens,
        },
        LimitKind::Concurrency { .. } => Counter::Concurrency {
            max: limit.kind.max(),
        },
        LimitKind::TokenBudget { period, .. } | LimitKind::CostBudget { period, .. } => {
            let (period_start, period_end) = shared.periods.bounds(period, &shared.tz, now_ms);
            let (unit, amount) = match limit.kind {
                LimitKind::CostBudget { .. } => (Unit::CostMicro, est_cost),
                _ => (Unit::Tokens, est_tokens),
            };
            Counter::Budget {
                unit,
                period_start,
                period_end,
                max: limit.kind.max(),
                amount,
            }
        }
    };
    Check {
        limit_id: limit.id,
        scope: limit.scope,
        hard: limit.is_hard(),
        include_reported: limit.include_reported,
        counter,
    }
}

impl Shared {
    /// Reports the thresholds of a budget that `used` has crossed (and, when the budget refused
    /// a call, every threshold up to 100 %), each once per period.
    fn note_use(&self, limit: &Limit, period_start: i64, used: i64, max: i64, refused: bool) {
        if max <= 0 {
            return;
        }
        // A threshold is crossed once reached, or at a refusal for any up to 100 %.
        let crossed_at = |t: u16| {
            i128::from(used) * 100 >= i128::from(max) * i128::from(t) || (refused && t <= 100)
        };
        // Every settlement under a budget comes here: below every threshold (the usual case)
        // there is nothing to report, and no lock to take.
        if !limit.alert_at.iter().any(|&t| crossed_at(t)) {
            return;
        }
        let mut fresh = Vec::new();
        {
            let mut crossed = self
                .crossed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for &t in &limit.alert_at {
                if crossed_at(t) && crossed.insert((limit.id, period_start, t)) {
                    fresh.push(t);
                }
            }
        }
        for t in fresh {
            // No receiver yet is not an error: crossings are also visible through `usage`.
            let _ = self.crossings.send(Crossing {
                limit_id: limit.id,
                scope: limit.scope,
                period_start_ms: period_start,
                threshold_pct: t,
                used,
                max,
            });
        }
    }

    fn note_settled(&self, checks: &[Check], limits: &[Arc<Limit>], used: &[i64]) {
        for ((check, limit), &u) in checks.iter().zip(limits).zip(used) {
            if let Counter::Budget {
                period_start, max, ..
            } = check.counter
            {
                self.note_use(limit, period_start, u, max, false);
            }
        }
    }
}

/// An admitted call. Settle it with the exact use when the call ends; dropping it unsettled
/// releases its in-flight leases and leaves its reservations to expire.
pub struct Admission {
    shared: Arc<Shared>,
    checks: Checks,
    limits: Matched,
    seq: u64,
    admitted_at: i64,
    local: bool,
    states: States,
    settled: bool,
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field(
                "limits",
                &self.limits.iter().map(|l| l.id).collect::<Vec<_>>(),
            )
            .field("settled", &self.settled)
            .finish_non_exhaustive()
    }
}

impl Admission {
    /// The ids of the limits the call was counted on.
    pub fn limit_ids(&self) -> Vec<i64> {
        self.limits.iter().map(|l| l.id).collect()
    }

    /// [`Admission::settle`] done at once when the counters can (in the process): `Ok(())`, or
    /// the admission back (`Err`, boxed: the admission keeps its checks inline and is large,
    /// and this path is the rare one) when it needs the asynchronous `settle`.
    pub fn settle_now(
        mut self,
        actual_tokens: u64,
        actual_cost_micro: i64,
    ) -> Result<(), Box<Self>> {
        if self.checks.is_empty() {
            self.settled = true;
            return Ok(());
        }
        let now = (self.shared.clock)();
        let used = self.shared.counters.settle_now(&Settlement {
            checks: &self.checks,
            ticket: Some((self.seq, self.admitted_at)),
            local: self.local,
            actual_tokens: to_i64(actual_tokens),
            actual_cost_micro: actual_cost_micro.max(0),
            now_ms: now,
        });
        match used {
            Some(used) => {
                self.settled = true;
                self.shared.note_settled(&self.checks, &self.limits, &used);
                Ok(())
            }
            None => Err(Box::new(self)),
        }
    }

    /// Replaces the call's reservations with its exact use and releases its in-flight leases.
    /// Call it when the response ends, also when the client hung up.
    pub async fn settle(
        mut self,
        actual_tokens: u64,
        actual_cost_micro: i64,
    ) -> Result<(), CountersError> {
        self.settled = true;
        if self.checks.is_empty() {
            return Ok(());
        }
        let now = (self.shared.clock)();
        let used = self
            .shared
            .counters
            .settle(&Settlement {
                checks: &self.checks,
                ticket: Some((self.seq, self.admitted_at)),
                local: self.local,
                actual_tokens: to_i64(actual_tokens),
                actual_cost_micro: actual_cost_micro.max(0),
                now_ms: now,
            })
            .await?;
        self.shared.note_settled(&self.checks, &self.limits, &used);
        Ok(())
    }

    /// The tightest hard request limit and token limit (tokens per minute, or a token budget
    /// with a period) after this call was counted.
    pub fn headers(&self) -> RateHeaders {
        let mut out = RateHeaders::default();
        for ((check, limit), st) in self.checks.iter().zip(&self.limits).zip(&self.states) {
            if !limit.is_hard() {
                continue;
            }
            let reset =
                Duration::from_millis(u64::try_from(st.reset_ms.unwrap_or(0).max(0)).unwrap_or(0));
            let (slot, max, left) = match check.counter {
                Counter::Requests { max, .. } => (&mut out.requests, max, max - st.used),
                Counter::Tokens { max, .. } => (&mut out.tokens, max, max - st.used),
                Counter::Budget {
                    unit: Unit::Tokens,
                    period_end: Some(_),
                    max,
                    ..
                } => (&mut out.tokens, max, max - st.used - st.reserved),
                _ => continue,
            };
            let candidate = HeaderLimit {
                limit: u64::try_from(max).unwrap_or(0),
                remaining: u64::try_from(left.max(0)).unwrap_or(0),
                reset,
            };
            if slot.is_none_or(|cur| candidate.remaining < cur.remaining) {
                *slot = Some(candidate);
            }
        }
        out
    }
}

impl Drop for Admission {
    #[expect(
        clippy::disallowed_methods,
        reason = "one release of in-flight leases, bounded by the counters' timeout: it ends by itself"
    )]
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let leases: Vec<Check> = self
            .checks
            .iter()
            .filter(|c| matches!(c.counter, Counter::Concurrency { .. }))
            .copied()
            .collect();
        if leases.is_empty() {
            return;
        }
        let counters = &self.shared.counters;
        if counters.release_now(&leases, self.seq, self.local) {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let counters = Arc::clone(counters);
            let (seq, local) = (self.seq, self.local);
            handle.spawn(async move { counters.release_later(leases, seq, local).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_period_bounds_equal_computed_ones_across_boundaries() {
        let tz = crate::model::time_zone("tz", "Asia/Shanghai").expect("zone");
        let cache = PeriodCache::new();
        // Hourly steps over 70 days from 2026-01-25: month, week and day boundaries, each
        // asked twice (the second from the cache), and once out of order.
        let start = 1_769_299_200_000_i64;
        for hour in 0..(70 * 24) {
            let now = start + hour * 3_600_000;
            for period in [Period::Day, Period::Week, Period::Month, Period::Total] {
                let expected = period_bounds(period, &tz, now);
                assert_eq!(
                    cache.bounds(period, &tz, now),
                    expected,
                    "{period:?} at {now}"
                );
                assert_eq!(
                    cache.bounds(period, &tz, now),
                    expected,
                    "{period:?} at {now}"
                );
            }
        }
        let early = start + 3_600_000;
        assert_eq!(
            cache.bounds(Period::Month, &tz, early),
            period_bounds(Period::Month, &tz, early)
        );
    }
}
