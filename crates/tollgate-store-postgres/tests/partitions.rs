//! The daily partitions of `usage_events` on PostgreSQL (migration 0006): made for the days
//! written, dropped whole by retention, a default partition for the other days whose rows move
//! when their day's partition comes, and the migration from an unpartitioned table.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "the database helpers fail the test loudly, like the tests themselves"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "tests start servers and workers on their own runtime, which ends with the test"
)]

mod common;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use common::with_test_database;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use tollgate_core::time::now_ms;
use tollgate_core::{UsageEvent, UsageSource};
use tollgate_store::{AnalyticsQueries, EventCursor, EventFilter, Store, UsageQueries};
use tollgate_store_postgres::PostgresStore;
use uuid::Uuid;

use tollgate_core::time::{DAY_MS, HOUR_MS};
/// 2001-06-01: far older than the days that get partitions of their own.
const FAR_PAST: i64 = 991_353_600_000;

fn today() -> i64 {
    let now = now_ms();
    now - now.rem_euclid(DAY_MS)
}

/// The partition name of the day starting at `day`, computed apart from the store's own code.
fn partition_of(day: i64) -> String {
    let secs = u64::try_from(day / 1000).unwrap();
    let date = civil_date(secs);
    format!("usage_events_p{date}")
}

/// `YYYYMMDD` of a time after 1970, by counting days through the calendar.
fn civil_date(secs: u64) -> String {
    let mut days = secs / 86_400;
    let mut year = 1970;
    loop {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let len = if leap { 366 } else { 365 };
        if days < len {
            let months = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            let mut month = 1;
            for m in months {
                if days < m {
                    break;
                }
                days -= m;
                month += 1;
            }
            return format!("{year:04}{month:02}{:02}", days + 1);
        }
        days -= len;
        year += 1;
    }
}

async fn pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap()
}

/// The partitions of `usage_events`, by name.
async fn partitions(db: &PgPool) -> BTreeSet<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'usage_events'::regclass",
    )
    .fetch_all(db)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// Whether a table (partition or not) of that name exists.
async fn table_exists(db: &PgPool, name: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(db)
        .await
        .unwrap()
}

/// Rows per partition.
async fn rows_per_partition(db: &PgPool) -> BTreeMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT tableoid::regclass::text, COUNT(*) FROM usage_events GROUP BY 1",
    )
    .fetch_all(db)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// The partition holding the event `event_id`.
async fn partition_holding(db: &PgPool, event_id: Uuid) -> String {
    sqlx::query_scalar(
        "SELECT tableoid::regclass::text FROM usage_events WHERE event_id = $1::text::uuid",
    )
    .bind(event_id.to_string())
    .fetch_one(db)
    .await
    .unwrap()
}

/// An event at `ts` from `source`.
fn event(ts: i64, source: UsageSource) -> UsageEvent {
    let mut e = UsageEvent::new(ts, "POST", "/v1/chat/completions", 200);
    e.source = source;
    e.latency_us = 1_500;
    e
}

/// Every stored event with a ts in `[from, to)`, newest first, walked page by page.
async fn walk(store: &PostgresStore, from: i64, to: i64) -> Vec<(i64, Uuid)> {
    let filter = EventFilter {
        from_ms: Some(from),
        to_ms: Some(to),
        ..EventFilter::default()
    };
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.search_usage(&filter, after, 7).await.unwrap();
        let Some(last) = page.last() else {
            return out;
        };
        after = Some(EventCursor {
            ts_ms: last.event.ts_ms,
            id: last.id,
        });
        out.extend(page.iter().map(|s| (s.event.ts_ms, s.event.event_id)));
    }
}

