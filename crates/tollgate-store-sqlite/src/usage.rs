//! Usage events and their hourly and daily roll-ups.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::{LazyLock, OnceLock};

use async_trait::async_trait;
use sqlx::Arguments as _;
use sqlx::pool::PoolConnection;
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteConnection, SqlitePool};
use tollgate_core::UsageEvent;
use tollgate_core::usage::HISTOGRAM_LEN;
use tollgate_store::{HourlyRollup, StoreError, StoreResult, UsageQueries};
use uuid::Uuid;

use tollgate_store::rollup::{BatchSums, Grain, RollupKey, RollupSums, daily_rollups};

use crate::rows::{event_from_row, rollup_from_row};
use crate::sketches::{add_stored_sketches, upsert_statements};
use crate::{SqliteStore, store_error};
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
const EVENT_COLUMN_COUNT: usize = 28;
/// Most events per multi-row INSERT: 512 × 28 binds stays below SQLite's limit of 32766.
const MAX_EVENT_ROWS: usize = 512;
/// Most roll-up rows per multi-row upsert: 256 × 40 binds.
const MAX_ROLLUP_ROWS: usize = 256;

/// The dimensions of a roll-up row after its time column (`hour` or `day`).
const ROLLUP_DIMENSIONS: &str = "team_id, key_id, route_id, model, status_class";
const ROLLUP_KEY_COLUMNS: &str = "hour, team_id, key_id, route_id, model, status_class";
const ROLLUP_SUM_COLUMNS: [&str; 11] = [
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
    "unpriced_calls",
];
/// Binds of one roll-up row: the time, the five dimensions and every counter.
/// The counter columns of a roll-up row ([`ROLLUP_COUNTERS`]).
pub(crate) const ROLLUP_COUNTER_COUNT: usize = ROLLUP_SUM_COLUMNS.len() + HISTOGRAM_LEN;
const ROLLUP_BIND_COUNT: usize = 6 + ROLLUP_COUNTER_COUNT;

/// Every counter column of the roll-ups, in bind order: the sums, then the histogram.
pub(crate) static ROLLUP_COUNTERS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ROLLUP_SUM_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(HIST_COLUMNS.iter().cloned())
        .collect()
});

/// `rows` groups of `columns` placeholders: the VALUES list of a multi-row statement.
pub(crate) fn values_list(rows: usize, columns: usize) -> String {
    let one = format!("({})", vec!["?"; columns].join(", "));
    vec![one; rows].join(", ")
}

/// Cuts `n` rows into chunks of powers of two up to `max` (itself a power of two), largest
/// first. Statements of a few fixed sizes stay in the connection's statement cache; one text
/// per batch length would be parsed and planned again for nearly every batch.
fn chunk_lengths(n: usize, max: usize) -> impl Iterator<Item = usize> {
    let mut left = n;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let len = if left >= max { max } else { 1 << left.ilog2() };
        left -= len;
        Some(len)
    })
}

/// The statement text for `rows` rows, built once per length and kept for the process.
pub(crate) struct StatementsBySize {
    build: fn(usize) -> String,
    texts: Vec<OnceLock<String>>,
}

