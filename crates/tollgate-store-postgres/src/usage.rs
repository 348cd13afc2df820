//! Usage events and their hourly and daily roll-ups. Each step of a batch is one statement over arrays
//! (`UNNEST`), so a batch costs a handful of round trips whatever its size.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::Postgres;
use sqlx::postgres::{PgArguments, PgConnection};
use sqlx::query::Query;
use tollgate_core::usage::HISTOGRAM_LEN;
use tollgate_core::{KeyHash, UsageEvent, UsageSource};
use tollgate_store::{HourlyRollup, StoreError, StoreResult, UsageQueries};
use uuid::Uuid;

use tollgate_store::rollup::{BatchSums, Grain, RollupKey, RollupSums, daily_rollups};

use crate::binary_copy::BinaryRows;
use crate::rows::{event_from_row, rollup_from_row};
use crate::sketches::{lock_sketches, merge_sketches};
use crate::{PostgresStore, store_error};
use tollgate_store_sql::HIST_COLUMNS;

// The schema has one column per histogram bucket, h00 to h23.
const _: () = assert!(
    HISTOGRAM_LEN == 24,
    "usage_hourly and usage_daily have 24 histogram columns"
);

pub(crate) const EVENT_COLUMNS: &str = "event_id, ts, key_id, key_hash, team_id, route_id, route, method, \
     path, status, latency_us, upstream_latency_us, client_ip, user_agent, model, prompt_tokens, \
     completion_tokens, total_tokens, cached_tokens, reasoning_tokens, estimated, cost_usd, error, \
     source, request_id, attempts, priced, upstream_last_byte_us";

/// The fields of an event row in `COPY`, as many as [`EVENT_COLUMNS`] names.
const EVENT_FIELDS: i16 = 28;

/// Copies a batch of events, [`EVENT_COLUMNS`] of each, in binary (`binary_copy.rs`).
static COPY_EVENTS: LazyLock<String> =
    LazyLock::new(|| format!("COPY usage_events ({EVENT_COLUMNS}) FROM STDIN (FORMAT binary)"));

/// A batch holding stored events is copied to this table first (the columns of `usage_events`
/// without its constraints, gone at the transaction's end), then inserted from it skipping them.
static CREATE_BATCH_TABLE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "CREATE TEMPORARY TABLE usage_events_batch ON COMMIT DROP AS \
         SELECT {EVENT_COLUMNS} FROM usage_events WITH NO DATA"
    )
});
static COPY_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!("COPY usage_events_batch ({EVENT_COLUMNS}) FROM STDIN (FORMAT binary)")
});
/// The batch's new events, in id order (the order rows are locked in); answers their ids.
static INSERT_FROM_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO usage_events ({EVENT_COLUMNS}) SELECT {EVENT_COLUMNS} \
         FROM usage_events_batch ORDER BY event_id \
         ON CONFLICT (event_id, ts) DO NOTHING RETURNING event_id"
    )
});

/// Records the ids of reported events (one array of ids, one of times); returns those that were
/// new. `usage_events` can only be unique per (event_id, ts) (migration 0006), and a reporter may
/// retry an event with another ts: this table keeps such a retry from being stored twice.
const INSERT_REPORTED_IDS: &str = "INSERT INTO usage_reported_ids (event_id, ts) \
     SELECT * FROM UNNEST($1::uuid[], $2::int8[]) \
     ON CONFLICT (event_id) DO NOTHING RETURNING event_id";

/// The dimensions of a roll-up row after its time column (`hour` or `day`).
const ROLLUP_DIMENSIONS: &str = "team_id, key_id, route_id, model, status_class";
const ROLLUP_KEY_COLUMNS: &str = "hour, team_id, key_id, route_id, model, status_class";
const ROLLUP_SUM_COLUMNS: [(&str, &str); 11] = [
    ("calls", "int8"),
    ("errors", "int8"),
    ("latency_sum_us", "int8"),
    ("prompt_tokens", "int8"),
    ("completion_tokens", "int8"),
    ("total_tokens", "int8"),
    ("cached_tokens", "int8"),
    ("reasoning_tokens", "int8"),
    ("estimated_calls", "int8"),
    ("cost_usd", "float8"),
    ("unpriced_calls", "int8"),
];

/// Every counter column of the roll-ups with its array type, in bind order: the sums, then the
/// histogram.
pub(crate) static ROLLUP_COUNTERS: LazyLock<Vec<(String, &'static str)>> = LazyLock::new(|| {
    ROLLUP_SUM_COLUMNS
        .iter()
        .map(|(c, t)| ((*c).to_owned(), *t))
        .chain(HIST_COLUMNS.iter().map(|c| (c.clone(), "int8")))
        .collect()
});

