//! Token counters (seed 003). Readings are recorded in a write transaction that first reads the
//! counter's row with the backend's row lock (`FOR UPDATE` on PostgreSQL; SQLite's `BEGIN
//! IMMEDIATE` on its single writer already excludes every other writer), so concurrent readings
//! of one counter take turns, also across instances, and increments add up to `used`.

/// Expands, inside a module of a backend crate, the [`tollgate_store::CounterQueries`] implementation of
/// `$store` over sqlx database `$db`, with the dialect fragments given (see [`crate::shared_queries`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __counters {
    ($store:ident, $db:ty, $by_bytes:literal, $for_update:literal) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use tollgate_core::time::now_ms;
        use tollgate_store::{
            Counter, CounterQueries, CounterReading, NewReading, StoreError, StoreResult,
        };

        use super::{$store, store_error};
        use $crate::reworded;

        type DbRow = <$db as sqlx::Database>::Row;
        /// Orders text byte by byte, whatever the database's collation.
        const BY_BYTES: &str = $by_bytes;
        /// Locks the rows read until the transaction ends, where the database locks rows.
        const FOR_UPDATE: &str = $for_update;
        type DbConnection = <$db as sqlx::Database>::Connection;

        const COUNTER_COLUMNS: &str = "id, name, team_id, quota, used, readings, created_at, updated_at";
        const READING_COLUMNS: &str =
            "id, counter_id, ts, reading, increment, reset, event, conversation_id, sync_type, actor";
        /// The sync types the schema accepts.
        const SYNC_TYPES: [&str; 5] = ["manual", "clipboard", "estimate", "import", "api"];
        /// One day, ms.
        use tollgate_core::time::DAY_MS;

        fn counter_from_row(row: &DbRow) -> StoreResult<Counter> {
            Ok(Counter {
                id: row.try_get("id").map_err(store_error)?,
                name: row.try_get("name").map_err(store_error)?,
                team_id: row.try_get("team_id").map_err(store_error)?,
                quota: row.try_get("quota").map_err(store_error)?,
                used: row.try_get("used").map_err(store_error)?,
                readings: row.try_get("readings").map_err(store_error)?,
                created_at_ms: row.try_get("created_at").map_err(store_error)?,
                updated_at_ms: row.try_get("updated_at").map_err(store_error)?,
            })
        }

        fn reading_from_row(row: &DbRow) -> StoreResult<CounterReading> {
            Ok(CounterReading {
                id: row.try_get("id").map_err(store_error)?,
                counter_id: row.try_get("counter_id").map_err(store_error)?,
                ts_ms: row.try_get("ts").map_err(store_error)?,
                reading: row.try_get("reading").map_err(store_error)?,
                increment: row.try_get("increment").map_err(store_error)?,
                reset: row.try_get("reset").map_err(store_error)?,
                event: row.try_get("event").map_err(store_error)?,
                conversation_id: row.try_get("conversation_id").map_err(store_error)?,
                sync_type: row.try_get("sync_type").map_err(store_error)?,
                actor: row.try_get("actor").map_err(store_error)?,
            })
        }

        fn counter_missing(id: i64) -> StoreError {
            StoreError::NotFound(format!("counter {id} does not exist"))
        }

        /// `Internal` for what the callers (console, CLI) must have refused before: a negative figure
        /// or an unknown sync type.
        fn check_reading(counter: &Counter, figure: i64, reading: &NewReading) -> StoreResult<()> {
            if figure < 0 {
                return Err(StoreError::Internal(format!(
                    "counter `{}`: a reading cannot be negative ({figure})",
                    counter.name
                )));
            }
            if !SYNC_TYPES.contains(&reading.sync_type.as_str()) {
                return Err(StoreError::Internal(format!(
                    "counter `{}`: unknown sync type `{}` (expected one of {})",
                    counter.name,
                    reading.sync_type,
                    SYNC_TYPES.join(", ")
                )));
            }
            Ok(())
        }

        /// The counter, kept until the transaction ends (its row locked, or the single writer held).
        async fn counter_for_update(conn: &mut DbConnection, id: i64) -> StoreResult<Counter> {
            let row = sqlx::query(&format!(
                "SELECT {COUNTER_COLUMNS} FROM token_counters WHERE id = $1{FOR_UPDATE}"
            ))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(store_error)?;
            row.as_ref()
                .map(counter_from_row)
                .transpose()?
                .ok_or_else(|| counter_missing(id))
        }

        /// Stores a reading of `figure` with its `increment`, and moves the counter with it.
        async fn store_reading(
            conn: &mut DbConnection,
            counter: &Counter,
            figure: i64,
            increment: i64,
            reset: bool,
            reading: &NewReading,
        ) -> StoreResult<(Counter, CounterReading)> {
            let row = sqlx::query(&format!(
                "INSERT INTO token_counter_readings \
                 (counter_id, ts, reading, increment, reset, event, conversation_id, sync_type, actor) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {READING_COLUMNS}"
            ))
            .bind(counter.id)
            .bind(reading.ts_ms)
            .bind(figure)
            .bind(increment)
            .bind(reset)
            .bind(&reading.event)
            .bind(reading.conversation_id.as_deref())
            .bind(&reading.sync_type)
            .bind(reading.actor.as_deref())
            .fetch_one(&mut *conn)
            .await
            .map_err(store_error)?;
            let stored = reading_from_row(&row)?;
            // The latest reading time, also when an import brings older sessions after newer ones.
            let row = sqlx::query(&format!(
                "UPDATE token_counters SET used = $1, readings = readings + 1, \
                 updated_at = CASE WHEN updated_at IS NULL OR updated_at < $2 THEN $2 ELSE updated_at END WHERE id = $3 RETURNING {COUNTER_COLUMNS}"
            ))
            .bind(figure)
            .bind(reading.ts_ms)
            .bind(counter.id)
            .fetch_one(&mut *conn)
            .await
            .map_err(store_error)?;
            Ok((counter_from_row(&row)?, stored))
        }

        #[async_trait]
        impl CounterQueries for $store {
            async fn ensure_counter(&self, team_id: i64, name: &str, quota: i64) -> StoreResult<Counter> {
                if quota < 0 {
                    return Err(StoreError::Internal(format!(
                        "counter `{name}`: a quota cannot be negative ({quota})"
                    )));
                }
                // DO NOTHING on an existing name in the team: the first quota stays.
                sqlx::query(
                    "INSERT INTO token_counters (name, team_id, quota, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (team_id, name) DO NOTHING",
                )
                .bind(name)
                .bind(team_id)
                .bind(quota)
                .bind(now_ms())
                .execute(self.writer())
                .await
                .map_err(|e| {
                    reworded(store_error(e), |err| match err {
                        StoreError::NotFound(_) => Some(StoreError::NotFound(format!(
                            "team {team_id} does not exist: cannot create counter `{name}`"
                        ))),
                        _ => None,
                    })
                })?;
                let row = sqlx::query(&format!(
                    "SELECT {COUNTER_COLUMNS} FROM token_counters WHERE team_id = $1 AND name = $2"
                ))
                .bind(team_id)
                .bind(name)
                .fetch_one(self.writer())
                .await
                .map_err(store_error)?;
                counter_from_row(&row)
            }

            async fn counter_by_name(&self, team_id: i64, name: &str) -> StoreResult<Option<Counter>> {
                let row = sqlx::query(&format!(
                    "SELECT {COUNTER_COLUMNS} FROM token_counters WHERE team_id = $1 AND name = $2"
                ))
                .bind(team_id)
                .bind(name)
                .fetch_optional(self.reader())
                .await
                .map_err(store_error)?;
                row.as_ref().map(counter_from_row).transpose()
            }

            async fn list_counters(&self) -> StoreResult<Vec<Counter>> {
                let rows = sqlx::query(&format!(
                    "SELECT {COUNTER_COLUMNS} FROM token_counters ORDER BY name{BY_BYTES}"
                ))
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?;
                rows.iter().map(counter_from_row).collect()
            }

            async fn set_counter_quota(&self, id: i64, quota: i64) -> StoreResult<Counter> {
                if quota < 0 {
                    return Err(StoreError::Internal(format!(
                        "counter {id}: a quota cannot be negative ({quota})"
                    )));
                }
                let row = sqlx::query(&format!(
                    "UPDATE token_counters SET quota = $1 WHERE id = $2 RETURNING {COUNTER_COLUMNS}"
                ))
                .bind(quota)
                .bind(id)
                .fetch_optional(self.writer())
                .await
                .map_err(store_error)?;
                row.as_ref()
                    .map(counter_from_row)
                    .transpose()?
                    .ok_or_else(|| counter_missing(id))
            }

            async fn record_reading(
                &self,
                counter_id: i64,
                reading: NewReading,
            ) -> StoreResult<(Counter, CounterReading)> {
                let mut tx = self.begin_write().await?;
                let counter = counter_for_update(&mut tx, counter_id).await?;
                check_reading(&counter, reading.reading, &reading)?;
                // Below what was used: the tool started over.
                let (increment, reset) = if reading.reading >= counter.used {
                    (reading.reading - counter.used, false)
                } else {
                    (reading.reading, true)
                };
                let stored = store_reading(
                    &mut tx,
                    &counter,
                    reading.reading,
                    increment,
                    reset,
                    &reading,
                )
                .await?;
                tx.commit().await.map_err(store_error)?;
                Ok(stored)
            }

            async fn add_to_counter(
                &self,
                counter_id: i64,
                tokens: i64,
                reading: NewReading,
            ) -> StoreResult<(Counter, CounterReading)> {
                let mut tx = self.begin_write().await?;
                let counter = counter_for_update(&mut tx, counter_id).await?;
                if tokens < 0 {
                    return Err(StoreError::Internal(format!(
                        "counter `{}`: cannot add a negative number of tokens ({tokens})",
                        counter.name
                    )));
                }
                let figure = counter.used.checked_add(tokens).ok_or_else(|| {
                    StoreError::Conflict(format!(
                        "counter `{}`: adding {tokens} tokens to {} would overflow",
                        counter.name, counter.used
                    ))
                })?;
                check_reading(&counter, figure, &reading)?;
                let stored = store_reading(&mut tx, &counter, figure, tokens, false, &reading).await?;
                tx.commit().await.map_err(store_error)?;
                Ok(stored)
            }

            async fn revise_reading(
                &self,
                counter_id: i64,
                reading_id: i64,
                figure: Option<i64>,
            ) -> StoreResult<(Counter, Option<CounterReading>)> {
                let mut tx = self.begin_write().await?;
                let counter = counter_for_update(&mut tx, counter_id).await?;
                if figure.is_some_and(|f| f < 0) {
                    return Err(StoreError::Internal(format!(
                        "counter `{}`: a reading cannot be negative",
                        counter.name
                    )));
                }
                let rows = sqlx::query(&format!(
                    "SELECT {READING_COLUMNS} FROM token_counter_readings \
                     WHERE counter_id = $1 AND id >= $2 ORDER BY id"
                ))
                .bind(counter_id)
                .bind(reading_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(store_error)?;
                let mut later = rows.iter().map(reading_from_row).collect::<StoreResult<Vec<_>>>()?;
                if later.first().is_none_or(|r| r.id != reading_id) {
                    return Err(StoreError::NotFound(format!(
                        "reading {reading_id} of counter `{}` does not exist",
                        counter.name
                    )));
                }
                let before: Option<i64> = sqlx::query_scalar(
                    "SELECT reading FROM token_counter_readings \
                     WHERE counter_id = $1 AND id < $2 ORDER BY id DESC LIMIT 1",
                )
                .bind(counter_id)
                .bind(reading_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
                match figure {
                    Some(f) => later[0].reading = f,
                    None => {
                        sqlx::query("DELETE FROM token_counter_readings WHERE id = $1")
                            .bind(reading_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(store_error)?;
                        later.remove(0);
                    }
                }
                let mut previous = before.unwrap_or(0);
                for (i, r) in later.iter_mut().enumerate() {
                    let added = matches!(r.sync_type.as_str(), "estimate" | "import");
                    let (reading, increment, reset) = if added && !(i == 0 && figure.is_some()) {
                        let reading = previous.checked_add(r.increment).ok_or_else(|| {
                            StoreError::Conflict(format!(
                                "counter `{}`: the readings would overflow",
                                counter.name
                            ))
                        })?;
                        (reading, r.increment, false)
                    } else if r.reading >= previous {
                        (r.reading, r.reading - previous, false)
                    } else {
                        (r.reading, r.reading, true)
                    };
                    if (reading, increment, reset) != (r.reading, r.increment, r.reset)
                        || (i == 0 && figure.is_some())
                    {
                        sqlx::query(
                            "UPDATE token_counter_readings SET reading = $1, increment = $2, reset = $3 \
                             WHERE id = $4",
                        )
                        .bind(reading)
                        .bind(increment)
                        .bind(reset)
                        .bind(r.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(store_error)?;
                    }
                    (r.reading, r.increment, r.reset) = (reading, increment, reset);
                    previous = reading;
                }
                let row = sqlx::query(&format!(
                    "UPDATE token_counters SET used = $1, readings = readings - $2 \
                     WHERE id = $3 RETURNING {COUNTER_COLUMNS}"
                ))
                .bind(previous)
                .bind(i64::from(figure.is_none()))
                .bind(counter_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(store_error)?;
                let updated = counter_from_row(&row)?;
                tx.commit().await.map_err(store_error)?;
                let corrected = if figure.is_some() { later.into_iter().next() } else { None };
                Ok((updated, corrected))
            }

            async fn list_readings(
                &self,
                counter_id: i64,
                before_id: Option<i64>,
                limit: i64,
            ) -> StoreResult<Vec<CounterReading>> {
                let rows = sqlx::query(&format!(
                    "SELECT {READING_COLUMNS} FROM token_counter_readings \
                     WHERE counter_id = $1 AND (CAST($2 AS BIGINT) IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
                ))
                .bind(counter_id)
                .bind(before_id)
                .bind(limit.max(0))
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?;
                rows.iter().map(reading_from_row).collect()
            }

            async fn counter_daily(
                &self,
                counter_id: Option<i64>,
                from_ms: i64,
                to_ms: i64,
            ) -> StoreResult<Vec<(i64, i64, i64)>> {
                // The Euclidean remainder: days before 1970 start at their midnight too.
                sqlx::query_as(
                    "SELECT ts - ((ts % $1) + $1) % $1 AS day, CAST(SUM(increment) AS BIGINT), COUNT(*) \
                     FROM token_counter_readings \
                     WHERE ts >= $2 AND ts < $3 AND (CAST($4 AS BIGINT) IS NULL OR counter_id = $4) \
                     GROUP BY day ORDER BY day",
                )
                .bind(DAY_MS)
                .bind(from_ms)
                .bind(to_ms)
                .bind(counter_id)
                .fetch_all(self.reader())
                .await
                .map_err(store_error)
            }
        }
    };
}
