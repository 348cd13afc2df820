//! Usage analytics over the hourly and daily roll-ups, call-log search over raw events, and
//! retention.

use std::fmt::Write as _;
use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::Row as _;
use sqlx::postgres::{PgArguments, Postgres};
use tollgate_core::time::HOUR_MS;
use tollgate_core::usage::HISTOGRAM_LEN;
use tollgate_store::{
    AggregateOrder, AnalyticsQueries, EventCursor, EventFilter, Grouping, HourlyEvents,
    LatencyGroup, PageSpans, RollupFilter, StoreResult, StoredEvent, UsageAggregate,
    search_by_hours,
};

use tollgate_store::rollup::{
    DAY_MS, Grain, RangePart as Part, contains_pattern, sketches_answer, split_range,
    summaries_answer,
};

use crate::rows::{aggregate_from_row, stored_event_from_row};
use crate::sketches::read_sketches;
use crate::usage::EVENT_COLUMNS;
use crate::{PostgresStore, store_error};
use tollgate_store_sql::{aggregate_order, hours_with_calls_sql, retention_sql};

/// The summed columns of roll-up rows, each under its own name, and the calls of unknown status
/// (class 0, reported without one), which success rates leave out.
static SUMS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}, SUM(CASE WHEN status_class = 0 THEN calls ELSE 0 END)::int8 AS unknown_calls",
        SUMMED.as_str()
    )
});

/// The same sums over rows that are themselves sums (by parts, by hour).
static RESUMS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}, SUM(unknown_calls)::int8 AS unknown_calls",
        SUMMED.as_str()
    )
});

/// The counter columns summed (SUM of int8 is numeric: cast back).
static SUMMED: LazyLock<String> = LazyLock::new(|| {
    let mut sums = String::new();
    for c in [
        "calls",
        "errors",
        "latency_sum_us",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "estimated_calls",
        "unpriced_calls",
    ] {
        let _ = write!(sums, "SUM({c})::int8 AS {c}, ");
    }
    sums.push_str("SUM(cost_usd) AS cost_usd");
    for i in 0..HISTOGRAM_LEN {
        let _ = write!(sums, ", SUM(h{i:02})::int8 AS h{i:02}");
    }
    sums
});

/// Planner settings of the roll-up aggregates, local to their transaction.
///
/// - Custom plans only: sqlx prepares each statement once per connection, and after five
///   executions PostgreSQL switches to a generic plan, estimated without the range (131 rows
///   instead of 25 920 for 90 days of 10 M events): an index scan visiting 20 000 buffers
///   instead of a sequential scan of 7 500. Planning again costs about a millisecond.
/// - No parallel workers: the roll-ups are small, so starting workers and gathering and merging
///   their partial sums costs more than it saves (a Parallel Append even runs the whole daily
///   part in one worker while the leader waits). On 2 cores the 90-day daily series took 58–75 ms
///   median with two workers, 38 ms without; the 90-day trend 36–45 ms, 25 ms without.
/// - No JIT: compiling the ~35 summed columns costs more than the whole aggregate as soon as a
///   plan's estimated cost passes `jit_above_cost` (a long hourly series, say).
const ROLLUP_SETTINGS: &str = "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), \
     set_config('max_parallel_workers_per_gather', '0', true), set_config('jit', 'off', true)";

/// How far back the roll-ups are asked where a call-log page starts (see
/// `PostgresStore::page_spans`): a day of hourly rows. A filter that matches fewer than a page in
/// that long is looked for in the whole range, as before.
const PAGE_SPAN_HOURS: i64 = 24;

/// The event columns, the id as text: the row mapper both backends share (`event_from_row`) reads
/// it so, since SQLite stores it as text.
static SELECT_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT id, {} FROM usage_events",
        EVENT_COLUMNS.replacen("event_id", "event_id::text AS event_id", 1)
    )
});

/// A value bound to a placeholder.
pub(crate) enum Bind {
    Int(i64),
    Ints(Vec<i64>),
    Text(String),
    Texts(Vec<String>),
}

/// Values bound so far; `push` answers the placeholder naming the new one.
#[derive(Default)]
pub(crate) struct Binds(Vec<Bind>);

impl Binds {
    pub(crate) fn push(&mut self, value: Bind) -> String {
        self.0.push(value);
        format!("${}", self.0.len())
    }

