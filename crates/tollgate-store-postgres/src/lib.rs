//! PostgreSQL backend of the tollgate store: several instances share one database.

mod analytics;
mod binary_copy;
mod partitions;
mod sketches;
mod usage;

tollgate_store_sql::shared_queries! {
    store: PostgresStore,
    database: sqlx::Postgres,
    // The database's default collation follows the locale; SQLite and the API sort by bytes.
    by_bytes: " COLLATE \"C\"",
    // Keeps a referenced row (a key's route, an invitation's team) from being deleted meanwhile.
    for_key_share: " FOR KEY SHARE",
    // NO KEY: keys, routes and members may still be added to a team whose row is locked.
    for_no_key_update: " FOR NO KEY UPDATE",
    for_update: " FOR UPDATE",
}

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use tollgate_store::{DEFAULT_TEAM, Store, StoreError, StoreResult, TeamQueries};

/// How long a caller waits for a connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections per instance: the gateway writes usage on one, the console and key look-ups read.
const MAX_CONNECTIONS: u32 = 10;

/// A tollgate store in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Days whose `usage_events` partition is known to exist (shared by clones).
    known_days: Arc<partitions::KnownDays>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`). Does not apply
    /// migrations: see [`Store::migrate`].
    pub async fn connect(url: &str) -> StoreResult<Self> {
        // The URL may hold a password: it never goes into a message.
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Internal(format!("invalid PostgreSQL URL: {e}")))?;
        let target = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_default()
        );
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| match store_error(e) {
                StoreError::Unavailable(msg) => StoreError::Unavailable(format!(
                    "cannot connect to PostgreSQL at {target}: {msg}"
                )),
                other => other,
            })?;
        Ok(Self {
            pool,
            known_days: Arc::default(),
        })
    }
}

impl PostgresStore {
    /// The pool statements that write run on: the one pool.
    fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// The pool statements that read run on: the one pool.
    fn reader(&self) -> &PgPool {
        &self.pool
    }

    /// A write transaction (READ COMMITTED); statements lock the rows they must keep.
    async fn begin_write(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(store_error)
    }

    /// A read-only transaction whose statements all see one snapshot.
    async fn begin_snapshot(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(store_error)
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        // sqlx holds an advisory lock while migrating: instances starting together take turns.
        sqlx::migrate!("./migrations")
            .run(&self.pool)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => store_error(e),
                other => StoreError::Internal(format!("migration failed: {other}")),
            })?;
        self.ensure_team(DEFAULT_TEAM).await?;
        self.ensure_partitions_ahead().await?;
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn revision(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT revision FROM store_revision WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// Whether a PostgreSQL SQLSTATE means "cannot be used right now" rather than "bad request".
fn is_unavailable_state(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources: too many connections, disk full
        || code.starts_with("57P") // server shutting down, cannot connect now
        || code.starts_with("28") // authentication failed
        || code == "3D000" // the database does not exist
        || code == "25006" // read-only transaction (a standby)
        || code == "40001" // serialization failure: try again
        || code == "40P01" // deadlock: try again
}

/// Maps an sqlx error to the store's error kinds.
fn store_error(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                StoreError::Conflict(format!(
                    "{} ({})",
                    db.message(),
                    db.constraint().unwrap_or("")
                ))
            } else if db.is_foreign_key_violation() {
                StoreError::NotFound(format!(
                    "{} ({})",
                    db.message(),
                    db.constraint().unwrap_or("")
                ))
            } else if db.code().is_some_and(|c| is_unavailable_state(&c)) {
                StoreError::Unavailable(db.message().to_owned())
            } else {
                StoreError::Internal(db.to_string())
            }
        }
        sqlx::Error::Io(e) => StoreError::Unavailable(e.to_string()),
        e @ (sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed) => StoreError::Unavailable(e.to_string()),
        other => StoreError::Internal(other.to_string()),
    }
}
