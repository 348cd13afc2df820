//! SQLite backend of the tollgate store: the embedded default, one file in WAL mode.
//!
//! Writes go through a pool of a single connection (SQLite has one writer per file; queueing in
//! the pool is cheaper than busy-waiting on the file lock), reads through a small pool of their
//! own so that dashboards never wait behind a usage batch. A fourth kind of connection copies
//! the WAL back into the file (see `checkpoint`), so that the writer's thread spends its time on
//! usage batches.

mod analytics;
mod background;
mod checkpoint;
mod search;
mod sketches;
mod usage;

// The single writer with `BEGIN IMMEDIATE` excludes every other writer, also in other processes:
// rows read in a write transaction need no lock of their own.
tollgate_store_sql::shared_queries! {
    store: SqliteStore,
    database: sqlx::Sqlite,
    by_bytes: "",
    for_key_share: "",
    for_no_key_update: "",
    for_update: "",
}

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use tollgate_store::{DEFAULT_TEAM, Store, StoreError, StoreResult, TeamQueries};

use crate::checkpoint::Checkpointer;

/// How long a statement waits for another process (the CLI, a second instance) holding the file lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a free connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Page cache of the writer connection (negative: KiB). A usage batch dirties a few MB of pages
/// (the rows, their two indexes, two roll-up tables and theirs); with SQLite's default of 2 MB
/// the cache spills them to the WAL mid-transaction and reads the hot pages back every batch.
/// 16 MiB holds them with room to spare: 64 MiB wrote 7 % slower at 10 M events (more pages to
/// allocate and walk) and was most of the gateway's RSS under load (bench/README.md).
const WRITER_CACHE_SIZE: &str = "-16384";
/// WAL pages after which the writer checkpoints itself (SQLite's default is 1000). The
/// checkpoint task does most of the copying; this bounds the WAL when it falls behind.
const WRITER_AUTOCHECKPOINT_PAGES: &str = "8192";
/// Bytes the WAL file is cut back to when the writer restarts it: a long read (an export) holds
/// checkpoints back and lets the WAL grow meanwhile.
const WAL_SIZE_LIMIT: &str = "67108864";
/// Page cache of each read connection (negative: KiB). Dashboards scan the roll-ups (tens of MB
/// at 10 M events) in index order; with the default 2 MB every page is read again each time.
const READER_CACHE_SIZE: &str = "-16384";
/// Bytes of the file the read connections map into memory: pages outside their cache are read
/// without a system call each.
const READER_MMAP_SIZE: &str = "268435456";
/// Read connections; WAL lets them run beside the writer.
const READ_CONNECTIONS: u32 = 4;

/// A tollgate store in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// WAL checkpoints off the writer's thread; none for an in-memory database.
    checkpointer: Option<Arc<Checkpointer>>,
}