impl StatementsBySize {
    pub(crate) fn new(build: fn(usize) -> String, max: usize) -> Self {
        Self {
            build,
            texts: (0..=max.ilog2()).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The statement for `rows` rows, a power of two no larger than the maximum.
    pub(crate) fn get(&self, rows: usize) -> StoreResult<&str> {
        let slot = self
            .texts
            .get(rows.ilog2() as usize)
            .filter(|_| rows.is_power_of_two())
            .ok_or_else(|| StoreError::Internal(format!("no statement for {rows} rows")))?;
        Ok(slot.get_or_init(|| (self.build)(rows)))
    }
}

/// The upsert adding `rows` in-memory aggregates to their rows of `table`, whose time column is
/// `time`.
fn rollup_upsert(table: &str, time: &str, rows: usize) -> String {
    let counters = ROLLUP_COUNTERS.join(", ");
    let updates = ROLLUP_COUNTERS
        .iter()
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO {table} ({time}, {ROLLUP_DIMENSIONS}, {counters}) VALUES {} \
         ON CONFLICT ({time}, {ROLLUP_DIMENSIONS}) DO UPDATE SET {updates}",
        values_list(rows, ROLLUP_BIND_COUNT)
    )
}

static HOURLY_UPSERTS: LazyLock<StatementsBySize> = LazyLock::new(|| {
    StatementsBySize::new(
        |rows| rollup_upsert("usage_hourly", "hour", rows),
        MAX_ROLLUP_ROWS,
    )
});
static DAILY_UPSERTS: LazyLock<StatementsBySize> = LazyLock::new(|| {
    StatementsBySize::new(
        |rows| rollup_upsert("usage_daily", "day", rows),
        MAX_ROLLUP_ROWS,
    )
});

/// The multi-row insert of `rows` events; an id already stored is skipped. No RETURNING: a row
/// sent back per event costs more than the statement, and the count of changes tells whether
/// any was skipped.
fn insert_events_sql(rows: usize) -> String {
    format!(
        "INSERT INTO usage_events ({EVENT_COLUMNS}) VALUES {} ON CONFLICT (event_id) DO NOTHING",
        values_list(rows, EVENT_COLUMN_COUNT)
    )
}

static EVENT_INSERTS: LazyLock<StatementsBySize> =
    LazyLock::new(|| StatementsBySize::new(insert_events_sql, MAX_EVENT_ROWS));

/// A statement with its binds.
pub(crate) type Statement<'q> = Query<'q, Sqlite, SqliteArguments<'q>>;

/// `sql` with room for `binds` values, so that binding never regrows the list.
pub(crate) fn statement(sql: &str, binds: usize) -> Statement<'_> {
    let mut arguments = SqliteArguments::default();
    arguments.reserve(binds, 0);
    sqlx::query_with(sql, arguments)
}

/// `items` cut as [`chunk_lengths`] cuts them.
pub(crate) fn chunks_of<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    chunk_lengths(items.len(), max).map(move |len| {
        let (chunk, tail) = rest.split_at(len);
        rest = tail;
        chunk
    })
}

/// Runs `statements` in order, answering how many rows each changed. sqlx runs a statement on
/// the connection's own thread, so the next statement's binds are built (the iterator is lazy)
/// while SQLite executes the current one, instead of one after the other.
pub(crate) async fn execute_pipelined<'q>(
    conn: &mut SqliteConnection,
    mut statements: impl Iterator<Item = StoreResult<Statement<'q>>>,
) -> StoreResult<Vec<u64>> {
    let mut changes = Vec::new();
    let mut next = statements.next().transpose()?;
    while let Some(current) = next {
        // Biased: the statement is sent to the connection's thread before the next is built.
        let (done, following) = tokio::join!(biased; current.execute(&mut *conn), async {
            statements.next().transpose()
        });
        changes.push(done.map_err(store_error)?.rows_affected());
        next = following?;
    }
    Ok(changes)
}

/// The upsert of `rows` (`HOURLY_UPSERTS` or `DAILY_UPSERTS`) adding each in-memory aggregate
/// to its roll-up row.
fn rollup_statement<'q>(
    upserts: &'q StatementsBySize,
    rows: &'q [(&'q RollupKey, &'q RollupSums)],
) -> StoreResult<Statement<'q>> {
    let mut query = statement(upserts.get(rows.len())?, rows.len() * ROLLUP_BIND_COUNT);
    for (key, sums) in rows {
        query = query
            .bind(key.start_ms)
            .bind(key.team_id)
            .bind(key.key_id)
            .bind(key.route_id)
            .bind(key.model.as_str())
            .bind(key.status_class);
        query = bind_sums(query, Some(sums));
    }
    Ok(query)
}

