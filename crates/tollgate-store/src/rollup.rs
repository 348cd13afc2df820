//! Pure roll-up logic shared by the backends: in-memory sums of a batch's events per roll-up row,
//! splitting a time range into whole UTC days and hourly edges, and LIKE patterns. No SQL here:
//! each backend builds its own statements from these.

use std::collections::{BTreeMap, HashMap};

use tollgate_core::sketch::{LatencySketch, SketchError, SketchSlot};
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
/// (sketches are kept per team, key, route and model, not per status class). The model is
/// borrowed from the batch's events: keying a batch's sketches allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LatencyKey<'a> {
    /// The start of its hour (`summary_hourly`) or UTC day (`summary_daily`), epoch ms.
    pub start_ms: i64,
    /// Team (0 when unattributed).
    pub team_id: i64,
    /// Key (0 when unattributed), or [`ALL`] in a team, route or model summary row.
    pub key_id: i64,
    /// Route (0 when none matched), [`ALL`] in a team or key summary row, or [`MODEL_SUMMARY`].
    pub route_id: i64,
    /// Model (empty when none, and in team, key and route summary rows).
    pub model: &'a str,
}

/// The `key_id` or `route_id` of a summary row standing for every key or route. No key or
/// route has this id (ids start at 1, 0 is unattributed), so detailed rows and summary rows
/// never mix.
pub const ALL: i64 = -1;

/// The `route_id` of a model summary row (`key_id` [`ALL`]): every call of the team with that
/// model, whatever its key and route.
pub const MODEL_SUMMARY: i64 = -2;

impl<'a> LatencyKey<'a> {
    /// The eight rows a call of `team_id`, `key_id`, `route_id` and `model` in the hour (or
    /// day) `start_ms` counts in: its detailed row, the summary rows of its team, key, route and
    /// model, and those of every team, its route and its model across teams (team [`ALL`]). A
    /// total without a key, route or model filter reads one team summary row per team and day,
    /// or one row a day without a team filter; top keys (routes, models) read one key (route,
    /// model) summary row per team and day, or per day across teams, for each of the groups
    /// ranked first, instead of one row per key, route and model.
    pub fn rows_of(
        start_ms: i64,
        team_id: i64,
        key_id: i64,
        route_id: i64,
        model: &'a str,
    ) -> [Self; 8] {
        let row = |team_id, key_id, route_id, model| Self {
            start_ms,
            team_id,
            key_id,
            route_id,
            model,
        };
        [
            row(team_id, key_id, route_id, model),
            row(team_id, ALL, ALL, ""),
            row(team_id, key_id, ALL, ""),
            row(team_id, ALL, route_id, ""),
            row(team_id, ALL, MODEL_SUMMARY, model),
            row(ALL, ALL, ALL, ""),
            row(ALL, ALL, route_id, ""),
            row(ALL, ALL, MODEL_SUMMARY, model),
        ]
    }

    /// Whether this is a detailed row (a key's, route's and model's), not a summary row.
    pub fn is_detailed(&self) -> bool {
        self.rows() == SketchRows::Detailed
    }

    /// Which kind of row this is, told by its ids.
    pub fn rows(&self) -> SketchRows {
        if self.team_id == ALL {
            return match self.route_id {
                ALL => SketchRows::AllTeams,
                MODEL_SUMMARY => SketchRows::ModelsAcrossTeams,
                _ => SketchRows::RoutesAcrossTeams,
            };
        }
        match (self.key_id, self.route_id) {
            (ALL, ALL) => SketchRows::TeamSummaries,
            (ALL, MODEL_SUMMARY) => SketchRows::ModelSummaries,
            (ALL, _) => SketchRows::RouteSummaries,
            (_, ALL) => SketchRows::KeySummaries,
            _ => SketchRows::Detailed,
        }
    }

    /// The same row of the UTC day holding its hour.
    pub fn day(self) -> Self {
        Self {
            start_ms: self.start_ms - self.start_ms.rem_euclid(DAY_MS),
            ..self
        }
    }
}

