//! Usage analytics over the hourly and daily roll-ups, call-log search over raw events, and
//! retention.

use std::fmt::Write as _;
use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::sqlite::{Sqlite, SqliteArguments};
use tollgate_core::usage::HISTOGRAM_LEN;
use tollgate_store::{
    AggregateOrder, AnalyticsQueries, EventCursor, EventFilter, Grouping, LatencyGroup,
    RollupFilter, StoreResult, StoredEvent, UsageAggregate,
};

use crate::rows::{aggregate_from_row, stored_event_from_row};
use crate::sketches::read_sketches;
use crate::usage::EVENT_COLUMNS;
use tollgate_store::rollup::{
    DAY_MS, Grain, RangePart as Part, sketches_answer, split_range, summaries_answer,
};
use tollgate_store_sql::{aggregate_order, retention_sql};

use crate::{SqliteStore, store_error};

/// The summed columns of roll-up rows, each under its own name, and the calls of unknown status
/// (class 0, reported without one), which success rates leave out.
static SUMS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}, SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END) AS unknown_calls",
        SUMMED.as_str()
    )
});

/// The same sums over rows that are themselves sums (by parts, by hour).
static RESUMS: LazyLock<String> =
    LazyLock::new(|| format!("{}, SUM(unknown_calls) AS unknown_calls", SUMMED.as_str()));

/// The counter columns summed.
static SUMMED: LazyLock<String> = LazyLock::new(|| {
    let mut sums = String::from(
        "SUM(calls) AS calls, SUM(errors) AS errors, SUM(latency_sum_us) AS latency_sum_us, \
         SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens, \
         SUM(total_tokens) AS total_tokens, SUM(cached_tokens) AS cached_tokens, \
         SUM(reasoning_tokens) AS reasoning_tokens, SUM(estimated_calls) AS estimated_calls, \
         SUM(cost_usd) AS cost_usd, SUM(unpriced_calls) AS unpriced_calls",
    );
    for i in 0..HISTOGRAM_LEN {
        let _ = write!(sums, ", SUM(h{i:02}) AS h{i:02}");
    }
    sums
});

/// A value bound to a placeholder, in the order the WHERE clause names them.
pub(crate) enum Bind {
    Int(i64),
    Text(String),
}

pub(crate) fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
    for b in binds {
        query = match b {
            Bind::Int(v) => query.bind(v),
            Bind::Text(v) => query.bind(v),
        };
    }
    query
}

/// The placeholders of an IN list of `n` values.
pub(crate) fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Values bound to numbered placeholders (`?1`, `?2`, …), which one statement may name more
/// than once: every part of a split range shares the filter's values.
#[derive(Default)]
pub(crate) struct NumberedBinds(Vec<Bind>);

impl NumberedBinds {
    /// Adds `value`; answers the placeholder naming it.
    pub(crate) fn push(&mut self, value: Bind) -> String {
        self.0.push(value);
        format!("?{}", self.0.len())
    }

    /// The values, in placeholder order.
    pub(crate) fn into_binds(self) -> Vec<Bind> {
        self.0
    }
}

/// Where an aggregate reads a grain: the roll-ups and their sums, or the summary rows (whose
/// calls of unknown status are a column) when `summaries` is set.
fn source(grain: Grain, summaries: bool) -> (&'static str, &'static str) {
    if summaries {
        (grain.sketch_table(), RESUMS.as_str())
    } else {
        (grain.table(), SUMS.as_str())
    }
}

