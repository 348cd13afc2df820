//! The daily partitions of `usage_events` (migration 0006): created ahead and on the first write
//! of a day, dropped whole by retention.
//!
//! A day's partition is `usage_events_pYYYYMMDD` (UTC) and holds `ts` in `[day, day + 1 day)`.
//! Rows of a day without a partition land in `usage_events_default`, so a missing partition never
//! refuses an event; creating the partition later moves them.
//!
//! Several instances share one database. Making a partition takes a SHARE UPDATE EXCLUSIVE lock on
//! `usage_events` (instances take turns; writers, which hold ROW EXCLUSIVE, are not held up) and
//! then looks again at what exists; the partition is built as a table of its own and attached,
//! which does not lock writers out the way `CREATE TABLE … PARTITION OF` would. Detaching one for
//! retention needs ACCESS EXCLUSIVE on `usage_events` for a moment: it waits at most
//! [`LOCK_TIMEOUT`], so that writers queued behind it are never held up for longer, and the rows
//! are deleted in batches instead when it cannot get the lock. Whoever drops a detached table
//! counts its rows under the same lock, so two instances never both count them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tollgate_core::time::now_ms;
use tollgate_store::rollup::DAY_MS;
use tollgate_store::{StoreError, StoreResult};

use crate::usage::EVENT_COLUMNS;
use crate::{PostgresStore, store_error};

/// How many days back an event still gets a partition of its own day: a year and some, enough for
/// late reports and imports. Older days (a reporter's wrong clock, an old import) use the default
/// partition rather than one partition per stray day. Migration 0006 uses the same window.
const DAYS_BACK: i64 = 400;
/// How many days ahead of today partitions are created: start-up and every clean-up create them,
/// so the writer finds tomorrow's partition ready at midnight.
const DAYS_AHEAD: i64 = 2;
/// The longest a partition change waits for a lock. Writers queue behind a waiting DETACH, so this
/// bounds how long retention can hold them up.
const LOCK_TIMEOUT: &str = "500ms";
/// Attempts at detaching a partition before its rows are deleted in batches instead.
const DETACH_ATTEMPTS: u32 = 3;
/// The pause between those attempts.
const DETACH_PAUSE: Duration = Duration::from_millis(200);
/// How long the writer leaves a day alone after failing to make its partition.
const RETRY_PAUSE: Duration = Duration::from_secs(30);

const PARENT: &str = "usage_events";
const DEFAULT_PARTITION: &str = "usage_events_default";
const PREFIX: &str = "usage_events_p";

/// What this instance knows of the days' partitions (day starts, epoch ms), so that the writer's
/// hot path asks the database nothing after a day's first batch.
#[derive(Debug, Default)]
pub(crate) struct KnownDays(Mutex<Days>);

#[derive(Debug, Default)]
struct Days {
    /// Days whose partition exists. Another instance may drop one of them; rows of that day then
    /// go to the default partition, which is still correct.
    made: HashSet<i64>,
    /// Days whose partition could not be made, and when to try again: until then their rows go to
    /// the default partition without the writer waiting on a lock for every batch.
    failed: HashMap<i64, Instant>,
}