    pub(crate) fn apply<'q>(
        self,
        mut query: sqlx::query::Query<'q, Postgres, PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, PgArguments> {
        for b in self.0 {
            query = match b {
                Bind::Int(v) => query.bind(v),
                Bind::Ints(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
                Bind::Texts(v) => query.bind(v),
            };
        }
        query
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
    binds: &mut Binds,
) -> String {
    let ((table, sums), time) = (source(part.grain, summaries), part.grain.time());
    let from = binds.push(Bind::Int(part.from_ms));
    let to = binds.push(Bind::Int(part.to_ms));
    let (bucket, label, group) = match grouping {
        Grouping::Total => ("0::int8".to_owned(), "''::text", None),
        // An hourly part lies within one day, the day of its start.
        Grouping::Day if part.grain == Grain::Hour => (
            format!("{}::int8", part.from_ms - part.from_ms.rem_euclid(DAY_MS)),
            "''::text",
            None,
        ),
        Grouping::Hour | Grouping::Day => (time.to_owned(), "''::text", Some(time)),
        Grouping::Key => ("key_id".to_owned(), "''::text", Some("key_id")),
        Grouping::Route => ("route_id".to_owned(), "''::text", Some("route_id")),
        Grouping::Team => ("team_id".to_owned(), "''::text", Some("team_id")),
        Grouping::StatusClass => (
            "status_class::int8".to_owned(),
            "''::text",
            Some("status_class"),
        ),
        Grouping::Model => ("0::int8".to_owned(), "model", Some("model")),
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
                "SELECT * FROM (SELECT 0::int8 AS bucket, ''::text AS label, {sums} \
                 FROM {table} WHERE {conds}) AS total WHERE calls > 0 LIMIT {limit}"
            );
        }
        Grouping::Day => {
            let resums = RESUMS.as_str();
            return format!(
                "SELECT hour - hour % {DAY_MS} AS bucket, ''::text AS label, {resums} \
                 FROM (SELECT hour, {sums} FROM {table} WHERE {conds} GROUP BY hour) \
                 AS hourly GROUP BY hour - hour % {DAY_MS} HAVING SUM(calls) > 0 \
                 ORDER BY {order} LIMIT {limit}"
            );
        }
        Grouping::Hour => ("hour", "''::text", "hour"),
        Grouping::Key => ("key_id", "''::text", "key_id"),
        Grouping::Route => ("route_id", "''::text", "route_id"),
        Grouping::Team => ("team_id", "''::text", "team_id"),
        Grouping::StatusClass => ("status_class::int8", "''::text", "status_class"),
        // Byte order, as SQLite and Rust sort strings.
        Grouping::Model => ("0::int8", "model COLLATE \"C\"", "model"),
    };
    format!(
        "SELECT {bucket} AS bucket, {label} AS label, {sums} FROM {table} \
         WHERE {conds} GROUP BY {group} HAVING SUM(calls) > 0 ORDER BY {order} LIMIT {limit}"
    )
}

/// The WHERE conditions of `filter` over `usage_events`.
fn event_conditions(filter: &EventFilter, binds: &mut Binds) -> Vec<String> {
    let mut conds = Vec::new();
    if let Some(from) = filter.from_ms {
        conds.push(format!("ts >= {}", binds.push(Bind::Int(from))));
    }
    if let Some(to) = filter.to_ms {
        conds.push(format!("ts < {}", binds.push(Bind::Int(to))));
    }
    if let Some(teams) = &filter.team_ids {
        conds.push(format!(
            "team_id = ANY({})",
            binds.push(Bind::Ints(teams.clone()))
        ));
    }
    if let Some(key) = filter.key_id {
        conds.push(format!("key_id = {}", binds.push(Bind::Int(key))));
    }
    if let Some(route) = filter.route_id {
        conds.push(format!("route_id = {}", binds.push(Bind::Int(route))));
    }
    if let Some(model) = &filter.model {
        conds.push(format!("model = {}", binds.push(Bind::Text(model.clone()))));
    }
    if let Some(status) = filter.status {
        conds.push(format!(
            "status = {}",
            binds.push(Bind::Int(i64::from(status)))
        ));
    }
    match filter.status_class {
        None => {}
        // As in the roll-ups: class 0 is every status outside 100..=599.
        Some(0) => conds.push("(status < 100 OR status > 599)".to_owned()),
        Some(class @ 1..=5) => {
            let low = binds.push(Bind::Int(i64::from(class) * 100));
            let high = binds.push(Bind::Int(i64::from(class) * 100 + 100));
            conds.push(format!("status >= {low} AND status < {high}"));
        }
        Some(_) => conds.push("FALSE".to_owned()),
    }
    if let Some(text) = &filter.text {
        let p = binds.push(Bind::Text(contains_pattern(text)));
        conds.push(format!(
            "(path ILIKE {p} ESCAPE '\\' OR error ILIKE {p} ESCAPE '\\' \
             OR user_agent ILIKE {p} ESCAPE '\\')"
        ));
    }
    conds
}

