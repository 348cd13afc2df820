//! The story of token counters (seed 003): readings, increments and resets, paging, quotas, the
//! daily sums, and concurrent additions that must add up.

use tollgate_core::time::now_ms;
use uuid::Uuid;

use super::{HOUR_MS, expect_not_found, team, unique};
use crate::{Counter, CounterReading, NewReading, Store};

use tollgate_core::time::DAY_MS;
/// An id no step creates.
const MISSING: i64 = 987_654_321;

/// A reading of `figure` at `ts_ms`, recorded by hand.
fn new_reading(ts_ms: i64, figure: i64) -> NewReading {
    NewReading {
        ts_ms,
        reading: figure,
        event: format!("story reading of {figure}"),
        conversation_id: Some(unique("conversation")),
        sync_type: "manual".to_owned(),
        actor: Some("cli:story".to_owned()),
    }
}

/// A fresh counter of a fresh team, with the default quota.
async fn counter(store: &dyn Store) -> Counter {
    let team = team(store).await;
    store
        .ensure_counter(team.id, &unique("counter"), 1_000_000)
        .await
        .expect("ensure_counter")
}

async fn counter_now(store: &dyn Store, c: &Counter) -> Counter {
    store
        .counter_by_name(c.team_id, &c.name)
        .await
        .expect("counter_by_name")
        .expect("the counter exists")
}

async fn record(store: &dyn Store, counter_id: i64, ts_ms: i64, figure: i64) -> CounterReading {
    store
        .record_reading(counter_id, new_reading(ts_ms, figure))
        .await
        .expect("record_reading")
        .1
}

async fn add(store: &dyn Store, counter_id: i64, ts_ms: i64, tokens: i64) -> CounterReading {
    store
        .add_to_counter(counter_id, tokens, new_reading(ts_ms, 0))
        .await
        .expect("add_to_counter")
        .1
}

async fn all_readings(store: &dyn Store, counter_id: i64) -> Vec<CounterReading> {
    store
        .list_readings(counter_id, None, 1_000)
        .await
        .expect("list_readings")
}

/// `ensure_counter` creates once with the given quota in the team, then returns the same counter:
/// a second call's quota is ignored. The same name in another team is another counter. A missing
/// team is refused, naming it.
pub async fn counters_ensure_is_idempotent(store: &dyn Store) {
    let team = team(store).await;
    let name = unique("counter");
    let before = now_ms();
    let first = store
        .ensure_counter(team.id, &name, 750_000)
        .await
        .expect("ensure_counter");
    assert_eq!(first.name, name);
    assert_eq!(first.team_id, team.id);
    assert_eq!(first.quota, 750_000);
    assert_eq!((first.used, first.readings), (0, 0));
    assert!(first.created_at_ms >= before && first.created_at_ms <= now_ms());
    assert_eq!(
        first.updated_at_ms, None,
        "a new counter has no reading yet"
    );

    let again = store
        .ensure_counter(team.id, &name, 5)
        .await
        .expect("ensure_counter again");
    assert_eq!(again, first, "ensuring an existing counter changed it");
    assert_eq!(counter_now(store, &first).await, first);
    let elsewhere = super::team(store).await;
    let namesake = store
        .ensure_counter(elsewhere.id, &name, 5)
        .await
        .expect("the same name in another team");
    assert_ne!(
        namesake.id, first.id,
        "another team's counter of the same name"
    );
    assert_eq!((namesake.team_id, namesake.quota), (elsewhere.id, 5));
    assert_eq!(counter_now(store, &first).await, first);
    assert_eq!(
        store
            .counter_by_name(team.id, &unique("absent"))
            .await
            .expect("counter_by_name"),
        None
    );

    let other = counter(store).await;
    let listed = store.list_counters().await.expect("list_counters");
    for c in [&first, &other] {
        assert!(listed.contains(c), "list_counters lacks `{}`", c.name);
    }
    assert!(
        listed.windows(2).all(|w| w[0].name <= w[1].name),
        "counters not sorted by name: {listed:?}"
    );

    let orphan = unique("orphan");
    expect_not_found(
        store.ensure_counter(MISSING, &orphan, 1_000).await,
        &MISSING.to_string(),
        "a counter of a missing team",
    );
    assert_eq!(
        store
            .counter_by_name(MISSING, &orphan)
            .await
            .expect("counter_by_name"),
        None,
        "a refused counter was stored"
    );
}

