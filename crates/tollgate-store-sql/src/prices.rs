//! Price overrides.

/// Expands, inside a module of a backend crate, the [`tollgate_store::PriceQueries`]
/// implementation of `$store` over sqlx database `$db` (see [`crate::shared_queries`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __prices {
    ($store:ident, $db:ty, $by_bytes:literal) => {
        use async_trait::async_trait;
        use sqlx::Row as _;
        use tollgate_core::pricing::ModelPrice;
        use tollgate_store::{PriceOverride, PriceQueries, StoreResult};

        use super::{store_error, $store};

        #[async_trait]
        impl PriceQueries for $store {
            async fn list_price_overrides(&self) -> StoreResult<Vec<PriceOverride>> {
                let rows = sqlx::query(concat!(
                    "SELECT model, input, output, cached_input, reasoning, updated_by, updated_at \
                     FROM model_prices ORDER BY model",
                    $by_bytes
                ))
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?;
                rows.iter()
                    .map(|row| {
                        Ok(PriceOverride {
                            model: row.try_get("model").map_err(store_error)?,
                            price: ModelPrice {
                                input: row.try_get("input").map_err(store_error)?,
                                output: row.try_get("output").map_err(store_error)?,
                                cached_input: row.try_get("cached_input").map_err(store_error)?,
                                reasoning: row.try_get("reasoning").map_err(store_error)?,
                            },
                            updated_by: row.try_get("updated_by").map_err(store_error)?,
                            updated_at_ms: row.try_get("updated_at").map_err(store_error)?,
                        })
                    })
                    .collect()
            }

            async fn set_price_override(&self, o: &PriceOverride) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO model_prices \
                     (model, input, output, cached_input, reasoning, updated_by, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (model) DO UPDATE SET input = excluded.input, \
                     output = excluded.output, cached_input = excluded.cached_input, \
                     reasoning = excluded.reasoning, updated_by = excluded.updated_by, \
                     updated_at = excluded.updated_at",
                )
                .bind(&o.model)
                .bind(o.price.input)
                .bind(o.price.output)
                .bind(o.price.cached_input)
                .bind(o.price.reasoning)
                .bind(&o.updated_by)
                .bind(o.updated_at_ms)
                .execute(self.writer())
                .await
                .map_err(store_error)?;
                Ok(())
            }

            async fn delete_price_override(&self, model: &str) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM model_prices WHERE model = $1")
                    .bind(model)
                    .execute(self.writer())
                    .await
                    .map_err(store_error)?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}
