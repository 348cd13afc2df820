//! The health of model-routing targets in this process: calls in flight, requests this minute,
//! the circuit breaker, attempts and errors over the last minutes and the most recent errors.
//! The gateway updates it on every attempt; the registry lives in [`crate::metrics::Metrics`],
//! which the console shares, so that `GET /api/v1/targets/health` reads the same state.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::llm::PoolSettings;

/// Minutes of attempts and errors a target's health keeps.
pub const WINDOW_MINUTES: usize = 5;
/// Most recent errors a target's health keeps.
pub const RECENT_ERRORS: usize = 5;

/// What is known of a target's recent calls; kept across reloads by target id.
#[derive(Debug, Default)]
pub(crate) struct TargetHealth {
    /// Calls sent and not yet answered (head received or failed).
    in_flight: AtomicUsize,
    /// Failures in a row since the last success.
    failures: AtomicU32,
    /// While the circuit is open: until when, epoch ms; 0 when closed.
    open_until_ms: AtomicI64,
    /// While the circuit is open: since when, epoch ms; 0 when closed.
    opened_at_ms: AtomicI64,
    /// A half-open probe is under way.
    probing: AtomicBool,
    /// The minute (epoch ms / 60000) `minute_calls` counts.
    minute: AtomicI64,
    minute_calls: AtomicU32,
    /// Attempts by minute and the latest errors (written once an attempt is judged).
    recent: Mutex<Recent>,
}

#[derive(Debug, Default)]
struct Recent {
    /// Oldest first; at most [`WINDOW_MINUTES`] minutes.
    minutes: VecDeque<MinuteCount>,
    /// Newest first; at most [`RECENT_ERRORS`].
    errors: VecDeque<RecentError>,
}

/// Attempts sent to a target in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MinuteCount {
    /// Start of the minute, epoch ms.
    pub minute_ms: i64,
    /// Attempts judged in that minute.
    pub attempts: u32,
    /// Of which failed (connect error, timeout, 429, 5xx).
    pub errors: u32,
}

/// One failed attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecentError {
    /// When it was judged, epoch ms.
    pub at_ms: i64,
    /// The upstream's status, or the one the gateway would answer (502, 504) when none came.
    pub status: u16,
    /// A short reason of the gateway's own wording (never an upstream body or a credential).
    pub reason: String,
}

/// Where a target's circuit breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// The target cools down; no calls until `reopens_at_ms`.
    Open,
    /// The cooldown is over: the next call (or the one under way) is a probe.
    HalfOpen,
}

/// A target's health at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthSnapshot {
    /// The target's id.
    pub target_id: i64,
    /// Circuit state.
    pub circuit: CircuitState,
    /// Since when the circuit is open or half-open, epoch ms; `None` when closed.
    pub open_since_ms: Option<i64>,
    /// When an open circuit lets a probe through, epoch ms; `None` when closed.
    pub reopens_at_ms: Option<i64>,
    /// Failures in a row since the last success.
    pub consecutive_failures: u32,
    /// Calls sent and not yet answered.
    pub in_flight: usize,
    /// Attempts in the current minute.
    pub current_minute_attempts: u32,
    /// The last [`WINDOW_MINUTES`] minutes with attempts, oldest first.
    pub minutes: Vec<MinuteCount>,
    /// The latest errors, newest first.
    pub recent_errors: Vec<RecentError>,
}

/// Whether a target may be tried now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Availability {
    /// Circuit closed, under its rate ceiling.
    Ready,
    /// Circuit half-open: this call is its one probe.
    Probe,
    /// Circuit open, a probe already under way, or its rate ceiling reached this minute.
    Unavailable,
}

