//! Usage analytics over the hourly roll-ups, call-log search over raw events, and retention.

use std::fmt::Write as _;
use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteRow};
use tollgate_core::usage::HISTOGRAM_LEN;
use tollgate_store::{
    AggregateOrder, AnalyticsQueries, EventCursor, EventFilter, Grouping, RollupFilter,
    StoreResult, StoredEvent, UsageAggregate,
};

use crate::usage::{EVENT_COLUMNS, event_from_row};
use crate::{SqliteStore, store_error};

/// One UTC day, ms.
const DAY_MS: i64 = 86_400_000;

/// The summed columns of `usage_hourly`, each under its own name.
static SUMS: LazyLock<String> = LazyLock::new(|| {
    let mut sums = String::from(
        "SUM(calls) AS calls, SUM(errors) AS errors, SUM(latency_sum_us) AS latency_sum_us, \
         SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens, \
         SUM(total_tokens) AS total_tokens, SUM(cached_tokens) AS cached_tokens, \
         SUM(reasoning_tokens) AS reasoning_tokens, SUM(estimated_calls) AS estimated_calls, \
         SUM(cost_usd) AS cost_usd",
    );
    for i in 0..HISTOGRAM_LEN {
        let _ = write!(sums, ", SUM(h{i:02}) AS h{i:02}");
    }
    sums
});

/// Histogram column names as the aggregate query returns them.
static HIST_NAMES: LazyLock<Vec<String>> =
    LazyLock::new(|| (0..HISTOGRAM_LEN).map(|i| format!("h{i:02}")).collect());

/// A value bound to a placeholder, in the order the WHERE clause names them.
enum Bind {
    Int(i64),
    Text(String),
}