/// The latency distributions of a set of calls: total time in the gateway, and, over the calls
/// that reached an upstream, the time until the upstream's response head (first byte) and until
/// its answer ended (last byte).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencySketches {
    /// Total latency.
    pub total: LatencySketch,
    /// Upstream latency (time to first byte).
    pub upstream: LatencySketch,
    /// Upstream time to last byte (calls whose upstream answer ended).
    pub upstream_last_byte: LatencySketch,
}

/// The sketch slots of one call's latencies, worked out once for the several rows it counts in.
#[derive(Debug, Clone, Copy)]
pub struct CallSlots {
    /// Total latency.
    pub total: SketchSlot,
    /// Time to the upstream's first byte, when it answered.
    pub upstream: Option<SketchSlot>,
    /// Time to the upstream's last byte, when its answer ended.
    pub upstream_last_byte: Option<SketchSlot>,
}

impl CallSlots {
    /// The slots of `e`'s latencies.
    pub fn of(e: &UsageEvent) -> Self {
        Self {
            total: SketchSlot::of(e.latency_us),
            upstream: e.upstream_latency_us.map(SketchSlot::of),
            upstream_last_byte: e.upstream_last_byte_us.map(SketchSlot::of),
        }
    }
}

/// The three stored sketches of a row or a group (as [`LatencySketch::encode`] wrote them, or
/// runs of them joined end to end), borrowed from the row read.
#[derive(Debug, Clone, Copy)]
pub struct StoredSketches<'r> {
    /// Total latency.
    pub total: &'r [u8],
    /// Time to first byte.
    pub upstream: &'r [u8],
    /// Time to last byte.
    pub upstream_last_byte: &'r [u8],
}

impl LatencySketches {
    /// Counts one event.
    pub fn add(&mut self, e: &UsageEvent) {
        self.add_slots(CallSlots::of(e));
    }

    /// Counts one event whose slots are known.
    pub fn add_slots(&mut self, slots: CallSlots) {
        self.total.add_slot(slots.total);
        if let Some(slot) = slots.upstream {
            self.upstream.add_slot(slot);
        }
        if let Some(slot) = slots.upstream_last_byte {
            self.upstream_last_byte.add_slot(slot);
        }
    }

    /// Adds another group's sketches.
    pub fn merge(&mut self, other: &Self) {
        self.total.merge(&other.total);
        self.upstream.merge(&other.upstream);
        self.upstream_last_byte.merge(&other.upstream_last_byte);
    }

    /// Adds one row's stored sketches (as [`LatencySketch::encode`] wrote them).
    pub fn merge_stored(&mut self, stored: StoredSketches<'_>) -> Result<(), StoreError> {
        let bad = |e: SketchError| StoreError::Internal(format!("stored {e}"));
        self.total.merge_encoded(stored.total).map_err(bad)?;
        self.upstream.merge_encoded(stored.upstream).map_err(bad)?;
        self.upstream_last_byte
            .merge_encoded(stored.upstream_last_byte)
            .map_err(bad)
    }

    /// Adds runs of stored sketches (each as SQL's `group_concat` or `string_agg` joins a
    /// group's blobs: see [`LatencySketch::merge_encoded_run`]).
    pub fn merge_stored_runs(&mut self, stored: StoredSketches<'_>) -> Result<(), StoreError> {
        let bad = |e: SketchError| StoreError::Internal(format!("stored {e}"));
        self.total.merge_encoded_run(stored.total).map_err(bad)?;
        self.upstream
            .merge_encoded_run(stored.upstream)
            .map_err(bad)?;
        self.upstream_last_byte
            .merge_encoded_run(stored.upstream_last_byte)
            .map_err(bad)
    }
}

/// What a batch adds to one row of `summary_hourly` or `summary_daily`: its latency sketches, and
/// for a summary row (not a detailed one) the sums of the roll-up rows it stands for.
#[derive(Debug, Default)]
pub struct SummaryAddition {
    /// The calls' latency sketches.
    pub sketches: LatencySketches,
    /// Summary rows only: the sums of their roll-up rows over every status class.
    pub sums: Option<SummarySums>,
}