impl SqliteStore {
    /// The database file a `sqlite:` URL names, or `None` for an in-memory database. Lets a
    /// caller check that a store exists before [`SqliteStore::connect`] would create it.
    pub fn database_file(url: &str) -> StoreResult<Option<std::path::PathBuf>> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("invalid SQLite URL `{url}`: {e}")))?;
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Ok(None);
        }
        Ok(Some(options.get_filename().to_path_buf()))
    }

    /// The newest migration this build applies: a backup whose store has a newer one was
    /// written by a newer tollgate.
    pub fn latest_migration() -> i64 {
        sqlx::migrate!("./migrations")
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0)
    }

    /// Opens (creating the file and its folder when missing) the database at `url`, e.g.
    /// `sqlite://tollgate-data/tollgate.db`. Does not apply migrations: see [`Store::migrate`].
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("invalid SQLite URL `{url}`: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if !in_memory {
            // The database, and the -wal and -shm files SQLite gives the database's mode, are
            // the service's alone: create the file (and any missing folder) private first.
            let file = options.get_filename().to_path_buf();
            let parent = file.parent().filter(|p| !p.as_os_str().is_empty());
            if let Some(parent) = parent {
                tollgate_store::private::create_dir(parent).map_err(|e| {
                    StoreError::Unavailable(format!(
                        "cannot create the folder {} for the SQLite database: {e}",
                        parent.display()
                    ))
                })?;
            }
            tollgate_store::private::create_file(&file).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot create the SQLite database {}: {e}",
                    file.display()
                ))
            })?;
        }
        let mut writer_options = options
            .clone()
            .pragma("cache_size", WRITER_CACHE_SIZE)
            .pragma("temp_store", "memory")
            .thread_name(background::thread_name(background::WRITER_THREAD));
        if !in_memory {
            writer_options = writer_options
                .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)
                .pragma("journal_size_limit", WAL_SIZE_LIMIT);
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // Each new writer connection (the pool replaces them now and then) has a new thread.
            .after_connect(|_, _| {
                Box::pin(async {
                    background::lower_priority(background::WRITER_THREAD);
                    Ok(())
                })
            })
            .connect_with(writer_options)
            .await
            .map_err(|e| opening_error(url, e))?;
        // An in-memory database lives in its connections: readers would see another database.
        let (reader, checkpointer) = if in_memory {
            (writer.clone(), None)
        } else {
            let reader = SqlitePoolOptions::new()
                .max_connections(READ_CONNECTIONS)
                .min_connections(0)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(
                    options
                        .clone()
                        .pragma("cache_size", READER_CACHE_SIZE)
                        .pragma("mmap_size", READER_MMAP_SIZE),
                )
                .await
                .map_err(|e| opening_error(url, e))?;
            let checkpoints =
                options.thread_name(background::thread_name(background::CHECKPOINT_THREAD));
            (reader, Some(Arc::new(Checkpointer::start(checkpoints))))
        };
        Ok(Self {
            writer,
            reader,
            checkpointer,
        })
    }
}

impl SqliteStore {
    /// The pool of the single writer connection.
    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The pool of the read connections.
    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// A write transaction on the writer, holding the file's write lock from its start: other
    /// processes wait (up to the busy timeout) rather than fail when they try to upgrade later.
    async fn begin_write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(store_error)
    }

    /// A read transaction: in WAL mode its statements all see the snapshot of its first read.
    async fn begin_snapshot(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.reader.begin().await.map_err(store_error)
    }
}

fn opening_error(url: &str, err: sqlx::Error) -> StoreError {
    match store_error(err) {
        StoreError::Unavailable(msg) => {
            StoreError::Unavailable(format!("cannot open SQLite database `{url}`: {msg}"))
        }
        other => other,
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations")
            .run(&self.writer)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => store_error(e),
                other => StoreError::Internal(format!("migration failed: {other}")),
            })?;
        self.ensure_team(DEFAULT_TEAM).await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn revision(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT revision FROM store_revision WHERE id = 1")
            .fetch_one(&self.reader)
            .await
            .map_err(store_error)
    }

    async fn close(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.stop().await;
        }
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// SQLite primary result codes that mean "the file cannot be used right now", not "bad data".
const UNAVAILABLE_CODES: [i32; 6] = [
    5,  // SQLITE_BUSY: another process held the lock past the busy timeout
    6,  // SQLITE_LOCKED
    8,  // SQLITE_READONLY
    10, // SQLITE_IOERR
    13, // SQLITE_FULL
    14, // SQLITE_CANTOPEN
];

/// Maps an sqlx error to the store's error kinds.
fn store_error(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Database(db) => {
            let primary = db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .map(|c| c & 0xff);
            if db.is_unique_violation() {
                StoreError::Conflict(db.message().to_owned())
            } else if db.is_foreign_key_violation() {
                StoreError::NotFound(db.message().to_owned())
            } else if primary.is_some_and(|c| UNAVAILABLE_CODES.contains(&c)) {
                StoreError::Unavailable(db.message().to_owned())
            } else {
                StoreError::Internal(db.to_string())
            }
        }
        sqlx::Error::Io(e) => StoreError::Unavailable(e.to_string()),
        e @ (sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed) => {
            StoreError::Unavailable(e.to_string())
        }
        other => StoreError::Internal(other.to_string()),
    }
}
