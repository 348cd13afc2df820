//! Leased headroom for the Redis counters: far from a limit's end, an instance takes a block of
//! permits (request rates) or of tokens / micro-USD (budgets) from Redis in the same atomic
//! script that admits a call, and admits the next calls from that block in the process, with no
//! round trip. Their settlements stay in the process too, and a background flusher brings the
//! blocks up to date in Redis in one script call every few milliseconds.
//!
//! # Why this never over-admits
//!
//! A block is counted in Redis when it is granted, before any call uses it: a request block as
//! `lease` entries of the sliding log (scored at the end of the block's life, so they never leave
//! the window before a call admitted from them would), a budget block as one reservation of its
//! whole size. Calls admitted from a block never take more than the block: permits taken ≤
//! permits granted; for a budget, reserved by calls in flight + settled use not yet flushed +
//! the call's estimate ≤ the block. So Redis always counts at least what every instance has
//! admitted, and the guarantees of per-call admission hold unchanged (a budget is overrun by at
//! most what calls in flight use beyond their estimates).
//!
//! A block is granted (and a budget block kept at each flush) only while the headroom left by
//! everything else is more than 2 × block × `instances`. Near a limit's end no instance holds a
//! block, every call is decided in Redis one at a time, and the count is exact (2 instances,
//! 40 clients, 10 requests a minute: exactly 10). What leasing costs is under-admission, never
//! over-admission: permits of a request block that go unused are returned when the block ends
//! (at most `lease_life` later), and until then they count as used.
//!
//! Blocks of a crashed instance go as per-call reservations do: budget blocks expire after the
//! reservation TTL (the flusher refreshes live ones), request blocks leave the window.

use std::sync::{Mutex, MutexGuard};

// Keyed by limit ids and sequence numbers this process made: hashed with Fx.
use rustc_hash::FxHashMap as HashMap;

use super::{Attempt, Check, CheckState, Counter, Settlement, States, Unit};

/// How leases are sized.
#[derive(Debug, Clone, Copy)]
pub(super) struct LeaseSettings {
    /// Calls a block is sized for (0: no leases).
    pub calls: i64,
    /// Instances expected to share the counters (the headroom rule's multiplier).
    pub instances: i64,
}

/// Longest life of a request block, ms (also the most its unused permits are held).
const REQUEST_LEASE_LIFE_MS: i64 = 1_000;
/// A budget block nobody used for this long is given back.
const IDLE_MS: i64 = 2_000;