/// The counters of a summary row: a roll-up row's, and the calls of unknown status (class 0)
/// that success rates leave out, which a roll-up row tells by its status class.
#[derive(Debug, Default)]
pub struct SummarySums {
    /// The summed roll-up counters.
    pub rollup: RollupSums,
    /// Calls of status class 0.
    pub unknown_calls: i64,
}

impl SummarySums {
    /// Adds the sums of the roll-up row of status class `status_class`.
    fn add(&mut self, sums: &RollupSums, status_class: i16) {
        self.rollup.merge(sums);
        if status_class == 0 {
            self.unknown_calls += sums.calls;
        }
    }
}

/// A batch's summary-table rows of one grain with what it adds to them, sorted by row.
pub type SketchBatch<'a> = Vec<(LatencyKey<'a>, SummaryAddition)>;

/// A batch's latency sketches per hourly row: the calls of each detailed row counted in it and
/// its seven summary rows ([`LatencyKey::rows_of`]).
#[derive(Debug, Default)]
pub struct BatchSketches<'a> {
    hourly: BTreeMap<LatencyKey<'a>, SummaryAddition>,
}

impl<'a> BatchSketches<'a> {
    /// Counts `e`, attributed to `team_id`, `key_id`, `route_id` and `model`, in the rows of its
    /// hour `hour_ms`: one call at a time, the reference the tests check [`BatchSums`] against.
    #[cfg(test)]
    pub(crate) fn add(
        &mut self,
        hour_ms: i64,
        (team_id, key_id, route_id): (i64, i64, i64),
        model: &'a str,
        e: &UsageEvent,
    ) {
        let slots = CallSlots::of(e);
        for key in LatencyKey::rows_of(hour_ms, team_id, key_id, route_id, model) {
            self.hourly
                .entry(key)
                .or_default()
                .sketches
                .add_slots(slots);
        }
    }

    /// Counts a group of calls of one detailed row, whose sketches are `sketches`, in that row
    /// and its seven summary rows of the hour `hour_ms`.
    pub fn add_group(
        &mut self,
        hour_ms: i64,
        (team_id, key_id, route_id): (i64, i64, i64),
        model: &'a str,
        sketches: &LatencySketches,
    ) {
        for key in LatencyKey::rows_of(hour_ms, team_id, key_id, route_id, model) {
            self.hourly.entry(key).or_default().sketches.merge(sketches);
        }
    }

    /// Whether no call was counted.
    pub fn is_empty(&self) -> bool {
        self.hourly.is_empty()
    }

    /// The hourly rows and the daily rows (the hourly ones merged per UTC day), each sorted by
    /// key: every writer touches rows in the same order. Each summary row gets the sums of
    /// `rollups`, the batch's hourly roll-ups (of the same calls), that it stands for.
    pub fn into_grains(
        mut self,
        rollups: &'a BTreeMap<RollupKey, RollupSums>,
    ) -> (SketchBatch<'a>, SketchBatch<'a>) {
        for (key, sums) in rollups {
            let rows = LatencyKey::rows_of(
                key.start_ms,
                key.team_id,
                key.key_id,
                key.route_id,
                &key.model,
            );
            for row in rows.into_iter().filter(|r| !r.is_detailed()) {
                self.hourly
                    .entry(row)
                    .or_default()
                    .sums
                    .get_or_insert_default()
                    .add(sums, key.status_class);
            }
        }
        let mut daily: BTreeMap<LatencyKey<'a>, SummaryAddition> = BTreeMap::new();
        for (key, hourly) in &self.hourly {
            let day = daily.entry(key.day()).or_default();
            day.sketches.merge(&hourly.sketches);
            if let Some(sums) = &hourly.sums {
                let into = day.sums.get_or_insert_default();
                into.rollup.merge(&sums.rollup);
                into.unknown_calls += sums.unknown_calls;
            }
        }
        (
            self.hourly.into_iter().collect(),
            daily.into_iter().collect(),
        )
    }
}

