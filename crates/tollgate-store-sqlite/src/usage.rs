//! Usage events and their hourly and daily roll-ups.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use tollgate_core::time::hour_start;
use tollgate_core::usage::HISTOGRAM_LEN;
use tollgate_core::{KeyHash, TokenUsage, UsageEvent, UsageSource};
use tollgate_store::{HourlyRollup, StoreError, StoreResult, UsageQueries};
use uuid::Uuid;

use tollgate_store::rollup::{RollupKey, RollupSums, daily_rollups};

use crate::{SqliteStore, store_error};

// The schema has one column per histogram bucket, h00 to h23.
const _: () = assert!(
    HISTOGRAM_LEN == 24,
    "usage_hourly and usage_daily have 24 histogram columns"
);

pub(crate) const EVENT_COLUMNS: &str = "event_id, ts, key_id, key_hash, team_id, route_id, route, method, \
     path, status, latency_us, upstream_latency_us, client_ip, user_agent, model, prompt_tokens, \
     completion_tokens, total_tokens, cached_tokens, reasoning_tokens, estimated, cost_usd, error, \
     source, request_id";
const EVENT_COLUMN_COUNT: usize = 25;
/// Events per multi-row INSERT: 64 × 25 binds stays far below SQLite's limit of 32766.
const INSERT_CHUNK: usize = 64;

/// Histogram column names, `h00` to `h23`.
static HIST_COLUMNS: LazyLock<Vec<String>> =
    LazyLock::new(|| (0..HISTOGRAM_LEN).map(|i| format!("h{i:02}")).collect());

/// The dimensions of a roll-up row after its time column (`hour` or `day`).
const ROLLUP_DIMENSIONS: &str = "team_id, key_id, route_id, model, status_class";
const ROLLUP_KEY_COLUMNS: &str = "hour, team_id, key_id, route_id, model, status_class";
const ROLLUP_SUM_COLUMNS: [&str; 10] = [
    "calls",
    "errors",
    "latency_sum_us",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "estimated_calls",
    "cost_usd",
];

/// Every counter column of the roll-ups, in bind order: the sums, then the histogram.
static ROLLUP_COUNTERS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ROLLUP_SUM_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(HIST_COLUMNS.iter().cloned())
        .collect()
});

/// The upsert adding one in-memory aggregate to its row of `table`, whose time column is `time`.
fn rollup_upsert(table: &str, time: &str) -> String {
    let counters = ROLLUP_COUNTERS.join(", ");
    let marks = vec!["?"; 6 + ROLLUP_COUNTERS.len()].join(", ");
    let updates = ROLLUP_COUNTERS
        .iter()
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO {table} ({time}, {ROLLUP_DIMENSIONS}, {counters}) VALUES ({marks}) \
         ON CONFLICT ({time}, {ROLLUP_DIMENSIONS}) DO UPDATE SET {updates}"
    )
}

static HOURLY_UPSERT: LazyLock<String> = LazyLock::new(|| rollup_upsert("usage_hourly", "hour"));
static DAILY_UPSERT: LazyLock<String> = LazyLock::new(|| rollup_upsert("usage_daily", "day"));

/// The multi-row insert of `rows` events, returning the ids of those that were new.
fn insert_events_sql(rows: usize) -> String {
    let one = format!("({})", vec!["?"; EVENT_COLUMN_COUNT].join(", "));
    let mut sql = format!("INSERT INTO usage_events ({EVENT_COLUMNS}) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&one);
    }
    sql.push_str(" ON CONFLICT (event_id) DO NOTHING RETURNING event_id");
    sql
}

static FULL_CHUNK_INSERT: LazyLock<String> = LazyLock::new(|| insert_events_sql(INSERT_CHUNK));

/// Adds each in-memory aggregate to its roll-up row with `upsert` (`HOURLY_UPSERT` or
/// `DAILY_UPSERT`), in key order.
async fn upsert_rollups(
    conn: &mut SqliteConnection,
    upsert: &str,
    rollups: &BTreeMap<RollupKey, RollupSums>,
) -> StoreResult<()> {
    for (key, sums) in rollups {
        let mut query = sqlx::query(upsert)
            .bind(key.start_ms)
            .bind(key.team_id)
            .bind(key.key_id)
            .bind(key.route_id)
            .bind(key.model.as_str())
            .bind(key.status_class)
            .bind(sums.calls)
            .bind(sums.errors)
            .bind(sums.latency_sum_us)
            .bind(sums.tokens.prompt)
            .bind(sums.tokens.completion)
            .bind(sums.tokens.total)
            .bind(sums.tokens.cached)
            .bind(sums.tokens.reasoning)
            .bind(sums.estimated_calls)
            .bind(sums.cost_usd);
        for count in sums.hist {
            query = query.bind(count);
        }
        query.execute(&mut *conn).await.map_err(store_error)?;
    }
    Ok(())
}

