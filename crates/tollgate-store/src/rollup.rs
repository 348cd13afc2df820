//! Pure roll-up logic shared by the backends: in-memory sums of a batch's events per roll-up row,
//! splitting a time range into whole UTC days and hourly edges, and LIKE patterns. No SQL here:
//! each backend builds its own statements from these.

use std::collections::BTreeMap;

use tollgate_core::sketch::{LatencySketch, SketchError};
use tollgate_core::usage::{HISTOGRAM_LEN, latency_bucket};
use tollgate_core::{TokenUsage, UsageEvent};

use crate::{Grouping, LatencyGroup, RollupFilter, StoreError, StoreResult};

/// One day, ms (re-exported so the backends keep one import).
pub use tollgate_core::time::DAY_MS;

/// The dimensions of one roll-up row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RollupKey {
    /// The start of its hour (`usage_hourly`) or UTC day (`usage_daily`), epoch ms.
    pub start_ms: i64,
    /// Team (0 when unattributed).
    pub team_id: i64,
    /// Key (0 when unattributed).
    pub key_id: i64,
    /// Route (0 when none matched).
    pub route_id: i64,
    /// Model (empty when none).
    pub model: String,
    /// 2, 3, 4, 5, or 0.
    pub status_class: i16,
}

/// Counters of one roll-up row, summed in memory before the one upsert per row.
#[derive(Debug, Default)]
pub struct RollupSums {
    /// Calls.
    pub calls: i64,
    /// Calls with status ≥ 400.
    pub errors: i64,
    /// Sum of latencies, µs.
    pub latency_sum_us: i64,
    /// Token sums.
    pub tokens: TokenUsage,
    /// Calls whose tokens were estimated.
    pub estimated_calls: i64,
    /// Cost of the priced calls, US dollars.
    pub cost_usd: f64,
    /// Calls that used tokens of a model without a price.
    pub unpriced_calls: i64,
    /// Latency histogram.
    pub hist: [i64; HISTOGRAM_LEN],
}

impl RollupSums {
    /// Counts one event.
    pub fn add(&mut self, e: &UsageEvent) {
        self.calls += 1;
        self.errors += i64::from(e.is_error());
        self.latency_sum_us = self.latency_sum_us.saturating_add(e.latency_us);
        self.tokens.prompt = self.tokens.prompt.saturating_add(e.tokens.prompt);
        self.tokens.completion = self.tokens.completion.saturating_add(e.tokens.completion);
        self.tokens.total = self.tokens.total.saturating_add(e.tokens.total);
        self.tokens.cached = self.tokens.cached.saturating_add(e.tokens.cached);
        self.tokens.reasoning = self.tokens.reasoning.saturating_add(e.tokens.reasoning);
        self.estimated_calls += i64::from(e.estimated);
        self.cost_usd += e.cost_usd.unwrap_or(0.0);
        self.unpriced_calls += i64::from(e.cost_usd.is_none());
        if let Some(slot) = self.hist.get_mut(latency_bucket(e.latency_us)) {
            *slot += 1;
        }
    }

    /// Adds another row's sums.
    pub fn merge(&mut self, other: &Self) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.latency_sum_us = self.latency_sum_us.saturating_add(other.latency_sum_us);
        self.tokens.prompt = self.tokens.prompt.saturating_add(other.tokens.prompt);
        self.tokens.completion = self
            .tokens
            .completion
            .saturating_add(other.tokens.completion);
        self.tokens.total = self.tokens.total.saturating_add(other.tokens.total);
        self.tokens.cached = self.tokens.cached.saturating_add(other.tokens.cached);
        self.tokens.reasoning = self.tokens.reasoning.saturating_add(other.tokens.reasoning);
        self.estimated_calls += other.estimated_calls;
        self.cost_usd += other.cost_usd;
        self.unpriced_calls += other.unpriced_calls;
        for (slot, count) in self.hist.iter_mut().zip(other.hist) {
            *slot += count;
        }
    }
}

/// The daily roll-ups of a batch: its hourly ones summed per UTC day.
pub fn daily_rollups(hourly: &BTreeMap<RollupKey, RollupSums>) -> BTreeMap<RollupKey, RollupSums> {
    let mut daily: BTreeMap<RollupKey, RollupSums> = BTreeMap::new();
    for (key, sums) in hourly {
        let day = RollupKey {
            start_ms: key.start_ms - key.start_ms.rem_euclid(DAY_MS),
            ..key.clone()
        };
        daily.entry(day).or_default().merge(sums);
    }
    daily
}

/// The dimensions of one latency-sketch row: those of a roll-up row without the status class
/// (sketches are kept per team, key, route and model, not per status class).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LatencyKey {
    /// The start of its hour (`latency_hourly`) or UTC day (`latency_daily`), epoch ms.
    pub start_ms: i64,
    /// Team (0 when unattributed).
    pub team_id: i64,
    /// Key (0 when unattributed).
    pub key_id: i64,
    /// Route (0 when none matched).
    pub route_id: i64,
    /// Model (empty when none).
    pub model: String,
}

