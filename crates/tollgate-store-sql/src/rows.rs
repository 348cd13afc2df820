//! Usage rows read the same on both databases: events, roll-ups, aggregates.

/// Expands, inside a module of a backend crate, the functions building usage records from rows of
/// sqlx database `$db` (see [`crate::shared_queries`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __rows {
    ($db:ty) => {
        use sqlx::Row;
        use tollgate_core::usage::HISTOGRAM_LEN;
        use tollgate_core::{KeyHash, TokenUsage, UsageEvent, UsageSource};
        use tollgate_store::{HourlyRollup, StoreError, StoreResult, StoredEvent, UsageAggregate};
        use uuid::Uuid;

        use super::store_error;

        type DbRow = <$db as sqlx::Database>::Row;

        /// A usage event from a row of `usage_events` (its `event_id` read as text).
        pub(crate) fn event_from_row(row: &DbRow) -> StoreResult<UsageEvent> {
            let id: String = row.try_get("event_id").map_err(store_error)?;
            let event_id = Uuid::parse_str(&id).map_err(|e| {
                StoreError::Internal(format!("usage event id `{id}` is malformed: {e}"))
            })?;
            let key_hash: Option<String> = row.try_get("key_hash").map_err(store_error)?;
            let key_hash = key_hash
                .map(KeyHash::try_from)
                .transpose()
                .map_err(|e| StoreError::Internal(format!("usage event {id}: {e}")))?;
            let status: i32 = row.try_get("status").map_err(store_error)?;
            let status = u16::try_from(status).map_err(|_| {
                StoreError::Internal(format!("usage event {id} has status {status}"))
            })?;
            let source: String = row.try_get("source").map_err(store_error)?;
            let source = UsageSource::parse(&source).ok_or_else(|| {
                StoreError::Internal(format!("usage event {id} has unknown source `{source}`"))
            })?;
            Ok(UsageEvent {
                event_id,
                ts_ms: row.try_get("ts").map_err(store_error)?,
                key_id: row.try_get("key_id").map_err(store_error)?,
                key_hash,
                team_id: row.try_get("team_id").map_err(store_error)?,
                route_id: row.try_get("route_id").map_err(store_error)?,
                route: row.try_get("route").map_err(store_error)?,
                method: row.try_get("method").map_err(store_error)?,
                path: row.try_get("path").map_err(store_error)?,
                status,
                latency_us: row.try_get("latency_us").map_err(store_error)?,
                upstream_latency_us: row.try_get("upstream_latency_us").map_err(store_error)?,
                upstream_last_byte_us: row.try_get("upstream_last_byte_us").map_err(store_error)?,
                client_ip: row.try_get("client_ip").map_err(store_error)?,
                user_agent: row.try_get("user_agent").map_err(store_error)?,
                model: row.try_get("model").map_err(store_error)?,
                tokens: TokenUsage {
                    prompt: row.try_get("prompt_tokens").map_err(store_error)?,
                    completion: row.try_get("completion_tokens").map_err(store_error)?,
                    total: row.try_get("total_tokens").map_err(store_error)?,
                    cached: row.try_get("cached_tokens").map_err(store_error)?,
                    reasoning: row.try_get("reasoning_tokens").map_err(store_error)?,
                },
                estimated: row.try_get("estimated").map_err(store_error)?,
                cost_usd: row
                    .try_get::<bool, _>("priced")
                    .map_err(store_error)?
                    .then_some(row.try_get("cost_usd").map_err(store_error)?),
                error: row.try_get("error").map_err(store_error)?,
                source,
                request_id: row.try_get("request_id").map_err(store_error)?,
                attempts: row.try_get("attempts").map_err(store_error)?,
            })
        }

        /// A stored event (the event and its row id) from a row of `usage_events`.
        pub(crate) fn stored_event_from_row(row: &DbRow) -> StoreResult<StoredEvent> {
            Ok(StoredEvent {
                id: row.try_get("id").map_err(store_error)?,
                event: event_from_row(row)?,
            })
        }

        /// An hourly roll-up from a row of `usage_hourly`.
        pub(crate) fn rollup_from_row(row: &DbRow) -> StoreResult<HourlyRollup> {
            let mut latency_hist = [0; HISTOGRAM_LEN];
            for (slot, column) in latency_hist.iter_mut().zip($crate::HIST_COLUMNS.iter()) {
                *slot = row.try_get(column.as_str()).map_err(store_error)?;
            }
            Ok(HourlyRollup {
                hour_ms: row.try_get("hour").map_err(store_error)?,
                team_id: row.try_get("team_id").map_err(store_error)?,
                key_id: row.try_get("key_id").map_err(store_error)?,
                route_id: row.try_get("route_id").map_err(store_error)?,
                model: row.try_get("model").map_err(store_error)?,
                status_class: row.try_get("status_class").map_err(store_error)?,
                calls: row.try_get("calls").map_err(store_error)?,
                errors: row.try_get("errors").map_err(store_error)?,
                latency_sum_us: row.try_get("latency_sum_us").map_err(store_error)?,
                latency_hist,
                prompt_tokens: row.try_get("prompt_tokens").map_err(store_error)?,
                completion_tokens: row.try_get("completion_tokens").map_err(store_error)?,
                total_tokens: row.try_get("total_tokens").map_err(store_error)?,
                cached_tokens: row.try_get("cached_tokens").map_err(store_error)?,
                reasoning_tokens: row.try_get("reasoning_tokens").map_err(store_error)?,
                estimated_calls: row.try_get("estimated_calls").map_err(store_error)?,
                cost_usd: row.try_get("cost_usd").map_err(store_error)?,
                unpriced_calls: row.try_get("unpriced_calls").map_err(store_error)?,
            })
        }

        /// A row of an aggregate query: the bucket, its label and the sums.
        pub(crate) fn aggregate_from_row(row: &DbRow) -> StoreResult<UsageAggregate> {
            let mut latency_hist = [0; HISTOGRAM_LEN];
            for (slot, column) in latency_hist.iter_mut().zip($crate::HIST_COLUMNS.iter()) {
                *slot = row.try_get(column.as_str()).map_err(store_error)?;
            }
            Ok(UsageAggregate {
                bucket: row.try_get("bucket").map_err(store_error)?,
                label: row.try_get("label").map_err(store_error)?,
                calls: row.try_get("calls").map_err(store_error)?,
                errors: row.try_get("errors").map_err(store_error)?,
                unknown_calls: row.try_get("unknown_calls").map_err(store_error)?,
                latency_sum_us: row.try_get("latency_sum_us").map_err(store_error)?,
                latency_hist,
                prompt_tokens: row.try_get("prompt_tokens").map_err(store_error)?,
                completion_tokens: row.try_get("completion_tokens").map_err(store_error)?,
                total_tokens: row.try_get("total_tokens").map_err(store_error)?,
                cached_tokens: row.try_get("cached_tokens").map_err(store_error)?,
                reasoning_tokens: row.try_get("reasoning_tokens").map_err(store_error)?,
                estimated_calls: row.try_get("estimated_calls").map_err(store_error)?,
                cost_usd: row.try_get("cost_usd").map_err(store_error)?,
                unpriced_calls: row.try_get("unpriced_calls").map_err(store_error)?,
            })
        }
    };
}