/// Readings store the increment since the previous one; a reading below `used` is a reset;
/// `add_to_counter` adds a reading of `used + tokens`. Every field round-trips.
pub async fn counter_readings_increment_and_reset(store: &dyn Store) {
    let c = counter(store).await;
    let t0 = now_ms();

    let sent = new_reading(t0, 350_000);
    let (after, first) = store
        .record_reading(c.id, sent.clone())
        .await
        .expect("record_reading");
    assert_eq!(first.counter_id, c.id);
    assert_eq!(first.ts_ms, t0);
    assert_eq!(
        (first.reading, first.increment, first.reset),
        (350_000, 350_000, false)
    );
    assert_eq!(first.event, sent.event);
    assert_eq!(first.conversation_id, sent.conversation_id);
    assert_eq!(first.sync_type, "manual");
    assert_eq!(first.actor, sent.actor);
    assert_eq!((after.used, after.readings), (350_000, 1));
    assert_eq!(after.updated_at_ms, Some(t0));
    assert_eq!(
        Counter {
            used: c.used,
            readings: c.readings,
            updated_at_ms: c.updated_at_ms,
            ..after.clone()
        },
        c,
        "a reading changed more than used, readings and updated_at"
    );

    let second = record(store, c.id, t0 + 1_000, 500_000).await;
    assert_eq!((second.increment, second.reset), (150_000, false));
    let same = record(store, c.id, t0 + 2_000, 500_000).await;
    assert_eq!(
        (same.increment, same.reset),
        (0, false),
        "an unchanged reading is not a reset"
    );

    let reset = record(store, c.id, t0 + 3_000, 20_000).await;
    assert_eq!(
        (reset.reading, reset.increment, reset.reset),
        (20_000, 20_000, true)
    );
    let now = counter_now(store, &c).await;
    assert_eq!((now.used, now.readings), (20_000, 4), "after a reset");

    let mut estimate = new_reading(t0 + 4_000, 999_999_999);
    estimate.sync_type = "estimate".to_owned();
    estimate.conversation_id = None;
    estimate.actor = None;
    let (now, added) = store
        .add_to_counter(c.id, 5_000, estimate)
        .await
        .expect("add_to_counter");
    assert_eq!(
        (added.reading, added.increment, added.reset),
        (25_000, 5_000, false),
        "add_to_counter ignores reading.reading and records used + tokens"
    );
    assert_eq!(
        (
            added.sync_type.as_str(),
            added.conversation_id.as_deref(),
            added.actor.as_deref()
        ),
        ("estimate", None, None)
    );
    assert_eq!((now.used, now.readings), (25_000, 5));
    assert_eq!(now.updated_at_ms, Some(t0 + 4_000));

    // An import of an older session does not move the last update back.
    let mut imported = new_reading(t0 - DAY_MS, 0);
    imported.sync_type = "import".to_owned();
    let (now, _) = store
        .add_to_counter(c.id, 1_000, imported)
        .await
        .expect("add_to_counter of an older session");
    assert_eq!((now.used, now.readings), (26_000, 6));
    assert_eq!(now.updated_at_ms, Some(t0 + 4_000));
    let zero = add(store, c.id, t0 + 5_000, 0).await;
    assert_eq!(
        (zero.reading, zero.increment, zero.reset),
        (26_000, 0, false)
    );

    for sync_type in ["clipboard", "api"] {
        let mut r = new_reading(t0 + 6_000, 30_000);
        r.sync_type = sync_type.to_owned();
        let (_, stored) = store.record_reading(c.id, r).await.expect("record_reading");
        assert_eq!(stored.sync_type, sync_type);
    }

    // Newest first: the increments down to and including the last reset.
    let readings = all_readings(store, c.id).await;
    let last_reset = readings
        .iter()
        .position(|r| r.reset)
        .expect("the reset is listed");
    let since_reset: i64 = readings[..=last_reset].iter().map(|r| r.increment).sum();
    assert_eq!(
        since_reset,
        counter_now(store, &c).await.used,
        "increments since the last reset do not add up to used"
    );

    let before = counter_now(store, &c).await;
    let mut bogus = new_reading(t0, 40_000);
    bogus.sync_type = "telepathy".to_owned();
    match store.record_reading(c.id, bogus).await {
        Err(e) => assert!(
            e.to_string().contains(&c.name),
            "the error `{e}` should name counter `{}`",
            c.name
        ),
        Ok(stored) => panic!("an unknown sync type was recorded: {stored:?}"),
    }
    assert_eq!(
        counter_now(store, &c).await,
        before,
        "a refused reading changed the counter"
    );
}