fn bind_all<'q>(
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
fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The aggregate query of `grouping` over the rows matching `conds`, ordered by `order`,
/// ending with the LIMIT placeholder `limit`.
///
/// Totals and time series avoid sorting the roll-up rows: the primary key and the
/// `(dimension, hour)` indexes already yield them by hour, so `GROUP BY hour` streams, and days
/// are summed from those hourly sums rather than by grouping every row on a computed day.
fn aggregate_sql(grouping: Grouping, conds: &str, order: &str, limit: &str) -> String {
    let sums = SUMS.as_str();
    let (bucket, label, group) = match grouping {
        Grouping::Total => {
            return format!(
                "SELECT * FROM (SELECT 0 AS bucket, '' AS label, {sums} \
                 FROM usage_hourly WHERE {conds}) AS total WHERE calls > 0 LIMIT {limit}"
            );
        }
        Grouping::Day => {
            return format!(
                "SELECT hour - hour % {DAY_MS} AS bucket, '' AS label, {sums} \
                 FROM (SELECT hour, {sums} FROM usage_hourly WHERE {conds} GROUP BY hour) \
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
        "SELECT {bucket} AS bucket, {label} AS label, {sums} FROM usage_hourly \
         WHERE {conds} GROUP BY {group} HAVING SUM(calls) > 0 ORDER BY {order} LIMIT {limit}"
    )
}

fn order_by(order: AggregateOrder) -> &'static str {
    // Output names win over column names in ORDER BY: these are the sums.
    match order {
        AggregateOrder::Bucket => "bucket, label",
        AggregateOrder::CallsDesc => "calls DESC, bucket, label",
        AggregateOrder::TokensDesc => "total_tokens DESC, bucket, label",
    }
}

fn aggregate_from_row(row: &SqliteRow) -> StoreResult<UsageAggregate> {
    let mut latency_hist = [0; HISTOGRAM_LEN];
    for (slot, column) in latency_hist.iter_mut().zip(HIST_NAMES.iter()) {
        *slot = row.try_get(column.as_str()).map_err(store_error)?;
    }
    Ok(UsageAggregate {
        bucket: row.try_get("bucket").map_err(store_error)?,
        label: row.try_get("label").map_err(store_error)?,
        calls: row.try_get("calls").map_err(store_error)?,
        errors: row.try_get("errors").map_err(store_error)?,
        latency_sum_us: row.try_get("latency_sum_us").map_err(store_error)?,
        latency_hist,
        prompt_tokens: row.try_get("prompt_tokens").map_err(store_error)?,
        completion_tokens: row.try_get("completion_tokens").map_err(store_error)?,
        total_tokens: row.try_get("total_tokens").map_err(store_error)?,
        cached_tokens: row.try_get("cached_tokens").map_err(store_error)?,
        reasoning_tokens: row.try_get("reasoning_tokens").map_err(store_error)?,
        estimated_calls: row.try_get("estimated_calls").map_err(store_error)?,
        cost_usd: row.try_get("cost_usd").map_err(store_error)?,
    })
}

fn stored_event_from_row(row: &SqliteRow) -> StoreResult<StoredEvent> {
    Ok(StoredEvent {
        id: row.try_get("id").map_err(store_error)?,
        event: event_from_row(row)?,
    })
}

/// `needle` as a LIKE pattern matching it anywhere, its `%`, `_` and `\` taken literally.
fn contains_pattern(needle: &str) -> String {
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

/// The WHERE conditions of `filter` over `usage_events`, with their values in placeholder order.
fn event_conditions(filter: &EventFilter) -> (Vec<String>, Vec<Bind>) {
    let mut conds = Vec::new();
    let mut binds = Vec::new();
    if let Some(from) = filter.from_ms {
        conds.push("ts >= ?".to_owned());
        binds.push(Bind::Int(from));
    }
    if let Some(to) = filter.to_ms {
        conds.push("ts < ?".to_owned());
        binds.push(Bind::Int(to));
    }
    if let Some(teams) = &filter.team_ids {
        conds.push(format!("team_id IN ({})", marks(teams.len())));
        binds.extend(teams.iter().map(|t| Bind::Int(*t)));
    }
    if let Some(key) = filter.key_id {
        conds.push("key_id = ?".to_owned());
        binds.push(Bind::Int(key));
    }
    if let Some(route) = filter.route_id {
        conds.push("route_id = ?".to_owned());
        binds.push(Bind::Int(route));
    }
    if let Some(model) = &filter.model {
        conds.push("model = ?".to_owned());
        binds.push(Bind::Text(model.clone()));
    }
    if let Some(status) = filter.status {
        conds.push("status = ?".to_owned());
        binds.push(Bind::Int(i64::from(status)));
    }
    match filter.status_class {
        None => {}
        // As in the roll-ups: class 0 is every status outside 100..=599.
        Some(0) => conds.push("(status < 100 OR status > 599)".to_owned()),
        Some(class @ 1..=5) => {
            conds.push("status >= ? AND status < ?".to_owned());
            binds.push(Bind::Int(i64::from(class) * 100));
            binds.push(Bind::Int(i64::from(class) * 100 + 100));
        }
        Some(_) => conds.push("0 = 1".to_owned()),
    }
    if let Some(text) = &filter.text {
        // LIKE is case-insensitive for ASCII letters (SQLite folds no other case without ICU).
        conds.push(
            "(path LIKE ? ESCAPE '\\' OR error LIKE ? ESCAPE '\\' \
             OR user_agent LIKE ? ESCAPE '\\')"
                .to_owned(),
        );
        let pattern = contains_pattern(text);
        binds.push(Bind::Text(pattern.clone()));
        binds.push(Bind::Text(pattern.clone()));
        binds.push(Bind::Text(pattern));
    }
    (conds, binds)
}

impl SqliteStore {
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
        let mut conds = vec!["hour >= ?".to_owned(), "hour < ?".to_owned()];
        let mut binds = vec![Bind::Int(filter.from_ms), Bind::Int(filter.to_ms)];
        if let Some(teams) = &filter.team_ids {
            conds.push(format!("team_id IN ({})", marks(teams.len())));
            binds.extend(teams.iter().map(|t| Bind::Int(*t)));
        }
        if let Some(key) = filter.key_id {
            conds.push("key_id = ?".to_owned());
            binds.push(Bind::Int(key));
        }
        if let Some(route) = filter.route_id {
            conds.push("route_id = ?".to_owned());
            binds.push(Bind::Int(route));
        }
        if let Some(model) = &filter.model {
            conds.push("model = ?".to_owned());
            binds.push(Bind::Text(model.clone()));
        }
        if let Some(class) = filter.status_class {
            conds.push("status_class = ?".to_owned());
            binds.push(Bind::Int(i64::from(class)));
        }
        let sql = aggregate_sql(grouping, &conds.join(" AND "), order_by(order), "?");
        let rows = bind_all(sqlx::query(&sql), binds)
            .bind(limit)
            .fetch_all(&self.reader)
            .await
            .map_err(store_error)?;
        rows.iter().map(aggregate_from_row).collect()
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
        let (mut conds, mut binds) = event_conditions(filter);
        if let Some(cursor) = after {
            // A row value: SQLite walks the (ts, id) order of an index from the cursor on.
            conds.push("(ts, id) < (?, ?)".to_owned());
            binds.push(Bind::Int(cursor.ts_ms));
            binds.push(Bind::Int(cursor.id));
        }
        let mut sql = format!("SELECT id, {EVENT_COLUMNS} FROM usage_events");
        if !conds.is_empty() {
            let _ = write!(sql, " WHERE {}", conds.join(" AND "));
        }
        sql.push_str(" ORDER BY ts DESC, id DESC LIMIT ?");
        let rows = bind_all(sqlx::query(&sql), binds)
            .bind(limit)
            .fetch_all(&self.reader)
            .await
            .map_err(store_error)?;
        rows.iter().map(stored_event_from_row).collect()
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
        // A day of roll-ups per statement, oldest first: a first clean-up of a long history
        // does not hold the usage writer back for all of it at once.
        let mut total: u64 = 0;
        loop {
            let oldest: Option<i64> = sqlx::query_scalar("SELECT MIN(hour) FROM usage_hourly")
                .fetch_one(&self.writer)
                .await
                .map_err(store_error)?;
            let Some(oldest) = oldest.filter(|h| *h < before_ms) else {
                break;
            };
            let cut = before_ms.min(oldest.saturating_add(DAY_MS));
            total += sqlx::query("DELETE FROM usage_hourly WHERE hour < ?")
                .bind(cut)
                .execute(&self.writer)
                .await
                .map_err(store_error)?
                .rows_affected();
            tokio::task::yield_now().await;
        }
        Ok(total)
    }
}
