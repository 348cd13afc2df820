//! Latency sketches: merged into `summary_hourly` and `summary_daily` by the usage writer, read
//! back and merged per group for percentiles.

use std::fmt::Write as _;
use std::sync::LazyLock;

use sqlx::Row as _;
use sqlx::postgres::{PgConnection, PgPool, PgRow};
use tollgate_core::sketch::LatencySketch;
use tollgate_store::rollup::{
    Grain, LatencyKey, LatencySketches, RollupSums, SketchGroups, SketchRows, StoredGroup,
    StoredSketches, SummaryAddition, group_column, group_sql, sketch_parts,
};
use tollgate_store::{Grouping, LatencyGroup, RollupFilter, StoreResult};

use crate::analytics::{Bind, Binds};
use crate::store_error;
use crate::usage::{ROLLUP_COUNTERS, bind_sum_arrays};

const SKETCH_COLUMNS: &str =
    "team_id, key_id, route_id, model, total, upstream, upstream_last_byte";

/// The advisory lock that serializes the writers' read-merge-write of sketch rows, whatever
/// instance they run in (an arbitrary constant: "tollgate latency sketches").
const SKETCH_LOCK: i64 = 0x746f_6c6c_6c61_7473;

/// Takes the sketch lock until the transaction ends. A sketch is replaced by its merge with the
/// batch, read in Rust: two writers merging into the same row at once would lose one batch, and
/// a row that does not exist yet cannot be locked with `FOR UPDATE`. Taken after the roll-up
/// upserts and before the `last_used_at` update, by every writer in that order: a writer holding
/// it waits on nothing another writer waiting for it holds.
pub(crate) async fn lock_sketches(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SKETCH_LOCK)
        .execute(conn)
        .await
        .map_err(store_error)?;
    Ok(())
}

