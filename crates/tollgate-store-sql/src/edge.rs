//! Edge tokens, the keys an edge reads and the change feed.

/// Expands, inside a module of a backend crate, the [`tollgate_store::EdgeQueries`]
/// implementation of `$store` over sqlx database `$db` (see [`crate::shared_queries`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __edge {
    ($store:ident, $db:ty) => {
        use std::collections::BTreeMap;

        use async_trait::async_trait;
        use sqlx::Row;
        use tollgate_core::KeyHash;
        use tollgate_core::time::now_ms;
        use tollgate_store::{
            EdgeChange, EdgeEntity, EdgeKey, EdgeQueries, EdgeToken, NewEdgeToken, StoreError,
            StoreResult,
        };

        use super::{$store, store_error};
        use $crate::reworded;

        type DbRow = <$db as sqlx::Database>::Row;

        const TOKEN_COLUMNS: &str = "id, name, token_hash, prefix, created_by, created_at, \
             expires_at, revoked_at, last_used_at";

        const EDGE_KEY_SELECT: &str = "SELECT k.id, k.team_id, k.key_hash, k.expires_at, \
             k.revoked_at, k.all_routes, m.patterns FROM api_keys k \
             LEFT JOIN key_models m ON m.key_id = k.id";

        fn token_from_row(row: &DbRow) -> StoreResult<EdgeToken> {
            Ok(EdgeToken {
                id: row.try_get("id").map_err(store_error)?,
                name: row.try_get("name").map_err(store_error)?,
                token_hash: row.try_get("token_hash").map_err(store_error)?,
                prefix: row.try_get("prefix").map_err(store_error)?,
                created_by: row.try_get("created_by").map_err(store_error)?,
                created_at_ms: row.try_get("created_at").map_err(store_error)?,
                expires_at_ms: row.try_get("expires_at").map_err(store_error)?,
                revoked_at_ms: row.try_get("revoked_at").map_err(store_error)?,
                last_used_at_ms: row.try_get("last_used_at").map_err(store_error)?,
            })
        }

        /// The keys of `rows` (an `EDGE_KEY_SELECT`), with their listed routes from `routes`.
        fn edge_keys(rows: &[DbRow], mut routes: BTreeMap<i64, Vec<i64>>) -> StoreResult<Vec<EdgeKey>> {
            rows.iter()
                .map(|row| {
                    let id: i64 = row.try_get("id").map_err(store_error)?;
                    let hash: String = row.try_get("key_hash").map_err(store_error)?;
                    let key_hash = KeyHash::try_from(hash).map_err(|e| {
                        StoreError::Internal(format!("key {id} has a malformed hash: {e}"))
                    })?;
                    let all_routes: bool = row.try_get("all_routes").map_err(store_error)?;
                    Ok(EdgeKey {
                        id,
                        team_id: row.try_get("team_id").map_err(store_error)?,
                        key_hash,
                        expires_at_ms: row.try_get("expires_at").map_err(store_error)?,
                        revoked_at_ms: row.try_get("revoked_at").map_err(store_error)?,
                        route_ids: (!all_routes).then(|| routes.remove(&id).unwrap_or_default()),
                        models: row.try_get("patterns").map_err(store_error)?,
                    })
                })
                .collect()
        }

        /// The listed routes of the keys with ids in `from..=to`.
        async fn routes_between(
            store: &$store,
            from: i64,
            to: i64,
        ) -> StoreResult<BTreeMap<i64, Vec<i64>>> {
            let pairs: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT key_id, route_id FROM api_key_routes \
                 WHERE key_id >= $1 AND key_id <= $2 ORDER BY key_id, route_id",
            )
            .bind(from)
            .bind(to)
            .fetch_all(store.reader())
            .await
            .map_err(store_error)?;
            let mut routes: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for (key, route) in pairs {
                routes.entry(key).or_default().push(route);
            }
            Ok(routes)
        }

        #[async_trait]
        impl EdgeQueries for $store {
            async fn create_edge_token(&self, token: NewEdgeToken) -> StoreResult<EdgeToken> {
                let row = sqlx::query(&format!(
                    "INSERT INTO edge_tokens (name, token_hash, prefix, created_by, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLUMNS}"
                ))
                .bind(&token.name)
                .bind(&token.token_hash)
                .bind(&token.prefix)
                .bind(&token.created_by)
                .bind(now_ms())
                .bind(token.expires_at_ms)
                .fetch_one(self.writer())
                .await
                .map_err(|e| {
                    reworded(store_error(e), |err| match err {
                        StoreError::Conflict(_) => Some(StoreError::Conflict(
                            "an edge token with this hash already exists".to_owned(),
                        )),
                        _ => None,
                    })
                })?;
                token_from_row(&row)
            }

            async fn edge_token_by_hash(&self, token_hash: &str) -> StoreResult<Option<EdgeToken>> {
                let row = sqlx::query(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM edge_tokens WHERE token_hash = $1"
                ))
                .bind(token_hash)
                .fetch_optional(self.reader())
                .await
                .map_err(store_error)?;
                row.as_ref().map(token_from_row).transpose()
            }

            async fn list_edge_tokens(&self) -> StoreResult<Vec<EdgeToken>> {
                let rows = sqlx::query(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM edge_tokens ORDER BY created_at DESC, id DESC"
                ))
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?;
                rows.iter().map(token_from_row).collect()
            }

            async fn revoke_edge_token(&self, id: i64, at_ms: i64) -> StoreResult<EdgeToken> {
                let row = sqlx::query(&format!(
                    "UPDATE edge_tokens SET revoked_at = COALESCE(revoked_at, $1) \
                     WHERE id = $2 RETURNING {TOKEN_COLUMNS}"
                ))
                .bind(at_ms)
                .bind(id)
                .fetch_optional(self.writer())
                .await
                .map_err(store_error)?;
                row.as_ref()
                    .map(token_from_row)
                    .transpose()?
                    .ok_or_else(|| StoreError::NotFound(format!("edge token {id} does not exist")))
            }

            async fn touch_edge_token(&self, id: i64, at_ms: i64) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE edge_tokens SET last_used_at = $1 \
                     WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
                )
                .bind(at_ms)
                .bind(id)
                .execute(self.writer())
                .await
                .map_err(store_error)?;
                Ok(())
            }

            async fn edge_keys_after(&self, after_id: i64, limit: i64) -> StoreResult<Vec<EdgeKey>> {
                let rows = sqlx::query(&format!(
                    "{EDGE_KEY_SELECT} WHERE k.id > $1 ORDER BY k.id LIMIT $2"
                ))
                .bind(after_id)
                .bind(limit)
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?;
                let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
                    return Ok(Vec::new());
                };
                let from: i64 = first.try_get("id").map_err(store_error)?;
                let to: i64 = last.try_get("id").map_err(store_error)?;
                let routes = routes_between(self, from, to).await?;
                edge_keys(&rows, routes)
            }

            async fn edge_keys_by_id(&self, ids: &[i64]) -> StoreResult<Vec<EdgeKey>> {
                let mut keys = Vec::with_capacity(ids.len());
                let mut sorted = ids.to_vec();
                sorted.sort_unstable();
                sorted.dedup();
                // In slices, so that a statement's placeholders stay few on both databases.
                for chunk in sorted.chunks(500) {
                    let marks = (1..=chunk.len())
                        .map(|i| format!("${i}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let sql = format!("{EDGE_KEY_SELECT} WHERE k.id IN ({marks}) ORDER BY k.id");
                    let mut query = sqlx::query(&sql);
                    for id in chunk {
                        query = query.bind(*id);
                    }
                    let rows = query.fetch_all(self.reader()).await.map_err(store_error)?;
                    let (Some(&from), Some(&to)) = (chunk.first(), chunk.last()) else {
                        continue;
                    };
                    let routes = routes_between(self, from, to).await?;
                    keys.extend(edge_keys(&rows, routes)?);
                }
                Ok(keys)
            }

            async fn edge_changes_since(
                &self,
                revision: i64,
                limit: i64,
            ) -> StoreResult<Vec<EdgeChange>> {
                let rows = sqlx::query(
                    "SELECT revision, entity, entity_id, key_hash FROM edge_changes \
                     WHERE revision > $1 ORDER BY revision LIMIT $2",
                )
                .bind(revision)
                .bind(limit)
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?;
                rows.iter()
                    .map(|row| {
                        let entity: String = row.try_get("entity").map_err(store_error)?;
                        Ok(EdgeChange {
                            revision: row.try_get("revision").map_err(store_error)?,
                            entity: match entity.as_str() {
                                "route" => EdgeEntity::Route,
                                "key" => EdgeEntity::Key,
                                other => {
                                    return Err(StoreError::Internal(format!(
                                        "edge change of unknown entity `{other}`"
                                    )));
                                }
                            },
                            entity_id: row.try_get("entity_id").map_err(store_error)?,
                            key_hash: row.try_get("key_hash").map_err(store_error)?,
                        })
                    })
                    .collect()
            }

            async fn prune_edge_changes(&self, before_ms: i64, batch: i64) -> StoreResult<u64> {
                let horizon: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(revision) FROM edge_changes WHERE changed_at < $1",
                )
                .bind(before_ms)
                .fetch_one(self.writer())
                .await
                .map_err(store_error)?;
                let Some(horizon) = horizon else {
                    return Ok(0);
                };
                // The horizon first: a reader that finds a change missing then also finds the
                // horizon past its `since`, and is told to take a snapshot.
                sqlx::query("UPDATE edge_feed SET pruned_through = $1 WHERE id = 1 AND pruned_through < $1")
                    .bind(horizon)
                    .execute(self.writer())
                    .await
                    .map_err(store_error)?;
                let mut deleted = 0;
                loop {
                    let done = sqlx::query(
                        "DELETE FROM edge_changes WHERE revision IN \
                         (SELECT revision FROM edge_changes WHERE revision <= $1 \
                          ORDER BY revision LIMIT $2)",
                    )
                    .bind(horizon)
                    .bind(batch)
                    .execute(self.writer())
                    .await
                    .map_err(store_error)?
                    .rows_affected();
                    deleted += done;
                    if done == 0 {
                        return Ok(deleted);
                    }
                }
            }

            async fn edge_feed_pruned_through(&self) -> StoreResult<i64> {
                sqlx::query_scalar("SELECT pruned_through FROM edge_feed WHERE id = 1")
                    .fetch_one(self.reader())
                    .await
                    .map_err(store_error)
            }
        }
    };
}
