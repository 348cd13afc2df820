//! The call log over many hours where a filter's calls are sparse: a backend may plan a page by
//! the hourly roll-ups (SQLite walks only the hours they name), so pages must cross batches of
//! hours, hour boundaries and ties, and still find the events whose roll-ups were cleaned up.

use std::collections::HashMap;

use tollgate_core::UsageEvent;
use tollgate_core::time::{DAY_MS, HOUR_MS};
use uuid::Uuid;

use super::analytics::{attributed, expected_ids, walk};
use super::{key, route, team};
use crate::{EventFilter, Store};

/// 1983-01-01T00:00Z: older than every other step's events (the retention story's start on
/// 1983-12-31), so that cleaning up roll-ups and events before a cut here touches only these.
const BASE: i64 = 410_227_200_000;
/// Hours the story spans: more than one batch of hours asked of the roll-ups at a time.
const HOURS: i64 = 300;

/// Pages of one, a few, many and all, for filters whose calls lie in every hour, every fourth
/// hour (on the hours' first and last milliseconds) or a few hours; then the same after the
/// roll-ups of the first hundred hours and a half are cleaned up (their events stay). Leaves no
/// event or roll-up behind.
pub async fn sparse_matches_are_found_hour_by_hour(store: &dyn Store) {
    let (team_a, team_b) = (team(store).await, team(store).await);
    let busy = key(store, team_a.id).await;
    let rare = key(store, team_b.id).await;
    let (r1, r2) = (
        route(store, None).await,
        route(store, Some(team_b.id)).await,
    );
    let keys = [&busy, &rare];

    let mut events = Vec::new();
    let call = |ts: i64, status: u16| UsageEvent::new(ts, "POST", "/v1/chat/completions", status);
    for h in 0..HOURS {
        let start = BASE + h * HOUR_MS;
        for (i, minute) in [5, 25, 25, 45].into_iter().enumerate() {
            let mut e = call(start + minute * 60_000, if i == 3 { 502 } else { 200 });
            e.key_id = Some(busy.id);
            e.team_id = Some(busy.team_id);
            e.route_id = Some(if h % 2 == 0 { r1.id } else { r2.id });
            e.model = (i != 1).then(|| "gpt-4o".to_owned());
            events.push(e);
        }
        if h % 4 == 1 {
            // The hour's last millisecond, by hash (the store attributes it), and its first.
            let mut last = call(start + HOUR_MS - 1, if h % 8 == 1 { 503 } else { 200 });
            last.key_hash = Some(rare.key_hash.clone());
            last.route_id = Some(r2.id);
            last.model = Some("claude-3".to_owned());
            let mut first = call(start, 200);
            first.key_id = Some(rare.id);
            first.team_id = Some(rare.team_id);
            first.model = Some("claude-3".to_owned());
            events.extend([last, first]);
        }
        if h % 97 == 3 {
            // A call of no key or team.
            events.push(call(start + 30 * 60_000, 404));
        }
    }
    let written = store.write_usage(&events).await.expect("write_usage");
    assert_eq!(written, u64::try_from(events.len()).expect("fits"));
    let stored: Vec<UsageEvent> = events.iter().map(|e| attributed(e, &keys)).collect();

    let range = EventFilter {
        from_ms: Some(BASE),
        to_ms: Some(BASE + HOURS * HOUR_MS),
        ..EventFilter::default()
    };
    let everything = walk(store, &range, 1_000).await;
    assert_eq!(everything.len(), events.len(), "the whole range");
    let ids: HashMap<Uuid, i64> = everything
        .iter()
        .map(|s| (s.event.event_id, s.id))
        .collect();

    let filters = [
        ("busy key", Some(busy.id), None, None, None),
        ("rare key", Some(rare.id), None, None, None),
        ("rare key's team", None, Some(vec![team_b.id]), None, None),
        (
            "both teams",
            None,
            Some(vec![team_a.id, team_b.id]),
            None,
            None,
        ),
        ("route r2", None, None, Some(r2.id), None),
        ("rare key, 503", Some(rare.id), None, None, Some(503)),
        (
            "busy key, route r1, 502",
            Some(busy.id),
            None,
            Some(r1.id),
            Some(502),
        ),
    ];
    let filters: Vec<(&str, EventFilter)> = filters
        .into_iter()
        .flat_map(|(name, key_id, team_ids, route_id, status)| {
            let filter = EventFilter {
                key_id,
                team_ids,
                route_id,
                status,
                ..range.clone()
            };
            let model = EventFilter {
                model: Some("claude-3".to_owned()),
                ..filter.clone()
            };
            // The same, from hour 150 and a half to hour 290, and with no range at all.
            let inner = EventFilter {
                from_ms: Some(BASE + 150 * HOUR_MS + HOUR_MS / 2),
                to_ms: Some(BASE + 290 * HOUR_MS),
                ..filter.clone()
            };
            let open = EventFilter {
                from_ms: None,
                to_ms: None,
                ..filter.clone()
            };
            [(name, filter), (name, model), (name, inner), (name, open)]
        })
        .collect();
    let check = |stage: &'static str| {
        let (filters, stored, ids) = (&filters, &stored, &ids);
        async move {
            for (name, filter) in filters {
                // The keys, teams and routes are the story's own: no other step's events match.
                let want = expected_ids(stored, ids, filter);
                assert!(
                    !want.is_empty() || filter.model.is_some(),
                    "{name}: the story means to match something"
                );
                // Pages of one for the sparse filters; the busy ones cross as many hours in 7s.
                let pages: &[i64] = if want.len() > 300 {
                    &[7, 100, 1_000]
                } else {
                    &[1, 3, 50, 1_000]
                };
                for &page in pages {
                    let got: Vec<i64> = walk(store, filter, page)
                        .await
                        .iter()
                        .map(|s| s.id)
                        .collect();
                    assert_eq!(got, want, "{stage}: {name} ({filter:?}), pages of {page}");
                }
            }
        }
    };
    check("with every roll-up").await;

    // Roll-ups cleaned up into the middle of hour 100: the events before it stay.
    store
        .delete_rollups_before(BASE + 100 * HOUR_MS + HOUR_MS / 2)
        .await
        .expect("delete_rollups_before");
    check("with the roll-ups of the first hours gone").await;

    // Nothing left behind for the other steps.
    let end = BASE + 14 * DAY_MS;
    let deleted = store
        .delete_usage_before(end, 500)
        .await
        .expect("delete_usage_before");
    assert_eq!(deleted, written, "only the story's events are that old");
    store
        .delete_rollups_before(end)
        .await
        .expect("delete_rollups_before");
}
