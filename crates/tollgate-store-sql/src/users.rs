//! Local accounts.

/// Expands, inside a module of a backend crate, the [`tollgate_store::UserQueries`] implementation of
/// `$store` over sqlx database `$db`, with the dialect fragments given (see [`crate::shared_queries`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __users {
    ($store:ident, $db:ty, $by_bytes:literal) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use tollgate_core::time::now_ms;
        use tollgate_store::{NewUser, StoreError, StoreResult, User, UserQueries};

        use super::{$store, store_error};
        use $crate::reworded;

        type DbRow = <$db as sqlx::Database>::Row;
        /// Orders text byte by byte, whatever the database's collation.
        const BY_BYTES: &str = $by_bytes;

        const USER_COLUMNS: &str =
            "id, email, display_name, password_hash, is_admin, disabled_at, created_at, last_login_at";

        fn user_from_row(row: &DbRow) -> StoreResult<User> {
            Ok(User {
                id: row.try_get("id").map_err(store_error)?,
                email: row.try_get("email").map_err(store_error)?,
                display_name: row.try_get("display_name").map_err(store_error)?,
                password_hash: row.try_get("password_hash").map_err(store_error)?,
                is_admin: row.try_get("is_admin").map_err(store_error)?,
                disabled_at_ms: row.try_get("disabled_at").map_err(store_error)?,
                created_at_ms: row.try_get("created_at").map_err(store_error)?,
                last_login_at_ms: row.try_get("last_login_at").map_err(store_error)?,
            })
        }

        fn user_missing(id: i64) -> StoreError {
            StoreError::NotFound(format!("user {id} does not exist"))
        }

        /// The user an `UPDATE … RETURNING` gave back, or `NotFound`.
        fn updated_user(row: Option<DbRow>, id: i64) -> StoreResult<User> {
            row.as_ref()
                .map(user_from_row)
                .transpose()?
                .ok_or_else(|| user_missing(id))
        }

        #[async_trait]
        impl UserQueries for $store {
            async fn create_user(&self, user: NewUser) -> StoreResult<User> {
                let row = sqlx::query(&format!(
                    "INSERT INTO users (email, display_name, password_hash, is_admin, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING {USER_COLUMNS}"
                ))
                .bind(&user.email)
                .bind(&user.display_name)
                .bind(user.password_hash.as_deref())
                .bind(user.is_admin)
                .bind(now_ms())
                .fetch_one(self.writer())
                .await
                .map_err(|e| {
                    reworded(store_error(e), |err| match err {
                        StoreError::Conflict(_) => Some(StoreError::Conflict(format!(
                            "user `{}` already exists",
                            user.email
                        ))),
                        _ => None,
                    })
                })?;
                user_from_row(&row)
            }

            async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>> {
                let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(store_error)?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
                let row = sqlx::query(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
                ))
                .bind(email)
                .fetch_optional(self.reader())
                .await
                .map_err(store_error)?;
                row.as_ref().map(user_from_row).transpose()
            }

            async fn list_users(&self) -> StoreResult<Vec<User>> {
                let rows = sqlx::query(&format!(
                    "SELECT {USER_COLUMNS} FROM users ORDER BY email{BY_BYTES}"
                ))
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?;
                rows.iter().map(user_from_row).collect()
            }

            async fn count_users(&self) -> StoreResult<i64> {
                sqlx::query_scalar("SELECT COUNT(*) FROM users")
                    .fetch_one(self.reader())
                    .await
                    .map_err(store_error)
            }

            async fn set_password(&self, user_id: i64, password_hash: &str) -> StoreResult<()> {
                let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(password_hash)
                    .bind(user_id)
                    .execute(self.writer())
                    .await
                    .map_err(store_error)?;
                if done.rows_affected() == 0 {
                    return Err(user_missing(user_id));
                }
                Ok(())
            }

            async fn set_user_disabled(
                &self,
                user_id: i64,
                disabled_at_ms: Option<i64>,
            ) -> StoreResult<User> {
                let row = sqlx::query(&format!(
                    "UPDATE users SET disabled_at = $1 WHERE id = $2 RETURNING {USER_COLUMNS}"
                ))
                .bind(disabled_at_ms)
                .bind(user_id)
                .fetch_optional(self.writer())
                .await
                .map_err(store_error)?;
                updated_user(row, user_id)
            }

            async fn set_user_admin(&self, user_id: i64, is_admin: bool) -> StoreResult<User> {
                let row = sqlx::query(&format!(
                    "UPDATE users SET is_admin = $1 WHERE id = $2 RETURNING {USER_COLUMNS}"
                ))
                .bind(is_admin)
                .bind(user_id)
                .fetch_optional(self.writer())
                .await
                .map_err(store_error)?;
                updated_user(row, user_id)
            }

            async fn set_display_name(&self, user_id: i64, display_name: &str) -> StoreResult<User> {
                let row = sqlx::query(&format!(
                    "UPDATE users SET display_name = $1 WHERE id = $2 RETURNING {USER_COLUMNS}"
                ))
                .bind(display_name)
                .bind(user_id)
                .fetch_optional(self.writer())
                .await
                .map_err(store_error)?;
                updated_user(row, user_id)
            }

            async fn touch_login(&self, user_id: i64, at_ms: i64) -> StoreResult<()> {
                let done = sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
                    .bind(at_ms)
                    .bind(user_id)
                    .execute(self.writer())
                    .await
                    .map_err(store_error)?;
                if done.rows_affected() == 0 {
                    return Err(user_missing(user_id));
                }
                Ok(())
            }
        }
    };
}