/// The `key_id` (and `route_id`) of a team's summary sketch rows: every call of the team in the
/// hour or day, whatever its key, route and model. No key has this id (ids start at 1, 0 is
/// unattributed), so detailed rows and summary rows never mix.
pub const TEAM_SUMMARY: i64 = -1;

impl LatencyKey {
    /// The team summary row (see [`TEAM_SUMMARY`]) that a roll-up row's calls also go to, so that
    /// unfiltered percentiles read one row per team and day instead of one per key, route and
    /// model.
    pub fn team_summary(key: &RollupKey) -> Self {
        Self {
            start_ms: key.start_ms,
            team_id: key.team_id,
            key_id: TEAM_SUMMARY,
            route_id: TEAM_SUMMARY,
            model: String::new(),
        }
    }

    /// The sketch row a roll-up row's calls also go to.
    pub fn of(key: &RollupKey) -> Self {
        Self {
            start_ms: key.start_ms,
            team_id: key.team_id,
            key_id: key.key_id,
            route_id: key.route_id,
            model: key.model.clone(),
        }
    }
}

/// The latency distributions of a set of calls: total time in the gateway, and time until the
/// upstream's response head (calls that reached an upstream only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencySketches {
    /// Total latency.
    pub total: LatencySketch,
    /// Upstream latency (time to first byte).
    pub upstream: LatencySketch,
}

impl LatencySketches {
    /// Counts one event.
    pub fn add(&mut self, e: &UsageEvent) {
        self.total.add(e.latency_us);
        if let Some(us) = e.upstream_latency_us {
            self.upstream.add(us);
        }
    }

    /// Adds another group's sketches.
    pub fn merge(&mut self, other: &Self) {
        self.total.merge(&other.total);
        self.upstream.merge(&other.upstream);
    }

    /// Adds the stored sketches `total` and `upstream` (as [`LatencySketch::encode`] wrote them).
    pub fn merge_stored(&mut self, total: &[u8], upstream: &[u8]) -> Result<(), StoreError> {
        let bad = |e: SketchError| StoreError::Internal(format!("stored {e}"));
        self.total.merge_encoded(total).map_err(bad)?;
        self.upstream.merge_encoded(upstream).map_err(bad)
    }
}

/// The daily sketches of a batch: its hourly ones merged per UTC day.
pub fn daily_sketches(
    hourly: &BTreeMap<LatencyKey, LatencySketches>,
) -> BTreeMap<LatencyKey, LatencySketches> {
    let mut daily: BTreeMap<LatencyKey, LatencySketches> = BTreeMap::new();
    for (key, sketches) in hourly {
        let day = LatencyKey {
            start_ms: key.start_ms - key.start_ms.rem_euclid(DAY_MS),
            ..key.clone()
        };
        daily.entry(day).or_default().merge(sketches);
    }
    daily
}

/// The two grains of roll-ups: `usage_hourly` and `usage_daily`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    Hour,
    Day,
}

impl Grain {
    /// The table of this grain.
    pub fn table(self) -> &'static str {
        match self {
            Self::Hour => "usage_hourly",
            Self::Day => "usage_daily",
        }
    }

    /// The latency-sketch table of this grain.
    pub fn sketch_table(self) -> &'static str {
        match self {
            Self::Hour => "latency_hourly",
            Self::Day => "latency_daily",
        }
    }

    /// The time column: the start of the row's hour or day, epoch ms.
    pub fn time(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

/// One source of an aggregate: the roll-ups of `grain` with `from_ms <= time < to_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangePart {
    /// Which roll-ups.
    pub grain: Grain,
    /// Start, epoch ms (inclusive).
    pub from_ms: i64,
    /// End, epoch ms (exclusive).
    pub to_ms: i64,
}

/// `[from_ms, to_ms)` as its whole UTC days, read from `usage_daily`, and the hours before the
/// first and after the last of them, read from `usage_hourly`; `None` when it holds no whole day.
pub fn split_range(from_ms: i64, to_ms: i64) -> Option<Vec<RangePart>> {
    let first_day = from_ms.saturating_add((DAY_MS - from_ms.rem_euclid(DAY_MS)) % DAY_MS);
    let last_day = to_ms - to_ms.rem_euclid(DAY_MS);
    if first_day >= last_day {
        return None;
    }
    let hourly = |from_ms, to_ms| RangePart {
        grain: Grain::Hour,
        from_ms,
        to_ms,
    };
    let mut parts = Vec::with_capacity(3);
    if from_ms < first_day {
        parts.push(hourly(from_ms, first_day));
    }
    parts.push(RangePart {
        grain: Grain::Day,
        from_ms: first_day,
        to_ms: last_day,
    });
    if last_day < to_ms {
        parts.push(hourly(last_day, to_ms));
    }
    Some(parts)
}

