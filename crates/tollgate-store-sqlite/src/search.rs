//! The call log: raw events matching a filter, newest first, a page at a time.
//!
//! `usage_events` has one index for it, `(ts, id, team_id, key_id, route_id, status)`
//! (migration 0017), not one per dimension: every index is a B-tree insert per stored event on
//! the one writer thread. A page without a team, key, route or model filter walks that index
//! from its cursor. A page with one would walk it past every other team's calls, so it first asks
//! the hourly roll-ups (whose `(dimension, hour)` indexes answer in a few rows) which hours hold
//! matching calls, and walks only those hours, newest first, until the page is full. Team, key,
//! route and status are tested in the index entry; a row is read only when they match.

use std::fmt::Write as _;

use sqlx::sqlite::SqliteConnection;
use sqlx::{Acquire as _, Row as _, SqlitePool};
use tollgate_core::time::HOUR_MS;
use tollgate_store::rollup::contains_pattern;
use tollgate_store::{EventCursor, EventFilter, RollupFilter, StoreResult, StoredEvent};

use crate::analytics::{Bind, NumberedBinds, bind_all, marks, rollup_dimensions};
use crate::rows::stored_event_from_row;
use crate::store_error;
use crate::usage::EVENT_COLUMNS;

/// Hours asked of the roll-ups at a time: a page of a busy key fills in the first; a rare key's
/// page reads a few such lists.
const HOURS_AT_ONCE: i64 = 64;

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
    let dimensions = filter.team_ids.is_some()
        || filter.key_id.is_some()
        || filter.route_id.is_some()
        || filter.model.is_some();
    if !dimensions {
        return events_in(&mut conn, filter, after, (None, None), limit).await;
    }
    // One read transaction: the hours and the events they name are of the same batches.
    let mut tx = conn.begin().await.map_err(store_error)?;
    let page = search_by_hours(&mut tx, filter, after, limit).await;
    tx.commit().await.map_err(store_error)?;
    page
}

/// A filtered page, read hour by hour where the roll-ups count matching calls.
async fn search_by_hours(
    conn: &mut SqliteConnection,
    filter: &EventFilter,
    after: Option<EventCursor>,
    limit: i64,
) -> StoreResult<Vec<StoredEvent>> {
    let mut page = Vec::new();
    // Events before `end` are still to be looked at (`None`: all of them).
    let mut end = match (filter.to_ms, after) {
        (Some(to), Some(cursor)) => Some(to.min(cursor.ts_ms.saturating_add(1))),
        (to, cursor) => to.or(cursor.map(|c| c.ts_ms.saturating_add(1))),
    };
    let rollups = filter.counting_rollups(filter.from_ms.unwrap_or(i64::MIN), i64::MAX);
    loop {
        let hours = hours_with_calls(conn, &rollups, end).await?;
        let Some(&oldest) = hours.last() else { break };
        for (from, to) in spans(&hours) {
            let to = end.map_or(to, |end| end.min(to));
            let wanted = limit - i64::try_from(page.len()).unwrap_or(i64::MAX);
            let found = events_in(conn, filter, after, (Some(from), Some(to)), wanted).await?;
            page.extend(found);
            if i64::try_from(page.len()).unwrap_or(i64::MAX) >= limit {
                return Ok(page);
            }
        }
        end = Some(oldest);
    }
    // Events older than every roll-up hour: roll-ups outlive raw events (retention), but the
    // clean-up of both cuts at an instant, which leaves the raw events of the hour it cut in
    // without their roll-up row. Usually none: one step of the index.
    let first_hour: Option<i64> = sqlx::query_scalar("SELECT MIN(hour) FROM usage_hourly")
        .fetch_one(&mut *conn)
        .await
        .map_err(store_error)?;
    let before = match (first_hour, end) {
        (Some(hour), Some(end)) => Some(hour.min(end)),
        (hour, end) => hour.or(end),
    };
    let wanted = limit - i64::try_from(page.len()).unwrap_or(i64::MAX);
    page.extend(events_in(conn, filter, after, (None, before), wanted).await?);
    Ok(page)
}

/// The newest [`HOURS_AT_ONCE`] hours starting before `end` (any when `None`) in which the
/// roll-up rows of `rollups` count calls, newest first.
async fn hours_with_calls(
    conn: &mut SqliteConnection,
    rollups: &RollupFilter,
    end: Option<i64>,
) -> StoreResult<Vec<i64>> {
    let mut binds = NumberedBinds::default();
    // An hour holds events of `from_ms` on when it ends after it.
    let mut sql = format!(
        "SELECT DISTINCT hour FROM usage_hourly WHERE hour > {}",
        binds.push(Bind::Int(rollups.from_ms.saturating_sub(HOUR_MS)))
    );
    if let Some(end) = end {
        let _ = write!(sql, " AND hour < {}", binds.push(Bind::Int(end)));
    }
    sql.push_str(&rollup_dimensions(rollups, &mut binds));
    let _ = write!(
        sql,
        " ORDER BY hour DESC LIMIT {}",
        binds.push(Bind::Int(HOURS_AT_ONCE))
    );
    let rows = bind_all(sqlx::query(&sql), binds.into_binds())
        .fetch_all(&mut *conn)
        .await
        .map_err(store_error)?;
    rows.iter()
        .map(|row| row.try_get::<i64, _>(0).map_err(store_error))
        .collect()
}

/// `[from, to)` spans of ms covering `hours` (newest first), adjacent hours joined, newest first.
fn spans(hours: &[i64]) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for &hour in hours {
        let to = hour.saturating_add(HOUR_MS);
        match spans.last_mut() {
            Some(last) if last.0 == to => last.0 = hour,
            _ => spans.push((hour, to)),
        }
    }
    spans
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_join_adjacent_hours_newest_first() {
        let h = HOUR_MS;
        assert_eq!(
            spans(&[9 * h, 8 * h, 7 * h, 4 * h, 2 * h, h]),
            vec![(7 * h, 10 * h), (4 * h, 5 * h), (h, 3 * h)]
        );
        assert_eq!(spans(&[]), Vec::<(i64, i64)>::new());
        assert_eq!(spans(&[i64::MAX - 5]), vec![(i64::MAX - 5, i64::MAX)]);
    }
}