/// Readings come newest first, and `before_id` pages through them without gaps or repeats.
pub async fn counter_readings_page_newest_first(store: &dyn Store) {
    let c = counter(store).await;
    let t0 = now_ms();
    let mut recorded = Vec::new();
    for i in 1..=7 {
        recorded.push(record(store, c.id, t0 + i, i * 1_000).await);
    }
    recorded.reverse();
    let listed = all_readings(store, c.id).await;
    assert_eq!(listed, recorded, "readings are not newest first");

    let mut paged = Vec::new();
    let mut before_id = None;
    loop {
        let page = store
            .list_readings(c.id, before_id, 3)
            .await
            .expect("list_readings page");
        assert!(
            page.len() <= 3,
            "a page of {} readings past its limit",
            page.len()
        );
        let Some(last) = page.last() else { break };
        before_id = Some(last.id);
        paged.extend(page);
    }
    assert_eq!(paged, recorded, "paging lost or repeated readings");

    let newest_two = store
        .list_readings(c.id, None, 2)
        .await
        .expect("list_readings");
    assert_eq!(newest_two, recorded[..2]);
    let below = store
        .list_readings(c.id, Some(recorded[2].id), 100)
        .await
        .expect("list_readings before an id");
    assert_eq!(below, recorded[3..]);
    assert!(
        store
            .list_readings(c.id, None, 0)
            .await
            .expect("list_readings with limit 0")
            .is_empty()
    );
    assert!(
        store
            .list_readings(MISSING, None, 10)
            .await
            .expect("list_readings of a missing counter")
            .is_empty()
    );
    let other = counter(store).await;
    assert!(
        all_readings(store, other.id).await.is_empty(),
        "a new counter shows another counter's readings"
    );
}

/// The quota changes alone; missing counters are `NotFound`, naming the id, and nothing is stored.
pub async fn counter_quota_and_missing_counters(store: &dyn Store) {
    let c = counter(store).await;
    record(store, c.id, now_ms(), 1_234).await;
    let before = counter_now(store, &c).await;
    let changed = store
        .set_counter_quota(c.id, 2_500_000)
        .await
        .expect("set_counter_quota");
    assert_eq!(changed.quota, 2_500_000);
    assert_eq!(
        Counter {
            quota: before.quota,
            ..changed.clone()
        },
        before,
        "set_counter_quota changed more than the quota"
    );
    assert_eq!(counter_now(store, &c).await, changed);

    let missing = &MISSING.to_string();
    expect_not_found(
        store.set_counter_quota(MISSING, 10).await,
        missing,
        "the quota of a missing counter",
    );
    expect_not_found(
        store
            .record_reading(MISSING, new_reading(now_ms(), 10))
            .await,
        missing,
        "a reading of a missing counter",
    );
    expect_not_found(
        store
            .add_to_counter(MISSING, 10, new_reading(now_ms(), 0))
            .await,
        missing,
        "an addition to a missing counter",
    );
    assert!(
        all_readings(store, MISSING).await.is_empty(),
        "a refused reading was stored"
    );
}