/// The partial sums of `part` for `grouping` (never `Hour`), under the filter's other
/// conditions `dims` (each starting with ` AND `), from the summary rows when `summaries`.
fn part_sql(
    grouping: Grouping,
    part: &Part,
    (dims, summaries): (&str, bool),
    binds: &mut NumberedBinds,
) -> String {
    let ((table, sums), time) = (source(part.grain, summaries), part.grain.time());
    let from = binds.push(Bind::Int(part.from_ms));
    let to = binds.push(Bind::Int(part.to_ms));
    let (bucket, label, group) = match grouping {
        Grouping::Total => ("0".to_owned(), "''", None),
        // An hourly part lies within one day, the day of its start.
        Grouping::Day if part.grain == Grain::Hour => (
            (part.from_ms - part.from_ms.rem_euclid(DAY_MS)).to_string(),
            "''",
            None,
        ),
        Grouping::Hour | Grouping::Day => (time.to_owned(), "''", Some(time)),
        Grouping::Key => ("key_id".to_owned(), "''", Some("key_id")),
        Grouping::Route => ("route_id".to_owned(), "''", Some("route_id")),
        Grouping::Team => ("team_id".to_owned(), "''", Some("team_id")),
        Grouping::StatusClass => ("status_class".to_owned(), "''", Some("status_class")),
        Grouping::Model => ("0".to_owned(), "model", Some("model")),
    };
    let mut sql = format!(
        "SELECT {bucket} AS bucket, {label} AS label, {sums} FROM {table} \
         WHERE {time} >= {from} AND {time} < {to}{dims}"
    );
    if let Some(group) = group {
        let _ = write!(sql, " GROUP BY {group}");
    }
    sql
}

/// The aggregate query of `grouping` over the `usage_hourly` rows (the `summary_hourly` rows when
/// `summaries`) matching `conds`, ordered by `order`, ending with the LIMIT placeholder `limit`.
///
/// Totals and time series avoid sorting the roll-up rows: the primary key and the
/// `(dimension, hour)` indexes already yield them by hour, so `GROUP BY hour` streams, and days
/// are summed from those hourly sums rather than by grouping every row on a computed day.
fn aggregate_sql(
    grouping: Grouping,
    (conds, summaries): (&str, bool),
    order: &str,
    limit: &str,
) -> String {
    let (table, sums) = source(Grain::Hour, summaries);
    let (bucket, label, group) = match grouping {
        Grouping::Total => {
            return format!(
                "SELECT * FROM (SELECT 0 AS bucket, '' AS label, {sums} \
                 FROM {table} WHERE {conds}) AS total WHERE calls > 0 LIMIT {limit}"
            );
        }
        Grouping::Day => {
            let resums = RESUMS.as_str();
            return format!(
                "SELECT hour - hour % {DAY_MS} AS bucket, '' AS label, {resums} \
                 FROM (SELECT hour, {sums} FROM {table} WHERE {conds} GROUP BY hour) \
                 AS hourly GROUP BY hour - hour % {DAY_MS} HAVING SUM(calls) > 0 \
                 ORDER BY {order} LIMIT {limit}"
            );
        }
        Grouping::Hour => ("hour", "''", "hour"),
        Grouping::Key => ("key_id", "''", "key_id"),
        Grouping::Route => ("route_id", "''", "route_id"),
        Grouping::Team => ("team_id", "''", "team_id"),
        Grouping::StatusClass => ("status_class", "''", "status_class"),
        Grouping::Model => ("0", "model", "model"),
    };
    format!(
        "SELECT {bucket} AS bucket, {label} AS label, {sums} FROM {table} \
         WHERE {conds} GROUP BY {group} HAVING SUM(calls) > 0 ORDER BY {order} LIMIT {limit}"
    )
}

/// The conditions of `filter` on the roll-ups' dimensions (team, key, route, model, status
/// class), each starting with ` AND `; their values pushed to `binds`.
pub(crate) fn rollup_dimensions(filter: &RollupFilter, binds: &mut NumberedBinds) -> String {
    let mut dims = String::new();
    if let Some(teams) = &filter.team_ids {
        let marks: Vec<String> = teams.iter().map(|t| binds.push(Bind::Int(*t))).collect();
        let _ = write!(dims, " AND team_id IN ({})", marks.join(", "));
    }
    if let Some(key) = filter.key_id {
        let _ = write!(dims, " AND key_id = {}", binds.push(Bind::Int(key)));
    }
    if let Some(route) = filter.route_id {
        let _ = write!(dims, " AND route_id = {}", binds.push(Bind::Int(route)));
    }
    if let Some(model) = &filter.model {
        let _ = write!(
            dims,
            " AND model = {}",
            binds.push(Bind::Text(model.clone()))
        );
    }
    if let Some(class) = filter.status_class {
        let mark = binds.push(Bind::Int(i64::from(class)));
        let _ = write!(dims, " AND status_class = {mark}");
    }
    dims
}

