//! Opens the store named by the configuration: the backend is chosen from the URL scheme.

use std::sync::Arc;

use anyhow::Context;
use tollgate_store::Store;
use tollgate_store_postgres::PostgresStore;
use tollgate_store_sqlite::SqliteStore;

use crate::config::{Config, redact_url};

/// Connects to the configured store and applies pending migrations.
pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.store_url();
    let shown = redact_url(&url);
    let store: Arc<dyn Store> =
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
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