/// One stored latency-sketch row, as a backend reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRow {
    /// Its hour or day start, epoch ms.
    pub start_ms: i64,
    /// Team.
    pub team_id: i64,
    /// Key.
    pub key_id: i64,
    /// Route.
    pub route_id: i64,
    /// Model.
    pub model: String,
    /// The stored total-latency sketch.
    pub total: Vec<u8>,
    /// The stored upstream-latency sketch.
    pub upstream: Vec<u8>,
}

/// Where the sketches of `[from_ms, to_ms)` grouped by `grouping` are read: every hour from
/// `latency_hourly` for an hourly grouping or a range without a whole UTC day, otherwise the
/// whole days from `latency_daily` and the hours around them from `latency_hourly`.
pub fn sketch_parts(from_ms: i64, to_ms: i64, grouping: Grouping) -> Vec<RangePart> {
    let whole = || {
        vec![RangePart {
            grain: Grain::Hour,
            from_ms,
            to_ms,
        }]
    };
    match grouping {
        Grouping::Hour => whole(),
        _ => split_range(from_ms, to_ms).unwrap_or_else(whole),
    }
}

/// Which sketch rows a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SketchRows {
    /// The teams' summary rows (`key_id = TEAM_SUMMARY`): no key, route or model filter or
    /// grouping.
    TeamSummaries,
    /// The rows per team, key, route and model (`key_id <> TEAM_SUMMARY`).
    Detailed,
}

impl SketchRows {
    /// The fewest rows that answer `filter` grouped by `grouping`.
    pub fn for_query(filter: &RollupFilter, grouping: Grouping) -> Self {
        let by_team = matches!(
            grouping,
            Grouping::Total | Grouping::Hour | Grouping::Day | Grouping::Team
        );
        if by_team && filter.key_id.is_none() && filter.route_id.is_none() && filter.model.is_none()
        {
            Self::TeamSummaries
        } else {
            Self::Detailed
        }
    }

    /// The condition selecting these rows (to follow ` AND `); the id is a constant.
    pub fn condition(self) -> String {
        match self {
            Self::TeamSummaries => format!("key_id = {TEAM_SUMMARY}"),
            Self::Detailed => format!("key_id <> {TEAM_SUMMARY}"),
        }
    }
}

/// Whether sketches answer `filter` grouped by `grouping`: they are not kept per status class.
pub fn sketches_answer(filter: &RollupFilter, grouping: Grouping) -> bool {
    filter.status_class.is_none()
        && grouping != Grouping::StatusClass
        && !filter.team_ids.as_ref().is_some_and(Vec::is_empty)
}

/// Merges sketch rows into the groups of `grouping`, ordered by bucket then label.
pub fn group_sketches(
    grouping: Grouping,
    rows: impl IntoIterator<Item = LatencyRow>,
) -> StoreResult<Vec<LatencyGroup>> {
    let mut groups: BTreeMap<(i64, String), LatencySketches> = BTreeMap::new();
    for row in rows {
        let group = match grouping {
            Grouping::Total | Grouping::StatusClass => (0, String::new()),
            Grouping::Hour => (row.start_ms, String::new()),
            Grouping::Day => (
                row.start_ms - row.start_ms.rem_euclid(DAY_MS),
                String::new(),
            ),
            Grouping::Key => (row.key_id, String::new()),
            Grouping::Route => (row.route_id, String::new()),
            Grouping::Team => (row.team_id, String::new()),
            Grouping::Model => (0, row.model),
        };
        groups
            .entry(group)
            .or_default()
            .merge_stored(&row.total, &row.upstream)?;
    }
    Ok(groups
        .into_iter()
        .map(|((bucket, label), sketches)| LatencyGroup {
            bucket,
            label,
            sketches,
        })
        .collect())
}

/// `needle` as a LIKE / ILIKE pattern matching it anywhere (with `ESCAPE '\\'`), its `%`, `_` and `\` taken literally.
pub fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_split_into_whole_days_and_hourly_edges() {
        let d = DAY_MS;
        let h = 3_600_000;
        assert_eq!(split_range(d + 5 * h, 2 * d), None, "no whole day");
        let parts = split_range(d + 5 * h, 4 * d + 2 * h).unwrap();
        let shape: Vec<_> = parts
            .iter()
            .map(|p| (p.grain, p.from_ms, p.to_ms))
            .collect();
        assert_eq!(
            shape,
            vec![
                (Grain::Hour, d + 5 * h, 2 * d),
                (Grain::Day, 2 * d, 4 * d),
                (Grain::Hour, 4 * d, 4 * d + 2 * h)
            ]
        );
        let whole = split_range(d, 3 * d).unwrap();
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].grain, Grain::Day);
    }

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern("100%_off\\"), "%100\\%\\_off\\\\%");
        assert_eq!(contains_pattern(""), "%%");
    }
}