/// The upsert of a batch's rows of `grain` (one array per column): the sketches replaced by their
/// merge, the counters of summary rows added (NULL in detailed rows, and NULL + NULL stays NULL).
fn summary_upsert(grain: Grain) -> String {
    let (table, time) = (grain.sketch_table(), grain.time());
    let counters: Vec<&str> = ROLLUP_COUNTERS.iter().map(|(c, _)| c.as_str()).collect();
    let arrays: Vec<String> = [
        "int2", "int8", "int8", "int8", "int8", "text", "bytea", "bytea", "bytea", "int8",
    ]
    .into_iter()
    .chain(ROLLUP_COUNTERS.iter().map(|(_, t)| *t))
    .enumerate()
    .map(|(i, t)| format!("${}::{t}[]", i + 1))
    .collect();
    let updates: String = counters
        .iter()
        .map(|c| format!(", {c} = {table}.{c} + EXCLUDED.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} (kind, {time}, {SKETCH_COLUMNS}, unknown_calls, {}) \
         SELECT * FROM UNNEST({}) \
         ON CONFLICT (kind, {time}, team_id, key_id, route_id, model) \
         DO UPDATE SET total = EXCLUDED.total, upstream = EXCLUDED.upstream, \
         upstream_last_byte = EXCLUDED.upstream_last_byte, \
         unknown_calls = {table}.unknown_calls + EXCLUDED.unknown_calls{updates}",
        counters.join(", "),
        arrays.join(", ")
    )
}

static HOURLY_UPSERT: LazyLock<String> = LazyLock::new(|| summary_upsert(Grain::Hour));
static DAILY_UPSERT: LazyLock<String> = LazyLock::new(|| summary_upsert(Grain::Day));

/// Merges a batch's sketches of `grain` (sorted by key) into their stored rows: one look-up
/// and one upsert over arrays, each stored blob decoded once, into the batch's sketch. The
/// caller holds the sketch lock ([`lock_sketches`]).
pub(crate) async fn merge_sketches(
    conn: &mut PgConnection,
    grain: Grain,
    mut sketches: Vec<(LatencyKey<'_>, SummaryAddition)>,
) -> StoreResult<()> {
    if sketches.is_empty() {
        return Ok(());
    }
    let (table, time) = (grain.sketch_table(), grain.time());
    let kinds: Vec<i16> = sketches.iter().map(|(k, _)| k.rows().kind()).collect();
    let starts: Vec<i64> = sketches.iter().map(|(k, _)| k.start_ms).collect();
    let teams: Vec<i64> = sketches.iter().map(|(k, _)| k.team_id).collect();
    let key_ids: Vec<i64> = sketches.iter().map(|(k, _)| k.key_id).collect();
    let routes: Vec<i64> = sketches.iter().map(|(k, _)| k.route_id).collect();
    let models: Vec<&str> = sketches.iter().map(|(k, _)| k.model).collect();
    // Each stored row answered with its key's position (from 1) in the arrays.
    let rows = sqlx::query(&format!(
        "SELECT k.position, l.total, l.upstream, l.upstream_last_byte \
         FROM UNNEST($1::int2[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::text[]) \
         WITH ORDINALITY AS k (kind, {time}, team_id, key_id, route_id, model, position) \
         JOIN {table} AS l USING (kind, {time}, team_id, key_id, route_id, model)"
    ))
    .bind(&kinds)
    .bind(&starts)
    .bind(&teams)
    .bind(&key_ids)
    .bind(&routes)
    .bind(&models)
    .fetch_all(&mut *conn)
    .await
    .map_err(store_error)?;
    for row in &rows {
        let position: i64 = row.try_get(0).map_err(store_error)?;
        let stored = stored_at(row, 1).map_err(store_error)?;
        if let Some((_, sketch)) = usize::try_from(position - 1)
            .ok()
            .and_then(|p| sketches.get_mut(p))
        {
            sketch.sketches.merge_stored(stored)?;
        }
    }
    let encoded = |sketch: fn(&LatencySketches) -> &LatencySketch| -> Vec<Vec<u8>> {
        sketches
            .iter()
            .map(|(_, s)| sketch(&s.sketches).encode())
            .collect()
    };
    let totals = encoded(|s| &s.total);
    let upstreams = encoded(|s| &s.upstream);
    let last_bytes = encoded(|s| &s.upstream_last_byte);
    let unknown: Vec<Option<i64>> = sketches
        .iter()
        .map(|(_, s)| s.sums.as_ref().map(|s| s.unknown_calls))
        .collect();
    let sums: Vec<Option<&RollupSums>> = sketches
        .iter()
        .map(|(_, s)| s.sums.as_ref().map(|s| &s.rollup))
        .collect();
    let query = sqlx::query(match grain {
        Grain::Hour => &HOURLY_UPSERT,
        Grain::Day => &DAILY_UPSERT,
    })
    .bind(&kinds)
    .bind(&starts)
    .bind(&teams)
    .bind(&key_ids)
    .bind(&routes)
    .bind(&models)
    .bind(&totals)
    .bind(&upstreams)
    .bind(&last_bytes)
    .bind(&unknown);
    bind_sum_arrays(query, &sums)
        .execute(&mut *conn)
        .await
        .map_err(store_error)?;
    Ok(())
}

/// The sketches of the calls matching `filter` (not its status class: see
/// `sketches_answer`), merged per group of `grouping`, only of `groups` when given (the
/// `(bucket, label)` of groups of a key, route, team or model grouping). One statement over the
/// range's parts: whole days from `summary_daily`, the hours around them from `summary_hourly`,
/// of the fewest rows that answer ([`SketchRows`]).
pub(crate) async fn read_sketches(
    pool: &PgPool,
    filter: &RollupFilter,
    grouping: Grouping,
    groups: Option<&[(i64, String)]>,
) -> StoreResult<Vec<LatencyGroup>> {
    let mut binds = Binds::default();
    let mut dims = format!(
        " AND {}",
        SketchRows::for_query(filter, grouping).condition()
    );
    if let Some(teams) = &filter.team_ids {
        let mark = binds.push(Bind::Ints(teams.clone()));
        let _ = write!(dims, " AND team_id = ANY({mark})");
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
        let mark = binds.push(if grouping == Grouping::Model {
            Bind::Texts(groups.iter().map(|(_, label)| label.clone()).collect())
        } else {
            Bind::Ints(groups.iter().map(|(bucket, _)| *bucket).collect())
        });
        let _ = write!(dims, " AND {column} = ANY({mark})");
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
        "SELECT bucket, label, string_agg(total, ''::bytea), string_agg(upstream, ''::bytea), \
         string_agg(upstream_last_byte, ''::bytea) FROM ({}) AS parts GROUP BY bucket, label",
        parts.join(" UNION ALL ")
    );
    let rows = binds
        .apply(sqlx::query(&sql))
        .fetch_all(pool)
        .await
        .map_err(store_error)?;
    let mut merged = SketchGroups::new(grouping);
    for row in &rows {
        let (bucket, label, stored) = group_of(row).map_err(store_error)?;
        merged.add(bucket, label, stored)?;
    }
    Ok(merged.finish())
}

/// A group as read: its bucket, label and runs of stored sketches, borrowed from the row.
fn group_of(row: &PgRow) -> Result<StoredGroup<'_>, sqlx::Error> {
    Ok((row.try_get(0)?, row.try_get(1)?, stored_at(row, 2)?))
}

/// The three sketch columns of `row` from column `first` on: total, first byte, last byte.
fn stored_at(row: &PgRow, first: usize) -> Result<StoredSketches<'_>, sqlx::Error> {
    Ok(StoredSketches {
        total: row.try_get(first)?,
        upstream: row.try_get(first + 1)?,
        upstream_last_byte: row.try_get(first + 2)?,
    })
}