/// Binds the counters of a roll-up row in [`ROLLUP_COUNTERS`] order, or NULL for each of them
/// when `sums` is `None` (a detailed row of the summary tables).
pub(crate) fn bind_sums<'q>(mut query: Statement<'q>, sums: Option<&RollupSums>) -> Statement<'q> {
    let int = |f: fn(&RollupSums) -> i64| sums.map(f);
    query = query
        .bind(int(|s| s.calls))
        .bind(int(|s| s.errors))
        .bind(int(|s| s.latency_sum_us))
        .bind(int(|s| s.tokens.prompt))
        .bind(int(|s| s.tokens.completion))
        .bind(int(|s| s.tokens.total))
        .bind(int(|s| s.tokens.cached))
        .bind(int(|s| s.tokens.reasoning))
        .bind(int(|s| s.estimated_calls))
        .bind(sums.map(|s| s.cost_usd))
        .bind(int(|s| s.unpriced_calls));
    for bucket in 0..HISTOGRAM_LEN {
        query = query.bind(sums.map(|s| s.hist.get(bucket).copied().unwrap_or(0)));
    }
    query
}

/// The update moving `last_used_at` of each `(key id, newest event)` forward, never back.
fn last_used_sql(rows: usize) -> String {
    format!(
        "WITH newest (id, ts) AS (VALUES {}) \
         UPDATE api_keys SET last_used_at = newest.ts FROM newest \
         WHERE api_keys.id = newest.id \
         AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < newest.ts)",
        values_list(rows, 2)
    )
}

/// Most keys per `last_used_at` update.
const MAX_KEY_ROWS: usize = 256;

static LAST_USED_UPDATES: LazyLock<StatementsBySize> =
    LazyLock::new(|| StatementsBySize::new(last_used_sql, MAX_KEY_ROWS));

fn last_used_statement(rows: &[(i64, i64)]) -> StoreResult<Statement<'_>> {
    let mut query = statement(LAST_USED_UPDATES.get(rows.len())?, rows.len() * 2);
    for (key_id, ts) in rows {
        query = query.bind(key_id).bind(ts);
    }
    Ok(query)
}

