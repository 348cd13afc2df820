//! Counters in the process: one mutex around small maps.
//!
//! A single mutex (rather than one per limit) is what makes a call's checks all-or-nothing
//! without lock ordering; the critical section is a few map look-ups, far below the admission
//! latency budget (see `examples/admit_bench.rs`).

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
// The maps are keyed by limit ids and sequence numbers this process made: hashed with Fx,
// several look-ups a call.
use rustc_hash::FxHashMap as HashMap;

use super::{
    Attempt, BudgetSeed, Check, CheckState, Counter, Counters, CountersError, Outcome,
    PERIOD_GRACE_MS, Settlement, States, TOKEN_WINDOW_SECS, Unit,
};

/// In-process counters; budgets are seeded from the store the first time a period is used.
pub struct LocalCounters {
    state: Mutex<State>,
    seed: Arc<dyn BudgetSeed>,
}

impl std::fmt::Debug for LocalCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCounters").finish_non_exhaustive()
    }
}

type BudgetKey = (i64, Unit, i64);

#[derive(Default)]
struct State {
    /// (limit, window) → times of admitted requests, oldest first.
    requests: HashMap<(i64, i64), VecDeque<i64>>,
    /// limit → (second, tokens) buckets, oldest first.
    tokens: HashMap<i64, VecDeque<(i64, i64)>>,
    /// limit → admissions in flight.
    inflight: HashMap<i64, i64>,
    /// (limit, unit, period start) → the period's counter.
    budgets: HashMap<BudgetKey, Budget>,
}

#[derive(Default)]
struct Budget {
    used: i64,
    reserved: i64,
    period_end: Option<i64>,
    /// seq → (amount, expires at).
    reservations: HashMap<u64, (i64, i64)>,
    /// (expires at, seq), to expire reservations in order.
    expiries: BTreeSet<(i64, u64)>,
}

impl Budget {
    fn expire(&mut self, now_ms: i64) {
        while let Some(&(at, seq)) = self.expiries.first() {
            if at > now_ms {
                break;
            }
            self.expiries.pop_first();
            if let Some((amount, _)) = self.reservations.remove(&seq) {
                self.reserved -= amount;
            }
        }
    }

    fn unreserve(&mut self, seq: u64) {
        if let Some((amount, at)) = self.reservations.remove(&seq) {
            self.reserved -= amount;
            self.expiries.remove(&(at, seq));
        }
    }
}

fn budget_key(check: &Check) -> Option<BudgetKey> {
    match check.counter {
        Counter::Budget {
            unit, period_start, ..
        } => Some((check.limit_id, unit, period_start)),
        _ => None,
    }
}

/// Pass one of an admission: where a check stands, and whether the call fits.
struct Verdict {
    state: CheckState,
    fits: bool,
    retry_ms: Option<i64>,
}

impl State {
    fn verdict(&mut self, check: &Check, now_ms: i64) -> Option<Verdict> {
        let v = match check.counter {
            Counter::Requests { window_ms, max } => {
                let times = self
                    .requests
                    .entry((check.limit_id, window_ms))
                    .or_default();
                while times.front().is_some_and(|&t| t <= now_ms - window_ms) {
                    times.pop_front();
                }
                let used = i64::try_from(times.len()).unwrap_or(i64::MAX);
                let fits = used < max;
                let retry_ms = if fits {
                    None
                } else {
                    usize::try_from(used - max)
                        .ok()
                        .and_then(|i| times.get(i))
                        .map(|t| t + window_ms - now_ms)
                };
                let reset_ms = times.front().map(|t| t + window_ms - now_ms);
                Verdict {
                    state: CheckState {
                        used,
                        reserved: 0,
                        reset_ms,
                    },
                    fits,
                    retry_ms,
                }
            }
            Counter::Tokens { max, amount } => {
                let now_sec = now_ms.div_euclid(1000);
                let buckets = self.tokens.entry(check.limit_id).or_default();
                while buckets
                    .front()
                    .is_some_and(|&(s, _)| s <= now_sec - TOKEN_WINDOW_SECS)
                {
                    buckets.pop_front();
                }
                let used: i64 = buckets.iter().map(|&(_, t)| t).sum();
                let fits = used.saturating_add(amount) <= max;
                let retry_ms = if fits || amount > max {
                    None
                } else {
                    let need = used + amount - max;
                    let mut freed = 0;
                    buckets.iter().find_map(|&(s, t)| {
                        freed += t;
                        (freed >= need).then_some((s + TOKEN_WINDOW_SECS) * 1000 - now_ms)
                    })
                };
                let reset_ms = buckets
                    .front()
                    .map(|&(s, _)| (s + TOKEN_WINDOW_SECS) * 1000 - now_ms);
                Verdict {
                    state: CheckState {
                        used,
                        reserved: 0,
                        reset_ms,
                    },
                    fits,
                    retry_ms,
                }
            }
            Counter::Concurrency { max } => {
                let used = self.inflight.get(&check.limit_id).copied().unwrap_or(0);
                let fits = used < max;
                Verdict {
                    state: CheckState {
                        used,
                        reserved: 0,
                        reset_ms: None,
                    },
                    fits,
                    retry_ms: (!fits).then_some(1000),
                }
            }
            Counter::Budget {
                period_end,
                max,
                amount,
                ..
            } => {
                let key = budget_key(check)?;
                let b = self.budgets.get_mut(&key)?;
                b.expire(now_ms);
                let taken = b.used.saturating_add(b.reserved);
                let fits = taken < max && taken.saturating_add(amount) <= max;
                let reset_ms = period_end.map(|e| e - now_ms);
                Verdict {
                    state: CheckState {
                        used: b.used,
                        reserved: b.reserved,
                        reset_ms,
                    },
                    fits,
                    retry_ms: if fits { None } else { reset_ms },
                }
            }
        };
        Some(v)
    }