/// What a batch of stored events adds: its hourly roll-up rows, its summary rows' sketches, and
/// the newest call of each key.
#[derive(Debug, Default)]
pub struct BatchSums<'a> {
    /// The hourly roll-up rows, sorted: every writer touches rows in the same order.
    pub rollups: BTreeMap<RollupKey, RollupSums>,
    /// The latency sketches of the summary rows.
    pub sketches: BatchSketches<'a>,
    /// The newest call of each key, epoch ms, by key id.
    pub last_used: BTreeMap<i64, i64>,
}

/// A roll-up row's dimensions, the model borrowed from the batch's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GroupKey<'a> {
    hour_ms: i64,
    team_id: i64,
    key_id: i64,
    route_id: i64,
    model: &'a str,
    status_class: i16,
}

/// What one roll-up row of a batch gathers before it is sorted in.
#[derive(Debug, Default)]
struct Group {
    sums: RollupSums,
    sketches: LatencySketches,
}

impl<'a> BatchSums<'a> {
    /// Sums `events`, each a stored event with the key and team it is attributed to.
    ///
    /// Each call is counted once, in its roll-up row found by hashing; only the rows are then
    /// sorted and spread over their summary rows. Counting each call in its eight sorted summary
    /// rows directly cost most of a batch's time in comparisons of model names.
    pub fn of(
        events: impl IntoIterator<Item = (&'a UsageEvent, Option<i64>, Option<i64>)>,
    ) -> Self {
        let mut groups: HashMap<GroupKey<'a>, Group> = HashMap::new();
        let mut last_used: BTreeMap<i64, i64> = BTreeMap::new();
        for (e, key_id, team_id) in events {
            let key = GroupKey {
                hour_ms: tollgate_core::time::hour_start(e.ts_ms),
                team_id: team_id.unwrap_or(0),
                key_id: key_id.unwrap_or(0),
                route_id: e.route_id.unwrap_or(0),
                model: e.model.as_deref().unwrap_or_default(),
                status_class: e.status_class(),
            };
            let group = groups.entry(key).or_default();
            group.sums.add(e);
            group.sketches.add(e);
            if let Some(key_id) = key_id {
                let ts = last_used.entry(key_id).or_insert(e.ts_ms);
                *ts = (*ts).max(e.ts_ms);
            }
        }
        // The sketches are kept per row without its status class.
        let mut detailed: HashMap<LatencyKey<'a>, LatencySketches> = HashMap::new();
        let mut rollups = BTreeMap::new();
        for (key, group) in groups {
            let row = LatencyKey {
                start_ms: key.hour_ms,
                team_id: key.team_id,
                key_id: key.key_id,
                route_id: key.route_id,
                model: key.model,
            };
            detailed.entry(row).or_default().merge(&group.sketches);
            rollups.insert(
                RollupKey {
                    start_ms: key.hour_ms,
                    team_id: key.team_id,
                    key_id: key.key_id,
                    route_id: key.route_id,
                    model: key.model.to_owned(),
                    status_class: key.status_class,
                },
                group.sums,
            );
        }
        let mut sketches = BatchSketches::default();
        for (row, group) in &detailed {
            sketches.add_group(
                row.start_ms,
                (row.team_id, row.key_id, row.route_id),
                row.model,
                group,
            );
        }
        Self {
            rollups,
            sketches,
            last_used,
        }
    }
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
            Self::Hour => "summary_hourly",
            Self::Day => "summary_daily",
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

/// The bucket and label of a summary-table row's group of `grouping` in a part of `grain`, as
/// SQL both databases read (`CAST`, not `::`), typed as `aggregate_usage` answers them; `None`
/// for the status-class grouping, which the summary tables do not answer.
pub fn group_sql(grouping: Grouping, grain: Grain) -> Option<(String, &'static str)> {
    let time = grain.time();
    let bucket = match grouping {
        Grouping::Total | Grouping::Model => "0".to_owned(),
        Grouping::Hour => time.to_owned(),
        Grouping::Day => match grain {
            Grain::Hour => format!("{time} - {time} % {DAY_MS}"),
            Grain::Day => time.to_owned(),
        },
        Grouping::Key => "key_id".to_owned(),
        Grouping::Route => "route_id".to_owned(),
        Grouping::Team => "team_id".to_owned(),
        Grouping::StatusClass => return None,
    };
    let label = match grouping {
        Grouping::Model => "model",
        _ => "CAST('' AS TEXT)",
    };
    Some((format!("CAST({bucket} AS BIGINT)"), label))
}

/// Where the sketches of `[from_ms, to_ms)` grouped by `grouping` are read: every hour from
/// `summary_hourly` for an hourly grouping or a range without a whole UTC day, otherwise the
/// whole days from `summary_daily` and the hours around them from `summary_hourly`.
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
    /// The teams' summary rows: no key, route or model filter or grouping.
    TeamSummaries,
    /// The key summary rows: a key filter or grouping, no route or model one.
    KeySummaries,
    /// The route summary rows: a route filter or grouping, no key or model one.
    RouteSummaries,
    /// The model summary rows: a model filter or grouping, no key or route one.
    ModelSummaries,
    /// The rows per team, key, route and model: two or three of key, route and model.
    Detailed,
    /// Every team's calls (team [`ALL`]): no team, key, route or model filter, and no grouping
    /// by team.
    AllTeams,
    /// Each route's calls across teams: a route filter or grouping, no team filter.
    RoutesAcrossTeams,
    /// Each model's calls across teams: a model filter or grouping, no team filter.
    ModelsAcrossTeams,
}

impl SketchRows {
    /// The fewest rows that answer `filter` grouped by `grouping`.
    pub fn for_query(filter: &RollupFilter, grouping: Grouping) -> Self {
        let key = filter.key_id.is_some() || grouping == Grouping::Key;
        let route = filter.route_id.is_some() || grouping == Grouping::Route;
        let model = filter.model.is_some() || grouping == Grouping::Model;
        // Without a team filter, what is summed over every team has rows of its own (unless
        // the answer is per team): a few rows a day, however many teams there are.
        let across = filter.team_ids.is_none() && grouping != Grouping::Team;
        match (key, route, model) {
            (false, false, false) if across => Self::AllTeams,
            (false, false, false) => Self::TeamSummaries,
            (true, false, false) => Self::KeySummaries,
            (false, true, false) if across => Self::RoutesAcrossTeams,
            (false, true, false) => Self::RouteSummaries,
            (false, false, true) if across => Self::ModelsAcrossTeams,
            (false, false, true) => Self::ModelSummaries,
            _ => Self::Detailed,
        }
    }

