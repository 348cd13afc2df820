//! `tollgate backup` and `tollgate restore`.
//!
//! SQLite: the backup is `VACUUM INTO` a new file, a consistent copy taken inside one read
//! transaction, so it runs while `serve` writes (it takes no instance lock and writes nothing to
//! the store). PostgreSQL: `pg_dump --format=custom`, restored with `pg_restore`. Either way the
//! master key is not in the backup: it is configuration (`master_key`, `TOLLGATE_MASTER_KEY`),
//! never stored in the data folder, and the backup says so loudly.
//!
//! A restore checks the file first (SQLite's integrity check and schema, or `pg_restore --list`)
//! and refuses a data folder or database that holds anything: it never merges into a store.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection, SqliteConnection};
use tollgate_store_sqlite::SqliteStore;

use crate::cli::{BackupArgs, RestoreArgs};
use crate::config::{Config, redact_url};
use crate::output;
use crate::store::is_postgres;

/// The first bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";
/// The first bytes of a `pg_dump --format=custom` archive.
const PGDUMP_MAGIC: &[u8] = b"PGDMP";
/// The flags `tollgate backup` gives `pg_dump` (and the docs name): one compressed archive that
/// `pg_restore` reads, without ownership or grants, so it restores under any role.
pub const PG_DUMP_FLAGS: [&str; 3] = ["--format=custom", "--no-owner", "--no-privileges"];
/// How long a statement waits for SQLite's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Rows per table and the usage totals of a store: what a backup, a restore and a copy report
/// and compare.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoreFigures {
    /// Rows per table (partitions counted in their parent).
    pub tables: BTreeMap<String, i64>,
    /// Usage totals.
    pub usage: UsageTotals,
}

/// Token and call totals of the raw events and of both roll-ups.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageTotals {
    /// Raw events.
    pub events: i64,
    /// Total tokens of the raw events.
    pub event_tokens: i64,
    /// Cost of the raw events, USD.
    pub event_cost_usd: f64,
    /// Calls in the hourly roll-ups.
    pub hourly_calls: i64,
    /// Total tokens in the hourly roll-ups.
    pub hourly_tokens: i64,
    /// Cost in the hourly roll-ups, USD.
    pub hourly_cost_usd: f64,
    /// Calls in the daily roll-ups.
    pub daily_calls: i64,
    /// Total tokens in the daily roll-ups.
    pub daily_tokens: i64,
}

impl UsageTotals {
    /// Whether two stores hold the same usage: integers exactly, costs to a millionth of a cent
    /// (the two databases add floating-point numbers in different orders).
    pub fn same_as(&self, other: &Self) -> bool {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-8 * a.abs().max(b.abs()).max(1.0);
        self.events == other.events
            && self.event_tokens == other.event_tokens
            && self.hourly_calls == other.hourly_calls
            && self.hourly_tokens == other.hourly_tokens
            && self.daily_calls == other.daily_calls
            && self.daily_tokens == other.daily_tokens
            && close(self.event_cost_usd, other.event_cost_usd)
            && close(self.hourly_cost_usd, other.hourly_cost_usd)
    }
}

/// The same on both databases: `BIGINT` and `DOUBLE PRECISION` are SQLite type names too.
const TOTALS_SQL: [&str; 3] = [
    "SELECT COUNT(*), CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT), \
     CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE PRECISION) FROM usage_events",
    "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT), CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT), \
     CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE PRECISION) FROM usage_hourly",
    "SELECT CAST(COALESCE(SUM(calls), 0) AS BIGINT), CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT), \
     CAST(COALESCE(SUM(cost_usd), 0) AS DOUBLE PRECISION) FROM usage_daily",
];

/// Tables of a SQLite store, its own bookkeeping left out.
const SQLITE_TABLES: &str = "SELECT name FROM sqlite_master WHERE type = 'table' \
     AND name NOT LIKE 'sqlite!_%' ESCAPE '!' AND name <> '_sqlx_migrations' ORDER BY name";
/// Tables of a PostgreSQL store (partitioned ones once, by their parent).
const PG_TABLES: &str = "SELECT c.relname::TEXT FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
     AND c.relname <> '_sqlx_migrations' ORDER BY 1";

/// Quotes a table name read from the catalog.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