impl TargetHealth {
    /// Whether the target may take a call at `now_ms`; a half-open circuit lets one probe through.
    pub(crate) fn availability(&self, now_ms: i64) -> Availability {
        let open_until = self.open_until_ms.load(Ordering::Acquire);
        if open_until == 0 {
            return Availability::Ready;
        }
        if now_ms < open_until {
            return Availability::Unavailable;
        }
        if self
            .probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            Availability::Probe
        } else {
            Availability::Unavailable
        }
    }

    /// Gives back a probe slot taken by [`TargetHealth::availability`] for a call not sent.
    pub(crate) fn release_probe(&self) {
        self.probing.store(false, Ordering::Release);
    }

    /// Counts a call against the rate ceiling; `false` when this minute's ceiling is reached.
    pub(crate) fn take_rate(&self, rpm: Option<u32>, now_ms: i64) -> bool {
        let Some(rpm) = rpm else {
            return true;
        };
        let minute = now_ms.div_euclid(60_000);
        if self.minute.swap(minute, Ordering::AcqRel) != minute {
            self.minute_calls.store(0, Ordering::Release);
        }
        self.minute_calls.fetch_add(1, Ordering::AcqRel) < rpm
    }

    /// A call is sent; the guard counts it in flight until dropped.
    pub(crate) fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }

    /// Calls in flight.
    pub(crate) fn busy(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// The target answered usefully: the circuit closes. Returns whether it was open.
    pub(crate) fn succeeded(&self) -> bool {
        self.failures.store(0, Ordering::Release);
        self.probing.store(false, Ordering::Release);
        self.opened_at_ms.store(0, Ordering::Release);
        self.open_until_ms.swap(0, Ordering::AcqRel) != 0
    }

    /// The target failed. Opens the circuit for `cooldown` (or until `retry_at_ms`, whichever is
    /// later) after `threshold` failures in a row, or at once when a probe failed or the upstream
    /// asked to be left alone for a while. Returns whether the circuit is newly open.
    pub(crate) fn failed(
        &self,
        now_ms: i64,
        settings: &PoolSettings,
        retry_at_ms: Option<i64>,
    ) -> bool {
        let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        let was_probe = self.probing.swap(false, Ordering::AcqRel);
        let cooldown = i64::try_from(settings.circuit_cooldown.as_millis()).unwrap_or(i64::MAX);
        let open = failures >= settings.circuit_failures.max(1) || was_probe;
        let until = match (open, retry_at_ms) {
            (true, retry) => Some(now_ms.saturating_add(cooldown).max(retry.unwrap_or(0))),
            (false, Some(retry)) if retry > now_ms => Some(retry),
            (false, _) => None,
        };
        match until {
            Some(until) => {
                let newly = self.open_until_ms.swap(until, Ordering::AcqRel) == 0;
                if newly {
                    self.opened_at_ms.store(now_ms, Ordering::Release);
                }
                newly
            }
            None => false,
        }
    }

    /// Whether the circuit is open (a probe pending counts as open).
    pub(crate) fn is_open(&self) -> bool {
        self.open_until_ms.load(Ordering::Acquire) != 0
    }

    /// Counts a judged attempt at `now_ms`: `error` is its status and short reason when it failed.
    pub(crate) fn record(&self, now_ms: i64, error: Option<(u16, &str)>) {
        let minute_ms = now_ms.div_euclid(60_000) * 60_000;
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        match recent.minutes.back_mut() {
            Some(last) if last.minute_ms == minute_ms => {
                last.attempts = last.attempts.saturating_add(1);
                last.errors = last.errors.saturating_add(u32::from(error.is_some()));
            }
            _ => {
                recent.minutes.push_back(MinuteCount {
                    minute_ms,
                    attempts: 1,
                    errors: u32::from(error.is_some()),
                });
                while recent.minutes.len() > WINDOW_MINUTES {
                    recent.minutes.pop_front();
                }
            }
        }
        if let Some((status, reason)) = error {
            recent.errors.push_front(RecentError {
                at_ms: now_ms,
                status,
                reason: reason.to_owned(),
            });
            recent.errors.truncate(RECENT_ERRORS);
        }
    }

    /// The target's health at `now_ms`.
    fn snapshot(&self, target_id: i64, now_ms: i64) -> HealthSnapshot {
        let open_until = self.open_until_ms.load(Ordering::Acquire);
        let circuit = match open_until {
            0 => CircuitState::Closed,
            until if now_ms < until => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        };
        let opened_at = self.opened_at_ms.load(Ordering::Acquire);
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let first_minute =
            (now_ms.div_euclid(60_000) - i64::try_from(WINDOW_MINUTES).unwrap_or(i64::MAX) + 1)
                * 60_000;
        let minutes: Vec<MinuteCount> = recent
            .minutes
            .iter()
            .filter(|m| m.minute_ms >= first_minute)
            .copied()
            .collect();
        let this_minute = now_ms.div_euclid(60_000) * 60_000;
        HealthSnapshot {
            target_id,
            circuit,
            open_since_ms: (open_until != 0).then_some(opened_at),
            reopens_at_ms: (open_until != 0).then_some(open_until),
            consecutive_failures: self.failures.load(Ordering::Acquire),
            in_flight: self.busy(),
            current_minute_attempts: minutes
                .iter()
                .find(|m| m.minute_ms == this_minute)
                .map_or(0, |m| m.attempts),
            minutes,
            recent_errors: recent.errors.iter().cloned().collect(),
        }
    }
}

/// A call in flight to a target; counted down when dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<TargetHealth>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Every target's health, by target id, so that reloads keep circuits and counters.
#[derive(Debug, Default)]
pub struct HealthRegistry {
    targets: Mutex<HashMap<i64, Arc<TargetHealth>>>,
}