/// The conditions of `filter` on the roll-ups' dimensions (team, key, route, model, status
/// class), each starting with ` AND `; their values pushed to `binds`.
fn rollup_dimensions(filter: &RollupFilter, binds: &mut Binds) -> String {
    let mut dims = String::new();
    match filter.team_ids.as_deref() {
        // One team as a plain equality: the planner then knows an index on (team_id, hour)
        // yields its rows in hour order (not so for `= ANY` of an array).
        Some([team]) => {
            let _ = write!(dims, " AND team_id = {}", binds.push(Bind::Int(*team)));
        }
        Some(teams) => {
            let mark = binds.push(Bind::Ints(teams.to_vec()));
            let _ = write!(dims, " AND team_id = ANY({mark})");
        }
        None => {}
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

impl PostgresStore {
    /// The events of `filter` after `after`, newest first, at most `limit`, with `ts` in
    /// `[from, to)` where given; `in_order`: read in the index's order, never sorted (a span of
    /// hours the roll-ups say hold matching calls: its rows are few, and a page stops early).
    async fn search_span(
        &self,
        filter: &EventFilter,
        after: Option<EventCursor>,
        ((from, to), in_order): ((Option<i64>, Option<i64>), bool),
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        let mut binds = Binds::default();
        let mut conds = event_conditions(filter, &mut binds);
        if let Some(cursor) = after {
            let ts = binds.push(Bind::Int(cursor.ts_ms));
            let id = binds.push(Bind::Int(cursor.id));
            conds.push(format!("(ts, id) < ({ts}, {id})"));
        }
        if let Some(from) = from {
            conds.push(format!("ts >= {}", binds.push(Bind::Int(from))));
        }
        if let Some(to) = to {
            conds.push(format!("ts < {}", binds.push(Bind::Int(to))));
        }
        let mut sql = SELECT_EVENT.clone();
        if !conds.is_empty() {
            let _ = write!(sql, " WHERE {}", conds.join(" AND "));
        }
        let limit_mark = binds.push(Bind::Int(limit));
        let _ = write!(sql, " ORDER BY ts DESC, id DESC LIMIT {limit_mark}");
        // Not prepared for reuse: planned with its values each time, so that only the span's
        // partitions are planned. A kept statement turns generic after five runs, and building
        // that generic plan plans every partition (30 ms once per connection).
        let query = binds.apply(sqlx::query(&sql).persistent(false));
        let rows = if in_order {
            // The index on (ts, id, …) yields the span's rows newest first and stops at the
            // limit; the planner, whose statistics of a partition being written lag behind,
            // chose to gather all the span's matching rows and sort them instead (122 ms against
            // 1.2 ms at 10 M events, three days' partitions of a 64-hour span). The same lag
            // puts the plan's cost over `jit_above_cost`: compiling it took 33 ms of a text
            // search's 62 (1.1 M events a day), for a scan that stops after a few thousand rows.
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            sqlx::query(
                "SELECT set_config('enable_sort', 'off', true), set_config('jit', 'off', true)",
            )
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            let rows = query.fetch_all(&mut *tx).await.map_err(store_error)?;
            tx.commit().await.map_err(store_error)?;
            rows
        } else {
            query.fetch_all(&self.pool).await.map_err(store_error)?
        };
        rows.iter().map(stored_event_from_row).collect()
    }

    /// The hourly counts of `filter`'s events over the [`PAGE_SPAN_HOURS`] up to `after` (or
    /// the range's end, or now): where a call-log page looks first. `None` where the filter's
    /// own range is that narrow already.
    async fn page_spans(
        &self,
        filter: &EventFilter,
        after: Option<EventCursor>,
    ) -> StoreResult<Option<PageSpans>> {
        let end = after
            .map(|c| c.ts_ms)
            .or(filter.to_ms.map(|to| to.saturating_sub(1)))
            .unwrap_or_else(|| tollgate_core::time::now_ms() + HOUR_MS);
        // The hours up to the one holding `end` (a cursor or range of any i64 a client sent:
        // none past the ends of time).
        let (Some(to), Some(from)) = (
            (end - end.rem_euclid(HOUR_MS)).checked_add(HOUR_MS),
            end.checked_sub(PAGE_SPAN_HOURS * HOUR_MS),
        ) else {
            return Ok(None);
        };
        let from = from - from.rem_euclid(HOUR_MS) + HOUR_MS;
        if filter.from_ms.is_some_and(|f| f >= from) {
            return Ok(None);
        }
        let hours = self
            .aggregate_usage(
                &filter.counting_rollups(from, to),
                Grouping::Hour,
                AggregateOrder::Bucket,
                PAGE_SPAN_HOURS,
            )
            .await?;
        Ok(Some(PageSpans::new(&hours)))
    }

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
        let (oldest_sql, delete_sql) = retention_sql(grain, summaries, "$1");
        let mut total: u64 = 0;
        loop {
            let oldest: Option<i64> = sqlx::query_scalar(&oldest_sql)
                .fetch_one(&self.pool)
                .await
                .map_err(store_error)?;
            let Some(oldest) = oldest.filter(|t| *t < before_ms) else {
                break;
            };
            let cut = before_ms.min(oldest.saturating_add(step));
            total += sqlx::query(&delete_sql)
                .bind(cut)
                .execute(&self.pool)
                .await
                .map_err(store_error)?
                .rows_affected();
            tokio::task::yield_now().await;
        }
        Ok(total)
    }

    /// Deletes the oldest events (`ts < before_ms` when given), `batch` at a time, at most `max`
    /// in all; returns how many.
    ///
    /// Each batch names its rows by (ts, id) and bounds ts, so that the DELETE visits only the
    /// partitions of those days instead of probing every partition for each id.
    async fn delete_oldest(
        &self,
        before_ms: Option<i64>,
        batch: i64,
        max: Option<u64>,
    ) -> StoreResult<u64> {
        let batch = batch.max(1);
        let select = match before_ms {
            Some(_) => "SELECT ts, id FROM usage_events WHERE ts < $2 ORDER BY ts, id LIMIT $1",
            None => "SELECT ts, id FROM usage_events ORDER BY ts, id LIMIT $1",
        };
        let delete = "DELETE FROM usage_events WHERE ts >= $1 AND ts <= $2 \
             AND (ts, id) IN (SELECT * FROM UNNEST($3::int8[], $4::int8[]))";
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
            let mut query = sqlx::query_as::<_, (i64, i64)>(select).bind(want);
            if let Some(before) = before_ms {
                query = query.bind(before);
            }
            let rows = query.fetch_all(&self.pool).await.map_err(store_error)?;
            let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
                break;
            };
            // One statement, one short transaction: row locks are held for one batch only.
            total += sqlx::query(delete)
                .bind(first.0)
                .bind(last.0)
                .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
                .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                .execute(&self.pool)
                .await
                .map_err(store_error)?
                .rows_affected();
            if rows.len() < usize::try_from(want).unwrap_or(usize::MAX) {
                break;
            }
            tokio::task::yield_now().await;
        }
        Ok(total)
    }

    /// Deletes the ids of reported events with `ts < before_ms`, `batch` at a time.
    async fn delete_reported_ids_before(&self, before_ms: i64, batch: i64) -> StoreResult<()> {
        let batch = batch.max(1);
        loop {
            let deleted = sqlx::query(
                "DELETE FROM usage_reported_ids WHERE event_id IN \
                 (SELECT event_id FROM usage_reported_ids WHERE ts < $1 LIMIT $2)",
            )
            .bind(before_ms)
            .bind(batch)
            .execute(&self.pool)
            .await
            .map_err(store_error)?
            .rows_affected();
            if deleted < u64::try_from(batch).unwrap_or(u64::MAX) {
                return Ok(());
            }
            tokio::task::yield_now().await;
        }
    }
}

