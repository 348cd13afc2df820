//! The audit log: append-only.

/// Expands, inside a module of a backend crate, the [`tollgate_store::AuditQueries`] implementation of
/// `$store` over sqlx database `$db`, with the dialect fragments given (see [`crate::shared_queries`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __audit {
    ($store:ident, $db:ty) => {
        use async_trait::async_trait;
        use sqlx::{QueryBuilder, Row};
        use tollgate_core::time::now_ms;
        use tollgate_store::{AuditEntry, AuditFilter, AuditQueries, NewAuditEntry, StoreResult};

        use super::{$store, store_error};

        type DbRow = <$db as sqlx::Database>::Row;

        const AUDIT_COLUMNS: &str =
            "id, ts, actor, actor_user_id, action, entity_type, entity_id, summary, ip, team_id";

        fn entry_from_row(row: &DbRow) -> StoreResult<AuditEntry> {
            Ok(AuditEntry {
                id: row.try_get("id").map_err(store_error)?,
                ts_ms: row.try_get("ts").map_err(store_error)?,
                actor: row.try_get("actor").map_err(store_error)?,
                actor_user_id: row.try_get("actor_user_id").map_err(store_error)?,
                action: row.try_get("action").map_err(store_error)?,
                entity_type: row.try_get("entity_type").map_err(store_error)?,
                entity_id: row.try_get("entity_id").map_err(store_error)?,
                summary: row.try_get("summary").map_err(store_error)?,
                ip: row.try_get("ip").map_err(store_error)?,
                team_id: row.try_get("team_id").map_err(store_error)?,
            })
        }

        /// Appends the `WHERE` clause of `filter`: only the filters given, so that indexes serve them.
        fn push_filter<'a>(query: &mut QueryBuilder<'a, $db>, filter: &'a AuditFilter) {
            query.push(" WHERE TRUE");
            if let Some(action) = &filter.action {
                query.push(" AND action = ").push_bind(action.as_str());
            }
            if let Some(entity_type) = &filter.entity_type {
                query
                    .push(" AND entity_type = ")
                    .push_bind(entity_type.as_str());
            }
            if let Some(actor) = &filter.actor {
                query.push(" AND actor = ").push_bind(actor.as_str());
            }
            if let Some(from_ms) = filter.from_ms {
                query.push(" AND ts >= ").push_bind(from_ms);
            }
            if let Some(to_ms) = filter.to_ms {
                query.push(" AND ts < ").push_bind(to_ms);
            }
            if let Some(team_ids) = &filter.team_ids {
                query.push(" AND (");
                if team_ids.is_empty() {
                    // No team: only the acting user's own entries, if any.
                    query.push("FALSE");
                } else {
                    // A list of binds, not an array: SQLite has no arrays. A user is in few teams.
                    query.push("team_id IN (");
                    let mut ids = query.separated(", ");
                    for &team_id in team_ids {
                        ids.push_bind(team_id);
                    }
                    query.push(")");
                }
                if let Some(user_id) = filter.or_actor_user_id {
                    query.push(" OR actor_user_id = ").push_bind(user_id);
                }
                query.push(")");
            }
        }

        #[async_trait]
        impl AuditQueries for $store {
            async fn append_audit(&self, entry: NewAuditEntry) -> StoreResult<AuditEntry> {
                let row = sqlx::query(&format!(
                    "INSERT INTO audit_log (ts, actor, actor_user_id, action, entity_type, entity_id, \
                     summary, ip, team_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {AUDIT_COLUMNS}"
                ))
                .bind(now_ms())
                .bind(&entry.actor)
                .bind(entry.actor_user_id)
                .bind(&entry.action)
                .bind(&entry.entity_type)
                .bind(entry.entity_id.as_deref())
                .bind(&entry.summary)
                .bind(entry.ip.as_deref())
                .bind(entry.team_id)
                .fetch_one(self.writer())
                .await
                .map_err(store_error)?;
                entry_from_row(&row)
            }

            async fn list_audit(
                &self,
                filter: &AuditFilter,
                limit: i64,
                offset: i64,
            ) -> StoreResult<(Vec<AuditEntry>, i64)> {
                let mut count = QueryBuilder::new("SELECT COUNT(*) FROM audit_log");
                push_filter(&mut count, filter);
                let mut page = QueryBuilder::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_log"));
                push_filter(&mut page, filter);
                page.push(" ORDER BY ts DESC, id DESC LIMIT ")
                    .push_bind(limit.max(0))
                    .push(" OFFSET ")
                    .push_bind(offset.max(0));
                // One snapshot for the page and the count.
                let mut tx = self.begin_snapshot().await?;
                let total: i64 = count
                    .build_query_scalar()
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(store_error)?;
                let rows = page
                    .build()
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(store_error)?;
                tx.commit().await.map_err(store_error)?;
                let entries = rows
                    .iter()
                    .map(entry_from_row)
                    .collect::<StoreResult<_>>()?;
                Ok((entries, total))
            }
        }
    };
}
