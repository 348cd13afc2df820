//! Personal access tokens.

/// Expands, inside a module of a backend crate, the [`tollgate_store::AccessTokenQueries`] implementation of
/// `$store` over sqlx database `$db`, with the dialect fragments given (see [`crate::shared_queries`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __tokens {
    ($store:ident, $db:ty) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use tollgate_core::time::now_ms;
        use tollgate_store::{AccessToken, AccessTokenQueries, NewAccessToken, StoreError, StoreResult};

        use super::{$store, store_error};
        use $crate::reworded;

        type DbRow = <$db as sqlx::Database>::Row;

        const TOKEN_COLUMNS: &str =
            "id, user_id, name, token_hash, prefix, created_at, expires_at, revoked_at, last_used_at";

        fn token_from_row(row: &DbRow) -> StoreResult<AccessToken> {
            Ok(AccessToken {
                id: row.try_get("id").map_err(store_error)?,
                user_id: row.try_get("user_id").map_err(store_error)?,
                name: row.try_get("name").map_err(store_error)?,
                token_hash: row.try_get("token_hash").map_err(store_error)?,
                prefix: row.try_get("prefix").map_err(store_error)?,
                created_at_ms: row.try_get("created_at").map_err(store_error)?,
                expires_at_ms: row.try_get("expires_at").map_err(store_error)?,
                revoked_at_ms: row.try_get("revoked_at").map_err(store_error)?,
                last_used_at_ms: row.try_get("last_used_at").map_err(store_error)?,
            })
        }

        #[async_trait]
        impl AccessTokenQueries for $store {
            async fn create_access_token(&self, token: NewAccessToken) -> StoreResult<AccessToken> {
                let row = sqlx::query(&format!(
                    "INSERT INTO access_tokens (user_id, name, token_hash, prefix, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLUMNS}"
                ))
                .bind(token.user_id)
                .bind(&token.name)
                .bind(&token.token_hash)
                .bind(&token.prefix)
                .bind(now_ms())
                .bind(token.expires_at_ms)
                .fetch_one(self.writer())
                .await
                .map_err(|e| {
                    reworded(store_error(e), |err| match err {
                        StoreError::Conflict(_) => Some(StoreError::Conflict(
                            "an access token with this hash already exists".to_owned(),
                        )),
                        StoreError::NotFound(_) => Some(StoreError::NotFound(format!(
                            "user {} does not exist",
                            token.user_id
                        ))),
                        _ => None,
                    })
                })?;
                token_from_row(&row)
            }

            async fn access_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<AccessToken>> {
                let row = sqlx::query(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM access_tokens WHERE token_hash = $1"
                ))
                .bind(token_hash)
                .fetch_optional(self.reader())
                .await
                .map_err(store_error)?;
                row.as_ref().map(token_from_row).transpose()
            }

            async fn list_access_tokens(&self, user_id: i64) -> StoreResult<Vec<AccessToken>> {
                let rows = sqlx::query(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM access_tokens WHERE user_id = $1 \
                     ORDER BY created_at DESC, id DESC"
                ))
                .bind(user_id)
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?;
                rows.iter().map(token_from_row).collect()
            }

            async fn revoke_access_token(
                &self,
                user_id: i64,
                id: i64,
                at_ms: i64,
            ) -> StoreResult<AccessToken> {
                // Revoking twice keeps the first time; another user's token is not found.
                let row = sqlx::query(&format!(
                    "UPDATE access_tokens SET revoked_at = COALESCE(revoked_at, $1) \
                     WHERE id = $2 AND user_id = $3 RETURNING {TOKEN_COLUMNS}"
                ))
                .bind(at_ms)
                .bind(id)
                .bind(user_id)
                .fetch_optional(self.writer())
                .await
                .map_err(store_error)?;
                row.as_ref()
                    .map(token_from_row)
                    .transpose()?
                    .ok_or_else(|| StoreError::NotFound(format!("user {user_id} has no access token {id}")))
            }

            async fn touch_access_token(&self, id: i64, at_ms: i64) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE access_tokens SET last_used_at = $1 \
                     WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
                )
                .bind(at_ms)
                .bind(id)
                .execute(self.writer())
                .await
                .map_err(store_error)?;
                Ok(())
            }
        }
    };
}