    /// Every kind.
    pub const ALL: [Self; 8] = [
        Self::TeamSummaries,
        Self::KeySummaries,
        Self::RouteSummaries,
        Self::ModelSummaries,
        Self::Detailed,
        Self::AllTeams,
        Self::RoutesAcrossTeams,
        Self::ModelsAcrossTeams,
    ];

    /// The `kind` of these rows in the summary tables, which their primary keys start with: the
    /// rows of one kind over a range of hours or days lie together.
    pub fn kind(self) -> i16 {
        match self {
            Self::TeamSummaries => 0,
            Self::KeySummaries => 1,
            Self::RouteSummaries => 2,
            Self::ModelSummaries => 3,
            Self::Detailed => 4,
            Self::AllTeams => 5,
            Self::RoutesAcrossTeams => 6,
            Self::ModelsAcrossTeams => 7,
        }
    }

    /// The condition selecting these rows (to follow ` AND `): a constant, as the `WHERE` of
    /// the detailed rows' partial indexes (migration 0014) is, so that both databases' planners
    /// see that those indexes hold every row the query needs.
    pub fn condition(self) -> &'static str {
        match self {
            Self::TeamSummaries => "kind = 0",
            Self::KeySummaries => "kind = 1",
            Self::RouteSummaries => "kind = 2",
            Self::ModelSummaries => "kind = 3",
            Self::Detailed => "kind = 4",
            Self::AllTeams => "kind = 5",
            Self::RoutesAcrossTeams => "kind = 6",
            Self::ModelsAcrossTeams => "kind = 7",
        }
    }
}

