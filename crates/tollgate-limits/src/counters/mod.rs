//! Where counters live: in the process ([`LocalCounters`]) or in Redis ([`RedisCounters`]).
//!
//! The engine turns the limits that apply to a call into [`Check`]s; a backend applies all the
//! checks of one call atomically (all admitted or none taken) and later settles them.

mod lease;
mod local;
mod redis;

use async_trait::async_trait;
use smallvec::SmallVec;

use crate::model::Scope;

pub use self::local::LocalCounters;
pub use self::redis::{FailMode, RedisConfig, RedisCounters, RedisSetupError};

/// The length of the tokens-per-minute window, counted in one-second buckets.
pub(crate) const TOKEN_WINDOW_SECS: i64 = 60;
/// How long a spent period's budget counter is kept after the period ends (for late settles).
pub(crate) const PERIOD_GRACE_MS: i64 = 7 * 24 * 3_600_000;

/// The store's account of what a budget's scope has used since a moment: the seed of a budget
/// counter, read once per period (per process for local counters, per Redis for shared ones).
#[async_trait]
pub trait BudgetSeed: Send + Sync + 'static {
    /// Tokens (prompt + completion) and cost in micro-USD used by calls in `scope` since
    /// `since_ms`; token-counter readings count only when `include_reported` is true.
    async fn used(
        &self,
        scope: Scope,
        since_ms: i64,
        include_reported: bool,
    ) -> Result<(i64, i64), SeedError>;
}

/// The store could not tell a budget's use.
#[derive(Debug, thiserror::Error)]
#[error("reading a budget's use from the store failed: {0}")]
pub struct SeedError(pub String);

/// A seed for deployments with no store behind them (and tests): every budget starts at zero.
#[derive(Debug, Default, Clone, Copy)]
pub struct ZeroSeed;

#[async_trait]
impl BudgetSeed for ZeroSeed {
    async fn used(&self, _: Scope, _: i64, _: bool) -> Result<(i64, i64), SeedError> {
        Ok((0, 0))
    }
}

/// What a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Tokens, prompt + completion.
    Tokens,
    /// Cost in micro-USD.
    CostMicro,
}

/// One counter a call is checked against, derived from one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// The limit the counter belongs to.
    pub limit_id: i64,
    /// The limit's scope (to seed budgets).
    pub scope: Scope,
    /// Whether going over refuses the call.
    pub hard: bool,
    /// Whether token-counter readings count (budgets only).
    pub include_reported: bool,
    /// The counter and what this call adds to it.
    pub counter: Counter,
}

/// A counter and the amount one call adds to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Requests in a trailing window: at most `max`.
    Requests {
        /// The window in milliseconds.
        window_ms: i64,
        /// Requests allowed in the window.
        max: i64,
    },
    /// Tokens in the trailing minute: at most `max`; the call adds `amount` (its estimate).
    Tokens {
        /// Tokens allowed per minute.
        max: i64,
        /// The call's estimate.
        amount: i64,
    },
    /// Calls in flight: at most `max`.
    Concurrency {
        /// Calls allowed in flight.
        max: i64,
    },
    /// A budget for one period: settled + reserved + `amount` must stay within `max`.
    Budget {
        /// Tokens or micro-USD.
        unit: Unit,
        /// Start of the period, epoch ms.
        period_start: i64,
        /// End of the period, epoch ms (`None` for a total budget).
        period_end: Option<i64>,
        /// The budget.
        max: i64,
        /// What this call reserves.
        amount: i64,
    },
}

/// A counter's state as the backend saw it (after the call was counted, when admitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckState {
    /// Requests in the window, tokens in the minute, calls in flight, or settled budget use.
    pub used: i64,
    /// Reserved, not yet settled (budgets only).
    pub reserved: i64,
    /// Milliseconds until the counter next goes down (the oldest entry leaves the window, or the
    /// period ends); `None` when nothing will (an empty window, a total budget).
    pub reset_ms: Option<i64>,
}

/// The states of one call's checks, in the order of its checks. A call matches at most a few
/// limits (instance, team, key, route), so they live inline: no allocation per call.
pub type States = SmallVec<[CheckState; 4]>;

