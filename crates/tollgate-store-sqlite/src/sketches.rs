//! Latency sketches: merged into `summary_hourly` and `summary_daily` by the usage writer, read
//! back and merged per group for percentiles.

use std::fmt::Write as _;
use std::sync::LazyLock;

use sqlx::Row as _;
use sqlx::sqlite::SqliteConnection;
use tollgate_store::rollup::{
    Grain, LatencyKey, SketchGroups, SketchRows, StoredGroup, StoredSketches, SummaryAddition,
    group_column, group_sql, sketch_parts,
};
use tollgate_store::{Grouping, LatencyGroup, RollupFilter, StoreResult};

use crate::analytics::{Bind, NumberedBinds, bind_all};
use crate::store_error;
use crate::usage::{
    ROLLUP_COUNTER_COUNT, ROLLUP_COUNTERS, Statement, StatementsBySize, bind_sums, chunks_of,
    statement, values_list,
};

/// Most rows per look-up or upsert: 128 × 44 binds, within SQLite's 32,766.
const MAX_SKETCH_ROWS: usize = 128;
const SKETCH_COLUMNS: &str =
    "team_id, key_id, route_id, model, total, upstream, upstream_last_byte";

/// The look-up of the stored sketches of `rows` keys of `grain`, each key given with its
/// position in the batch's list, which the answer names instead of the key.
fn select_sql(grain: Grain, rows: usize) -> String {
    let (table, time) = (grain.sketch_table(), grain.time());
    // The keys as a VALUES list joined to the table (CROSS JOIN keeps that order): SQLite seeks
    // each key in the primary key. A row value `IN (VALUES …)` would scan the whole table.
    format!(
        "SELECT k.column7, l.total, l.upstream, l.upstream_last_byte \
         FROM (VALUES {}) AS k CROSS JOIN {table} AS l \
         ON l.kind = k.column1 AND l.{time} = k.column2 AND l.team_id = k.column3 \
         AND l.key_id = k.column4 AND l.route_id = k.column5 AND l.model = k.column6",
        values_list(rows, 7)
    )
}

/// The upsert replacing the sketches of `rows` keys of `grain` with merged ones and adding the
/// batch's counters to those of the summary rows (NULL in detailed rows, and NULL + NULL stays
/// NULL).
fn upsert_sql(grain: Grain, rows: usize) -> String {
    let (table, time) = (grain.sketch_table(), grain.time());
    let counters = ROLLUP_COUNTERS.join(", ");
    let updates: String = ROLLUP_COUNTERS
        .iter()
        .map(|c| format!(", {c} = {table}.{c} + excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} (kind, {time}, {SKETCH_COLUMNS}, unknown_calls, {counters}) \
         VALUES {} ON CONFLICT (kind, {time}, team_id, key_id, route_id, model) \
         DO UPDATE SET total = excluded.total, upstream = excluded.upstream, \
         upstream_last_byte = excluded.upstream_last_byte, \
         unknown_calls = {table}.unknown_calls + excluded.unknown_calls{updates}",
        values_list(rows, UPSERT_BINDS)
    )
}

/// Binds per upserted row: the kind and the key (6), the three sketches, the calls of unknown
/// status and the roll-up counters.
const UPSERT_BINDS: usize = 10 + ROLLUP_COUNTER_COUNT;

static HOURLY_SELECTS: LazyLock<StatementsBySize> =
    LazyLock::new(|| StatementsBySize::new(|rows| select_sql(Grain::Hour, rows), MAX_SKETCH_ROWS));
static DAILY_SELECTS: LazyLock<StatementsBySize> =
    LazyLock::new(|| StatementsBySize::new(|rows| select_sql(Grain::Day, rows), MAX_SKETCH_ROWS));
static HOURLY_UPSERTS: LazyLock<StatementsBySize> =
    LazyLock::new(|| StatementsBySize::new(|rows| upsert_sql(Grain::Hour, rows), MAX_SKETCH_ROWS));
static DAILY_UPSERTS: LazyLock<StatementsBySize> =
    LazyLock::new(|| StatementsBySize::new(|rows| upsert_sql(Grain::Day, rows), MAX_SKETCH_ROWS));

/// Adds to a batch's sketches of `grain` (sorted by key) what their rows already hold, inside
/// the writer's transaction (which excludes every other writer: the read, merge and write need
/// no lock of their own). Each stored blob is decoded once, into the batch's sketch.
pub(crate) async fn add_stored_sketches(
    conn: &mut SqliteConnection,
    grain: Grain,
    sketches: &mut [(LatencyKey<'_>, SummaryAddition)],
) -> StoreResult<()> {
    let selects = match grain {
        Grain::Hour => &*HOURLY_SELECTS,
        Grain::Day => &*DAILY_SELECTS,
    };
    let mut first = 0;
    let keys: Vec<LatencyKey<'_>> = sketches.iter().map(|(k, _)| *k).collect();
    for chunk in chunks_of(&keys, MAX_SKETCH_ROWS) {
        let mut query = statement(selects.get(chunk.len())?, chunk.len() * 7);
        for (i, key) in chunk.iter().enumerate() {
            query = query
                .bind(key.rows().kind())
                .bind(key.start_ms)
                .bind(key.team_id)
                .bind(key.key_id)
                .bind(key.route_id)
                .bind(key.model)
                .bind(i64::try_from(first + i).unwrap_or(i64::MAX));
        }
        first += chunk.len();
        let rows = query.fetch_all(&mut *conn).await.map_err(store_error)?;
        for row in &rows {
            let position: i64 = row.try_get(0).map_err(store_error)?;
            let stored = stored_at(row, 1).map_err(store_error)?;
            if let Some((_, sketch)) = usize::try_from(position)
                .ok()
                .and_then(|p| sketches.get_mut(p))
            {
                sketch.sketches.merge_stored(stored)?;
            }
        }
    }
    Ok(())
}

/// The upserts writing a batch's merged sketches of `grain` (see [`add_stored_sketches`]), to
/// run in the writer's pipeline: each chunk is encoded while SQLite runs the statement before.
pub(crate) fn upsert_statements<'q>(
    grain: Grain,
    sketches: &'q [(LatencyKey<'q>, SummaryAddition)],
) -> impl Iterator<Item = StoreResult<Statement<'q>>> {
    let upserts = match grain {
        Grain::Hour => &*HOURLY_UPSERTS,
        Grain::Day => &*DAILY_UPSERTS,
    };
    chunks_of(sketches, MAX_SKETCH_ROWS).map(move |rows| {
        let mut query: Statement<'q> =
            statement(upserts.get(rows.len())?, rows.len() * UPSERT_BINDS);
        for (key, row) in rows {
            let sums = row.sums.as_ref();
            query = query
                .bind(key.rows().kind())
                .bind(key.start_ms)
                .bind(key.team_id)
                .bind(key.key_id)
                .bind(key.route_id)
                .bind(key.model)
                .bind(row.sketches.total.encode())
                .bind(row.sketches.upstream.encode())
                .bind(row.sketches.upstream_last_byte.encode())
                .bind(sums.map(|s| s.unknown_calls));
            query = bind_sums(query, sums.map(|s| &s.rollup));
        }
        Ok(query)
    })
}