macro_rules! figures_of {
    ($conn:expr, $tables_sql:expr) => {{
        let conn = $conn;
        let names: Vec<String> = sqlx::query_scalar($tables_sql)
            .fetch_all(&mut *conn)
            .await?;
        let mut figures = StoreFigures::default();
        for name in names {
            let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", ident(&name)))
                .fetch_one(&mut *conn)
                .await?;
            figures.tables.insert(name, rows);
        }
        let (events, event_tokens, event_cost_usd): (i64, i64, f64) =
            sqlx::query_as(TOTALS_SQL[0]).fetch_one(&mut *conn).await?;
        let (hourly_calls, hourly_tokens, hourly_cost_usd): (i64, i64, f64) =
            sqlx::query_as(TOTALS_SQL[1]).fetch_one(&mut *conn).await?;
        let (daily_calls, daily_tokens, _): (i64, i64, f64) =
            sqlx::query_as(TOTALS_SQL[2]).fetch_one(&mut *conn).await?;
        figures.usage = UsageTotals {
            events,
            event_tokens,
            event_cost_usd,
            hourly_calls,
            hourly_tokens,
            hourly_cost_usd,
            daily_calls,
            daily_tokens,
        };
        Ok::<StoreFigures, sqlx::Error>(figures)
    }};
}

/// Rows per table and usage totals of a SQLite store.
pub async fn sqlite_figures(conn: &mut SqliteConnection) -> Result<StoreFigures, sqlx::Error> {
    figures_of!(conn, SQLITE_TABLES)
}

/// Rows per table and usage totals of a PostgreSQL store.
pub async fn pg_figures(conn: &mut PgConnection) -> Result<StoreFigures, sqlx::Error> {
    figures_of!(conn, PG_TABLES)
}

/// What `backup` and `restore` print with `--json`.
#[derive(Debug, Serialize)]
struct Report {
    file: PathBuf,
    backend: &'static str,
    bytes: u64,
    master_key_included: bool,
    #[serde(flatten)]
    figures: StoreFigures,
}

/// `tollgate backup --out FILE`.
pub async fn backup(config: &Config, args: &BackupArgs) -> anyhow::Result<()> {
    let out = &args.out;
    if out.exists() {
        bail!(
            "--out {}: the file exists; a backup never overwrites one, choose another name",
            out.display()
        );
    }
    if let Some(folder) = out.parent().filter(|p| !p.as_os_str().is_empty())
        && !folder.is_dir()
    {
        bail!(
            "--out {}: folder {} does not exist",
            out.display(),
            folder.display()
        );
    }
    let url = config.store_url();
    let (backend, figures) = if is_postgres(&url) {
        ("postgres", pg_backup(&url, out).await?)
    } else {
        ("sqlite", sqlite_backup(&url, out).await?)
    };
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    let report = Report {
        file: out.clone(),
        backend,
        bytes,
        master_key_included: false,
        figures,
    };
    if args.json {
        output::json(&report)?;
    } else {
        output::line(&format!(
            "backup of the {backend} store written to {} ({bytes} bytes): {} tables, {} usage events",
            out.display(),
            report.figures.tables.len(),
            report.figures.usage.events
        ));
    }
    master_key_note(config);
    spool_note(config);
    Ok(())
}

/// Says loudly what a restore needs besides the file.
fn master_key_note(config: &Config) {
    if config.master_key.is_some() {
        output::note(
            "NOTE: the master key is NOT in this backup. Revealable keys, route credentials, the \
             ingest secret and alert channel secrets in it open only with the master key in force \
             now (master_key / TOLLGATE_MASTER_KEY): keep a copy of it apart from the backup.",
        );
    } else {
        output::note(
            "NOTE: no master key is configured, so the backup holds no sealed secrets; \
             configuration (tollgate.toml, TOLLGATE_* variables) is not in it either.",
        );
    }
}

/// Usage events still in the spool are not in the store yet, so not in the backup.
fn spool_note(config: &Config) {
    let waiting: u64 = std::fs::read_dir(config.spool_dir())
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    if waiting > 0 {
        output::note(&format!(
            "NOTE: {waiting} bytes of usage events wait in the spool ({}) and are not in this \
             backup; a running serve writes them to the store within seconds",
            config.spool_dir().display()
        ));
    }
}

/// The SQLite file a URL names, which must exist.
fn existing_sqlite_file(url: &str) -> anyhow::Result<PathBuf> {
    let file = SqliteStore::database_file(url)
        .map_err(|e| anyhow::anyhow!("store {}: {e}", redact_url(url)))?
        .ok_or_else(|| anyhow::anyhow!("an in-memory store cannot be backed up"))?;
    if !file.is_file() {
        bail!(
            "store {} does not exist: check --database-url, TOLLGATE_DATABASE_URL and --data-dir",
            redact_url(url)
        );
    }
    Ok(file)
}