/// One call's admission, as a backend sees it.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    /// The counters to check.
    pub checks: &'a [Check],
    /// Now, epoch ms.
    pub now_ms: i64,
    /// A number unique to this admission in this process.
    pub seq: u64,
    /// How long reservations and in-flight leases last if never settled.
    pub ttl_ms: i64,
}

/// What a backend decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every check passed (or was soft); the call was counted. One state per check.
    Admitted {
        /// The counters after counting the call.
        states: States,
        /// True when a Redis backend admitted through its local fallback.
        local: bool,
    },
    /// The check at `index` is hard and would go over; nothing was counted.
    Refused {
        /// Index into the checks.
        index: usize,
        /// When trying again may succeed, ms; `None` when waiting will not help.
        retry_ms: Option<i64>,
        /// The refusing counter's use.
        used: i64,
    },
}

/// The end of a call (or a token-counter reading): exact use replaces reservations.
#[derive(Debug, Clone)]
pub struct Settlement<'a> {
    /// The checks the call was admitted with (for a reading: the budgets it adds to).
    pub checks: &'a [Check],
    /// The admission's sequence number and time, or `None` for a reading without a reservation.
    pub ticket: Option<(u64, i64)>,
    /// Whether a Redis backend admitted the call through its local fallback.
    pub local: bool,
    /// Tokens the call used, prompt + completion.
    pub actual_tokens: i64,
    /// What the call cost, micro-USD.
    pub actual_cost_micro: i64,
    /// Now, epoch ms.
    pub now_ms: i64,
}

/// A backend could not be reached or answered nonsense.
#[derive(Debug, thiserror::Error)]
pub enum CountersError {
    /// Redis did not answer in time or the connection is down.
    #[error("the limit counters are unavailable: {0}")]
    Unavailable(String),
    /// The store could not seed a budget.
    #[error(transparent)]
    Seed(#[from] SeedError),
}

/// A place where counters live. All checks of one call are applied atomically.
#[async_trait]
pub trait Counters: Send + Sync + 'static {
    /// Counts the call against every check, or refuses on the first hard check that would go
    /// over and counts nothing.
    async fn admit(&self, attempt: &Attempt<'_>) -> Result<Outcome, CountersError>;

    /// [`Counters::admit`] when it can be decided at once in the process (counters in the
    /// process with their budgets read, or leased headroom), with no future to allocate; `None`
    /// when it needs `admit`.
    fn admit_now(&self, _attempt: &Attempt<'_>) -> Option<Outcome> {
        None
    }

    /// Reads every check's state without counting anything (for `usage`).
    async fn peek(&self, checks: &[Check], now_ms: i64) -> Result<Vec<CheckState>, CountersError>;

    /// Replaces the reservations of an admission with its exact use, releases its in-flight
    /// lease, and returns each check's settled use (budgets; other checks report 0).
    async fn settle(&self, settlement: &Settlement<'_>) -> Result<Vec<i64>, CountersError>;

    /// [`Counters::settle`] when it can be done at once in the process (counters in the
    /// process, or a call admitted from leased headroom), with no future to allocate; `None`
    /// when it needs `settle` (a round trip, or a budget still to be read from the store).
    fn settle_now(&self, _settlement: &Settlement<'_>) -> Option<Vec<i64>> {
        None
    }

    /// Releases an unsettled admission's in-flight leases; its reservations stay until they
    /// expire. Returns false when this has to happen asynchronously (see `release_later`).
    fn release_now(&self, checks: &[Check], seq: u64, local: bool) -> bool;

    /// Releases in-flight leases asynchronously (for backends that cannot do it in `Drop`).
    async fn release_later(&self, checks: Vec<Check>, seq: u64, local: bool);

    /// Whether the backend is running on a fallback (Redis unreachable, local counters in use).
    fn degraded(&self) -> bool {
        false
    }

    /// How many times the backend fell back since it started.
    fn degradations(&self) -> u64 {
        0
    }

    /// Calls admitted from leased headroom in the process since start (Redis leases; 0 for
    /// backends without them).
    fn leased_admissions(&self) -> u64 {
        0
    }
}
