//! Routes.

/// Expands, inside a module of a backend crate, the [`tollgate_store::RouteQueries`] implementation of
/// `$store` over sqlx database `$db`, with the dialect fragments given (see [`crate::shared_queries`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __routes {
    ($store:ident, $db:ty, $by_bytes:literal) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use tollgate_core::RouteKind;
        use tollgate_core::llm::CredentialHeader;
        use tollgate_core::time::now_ms;
        use tollgate_store::{NewRoute, RouteQueries, RouteRecord, RouteUpdate, StoreError, StoreResult};

        use super::{$store, store_error};
        use $crate::{UniqueKey, reworded};

        type DbRow = <$db as sqlx::Database>::Row;
        /// Orders text byte by byte, whatever the database's collation.
        const BY_BYTES: &str = $by_bytes;

        const ROUTE_COLUMNS: &str = "id, team_id, name, prefix, upstream_url, kind, strip_prefix, \
             connect_timeout_ms, timeout_ms, enabled, sealed_credential, credential_header, \
             credential_format, created_at, updated_at";

        fn route_from_row(row: &DbRow) -> StoreResult<RouteRecord> {
            let name: String = row.try_get("name").map_err(store_error)?;
            let kind: String = row.try_get("kind").map_err(store_error)?;
            let kind = kind
                .parse::<RouteKind>()
                .map_err(|e| StoreError::Internal(format!("route `{name}`: {e}")))?;
            let header: Option<String> = row.try_get("credential_header").map_err(store_error)?;
            let format: Option<String> = row.try_get("credential_format").map_err(store_error)?;
            let credential_header = match (header, format) {
                (Some(header), Some(format)) => Some(
                    CredentialHeader::new(&header, &format)
                        .map_err(|e| StoreError::Internal(format!("route `{name}`: {e}")))?,
                ),
                _ => None,
            };
            Ok(RouteRecord {
                credential_header,
                id: row.try_get("id").map_err(store_error)?,
                team_id: row.try_get("team_id").map_err(store_error)?,
                name,
                prefix: row.try_get("prefix").map_err(store_error)?,
                upstream_url: row.try_get("upstream_url").map_err(store_error)?,
                kind,
                strip_prefix: row.try_get("strip_prefix").map_err(store_error)?,
                connect_timeout_ms: row.try_get("connect_timeout_ms").map_err(store_error)?,
                timeout_ms: row.try_get("timeout_ms").map_err(store_error)?,
                enabled: row.try_get("enabled").map_err(store_error)?,
                sealed_credential: row.try_get("sealed_credential").map_err(store_error)?,
                created_at_ms: row.try_get("created_at").map_err(store_error)?,
                updated_at_ms: row.try_get("updated_at").map_err(store_error)?,
            })
        }

        #[async_trait]
        impl RouteQueries for $store {
            async fn create_route(&self, route: NewRoute) -> StoreResult<RouteRecord> {
                let now = now_ms();
                let row = sqlx::query(&format!(
                    "INSERT INTO routes (team_id, name, prefix, upstream_url, kind, strip_prefix, \
                     connect_timeout_ms, timeout_ms, enabled, sealed_credential, credential_header, \
                     credential_format, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE, $9, $10, $11, $12, $13) \
                     RETURNING {ROUTE_COLUMNS}"
                ))
                .bind(route.team_id)
                .bind(&route.name)
                .bind(&route.prefix)
                .bind(&route.upstream_url)
                .bind(route.kind.as_str())
                .bind(route.strip_prefix)
                .bind(route.connect_timeout_ms)
                .bind(route.timeout_ms)
                .bind(route.sealed_credential.as_deref())
                .bind(route.credential_header.as_ref().map(|h| h.name.as_str()))
                .bind(route.credential_header.as_ref().map(|h| h.format.as_str()))
                .bind(now)
                .bind(now)
                .fetch_one(self.writer())
                .await
                .map_err(|e| {
                    let prefix_taken = UniqueKey::violated_by(&e) == Some(UniqueKey::RoutePrefix);
                    reworded(store_error(e), |err| match err {
                        StoreError::Conflict(_) if prefix_taken => Some(StoreError::Conflict(
                            format!("route prefix `{}` is taken", route.prefix),
                        )),
                        StoreError::Conflict(_) => Some(StoreError::Conflict(format!(
                            "a route named `{}` already exists",
                            route.name
                        ))),
                        StoreError::NotFound(_) => Some(StoreError::NotFound(format!(
                            "team {} does not exist",
                            route.team_id.unwrap_or_default()
                        ))),
                        _ => None,
                    })
                })?;
                route_from_row(&row)
            }

            async fn list_routes(&self) -> StoreResult<Vec<RouteRecord>> {
                let rows = sqlx::query(&format!(
                    "SELECT {ROUTE_COLUMNS} FROM routes ORDER BY prefix{BY_BYTES}"
                ))
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?;
                rows.iter().map(route_from_row).collect()
            }

            async fn route_by_name(&self, name: &str) -> StoreResult<Option<RouteRecord>> {
                let row = sqlx::query(&format!(
                    "SELECT {ROUTE_COLUMNS} FROM routes WHERE name = $1"
                ))
                .bind(name)
                .fetch_optional(self.reader())
                .await
                .map_err(store_error)?;
                row.as_ref().map(route_from_row).transpose()
            }

            async fn delete_route(&self, name: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM routes WHERE name = $1")
                    .bind(name)
                    .execute(self.writer())
                    .await
                    .map_err(store_error)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("no route named `{name}`")));
                }
                Ok(())
            }

            async fn route_by_id(&self, id: i64) -> StoreResult<Option<RouteRecord>> {
                let row = sqlx::query(&format!("SELECT {ROUTE_COLUMNS} FROM routes WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(store_error)?;
                row.as_ref().map(route_from_row).transpose()
            }

            async fn update_route(&self, id: i64, update: RouteUpdate) -> StoreResult<RouteRecord> {
                let RouteUpdate {
                    name,
                    prefix,
                    upstream_url,
                    kind,
                    strip_prefix,
                    connect_timeout_ms,
                    timeout_ms,
                    enabled,
                    sealed_credential,
                    credential_header,
                    team_id,
                } = update;
                // One statement: a taken name or prefix, or a missing team, changes nothing.
                let row = sqlx::query(&format!(
                    "UPDATE routes SET name = COALESCE($1, name), prefix = COALESCE($2, prefix), \
                     upstream_url = COALESCE($3, upstream_url), kind = COALESCE($4, kind), \
                     strip_prefix = COALESCE($5, strip_prefix), \
                     connect_timeout_ms = COALESCE($6, connect_timeout_ms), \
                     timeout_ms = COALESCE($7, timeout_ms), enabled = COALESCE($8, enabled), \
                     sealed_credential = CASE WHEN $9 THEN $10 ELSE sealed_credential END, \
                     team_id = CASE WHEN $11 THEN $12 ELSE team_id END, updated_at = $13, \
                     credential_header = CASE WHEN $15 THEN $16 ELSE credential_header END, \
                     credential_format = CASE WHEN $15 THEN $17 ELSE credential_format END \
                     WHERE id = $14 RETURNING {ROUTE_COLUMNS}"
                ))
                .bind(name.as_deref())
                .bind(prefix.as_deref())
                .bind(upstream_url.as_deref())
                .bind(kind.map(RouteKind::as_str))
                .bind(strip_prefix)
                .bind(connect_timeout_ms)
                .bind(timeout_ms)
                .bind(enabled)
                .bind(sealed_credential.is_some())
                .bind(sealed_credential.flatten())
                .bind(team_id.is_some())
                .bind(team_id.flatten())
                .bind(now_ms())
                .bind(id)
                .bind(credential_header.is_some())
                .bind(credential_header.as_ref().and_then(|h| h.as_ref().map(|h| h.name.clone())))
                .bind(credential_header.as_ref().and_then(|h| h.as_ref().map(|h| h.format.clone())))
                .fetch_optional(self.writer())
                .await
                .map_err(|e| {
                    let prefix_taken = UniqueKey::violated_by(&e) == Some(UniqueKey::RoutePrefix);
                    reworded(store_error(e), |err| match err {
                        StoreError::Conflict(_) if prefix_taken => {
                            Some(StoreError::Conflict(format!(
                                "route prefix `{}` is taken",
                                prefix.as_deref().unwrap_or_default()
                            )))
                        }
                        StoreError::Conflict(_) => Some(StoreError::Conflict(format!(
                            "a route named `{}` already exists",
                            name.as_deref().unwrap_or_default()
                        ))),
                        StoreError::NotFound(_) => Some(StoreError::NotFound(format!(
                            "team {} does not exist",
                            team_id.flatten().unwrap_or_default()
                        ))),
                        _ => None,
                    })
                })?;
                row.as_ref()
                    .map(route_from_row)
                    .transpose()?
                    .ok_or_else(|| StoreError::NotFound(format!("route {id} does not exist")))
            }
        }
    };
}