/// A request block's life: a tenth of the window, at most a second.
pub(super) fn request_life_ms(window_ms: i64) -> i64 {
    (window_ms / 10).clamp(1, REQUEST_LEASE_LIFE_MS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct LeaseKey {
    limit_id: i64,
    tag: u8,
    param: i64,
}

fn lease_key(c: &Check) -> Option<LeaseKey> {
    match c.counter {
        Counter::Requests { window_ms, .. } => Some(LeaseKey {
            limit_id: c.limit_id,
            tag: b'r',
            param: window_ms,
        }),
        Counter::Budget {
            unit, period_start, ..
        } => Some(LeaseKey {
            limit_id: c.limit_id,
            tag: match unit {
                Unit::Tokens => b't',
                Unit::CostMicro => b'c',
            },
            param: period_start,
        }),
        Counter::Tokens { .. } | Counter::Concurrency { .. } => None,
    }
}

struct RequestBlock {
    key: String,
    /// Members are `<prefix><j>`, j = 1..=granted.
    prefix: String,
    granted: i64,
    taken: i64,
    deadline_ms: i64,
    /// Requests in the window when granted, this block not counted.
    used_before: i64,
    reset_at_ms: Option<i64>,
}

struct BudgetMember {
    member: String,
    block: i64,
    /// What Redis holds for this member: the block while open, else its calls' reservations.
    held: i64,
    open: bool,
    syncing: bool,
    /// seq → (reserved, expires at).
    inflight: HashMap<u64, (i64, i64)>,
    inflight_sum: i64,
    /// Settled use not yet added in Redis.
    pending: i64,
    /// Of `pending`, what the flush in progress adds.
    sending: i64,
    last_use_ms: i64,
    last_sync_ms: i64,
}

impl BudgetMember {
    fn room(&self, amount: i64) -> bool {
        self.open
            && !self.syncing
            && self
                .inflight_sum
                .saturating_add(self.pending)
                .saturating_add(amount)
                <= self.block
    }

    fn done(&self) -> bool {
        !self.open && !self.syncing && self.inflight_sum == 0 && self.pending == 0 && self.held == 0
    }
}

struct BudgetLease {
    keys: (String, String),
    max: i64,
    /// Settled use and all reservations in Redis at the last flush (this instance's members
    /// counted by what they hold).
    used: i64,
    reserved: i64,
    period_end: Option<i64>,
    members: Vec<BudgetMember>,
}

impl BudgetLease {
    /// Settled use and reservations as this instance sees them: its blocks counted by what its
    /// calls reserve, not whole, and its settled use not yet flushed added.
    fn state(&self, now_ms: i64) -> CheckState {
        let (mut pending, mut held, mut own) = (0_i64, 0_i64, 0_i64);
        for m in &self.members {
            pending = pending.saturating_add(m.pending);
            held = held.saturating_add(m.held);
            own = own.saturating_add(m.inflight_sum);
        }
        CheckState {
            used: self.used.saturating_add(pending),
            reserved: (self.reserved - held + own).max(0),
            reset_ms: self.period_end.map(|e| e - now_ms),
        }
    }
}

#[derive(Default)]
struct Table {
    requests: HashMap<LeaseKey, RequestBlock>,
    budgets: HashMap<LeaseKey, BudgetLease>,
    /// Calls admitted from leases: seq → when their reservations expire.
    calls: HashMap<u64, i64>,
    /// Unused permits of ended request blocks: (key, prefix, first, last).
    returns: Vec<(String, String, i64, i64)>,
    next: u64,
}

/// One entry of a flush: one lease brought up to date in Redis.
pub(super) enum Job {
    /// A budget member: add `pending`, then hold the whole block when `keep` (and Redis agrees),
    /// else what its calls in flight reserve.
    Budget {
        key: LeaseKeyRef,
        member: String,
        k1: String,
        k2: String,
        pending: i64,
        inflight: i64,
        keep: bool,
        block: i64,
        max: i64,
    },
    /// Unused permits of a request block to remove: members `<prefix><first..=last>`.
    Return {
        k1: String,
        prefix: String,
        first: i64,
        last: i64,
    },
}

/// Which lease a job belongs to (opaque outside this module).
#[derive(Debug, Clone, Copy)]
pub(super) struct LeaseKeyRef(LeaseKey);

/// The leases of one process.
pub(super) struct Leases {
    settings: LeaseSettings,
    table: Mutex<Table>,
}

/// A leased call's settlement done in the process: each check's settled use (as this instance
/// sees it), and the checks whose lease is gone, to settle in Redis instead.
pub(super) struct LocalSettle {
    pub used: Vec<i64>,
    pub in_redis: Vec<usize>,
}

impl Leases {
    pub(super) fn new(settings: LeaseSettings) -> Self {
        Self {
            settings,
            table: Mutex::new(Table::default()),
        }
    }

    pub(super) fn enabled(&self) -> bool {
        self.settings.calls > 0
    }

    pub(super) fn instances(&self) -> i64 {
        self.settings.instances.max(1)
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh name for the blocks one admission asks for.
    pub(super) fn member(&self, instance: &str) -> String {
        let mut t = self.lock();
        t.next += 1;
        format!("{instance}:L{:x}", t.next)
    }

    /// Admits the call from this process's blocks when every check has one with room: the
    /// checks' states, and whether a budget block is half used (flush soon). `None`: ask Redis.
    pub(super) fn try_admit(&self, a: &Attempt<'_>) -> Option<(States, bool)> {
        if !self.enabled() || a.checks.is_empty() {
            return None;
        }
        let now = a.now_ms;
        let mut t = self.lock();
        for c in a.checks {
            let key = lease_key(c)?;
            match c.counter {
                Counter::Requests { .. } => {
                    let b = t.requests.get(&key)?;
                    if b.taken >= b.granted || now >= b.deadline_ms {
                        return None;
                    }
                }
                Counter::Budget { amount, .. } => {
                    let l = t.budgets.get(&key)?;
                    if !l.members.iter().any(|m| m.room(amount.max(0))) {
                        return None;
                    }
                }
                Counter::Tokens { .. } | Counter::Concurrency { .. } => return None,
            }
        }
        let seq = a.seq;
        let expires = now.saturating_add(a.ttl_ms);
        let mut states = States::new();
        let mut flush = false;
        for c in a.checks {
            let Some(key) = lease_key(c) else { continue };
            match c.counter {
                Counter::Requests { .. } => {
                    if let Some(b) = t.requests.get_mut(&key) {
                        b.taken += 1;
                        states.push(CheckState {
                            used: b.used_before + b.taken,
                            reserved: 0,
                            reset_ms: b.reset_at_ms.map(|r| (r - now).max(0)),
                        });
                    }
                }
                Counter::Budget { amount, .. } => {
                    if let Some(l) = t.budgets.get_mut(&key) {
                        let amount = amount.max(0);
                        if let Some(m) = l.members.iter_mut().find(|m| m.room(amount)) {
                            m.inflight.insert(seq, (amount, expires));
                            m.inflight_sum += amount;
                            m.last_use_ms = now;
                            flush |= 2 * (m.inflight_sum + m.pending) > m.block;
                        }
                        states.push(l.state(now));
                    }
                }
                Counter::Tokens { .. } | Counter::Concurrency { .. } => {}
            }
        }
        t.calls.insert(seq, expires);
        Some((states, flush))
    }

    /// The block to ask for on each check when the call goes to Redis (0: none): where the
    /// check has no open block (or only a spent or ended request block).
    pub(super) fn wanted(&self, checks: &[Check], now_ms: i64) -> Vec<i64> {
        if !self.enabled() {
            return vec![0; checks.len()];
        }
        let t = self.lock();
        checks
            .iter()
            .map(|c| {
                let Some(key) = lease_key(c) else { return 0 };
                match c.counter {
                    Counter::Requests { .. } => match t.requests.get(&key) {
                        Some(b) if b.taken < b.granted && now_ms < b.deadline_ms => 0,
                        _ => self.settings.calls,
                    },
                    Counter::Budget { amount, .. } => match t.budgets.get(&key) {
                        Some(l) if l.members.iter().any(|m| m.open) => 0,
                        _ => self.settings.calls.saturating_mul(amount.max(1)),
                    },
                    Counter::Tokens { .. } | Counter::Concurrency { .. } => 0,
                }
            })
            .collect()
    }

    /// Takes the blocks Redis granted with a call it admitted. `states` are as Redis reported
    /// them (the blocks counted whole); they are corrected to leave the unused blocks out.
    pub(super) fn install(
        &self,
        a: &Attempt<'_>,
        keys: &[(String, String)],
        member: &str,
        granted: &[i64],
        states: &mut [CheckState],
    ) {
        if !granted.iter().any(|g| *g > 0) {
            return;
        }
        let now = a.now_ms;
        let mut t = self.lock();
        let t = &mut *t;
        for (i, c) in a.checks.iter().enumerate() {
            let (Some(&g), Some(key), Some(st), Some((k1, k2))) =
                (granted.get(i), lease_key(c), states.get_mut(i), keys.get(i))
            else {
                continue;
            };
            if g <= 0 {
                continue;
            }
            let index = i + 1;
            match c.counter {
                Counter::Requests { window_ms, .. } => {
                    st.used -= g;
                    let block = RequestBlock {
                        key: k1.clone(),
                        prefix: format!("{member}:{index}:"),
                        granted: g,
                        taken: 0,
                        deadline_ms: now + request_life_ms(window_ms),
                        used_before: st.used,
                        reset_at_ms: st.reset_ms.map(|r| now + r),
                    };
                    if let Some(old) = t.requests.insert(key, block) {
                        retire(&mut t.returns, old);
                    }
                }
                Counter::Budget {
                    max, period_end, ..
                } => {
                    let l = t.budgets.entry(key).or_insert_with(|| BudgetLease {
                        keys: (k1.clone(), k2.clone()),
                        max,
                        used: 0,
                        reserved: 0,
                        period_end,
                        members: Vec::new(),
                    });
                    l.used = st.used;
                    l.reserved = st.reserved;
                    l.members.push(BudgetMember {
                        member: format!("{member}:{index}"),
                        block: g,
                        held: g,
                        open: true,
                        syncing: false,
                        inflight: HashMap::default(),
                        inflight_sum: 0,
                        pending: 0,
                        sending: 0,
                        last_use_ms: now,
                        last_sync_ms: now,
                    });
                    *st = l.state(now);
                }
                Counter::Tokens { .. } | Counter::Concurrency { .. } => {}
            }
        }
    }

    /// Settles a call admitted from leases in the process; `None` when it was not admitted so.
    pub(super) fn settle(&self, s: &Settlement<'_>) -> Option<LocalSettle> {
        let (seq, _) = s.ticket?;
        let mut t = self.lock();
        t.calls.remove(&seq)?;
        Some(settle_locked(&mut t, s, seq))
    }

    /// [`Leases::settle`] when all of it can be done in the process (every budget the call
    /// used still has a block here): each check's settled use. `None`, with nothing changed,
    /// when the call was not admitted from leases or part of its use must go to Redis.
    pub(super) fn settle_in_process(&self, s: &Settlement<'_>) -> Option<Vec<i64>> {
        let (seq, _) = s.ticket?;
        let mut t = self.lock();
        if !t.calls.contains_key(&seq) {
            return None;
        }
        let all_held = s.checks.iter().all(|c| match (lease_key(c), c.counter) {
            (Some(key), Counter::Budget { .. }) => {
                t.budgets.get(&key).is_some_and(|l| !l.members.is_empty())
            }
            _ => true,
        });
        if !all_held {
            return None;
        }
        t.calls.remove(&seq);
        let done = settle_locked(&mut t, s, seq);
        debug_assert!(done.in_redis.is_empty(), "every block was checked as held");
        Some(done.used)
    }

    /// What to flush now: budget members with settled use to add, a block to give back (idle),
    /// a hold to shrink to their calls in flight, or a reservation to refresh before it would
    /// expire in Redis; ended request blocks' unused permits. Marks those members as flushing.
    /// With `end_blocks`, every request block ends now (its unused permits are given back), so
    /// that a reading of the counters right after is exact for this instance.
    pub(super) fn jobs(&self, now_ms: i64, ttl_ms: i64, end_blocks: bool) -> Vec<Job> {
        let mut t = self.lock();
        let t = &mut *t;
        t.calls.retain(|_, exp| *exp > now_ms);
        let ended: Vec<LeaseKey> = t
            .requests
            .iter()
            .filter(|(_, b)| end_blocks || b.taken >= b.granted || now_ms >= b.deadline_ms)
            .map(|(k, _)| *k)
            .collect();
        for k in ended {
            if let Some(b) = t.requests.remove(&k) {
                retire(&mut t.returns, b);
            }
        }
        let mut jobs: Vec<Job> = t
            .returns
            .drain(..)
            .map(|(k1, prefix, first, last)| Job::Return {
                k1,
                prefix,
                first,
                last,
            })
            .collect();
        let refresh_ms = (ttl_ms / 4).max(1);
        t.budgets.retain(|_, l| {
            l.members.retain(|m| !m.done());
            !l.members.is_empty()
        });
        for (key, l) in &mut t.budgets {
            for m in &mut l.members {
                if m.syncing {
                    continue;
                }
                let expired: Vec<u64> = m
                    .inflight
                    .iter()
                    .filter(|(_, (_, exp))| *exp <= now_ms)
                    .map(|(s, _)| *s)
                    .collect();
                for s in expired {
                    if let Some((amount, _)) = m.inflight.remove(&s) {
                        m.inflight_sum -= amount;
                    }
                }
                let keep = m.open && now_ms - m.last_use_ms < IDLE_MS;
                let due = m.pending != 0
                    || m.open != keep
                    || (!m.open && m.held != m.inflight_sum)
                    || (m.held > 0 && now_ms - m.last_sync_ms >= refresh_ms);
                if !due {
                    continue;
                }
                m.syncing = true;
                m.sending = m.pending;
                jobs.push(Job::Budget {
                    key: LeaseKeyRef(*key),
                    member: m.member.clone(),
                    k1: l.keys.0.clone(),
                    k2: l.keys.1.clone(),
                    pending: m.sending,
                    inflight: m.inflight_sum,
                    keep,
                    block: m.block,
                    max: l.max,
                });
            }
        }
        jobs
    }

    /// Applies a flush's answer (`None`: it failed; the use stays pending for the next one).
    pub(super) fn apply(&self, jobs: &[Job], reply: Option<&[i64]>, now_ms: i64) {
        let mut t = self.lock();
        for (i, job) in jobs.iter().enumerate() {
            let Job::Budget {
                key,
                member,
                inflight,
                ..
            } = job
            else {
                continue;
            };
            let Some(l) = t.budgets.get_mut(&key.0) else {
                continue;
            };
            let at = |k: usize| reply.and_then(|r| r.get(i * 3 + k)).copied();
            let answer = match (at(0), at(1), at(2)) {
                (Some(kept), Some(used), Some(reserved)) => Some((kept == 1, used, reserved)),
                _ => None,
            };
            let Some(m) = l.members.iter_mut().find(|m| &m.member == member) else {
                continue;
            };
            m.syncing = false;
            let sent = std::mem::take(&mut m.sending);
            let Some((kept, used, reserved)) = answer else {
                continue;
            };
            m.pending -= sent;
            m.last_sync_ms = now_ms;
            m.open = kept;
            m.held = if kept { m.block } else { *inflight };
            l.used = used;
            l.reserved = reserved;
        }
    }
}

fn retire(returns: &mut Vec<(String, String, i64, i64)>, b: RequestBlock) {
    if b.taken < b.granted {
        returns.push((b.key, b.prefix, b.taken + 1, b.granted));
    }
}

/// The settlement of a leased call whose ticket is taken from `t.calls` (see [`Leases::settle`]).
fn settle_locked(t: &mut Table, s: &Settlement<'_>, seq: u64) -> LocalSettle {
    let mut out = LocalSettle {
        used: Vec::with_capacity(s.checks.len()),
        in_redis: Vec::new(),
    };
    for (i, c) in s.checks.iter().enumerate() {
        let (Some(key), Counter::Budget { unit, .. }) = (lease_key(c), c.counter) else {
            out.used.push(0);
            continue;
        };
        let actual = match unit {
            Unit::Tokens => s.actual_tokens,
            Unit::CostMicro => s.actual_cost_micro,
        };
        let Some(l) = t.budgets.get_mut(&key) else {
            // Every block of it is given back: its use goes to Redis directly.
            out.used.push(0);
            out.in_redis.push(i);
            continue;
        };
        let mut found = false;
        if let Some(m) = l.members.iter_mut().find(|m| m.inflight.contains_key(&seq)) {
            if let Some((amount, _)) = m.inflight.remove(&seq) {
                m.inflight_sum -= amount;
            }
            m.pending = m.pending.saturating_add(actual);
            found = true;
        } else if let Some(m) = l.members.first_mut() {
            // Its reservation expired; the use still counts.
            m.pending = m.pending.saturating_add(actual);
            found = true;
        }
        if found {
            out.used.push(l.state(s.now_ms).used);
        } else {
            out.used.push(0);
            out.in_redis.push(i);
        }
    }
    out
}