impl HealthRegistry {
    pub(crate) fn of(&self, id: i64) -> Arc<TargetHealth> {
        let mut map = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(id).or_default())
    }

    /// Forgets the targets that no longer exist.
    pub(crate) fn retain(&self, ids: &[i64]) {
        let mut map = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|id, _| ids.contains(id));
    }

    /// The health of every target this process's gateway has loaded, by target id.
    pub fn snapshot(&self, now_ms: i64) -> HashMap<i64, HealthSnapshot> {
        let targets: Vec<(i64, Arc<TargetHealth>)> = {
            let map = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
            map.iter().map(|(id, h)| (*id, Arc::clone(h))).collect()
        };
        targets
            .into_iter()
            .map(|(id, health)| (id, health.snapshot(id, now_ms)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_circuit_opens_after_failures_and_lets_one_probe_through_after_the_cooldown() {
        let settings = PoolSettings {
            circuit_failures: 2,
            circuit_cooldown: Duration::from_secs(10),
            ..PoolSettings::default()
        };
        let health = TargetHealth::default();
        assert_eq!(health.availability(0), Availability::Ready);
        assert!(!health.failed(0, &settings, None));
        assert_eq!(health.availability(0), Availability::Ready);
        assert!(health.failed(1, &settings, None), "second failure opens");
        assert_eq!(health.availability(5_000), Availability::Unavailable);
        assert_eq!(health.availability(10_001), Availability::Probe);
        assert_eq!(
            health.availability(10_002),
            Availability::Unavailable,
            "one probe at a time"
        );
        assert!(
            !health.failed(10_003, &settings, None),
            "a failed probe keeps it open"
        );
        assert_eq!(health.availability(15_000), Availability::Unavailable);
        assert_eq!(health.availability(20_004), Availability::Probe);
        assert!(health.succeeded(), "a good probe closes it");
        assert_eq!(health.availability(20_005), Availability::Ready);
    }

    #[test]
    fn retry_after_keeps_a_target_out_until_then() {
        let settings = PoolSettings::default();
        let health = TargetHealth::default();
        assert!(health.failed(1_000, &settings, Some(3_000)));
        assert_eq!(health.availability(2_000), Availability::Unavailable);
        assert_eq!(health.availability(3_000), Availability::Probe);
    }

    #[test]
    fn rate_ceilings_count_per_minute() {
        let health = TargetHealth::default();
        assert!(health.take_rate(Some(2), 0));
        assert!(health.take_rate(Some(2), 1));
        assert!(!health.take_rate(Some(2), 2));
        assert!(health.take_rate(Some(2), 60_000), "a new minute");
        assert!(health.take_rate(None, 60_001));
    }

    #[test]
    fn a_snapshot_shows_the_circuit_its_times_and_the_recent_minutes_and_errors() {
        let settings = PoolSettings {
            circuit_failures: 2,
            circuit_cooldown: Duration::from_secs(10),
            ..PoolSettings::default()
        };
        let registry = HealthRegistry::default();
        let health = registry.of(7);
        let _busy = health.start();
        health.record(1_000, None);
        health.record(61_000, Some((502, "unreachable")));
        assert!(!health.failed(61_000, &settings, None));
        health.record(62_000, Some((503, "upstream error")));
        assert!(health.failed(62_000, &settings, None));

        let open = &registry.snapshot(63_000)[&7];
        assert_eq!(open.circuit, CircuitState::Open);
        assert_eq!(open.open_since_ms, Some(62_000));
        assert_eq!(open.reopens_at_ms, Some(72_000));
        assert_eq!(open.consecutive_failures, 2);
        assert_eq!(open.in_flight, 1);
        assert_eq!(open.current_minute_attempts, 2);
        assert_eq!(
            open.minutes,
            vec![
                MinuteCount {
                    minute_ms: 0,
                    attempts: 1,
                    errors: 0
                },
                MinuteCount {
                    minute_ms: 60_000,
                    attempts: 2,
                    errors: 2
                },
            ]
        );
        assert_eq!(open.recent_errors[0].status, 503, "newest first");
        assert_eq!(open.recent_errors[1].reason, "unreachable");

        assert_eq!(
            registry.snapshot(72_000)[&7].circuit,
            CircuitState::HalfOpen
        );
        let later = &registry.snapshot(6 * 60_000 + 1)[&7];
        assert!(
            later.minutes.is_empty(),
            "minutes older than the window are left out"
        );
        assert_eq!(later.current_minute_attempts, 0);

        assert!(health.succeeded());
        let closed = &registry.snapshot(73_000)[&7];
        assert_eq!(closed.circuit, CircuitState::Closed);
        assert_eq!((closed.open_since_ms, closed.reopens_at_ms), (None, None));
    }

    #[test]
    fn only_the_latest_errors_are_kept() {
        let health = TargetHealth::default();
        for i in 0..(RECENT_ERRORS as i64 + 3) {
            health.record(i, Some((500, "upstream error")));
        }
        let snapshot = health.snapshot(1, 10);
        assert_eq!(snapshot.recent_errors.len(), RECENT_ERRORS);
        assert_eq!(snapshot.recent_errors[0].at_ms, RECENT_ERRORS as i64 + 2);
    }
}
