//! Instance settings.

use async_trait::async_trait;
use tollgate_core::time::now_ms;
use tollgate_store::{SettingQueries, StoreResult};

use crate::{PostgresStore, store_error};

#[async_trait]
impl SettingQueries for PostgresStore {
    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)
    }

    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
             updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }
}