impl KnownDays {
    fn with<T>(&self, f: impl FnOnce(&mut Days) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The start of the UTC day holding `ts_ms`.
pub(crate) fn day_start(ts_ms: i64) -> i64 {
    ts_ms - ts_ms.rem_euclid(DAY_MS)
}

/// The civil date (year, month, day) of the UTC day `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The days from 1970-01-01 to a civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The name of the partition of the day starting at `day_ms`.
pub(crate) fn partition_name(day_ms: i64) -> String {
    let (y, m, d) = civil_from_days(day_ms.div_euclid(DAY_MS));
    format!("{PREFIX}{y:04}{m:02}{d:02}")
}

/// The day start of a partition's name, `None` for any other name (the default partition too).
pub(crate) fn partition_day(name: &str) -> Option<i64> {
    let digits = name.strip_prefix(PREFIX)?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i64 = digits.get(..4)?.parse().ok()?;
    let month: i64 = digits.get(4..6)?.parse().ok()?;
    let day: i64 = digits.get(6..)?.parse().ok()?;
    let days = days_from_civil(year, month, day);
    // 20240231 is not a date: it would come back as another day.
    (civil_from_days(days) == (year, month, day)).then_some(days * DAY_MS)
}

/// Whether `err` is PostgreSQL giving up on a lock after `lock_timeout`.
fn is_lock_timeout(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some("55P03"))
}

/// Whether `err` says a table is gone or is no longer a partition: another instance's clean-up
/// got there first.
fn is_already_gone(err: &sqlx::Error) -> bool {
    // 42P01: undefined table; 42P16: invalid table definition ("is not a partition of").
    matches!(err, sqlx::Error::Database(db)
        if matches!(db.code().as_deref(), Some("42P01" | "42P16")))
}

impl PostgresStore {
    /// Makes sure the partitions of the days of `timestamps` exist, for the days within the
    /// window; other days use the default partition. Costs nothing for days already known.
    ///
    /// A failure other than the database being unavailable is logged and the batch goes on: its
    /// rows of that day land in the default partition and the next batch tries again.
    pub(crate) async fn ensure_partitions_for(
        &self,
        timestamps: impl Iterator<Item = i64>,
    ) -> StoreResult<()> {
        let today = day_start(now_ms());
        let window = today - DAYS_BACK * DAY_MS..=today + DAYS_AHEAD * DAY_MS;
        let mut days: BTreeSet<i64> = timestamps
            .map(day_start)
            .filter(|d| window.contains(d))
            .collect();
        let now = Instant::now();
        self.known_days.with(|known| {
            known.failed.retain(|_, retry| *retry > now);
            days.retain(|d| !known.made.contains(d) && !known.failed.contains_key(d));
        });
        for day in days {
            match self.ensure_partition(day).await {
                Ok(()) => {}
                Err(e @ StoreError::Unavailable(_)) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, partition = %partition_name(day),
                        "cannot create a usage partition now; its events go to the default partition");
                    self.known_days
                        .with(|known| known.failed.insert(day, now + RETRY_PAUSE));
                }
            }
        }
        Ok(())
    }

    /// Makes the partitions of the days of `timestamps` before a bulk load (`tollgate store
    /// copy`), so its rows do not all land in the default partition.
    pub async fn prepare_usage_partitions(
        &self,
        timestamps: impl Iterator<Item = i64>,
    ) -> StoreResult<()> {
        self.ensure_partitions_for(timestamps).await
    }

    /// Makes sure the partitions of today and the next [`DAYS_AHEAD`] days exist.
    pub(crate) async fn ensure_partitions_ahead(&self) -> StoreResult<()> {
        let today = day_start(now_ms());
        self.ensure_partitions_for((0..=DAYS_AHEAD).map(|n| today + n * DAY_MS))
            .await
    }

    /// Creates the partition of the day starting at `day_ms` unless it exists, moving that day's
    /// rows out of the default partition in the same transaction, and remembers the day.
    async fn ensure_partition(&self, day_ms: i64) -> StoreResult<()> {
        let name = partition_name(day_ms);
        let (from, to) = (day_ms, day_ms + DAY_MS);
        let exists = "SELECT relispartition FROM pg_class WHERE oid = to_regclass($1)";
        // Most calls find it made, by this instance earlier or by another one: no lock.
        let found: Option<bool> = sqlx::query_scalar(exists)
            .bind(&name)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        if found.is_none() {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            sqlx::query(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            sqlx::query(&format!(
                "LOCK TABLE ONLY {PARENT} IN SHARE UPDATE EXCLUSIVE MODE"
            ))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
            // Another instance may have made it while this one waited for the lock.
            let found: Option<bool> = sqlx::query_scalar(exists)
                .bind(&name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_error)?;
            if found.is_none() {
                // The CHECK lets ATTACH skip scanning the new table. ATTACH locks the default
                // partition to scan it for rows of the day; locking it before the move keeps a
                // writer from adding one in between, which would make ATTACH fail.
                let statements = [
                    format!("CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)"),
                    format!(
                        "ALTER TABLE {name} ADD CONSTRAINT {name}_ts \
                         CHECK (ts >= {from} AND ts < {to})"
                    ),
                    format!("LOCK TABLE {DEFAULT_PARTITION} IN ACCESS EXCLUSIVE MODE"),
                    format!(
                        "WITH moved AS (DELETE FROM {DEFAULT_PARTITION} \
                         WHERE ts >= {from} AND ts < {to} RETURNING id, {EVENT_COLUMNS}) \
                         INSERT INTO {name} (id, {EVENT_COLUMNS}) \
                         SELECT id, {EVENT_COLUMNS} FROM moved"
                    ),
                    format!(
                        "ALTER TABLE {PARENT} ATTACH PARTITION {name} \
                         FOR VALUES FROM ({from}) TO ({to})"
                    ),
                    // The partition bound says the same from now on.
                    format!("ALTER TABLE {name} DROP CONSTRAINT {name}_ts"),
                ];
                for sql in &statements {
                    sqlx::query(sql)
                        .execute(&mut *tx)
                        .await
                        .map_err(store_error)?;
                }
                tracing::debug!(partition = %name, "usage partition created");
            }
            tx.commit().await.map_err(store_error)?;
        }
        // A table of that name that is not a partition is one an interrupted clean-up detached:
        // the next clean-up drops it, and the day's rows meanwhile use the default partition.
        self.known_days.with(|known| known.made.insert(day_ms));
        Ok(())
    }

    /// Drops the partitions of the days that end at or before `before_ms` (and tables of such
    /// days left detached by an interrupted clean-up), oldest first; returns how many rows they
    /// held. A partition that cannot be detached now is left to the batched delete.
    pub(crate) async fn drop_partitions_before(&self, before_ms: i64) -> StoreResult<u64> {
        let tables: Vec<(String, bool)> = sqlx::query_as(
            "SELECT c.relname::text, c.relispartition FROM pg_class c \
             WHERE c.relkind = 'r' AND c.relname LIKE 'usage\\_events\\_p%' \
             AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = $1::regclass)",
        )
        .bind(PARENT)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        let mut due: Vec<(i64, String, bool)> = tables
            .into_iter()
            .filter_map(|(name, attached)| partition_day(&name).map(|day| (day, name, attached)))
            .filter(|(day, _, _)| day + DAY_MS <= before_ms)
            .collect();
        due.sort_unstable();
        let mut total: u64 = 0;
        for (day, name, attached) in due {
            // Forgotten first: from here on a write of that day goes through ensure_partition.
            self.known_days.with(|known| known.made.remove(&day));
            if attached && !self.detach_partition(&name).await? {
                continue;
            }
            total += self.drop_detached(&name).await?;
            tokio::task::yield_now().await;
        }
        Ok(total)
    }

    /// Detaches partition `name`; `false` when it could not get the lock in
    /// [`DETACH_ATTEMPTS`] tries.
    async fn detach_partition(&self, name: &str) -> StoreResult<bool> {
        for attempt in 1..=DETACH_ATTEMPTS {
            let mut tx = self.pool.begin().await.map_err(store_error)?;
            sqlx::query(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            let detached = sqlx::query(&format!("ALTER TABLE {PARENT} DETACH PARTITION {name}"))
                .execute(&mut *tx)
                .await;
            match detached {
                Ok(_) => {
                    tx.commit().await.map_err(store_error)?;
                    return Ok(true);
                }
                // Detached (and maybe dropped) by another instance: the drop sorts it out.
                Err(e) if is_already_gone(&e) => return Ok(true),
                Err(e) if is_lock_timeout(&e) => {
                    drop(tx);
                    if attempt < DETACH_ATTEMPTS {
                        tokio::time::sleep(DETACH_PAUSE).await;
                    }
                }
                Err(e) => return Err(store_error(e)),
            }
        }
        tracing::info!(partition = %name,
            "retention: usage_events is busy; deleting this day's rows in batches instead");
        Ok(false)
    }

    /// Counts and drops the detached table `name` in one transaction; 0 when another instance
    /// dropped it first.
    async fn drop_detached(&self, name: &str) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        // Taken before counting, so that two instances cannot both count it.
        let locked = sqlx::query(&format!("LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE"))
            .execute(&mut *tx)
            .await;
        match locked {
            Ok(_) => {}
            Err(e) if is_already_gone(&e) => return Ok(0),
            Err(e) => return Err(store_error(e)),
        }
        let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {name}"))
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
        sqlx::query(&format!("DROP TABLE {name}"))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        tracing::debug!(partition = %name, rows, "usage partition dropped");
        Ok(u64::try_from(rows).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_utc_day() {
        assert_eq!(partition_name(0), "usage_events_p19700101");
        // 2024-02-29T23:59:59.999Z and the next millisecond.
        assert_eq!(
            partition_name(1_709_251_199_999 - 1_709_251_199_999 % DAY_MS),
            "usage_events_p20240229"
        );
        assert_eq!(
            partition_name(day_start(1_709_251_200_000)),
            "usage_events_p20240301"
        );
        assert_eq!(
            partition_name(day_start(-1)),
            "usage_events_p19691231",
            "before the epoch too"
        );
    }

    #[test]
    fn names_and_days_round_trip() {
        // Every day from 1900 to 2200, leap years and centuries included.
        let first = days_from_civil(1900, 1, 1);
        let last = days_from_civil(2200, 12, 31);
        for days in first..=last {
            let day = days * DAY_MS;
            assert_eq!(partition_day(&partition_name(day)), Some(day), "day {days}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn other_names_are_not_days() {
        for name in [
            "usage_events_default",
            "usage_events_p2024010",
            "usage_events_p202401011",
            "usage_events_p20240231",
            "usage_events_p20241301",
            "usage_events_p2024o101",
            "usage_events_p+2024010",
            "usage_hourly",
        ] {
            assert_eq!(partition_day(name), None, "{name}");
        }
    }

    #[test]
    fn days_start_at_utc_midnight() {
        assert_eq!(day_start(DAY_MS + 5), DAY_MS);
        assert_eq!(day_start(DAY_MS), DAY_MS);
        assert_eq!(day_start(-5), -DAY_MS);
    }
}
