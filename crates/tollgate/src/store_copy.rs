//! `tollgate store copy --to postgres://…`: moves an instance from SQLite to PostgreSQL.
//!
//! The target is migrated by this version and must be empty. Every table is copied in dependency
//! order, streamed with `COPY` in chunks, from one read snapshot of the SQLite store, into one PostgreSQL
//! transaction: an interrupted copy leaves the target empty, so running it again is safe. The
//! usage days get their partitions before the rows arrive. What PostgreSQL keeps apart is then
//! set: the identity sequences continue after the highest id SQLite ever gave, the store revision
//! and the edge change feed are the source's (the triggers that fired on insert are undone), and
//! the ids of reported events are indexed as the PostgreSQL writer expects. After the commit,
//! every table's count and the usage totals are compared on both sides.
//!
//! SQLite only: it holds the instance lock, so no `serve` writes while it reads.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Instant;

use anyhow::{Context, bail};
use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{ConnectOptions, Connection, PgConnection, Row};
use tollgate_store::Store;
use tollgate_store_postgres::PostgresStore;

use crate::backup::{StoreFigures, ident, pg_figures, sqlite_figures};
use crate::cli::StoreCopyArgs;
use crate::config::{Config, redact_url};
use crate::output;
use crate::store::is_postgres;

/// Every table a store holds, parents before children. A table of the source missing here stops
/// the copy: a new table must be placed here, never left behind silently.
const TABLES: [&str; 28] = [
    "teams",
    "users",
    "routes",
    "llm_targets",
    "llm_models",
    "api_keys",
    "api_key_routes",
    "key_models",
    "limits",
    "access_tokens",
    "edge_tokens",
    "sessions",
    "team_members",
    "invitations",
    "settings",
    "model_prices",
    "token_counters",
    "token_counter_readings",
    "alert_channels",
    "alert_deliveries",
    "alert_claims",
    "audit_log",
    "usage_events",
    "usage_hourly",
    "usage_daily",
    "summary_hourly",
    "summary_daily",
    "edge_changes",
];

/// Tables not copied row by row: the revision and the edge feed's pruning mark are one-row
/// tables that migrating made, set after the rows (triggers bump the revision on insert); leases
/// belong to running processes (the alert evaluator's), which the source no longer has.
const NOT_COPIED: [&str; 3] = ["store_revision", "edge_feed", "leases"];

/// Tables only the PostgreSQL store has: filled from the copied rows.
const PG_ONLY: [&str; 1] = ["usage_reported_ids"];

/// Bytes of `COPY` data sent at a time.
const CHUNK_BYTES: usize = 1 << 20;
/// A progress line every this many rows of a table.
const PROGRESS_EVERY: u64 = 100_000;

/// How a column's values travel: read from SQLite as, and bound for PostgreSQL as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    Integer,
    Boolean,
    Real,
    Text,
    Bytes,
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    kind: ColumnKind,
}

fn kind_of(pg_type: &str) -> Option<ColumnKind> {
    Some(match pg_type {
        "bigint" | "integer" | "smallint" => ColumnKind::Integer,
        "boolean" => ColumnKind::Boolean,
        "double precision" | "real" => ColumnKind::Real,
        "text" | "uuid" | "character varying" | "jsonb" | "json" => ColumnKind::Text,
        "bytea" => ColumnKind::Bytes,
        _ => return None,
    })
}

/// One table's rows on both sides after the copy.
#[derive(Debug, Serialize)]
struct TableCount {
    table: String,
    source: i64,
    target: i64,
}

#[derive(Debug, Serialize)]
struct CopyReport {
    tables: Vec<TableCount>,
    source: StoreFigures,
    target: StoreFigures,
    seconds: f64,
}

