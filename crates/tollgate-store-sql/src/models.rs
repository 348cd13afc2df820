//! Model routing: targets and models.

/// Expands, inside a module of a backend crate, the [`tollgate_store::ModelQueries`]
/// implementation of `$store` over sqlx database `$db` (see [`crate::shared_queries`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __models {
    ($store:ident, $db:ty, $by_bytes:literal) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use tollgate_core::llm::Provider;
        use tollgate_core::time::now_ms;
        use tollgate_store::{
            ModelQueries, ModelRecord, NewTarget, StoreError, StoreResult, TargetRecord,
            TargetUpdate,
        };

        use super::{store_error, $store};
        use $crate::reworded;

        type DbRow = <$db as sqlx::Database>::Row;
        /// Orders text byte by byte, whatever the database's collation.
        const BY_BYTES: &str = $by_bytes;

        const TARGET_COLUMNS: &str =
            "id, name, provider, base_url, settings, sealed_credential, created_at, updated_at";
        const MODEL_COLUMNS: &str = "id, name, settings, created_at, updated_at";

        fn target_from_row(row: &DbRow) -> StoreResult<TargetRecord> {
            let name: String = row.try_get("name").map_err(store_error)?;
            let provider: String = row.try_get("provider").map_err(store_error)?;
            let provider = provider
                .parse::<Provider>()
                .map_err(|e| StoreError::Internal(format!("target `{name}`: {e}")))?;
            Ok(TargetRecord {
                id: row.try_get("id").map_err(store_error)?,
                name,
                provider,
                base_url: row.try_get("base_url").map_err(store_error)?,
                settings: row.try_get("settings").map_err(store_error)?,
                sealed_credential: row.try_get("sealed_credential").map_err(store_error)?,
                created_at_ms: row.try_get("created_at").map_err(store_error)?,
                updated_at_ms: row.try_get("updated_at").map_err(store_error)?,
            })
        }

        fn model_from_row(row: &DbRow) -> StoreResult<ModelRecord> {
            Ok(ModelRecord {
                id: row.try_get("id").map_err(store_error)?,
                name: row.try_get("name").map_err(store_error)?,
                settings: row.try_get("settings").map_err(store_error)?,
                created_at_ms: row.try_get("created_at").map_err(store_error)?,
                updated_at_ms: row.try_get("updated_at").map_err(store_error)?,
            })
        }

        #[async_trait]
        impl ModelQueries for $store {
            async fn create_target(&self, target: NewTarget) -> StoreResult<TargetRecord> {
                let now = now_ms();
                let row = sqlx::query(&format!(
                    "INSERT INTO llm_targets (name, provider, base_url, settings, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TARGET_COLUMNS}"
                ))
                .bind(&target.name)
                .bind(target.provider.as_str())
                .bind(&target.base_url)
                .bind(&target.settings)
                .bind(now)
                .bind(now)
                .fetch_one(self.writer())
                .await
                .map_err(|e| {
                    reworded(store_error(e), |err| match err {
                        StoreError::Conflict(_) => Some(StoreError::Conflict(format!(
                            "a target named `{}` already exists",
                            target.name
                        ))),
                        _ => None,
                    })
                })?;
                target_from_row(&row)
            }

            async fn list_targets(&self) -> StoreResult<Vec<TargetRecord>> {
                let rows = sqlx::query(&format!(
                    "SELECT {TARGET_COLUMNS} FROM llm_targets ORDER BY name{BY_BYTES}"
                ))
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?;
                rows.iter().map(target_from_row).collect()
            }

            async fn update_target(
                &self,
                id: i64,
                update: TargetUpdate,
            ) -> StoreResult<TargetRecord> {
                let TargetUpdate {
                    base_url,
                    settings,
                    sealed_credential,
                } = update;
                let row = sqlx::query(&format!(
                    "UPDATE llm_targets SET base_url = COALESCE($1, base_url), \
                     settings = COALESCE($2, settings), \
                     sealed_credential = CASE WHEN $3 THEN $4 ELSE sealed_credential END, \
                     updated_at = $5 WHERE id = $6 RETURNING {TARGET_COLUMNS}"
                ))
                .bind(base_url.as_deref())
                .bind(settings.as_deref())
                .bind(sealed_credential.is_some())
                .bind(sealed_credential.flatten())
                .bind(now_ms())
                .bind(id)
                .fetch_optional(self.writer())
                .await
                .map_err(store_error)?;
                row.as_ref()
                    .map(target_from_row)
                    .transpose()?
                    .ok_or_else(|| StoreError::NotFound(format!("target {id} does not exist")))
            }

            async fn delete_target(&self, id: i64) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM llm_targets WHERE id = $1")
                    .bind(id)
                    .execute(self.writer())
                    .await
                    .map_err(store_error)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("target {id} does not exist")));
                }
                Ok(())
            }

            async fn create_model(&self, name: &str, settings: &str) -> StoreResult<ModelRecord> {
                let now = now_ms();
                let row = sqlx::query(&format!(
                    "INSERT INTO llm_models (name, settings, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4) RETURNING {MODEL_COLUMNS}"
                ))
                .bind(name)
                .bind(settings)
                .bind(now)
                .bind(now)
                .fetch_one(self.writer())
                .await
                .map_err(|e| {
                    reworded(store_error(e), |err| match err {
                        StoreError::Conflict(_) => Some(StoreError::Conflict(format!(
                            "a model named `{name}` already exists"
                        ))),
                        _ => None,
                    })
                })?;
                model_from_row(&row)
            }

            async fn list_models(&self) -> StoreResult<Vec<ModelRecord>> {
                let rows = sqlx::query(&format!(
                    "SELECT {MODEL_COLUMNS} FROM llm_models ORDER BY name{BY_BYTES}"
                ))
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?;
                rows.iter().map(model_from_row).collect()
            }

            async fn update_model(&self, id: i64, settings: &str) -> StoreResult<ModelRecord> {
                let row = sqlx::query(&format!(
                    "UPDATE llm_models SET settings = $1, updated_at = $2 WHERE id = $3 \
                     RETURNING {MODEL_COLUMNS}"
                ))
                .bind(settings)
                .bind(now_ms())
                .bind(id)
                .fetch_optional(self.writer())
                .await
                .map_err(store_error)?;
                row.as_ref()
                    .map(model_from_row)
                    .transpose()?
                    .ok_or_else(|| StoreError::NotFound(format!("model {id} does not exist")))
            }

            async fn delete_model(&self, id: i64) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM llm_models WHERE id = $1")
                    .bind(id)
                    .execute(self.writer())
                    .await
                    .map_err(store_error)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("model {id} does not exist")));
                }
                Ok(())
            }
        }
    };
}