impl SqliteStore {
    /// Deletes the roll-ups of `grain` (the summary rows when `summaries`) older than
    /// `before_ms`, oldest first, `step` ms of them per statement: a first clean-up of a long
    /// history does not hold the usage writer back for all of it at once. Returns how many rows
    /// went.
    async fn delete_rollups(
        &self,
        (grain, summaries): (Grain, bool),
        before_ms: i64,
        step: i64,
    ) -> StoreResult<u64> {
        let (oldest_sql, delete_sql) = retention_sql(grain, summaries, "?");
        let mut total: u64 = 0;
        loop {
            let oldest: Option<i64> = sqlx::query_scalar(&oldest_sql)
                .fetch_one(&self.writer)
                .await
                .map_err(store_error)?;
            let Some(oldest) = oldest.filter(|t| *t < before_ms) else {
                break;
            };
            let cut = before_ms.min(oldest.saturating_add(step));
            total += sqlx::query(&delete_sql)
                .bind(cut)
                .execute(&self.writer)
                .await
                .map_err(store_error)?
                .rows_affected();
            tokio::task::yield_now().await;
        }
        Ok(total)
    }

    /// Deletes, `batch` at a time, the rows `select_ids` names (a SELECT of ids taking the
    /// batch size as its one placeholder after `fixed`), at most `max` in all; returns how many.
    async fn delete_in_batches(
        &self,
        select_ids: &str,
        fixed: Option<i64>,
        batch: i64,
        max: Option<u64>,
    ) -> StoreResult<u64> {
        let batch = batch.max(1);
        let sql = format!("DELETE FROM usage_events WHERE id IN ({select_ids})");
        let mut total: u64 = 0;
        loop {
            let want = match max {
                Some(max) => {
                    let left = max.saturating_sub(total);
                    if left == 0 {
                        break;
                    }
                    batch.min(i64::try_from(left).unwrap_or(i64::MAX))
                }
                None => batch,
            };
            let mut query = sqlx::query(&sql);
            if let Some(value) = fixed {
                query = query.bind(value);
            }
            // One statement is one short write transaction: the usage writer waits at most
            // one batch.
            let deleted = query
                .bind(want)
                .execute(&self.writer)
                .await
                .map_err(store_error)?
                .rows_affected();
            total += deleted;
            if deleted < u64::try_from(want).unwrap_or(u64::MAX) {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(total)
    }
}

#[async_trait]
impl AnalyticsQueries for SqliteStore {
    async fn aggregate_usage(
        &self,
        filter: &RollupFilter,
        grouping: Grouping,
        order: AggregateOrder,
        limit: i64,
    ) -> StoreResult<Vec<UsageAggregate>> {
        if filter.team_ids.as_ref().is_some_and(Vec::is_empty) || limit <= 0 {
            return Ok(Vec::new());
        }
        let mut binds = NumberedBinds::default();
        // One team's, key's, route's or model's summary rows where they answer: a few rows per
        // hour or day instead of one per key, route, model and status class.
        let summaries = summaries_answer(filter, grouping);
        let mut dims = summaries
            .map(|rows| format!(" AND {}", rows.condition()))
            .unwrap_or_default();
        dims.push_str(&rollup_dimensions(filter, &mut binds));
        let split = match grouping {
            Grouping::Hour => None,
            _ => split_range(filter.from_ms, filter.to_ms),
        };
        let sql = if let Some(parts) = split {
            // Whole days from usage_daily, the hours around them from usage_hourly, summed
            // again over the parts: one statement, so ordering and the limit stay in SQL.
            let parts: Vec<String> = parts
                .iter()
                .map(|part| part_sql(grouping, part, (&dims, summaries.is_some()), &mut binds))
                .collect();
            let limit = binds.push(Bind::Int(limit));
            format!(
                "SELECT bucket, label, {} FROM ({}) AS parts GROUP BY bucket, label \
                 HAVING SUM(calls) > 0 ORDER BY {} LIMIT {limit}",
                RESUMS.as_str(),
                parts.join(" UNION ALL "),
                aggregate_order(order)
            )
        } else {
            let from = binds.push(Bind::Int(filter.from_ms));
            let to = binds.push(Bind::Int(filter.to_ms));
            let limit = binds.push(Bind::Int(limit));
            let conds = format!("hour >= {from} AND hour < {to}{dims}");
            aggregate_sql(
                grouping,
                (&conds, summaries.is_some()),
                aggregate_order(order),
                &limit,
            )
        };
        let rows = bind_all(sqlx::query(&sql), binds.0)
            .fetch_all(&self.reader)
            .await
            .map_err(store_error)?;
        rows.iter().map(aggregate_from_row).collect()
    }

    async fn latency_sketches(
        &self,
        filter: &RollupFilter,
        grouping: Grouping,
        groups: Option<&[(i64, String)]>,
    ) -> StoreResult<Vec<LatencyGroup>> {
        if !sketches_answer(filter, grouping) || groups.is_some_and(<[_]>::is_empty) {
            return Ok(Vec::new());
        }
        read_sketches(&self.reader, filter, grouping, groups).await
    }

    async fn search_usage(
        &self,
        filter: &EventFilter,
        after: Option<EventCursor>,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        crate::search::search_usage(&self.reader, filter, after, limit).await
    }

    async fn usage_event(&self, id: i64) -> StoreResult<Option<StoredEvent>> {
        let row = sqlx::query(&format!(
            "SELECT id, {EVENT_COLUMNS} FROM usage_events WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .map_err(store_error)?;
        row.as_ref().map(stored_event_from_row).transpose()
    }

    async fn delete_usage_before(&self, before_ms: i64, batch: i64) -> StoreResult<u64> {
        self.delete_in_batches(
            "SELECT id FROM usage_events WHERE ts < ? ORDER BY ts, id LIMIT ?",
            Some(before_ms),
            batch,
            None,
        )
        .await
    }

    async fn trim_usage(&self, max_rows: i64, batch: i64) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_events")
            .fetch_one(&self.reader)
            .await
            .map_err(store_error)?;
        let excess = count.saturating_sub(max_rows.max(0));
        if excess <= 0 {
            return Ok(0);
        }
        self.delete_in_batches(
            "SELECT id FROM usage_events ORDER BY ts, id LIMIT ?",
            None,
            batch,
            Some(u64::try_from(excess).unwrap_or(0)),
        )
        .await
    }

    async fn delete_rollups_before(&self, before_ms: i64) -> StoreResult<u64> {
        // Only whole days go from usage_daily: the day holding the cut keeps its row. A day of
        // hourly rows or 24 days of daily ones per statement: about as many rows each time.
        let day_cut = before_ms - before_ms.rem_euclid(DAY_MS);
        let mut deleted = 0;
        for grain in [Grain::Hour, Grain::Day] {
            let (cut, step) = match grain {
                Grain::Hour => (before_ms, DAY_MS),
                Grain::Day => (day_cut, 24 * DAY_MS),
            };
            deleted += self.delete_rollups((grain, false), cut, step).await?;
            // Their summary rows go with them (not counted: not roll-up rows).
            self.delete_rollups((grain, true), cut, step).await?;
        }
        Ok(deleted)
    }
}