    fn commit(
        &mut self,
        check: &Check,
        state: &mut CheckState,
        seq: u64,
        now_ms: i64,
        ttl_ms: i64,
    ) {
        match check.counter {
            Counter::Requests { window_ms, .. } => {
                let times = self
                    .requests
                    .entry((check.limit_id, window_ms))
                    .or_default();
                times.push_back(now_ms);
                state.used += 1;
                state.reset_ms = times.front().map(|t| t + window_ms - now_ms);
            }
            Counter::Tokens { amount, .. } => {
                let sec = now_ms.div_euclid(1000);
                let buckets = self.tokens.entry(check.limit_id).or_default();
                match buckets.back_mut() {
                    Some((s, t)) if *s == sec => *t += amount,
                    _ => buckets.push_back((sec, amount)),
                }
                state.used += amount;
                state.reset_ms = buckets
                    .front()
                    .map(|&(s, _)| (s + TOKEN_WINDOW_SECS) * 1000 - now_ms);
            }
            Counter::Concurrency { .. } => {
                *self.inflight.entry(check.limit_id).or_default() += 1;
                state.used += 1;
            }
            Counter::Budget { amount, .. } => {
                let Some(b) = budget_key(check).and_then(|k| self.budgets.get_mut(&k)) else {
                    return;
                };
                if amount > 0 {
                    let at = now_ms + ttl_ms;
                    b.reserved += amount;
                    b.reservations.insert(seq, (amount, at));
                    b.expiries.insert((at, seq));
                    state.reserved += amount;
                }
            }
        }
    }

    /// The first budget check whose period has no counter yet.
    fn unseeded(&self, checks: &[Check]) -> Option<usize> {
        checks
            .iter()
            .position(|c| budget_key(c).is_some_and(|k| !self.budgets.contains_key(&k)))
    }

    fn release(&mut self, checks: &[Check]) {
        for c in checks {
            if let Counter::Concurrency { .. } = c.counter
                && let Some(n) = self.inflight.get_mut(&c.limit_id)
            {
                *n = (*n - 1).max(0);
            }
        }
    }

    fn forget_old_periods(&mut self, now_ms: i64) {
        self.budgets.retain(|_, b| {
            b.period_end
                .is_none_or(|end| end + PERIOD_GRACE_MS > now_ms)
        });
    }
}