/// The sketches of the calls matching `filter` (not its status class: see
/// `sketches_answer`), merged per group of `grouping`, only of `groups` when given (the
/// `(bucket, label)` of groups of a key, route, team or model grouping). One statement over the
/// range's parts: whole days from `summary_daily`, the hours around them from `summary_hourly`,
/// of the fewest rows that answer ([`SketchRows`]).
pub(crate) async fn read_sketches(
    pool: &sqlx::SqlitePool,
    filter: &RollupFilter,
    grouping: Grouping,
    groups: Option<&[(i64, String)]>,
) -> StoreResult<Vec<LatencyGroup>> {
    let mut binds = NumberedBinds::default();
    let mut dims = format!(
        " AND {}",
        SketchRows::for_query(filter, grouping).condition()
    );
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
        let mark = binds.push(Bind::Text(model.clone()));
        let _ = write!(dims, " AND model = {mark}");
    }
    if let (Some(groups), Some(column)) = (groups, group_column(grouping)) {
        let marks: Vec<String> = groups
            .iter()
            .map(|(bucket, label)| {
                binds.push(if grouping == Grouping::Model {
                    Bind::Text(label.clone())
                } else {
                    Bind::Int(*bucket)
                })
            })
            .collect();
        let _ = write!(dims, " AND {column} IN ({})", marks.join(", "));
    }
    // One row per group: its blobs joined end to end by the database (a stored sketch says
    // where it ends), so that the rows read are as few as the groups, not one per team, day
    // and group.
    let mut parts = Vec::new();
    for part in sketch_parts(filter.from_ms, filter.to_ms, grouping) {
        let Some((bucket, label)) = group_sql(grouping, part.grain) else {
            return Ok(Vec::new());
        };
        let (table, time) = (part.grain.sketch_table(), part.grain.time());
        let from = binds.push(Bind::Int(part.from_ms));
        let to = binds.push(Bind::Int(part.to_ms));
        parts.push(format!(
            "SELECT {bucket} AS bucket, {label} AS label, total, upstream, upstream_last_byte \
             FROM {table} \
             WHERE {time} >= {from} AND {time} < {to}{dims}"
        ));
    }
    let sql = format!(
        "SELECT bucket, label, CAST(group_concat(total, '') AS BLOB), \
         CAST(group_concat(upstream, '') AS BLOB), \
         CAST(group_concat(upstream_last_byte, '') AS BLOB) \
         FROM ({}) AS parts GROUP BY bucket, label",
        parts.join(" UNION ALL ")
    );
    let query = bind_all(sqlx::query(&sql), binds.into_binds());
    let rows = query.fetch_all(pool).await.map_err(store_error)?;
    let mut merged = SketchGroups::new(grouping);
    for row in &rows {
        let (bucket, label, stored) = group_of(row).map_err(store_error)?;
        merged.add(bucket, label, stored)?;
    }
    Ok(merged.finish())
}

/// A group as read: its bucket, label and runs of stored sketches, borrowed from the row.
fn group_of(row: &sqlx::sqlite::SqliteRow) -> Result<StoredGroup<'_>, sqlx::Error> {
    Ok((row.try_get(0)?, row.try_get(1)?, stored_at(row, 2)?))
}

/// The three sketch columns of `row` from column `first` on: total, first byte, last byte.
fn stored_at(
    row: &sqlx::sqlite::SqliteRow,
    first: usize,
) -> Result<StoredSketches<'_>, sqlx::Error> {
    Ok(StoredSketches {
        total: row.try_get(first)?,
        upstream: row.try_get(first + 1)?,
        upstream_last_byte: row.try_get(first + 2)?,
    })
}
