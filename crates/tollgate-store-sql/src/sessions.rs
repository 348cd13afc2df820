//! Sign-in sessions.

/// Expands, inside a module of a backend crate, the [`tollgate_store::SessionQueries`] implementation of
/// `$store` over sqlx database `$db`, with the dialect fragments given (see [`crate::shared_queries`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __sessions {
    ($store:ident, $db:ty) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use tollgate_store::{SessionQueries, SessionRecord, StoreError, StoreResult};

        use super::{$store, store_error};
        use $crate::reworded;

        type DbRow = <$db as sqlx::Database>::Row;

        const SESSION_COLUMNS: &str =
            "id_hash, user_id, csrf_token, created_at, expires_at, revoked_at, ip, user_agent";

        fn session_from_row(row: &DbRow) -> StoreResult<SessionRecord> {
            Ok(SessionRecord {
                id_hash: row.try_get("id_hash").map_err(store_error)?,
                user_id: row.try_get("user_id").map_err(store_error)?,
                csrf_token: row.try_get("csrf_token").map_err(store_error)?,
                created_at_ms: row.try_get("created_at").map_err(store_error)?,
                expires_at_ms: row.try_get("expires_at").map_err(store_error)?,
                revoked_at_ms: row.try_get("revoked_at").map_err(store_error)?,
                ip: row.try_get("ip").map_err(store_error)?,
                user_agent: row.try_get("user_agent").map_err(store_error)?,
            })
        }

        #[async_trait]
        impl SessionQueries for $store {
            async fn create_session(&self, session: SessionRecord) -> StoreResult<()> {
                sqlx::query(&format!(
                    "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
                .bind(&session.id_hash)
                .bind(session.user_id)
                .bind(&session.csrf_token)
                .bind(session.created_at_ms)
                .bind(session.expires_at_ms)
                .bind(session.revoked_at_ms)
                .bind(session.ip.as_deref())
                .bind(session.user_agent.as_deref())
                .execute(self.writer())
                .await
                .map_err(|e| {
                    reworded(store_error(e), |err| match err {
                        StoreError::Conflict(_) => Some(StoreError::Conflict(
                            "a session with this hash already exists".to_owned(),
                        )),
                        StoreError::NotFound(_) => Some(StoreError::NotFound(format!(
                            "user {} does not exist",
                            session.user_id
                        ))),
                        _ => None,
                    })
                })?;
                Ok(())
            }

            async fn session_by_hash(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
                let row = sqlx::query(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1"
                ))
                .bind(id_hash)
                .fetch_optional(self.reader())
                .await
                .map_err(store_error)?;
                row.as_ref().map(session_from_row).transpose()
            }

            async fn revoke_session(&self, id_hash: &str, at_ms: i64) -> StoreResult<()> {
                // Signing out of an unknown or already closed session is not an error.
                sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE id_hash = $2 AND revoked_at IS NULL",
                )
                .bind(at_ms)
                .bind(id_hash)
                .execute(self.writer())
                .await
                .map_err(store_error)?;
                Ok(())
            }

            async fn revoke_user_sessions(&self, user_id: i64, at_ms: i64) -> StoreResult<u64> {
                // Open: neither revoked nor expired at `at_ms`.
                let done = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 \
                     WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $1",
                )
                .bind(at_ms)
                .bind(user_id)
                .execute(self.writer())
                .await
                .map_err(store_error)?;
                Ok(done.rows_affected())
            }

            async fn purge_sessions(&self, before_ms: i64) -> StoreResult<u64> {
                let done = sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
                    .bind(before_ms)
                    .execute(self.writer())
                    .await
                    .map_err(store_error)?;
                Ok(done.rows_affected())
            }
        }
    };
}