/// Adds a batch of in-memory aggregates (one array per column) to their rows of `table`, whose
/// time column is `time`.
fn rollup_upsert(table: &str, time: &str) -> String {
    let counters: Vec<&str> = ROLLUP_COUNTERS.iter().map(|(c, _)| c.as_str()).collect();
    let arrays: Vec<String> = ["int8", "int8", "int8", "int8", "text", "int2"]
        .into_iter()
        .chain(ROLLUP_COUNTERS.iter().map(|(_, t)| *t))
        .enumerate()
        .map(|(i, t)| format!("${}::{t}[]", i + 1))
        .collect();
    let updates: Vec<String> = counters
        .iter()
        .map(|c| format!("{c} = {table}.{c} + EXCLUDED.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} ({time}, {ROLLUP_DIMENSIONS}, {}) SELECT * FROM UNNEST({}) \
         ON CONFLICT ({time}, {ROLLUP_DIMENSIONS}) DO UPDATE SET {}",
        counters.join(", "),
        arrays.join(", "),
        updates.join(", ")
    )
}

static HOURLY_UPSERT: LazyLock<String> = LazyLock::new(|| rollup_upsert("usage_hourly", "hour"));
static DAILY_UPSERT: LazyLock<String> = LazyLock::new(|| rollup_upsert("usage_daily", "day"));

/// Adds the in-memory aggregates to their roll-up rows with `upsert` (`HOURLY_UPSERT` or
/// `DAILY_UPSERT`) in one statement, locking the rows in key order.
async fn upsert_rollups(
    conn: &mut PgConnection,
    upsert: &str,
    rollups: &BTreeMap<RollupKey, RollupSums>,
) -> StoreResult<()> {
    if rollups.is_empty() {
        return Ok(());
    }
    let keys: Vec<&RollupKey> = rollups.keys().collect();
    let query = sqlx::query(upsert)
        .bind(keys.iter().map(|k| k.start_ms).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.team_id).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.key_id).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.route_id).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.model.as_str()).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.status_class).collect::<Vec<_>>());
    let sums: Vec<Option<&RollupSums>> = rollups.values().map(Some).collect();
    let query = bind_sum_arrays(query, &sums);
    query.execute(conn).await.map_err(store_error)?;
    Ok(())
}

/// Binds the counters of roll-up rows, one array per column in [`ROLLUP_COUNTERS`] order, with
/// NULL for a row without them (a detailed row of the summary tables).
pub(crate) fn bind_sum_arrays<'q>(
    mut query: Query<'q, Postgres, PgArguments>,
    sums: &[Option<&RollupSums>],
) -> Query<'q, Postgres, PgArguments> {
    let ints =
        |f: fn(&RollupSums) -> i64| -> Vec<Option<i64>> { sums.iter().map(|s| s.map(f)).collect() };
    query = query
        .bind(ints(|s| s.calls))
        .bind(ints(|s| s.errors))
        .bind(ints(|s| s.latency_sum_us))
        .bind(ints(|s| s.tokens.prompt))
        .bind(ints(|s| s.tokens.completion))
        .bind(ints(|s| s.tokens.total))
        .bind(ints(|s| s.tokens.cached))
        .bind(ints(|s| s.tokens.reasoning))
        .bind(ints(|s| s.estimated_calls))
        .bind(
            sums.iter()
                .map(|s| s.map(|s| s.cost_usd))
                .collect::<Vec<_>>(),
        )
        .bind(ints(|s| s.unpriced_calls));
    for bucket in 0..HISTOGRAM_LEN {
        query = query.bind(
            sums.iter()
                .map(|s| s.map(|s| s.hist.get(bucket).copied().unwrap_or(0)))
                .collect::<Vec<_>>(),
        );
    }
    query
}

/// An event with its key and team filled in from its key hash where needed.
struct Attributed<'a> {
    event: &'a UsageEvent,
    key_id: Option<i64>,
    team_id: Option<i64>,
}

