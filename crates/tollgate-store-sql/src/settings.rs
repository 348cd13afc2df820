//! Instance settings.

/// Expands, inside a module of a backend crate, the [`tollgate_store::SettingQueries`] implementation of
/// `$store` over sqlx database `$db`, with the dialect fragments given (see [`crate::shared_queries`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __settings {
    ($store:ident, $db:ty) => {
        use async_trait::async_trait;
        use tollgate_core::time::now_ms;
        use tollgate_store::{SettingQueries, StoreResult};

        use super::{store_error, $store};

        #[async_trait]
        impl SettingQueries for $store {
            async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
                sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                    .bind(name)
                    .fetch_optional(self.reader())
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
                .execute(self.writer())
                .await
                .map_err(store_error)?;
                Ok(())
            }

            async fn delete_setting(&self, name: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM settings WHERE name = $1")
                    .bind(name)
                    .execute(self.writer())
                    .await
                    .map_err(store_error)?;
                Ok(())
            }
        }
    };
}
