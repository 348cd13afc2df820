//! API keys.

/// Expands, inside a module of a backend crate, the [`tollgate_store::KeyQueries`] implementation of
/// `$store` over sqlx database `$db`, with the dialect fragments given (see [`crate::shared_queries`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __keys {
    ($store:ident, $db:ty, $for_key_share:literal, $for_update:literal) => {
        use std::collections::HashMap;

        use async_trait::async_trait;
        use sqlx::Row;
        use tollgate_core::KeyHash;
        use tollgate_core::time::now_ms;
        use tollgate_store::{KeyQueries, KeyRecord, KeyUpdate, NewKey, StoreError, StoreResult};

        use super::{$store, store_error};
        use $crate::reworded;

        type DbRow = <$db as sqlx::Database>::Row;
        type DbConnection = <$db as sqlx::Database>::Connection;

        const KEY_SELECT: &str = "SELECT k.id, k.team_id, t.name AS team_name, k.name, k.description, \
             k.key_hash, k.prefix, k.sealed_key, k.created_by, k.created_at, k.expires_at, k.revoked_at, \
             k.last_used_at, k.all_routes FROM api_keys k JOIN teams t ON t.id = k.team_id";

        /// Builds a record from a `KEY_SELECT` row; `route_ids` are the key's listed routes.
        fn key_from_row(row: &DbRow, route_ids: Vec<i64>) -> StoreResult<KeyRecord> {
            let hash: String = row.try_get("key_hash").map_err(store_error)?;
            let id: i64 = row.try_get("id").map_err(store_error)?;
            let key_hash = KeyHash::try_from(hash)
                .map_err(|e| StoreError::Internal(format!("key {id} has a malformed hash: {e}")))?;
            let all_routes: bool = row.try_get("all_routes").map_err(store_error)?;
            Ok(KeyRecord {
                id,
                team_id: row.try_get("team_id").map_err(store_error)?,
                team_name: row.try_get("team_name").map_err(store_error)?,
                name: row.try_get("name").map_err(store_error)?,
                description: row.try_get("description").map_err(store_error)?,
                key_hash,
                prefix: row.try_get("prefix").map_err(store_error)?,
                sealed_key: row.try_get("sealed_key").map_err(store_error)?,
                created_by: row.try_get("created_by").map_err(store_error)?,
                created_at_ms: row.try_get("created_at").map_err(store_error)?,
                expires_at_ms: row.try_get("expires_at").map_err(store_error)?,
                revoked_at_ms: row.try_get("revoked_at").map_err(store_error)?,
                last_used_at_ms: row.try_get("last_used_at").map_err(store_error)?,
                route_ids: (!all_routes).then_some(route_ids),
            })
        }

        /// One key with its route list, read on `conn`.
        async fn load_key(
            conn: &mut DbConnection,
            filter: &str,
            bind: KeyLookup<'_>,
        ) -> StoreResult<Option<KeyRecord>> {
            let sql = format!("{KEY_SELECT} WHERE {filter}");
            let query = sqlx::query(&sql);
            let query = match bind {
                KeyLookup::Id(id) => query.bind(id),
                KeyLookup::Hash(hash) => query.bind(hash),
            };
            let Some(row) = query
                .fetch_optional(&mut *conn)
                .await
                .map_err(store_error)?
            else {
                return Ok(None);
            };
            let id: i64 = row.try_get("id").map_err(store_error)?;
            let all_routes: bool = row.try_get("all_routes").map_err(store_error)?;
            let route_ids = if all_routes {
                Vec::new()
            } else {
                sqlx::query_scalar(
                    "SELECT route_id FROM api_key_routes WHERE key_id = $1 ORDER BY route_id",
                )
                .bind(id)
                .fetch_all(&mut *conn)
                .await
                .map_err(store_error)?
            };
            key_from_row(&row, route_ids).map(Some)
        }

        /// Sorts and dedups `ids` (a route list is a set) and checks that each route exists, keeping it
        /// until the transaction ends.
        async fn check_routes(conn: &mut DbConnection, ids: &mut Vec<i64>) -> StoreResult<()> {
            ids.sort_unstable();
            ids.dedup();
            for &route_id in ids.iter() {
                let found: Option<i64> =
                    sqlx::query_scalar(concat!("SELECT id FROM routes WHERE id = $1", $for_key_share))
                        .bind(route_id)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(store_error)?;
                if found.is_none() {
                    return Err(StoreError::NotFound(format!(
                        "route {route_id} does not exist"
                    )));
                }
            }
            Ok(())
        }

        fn key_missing(id: i64) -> StoreError {
            StoreError::NotFound(format!("key {id} does not exist"))
        }

        enum KeyLookup<'a> {
            Id(i64),
            Hash(&'a str),
        }

        #[async_trait]
        impl KeyQueries for $store {
            async fn create_key(&self, key: NewKey) -> StoreResult<KeyRecord> {
                let mut tx = self.begin_write().await?;
                let team: Option<i64> = sqlx::query_scalar("SELECT id FROM teams WHERE id = $1")
                    .bind(key.team_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(store_error)?;
                if team.is_none() {
                    return Err(StoreError::NotFound(format!(
                        "team {} does not exist",
                        key.team_id
                    )));
                }
                let mut route_ids = key.route_ids.clone();
                if let Some(ids) = route_ids.as_mut() {
                    check_routes(&mut tx, ids).await?;
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO api_keys (team_id, name, description, key_hash, prefix, sealed_key, \
                     created_by, created_at, expires_at, all_routes) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                )
                .bind(key.team_id)
                .bind(&key.name)
                .bind(&key.description)
                .bind(key.key_hash.as_str())
                .bind(&key.prefix)
                .bind(key.sealed_key.as_deref())
                .bind(key.created_by.as_deref())
                .bind(now_ms())
                .bind(key.expires_at_ms)
                .bind(route_ids.is_none())
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| {
                    reworded(store_error(e), |err| match err {
                        StoreError::Conflict(_) => Some(StoreError::Conflict(
                            "a key with this hash already exists".to_owned(),
                        )),
                        _ => None,
                    })
                })?;
                for route_id in route_ids.iter().flatten() {
                    sqlx::query("INSERT INTO api_key_routes (key_id, route_id) VALUES ($1, $2)")
                        .bind(id)
                        .bind(route_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(store_error)?;
                }
                let record = load_key(&mut tx, "k.id = $1", KeyLookup::Id(id)).await?;
                tx.commit().await.map_err(store_error)?;
                record.ok_or_else(|| StoreError::Internal(format!("key {id} vanished while being created")))
            }

            async fn key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<KeyRecord>> {
                let mut conn = self.reader().acquire().await.map_err(store_error)?;
                load_key(&mut conn, "k.key_hash = $1", KeyLookup::Hash(hash.as_str())).await
            }

            async fn key_by_id(&self, id: i64) -> StoreResult<Option<KeyRecord>> {
                let mut conn = self.reader().acquire().await.map_err(store_error)?;
                load_key(&mut conn, "k.id = $1", KeyLookup::Id(id)).await
            }

            async fn list_keys(&self, team_id: Option<i64>) -> StoreResult<Vec<KeyRecord>> {
                // One snapshot for keys and their route lists.
                let mut tx = self.begin_snapshot().await?;
                let rows = sqlx::query(&format!(
                    "{KEY_SELECT} WHERE CAST($1 AS BIGINT) IS NULL OR k.team_id = $1 ORDER BY k.created_at DESC, k.id DESC"
                ))
                .bind(team_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(store_error)?;
                let pairs: Vec<(i64, i64)> = sqlx::query_as(
                    "SELECT r.key_id, r.route_id FROM api_key_routes r JOIN api_keys k ON k.id = r.key_id \
                     WHERE CAST($1 AS BIGINT) IS NULL OR k.team_id = $1 ORDER BY r.key_id, r.route_id",
                )
                .bind(team_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(store_error)?;
                tx.commit().await.map_err(store_error)?;
                let mut routes: HashMap<i64, Vec<i64>> = HashMap::new();
                for (key_id, route_id) in pairs {
                    routes.entry(key_id).or_default().push(route_id);
                }
                rows.iter()
                    .map(|row| {
                        let id: i64 = row.try_get("id").map_err(store_error)?;
                        key_from_row(row, routes.remove(&id).unwrap_or_default())
                    })
                    .collect()
            }

            async fn revoke_key(&self, id: i64, at_ms: i64) -> StoreResult<KeyRecord> {
                let mut tx = self.begin_write().await?;
                // Only an unrevoked key is touched: revoking twice keeps the first time and the revision.
                sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                    .bind(at_ms)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                let record = load_key(&mut tx, "k.id = $1", KeyLookup::Id(id)).await?;
                tx.commit().await.map_err(store_error)?;
                record.ok_or_else(|| key_missing(id))
            }

            async fn delete_key(&self, id: i64) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM api_keys WHERE id = $1")
                    .bind(id)
                    .execute(self.writer())
                    .await
                    .map_err(store_error)?;
                if done.rows_affected() == 0 {
                    return Err(key_missing(id));
                }
                Ok(())
            }

            async fn update_key(&self, id: i64, update: KeyUpdate) -> StoreResult<KeyRecord> {
                let mut tx = self.begin_write().await?;
                // Locked: concurrent updates of one key take turns, so its route list is one of theirs.
                let found: Option<i64> =
                    sqlx::query_scalar(concat!("SELECT id FROM api_keys WHERE id = $1", $for_update))
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(store_error)?;
                if found.is_none() {
                    return Err(key_missing(id));
                }
                let KeyUpdate {
                    name,
                    description,
                    expires_at_ms,
                    mut route_ids,
                    sealed_key,
                } = update;
                if let Some(Some(ids)) = route_ids.as_mut() {
                    check_routes(&mut tx, ids).await?;
                }
                // An empty update writes nothing, so it leaves the revision alone.
                if name.is_some()
                    || description.is_some()
                    || expires_at_ms.is_some()
                    || route_ids.is_some()
                    || sealed_key.is_some()
                {
                    sqlx::query(
                        "UPDATE api_keys SET name = COALESCE($1, name), \
                         description = COALESCE($2, description), \
                         expires_at = CASE WHEN $3 THEN $4 ELSE expires_at END, \
                         all_routes = CASE WHEN $5 THEN $6 ELSE all_routes END, \
                         sealed_key = COALESCE($8, sealed_key) \
                         WHERE id = $7",
                    )
                    .bind(name.as_deref())
                    .bind(description.as_deref())
                    .bind(expires_at_ms.is_some())
                    .bind(expires_at_ms.flatten())
                    .bind(route_ids.is_some())
                    .bind(matches!(route_ids, Some(None)))
                    .bind(id)
                    .bind(sealed_key.as_deref())
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                }
                if let Some(list) = &route_ids {
                    sqlx::query("DELETE FROM api_key_routes WHERE key_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(store_error)?;
                    for route_id in list.iter().flatten() {
                        sqlx::query("INSERT INTO api_key_routes (key_id, route_id) VALUES ($1, $2)")
                            .bind(id)
                            .bind(route_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(store_error)?;
                    }
                }
                let record = load_key(&mut tx, "k.id = $1", KeyLookup::Id(id)).await?;
                tx.commit().await.map_err(store_error)?;
                record.ok_or_else(|| key_missing(id))
            }
        }
    };
}