impl PostgresStore {
    /// Writes a batch in one transaction, inserting its events as `inserting` says; the number
    /// of events that were new, or `None` when `COPY` found one stored already (nothing written).
    async fn write_batch(
        &self,
        events: &[UsageEvent],
        inserting: Inserting,
    ) -> StoreResult<Option<u64>> {
        // A repeated id within the batch is the same event: keep its first copy.
        let mut seen = HashSet::with_capacity(events.len());
        let batch: Vec<&UsageEvent> = events.iter().filter(|e| seen.insert(e.event_id)).collect();
        // Outside the transaction: a partition is made once per day, not once per batch.
        self.ensure_partitions_for(batch.iter().map(|e| e.ts_ms))
            .await?;
        // One transaction per batch: the writer keeps two batches in flight, so two run at once
        // on two connections. (Each batch split in two transactions as well ran four at once on
        // two cores, the halves adding to the same roll-up rows twice: 24 % slower.)
        let mut tx = self.pool.begin().await.map_err(store_error)?;

        let mut hashes: Vec<&str> = batch
            .iter()
            .filter(|e| e.key_id.is_none())
            .filter_map(|e| e.key_hash.as_ref().map(KeyHash::as_str))
            .collect();
        hashes.sort_unstable();
        hashes.dedup();
        let owners: HashMap<String, (i64, i64)> = if hashes.is_empty() {
            HashMap::new()
        } else {
            sqlx::query_as::<_, (String, i64, i64)>(
                "SELECT key_hash, id, team_id FROM api_keys WHERE key_hash = ANY($1)",
            )
            .bind(&hashes)
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|(hash, id, team)| (hash, (id, team)))
            .collect()
        };
        let mut attributed: Vec<Attributed<'_>> = batch
            .iter()
            .map(|&event| {
                let owner = match (event.key_id, &event.key_hash) {
                    (None, Some(hash)) => owners.get(hash.as_str()).copied(),
                    _ => None,
                };
                Attributed {
                    event,
                    key_id: event.key_id.or(owner.map(|o| o.0)),
                    team_id: event.team_id.or(owner.map(|o| o.1)),
                }
            })
            .collect();
        // Rows are locked in id order, so that writers sharing events never wait on each other
        // in a cycle.
        attributed.sort_unstable_by_key(|a| a.event.event_id);

        // Reported events whose id is already stored (under any ts) are replays: drop them.
        let reported: Vec<&UsageEvent> = attributed
            .iter()
            .map(|a| a.event)
            .filter(|e| e.source != UsageSource::Gateway)
            .collect();
        if !reported.is_empty() {
            let fresh: Vec<Uuid> = sqlx::query_scalar(INSERT_REPORTED_IDS)
                .bind(reported.iter().map(|e| e.event_id).collect::<Vec<_>>())
                .bind(reported.iter().map(|e| e.ts_ms).collect::<Vec<_>>())
                .fetch_all(&mut *tx)
                .await
                .map_err(store_error)?;
            let fresh: HashSet<Uuid> = fresh.into_iter().collect();
            attributed.retain(|a| {
                a.event.source == UsageSource::Gateway || fresh.contains(&a.event.event_id)
            });
        }

        let a = &attributed;
        let inserted: HashSet<Uuid> = match inserting {
            Inserting::Copy => match copy_events(&mut tx, &COPY_EVENTS, a).await {
                Ok(()) => a.iter().map(|a| a.event.event_id).collect(),
                Err(e)
                    if e.as_database_error()
                        .is_some_and(|d| d.is_unique_violation()) =>
                {
                    tx.rollback().await.map_err(store_error)?;
                    return Ok(None);
                }
                Err(e) => return Err(store_error(e)),
            },
            Inserting::SkippingStored => insert_skipping_stored(&mut tx, a).await?,
        };

        // Sorted: every instance locks roll-up and key rows in the same order, so concurrent
        // batches wait for each other instead of deadlocking.
        let BatchSums {
            rollups,
            sketches,
            last_used,
        } = BatchSums::of(
            attributed
                .iter()
                .filter(|a| inserted.contains(&a.event.event_id))
                .map(|a| (a.event, a.key_id, a.team_id)),
        );

        // Both grains in the one transaction, hourly rows before daily ones in every batch: a
        // reader never sees a batch in one and not the other, and the lock order stays the same.
        let daily = daily_rollups(&rollups);
        upsert_rollups(&mut tx, &HOURLY_UPSERT, &rollups).await?;
        upsert_rollups(&mut tx, &DAILY_UPSERT, &daily).await?;
        if !sketches.is_empty() {
            // After the roll-ups and before the keys: see `lock_sketches` for the order.
            lock_sketches(&mut tx).await?;
            let (hourly_sketches, daily_sketches) = sketches.into_grains(&rollups);
            merge_sketches(&mut tx, Grain::Hour, hourly_sketches).await?;
            merge_sketches(&mut tx, Grain::Day, daily_sketches).await?;
        }

        if !last_used.is_empty() {
            sqlx::query(
                "UPDATE api_keys AS k SET last_used_at = v.ts \
                 FROM UNNEST($1::int8[], $2::int8[]) AS v (id, ts) \
                 WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.ts)",
            )
            .bind(last_used.keys().copied().collect::<Vec<_>>())
            .bind(last_used.values().copied().collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }

        tx.commit().await.map_err(store_error)?;
        Ok(Some(u64::try_from(inserted.len()).unwrap_or(u64::MAX)))
    }
}