/// The column naming the groups of `grouping` whose sketches a query may be limited to (top
/// keys, routes, teams, models); `None` for the groupings by time or in total.
pub fn group_column(grouping: Grouping) -> Option<&'static str> {
    match grouping {
        Grouping::Key => Some("key_id"),
        Grouping::Route => Some("route_id"),
        Grouping::Team => Some("team_id"),
        Grouping::Model => Some("model"),
        Grouping::Total | Grouping::Hour | Grouping::Day | Grouping::StatusClass => None,
    }
}

/// The summary rows that answer the aggregate of `filter` grouped by `grouping` (counts, tokens
/// and cost as well as sketches), or `None` when only the roll-ups do: a status-class filter or
/// grouping, or two or three of key, route and model.
pub fn summaries_answer(filter: &RollupFilter, grouping: Grouping) -> Option<SketchRows> {
    let rows = SketchRows::for_query(filter, grouping);
    (filter.status_class.is_none()
        && grouping != Grouping::StatusClass
        && rows != SketchRows::Detailed)
        .then_some(rows)
}

/// Whether sketches answer `filter` grouped by `grouping`: they are not kept per status class.
pub fn sketches_answer(filter: &RollupFilter, grouping: Grouping) -> bool {
    filter.status_class.is_none()
        && grouping != Grouping::StatusClass
        && !filter.team_ids.as_ref().is_some_and(Vec::is_empty)
}

/// A group of a sketch read as a backend reads it, borrowed from the row: its bucket and label
/// ([`group_sql`]) and its runs of stored sketches.
pub type StoredGroup<'r> = (i64, &'r str, StoredSketches<'r>);

/// Sketch rows merged into the groups of a grouping as they are read: each stored blob decoded
/// once, straight into its group's sketch.
#[derive(Debug)]
pub struct SketchGroups {
    grouping: Grouping,
    by_bucket: HashMap<i64, LatencySketches>,
    by_label: HashMap<String, LatencySketches>,
}

impl SketchGroups {
    /// No group yet.
    pub fn new(grouping: Grouping) -> Self {
        Self {
            grouping,
            by_bucket: HashMap::new(),
            by_label: HashMap::new(),
        }
    }

    /// Adds a group's runs of stored sketches (see [`LatencySketches::merge_stored_runs`]),
    /// `bucket` and `label` as [`group_sql`] names it.
    pub fn add(&mut self, bucket: i64, label: &str, stored: StoredSketches<'_>) -> StoreResult<()> {
        let group = if self.grouping == Grouping::Model {
            match self.by_label.get_mut(label) {
                Some(group) => group,
                None => self.by_label.entry(label.to_owned()).or_default(),
            }
        } else {
            self.by_bucket.entry(bucket).or_default()
        };
        group.merge_stored_runs(stored)
    }

    /// The groups, ordered by bucket then label.
    pub fn finish(self) -> Vec<LatencyGroup> {
        let mut groups: Vec<LatencyGroup> = self
            .by_bucket
            .into_iter()
            .map(|(bucket, sketches)| LatencyGroup {
                bucket,
                label: String::new(),
                sketches,
            })
            .chain(
                self.by_label
                    .into_iter()
                    .map(|(label, sketches)| LatencyGroup {
                        bucket: 0,
                        label,
                        sketches,
                    }),
            )
            .collect();
        groups.sort_unstable_by(|a, b| (a.bucket, &a.label).cmp(&(b.bucket, &b.label)));
        groups
    }
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
mod tests;