/// The store answering [`search_by_hours`] on its pool.
struct Hours<'s>(&'s PostgresStore);

#[async_trait]
impl HourlyEvents for Hours<'_> {
    async fn hours_with_calls(
        &mut self,
        rollups: &RollupFilter,
        end: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<i64>> {
        let mut binds = Binds::default();
        let from = binds.push(Bind::Int(rollups.from_ms));
        let end = end.map(|end| binds.push(Bind::Int(end)));
        let dims = rollup_dimensions(rollups, &mut binds);
        let limit = binds.push(Bind::Int(limit));
        let sql = hours_with_calls_sql(&from, end.as_deref(), &dims, &limit);
        // Planned with its values each time: a generic plan cannot tell a few newest hours from
        // all of them, and chose to gather and sort every hour of a team (300 ms at 10 M events).
        let rows = binds
            .apply(sqlx::query(&sql).persistent(false))
            .fetch_all(&self.0.pool)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| row.try_get::<i64, _>(0).map_err(store_error))
            .collect()
    }

    async fn first_hour(&mut self) -> StoreResult<Option<i64>> {
        sqlx::query_scalar("SELECT MIN(hour) FROM usage_hourly")
            .fetch_one(&self.0.pool)
            .await
            .map_err(store_error)
    }

    async fn events_in(
        &mut self,
        filter: &EventFilter,
        after: Option<EventCursor>,
        span: (Option<i64>, Option<i64>),
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.0.search_span(filter, after, (span, true), limit).await
    }
}