/// Inserts the events that are not stored yet; answers their ids.
async fn insert_skipping_stored(
    conn: &mut PgConnection,
    events: &[Attributed<'_>],
) -> StoreResult<HashSet<Uuid>> {
    sqlx::query(&CREATE_BATCH_TABLE)
        .execute(&mut *conn)
        .await
        .map_err(store_error)?;
    copy_events(&mut *conn, &COPY_BATCH, events)
        .await
        .map_err(store_error)?;
    let inserted: Vec<Uuid> = sqlx::query_scalar(&INSERT_FROM_BATCH)
        .fetch_all(conn)
        .await
        .map_err(store_error)?;
    Ok(inserted.into_iter().collect())
}

/// How a batch's events are inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inserting {
    /// `COPY` in binary: about twice as fast as an `INSERT` that skips conflicts (100,000 events:
    /// 0.53 against 1.15 s), but refused whole when one event is stored already.
    Copy,
    /// `COPY` to a temporary table, then `INSERT … ON CONFLICT DO NOTHING` from it: a batch of
    /// which some events are stored already (one replayed after a commit whose answer was lost).
    SkippingStored,
}

/// Sends the events with `copy` ([`COPY_EVENTS`] or [`COPY_BATCH`]). An error aborts the
/// transaction: a unique violation where one of them is stored already.
async fn copy_events(
    conn: &mut PgConnection,
    copy: &str,
    events: &[Attributed<'_>],
) -> Result<(), sqlx::Error> {
    // About 200 bytes an event at most in the demo's mix; the buffer grows where needed.
    let mut rows = BinaryRows::with_capacity(events.len() * 256);
    for a in events {
        let e = a.event;
        rows.row(EVENT_FIELDS);
        rows.uuid(e.event_id);
        rows.int8(Some(e.ts_ms));
        rows.int8(a.key_id);
        rows.text(e.key_hash.as_ref().map(KeyHash::as_str));
        rows.int8(a.team_id);
        rows.int8(e.route_id);
        rows.text(e.route.as_deref());
        rows.text(Some(e.method.as_str()));
        rows.text(Some(e.path.as_str()));
        rows.int4(i32::from(e.status));
        rows.int8(Some(e.latency_us));
        rows.int8(e.upstream_latency_us);
        rows.text(e.client_ip.as_deref());
        rows.text(e.user_agent.as_deref());
        rows.text(e.model.as_deref());
        rows.int8(Some(e.tokens.prompt));
        rows.int8(Some(e.tokens.completion));
        rows.int8(Some(e.tokens.total));
        rows.int8(Some(e.tokens.cached));
        rows.int8(Some(e.tokens.reasoning));
        rows.bool(e.estimated);
        rows.float8(e.cost_usd.unwrap_or(0.0));
        rows.text(e.error.as_deref());
        rows.text(Some(e.source.as_str()));
        rows.text(e.request_id.as_deref());
        rows.text(e.attempts.as_deref());
        rows.bool(e.cost_usd.is_some());
        rows.int8(e.upstream_last_byte_us);
    }
    let rows = rows
        .finish()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let mut copy = conn.copy_in_raw(copy).await?;
    copy.send(rows).await?;
    copy.finish().await?;
    Ok(())
}

#[async_trait]
impl UsageQueries for PostgresStore {
    async fn write_usage(&self, events: &[UsageEvent]) -> StoreResult<u64> {
        if events.is_empty() {
            return Ok(0);
        }
        if let Some(written) = self.write_batch(events, Inserting::Copy).await? {
            return Ok(written);
        }
        // Some event of the batch is stored already: the batch again, skipping those.
        self.write_batch(events, Inserting::SkippingStored)
            .await?
            .ok_or_else(|| StoreError::Internal("an insert skipping conflicts conflicted".into()))
    }
    async fn count_usage(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM usage_events")
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)
    }

    async fn recent_usage(&self, limit: i64) -> StoreResult<Vec<UsageEvent>> {
        let columns = EVENT_COLUMNS.replacen("event_id", "event_id::text AS event_id", 1);
        let rows = sqlx::query(&format!(
            "SELECT {columns} FROM usage_events ORDER BY ts DESC, id DESC LIMIT $1"
        ))
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn rollups(&self, from_ms: i64, to_ms: i64) -> StoreResult<Vec<HourlyRollup>> {
        let counters: Vec<&str> = ROLLUP_COUNTERS.iter().map(|(c, _)| c.as_str()).collect();
        let rows = sqlx::query(&format!(
            "SELECT {ROLLUP_KEY_COLUMNS}, {} FROM usage_hourly WHERE hour >= $1 AND hour < $2 \
             ORDER BY hour, team_id, key_id, route_id, model COLLATE \"C\", status_class",
            counters.join(", ")
        ))
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(rollup_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copied_row_has_a_field_per_event_column() {
        assert_eq!(
            EVENT_COLUMNS.split(',').count(),
            usize::try_from(EVENT_FIELDS).unwrap()
        );
    }
}