/// `counter_daily` sums increments per UTC day within `[from, to)`, for one counter or all.
pub async fn counter_daily_sums_by_utc_day(store: &dyn Store) {
    // Days around 2001–2014 that no other step writes to, different on each run.
    let offset = i64::try_from(Uuid::now_v7().as_u128() % 5_000).expect("small");
    let d1 = (11_500 + offset) * DAY_MS;
    let d2 = d1 + DAY_MS;
    let a = counter(store).await;
    let b = counter(store).await;

    // In recording order, with the increment each must get.
    let steps: [(i64, i64, i64, bool, i64); 8] = [
        // (counter, ts, figure or tokens, is an addition, expected increment)
        (a.id, d1 - 1, 1_000, false, 1_000),
        (a.id, d1 + HOUR_MS, 3_000, false, 2_000),
        (a.id, d2 - 1, 3_500, false, 500),
        (a.id, d2, 700, true, 700),
        (a.id, d2 + 5 * HOUR_MS, 100, false, 100),
        (a.id, d2 + DAY_MS, 400, false, 300),
        (b.id, d1 + 2 * HOUR_MS, 42, false, 42),
        (b.id, d2 + 1, 8, true, 8),
    ];
    for (counter_id, ts, amount, addition, increment) in steps {
        let stored = if addition {
            add(store, counter_id, ts, amount).await
        } else {
            record(store, counter_id, ts, amount).await
        };
        assert_eq!(stored.increment, increment, "increment of {stored:?}");
    }

    let daily = |counter_id, from, to| async move {
        store
            .counter_daily(counter_id, from, to)
            .await
            .expect("counter_daily")
    };
    assert_eq!(
        daily(Some(a.id), d1, d2 + DAY_MS).await,
        vec![(d1, 2_000 + 500, 2), (d2, 700 + 100, 2)]
    );
    assert_eq!(
        daily(Some(a.id), d1 - DAY_MS, d2 + 2 * DAY_MS).await,
        vec![
            (d1 - DAY_MS, 1_000, 1),
            (d1, 2_500, 2),
            (d2, 800, 2),
            (d2 + DAY_MS, 300, 1)
        ]
    );
    assert_eq!(
        daily(Some(b.id), d1, d2 + DAY_MS).await,
        vec![(d1, 42, 1), (d2, 8, 1)]
    );
    assert_eq!(
        daily(None, d1, d2 + DAY_MS).await,
        vec![(d1, 2_500 + 42, 3), (d2, 800 + 8, 3)],
        "every counter's readings, by day"
    );
    assert_eq!(
        daily(None, d1 + HOUR_MS + 1, d2).await,
        vec![(d1, 500 + 42, 2)],
        "from is inclusive, to exclusive, both to the millisecond"
    );
    assert!(daily(Some(a.id), d2 + 1, d2 + 2).await.is_empty());
    assert!(daily(Some(MISSING), d1, d2 + DAY_MS).await.is_empty());
}

/// Twenty additions of known sizes from five concurrent workers: `used` is their sum, and the
/// readings form one chain in which each is the previous plus its increment.
pub async fn concurrent_additions_add_up(store: &dyn Store) {
    const WORKERS: i64 = 5;
    const EACH: i64 = 4;
    let size = |worker: i64, i: i64| (worker * EACH + i + 1) * 1_000 + worker;
    let c = counter(store).await;
    let counter_id = c.id;
    let worker = |w: i64| async move {
        let mut done = Vec::new();
        for i in 0..EACH {
            let mut r = new_reading(now_ms(), 0);
            r.sync_type = "api".to_owned();
            r.event = format!("worker {w} addition {i}");
            let (_, stored) = store
                .add_to_counter(counter_id, size(w, i), r)
                .await
                .expect("concurrent add_to_counter");
            done.push(stored);
        }
        done
    };
    let (r0, r1, r2, r3, r4) = tokio::join!(worker(0), worker(1), worker(2), worker(3), worker(4));
    let expected: i64 = (0..WORKERS)
        .flat_map(|w| (0..EACH).map(move |i| size(w, i)))
        .sum();

    let now = counter_now(store, &c).await;
    assert_eq!(now.used, expected, "concurrent additions lost tokens");
    assert_eq!(now.readings, WORKERS * EACH);
    let returned: Vec<CounterReading> = [r0, r1, r2, r3, r4].into_iter().flatten().collect();
    assert_eq!(returned.iter().map(|r| r.increment).sum::<i64>(), expected);

    let mut chain = all_readings(store, c.id).await;
    chain.reverse();
    assert_eq!(chain.len(), 20);
    let mut used = 0;
    for r in &chain {
        assert!(!r.reset, "an addition was taken for a reset: {r:?}");
        assert_eq!(
            r.reading,
            used + r.increment,
            "reading {} is not the previous total {used} plus its increment {}",
            r.id,
            r.increment
        );
        used = r.reading;
        assert!(
            returned.contains(r),
            "listed reading {} was never returned",
            r.id
        );
    }
    assert_eq!(used, expected);
}

