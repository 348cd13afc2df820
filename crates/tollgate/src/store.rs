//! Opens the store named by the configuration: the backend is chosen from the URL scheme.

use std::sync::Arc;

use anyhow::Context;
use tollgate_store::Store;
use tollgate_store_postgres::PostgresStore;
use tollgate_store_sqlite::SqliteStore;

use crate::config::{Config, redact_url};

/// Opens the configured store, which must exist already, and applies pending migrations. Every
/// command but `serve` and `migrate` uses this: a mistyped URL is an error, never a new store.
pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.store_url();
    if !is_postgres(&url) {
        let file = SqliteStore::database_file(&url)
            .map_err(|e| anyhow::anyhow!("store {}: {e}", redact_url(&url)))?;
        if let Some(file) = file
            && !file.is_file()
        {
            anyhow::bail!(
                "store {} does not exist: check --database-url, TOLLGATE_DATABASE_URL and \
                 --data-dir, or create it with `tollgate migrate` (or `tollgate serve`)",
                redact_url(&url)
            );
        }
    }
    connect(&url).await
}

/// Opens the configured store, creating a SQLite file and its folder when missing, and applies
/// pending migrations: for `serve` and `migrate` only.
pub async fn open_or_create(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    connect(&config.store_url()).await
}

/// Whether a store URL names PostgreSQL.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

async fn connect(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let url = url.to_owned();
    let shown = redact_url(&url);
    let store: Arc<dyn Store> = if is_postgres(&url) {
        Arc::new(
            PostgresStore::connect(&url)
                .await
                .with_context(|| format!("store {shown} is unreachable"))?,
        )
    } else {
        Arc::new(
            SqliteStore::connect(&url)
                .await
                .with_context(|| format!("store {shown} cannot be opened"))?,
        )
    };
    store
        .migrate()
        .await
        .with_context(|| format!("store {shown}: migrations failed"))?;
    // Quotas of earlier versions were settings; they are budgets of the limit model now.
    let moved = tollgate_console::rules::limits::migrate_quota_settings(
        store.as_ref(),
        "system:quota-migration",
    )
    .await
    .with_context(|| format!("store {shown}: moving quota settings into budgets failed"))?;
    if moved.budgets > 0 {
        tracing::info!(
            budgets = moved.budgets,
            "quota settings moved into token budgets"
        );
    }
    Ok(store)
}
