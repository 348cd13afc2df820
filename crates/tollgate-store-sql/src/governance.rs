//! Limits, key model allow-lists and alert delivery records.

/// Expands, inside a module of a backend crate, the [`tollgate_store::LimitQueries`] and
/// [`tollgate_store::AlertQueries`] implementations of `$store` over sqlx database `$db`.
#[doc(hidden)]
#[macro_export]
macro_rules! __governance {
    ($store:ident, $db:ty) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use tollgate_core::time::now_ms;
        use tollgate_store::{
            AlertChannelRecord, AlertDelivery, AlertQueries, LimitOwner, LimitQueries, LimitRecord,
            NewAlertChannel, StoreError, StoreResult,
        };

        use super::{store_error, $store};

        const LIMIT_SELECT: &str =
            "SELECT id, team_id, key_id, route_id, spec, created_by, created_at, updated_at FROM limits";
        const CHANNEL_SELECT: &str =
            "SELECT id, name, format, url, sealed_url, url_display, sealed_secret, created_by, created_at \
             FROM alert_channels";
        const DELIVERY_SELECT: &str = "SELECT id, channel_id, dedup_key, kind, summary, attempt, at, \
             status, http_status, latency_ms, error FROM alert_deliveries";

        fn owner_columns(owner: LimitOwner) -> (Option<i64>, Option<i64>, Option<i64>) {
            match owner {
                LimitOwner::Instance => (None, None, None),
                LimitOwner::Team(id) => (Some(id), None, None),
                LimitOwner::Key(id) => (None, Some(id), None),
                LimitOwner::Route(id) => (None, None, Some(id)),
            }
        }

        fn owner_name(owner: LimitOwner) -> String {
            match owner {
                LimitOwner::Instance => "the instance".to_owned(),
                LimitOwner::Team(id) => format!("team {id}"),
                LimitOwner::Key(id) => format!("key {id}"),
                LimitOwner::Route(id) => format!("route {id}"),
            }
        }

        fn limit_from_row(row: &<$db as sqlx::Database>::Row) -> StoreResult<LimitRecord> {
            let team: Option<i64> = row.try_get("team_id").map_err(store_error)?;
            let key: Option<i64> = row.try_get("key_id").map_err(store_error)?;
            let route: Option<i64> = row.try_get("route_id").map_err(store_error)?;
            let owner = match (team, key, route) {
                (Some(t), _, _) => LimitOwner::Team(t),
                (_, Some(k), _) => LimitOwner::Key(k),
                (_, _, Some(r)) => LimitOwner::Route(r),
                _ => LimitOwner::Instance,
            };
            Ok(LimitRecord {
                id: row.try_get("id").map_err(store_error)?,
                owner,
                spec: row.try_get("spec").map_err(store_error)?,
                created_by: row.try_get("created_by").map_err(store_error)?,
                created_at_ms: row.try_get("created_at").map_err(store_error)?,
                updated_at_ms: row.try_get("updated_at").map_err(store_error)?,
            })
        }

        fn channel_from_row(row: &<$db as sqlx::Database>::Row) -> StoreResult<AlertChannelRecord> {
            Ok(AlertChannelRecord {
                id: row.try_get("id").map_err(store_error)?,
                name: row.try_get("name").map_err(store_error)?,
                format: row.try_get("format").map_err(store_error)?,
                sealed_url: row.try_get("sealed_url").map_err(store_error)?,
                url_display: row.try_get("url_display").map_err(store_error)?,
                legacy_url: Some(row.try_get::<String, _>("url").map_err(store_error)?)
                    .filter(|u| !u.is_empty()),
                sealed_secret: row.try_get("sealed_secret").map_err(store_error)?,
                created_by: row.try_get("created_by").map_err(store_error)?,
                created_at_ms: row.try_get("created_at").map_err(store_error)?,
            })
        }

        fn delivery_from_row(row: &<$db as sqlx::Database>::Row) -> StoreResult<AlertDelivery> {
            Ok(AlertDelivery {
                id: row.try_get("id").map_err(store_error)?,
                channel_id: row.try_get("channel_id").map_err(store_error)?,
                dedup_key: row.try_get("dedup_key").map_err(store_error)?,
                kind: row.try_get("kind").map_err(store_error)?,
                summary: row.try_get("summary").map_err(store_error)?,
                attempt: row.try_get("attempt").map_err(store_error)?,
                at_ms: row.try_get("at").map_err(store_error)?,
                status: row.try_get("status").map_err(store_error)?,
                http_status: row.try_get("http_status").map_err(store_error)?,
                latency_ms: row.try_get("latency_ms").map_err(store_error)?,
                error: row.try_get("error").map_err(store_error)?,
            })
        }

        #[async_trait]
        impl LimitQueries for $store {
            async fn create_limit(
                &self,
                owner: LimitOwner,
                spec: &str,
                created_by: &str,
            ) -> StoreResult<LimitRecord> {
                let (team, key, route) = owner_columns(owner);
                let now = now_ms();
                let row = sqlx::query(&format!(
                    "INSERT INTO limits (team_id, key_id, route_id, spec, created_by, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id, team_id, key_id, \
                     route_id, spec, created_by, created_at, updated_at"
                ))
                .bind(team)
                .bind(key)
                .bind(route)
                .bind(spec)
                .bind(created_by)
                .bind(now)
                .fetch_one(self.writer())
                .await
                .map_err(|e| {
                    $crate::reworded(store_error(e), |m| {
                        matches!(m, StoreError::NotFound(_))
                            .then(|| StoreError::NotFound(format!("{} does not exist", owner_name(owner))))
                    })
                })?;
                limit_from_row(&row)
            }

            async fn update_limit(&self, id: i64, spec: &str) -> StoreResult<LimitRecord> {
                let row = sqlx::query(
                    "UPDATE limits SET spec = $1, updated_at = $2 WHERE id = $3 RETURNING id, team_id, \
                     key_id, route_id, spec, created_by, created_at, updated_at",
                )
                .bind(spec)
                .bind(now_ms())
                .bind(id)
                .fetch_optional(self.writer())
                .await
                .map_err(store_error)?;
                match row {
                    Some(row) => limit_from_row(&row),
                    None => Err(StoreError::NotFound(format!("limit {id} does not exist"))),
                }
            }

            async fn delete_limit(&self, id: i64) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM limits WHERE id = $1")
                    .bind(id)
                    .execute(self.writer())
                    .await
                    .map_err(store_error)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!("limit {id} does not exist")));
                }
                Ok(())
            }

            async fn get_limit(&self, id: i64) -> StoreResult<Option<LimitRecord>> {
                sqlx::query(&format!("{LIMIT_SELECT} WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(store_error)?
                    .as_ref()
                    .map(limit_from_row)
                    .transpose()
            }

            async fn list_limits(&self) -> StoreResult<Vec<LimitRecord>> {
                sqlx::query(&format!("{LIMIT_SELECT} ORDER BY id"))
                    .fetch_all(self.reader())
                    .await
                    .map_err(store_error)?
                    .iter()
                    .map(limit_from_row)
                    .collect()
            }

            async fn set_key_models(&self, key_id: i64, patterns: Option<&str>) -> StoreResult<()> {
                let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM api_keys WHERE id = $1")
                    .bind(key_id)
                    .fetch_optional(self.writer())
                    .await
                    .map_err(store_error)?;
                if exists.is_none() {
                    return Err(StoreError::NotFound(format!("key {key_id} does not exist")));
                }
                let query = match patterns {
                    Some(p) => sqlx::query(
                        "INSERT INTO key_models (key_id, patterns) VALUES ($1, $2) \
                         ON CONFLICT (key_id) DO UPDATE SET patterns = excluded.patterns",
                    )
                    .bind(key_id)
                    .bind(p),
                    None => sqlx::query("DELETE FROM key_models WHERE key_id = $1").bind(key_id),
                };
                query.execute(self.writer()).await.map_err(store_error)?;
                Ok(())
            }

            async fn key_models(&self) -> StoreResult<Vec<(i64, String)>> {
                sqlx::query_as("SELECT key_id, patterns FROM key_models ORDER BY key_id")
                    .fetch_all(self.reader())
                    .await
                    .map_err(store_error)
            }
        }

        #[async_trait]
        impl AlertQueries for $store {
            async fn create_alert_channel(
                &self,
                channel: NewAlertChannel,
            ) -> StoreResult<AlertChannelRecord> {
                let row = sqlx::query(
                    "INSERT INTO alert_channels \
                     (name, format, url, sealed_url, url_display, sealed_secret, created_by, created_at) \
                     VALUES ($1, $2, '', $3, $4, $5, $6, $7) \
                     RETURNING id, name, format, url, sealed_url, url_display, sealed_secret, \
                     created_by, created_at",
                )
                .bind(&channel.name)
                .bind(&channel.format)
                .bind(&channel.sealed_url)
                .bind(&channel.url_display)
                .bind(&channel.sealed_secret)
                .bind(&channel.created_by)
                .bind(now_ms())
                .fetch_one(self.writer())
                .await
                .map_err(|e| {
                    $crate::reworded(store_error(e), |m| {
                        matches!(m, StoreError::Conflict(_)).then(|| {
                            StoreError::Conflict(format!(
                                "an alert channel named `{}` already exists",
                                channel.name
                            ))
                        })
                    })
                })?;
                channel_from_row(&row)
            }

            async fn list_alert_channels(&self) -> StoreResult<Vec<AlertChannelRecord>> {
                sqlx::query(&format!("{CHANNEL_SELECT} ORDER BY id"))
                    .fetch_all(self.reader())
                    .await
                    .map_err(store_error)?
                    .iter()
                    .map(channel_from_row)
                    .collect()
            }

            async fn get_alert_channel(&self, id: i64) -> StoreResult<Option<AlertChannelRecord>> {
                sqlx::query(&format!("{CHANNEL_SELECT} WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(store_error)?
                    .as_ref()
                    .map(channel_from_row)
                    .transpose()
            }

            async fn seal_alert_channel_url(
                &self,
                id: i64,
                sealed_url: &[u8],
                url_display: &str,
            ) -> StoreResult<()> {
                let done = sqlx::query(
                    "UPDATE alert_channels SET sealed_url = $1, url_display = $2, url = '' \
                     WHERE id = $3",
                )
                .bind(sealed_url)
                .bind(url_display)
                .bind(id)
                .execute(self.writer())
                .await
                .map_err(store_error)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!(
                        "alert channel {id} does not exist"
                    )));
                }
                Ok(())
            }

            async fn delete_alert_channel(&self, id: i64) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM alert_channels WHERE id = $1")
                    .bind(id)
                    .execute(self.writer())
                    .await
                    .map_err(store_error)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!(
                        "alert channel {id} does not exist"
                    )));
                }
                Ok(())
            }

            async fn record_alert_delivery(&self, d: &AlertDelivery) -> StoreResult<i64> {
                sqlx::query_scalar(
                    "INSERT INTO alert_deliveries (channel_id, dedup_key, kind, summary, attempt, at, \
                     status, http_status, latency_ms, error) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                )
                .bind(d.channel_id)
                .bind(&d.dedup_key)
                .bind(&d.kind)
                .bind(&d.summary)
                .bind(d.attempt)
                .bind(d.at_ms)
                .bind(&d.status)
                .bind(d.http_status)
                .bind(d.latency_ms)
                .bind(&d.error)
                .fetch_one(self.writer())
                .await
                .map_err(|e| {
                    $crate::reworded(store_error(e), |m| {
                        matches!(m, StoreError::NotFound(_)).then(|| {
                            StoreError::NotFound(format!("alert channel {} does not exist", d.channel_id))
                        })
                    })
                })
            }

            async fn list_alert_deliveries(
                &self,
                channel_id: Option<i64>,
                limit: u32,
            ) -> StoreResult<Vec<AlertDelivery>> {
                sqlx::query(&format!(
                    "{DELIVERY_SELECT} WHERE ($1 IS NULL OR channel_id = $1) \
                     ORDER BY at DESC, id DESC LIMIT $2"
                ))
                .bind(channel_id)
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?
                .iter()
                .map(delivery_from_row)
                .collect()
            }

            async fn claim_alert(&self, dedup_key: &str, now_ms: i64, ttl_ms: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO alert_claims (dedup_key, claimed_at, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (dedup_key) DO UPDATE SET claimed_at = excluded.claimed_at, \
                     expires_at = excluded.expires_at WHERE alert_claims.expires_at <= excluded.claimed_at",
                )
                .bind(dedup_key)
                .bind(now_ms)
                .bind(now_ms.saturating_add(ttl_ms))
                .execute(self.writer())
                .await
                .map_err(store_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn hold_lease(
                &self,
                name: &str,
                holder: &str,
                now_ms: i64,
                ttl_ms: i64,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                     expires_at = excluded.expires_at \
                     WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
                )
                .bind(name)
                .bind(holder)
                .bind(now_ms.saturating_add(ttl_ms))
                .bind(now_ms)
                .execute(self.writer())
                .await
                .map_err(store_error)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