/// An event with its key and team filled in from its key hash where needed.
struct Attributed<'a> {
    event: &'a UsageEvent,
    key_id: Option<i64>,
    team_id: Option<i64>,
}

pub(crate) fn event_from_row(row: &SqliteRow) -> StoreResult<UsageEvent> {
    let id: String = row.try_get("event_id").map_err(store_error)?;
    let event_id = Uuid::parse_str(&id)
        .map_err(|e| StoreError::Internal(format!("usage event id `{id}` is malformed: {e}")))?;
    let key_hash: Option<String> = row.try_get("key_hash").map_err(store_error)?;
    let key_hash = key_hash
        .map(KeyHash::try_from)
        .transpose()
        .map_err(|e| StoreError::Internal(format!("usage event {id}: {e}")))?;
    let status: i64 = row.try_get("status").map_err(store_error)?;
    let status = u16::try_from(status)
        .map_err(|_| StoreError::Internal(format!("usage event {id} has status {status}")))?;
    let source: String = row.try_get("source").map_err(store_error)?;
    let source = UsageSource::parse(&source).ok_or_else(|| {
        StoreError::Internal(format!("usage event {id} has unknown source `{source}`"))
    })?;
    Ok(UsageEvent {
        event_id,
        ts_ms: row.try_get("ts").map_err(store_error)?,
        key_id: row.try_get("key_id").map_err(store_error)?,
        key_hash,
        team_id: row.try_get("team_id").map_err(store_error)?,
        route_id: row.try_get("route_id").map_err(store_error)?,
        route: row.try_get("route").map_err(store_error)?,
        method: row.try_get("method").map_err(store_error)?,
        path: row.try_get("path").map_err(store_error)?,
        status,
        latency_us: row.try_get("latency_us").map_err(store_error)?,
        upstream_latency_us: row.try_get("upstream_latency_us").map_err(store_error)?,
        client_ip: row.try_get("client_ip").map_err(store_error)?,
        user_agent: row.try_get("user_agent").map_err(store_error)?,
        model: row.try_get("model").map_err(store_error)?,
        tokens: TokenUsage {
            prompt: row.try_get("prompt_tokens").map_err(store_error)?,
            completion: row.try_get("completion_tokens").map_err(store_error)?,
            total: row.try_get("total_tokens").map_err(store_error)?,
            cached: row.try_get("cached_tokens").map_err(store_error)?,
            reasoning: row.try_get("reasoning_tokens").map_err(store_error)?,
        },
        estimated: row.try_get("estimated").map_err(store_error)?,
        cost_usd: row.try_get("cost_usd").map_err(store_error)?,
        error: row.try_get("error").map_err(store_error)?,
        source,
        request_id: row.try_get("request_id").map_err(store_error)?,
    })
}