impl LocalCounters {
    /// Empty counters; budgets are seeded from `seed`.
    pub fn new(seed: Arc<dyn BudgetSeed>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            seed,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing every call would, so keep going with the data.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seeds every budget of `checks` that has no counter for its period yet.
    async fn seed_missing(&self, checks: &[Check], now_ms: i64) -> Result<(), CountersError> {
        loop {
            let missing = self.lock().unseeded(checks);
            let Some(i) = missing else { return Ok(()) };
            let check = &checks[i];
            let Counter::Budget {
                unit,
                period_start,
                period_end,
                ..
            } = check.counter
            else {
                return Ok(());
            };
            let (tokens, cost) = self
                .seed
                .used(check.scope, period_start, check.include_reported)
                .await?;
            let used = match unit {
                Unit::Tokens => tokens,
                Unit::CostMicro => cost,
            };
            let mut state = self.lock();
            if let Some(key) = budget_key(check) {
                let fresh = !state.budgets.contains_key(&key);
                state.budgets.entry(key).or_insert_with(|| Budget {
                    used,
                    period_end,
                    ..Budget::default()
                });
                if fresh {
                    state.forget_old_periods(now_ms);
                }
            }
        }
    }

    fn admit_locked(&self, attempt: &Attempt<'_>) -> Option<Outcome> {
        let mut state = self.lock();
        let mut states = States::new();
        for (index, check) in attempt.checks.iter().enumerate() {
            let v = state.verdict(check, attempt.now_ms)?;
            if !v.fits && check.hard {
                return Some(Outcome::Refused {
                    index,
                    retry_ms: v.retry_ms,
                    used: v.state.used,
                });
            }
            states.push(v.state);
        }
        for (check, st) in attempt.checks.iter().zip(states.iter_mut()) {
            state.commit(check, st, attempt.seq, attempt.now_ms, attempt.ttl_ms);
        }
        Some(Outcome::Admitted {
            states,
            local: true,
        })
    }

    fn settle_locked(&self, s: &Settlement<'_>) -> Option<Vec<i64>> {
        let mut state = self.lock();
        if state.unseeded(s.checks).is_some() {
            return None;
        }
        let mut used = Vec::with_capacity(s.checks.len());
        for check in s.checks {
            let mut after = 0;
            match check.counter {
                Counter::Tokens { amount, .. } => {
                    if let Some((_, admitted_at)) = s.ticket {
                        let sec = admitted_at.div_euclid(1000);
                        let delta = s.actual_tokens - amount;
                        if let Some(bucket) = state
                            .tokens
                            .get_mut(&check.limit_id)
                            .and_then(|b| b.iter_mut().find(|(bs, _)| *bs == sec))
                        {
                            bucket.1 = (bucket.1 + delta).max(0);
                        }
                    }
                }
                Counter::Concurrency { .. } => {
                    if s.ticket.is_some() {
                        state.release(std::slice::from_ref(check));
                    }
                }
                Counter::Budget { unit, .. } => {
                    if let Some(b) = budget_key(check).and_then(|k| state.budgets.get_mut(&k)) {
                        if let Some((seq, _)) = s.ticket {
                            b.unreserve(seq);
                        }
                        b.used += match unit {
                            Unit::Tokens => s.actual_tokens,
                            Unit::CostMicro => s.actual_cost_micro,
                        };
                        after = b.used;
                    }
                }
                Counter::Requests { .. } => {}
            }
            used.push(after);
        }
        Some(used)
    }
}

#[async_trait]
impl Counters for LocalCounters {
    async fn admit(&self, attempt: &Attempt<'_>) -> Result<Outcome, CountersError> {
        loop {
            if let Some(outcome) = self.admit_locked(attempt) {
                return Ok(outcome);
            }
            self.seed_missing(attempt.checks, attempt.now_ms).await?;
        }
    }

    async fn peek(&self, checks: &[Check], now_ms: i64) -> Result<Vec<CheckState>, CountersError> {
        self.seed_missing(checks, now_ms).await?;
        let mut state = self.lock();
        Ok(checks
            .iter()
            .map(|c| {
                state
                    .verdict(c, now_ms)
                    .map(|v| v.state)
                    .unwrap_or_default()
            })
            .collect())
    }

    async fn settle(&self, s: &Settlement<'_>) -> Result<Vec<i64>, CountersError> {
        loop {
            if let Some(used) = self.settle_locked(s) {
                return Ok(used);
            }
            self.seed_missing(s.checks, s.now_ms).await?;
        }
    }

    fn admit_now(&self, attempt: &Attempt<'_>) -> Option<Outcome> {
        self.admit_locked(attempt)
    }

    fn settle_now(&self, s: &Settlement<'_>) -> Option<Vec<i64>> {
        self.settle_locked(s)
    }

    fn release_now(&self, checks: &[Check], _seq: u64, _local: bool) -> bool {
        self.lock().release(checks);
        true
    }

    async fn release_later(&self, checks: Vec<Check>, seq: u64, local: bool) {
        self.release_now(&checks, seq, local);
    }
}
