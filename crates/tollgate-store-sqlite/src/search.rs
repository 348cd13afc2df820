//! The call log: raw events matching a filter, newest first, a page at a time.
//!
//! `usage_events` has one index for it, `(ts, id, team_id, key_id, route_id, status)`
//! (migration 0017), not one per dimension: every index is a B-tree insert per stored event on
//! the one writer thread. A page without a team, key, route or model filter walks that index
//! from its cursor. A page with one would walk it past every other team's calls, so it reads only
//! the hours the hourly roll-ups (whose `(dimension, hour)` indexes answer in a few rows) say hold
//! matching calls ([`search_by_hours`]). Team, key, route and status are tested in the index
//! entry; a row is read only when they match.

use std::fmt::Write as _;

use async_trait::async_trait;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Acquire as _, Row as _, SqlitePool};
use tollgate_store::rollup::contains_pattern;
use tollgate_store::{
    EventCursor, EventFilter, HourlyEvents, RollupFilter, StoreResult, StoredEvent, search_by_hours,
};

use crate::analytics::{Bind, NumberedBinds, bind_all, marks, rollup_dimensions};
use crate::rows::stored_event_from_row;
use crate::store_error;
use crate::usage::EVENT_COLUMNS;
use tollgate_store_sql::hours_with_calls_sql;

/// Matching events strictly after `after` in the `ts DESC, id DESC` order, at most `limit`.
pub(crate) async fn search_usage(
    reader: &SqlitePool,
    filter: &EventFilter,
    after: Option<EventCursor>,
    limit: i64,
) -> StoreResult<Vec<StoredEvent>> {
    if filter.team_ids.as_ref().is_some_and(Vec::is_empty) || limit <= 0 {
        return Ok(Vec::new());
    }
    let mut conn = reader.acquire().await.map_err(store_error)?;
    if !filter.names_a_dimension() {
        return events_in(&mut conn, filter, after, (None, None), limit).await;
    }
    // One read transaction: the hours and the events they name are of the same batches.
    let mut tx = conn.begin().await.map_err(store_error)?;
    let page = search_by_hours(&mut Hours(&mut tx), filter, after, limit).await;
    tx.commit().await.map_err(store_error)?;
    page
}

/// A read connection answering [`search_by_hours`].
struct Hours<'c>(&'c mut SqliteConnection);

#[async_trait]
impl HourlyEvents for Hours<'_> {
    async fn hours_with_calls(
        &mut self,
        rollups: &RollupFilter,
        end: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<i64>> {
        let mut binds = NumberedBinds::default();
        let from = binds.push(Bind::Int(rollups.from_ms));
        let end = end.map(|end| binds.push(Bind::Int(end)));
        let dims = rollup_dimensions(rollups, &mut binds);
        let limit = binds.push(Bind::Int(limit));
        let sql = hours_with_calls_sql(&from, end.as_deref(), &dims, &limit);
        let rows = bind_all(sqlx::query(&sql), binds.into_binds())
            .fetch_all(&mut *self.0)
            .await
            .map_err(store_error)?;
        rows.iter()
            .map(|row| row.try_get::<i64, _>(0).map_err(store_error))
            .collect()
    }

    async fn first_hour(&mut self) -> StoreResult<Option<i64>> {
        sqlx::query_scalar("SELECT MIN(hour) FROM usage_hourly")
            .fetch_one(&mut *self.0)
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
        events_in(self.0, filter, after, span, limit).await
    }
}

/// The events matching `filter` with `from <= ts < to` (where given), strictly after `after`,
/// newest first, at most `limit`.
async fn events_in(
    conn: &mut SqliteConnection,
    filter: &EventFilter,
    after: Option<EventCursor>,
    (from, to): (Option<i64>, Option<i64>),
    limit: i64,
) -> StoreResult<Vec<StoredEvent>> {
    let (mut conds, mut binds) = event_conditions(filter);
    if let Some(from) = from {
        conds.push("ts >= ?".to_owned());
        binds.push(Bind::Int(from));
    }
    if let Some(to) = to {
        conds.push("ts < ?".to_owned());
        binds.push(Bind::Int(to));
    }
    if let Some(cursor) = after {
        // A row value: SQLite walks the (ts, id) order of the index from the cursor on.
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
        .fetch_all(&mut *conn)
        .await
        .map_err(store_error)?;
    rows.iter().map(stored_event_from_row).collect()
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