/// The insert of a chunk of events. Text is bound as owned copies: sqlx copies borrowed text
/// before handing it to its thread anyway, and made here (in [`Prepared::of`], before the
/// transaction) the copies overlap the batch before.
fn insert_statement<'q>(chunk: &'q [Attributed<'q>]) -> StoreResult<Statement<'q>> {
    let mut query = statement(
        EVENT_INSERTS.get(chunk.len())?,
        chunk.len() * EVENT_COLUMN_COUNT,
    );
    for a in chunk {
        let e = a.event;
        query = query
            .bind(e.event_id.hyphenated().to_string())
            .bind(e.ts_ms)
            .bind(a.key_id)
            .bind(e.key_hash.as_ref().map(|h| h.as_str().to_owned()))
            .bind(a.team_id)
            .bind(e.route_id)
            .bind(e.route.clone())
            .bind(e.method.clone())
            .bind(e.path.clone())
            .bind(i64::from(e.status))
            .bind(e.latency_us)
            .bind(e.upstream_latency_us)
            .bind(e.client_ip.clone())
            .bind(e.user_agent.clone())
            .bind(e.model.clone())
            .bind(e.tokens.prompt)
            .bind(e.tokens.completion)
            .bind(e.tokens.total)
            .bind(e.tokens.cached)
            .bind(e.tokens.reasoning)
            .bind(e.estimated)
            .bind(e.cost_usd.unwrap_or(0.0))
            .bind(e.error.clone())
            .bind(e.source.as_str())
            .bind(e.request_id.clone())
            .bind(e.attempts.clone())
            .bind(e.cost_usd.is_some())
            .bind(e.upstream_last_byte_us);
    }
    Ok(query)
}

/// Marks in `stored` (one flag per event of `chunk`, ids unique within the batch) the events
/// that the chunk's insert, which changed `added` rows, stored.
async fn mark_stored(
    conn: &mut SqliteConnection,
    chunk: &[Attributed<'_>],
    added: u64,
    stored: &mut [bool],
) -> StoreResult<()> {
    let added = usize::try_from(added).unwrap_or(usize::MAX);
    if added >= chunk.len() {
        stored.fill(true);
        return Ok(());
    }
    if added == 0 {
        return Ok(());
    }
    // Some ids were stored before (a replay). Every id of the chunk is stored now, and
    // AUTOINCREMENT gives new rows ids above every earlier one (the transaction holds the write
    // lock): the new events are the chunk's `added` highest ids.
    let sql = format!(
        "SELECT event_id FROM usage_events WHERE event_id IN ({}) ORDER BY id DESC LIMIT ?",
        vec!["?"; chunk.len()].join(", ")
    );
    let mut query = sqlx::query_scalar::<_, String>(&sql).persistent(false);
    for a in chunk {
        query = query.bind(a.event.event_id.hyphenated().to_string());
    }
    let ids = query
        .bind(i64::try_from(added).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(store_error)?;
    let position: HashMap<Uuid, usize> = chunk
        .iter()
        .enumerate()
        .map(|(i, a)| (a.event.event_id, i))
        .collect();
    for id in ids {
        let id = Uuid::parse_str(&id).map_err(|e| {
            StoreError::Internal(format!("stored usage event id `{id}` is malformed: {e}"))
        })?;
        if let Some(flag) = position.get(&id).and_then(|i| stored.get_mut(*i)) {
            *flag = true;
        }
    }
    Ok(())
}

/// An event with its key and team filled in from its key hash where needed.
struct Attributed<'a> {
    event: &'a UsageEvent,
    key_id: Option<i64>,
    team_id: Option<i64>,
}

/// The usage batch's transaction, run as plain SQL on one connection of the writer pool.
///
/// Not sqlx's `Transaction`: when SQLite rolls a transaction back by itself (`database or disk
/// is full`, some I/O errors), sqlx's `ROLLBACK` fails with "no transaction is active" and its
/// count of open transactions stays at one, so every later `begin` on that connection failed
/// (`begin_with at non-zero transaction depth`) until a restart. Here `ROLLBACK` tolerates a
/// transaction that is already gone, and a connection dropped with its transaction open (the
/// caller's future was cancelled) is closed instead of returned to the pool, so the next batch
/// always starts on a connection without a transaction.
struct WriteTransaction {
    conn: Option<PoolConnection<Sqlite>>,
}

impl WriteTransaction {
    async fn begin(pool: &SqlitePool) -> StoreResult<Self> {
        let mut conn = pool.acquire().await.map_err(store_error)?;
        if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
            if !is_nested_begin(&e) {
                return Err(store_error(e));
            }
            // A transaction left open by an earlier failure: end it and start ours.
            rollback(&mut conn).await?;
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *conn)
                .await
                .map_err(store_error)?;
        }
        Ok(Self { conn: Some(conn) })
    }

    /// The connection the transaction is open on.
    fn conn(&mut self) -> StoreResult<&mut SqliteConnection> {
        // `conn` is only taken by `finish` and `drop`, which consume the transaction.
        self.conn
            .as_deref_mut()
            .ok_or_else(|| StoreError::Internal("usage transaction already finished".into()))
    }

    /// Commits when `result` is a success, rolls back otherwise; answers `result`.
    async fn finish<T>(mut self, result: StoreResult<T>) -> StoreResult<T> {
        let Some(mut conn) = self.conn.take() else {
            return Err(StoreError::Internal(
                "usage transaction finished twice".into(),
            ));
        };
        match result {
            Ok(value) => match sqlx::query("COMMIT").execute(&mut *conn).await {
                Ok(_) => Ok(value),
                Err(e) => {
                    // A failed COMMIT (a full disk) may leave the transaction open.
                    let _ = rollback(&mut conn).await;
                    Err(store_error(e))
                }
            },
            Err(e) => {
                if let Err(rollback_error) = rollback(&mut conn).await {
                    tracing::warn!(error = %rollback_error, "usage transaction rollback failed: connection closed");
                    conn.close_on_drop();
                }
                Err(e)
            }
        }
    }
}

impl Drop for WriteTransaction {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            // Cancelled with the transaction open: closing the connection rolls it back.
            conn.close_on_drop();
        }
    }
}

/// `ROLLBACK`, where a transaction SQLite already rolled back itself counts as success.
async fn rollback(conn: &mut SqliteConnection) -> StoreResult<()> {
    match sqlx::query("ROLLBACK").execute(&mut *conn).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(db)) if db.message().contains("no transaction is active") => {
            Ok(())
        }
        Err(e) => Err(store_error(e)),
    }
}