async fn sqlite_backup(url: &str, out: &Path) -> anyhow::Result<StoreFigures> {
    let file = existing_sqlite_file(url)?;
    let mut conn = SqliteConnectOptions::new()
        .filename(&file)
        .read_only(true)
        .busy_timeout(BUSY_TIMEOUT)
        .connect()
        .await
        .with_context(|| format!("store {} cannot be opened", file.display()))?;
    let target = out
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("--out {}: the path is not UTF-8", out.display()))?;
    // Private from its first byte: VACUUM INTO fills an empty file.
    tollgate_store::private::new_file(out, std::fs::OpenOptions::new().write(true))
        .with_context(|| format!("--out {} cannot be created", out.display()))?;
    let copied = sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(&mut conn)
        .await;
    conn.close().await.ok();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(out);
        return Err(e).with_context(|| format!("copying the store into {} failed", out.display()));
    }
    verify_sqlite(out).await.with_context(|| {
        format!(
            "the backup {} does not read back; it is not usable",
            out.display()
        )
    })
}

/// Opens a SQLite backup without writing anything beside it, checks it page by page and its
/// schema, and counts it.
async fn verify_sqlite(file: &Path) -> anyhow::Result<StoreFigures> {
    let mut conn = SqliteConnectOptions::new()
        .filename(file)
        .read_only(true)
        .immutable(true)
        .connect()
        .await
        .with_context(|| format!("{} cannot be opened as SQLite", file.display()))?;
    let problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .with_context(|| format!("{} fails SQLite's integrity check", file.display()))?;
    if problems != ["ok"] {
        bail!(
            "{} fails SQLite's integrity check: {}",
            file.display(),
            problems.into_iter().take(3).collect::<Vec<_>>().join("; ")
        );
    }
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "{} is a SQLite file but not a tollgate store (no migrations table)",
                    file.display()
                )
            })?;
    let known = SqliteStore::latest_migration();
    match applied {
        None => bail!(
            "{} is a SQLite file but not a tollgate store (no migration applied)",
            file.display()
        ),
        Some(v) if v > known => bail!(
            "{} was written by a newer tollgate (schema {v}, this one knows up to {known}): \
             restore it with that version or newer",
            file.display()
        ),
        Some(_) => {}
    }
    let figures = sqlite_figures(&mut conn)
        .await
        .with_context(|| format!("{} cannot be read through", file.display()))?;
    conn.close().await.ok();
    Ok(figures)
}

/// `pg_dump`'s and `pg_restore`'s view of a URL: the password goes in `PGPASSWORD`, never in
/// the command line other processes can read.
struct PgTarget {
    url: String,
    password: Option<String>,
}