#[async_trait]
impl AnalyticsQueries for PostgresStore {
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
        let mut binds = Binds::default();
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
            // again over the parts: one statement, so ordering and the limit stay in SQL. The
            // label is compared in byte order, as SQLite and Rust sort strings.
            let parts: Vec<String> = parts
                .iter()
                .map(|part| part_sql(grouping, part, (&dims, summaries.is_some()), &mut binds))
                .collect();
            let limit = binds.push(Bind::Int(limit));
            format!(
                "SELECT bucket, label COLLATE \"C\" AS label, {} FROM ({}) AS parts \
                 GROUP BY bucket, label HAVING SUM(calls) > 0 ORDER BY {} LIMIT {limit}",
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
        // One read-only transaction, so that the settings below apply to this statement alone.
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        sqlx::query(ROLLUP_SETTINGS)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        let rows = binds
            .apply(sqlx::query(&sql))
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
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
        read_sketches(&self.pool, filter, grouping, groups).await
    }

    async fn search_usage(
        &self,
        filter: &EventFilter,
        after: Option<EventCursor>,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        if filter.team_ids.as_ref().is_some_and(Vec::is_empty) || limit <= 0 {
            return Ok(Vec::new());
        }
        // A team, key, route or model has no index of its own (migration 0017): the page is
        // read in the hours the roll-ups say hold its calls, newest first, each span's query
        // planning only its days' partitions.
        if filter.names_a_dimension() {
            return search_by_hours(&mut Hours(self), filter, after, limit).await;
        }
        // Without a lower bound on ts, a page plans and opens every daily partition (90 and
        // more: tens of ms) to take its rows from the newest one or two. The hourly roll-ups say
        // from which hour on there are enough matching events: the page is looked for there
        // first. They count a superset where the filter has a text or an exact status, or a
        // cursor leaves some of an hour's events out: a span short of the page is followed by
        // one sized by the share of the first that matched, and then by everything before. The
        // two spans are read in the index's order: the planner, its statistics of today's
        // partition lagging behind the writer, scanned the whole day for a text search and
        // sorted it (39.5 ms against 1.8 ms at 10 M events).
        let spans = self.page_spans(filter, after).await?;
        let Some(start) = spans.as_ref().and_then(|s| s.start_for(limit)) else {
            return self
                .search_span(filter, after, ((None, None), false), limit)
                .await;
        };
        let mut page = self
            .search_span(filter, after, ((Some(start), None), true), limit)
            .await?;
        let mut below = start;
        let found = i64::try_from(page.len()).unwrap_or(limit);
        if let Some(next) = spans
            .and_then(|s| s.next_start(start, found, limit))
            .filter(|_| found < limit)
        {
            page.extend(
                self.search_span(
                    filter,
                    after,
                    ((Some(next), Some(start)), true),
                    limit - found,
                )
                .await?,
            );
            below = next;
        }
        let found = i64::try_from(page.len()).unwrap_or(limit);
        if found < limit {
            page.extend(
                self.search_span(filter, after, ((None, Some(below)), false), limit - found)
                    .await?,
            );
        }
        Ok(page)
    }

    async fn usage_event(&self, id: i64) -> StoreResult<Option<StoredEvent>> {
        let row = sqlx::query(&format!("{} WHERE id = $1", SELECT_EVENT.as_str()))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(stored_event_from_row).transpose()
    }

    async fn delete_usage_before(&self, before_ms: i64, batch: i64) -> StoreResult<u64> {
        // Every clean-up also makes the coming days' partitions.
        if let Err(e) = self.ensure_partitions_ahead().await {
            tracing::warn!(error = %e, "retention: cannot create the coming days' usage partitions");
        }
        // Whole days go with their partition; the day of the cut, the default partition and any
        // partition that could not be detached are deleted in batches.
        let dropped = self.drop_partitions_before(before_ms).await?;
        let deleted = self.delete_oldest(Some(before_ms), batch, None).await?;
        self.delete_reported_ids_before(before_ms, batch).await?;
        Ok(dropped + deleted)
    }

    async fn trim_usage(&self, max_rows: i64, batch: i64) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_events")
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        let excess = count.saturating_sub(max_rows.max(0));
        if excess <= 0 {
            return Ok(0);
        }
        self.delete_oldest(None, batch, Some(u64::try_from(excess).unwrap_or(0)))
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