/// `tollgate store copy --to URL`.
pub async fn run(config: &Config, args: &StoreCopyArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let to = args.to.trim();
    if !is_postgres(to) {
        bail!(
            "--to `{}` must be a PostgreSQL URL: postgres://user:password@host:port/database",
            redact_url(to)
        );
    }
    let source_url = config.store_url();
    if is_postgres(&source_url) {
        bail!(
            "the configured store is already PostgreSQL: to copy it to another database, use \
             `tollgate backup` and `tollgate restore` (pg_dump and pg_restore)"
        );
    }
    let shown = redact_url(to);
    // The source as this version expects it, and no serve writing to it meanwhile.
    let _lock = crate::instance_lock::acquire(config)
        .context("store copy: stop `tollgate serve` on this store first")?;
    let source_store = crate::store::open(config).await?;
    source_store.close().await;
    check_pg_url(to)?;
    let target_store = PostgresStore::connect(to)
        .await
        .with_context(|| format!("--to {shown} is unreachable"))?;
    target_store
        .migrate()
        .await
        .with_context(|| format!("--to {shown}: migrations failed"))?;

    let mut source = SqliteConnectOptions::from_str(&source_url)
        .map_err(|e| anyhow::anyhow!("store {}: {e}", redact_url(&source_url)))?
        .create_if_missing(false)
        .read_only(true)
        .connect()
        .await
        .with_context(|| format!("store {} cannot be opened", redact_url(&source_url)))?;
    let mut target = sqlx::postgres::PgConnectOptions::from_str(to)?
        .connect()
        .await
        .with_context(|| format!("--to {shown} is unreachable"))?;

    check_tables(&mut source).await?;
    let mut snapshot = source.begin().await?;
    // The usage days' partitions first (each in a transaction of its own, as the writer makes them).
    let days: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT ts - (((ts % 86400000) + 86400000) % 86400000) FROM usage_events",
    )
    .fetch_all(&mut *snapshot)
    .await?;
    target_store
        .prepare_usage_partitions(days.into_iter())
        .await
        .with_context(|| format!("--to {shown}: making the usage partitions"))?;
    target_store.close().await;

    let mut tx = target.begin().await?;
    check_empty(&mut tx, &shown).await?;
    for table in TABLES {
        if table == "edge_changes" {
            // Inserting keys and routes fired the feed's triggers: the feed is the source's.
            sqlx::query("DELETE FROM edge_changes")
                .execute(&mut *tx)
                .await?;
        }
        copy_table(&mut snapshot, &mut tx, table).await?;
    }
    finish(&mut snapshot, &mut tx).await?;
    tx.commit().await.context("committing the copy")?;
    snapshot.rollback().await.ok();

    output::note("copied; comparing both stores…");
    let source_figures = sqlite_figures(&mut source).await?;
    let target_figures = pg_figures(&mut target).await?;
    source.close().await.ok();
    target.close().await.ok();
    let mut tables = Vec::new();
    let mut differ = Vec::new();
    for table in TABLES {
        let s = source_figures.tables.get(table).copied().unwrap_or(0);
        let t = target_figures.tables.get(table).copied().unwrap_or(0);
        if s != t {
            differ.push(format!("{table}: {s} in SQLite, {t} in PostgreSQL"));
        }
        tables.push(TableCount {
            table: table.to_owned(),
            source: s,
            target: t,
        });
    }
    if !source_figures.usage.same_as(&target_figures.usage) {
        differ.push(format!(
            "usage totals: {:?} in SQLite, {:?} in PostgreSQL",
            source_figures.usage, target_figures.usage
        ));
    }
    let report = CopyReport {
        tables,
        source: source_figures,
        target: target_figures,
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        output::json(&report)?;
    } else {
        output::table(
            &["table", "rows (SQLite)", "rows (PostgreSQL)"],
            report
                .tables
                .iter()
                .map(|t| vec![t.table.clone(), t.source.to_string(), t.target.to_string()])
                .collect(),
        );
    }
    if !differ.is_empty() {
        bail!(
            "the copy in {shown} differs from the source: {}",
            differ.join("; ")
        );
    }
    output::note(&format!(
        "every table and the usage totals are equal ({} events, {} tokens) in {:.1} s. Next: \
         point database_url (TOLLGATE_DATABASE_URL) at {shown} with the same master key, and start \
         tollgate there; keep the SQLite store until the new one has served a while.",
        report.source.usage.events, report.source.usage.event_tokens, report.seconds
    ));
    Ok(())
}

/// Checks the URL parses before anything connects, so a typo is named as such.
fn check_pg_url(url: &str) -> anyhow::Result<()> {
    sqlx::postgres::PgConnectOptions::from_str(url)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("--to `{}` is not a PostgreSQL URL: {e}", redact_url(url)))
}