/// Every counter step, in order.
pub async fn counters_story(store: &dyn Store) {
    counters_ensure_is_idempotent(store).await;
    counter_readings_increment_and_reset(store).await;
    counter_readings_page_newest_first(store).await;
    counter_quota_and_missing_counters(store).await;
    counter_daily_sums_by_utc_day(store).await;
    concurrent_additions_add_up(store).await;
    readings_are_corrected_and_deleted(store).await;
}

/// The (figure, increment, reset) of every reading, oldest first.
async fn chain(store: &dyn Store, counter_id: i64) -> Vec<(i64, i64, bool)> {
    let mut readings = all_readings(store, counter_id).await;
    readings.reverse();
    readings
        .iter()
        .map(|r| (r.reading, r.increment, r.reset))
        .collect()
}

/// A wrong reading corrected: it and every later one recomputed (cumulative readings against the
/// one before, added ones keeping their increment), `used` the last figure, increments adding
/// up to it. A deleted reading: the same without it, one reading fewer. A reading of another
/// counter, or none, is not found and changes nothing.
pub async fn readings_are_corrected_and_deleted(store: &dyn Store) {
    let c = counter(store).await;
    let t = now_ms();
    let first = record(store, c.id, t, 100_000).await;
    let typo = record(store, c.id, t + 1, 1_500_000).await; // 150,000 mistyped
    let third = record(store, c.id, t + 2, 160_000).await; // looked like a reset
    // An estimate adds its tokens to whatever was used before it.
    store
        .add_to_counter(
            c.id,
            5_000,
            NewReading {
                sync_type: "estimate".to_owned(),
                ..new_reading(t + 3, 0)
            },
        )
        .await
        .expect("add_to_counter");
    assert_eq!(
        chain(store, c.id).await,
        [
            (100_000, 100_000, false),
            (1_500_000, 1_400_000, false),
            (160_000, 160_000, true),
            (165_000, 5_000, false)
        ]
    );
    let (revised, corrected) = store
        .revise_reading(c.id, typo.id, Some(150_000))
        .await
        .expect("revise_reading");
    let corrected = corrected.expect("the corrected reading");
    assert_eq!(
        (corrected.id, corrected.reading, corrected.increment),
        (typo.id, 150_000, 50_000)
    );
    let now = chain(store, c.id).await;
    assert_eq!(
        now,
        [
            (100_000, 100_000, false),
            (150_000, 50_000, false),
            (160_000, 10_000, false),
            (165_000, 5_000, false)
        ]
    );
    assert_eq!(revised.used, 165_000);
    assert_eq!(revised.used, now.iter().map(|r| r.1).sum::<i64>());
    assert_eq!(revised.readings, 4);

    let (revised, gone) = store
        .revise_reading(c.id, third.id, None)
        .await
        .expect("delete");
    assert!(gone.is_none());
    assert_eq!(
        chain(store, c.id).await,
        [
            (100_000, 100_000, false),
            (150_000, 50_000, false),
            (155_000, 5_000, false)
        ]
    );
    assert_eq!((revised.used, revised.readings), (155_000, 3));
    assert_eq!(counter_now(store, &c).await.used, 155_000);

    // Another counter's reading, a missing one: not found, nothing changed.
    let other = counter(store).await;
    expect_not_found(
        store.revise_reading(other.id, first.id, Some(1)).await,
        &format!("reading {}", first.id),
        "revise a reading of another counter",
    );
    expect_not_found(
        store.revise_reading(c.id, MISSING, None).await,
        &format!("reading {MISSING}"),
        "delete a missing reading",
    );
    expect_not_found(
        store.revise_reading(MISSING, first.id, None).await,
        &format!("counter {MISSING}"),
        "revise a reading of a missing counter",
    );
    assert_eq!(chain(store, c.id).await.len(), 3);
}