/// Inserts a row straight into `usage_events`, as a writer would have done while its day had no
/// partition (or an older tollgate): it lands in the default partition.
async fn insert_directly(db: &PgPool, e: &UsageEvent) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO usage_events (event_id, ts, method, path, status, latency_us, source) \
         VALUES ($1::text::uuid, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(e.event_id.to_string())
    .bind(e.ts_ms)
    .bind(&e.method)
    .bind(&e.path)
    .bind(i32::from(e.status))
    .bind(e.latency_us)
    .bind(e.source.as_str())
    .fetch_one(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn writing_events_makes_the_partitions_of_their_days() {
    with_test_database(|url| async move {
        let store = PostgresStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let db = pool(&url).await;
        let today = today();

        // Start-up makes today's and the next two days' partitions.
        let ahead: BTreeSet<String> = (0..=2).map(|n| partition_of(today + n * DAY_MS)).collect();
        let mut expected = ahead.clone();
        expected.insert("usage_events_default".to_owned());
        assert_eq!(partitions(&db).await, expected);

        // Three events on each of the last seven days, one two days ahead, one ten days ahead and
        // one far in the past (those two in the default partition).
        let mut events = Vec::new();
        for day in 0..7 {
            for hour in [0, 11, 23] {
                events.push(event(
                    today - day * DAY_MS + hour * HOUR_MS + 59_000,
                    UsageSource::Gateway,
                ));
            }
        }
        events.push(event(today + 2 * DAY_MS + 5, UsageSource::Ingest));
        let future = event(today + 10 * DAY_MS, UsageSource::Gateway);
        let past = event(FAR_PAST + 3 * HOUR_MS, UsageSource::Middleware);
        events.push(future.clone());
        events.push(past.clone());
        assert_eq!(store.write_usage(&events).await.unwrap(), 24);

        for day in 0..7 {
            expected.insert(partition_of(today - day * DAY_MS));
        }
        assert_eq!(partitions(&db).await, expected);
        let rows = rows_per_partition(&db).await;
        for day in 1..7 {
            assert_eq!(rows.get(&partition_of(today - day * DAY_MS)), Some(&3));
        }
        assert_eq!(rows.get(&partition_of(today)), Some(&3));
        assert_eq!(rows.get(&partition_of(today + 2 * DAY_MS)), Some(&1));
        assert_eq!(rows.get("usage_events_default"), Some(&2));
        assert_eq!(
            partition_holding(&db, past.event_id).await,
            "usage_events_default"
        );
        assert_eq!(
            partition_holding(&db, future.event_id).await,
            "usage_events_default"
        );

        // Every partition, made at start-up or attached by the writer, has every index of
        // usage_events.
        let indexes: Vec<(String, i64)> = sqlx::query_as(
            "SELECT p.relname::text, (SELECT COUNT(*) FROM pg_inherits i WHERE i.inhparent = p.oid) \
             FROM pg_index x JOIN pg_class p ON p.oid = x.indexrelid \
             WHERE x.indrelid = 'usage_events'::regclass ORDER BY 1",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        let names: Vec<&str> = indexes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "usage_events_event_id_ts_key",
                // No primary key since migration 0016, no index per team, key or route since
                // 0017: (ts, id, team_id, key_id, route_id, status) is usage_events_ts_id.
                "usage_events_ts_id"
            ]
        );
        for (name, children) in &indexes {
            assert_eq!(
                *children,
                i64::try_from(expected.len()).unwrap(),
                "{name} on every partition"
            );
        }

        // The same events again, through this instance and another one (which knows no day yet):
        // nothing new, and no partition twice.
        assert_eq!(store.write_usage(&events).await.unwrap(), 0);
        let other = PostgresStore::connect(&url).await.unwrap();
        assert_eq!(other.write_usage(&events).await.unwrap(), 0);
        assert_eq!(other.count_usage().await.unwrap(), 24);
        assert_eq!(partitions(&db).await, expected);
        other.close().await;
        store.close().await;
        db.close().await;
    })
    .await;
}

#[tokio::test]
async fn retention_drops_the_days_before_the_cut_and_deletes_exactly_the_rest() {
    with_test_database(|url| async move {
        let store = PostgresStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let db = pool(&url).await;
        let today = today();

        // Four events on each of the last ten days, every other one reported through ingest; three
        // far in the past and one far ahead in the default partition.
        let mut events = Vec::new();
        for day in 0..10 {
            for (i, hour) in [1, 7, 13, 19].into_iter().enumerate() {
                let source = if i % 2 == 0 {
                    UsageSource::Gateway
                } else {
                    UsageSource::Ingest
                };
                events.push(event(today - day * DAY_MS + hour * HOUR_MS, source));
            }
        }
        for n in 0..3 {
            events.push(event(FAR_PAST + n * DAY_MS, UsageSource::Gateway));
        }
        events.push(event(today + 40 * DAY_MS, UsageSource::Gateway));
        assert_eq!(store.write_usage(&events).await.unwrap(), 44);

        // An interrupted clean-up left the oldest day detached: its rows still count as removed
        // by the clean-up that drops its table.
        sqlx::query(&format!(
            "ALTER TABLE usage_events DETACH PARTITION {}",
            partition_of(today - 9 * DAY_MS)
        ))
        .execute(&db)
        .await
        .unwrap();
        assert_eq!(store.count_usage().await.unwrap(), 40);

        // At 10:00 five days ago: four whole days (one of them detached) go with their
        // partitions, the two events of that morning and the three old ones in batches.
        let cut = today - 5 * DAY_MS + 10 * HOUR_MS;
        let due: Vec<&UsageEvent> = events.iter().filter(|e| e.ts_ms < cut).collect();
        assert_eq!(due.len(), 4 * 4 + 2 + 3);
        assert_eq!(
            store.delete_usage_before(cut, 2).await.unwrap(),
            21,
            "delete_usage_before counts the rows of the dropped partitions and the deleted ones"
        );
        assert_eq!(store.count_usage().await.unwrap(), 44 - 21);
        for day in 6..10 {
            let name = partition_of(today - day * DAY_MS);
            assert!(!table_exists(&db, &name).await, "{name} was not dropped");
        }
        let rows = rows_per_partition(&db).await;
        assert_eq!(rows.get(&partition_of(today - 5 * DAY_MS)), Some(&2));
        assert_eq!(rows.get("usage_events_default"), Some(&1));
        let mut kept: Vec<(i64, Uuid)> = events
            .iter()
            .filter(|e| e.ts_ms >= cut)
            .map(|e| (e.ts_ms, e.event_id))
            .collect();
        kept.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(walk(&store, 0, i64::MAX).await, kept);
        // The ids of reported events before the cut go too; the others stay.
        let reported: Vec<i64> = sqlx::query_scalar("SELECT ts FROM usage_reported_ids")
            .fetch_all(&db)
            .await
            .unwrap();
        assert_eq!(
            reported.len(),
            11,
            "two a day after the cut, and the one of 19:00 that day"
        );
        assert!(reported.iter().all(|ts| *ts >= cut), "{reported:?}");
        assert_eq!(store.delete_usage_before(cut, 2).await.unwrap(), 0);

        // A late event of a dropped day is stored (its partition made again), and the next
        // clean-up removes exactly it.
        let late = event(today - 8 * DAY_MS + 5, UsageSource::Gateway);
        assert_eq!(
            store
                .write_usage(std::slice::from_ref(&late))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            partition_holding(&db, late.event_id).await,
            partition_of(today - 8 * DAY_MS)
        );
        assert_eq!(store.delete_usage_before(cut, 2).await.unwrap(), 1);
        assert_eq!(store.count_usage().await.unwrap(), 23);

        // Trimming to a row count takes the oldest rows across partitions.
        assert_eq!(store.trim_usage(23, 4).await.unwrap(), 0);
        assert_eq!(store.trim_usage(15, 4).await.unwrap(), 8);
        let survivors = kept[..15].to_vec();
        assert_eq!(walk(&store, 0, i64::MAX).await, survivors);
        store.close().await;
        db.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_event_of_a_day_without_partition_is_kept_when_the_partition_comes() {
    with_test_database(|url| async move {
        let store = PostgresStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let db = pool(&url).await;
        let today = today();

        // Far in the past: the default partition takes it, and it reads like any other.
        let old = event(FAR_PAST + 5, UsageSource::Gateway);
        assert_eq!(
            store.write_usage(std::slice::from_ref(&old)).await.unwrap(),
            1
        );
        assert_eq!(
            partition_holding(&db, old.event_id).await,
            "usage_events_default"
        );
        assert_eq!(
            walk(&store, FAR_PAST, FAR_PAST + DAY_MS).await,
            [(old.ts_ms, old.event_id)]
        );

        // Rows of a day that has no partition yet wait in the default partition (a write while
        // the partition could not be made); when the store makes it, they move, ids and all.
        let day = today - 20 * DAY_MS;
        let waiting = event(day + 3 * HOUR_MS, UsageSource::Gateway);
        let waiting_id = insert_directly(&db, &waiting).await;
        assert_eq!(
            partition_holding(&db, waiting.event_id).await,
            "usage_events_default"
        );
        let newer = [
            event(day + 4 * HOUR_MS, UsageSource::Gateway),
            event(day + 5 * HOUR_MS, UsageSource::Ingest),
        ];
        assert_eq!(store.write_usage(&newer).await.unwrap(), 2);
        assert!(partitions(&db).await.contains(&partition_of(day)));
        for id in [waiting.event_id, newer[0].event_id, newer[1].event_id] {
            assert_eq!(partition_holding(&db, id).await, partition_of(day));
        }
        let moved = store.usage_event(waiting_id).await.unwrap().unwrap();
        assert_eq!(moved.event.event_id, waiting.event_id);
        // Moved rows are still deduped.
        assert_eq!(
            store
                .write_usage(std::slice::from_ref(&waiting))
                .await
                .unwrap(),
            0
        );
        assert_eq!(store.count_usage().await.unwrap(), 4);

        // Several instances writing a new day at once while the default partition holds rows of
        // it: one of them makes the partition, every row ends up in it exactly once.
        let day = today - 30 * DAY_MS;
        let mut waiting = Vec::new();
        for n in 0..5 {
            let e = event(day + n * HOUR_MS, UsageSource::Gateway);
            insert_directly(&db, &e).await;
            waiting.push(e);
        }
        let shared: Vec<UsageEvent> = (0..20)
            .map(|n| event(day + n * 60_000, UsageSource::Gateway))
            .collect();
        let mut tasks = Vec::new();
        let mut own_events = Vec::new();
        for _ in 0..4 {
            let other = Arc::new(PostgresStore::connect(&url).await.unwrap());
            let mut batch = shared.clone();
            let own: Vec<UsageEvent> = (0..10)
                .map(|n| event(day + 12 * HOUR_MS + n, UsageSource::Ingest))
                .collect();
            batch.extend(own.iter().cloned());
            own_events.extend(own);
            tasks.push(tokio::spawn(async move {
                let written = other.write_usage(&batch).await.unwrap();
                other.close().await;
                written
            }));
        }
        let mut written = 0;
        for task in tasks {
            written += task.await.unwrap();
        }
        assert_eq!(written, 20 + 40, "each shared event counted once");
        let rows = rows_per_partition(&db).await;
        assert_eq!(rows.get(&partition_of(day)), Some(&(5 + 20 + 40)));
        assert_eq!(
            rows.get("usage_events_default"),
            Some(&1),
            "only the far past one"
        );
        // Events of the instances share times: compare as sets, and check the order by time.
        let mut expected: Vec<(i64, Uuid)> = waiting
            .iter()
            .chain(&shared)
            .chain(&own_events)
            .map(|e| (e.ts_ms, e.event_id))
            .collect();
        expected.sort_unstable();
        let mut found = walk(&store, day, day + DAY_MS).await;
        assert!(found.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");
        found.sort_unstable();
        assert_eq!(found, expected);
        store.close().await;
        db.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_partition_that_cannot_be_made_now_refuses_no_event() {
    with_test_database(|url| async move {
        let store = PostgresStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let db = pool(&url).await;
        let day = today() - 3 * DAY_MS;

        // Another session holds the lock that making a partition needs (but writing does not).
        let mut blocker = db.begin().await.unwrap();
        sqlx::query("LOCK TABLE ONLY usage_events IN SHARE UPDATE EXCLUSIVE MODE")
            .execute(&mut *blocker)
            .await
            .unwrap();
        let first = event(day + HOUR_MS, UsageSource::Gateway);
        let second = event(day + 2 * HOUR_MS, UsageSource::Ingest);
        assert_eq!(
            store
                .write_usage(std::slice::from_ref(&first))
                .await
                .unwrap(),
            1
        );
        // The next batch does not wait for the lock again.
        let started = std::time::Instant::now();
        assert_eq!(
            store
                .write_usage(std::slice::from_ref(&second))
                .await
                .unwrap(),
            1
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        for e in [&first, &second] {
            assert_eq!(
                partition_holding(&db, e.event_id).await,
                "usage_events_default"
            );
        }
        blocker.rollback().await.unwrap();

        // Once the lock is free, the day gets its partition (here through another instance) and
        // its rows move there.
        let other = PostgresStore::connect(&url).await.unwrap();
        let third = event(day + 3 * HOUR_MS, UsageSource::Gateway);
        assert_eq!(
            other
                .write_usage(std::slice::from_ref(&third))
                .await
                .unwrap(),
            1
        );
        for e in [&first, &second, &third] {
            assert_eq!(partition_holding(&db, e.event_id).await, partition_of(day));
        }
        assert_eq!(store.count_usage().await.unwrap(), 3);
        other.close().await;
        store.close().await;
        db.close().await;
    })
    .await;
}

/// The migrations up to and including `last`, read from this crate's folder.
async fn migrations_up_to(last: i64) -> Migrator {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut migrator = Migrator::new(dir.as_path()).await.unwrap();
    let kept: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= last)
        .cloned()
        .collect();
    assert_eq!(kept.len(), usize::try_from(last).unwrap());
    migrator.migrations = Cow::Owned(kept);
    migrator
}

#[tokio::test]
async fn migrating_to_partitions_keeps_every_row() {
    with_test_database(|url| async move {
        let db = pool(&url).await;
        migrations_up_to(5).await.run(&db).await.unwrap();
        let today = today();

        // 0005's unpartitioned table: five rows far in the past and one far ahead, then 600 over
        // the last eleven days and tomorrow, every third one reported, every column filled on
        // some.
        for ts in [
            FAR_PAST,
            FAR_PAST + 1,
            FAR_PAST + DAY_MS,
            FAR_PAST + 90 * DAY_MS,
            FAR_PAST + 400 * DAY_MS,
            today + 100 * DAY_MS,
        ] {
            insert_directly(&db, &event(ts, UsageSource::Ingest)).await;
        }
        let newest = today + 2 * DAY_MS - 1;
        sqlx::query(
            "INSERT INTO usage_events (event_id, ts, key_id, key_hash, team_id, route_id, route, \
             method, path, status, latency_us, upstream_latency_us, client_ip, user_agent, model, \
             prompt_tokens, completion_tokens, total_tokens, cached_tokens, reasoning_tokens, \
             estimated, cost_usd, error, source, request_id) \
             SELECT gen_random_uuid(), $1 - n * 1811000, n % 7, \
             CASE WHEN n % 2 = 0 THEN md5(n::text) || md5(n::text) END, n % 3, n % 4, \
             'route-' || (n % 4), 'POST', '/v1/x/' || n, 200 + (n % 5) * 100, n * 10, n * 5, \
             '10.0.0.' || (n % 250), 'agent/' || n, 'model-' || (n % 3), n, 2 * n, 3 * n, n % 11, \
             n % 13, n % 2 = 0, n * 0.001, CASE WHEN n % 5 = 4 THEN 'boom ' || n END, \
             CASE WHEN n % 3 = 0 THEN 'ingest' ELSE 'gateway' END, 'req-' || n \
             FROM generate_series(0, 599) AS n",
        )
        .bind(newest)
        .execute(&db)
        .await
        .unwrap();
        let days: BTreeSet<i64> = (0..600)
            .map(|n| {
                let ts = newest - n * 1_811_000;
                ts - ts.rem_euclid(DAY_MS)
            })
            .collect();
        // The newest rows went (retention by row count, say): their ids stay unused.
        for n in 0..4 {
            insert_directly(&db, &event(today + n, UsageSource::Gateway)).await;
        }
        sqlx::query("DELETE FROM usage_events WHERE id > 606")
            .execute(&db)
            .await
            .unwrap();
        let last_id: i64 = sqlx::query_scalar("SELECT last_value FROM usage_events_id_seq")
            .fetch_one(&db)
            .await
            .unwrap();
        assert_eq!(last_id, 610);
        // Columns later migrations add (0011's `attempts`, NULL on these rows; 0012's `priced`, with
        // its default; 0015's `upstream_last_byte_us`, NULL) are left out.
        let snapshot = "SELECT (to_jsonb(e) - 'attempts' - 'priced' - 'upstream_last_byte_us')::text \
             FROM usage_events e ORDER BY id";
        let before: Vec<String> = sqlx::query_scalar(snapshot).fetch_all(&db).await.unwrap();
        assert_eq!(before.len(), 606);

        let store = PostgresStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let kind: String =
            sqlx::query_scalar("SELECT relkind::text FROM pg_class WHERE relname = 'usage_events'")
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(kind, "p", "usage_events is partitioned");
        let after: Vec<String> = sqlx::query_scalar(snapshot).fetch_all(&db).await.unwrap();
        assert_eq!(after, before, "every row kept, every column as it was");

        // Days with rows have their partition; the far past and far ahead are in the default
        // partition.
        let rows = rows_per_partition(&db).await;
        assert_eq!(rows.get("usage_events_default"), Some(&6));
        let in_days: BTreeMap<String, i64> = days
            .iter()
            .map(|day| {
                (
                    partition_of(*day),
                    rows.get(&partition_of(*day)).copied().unwrap_or(0),
                )
            })
            .collect();
        assert!(in_days.values().all(|n| *n > 0), "{in_days:?}");
        assert_eq!(in_days.values().sum::<i64>(), 600);
        assert_eq!(rows.len(), days.len() + 1, "{rows:?}");

        // The sequence goes on after the last id it gave, not after the highest one left.
        let new = event(today + HOUR_MS, UsageSource::Gateway);
        assert_eq!(
            store.write_usage(std::slice::from_ref(&new)).await.unwrap(),
            1
        );
        let new_id: i64 =
            sqlx::query_scalar("SELECT id FROM usage_events WHERE event_id = $1::text::uuid")
                .bind(new.event_id.to_string())
                .fetch_one(&db)
                .await
                .unwrap();
        assert_eq!(new_id, 611);

        // Old events replayed are still recognised: a gateway event at its own time, a reported
        // one at any time.
        let stored = store
            .search_usage(&EventFilter::default(), None, 1_000)
            .await
            .unwrap();
        let gateway = stored
            .iter()
            .find(|s| s.event.source == UsageSource::Gateway && s.id != new_id)
            .unwrap();
        let reported = stored
            .iter()
            .find(|s| s.event.source == UsageSource::Ingest)
            .unwrap();
        let mut later = reported.event.clone();
        later.ts_ms += 3 * DAY_MS;
        assert_eq!(
            store
                .write_usage(&[gateway.event.clone(), reported.event.clone(), later])
                .await
                .unwrap(),
            0
        );
        assert_eq!(store.count_usage().await.unwrap(), 607);
        store.close().await;
        db.close().await;
    })
    .await;
}
