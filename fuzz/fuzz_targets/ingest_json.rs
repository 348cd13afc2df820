//! The ingest API's body parsing and validation (`/api/v1/usage/events` and the seed's
//! `/api/usage-log`) on arbitrary bytes: it never panics, and every event it accepts has sane
//! figures, and the same body always gives the same ids (a replayed batch is stored once).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_console::api::ingest::{
    Parsed, TimeWindow, events_from_body, usage_logs_from_body,
};
use tollgate_core::UsageEvent;
use tollgate_core::pricing::PriceTable;
use tollgate_core::usage::UNKNOWN_STATUS;

fuzz_target!(|body: &[u8]| {
    let prices = PriceTable::default();
    // A fixed clock: the same body must always give the same verdicts.
    let window = TimeWindow {
        now_ms: 1_800_000_000_000,
        retention_days: 30,
    };
    if let Ok(parsed) = events_from_body(body, &prices, window) {
        assert!(!parsed.events.is_empty());
        parsed.events.iter().for_each(|(_, e)| check(e));
        // The same body parsed again gives the same ids: a replayed batch counts once.
        let again = events_from_body(body, &prices, window).expect("accepted once, accepted again");
        let ids = |p: &Parsed| p.events.iter().map(|(_, e)| e.event_id).collect::<Vec<_>>();
        assert_eq!(ids(&parsed), ids(&again));
    }
    if let Ok(parsed) = usage_logs_from_body(body, window) {
        assert!(!parsed.events.is_empty());
        parsed.events.iter().for_each(|(_, e)| check(e));
    }
});

fn check(event: &UsageEvent) {
    assert!(event.status == UNKNOWN_STATUS || (100..=599).contains(&event.status));
    assert!(event.latency_us >= 0);
    let t = &event.tokens;
    assert!(t.prompt >= 0 && t.completion >= 0 && t.total >= 0);
    assert!(t.cached >= 0 && t.reasoning >= 0);
    assert!(event.cost_usd.is_finite() && event.cost_usd >= 0.0);
    assert!(!event.method.is_empty() && event.method.bytes().all(|b| b.is_ascii_uppercase()));
}
