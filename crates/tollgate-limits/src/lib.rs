//! The limit engine of tollgate: one limit model, counters in the process or in Redis, and
//! admission with reservations.
//!
//! A [`Limiter`] holds the active [`Limit`]s and a [`Counters`] backend. Before a call is
//! forwarded, [`Limiter::admit`] checks it against every limit whose scope matches (the instance,
//! the key's team, the key, the route) and counts it on all of them at once, or refuses it and
//! counts nothing. Rate limits count requests in a trailing window; tokens-per-minute limits and
//! budgets take the call's *estimate* as a reservation; concurrency limits take an in-flight lease.
//! When the call ends, [`Admission::settle`] replaces the reservation with the exact use. An
//! admission dropped unsettled releases its lease at once and leaves its reservation to expire
//! after the reservation TTL (10 minutes by default), so a crashed call never holds a budget
//! forever.
//!
//! # How far a budget can be overrun
//!
//! A hard budget admits a call only while settled + reserved + the call's estimate stays within
//! the budget, and refuses every call once settled + reserved reaches it. A call's true use is
//! known only when it ends, so the budget can be overrun by at most what the calls in flight when
//! it is crossed use beyond their estimates (with no estimate, at most those calls' whole use);
//! once they settle, no further call is admitted until the period ends. Nothing else over-admits:
//! all checks of one call are applied atomically, in one Lua script with Redis.
//!
//! # Counters
//!
//! [`LocalCounters`] keep everything in the process; budgets are seeded from the store through
//! [`BudgetSeed`] the first time a period is used, so a restart does not reset a month's spend.
//! [`RedisCounters`] keep every counter in Redis, so several instances share every limit exactly;
//! when Redis is unreachable they fall back to local counters ([`FailMode::FailOpen`], each
//! instance then counts alone) or refuse with `limits_unavailable` ([`FailMode::FailClosed`]),
//! and return to Redis by themselves when it answers again. Rate windows compare the instances'
//! clocks, which are assumed to be kept in sync.

pub mod counters;
pub mod engine;
pub mod model;

pub use counters::{
    BudgetSeed, Counters, CountersError, FailMode, LocalCounters, RedisConfig, RedisCounters,
    RedisSetupError, SeedError, ZeroSeed,
};

pub use engine::{
    Admission, Clock, Crossing, HeaderLimit, LimitUsage, Limiter, LimiterConfig, RateHeaders,
    Refusal, RefusalCode, Reported, Request, format_reset,
};
pub use model::{
    Enforcement, FieldError, Limit, LimitKind, LimitSpec, ModelAllowList, Period, Scope, Window,
    default_alert_at, parse_usd, period_bounds, time_zone,
};
