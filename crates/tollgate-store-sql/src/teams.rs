//! Teams.

/// Expands, inside a module of a backend crate, the [`tollgate_store::TeamQueries`] implementation of
/// `$store` over sqlx database `$db`, with the dialect fragments given (see [`crate::shared_queries`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __teams {
    ($store:ident, $db:ty, $by_bytes:literal, $for_update:literal) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use tollgate_core::time::now_ms;
        use tollgate_store::{DEFAULT_TEAM, StoreError, StoreResult, Team, TeamQueries};

        use super::{$store, store_error};
        use $crate::reworded;

        type DbRow = <$db as sqlx::Database>::Row;
        /// Orders text byte by byte, whatever the database's collation.
        const BY_BYTES: &str = $by_bytes;
        /// Locks the rows read until the transaction ends, where the database locks rows.
        const FOR_UPDATE: &str = $for_update;

        const TEAM_COLUMNS: &str = "id, name, created_at";

        fn team_missing(id: i64) -> StoreError {
            StoreError::NotFound(format!("team {id} does not exist"))
        }

        fn name_taken(name: &str) -> impl FnOnce(&StoreError) -> Option<StoreError> + '_ {
            move |err| match err {
                StoreError::Conflict(_) => Some(StoreError::Conflict(format!(
                    "a team named `{name}` already exists"
                ))),
                _ => None,
            }
        }

        fn team_from_row(row: &DbRow) -> StoreResult<Team> {
            Ok(Team {
                id: row.try_get("id").map_err(store_error)?,
                name: row.try_get("name").map_err(store_error)?,
                created_at_ms: row.try_get("created_at").map_err(store_error)?,
            })
        }

        #[async_trait]
        impl TeamQueries for $store {
            async fn ensure_team(&self, name: &str) -> StoreResult<Team> {
                // DO NOTHING on an existing name: no row changes, so the revision stays put.
                sqlx::query(
                    "INSERT INTO teams (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(now_ms())
                .execute(self.writer())
                .await
                .map_err(store_error)?;
                let row = sqlx::query(&format!("SELECT {TEAM_COLUMNS} FROM teams WHERE name = $1"))
                    .bind(name)
                    .fetch_one(self.writer())
                    .await
                    .map_err(store_error)?;
                team_from_row(&row)
            }

            async fn team_by_name(&self, name: &str) -> StoreResult<Option<Team>> {
                let row = sqlx::query(&format!("SELECT {TEAM_COLUMNS} FROM teams WHERE name = $1"))
                    .bind(name)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(store_error)?;
                row.as_ref().map(team_from_row).transpose()
            }

            async fn list_teams(&self) -> StoreResult<Vec<Team>> {
                let rows = sqlx::query(&format!(
                    "SELECT {TEAM_COLUMNS} FROM teams ORDER BY name{BY_BYTES}"
                ))
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?;
                rows.iter().map(team_from_row).collect()
            }

            async fn create_team(&self, name: &str) -> StoreResult<Team> {
                let row = sqlx::query(&format!(
                    "INSERT INTO teams (name, created_at) VALUES ($1, $2) RETURNING {TEAM_COLUMNS}"
                ))
                .bind(name)
                .bind(now_ms())
                .fetch_one(self.writer())
                .await
                .map_err(|e| reworded(store_error(e), name_taken(name)))?;
                team_from_row(&row)
            }

            async fn team_by_id(&self, id: i64) -> StoreResult<Option<Team>> {
                let row = sqlx::query(&format!("SELECT {TEAM_COLUMNS} FROM teams WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(store_error)?;
                row.as_ref().map(team_from_row).transpose()
            }

            async fn rename_team(&self, id: i64, name: &str) -> StoreResult<Team> {
                let row = sqlx::query(&format!(
                    "UPDATE teams SET name = $1 WHERE id = $2 RETURNING {TEAM_COLUMNS}"
                ))
                .bind(name)
                .bind(id)
                .fetch_optional(self.writer())
                .await
                .map_err(|e| reworded(store_error(e), name_taken(name)))?;
                row.as_ref()
                    .map(team_from_row)
                    .transpose()?
                    .ok_or_else(|| team_missing(id))
            }

            async fn delete_team(&self, id: i64) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                // The lock makes a key or route being created for the team wait, then fail.
                let row = sqlx::query(&format!(
                    "SELECT {TEAM_COLUMNS} FROM teams WHERE id = $1{FOR_UPDATE}"
                ))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
                let team = row
                    .as_ref()
                    .map(team_from_row)
                    .transpose()?
                    .ok_or_else(|| team_missing(id))?;
                if team.name == DEFAULT_TEAM {
                    return Err(StoreError::Conflict(format!(
                        "the `{DEFAULT_TEAM}` team cannot be deleted: every instance keeps it"
                    )));
                }
                let (keys, routes): (i64, i64) = sqlx::query_as(
                    "SELECT (SELECT COUNT(*) FROM api_keys WHERE team_id = $1), \
                     (SELECT COUNT(*) FROM routes WHERE team_id = $1)",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(store_error)?;
                if keys > 0 || routes > 0 {
                    return Err(StoreError::Conflict(format!(
                        "team `{}` still owns {keys} key(s) and {routes} route(s): move or delete them first",
                        team.name
                    )));
                }
                // Memberships and invitations go with the team (ON DELETE CASCADE).
                sqlx::query("DELETE FROM teams WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        reworded(store_error(e), |err| match err {
                            StoreError::NotFound(_) => Some(StoreError::Conflict(format!(
                                "team `{}` still owns keys or routes: move or delete them first",
                                team.name
                            ))),
                            _ => None,
                        })
                    })?;
                tx.commit().await.map_err(store_error)
            }
        }
    };
}
