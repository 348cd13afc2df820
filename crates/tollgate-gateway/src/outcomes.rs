//! What each route's recent calls came to, for the alert rules: calls and failures per minute
//! over a short window, and since when a route's upstream has not answered.
//!
//! One small map behind a mutex, touched once per finished call (a few tens of nanoseconds,
//! never across an await). It holds this process's calls only: with several instances the
//! instance that holds the alert evaluator's lease judges by its own share of the traffic,
//! which a load balancer makes representative.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tollgate_core::UsageEvent;

use crate::error::GatewayError;

/// Minutes kept per route: the longest error window the rules may ask for.
pub const WINDOW_MINUTES: usize = 15;

const MINUTE_MS: i64 = 60_000;

/// One route's recent calls, as the rules read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteOutcome {
    /// The route's name.
    pub route: String,
    /// Calls that reached the forwarding step in the window.
    pub calls: u64,
    /// Of those, answered with a status of 500 or more (the upstream's or the gateway's own
    /// 502/504 when the upstream failed).
    pub errors: u64,
    /// Since when every attempt to reach the upstream failed to connect or timed out; `None`
    /// once one call got an answer.
    pub unreachable_since_ms: Option<i64>,
    /// The last connection failure, as recorded in the call's event.
    pub last_error: String,
}

#[derive(Debug, Default)]
struct Window {
    name: String,
    /// `(minute number, calls, errors)`, a ring indexed by minute.
    minutes: [(i64, u64, u64); WINDOW_MINUTES],
    unreachable_since_ms: Option<i64>,
    last_error: String,
}

/// Per-route outcomes of the calls this process forwarded.
#[derive(Debug, Default)]
pub struct RouteOutcomes {
    routes: Mutex<HashMap<i64, Window>>,
}

/// Whether an event's error (`<code>: <detail>`) says the upstream could not be reached at all.
fn unreachable(error: Option<&str>) -> bool {
    error.is_some_and(|e| {
        [
            GatewayError::UpstreamUnreachable,
            GatewayError::UpstreamTimeout,
        ]
        .iter()
        .any(|g| e.starts_with(g.code()))
    })
}

impl RouteOutcomes {
    /// Counts one finished call. Calls without a route (refused before routing) and calls the
    /// client abandoned before an answer say nothing about the route and are skipped.
    pub fn observe(&self, event: &UsageEvent) {
        let (Some(route_id), Some(name)) = (event.route_id, event.route.as_deref()) else {
            return;
        };
        // Refusals before forwarding (key, limits, model allow-list) are 4xx without an
        // upstream attempt: not the route's health.
        let attempted = event.upstream_latency_us.is_some() || event.status >= 500;
        if !attempted {
            return;
        }
        let minute = event.ts_ms.div_euclid(MINUTE_MS);
        let slot = usize::try_from(minute.rem_euclid(WINDOW_MINUTES as i64)).unwrap_or(0);
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let window = routes.entry(route_id).or_default();
        if window.name != name {
            name.clone_into(&mut window.name);
        }
        let cell = &mut window.minutes[slot];
        if cell.0 != minute {
            *cell = (minute, 0, 0);
        }
        cell.1 += 1;
        if event.status >= 500 {
            cell.2 += 1;
        }
        if unreachable(event.error.as_deref()) {
            if window.unreachable_since_ms.is_none() {
                window.unreachable_since_ms = Some(event.ts_ms);
            }
            event
                .error
                .as_deref()
                .unwrap_or_default()
                .clone_into(&mut window.last_error);
        } else if event.upstream_latency_us.is_some() {
            window.unreachable_since_ms = None;
        }
    }

    /// Every route's calls and failures over the last `minutes` whole and current minutes
    /// (at most [`WINDOW_MINUTES`]) before `now_ms`, with its upstream's state.
    pub fn snapshot(&self, now_ms: i64, minutes: usize) -> Vec<RouteOutcome> {
        let now_minute = now_ms.div_euclid(MINUTE_MS);
        let span = i64::try_from(minutes.clamp(1, WINDOW_MINUTES)).unwrap_or(1);
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<RouteOutcome> = routes
            .values()
            .map(|w| {
                let (calls, errors) = w
                    .minutes
                    .iter()
                    .filter(|(m, _, _)| *m > now_minute - span && *m <= now_minute)
                    .fold((0, 0), |(c, e), (_, calls, errors)| (c + calls, e + errors));
                RouteOutcome {
                    route: w.name.clone(),
                    calls,
                    errors,
                    unreachable_since_ms: w.unreachable_since_ms,
                    last_error: w.last_error.clone(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.route.cmp(&b.route));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        route: i64,
        ts_ms: i64,
        status: u16,
        error: Option<&str>,
        answered: bool,
    ) -> UsageEvent {
        let mut e = UsageEvent::new(ts_ms, "GET", "/x", status);
        e.route_id = Some(route);
        e.route = Some(format!("r{route}"));
        e.error = error.map(str::to_owned);
        e.upstream_latency_us = answered.then_some(1_000);
        e
    }

    #[test]
    fn counts_calls_and_failures_inside_the_window_only() {
        let o = RouteOutcomes::default();
        let t0 = 1_000 * MINUTE_MS;
        o.observe(&event(1, t0, 200, None, true));
        o.observe(&event(
            1,
            t0 + 1,
            502,
            Some("upstream_unreachable: refused"),
            false,
        ));
        o.observe(&event(1, t0 + 2 * MINUTE_MS, 500, None, true));
        // A refusal before forwarding says nothing about the route.
        o.observe(&event(
            1,
            t0 + 2 * MINUTE_MS,
            429,
            Some("rate_limited"),
            false,
        ));
        let now = t0 + 2 * MINUTE_MS + 5;
        let five = o.snapshot(now, 5);
        assert_eq!(five.len(), 1);
        assert_eq!((five[0].calls, five[0].errors), (3, 2));
        let one = o.snapshot(now, 1);
        assert_eq!((one[0].calls, one[0].errors), (1, 1));
        // Minutes that fell out of the window are not counted, even before they are reused.
        let later = o.snapshot(t0 + 20 * MINUTE_MS, 5);
        assert_eq!((later[0].calls, later[0].errors), (0, 0));
    }

    #[test]
    fn an_upstream_is_unreachable_until_one_call_is_answered() {
        let o = RouteOutcomes::default();
        let t0 = 5_000 * MINUTE_MS;
        o.observe(&event(
            2,
            t0,
            502,
            Some("upstream_unreachable: refused"),
            false,
        ));
        o.observe(&event(
            2,
            t0 + 10,
            504,
            Some("upstream_timeout: no head"),
            false,
        ));
        let s = o.snapshot(t0 + 20, 5);
        assert_eq!(
            s[0].unreachable_since_ms,
            Some(t0),
            "since the first failure"
        );
        assert!(s[0].last_error.starts_with("upstream_timeout"), "{s:?}");
        // An upstream 500 is an answer: the upstream is reachable again.
        o.observe(&event(2, t0 + 30, 500, None, true));
        assert_eq!(o.snapshot(t0 + 40, 5)[0].unreachable_since_ms, None);
    }

    #[test]
    fn calls_without_a_route_are_skipped() {
        let o = RouteOutcomes::default();
        let mut e = event(3, 0, 401, Some("invalid_key"), false);
        e.route_id = None;
        o.observe(&e);
        assert!(o.snapshot(0, 5).is_empty());
    }
}