fn is_nested_begin(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.message().contains("within a transaction"))
}

/// The events of a batch with their keys and teams, looked up from their key hashes where
/// needed. On the reader pool, outside the write transaction: a key's id and team never change,
/// and usage rows do not reference the key table, so a key deleted meanwhile changes nothing.
async fn attribute<'a>(
    reader: &SqlitePool,
    batch: &[&'a UsageEvent],
) -> StoreResult<Vec<Attributed<'a>>> {
    let mut owners: HashMap<&str, Option<(i64, i64)>> = HashMap::new();
    for e in batch {
        if let (None, Some(hash)) = (e.key_id, &e.key_hash)
            && !owners.contains_key(hash.as_str())
        {
            let owner: Option<(i64, i64)> =
                sqlx::query_as("SELECT id, team_id FROM api_keys WHERE key_hash = ?")
                    .bind(hash.as_str())
                    .fetch_optional(reader)
                    .await
                    .map_err(store_error)?;
            owners.insert(hash.as_str(), owner);
        }
    }
    Ok(batch
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
        .collect())
}

/// The event and key of an attributed event, as the roll-ups count it.
fn counted<'a>(a: &Attributed<'a>) -> (&'a UsageEvent, Option<i64>, Option<i64>) {
    (a.event, a.key_id, a.team_id)
}

/// What a batch's transaction runs that does not depend on what the store holds: built before
/// the transaction, while the writer connection may still be busy with the batch before.
struct Prepared<'a> {
    attributed: &'a [Attributed<'a>],
    /// The inserts of the events, in chunks.
    inserts: Vec<Statement<'a>>,
    /// The batch's sums, as if every event were new; an event stored before (a replay) is rare.
    sums: BatchSums<'a>,
}

impl<'a> Prepared<'a> {
    fn of(attributed: &'a [Attributed<'a>]) -> StoreResult<Self> {
        let inserts = chunks_of(attributed, MAX_EVENT_ROWS)
            .map(insert_statement)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Self {
            attributed,
            inserts,
            sums: BatchSums::of(attributed.iter().map(counted)),
        })
    }
}

/// Stores a batch (ids unique) inside the transaction `conn` has open; answers how many events
/// were new.
async fn store_batch(conn: &mut SqliteConnection, prepared: Prepared<'_>) -> StoreResult<u64> {
    let Prepared {
        attributed,
        inserts,
        sums,
    } = prepared;
    let changes = execute_pipelined(&mut *conn, inserts.into_iter().map(Ok)).await?;
    let written = changes.iter().sum::<u64>();
    let sums = if usize::try_from(written).is_ok_and(|w| w == attributed.len()) {
        sums
    } else {
        // One flag per event of `attributed`: whether this batch stored it.
        let mut stored = vec![false; attributed.len()];
        let mut flags = stored.as_mut_slice();
        for (chunk, added) in chunks_of(attributed, MAX_EVENT_ROWS).zip(changes) {
            let (these, rest) = flags.split_at_mut(chunk.len());
            mark_stored(&mut *conn, chunk, added, these).await?;
            flags = rest;
        }
        BatchSums::of(
            attributed
                .iter()
                .zip(&stored)
                .filter(|(_, stored)| **stored)
                .map(|(a, _)| counted(a)),
        )
    };
    let BatchSums {
        rollups,
        sketches,
        last_used,
    } = sums;

    // The sketch rows the batch touches, merged with what they hold (read before the roll-ups
    // are written: one transaction, nothing else writes in between).
    let (mut hourly_sketches, mut daily_sketches) = sketches.into_grains(&rollups);
    add_stored_sketches(&mut *conn, Grain::Hour, &mut hourly_sketches).await?;
    add_stored_sketches(&mut *conn, Grain::Day, &mut daily_sketches).await?;

    // Both grains in the one transaction: a reader never sees a batch in one and not the
    // other.
    let daily = daily_rollups(&rollups);
    let hourly: Vec<(&RollupKey, &RollupSums)> = rollups.iter().collect();
    let daily: Vec<(&RollupKey, &RollupSums)> = daily.iter().collect();
    let last_used: Vec<(i64, i64)> = last_used.into_iter().collect();
    let statements = chunks_of(&hourly, MAX_ROLLUP_ROWS)
        .map(|rows| rollup_statement(&HOURLY_UPSERTS, rows))
        .chain(
            chunks_of(&daily, MAX_ROLLUP_ROWS).map(|rows| rollup_statement(&DAILY_UPSERTS, rows)),
        )
        .chain(upsert_statements(Grain::Hour, &hourly_sketches))
        .chain(upsert_statements(Grain::Day, &daily_sketches))
        .chain(chunks_of(&last_used, MAX_KEY_ROWS).map(last_used_statement));
    execute_pipelined(&mut *conn, statements).await?;
    Ok(written)
}

