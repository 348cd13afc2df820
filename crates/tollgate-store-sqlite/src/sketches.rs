//! Latency sketches: merged into `latency_hourly` and `latency_daily` by the usage writer, read
//! back and merged per group for percentiles.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use sqlx::Row as _;
use sqlx::sqlite::SqliteConnection;
use tollgate_store::rollup::{Grain, LatencyKey, LatencyRow, LatencySketches, SketchRows};
use tollgate_store::{RollupFilter, StoreResult};

use crate::store_error;
use crate::usage::{
    Statement, StatementsBySize, chunks_of, execute_pipelined, statement, values_list,
};

/// Most sketch rows per look-up or upsert: 128 × 7 binds.
const MAX_SKETCH_ROWS: usize = 128;
const SKETCH_COLUMNS: &str = "team_id, key_id, route_id, model, total, upstream";

/// The look-up of the stored sketches of `rows` keys of `grain`.
fn select_sql(grain: Grain, rows: usize) -> String {
    let (table, time) = (grain.sketch_table(), grain.time());
    // The keys as a VALUES list joined to the table (CROSS JOIN keeps that order): SQLite seeks
    // each key in the primary key. A row value `IN (VALUES …)` would scan the whole table.
    format!(
        "SELECT l.{time}, l.team_id, l.key_id, l.route_id, l.model, l.total, l.upstream \
         FROM (VALUES {}) AS k CROSS JOIN {table} AS l \
         ON l.{time} = k.column1 AND l.team_id = k.column2 AND l.key_id = k.column3 \
         AND l.route_id = k.column4 AND l.model = k.column5",
        values_list(rows, 5)
    )
}

/// The upsert replacing the sketches of `rows` keys of `grain` with merged ones.
fn upsert_sql(grain: Grain, rows: usize) -> String {
    let (table, time) = (grain.sketch_table(), grain.time());
    format!(
        "INSERT INTO {table} ({time}, {SKETCH_COLUMNS}) VALUES {} \
         ON CONFLICT ({time}, team_id, key_id, route_id, model) \
         DO UPDATE SET total = excluded.total, upstream = excluded.upstream",
        values_list(rows, 7)
    )
}

static HOURLY_SELECTS: LazyLock<StatementsBySize> =
    LazyLock::new(|| StatementsBySize::new(|rows| select_sql(Grain::Hour, rows), MAX_SKETCH_ROWS));
static DAILY_SELECTS: LazyLock<StatementsBySize> =
    LazyLock::new(|| StatementsBySize::new(|rows| select_sql(Grain::Day, rows), MAX_SKETCH_ROWS));
static HOURLY_UPSERTS: LazyLock<StatementsBySize> =
    LazyLock::new(|| StatementsBySize::new(|rows| upsert_sql(Grain::Hour, rows), MAX_SKETCH_ROWS));
static DAILY_UPSERTS: LazyLock<StatementsBySize> =
    LazyLock::new(|| StatementsBySize::new(|rows| upsert_sql(Grain::Day, rows), MAX_SKETCH_ROWS));

/// A sketch row as read.
fn latency_row(row: &sqlx::sqlite::SqliteRow) -> Result<LatencyRow, sqlx::Error> {
    Ok(LatencyRow {
        start_ms: row.try_get(0)?,
        team_id: row.try_get(1)?,
        key_id: row.try_get(2)?,
        route_id: row.try_get(3)?,
        model: row.try_get(4)?,
        total: row.try_get(5)?,
        upstream: row.try_get(6)?,
    })
}

/// Merges a batch's sketches of `grain` into their stored rows, inside the writer's transaction
/// (which excludes every other writer: the read, merge and write need no lock of their own).
pub(crate) async fn merge_sketches(
    conn: &mut SqliteConnection,
    grain: Grain,
    mut sketches: BTreeMap<LatencyKey, LatencySketches>,
) -> StoreResult<()> {
    let (selects, upserts) = match grain {
        Grain::Hour => (&*HOURLY_SELECTS, &*HOURLY_UPSERTS),
        Grain::Day => (&*DAILY_SELECTS, &*DAILY_UPSERTS),
    };
    let keys: Vec<LatencyKey> = sketches.keys().cloned().collect();
    for chunk in chunks_of(&keys, MAX_SKETCH_ROWS) {
        let mut query = statement(selects.get(chunk.len())?, chunk.len() * 5);
        for key in chunk {
            query = query
                .bind(key.start_ms)
                .bind(key.team_id)
                .bind(key.key_id)
                .bind(key.route_id)
                .bind(key.model.as_str());
        }
        let rows = query.fetch_all(&mut *conn).await.map_err(store_error)?;
        for row in &rows {
            let stored = latency_row(row).map_err(store_error)?;
            let key = LatencyKey {
                start_ms: stored.start_ms,
                team_id: stored.team_id,
                key_id: stored.key_id,
                route_id: stored.route_id,
                model: stored.model,
            };
            if let Some(sketch) = sketches.get_mut(&key) {
                sketch.merge_stored(&stored.total, &stored.upstream)?;
            }
        }
    }
    let encoded: Vec<(&LatencyKey, Vec<u8>, Vec<u8>)> = sketches
        .iter()
        .map(|(k, s)| (k, s.total.encode(), s.upstream.encode()))
        .collect();
    let statements = chunks_of(&encoded, MAX_SKETCH_ROWS).map(|rows| {
        let mut query: Statement<'_> = statement(upserts.get(rows.len())?, rows.len() * 7);
        for (key, total, upstream) in rows {
            query = query
                .bind(key.start_ms)
                .bind(key.team_id)
                .bind(key.key_id)
                .bind(key.route_id)
                .bind(key.model.as_str())
                .bind(total.as_slice())
                .bind(upstream.as_slice());
        }
        Ok(query)
    });
    execute_pipelined(&mut *conn, statements).await?;
    Ok(())
}

/// The sketch rows of `grain` in `[from_ms, to_ms)` matching `filter`'s team, key, route and
/// model.
pub(crate) async fn read_sketches(
    pool: &sqlx::SqlitePool,
    grain: Grain,
    from_ms: i64,
    to_ms: i64,
    filter: &RollupFilter,
    rows: SketchRows,
) -> StoreResult<Vec<LatencyRow>> {
    let (table, time) = (grain.sketch_table(), grain.time());
    let mut sql = format!(
        "SELECT {time}, {SKETCH_COLUMNS} FROM {table} WHERE {time} >= ? AND {time} < ? AND {}",
        rows.condition()
    );
    if let Some(teams) = &filter.team_ids {
        let _ = write!(
            sql,
            " AND team_id IN ({})",
            vec!["?"; teams.len()].join(", ")
        );
    }
    if filter.key_id.is_some() {
        sql.push_str(" AND key_id = ?");
    }
    if filter.route_id.is_some() {
        sql.push_str(" AND route_id = ?");
    }
    if filter.model.is_some() {
        sql.push_str(" AND model = ?");
    }
    let mut query = sqlx::query(&sql).bind(from_ms).bind(to_ms);
    for team in filter.team_ids.iter().flatten() {
        query = query.bind(team);
    }
    if let Some(key) = filter.key_id {
        query = query.bind(key);
    }
    if let Some(route) = filter.route_id {
        query = query.bind(route);
    }
    if let Some(model) = &filter.model {
        query = query.bind(model.as_str());
    }
    let rows = query.fetch_all(pool).await.map_err(store_error)?;
    rows.iter()
        .map(|r| latency_row(r).map_err(store_error))
        .collect()
}