fn pg_target(url: &str) -> anyhow::Result<PgTarget> {
    let parsed = url::Url::parse(url)
        .map_err(|e| anyhow::anyhow!("store {}: not a URL: {e}", redact_url(url)))?;
    let password = parsed.password().map(percent_decode);
    let mut bare = parsed.clone();
    let _ = bare.set_password(None);
    Ok(PgTarget {
        url: bare.to_string(),
        password,
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A PostgreSQL client tool on `PATH`.
fn pg_tool(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

fn run_pg_tool(tool: &Path, args: &[&OsStr], target: &PgTarget) -> anyhow::Result<String> {
    let mut command = Command::new(tool);
    command.args(args);
    if let Some(password) = &target.password {
        command.env("PGPASSWORD", password);
    }
    let out = command
        .output()
        .with_context(|| format!("{} cannot be run", tool.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!(
            "{} failed ({}): {}",
            tool.display(),
            out.status,
            stderr.trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn pg_backup(url: &str, out: &Path) -> anyhow::Result<StoreFigures> {
    let shown = redact_url(url);
    let Some(pg_dump) = pg_tool("pg_dump") else {
        bail!(
            "pg_dump is not on PATH: install the PostgreSQL client (Debian: postgresql-client, the \
             server's major version or newer), or run it yourself: \
             pg_dump {} --file {} --dbname '{shown}' (and restore with \
             pg_restore --exit-on-error --single-transaction --no-owner --no-privileges \
             --dbname URL FILE)",
            PG_DUMP_FLAGS.join(" "),
            out.display()
        );
    };
    // The counts and the dump see one snapshot: pg_dump joins the one exported here.
    let mut conn = pg_connect(url).await?;
    let mut snapshot = conn
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .context("starting the backup's snapshot")?;
    let snapshot_id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
        .fetch_one(&mut *snapshot)
        .await
        .context("exporting the backup's snapshot")?;
    let figures = pg_figures(&mut snapshot)
        .await
        .context("counting the store's rows")?;
    let target = pg_target(url)?;
    let file_arg = format!("--file={}", out.display());
    let db_arg = format!("--dbname={}", target.url);
    let snapshot_arg = format!("--snapshot={snapshot_id}");
    let mut args: Vec<&OsStr> = PG_DUMP_FLAGS.iter().map(OsStr::new).collect();
    args.push(OsStr::new(&snapshot_arg));
    args.push(OsStr::new(&file_arg));
    args.push(OsStr::new(&db_arg));
    // Private from its first byte: pg_dump writes into the file made here.
    tollgate_store::private::new_file(out, std::fs::OpenOptions::new().write(true))
        .with_context(|| format!("--out {} cannot be created", out.display()))?;
    let dumped = run_pg_tool(&pg_dump, &args, &target);
    snapshot.rollback().await.ok();
    conn.close().await.ok();
    if let Err(e) = dumped {
        let _ = std::fs::remove_file(out);
        return Err(e.context(format!("backing up {shown}")));
    }
    verify_pg_archive(out)?;
    Ok(figures)
}

/// Reads a `pg_dump` archive's table of contents: a truncated or damaged archive fails here.
fn verify_pg_archive(file: &Path) -> anyhow::Result<()> {
    let Some(pg_restore) = pg_tool("pg_restore") else {
        bail!(
            "pg_restore is not on PATH: install the PostgreSQL client to check or restore {}",
            file.display()
        );
    };
    let toc = run_pg_tool(
        &pg_restore,
        &[OsStr::new("--list"), file.as_os_str()],
        &PgTarget {
            url: String::new(),
            password: None,
        },
    )
    .with_context(|| format!("{} is not a readable pg_dump archive", file.display()))?;
    if !toc.contains("TABLE public usage_events") && !toc.contains("TABLE DATA public api_keys") {
        bail!(
            "{} is a pg_dump archive but not of a tollgate store",
            file.display()
        );
    }
    Ok(())
}

async fn pg_connect(url: &str) -> anyhow::Result<PgConnection> {
    let shown = redact_url(url);
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("{shown} is not a PostgreSQL URL: {e}"))?;
    options
        .connect()
        .await
        .with_context(|| format!("store {shown} is unreachable"))
}

/// What a backup file holds, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BackupKind {
    Sqlite,
    PgDump,
}

fn backup_kind(file: &Path) -> anyhow::Result<BackupKind> {
    let mut head = [0_u8; 16];
    let mut f = std::fs::File::open(file)
        .with_context(|| format!("backup {} cannot be opened", file.display()))?;
    let n = f
        .read(&mut head)
        .with_context(|| format!("backup {} cannot be read", file.display()))?;
    let head = &head[..n];
    if head.starts_with(SQLITE_MAGIC) {
        Ok(BackupKind::Sqlite)
    } else if head.starts_with(PGDUMP_MAGIC) {
        Ok(BackupKind::PgDump)
    } else {
        bail!(
            "{} is not a tollgate backup: neither a SQLite database nor a pg_dump custom archive",
            file.display()
        )
    }
}

/// `tollgate restore FILE`.
pub async fn restore(config: &Config, args: &RestoreArgs) -> anyhow::Result<()> {
    let file = &args.file;
    if !file.is_file() {
        bail!("backup {} does not exist", file.display());
    }
    let url = config.store_url();
    let kind = backup_kind(file)?;
    let (backend, figures) = match (kind, is_postgres(&url)) {
        (BackupKind::Sqlite, false) => ("sqlite", sqlite_restore(config, &url, file).await?),
        (BackupKind::PgDump, true) => ("postgres", pg_restore(&url, file).await?),
        (BackupKind::Sqlite, true) => bail!(
            "{} is a SQLite backup and the configured store is PostgreSQL: restore it into an \
             empty SQLite data folder (--data-dir), then move it with `tollgate store copy --to \
             postgres://…`",
            file.display()
        ),
        (BackupKind::PgDump, false) => bail!(
            "{} is a pg_dump archive and the configured store is SQLite: give \
             --database-url postgres://… (an empty database)",
            file.display()
        ),
    };
    // Migrations of this version, so an older backup is upgraded now rather than at start.
    let store = crate::store::open(config).await?;
    let unopenable = match config.master_key() {
        Some(master) => crate::master_key::unopenable(&url, &master).await?,
        None => Vec::new(),
    };
    store.close().await;
    let report = Report {
        file: file.clone(),
        backend,
        bytes: std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
        master_key_included: false,
        figures,
    };
    if args.json {
        output::json(&report)?;
    } else {
        output::line(&format!(
            "restored {} into the {backend} store {}: {} tables, {} usage events",
            file.display(),
            redact_url(&url),
            report.figures.tables.len(),
            report.figures.usage.events
        ));
    }
    if !unopenable.is_empty() {
        output::note(&format!(
            "WARNING: {} sealed values do not open with the configured master key ({}…): start \
             with the master key that was in force when the backup was taken",
            unopenable.len(),
            unopenable
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

/// Names what a folder holds, when it holds anything.
fn folder_contents(folder: &Path) -> Vec<String> {
    std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn sqlite_restore(config: &Config, url: &str, file: &Path) -> anyhow::Result<StoreFigures> {
    let target = SqliteStore::database_file(url)
        .map_err(|e| anyhow::anyhow!("store {}: {e}", redact_url(url)))?
        .ok_or_else(|| anyhow::anyhow!("cannot restore into an in-memory store"))?;
    let mut held = folder_contents(&config.data_dir);
    held.sort();
    if !held.is_empty() {
        bail!(
            "data folder {} is not empty (it holds {}): restore only into an empty or new data \
             folder (--data-dir); move the old one aside first",
            config.data_dir.display(),
            held.join(", ")
        );
    }
    for existing in [target.clone(), with_suffix(&target, "-wal")] {
        if existing.exists() {
            bail!(
                "store {} exists: restore only where no store is; move it aside first",
                existing.display()
            );
        }
    }
    let figures = verify_sqlite(file).await?;
    let folder = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    tollgate_store::private::create_dir(&folder)
        .with_context(|| format!("folder {} cannot be created", folder.display()))?;
    tollgate_store::private::create_dir(&config.data_dir).with_context(|| {
        format!(
            "data folder {} cannot be created",
            config.data_dir.display()
        )
    })?;
    // Copied under a temporary name and renamed: a store file is whole or absent.
    let partial = with_suffix(&target, ".restoring");
    let _ = std::fs::remove_file(&partial);
    let copied = (|| -> std::io::Result<()> {
        let mut from = std::fs::File::open(file)?;
        let mut to =
            tollgate_store::private::new_file(&partial, std::fs::OpenOptions::new().write(true))?;
        std::io::copy(&mut from, &mut to)?;
        to.sync_all()?;
        std::fs::rename(&partial, &target)
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&partial);
        return Err(e)
            .with_context(|| format!("copying the backup to {} failed", target.display()));
    }
    Ok(figures)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

async fn pg_restore(url: &str, file: &Path) -> anyhow::Result<StoreFigures> {
    let shown = redact_url(url);
    verify_pg_archive(file)?;
    let mut conn = pg_connect(url).await?;
    let tables: Vec<String> = sqlx::query_scalar(PG_TABLES)
        .fetch_all(&mut conn)
        .await
        .context("listing the target's tables")?;
    let migrated: Option<String> = sqlx::query_scalar(
        "SELECT relname::TEXT FROM pg_class WHERE oid = to_regclass('_sqlx_migrations')",
    )
    .fetch_optional(&mut conn)
    .await?;
    if !tables.is_empty() || migrated.is_some() {
        bail!(
            "database {shown} is not empty (it has {} tables): pg_restore only into a new, empty \
             database (CREATE DATABASE …)",
            tables.len() + usize::from(migrated.is_some())
        );
    }
    let Some(pg_restore) = pg_tool("pg_restore") else {
        bail!("pg_restore is not on PATH: install the PostgreSQL client");
    };
    let target = pg_target(url)?;
    let db_arg = format!("--dbname={}", target.url);
    run_pg_tool(
        &pg_restore,
        &[
            OsStr::new("--exit-on-error"),
            OsStr::new("--single-transaction"),
            OsStr::new("--no-owner"),
            OsStr::new("--no-privileges"),
            OsStr::new(&db_arg),
            file.as_os_str(),
        ],
        &target,
    )
    .with_context(|| format!("restoring {} into {shown}", file.display()))?;
    let figures = pg_figures(&mut conn)
        .await
        .context("counting the restored rows")?;
    conn.close().await.ok();
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_leave_the_url_decoded() {
        let t =
            pg_target("postgres://u:p%40ss%2Fw@h:5432/db?sslmode=disable").unwrap_or_else(|_| {
                PgTarget {
                    url: String::new(),
                    password: None,
                }
            });
        assert_eq!(t.password.as_deref(), Some("p@ss/w"));
        assert_eq!(t.url, "postgres://u@h:5432/db?sslmode=disable");
        let t = pg_target("postgres://u@h/db").unwrap_or_else(|_| PgTarget {
            url: String::new(),
            password: None,
        });
        assert_eq!(t.password, None);
    }
}
