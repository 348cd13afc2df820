//! The ingest API's body parsing and validation (`/api/v1/usage/events` and the seed's
//! `/api/usage-log`) on arbitrary bytes: it never panics, and every event it accepts has sane
//! figures, and the same body always gives the same ids (a replayed batch is stored once).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_console::api::ingest::{events_from_body, usage_logs_from_body};
use tollgate_core::UsageEvent;
use tollgate_core::pricing::PriceTable;

fuzz_target!(|body: &[u8]| {
    let prices = PriceTable::default();
    if let Ok(events) = events_from_body(body, &prices) {
        assert!(!events.is_empty());
        events.iter().for_each(check);
        // The same body parsed again gives the same ids: a replayed batch counts once.
        let again = events_from_body(body, &prices).expect("accepted once, accepted again");
        let ids = |e: &[UsageEvent]| e.iter().map(|e| e.event_id).collect::<Vec<_>>();
        assert_eq!(ids(&events), ids(&again));
    }
    if let Ok(events) = usage_logs_from_body(body) {
        assert!(!events.is_empty());
        events.iter().for_each(check);
    }
});

fn check(event: &UsageEvent) {
    assert!((100..=599).contains(&event.status));
    assert!(event.latency_us >= 0);
    let t = &event.tokens;
    assert!(t.prompt >= 0 && t.completion >= 0 && t.total >= 0);
    assert!(t.cached >= 0 && t.reasoning >= 0);
    assert!(event.cost_usd.is_finite() && event.cost_usd >= 0.0);
    assert!(!event.method.is_empty() && event.method.bytes().all(|b| b.is_ascii_uppercase()));
}