/// Every table of the source is one this version copies (or leaves out on purpose).
async fn check_tables(source: &mut sqlx::SqliteConnection) -> anyhow::Result<()> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite!_%' ESCAPE '!' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *source)
    .await?;
    let known: BTreeSet<&str> = TABLES.iter().chain(NOT_COPIED.iter()).copied().collect();
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !known.contains(n.as_str()))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "the SQLite store has tables this version does not know how to copy: {}; use the \
             tollgate that made them",
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// The target holds nothing but what migrating an empty database makes: the default team (and
/// the edge changes its trigger wrote). Those go, so the source's rows keep their ids.
async fn check_empty(tx: &mut PgConnection, shown: &str) -> anyhow::Result<()> {
    let mut held = Vec::new();
    for table in TABLES.iter().chain(PG_ONLY.iter()) {
        if *table == "edge_changes" {
            continue;
        }
        let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", ident(table)))
            .fetch_one(&mut *tx)
            .await?;
        let made_by_migrate = if *table == "teams" {
            let default: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM teams WHERE name = 'default'")
                    .fetch_one(&mut *tx)
                    .await?;
            default.min(1)
        } else {
            0
        };
        if rows > made_by_migrate {
            held.push(format!("{table}: {rows} rows"));
        }
    }
    if !held.is_empty() {
        bail!(
            "--to {shown} is not empty ({}): store copy fills only an empty database; create a \
             new one (CREATE DATABASE …) or empty it",
            held.join(", ")
        );
    }
    sqlx::query("DELETE FROM teams").execute(&mut *tx).await?;
    sqlx::query("DELETE FROM edge_changes")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The target's columns of `table`, in the source's order; both sides must have the same names.
async fn columns(
    source: &mut sqlx::SqliteConnection,
    target: &mut PgConnection,
    table: &str,
) -> anyhow::Result<Vec<Column>> {
    let source_names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info($1) ORDER BY cid")
            .bind(table)
            .fetch_all(&mut *source)
            .await?;
    let target_types: BTreeMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1",
    )
    .bind(table)
    .fetch_all(&mut *target)
    .await?
    .into_iter()
    .collect();
    let source_set: BTreeSet<&str> = source_names.iter().map(String::as_str).collect();
    let target_set: BTreeSet<&str> = target_types.keys().map(String::as_str).collect();
    if source_set != target_set {
        bail!(
            "table {table} has other columns in SQLite ({}) than in PostgreSQL ({}): both stores \
             must be at this version's schema",
            source_names.join(", "),
            target_types.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    source_names
        .into_iter()
        .map(|name| {
            let pg_type = target_types.get(&name).cloned().unwrap_or_default();
            let kind = kind_of(&pg_type).ok_or_else(|| {
                anyhow::anyhow!(
                    "column {table}.{name} has a type store copy does not know: {pg_type}"
                )
            })?;
            Ok(Column { name, kind })
        })
        .collect()
}

/// Copies one table with `COPY … FROM STDIN`, sent in chunks of [`CHUNK_BYTES`]; returns its
/// rows.
async fn copy_table(
    source: &mut sqlx::SqliteConnection,
    target: &mut PgConnection,
    table: &str,
) -> anyhow::Result<u64> {
    let columns = columns(source, target, table).await?;
    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", ident(table)))
        .fetch_one(&mut *source)
        .await?;
    let names = columns
        .iter()
        .map(|c| ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let select = format!("SELECT {names} FROM {}", ident(table));
    let mut rows = sqlx::query(&select).fetch(&mut *source);
    let mut copy = target
        .copy_in_raw(&format!("COPY {} ({names}) FROM STDIN", ident(table)))
        .await
        .with_context(|| format!("starting the copy of {table}"))?;
    let mut chunk = String::with_capacity(CHUNK_BYTES + 4096);
    let mut copied = 0_u64;
    let mut next_note = PROGRESS_EVERY;
    let sent: anyhow::Result<()> = async {
        while let Some(row) = rows.try_next().await? {
            for (i, column) in columns.iter().enumerate() {
                if i > 0 {
                    chunk.push('\t');
                }
                write_value(&mut chunk, &row, i, column.kind)
                    .with_context(|| format!("{table}.{}", column.name))?;
            }
            chunk.push('\n');
            copied += 1;
            if chunk.len() >= CHUNK_BYTES {
                copy.send(std::mem::take(&mut chunk).into_bytes()).await?;
                chunk.reserve(CHUNK_BYTES + 4096);
            }
            if copied >= next_note {
                output::note(&format!("  {table}: {copied} / {total} rows"));
                next_note += PROGRESS_EVERY;
            }
        }
        if !chunk.is_empty() {
            copy.send(chunk.into_bytes()).await?;
        }
        Ok(())
    }
    .await;
    drop(rows);
    match sent {
        Ok(()) => {
            copy.finish()
                .await
                .with_context(|| format!("copying into {table}"))?;
        }
        Err(e) => {
            copy.abort(format!("tollgate store copy failed: {e}"))
                .await
                .ok();
            return Err(e.context(format!("copying into {table}")));
        }
    }
    output::note(&format!("{table}: {copied} rows copied"));
    Ok(copied)
}

/// Appends one SQLite value in `COPY`'s text format: `\N` for NULL, `t`/`f`, bytes as `\\x…`,
/// text with backslash, tab, newline and carriage return escaped.
fn write_value(
    out: &mut String,
    row: &SqliteRow,
    i: usize,
    kind: ColumnKind,
) -> anyhow::Result<()> {
    use std::fmt::Write;
    const NULL: &str = "\\N";
    match kind {
        ColumnKind::Integer => match row.try_get::<Option<i64>, _>(i)? {
            Some(v) => write!(out, "{v}")?,
            None => out.push_str(NULL),
        },
        ColumnKind::Boolean => match row.try_get::<Option<i64>, _>(i)? {
            Some(v) => out.push(if v != 0 { 't' } else { 'f' }),
            None => out.push_str(NULL),
        },
        ColumnKind::Real => match row.try_get::<Option<f64>, _>(i)? {
            Some(v) if v.is_finite() => write!(out, "{v}")?,
            Some(v) if v.is_nan() => out.push_str("NaN"),
            Some(v) if v > 0.0 => out.push_str("Infinity"),
            Some(_) => out.push_str("-Infinity"),
            None => out.push_str(NULL),
        },
        ColumnKind::Text => match row.try_get::<Option<String>, _>(i)? {
            Some(text) => {
                for c in text.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c => out.push(c),
                    }
                }
            }
            None => out.push_str(NULL),
        },
        ColumnKind::Bytes => match row.try_get::<Option<Vec<u8>>, _>(i)? {
            Some(bytes) => {
                out.push_str("\\\\x");
                out.push_str(&hex::encode(bytes));
            }
            None => out.push_str(NULL),
        },
    }
    Ok(())
}

/// What PostgreSQL keeps beside the rows: sequences, the revision, the edge feed, reported ids.
async fn finish(
    source: &mut sqlx::SqliteConnection,
    target: &mut PgConnection,
) -> anyhow::Result<()> {
    let revision: i64 = sqlx::query_scalar("SELECT revision FROM store_revision WHERE id = 1")
        .fetch_one(&mut *source)
        .await?;
    sqlx::query("UPDATE store_revision SET revision = $1 WHERE id = 1")
        .bind(revision)
        .execute(&mut *target)
        .await?;
    // Edge Workers that read the feed before the move are told the same about what is pruned.
    let pruned: Option<i64> =
        sqlx::query_scalar("SELECT pruned_through FROM edge_feed WHERE id = 1")
            .fetch_optional(&mut *source)
            .await?;
    if let Some(pruned) = pruned {
        sqlx::query("UPDATE edge_feed SET pruned_through = $1 WHERE id = 1")
            .bind(pruned)
            .execute(&mut *target)
            .await?;
    }
    sqlx::query(
        "INSERT INTO usage_reported_ids (event_id, ts) \
         SELECT event_id, ts FROM usage_events WHERE source <> 'gateway' ON CONFLICT DO NOTHING",
    )
    .execute(&mut *target)
    .await?;
    // Identity sequences continue after the highest id SQLite ever gave (AUTOINCREMENT never
    // gives one twice, even after a delete).
    let given: BTreeMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT name, seq FROM sqlite_sequence")
            .fetch_all(&mut *source)
            .await
            .unwrap_or_default()
            .into_iter()
            .collect();
    for table in TABLES {
        // Only tables with an `id` column: asking for another's would abort the transaction.
        let sequence: Option<Option<String>> = sqlx::query_scalar(
            "SELECT pg_get_serial_sequence(table_name::TEXT, 'id') FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'id'",
        )
        .bind(table)
        .fetch_optional(&mut *target)
        .await?;
        let Some(sequence) = sequence.flatten() else {
            continue;
        };
        let highest: Option<i64> =
            sqlx::query_scalar(&format!("SELECT MAX(id) FROM {}", ident(table)))
                .fetch_one(&mut *target)
                .await?;
        let last = highest
            .unwrap_or(0)
            .max(given.get(table).copied().unwrap_or(0));
        sqlx::query("SELECT setval($1::regclass, $2, $3)")
            .bind(&sequence)
            .bind(last.max(1))
            .bind(last > 0)
            .execute(&mut *target)
            .await
            .with_context(|| format!("setting {sequence}"))?;
    }
    Ok(())
}
