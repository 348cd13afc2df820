//! Token counters (seed 003): a tool's cumulative token figure, recorded as readings with the
//! increment since the previous one, against a quota.

use async_trait::async_trait;
use serde::Serialize;

use crate::StoreResult;

/// A counter, e.g. `cursor`, with its quota and the tokens used so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counter {
    /// Id.
    pub id: i64,
    /// Name, unique within its team.
    pub name: String,
    /// Owning team: only its members see the counter; it goes when the team goes.
    pub team_id: i64,
    /// Token quota (default 1,000,000).
    pub quota: i64,
    /// Tokens used: the last reading, or the sum of increments since the last reset.
    pub used: i64,
    /// Number of readings recorded ("sessions").
    pub readings: i64,
    /// Creation time, epoch ms.
    pub created_at_ms: i64,
    /// Last reading, epoch ms.
    pub updated_at_ms: Option<i64>,
}

/// One recorded reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CounterReading {
    /// Id.
    pub id: i64,
    /// Counter.
    pub counter_id: i64,
    /// When, epoch ms.
    pub ts_ms: i64,
    /// The tool's cumulative figure.
    pub reading: i64,
    /// `reading − previous`, or `reading` after a reset (a reading below the previous one).
    pub increment: i64,
    /// Whether this reading was a reset.
    pub reset: bool,
    /// What happened, e.g. "finished the design".
    pub event: String,
    /// The conversation it belongs to.
    pub conversation_id: Option<String>,
    /// `manual`, `clipboard`, `estimate`, `import` or `api`.
    pub sync_type: String,
    /// Who recorded it.
    pub actor: Option<String>,
}

/// A reading to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReading {
    /// When, epoch ms.
    pub ts_ms: i64,
    /// The cumulative figure (≥ 0).
    pub reading: i64,
    /// What happened.
    pub event: String,
    /// Conversation.
    pub conversation_id: Option<String>,
    /// `manual`, `clipboard`, `estimate`, `import` or `api`.
    pub sync_type: String,
    /// Who.
    pub actor: Option<String>,
}

/// Token counters.
#[async_trait]
pub trait CounterQueries {
    /// Team `team_id`'s counter with this name, created with `quota` if missing; `NotFound` if
    /// the team does not exist.
    async fn ensure_counter(&self, team_id: i64, name: &str, quota: i64) -> StoreResult<Counter>;
    /// Team `team_id`'s counter with this name.
    async fn counter_by_name(&self, team_id: i64, name: &str) -> StoreResult<Option<Counter>>;
    /// Every counter, by name.
    async fn list_counters(&self) -> StoreResult<Vec<Counter>>;
    /// Sets a counter's quota; `NotFound` if no such counter.
    async fn set_counter_quota(&self, id: i64, quota: i64) -> StoreResult<Counter>;
    /// Records a reading atomically: the increment is computed against the counter's current
    /// `used` (a reading below it is a reset: `used` becomes the reading), `used`, `readings` and
    /// `updated_at` move with it. `NotFound` if no such counter. Concurrent readings are
    /// serialised so that increments always add up to `used`.
    async fn record_reading(
        &self,
        counter_id: i64,
        reading: NewReading,
    ) -> StoreResult<(Counter, CounterReading)>;
    /// Adds `tokens` to the counter as one reading of `used + tokens` (estimates, imports of
    /// per-session figures); `reading.reading` is ignored. `NotFound` if no such counter.
    async fn add_to_counter(
        &self,
        counter_id: i64,
        tokens: i64,
        reading: NewReading,
    ) -> StoreResult<(Counter, CounterReading)>;
    /// Corrects reading `reading_id` of counter `counter_id` to `figure` (`Some`), or deletes it
    /// (`None`), and recomputes every later reading of the counter in the order they were
    /// recorded: a cumulative reading's increment is again its figure minus the one before it (a
    /// reset when below), an added one (`estimate`, `import`) keeps its increment and moves its
    /// figure; `used` becomes the last figure. Atomic, and serialised with the other writes of
    /// the counter. Returns the counter and the corrected reading (`None` when deleted);
    /// `NotFound` if no such counter, or no such reading of it.
    async fn revise_reading(
        &self,
        counter_id: i64,
        reading_id: i64,
        figure: Option<i64>,
    ) -> StoreResult<(Counter, Option<CounterReading>)>;
    /// A counter's readings, newest first, at most `limit`, before row id `before_id` when given.
    async fn list_readings(
        &self,
        counter_id: i64,
        before_id: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<CounterReading>>;
    /// Sum of increments per UTC day in `[from_ms, to_ms)`, for every counter or one:
    /// `(day start epoch ms, tokens, readings)`, by day.
    async fn counter_daily(
        &self,
        counter_id: Option<i64>,
        from_ms: i64,
        to_ms: i64,
    ) -> StoreResult<Vec<(i64, i64, i64)>>;
}