impl SqliteStore {
    /// Test hook for a full disk: lets the writer connection's database grow by at most
    /// `headroom` pages beyond its current size (`PRAGMA max_page_count`), or lifts the limit
    /// with `None`. Writes past it fail with `database or disk is full`, as on a full disk.
    /// Answers the page limit now in force.
    #[doc(hidden)]
    pub async fn limit_writer_pages(&self, headroom: Option<u32>) -> StoreResult<i64> {
        let mut conn = self.writer.acquire().await.map_err(store_error)?;
        let limit = match headroom {
            Some(headroom) => {
                let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(store_error)?;
                pages.saturating_add(i64::from(headroom))
            }
            // SQLite caps the value at its own largest page count.
            None => i64::from(u32::MAX - 1),
        };
        sqlx::query_scalar(&format!("PRAGMA max_page_count = {limit}"))
            .fetch_one(&mut *conn)
            .await
            .map_err(store_error)
    }
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
        let attributed = attribute(&self.reader, &batch).await?;
        let prepared = Prepared::of(&attributed)?;

        let mut tx = WriteTransaction::begin(&self.writer).await?;
        let result = match tx.conn() {
            Ok(conn) => store_batch(conn, prepared).await,
            Err(e) => Err(e),
        };
        let written = tx.finish(result).await?;
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.request();
        }
        Ok(written)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_largest_first_and_cover_every_row() {
        for n in [0, 1, 2, 3, 7, 64, 511, 512, 513, 1000, 5000, 12_345] {
            let lengths: Vec<usize> = chunk_lengths(n, MAX_EVENT_ROWS).collect();
            assert_eq!(lengths.iter().sum::<usize>(), n, "{n} rows: {lengths:?}");
            assert!(
                lengths
                    .iter()
                    .all(|l| l.is_power_of_two() && *l <= MAX_EVENT_ROWS)
            );
            assert!(lengths.windows(2).all(|w| w[0] >= w[1]), "{lengths:?}");
            // Below the maximum, each size at most once: few statements per batch.
            let small: Vec<_> = lengths.iter().filter(|l| **l < MAX_EVENT_ROWS).collect();
            assert!(small.windows(2).all(|w| w[0] > w[1]), "{lengths:?}");
        }
        let items: Vec<usize> = (0..1300).collect();
        let chunks: Vec<&[usize]> = chunks_of(&items, MAX_EVENT_ROWS).collect();
        assert_eq!(chunks.concat(), items);
    }

    #[test]
    fn statements_exist_for_the_chunk_sizes_only() {
        let sql = EVENT_INSERTS.get(4).unwrap();
        assert_eq!(sql.matches('?').count(), 4 * EVENT_COLUMN_COUNT);
        let sql = HOURLY_UPSERTS.get(MAX_ROLLUP_ROWS).unwrap();
        assert_eq!(
            sql.matches('?').count(),
            MAX_ROLLUP_ROWS * ROLLUP_BIND_COUNT
        );
        assert!(EVENT_INSERTS.get(3).is_err());
        assert!(EVENT_INSERTS.get(2 * MAX_EVENT_ROWS).is_err());
        assert!(LAST_USED_UPDATES.get(1).is_ok());
    }
}