fn rollup_from_row(row: &SqliteRow) -> StoreResult<HourlyRollup> {
    let mut latency_hist = [0; HISTOGRAM_LEN];
    for (slot, column) in latency_hist.iter_mut().zip(HIST_COLUMNS.iter()) {
        *slot = row.try_get(column.as_str()).map_err(store_error)?;
    }
    Ok(HourlyRollup {
        hour_ms: row.try_get("hour").map_err(store_error)?,
        team_id: row.try_get("team_id").map_err(store_error)?,
        key_id: row.try_get("key_id").map_err(store_error)?,
        route_id: row.try_get("route_id").map_err(store_error)?,
        model: row.try_get("model").map_err(store_error)?,
        status_class: row.try_get("status_class").map_err(store_error)?,
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

#[async_trait]
impl UsageQueries for SqliteStore {
    async fn write_usage(&self, events: &[UsageEvent]) -> StoreResult<u64> {
        if events.is_empty() {
            return Ok(0);
        }
        // A repeated id within the batch is the same event: keep its first copy.
        let mut seen = HashSet::with_capacity(events.len());
        let batch: Vec<&UsageEvent> = events.iter().filter(|e| seen.insert(e.event_id)).collect();

        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(store_error)?;

        let mut owners: HashMap<&str, Option<(i64, i64)>> = HashMap::new();
        for e in &batch {
            if let (None, Some(hash)) = (e.key_id, &e.key_hash)
                && !owners.contains_key(hash.as_str())
            {
                let owner: Option<(i64, i64)> =
                    sqlx::query_as("SELECT id, team_id FROM api_keys WHERE key_hash = ?")
                        .bind(hash.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(store_error)?;
                owners.insert(hash.as_str(), owner);
            }
        }
        let attributed: Vec<Attributed<'_>> = batch
            .iter()
            .map(|&event| {
                let owner = match (event.key_id, &event.key_hash) {
                    (None, Some(hash)) => owners.get(hash.as_str()).copied().flatten(),
                    _ => None,
                };
                Attributed {
                    event,
                    key_id: event.key_id.or(owner.map(|o| o.0)),
                    team_id: event.team_id.or(owner.map(|o| o.1)),
                }
            })
            .collect();

        let mut inserted: HashSet<Uuid> = HashSet::with_capacity(attributed.len());
        for chunk in attributed.chunks(INSERT_CHUNK) {
            let partial;
            let sql: &str = if chunk.len() == INSERT_CHUNK {
                &FULL_CHUNK_INSERT
            } else {
                partial = insert_events_sql(chunk.len());
                &partial
            };
            let mut query = sqlx::query_scalar::<_, String>(sql);
            for a in chunk {
                let e = a.event;
                query = query
                    .bind(e.event_id.hyphenated().to_string())
                    .bind(e.ts_ms)
                    .bind(a.key_id)
                    .bind(e.key_hash.as_ref().map(KeyHash::as_str))
                    .bind(a.team_id)
                    .bind(e.route_id)
                    .bind(e.route.as_deref())
                    .bind(e.method.as_str())
                    .bind(e.path.as_str())
                    .bind(i64::from(e.status))
                    .bind(e.latency_us)
                    .bind(e.upstream_latency_us)
                    .bind(e.client_ip.as_deref())
                    .bind(e.user_agent.as_deref())
                    .bind(e.model.as_deref())
                    .bind(e.tokens.prompt)
                    .bind(e.tokens.completion)
                    .bind(e.tokens.total)
                    .bind(e.tokens.cached)
                    .bind(e.tokens.reasoning)
                    .bind(e.estimated)
                    .bind(e.cost_usd)
                    .bind(e.error.as_deref())
                    .bind(e.source.as_str())
                    .bind(e.request_id.as_deref());
            }
            for id in query.fetch_all(&mut *tx).await.map_err(store_error)? {
                let id = Uuid::parse_str(&id).map_err(|e| {
                    StoreError::Internal(format!("stored usage event id `{id}` is malformed: {e}"))
                })?;
                inserted.insert(id);
            }
        }

        // Sorted maps: every writer touches rows in the same order.
        let mut rollups: BTreeMap<RollupKey, RollupSums> = BTreeMap::new();
        let mut last_used: BTreeMap<i64, i64> = BTreeMap::new();
        for a in attributed
            .iter()
            .filter(|a| inserted.contains(&a.event.event_id))
        {
            let e = a.event;
            let key = RollupKey {
                start_ms: hour_start(e.ts_ms),
                team_id: a.team_id.unwrap_or(0),
                key_id: a.key_id.unwrap_or(0),
                route_id: e.route_id.unwrap_or(0),
                model: e.model.clone().unwrap_or_default(),
                status_class: e.status_class(),
            };
            rollups.entry(key).or_default().add(e);
            if let Some(key_id) = a.key_id {
                let ts = last_used.entry(key_id).or_insert(e.ts_ms);
                *ts = (*ts).max(e.ts_ms);
            }
        }

        // Both grains in the one transaction: a reader never sees a batch in one and not the
        // other.
        let daily = daily_rollups(&rollups);
        upsert_rollups(&mut tx, &HOURLY_UPSERT, &rollups).await?;
        upsert_rollups(&mut tx, &DAILY_UPSERT, &daily).await?;

        for (key_id, ts) in &last_used {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = ?1 \
                 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
            )
            .bind(ts)
            .bind(key_id)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }

        tx.commit().await.map_err(store_error)?;
        Ok(u64::try_from(inserted.len()).unwrap_or(u64::MAX))
    }

    async fn count_usage(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM usage_events")
            .fetch_one(&self.reader)
            .await
            .map_err(store_error)
    }

    async fn recent_usage(&self, limit: i64) -> StoreResult<Vec<UsageEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM usage_events ORDER BY ts DESC, id DESC LIMIT ?"
        ))
        .bind(limit.max(0))
        .fetch_all(&self.reader)
        .await
        .map_err(store_error)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn rollups(&self, from_ms: i64, to_ms: i64) -> StoreResult<Vec<HourlyRollup>> {
        let mut columns = String::from(ROLLUP_KEY_COLUMNS);
        for c in ROLLUP_COUNTERS.iter() {
            let _ = write!(columns, ", {c}");
        }
        let rows = sqlx::query(&format!(
            "SELECT {columns} FROM usage_hourly WHERE hour >= ? AND hour < ? \
             ORDER BY {ROLLUP_KEY_COLUMNS}"
        ))
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.reader)
        .await
        .map_err(store_error)?;
        rows.iter().map(rollup_from_row).collect()
    }
}
