//! Latency sketches: merged into `latency_hourly` and `latency_daily` by the usage writer, read
//! back and merged per group for percentiles.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sqlx::Row as _;
use sqlx::postgres::{PgConnection, PgPool, PgRow};
use tollgate_store::rollup::{Grain, LatencyKey, LatencyRow, LatencySketches, SketchRows};
use tollgate_store::{RollupFilter, StoreResult};

use crate::store_error;

const SKETCH_COLUMNS: &str = "team_id, key_id, route_id, model, total, upstream";

/// The advisory lock that serializes the writers' read-merge-write of sketch rows, whatever
/// instance they run in (an arbitrary constant: "tollgate latency sketches").
const SKETCH_LOCK: i64 = 0x746f_6c6c_6c61_7473;

/// A sketch row as read.
fn latency_row(row: &PgRow) -> Result<LatencyRow, sqlx::Error> {
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

/// Merges a batch's sketches of `grain` into their stored rows: one look-up and one upsert over
/// arrays. The caller holds the sketch lock ([`lock_sketches`]).
pub(crate) async fn merge_sketches(
    conn: &mut PgConnection,
    grain: Grain,
    mut sketches: BTreeMap<LatencyKey, LatencySketches>,
) -> StoreResult<()> {
    let (table, time) = (grain.sketch_table(), grain.time());
    let keys: Vec<&LatencyKey> = sketches.keys().collect();
    let starts: Vec<i64> = keys.iter().map(|k| k.start_ms).collect();
    let teams: Vec<i64> = keys.iter().map(|k| k.team_id).collect();
    let key_ids: Vec<i64> = keys.iter().map(|k| k.key_id).collect();
    let routes: Vec<i64> = keys.iter().map(|k| k.route_id).collect();
    let models: Vec<String> = keys.iter().map(|k| k.model.clone()).collect();
    let rows = sqlx::query(&format!(
        "SELECT l.{time}, l.team_id, l.key_id, l.route_id, l.model, l.total, l.upstream \
         FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::text[]) \
         AS k ({time}, team_id, key_id, route_id, model) \
         JOIN {table} AS l USING ({time}, team_id, key_id, route_id, model)"
    ))
    .bind(&starts)
    .bind(&teams)
    .bind(&key_ids)
    .bind(&routes)
    .bind(&models)
    .fetch_all(&mut *conn)
    .await
    .map_err(store_error)?;
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
    let totals: Vec<Vec<u8>> = sketches.values().map(|s| s.total.encode()).collect();
    let upstreams: Vec<Vec<u8>> = sketches.values().map(|s| s.upstream.encode()).collect();
    sqlx::query(&format!(
        "INSERT INTO {table} ({time}, {SKETCH_COLUMNS}) \
         SELECT * FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::text[], \
         $6::bytea[], $7::bytea[]) \
         ON CONFLICT ({time}, team_id, key_id, route_id, model) \
         DO UPDATE SET total = EXCLUDED.total, upstream = EXCLUDED.upstream"
    ))
    .bind(&starts)
    .bind(&teams)
    .bind(&key_ids)
    .bind(&routes)
    .bind(&models)
    .bind(&totals)
    .bind(&upstreams)
    .execute(&mut *conn)
    .await
    .map_err(store_error)?;
    Ok(())
}

/// The sketch rows of `grain` in `[from_ms, to_ms)` matching `filter`'s team, key, route and
/// model.
pub(crate) async fn read_sketches(
    pool: &PgPool,
    grain: Grain,
    from_ms: i64,
    to_ms: i64,
    filter: &RollupFilter,
    rows: SketchRows,
) -> StoreResult<Vec<LatencyRow>> {
    let (table, time) = (grain.sketch_table(), grain.time());
    let mut sql = format!(
        "SELECT {time}, {SKETCH_COLUMNS} FROM {table} WHERE {time} >= $1 AND {time} < $2 AND {}",
        rows.condition()
    );
    let mut n = 2;
    let mut next = || {
        n += 1;
        n
    };
    if filter.team_ids.is_some() {
        let _ = write!(sql, " AND team_id = ANY(${}::int8[])", next());
    }
    if filter.key_id.is_some() {
        let _ = write!(sql, " AND key_id = ${}", next());
    }
    if filter.route_id.is_some() {
        let _ = write!(sql, " AND route_id = ${}", next());
    }
    if filter.model.is_some() {
        let _ = write!(sql, " AND model = ${}", next());
    }
    let mut query = sqlx::query(&sql).bind(from_ms).bind(to_ms);
    if let Some(teams) = &filter.team_ids {
        query = query.bind(teams.clone());
    }
    if let Some(key) = filter.key_id {
        query = query.bind(key);
    }
    if let Some(route) = filter.route_id {
        query = query.bind(route);
    }
    if let Some(model) = &filter.model {
        query = query.bind(model.clone());
    }
    let rows = query.fetch_all(pool).await.map_err(store_error)?;
    rows.iter()
        .map(|r| latency_row(r).map_err(store_error))
        .collect()
}
