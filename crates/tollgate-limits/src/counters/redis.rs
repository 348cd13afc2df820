//! Counters in Redis, shared by every instance: one Lua script per admission applies every
//! check of the call atomically, so limits hold exactly across instances. Far from a limit's
//! end, the same script also grants this instance a block of the limit (see [`super::lease`]),
//! from which the next calls are admitted and settled in the process with no round trip.
//!
//! Keys are `{<namespace>}:<kind>:<limit id>…`; the braces make every key one Redis Cluster hash
//! slot, which a multi-key script needs. Counters expire on their own (rate windows after the
//! window, in-flight leases and reservations after their TTL, budgets a week after the period).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::lease::{Job, LeaseSettings, Leases, request_life_ms};
use super::{
    Attempt, BudgetSeed, Check, CheckState, Counter, Counters, CountersError, LocalCounters,
    Outcome, PERIOD_GRACE_MS, Settlement, States, Unit,
};

const ADMIT_LUA: &str = include_str!("lua/admit.lua");
const SETTLE_LUA: &str = include_str!("lua/settle.lua");
const SYNC_LUA: &str = include_str!("lua/sync.lua");
/// How often the leases are brought up to date in Redis (sooner when a budget block is half
/// used).
const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// Values per check in the admit script's answer.
const STATE_WIDTH: usize = 4;
const SEED_LUA: &str = "if redis.call('HSETNX', KEYS[1], 'used', ARGV[1]) == 1 and tonumber(ARGV[2]) >= 0 then \
     redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end return 0";

/// What to do when Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Keep serving on in-process counters (each instance counts alone) until Redis is back.
    #[default]
    FailOpen,
    /// Refuse every call that has a limit with `limits_unavailable` until Redis is back.
    FailClosed,
}

/// How to reach Redis.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` (or `rediss://`); never logged.
    pub url: String,
    /// Prefix of every key, so instances of different deployments can share a Redis.
    pub namespace: String,
    /// What to do when Redis cannot be reached.
    pub fail_mode: FailMode,
    /// How long one round trip may take before Redis counts as unreachable.
    pub timeout: Duration,
    /// Calls a leased block is sized for (0: every call is decided in Redis).
    pub lease_calls: u32,
    /// Instances expected to share the counters: a block is leased only while the headroom
    /// left is more than 2 × block × instances. More instances than this never over-admit;
    /// near a limit they may under-admit until the blocks come back.
    pub lease_instances: u32,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &"[redacted]")
            .field("namespace", &self.namespace)
            .field("fail_mode", &self.fail_mode)
            .field("timeout", &self.timeout)
            .field("lease_calls", &self.lease_calls)
            .field("lease_instances", &self.lease_instances)
            .finish()
    }
}

impl RedisConfig {
    /// A configuration with the defaults: namespace `tollgate`, fail open, 250 ms round trips,
    /// blocks of 64 calls for 4 instances.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            namespace: "tollgate".to_owned(),
            fail_mode: FailMode::FailOpen,
            timeout: Duration::from_millis(250),
            lease_calls: 64,
            lease_instances: 4,
        }
    }
}

/// Redis could not be set up: a malformed URL, a bad namespace, or no answer to the first PING.
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    /// The URL does not parse.
    #[error("redis_url: not a Redis URL like redis://127.0.0.1:6379 ({0})")]
    Url(String),
    /// The namespace is empty or has characters that would break key names.
    #[error("redis_namespace: {0}")]
    Namespace(String),
    /// The server did not answer.
    #[error("redis_url: Redis at {0} did not answer PING: {1}")]
    Unreachable(String, String),
}

struct Health {
    degraded: AtomicBool,
    probing: AtomicBool,
    last_probe_ms: AtomicI64,
    degradations: AtomicU64,
    /// Calls admitted from a leased block in the process, with no round trip.
    leased: AtomicU64,
}

/// Counters in Redis, with an in-process fallback for [`FailMode::FailOpen`].
pub struct RedisCounters {
    conn: ConnectionManager,
    prefix: String,
    instance: String,
    mode: FailMode,
    timeout: Duration,
    fallback: LocalCounters,
    seed: Arc<dyn BudgetSeed>,
    health: Arc<Health>,
    admit: Script,
    settle: Script,
    seed_script: Script,
    leases: Arc<Leases>,
    flusher: Arc<Flusher>,
}

/// What the background flusher of the leases needs; also used by `peek` to flush at once.
struct Flusher {
    conn: ConnectionManager,
    sync: Script,
    timeout: Duration,
    /// The reservation TTL of the latest admission (leases are refreshed within a quarter).
    ttl_ms: AtomicI64,
    wake: tokio::sync::Notify,
    /// One flush at a time.
    running: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounters")
            .field("prefix", &self.prefix)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Why a Redis round trip failed.
enum Failure {
    Down(String),
    Seed(super::SeedError),
}

impl From<redis::RedisError> for Failure {
    fn from(e: redis::RedisError) -> Self {
        Self::Down(e.to_string())
    }
}

fn host_of(url: &str) -> String {
    // The host and port only: the URL may hold a password.
    url.split_once("://")
        .map(|(_, rest)| rest.rsplit_once('@').map_or(rest, |(_, h)| h))
        .and_then(|h| h.split('/').next())
        .unwrap_or("the configured address")
        .to_owned()
}

impl RedisCounters {
    /// Connects, checks the server answers PING within the timeout, and returns the counters.
    pub async fn connect(
        config: RedisConfig,
        seed: Arc<dyn BudgetSeed>,
    ) -> Result<Self, RedisSetupError> {
        let ns = config.namespace.trim();
        if ns.is_empty()
            || ns.len() > 64
            || !ns
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            return Err(RedisSetupError::Namespace(
                "use 1 to 64 letters, digits, `-`, `_`, `.` or `:`".to_owned(),
            ));
        }
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| RedisSetupError::Url(e.to_string()))?;
        let host = host_of(&config.url);
        let cm_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout.max(Duration::from_millis(500))))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let first = async {
            let mut conn = ConnectionManager::new_with_config(client, cm_config).await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await?;
            Ok::<_, redis::RedisError>(conn)
        };
        let conn = tokio::time::timeout(config.timeout.max(Duration::from_secs(2)), first)
            .await
            .map_err(|_| RedisSetupError::Unreachable(host.clone(), "timed out".to_owned()))?
            .map_err(|e| RedisSetupError::Unreachable(host, e.to_string()))?;
        let instance = uuid_tail();
        let leases = Arc::new(Leases::new(LeaseSettings {
            calls: i64::from(config.lease_calls),
            instances: i64::from(config.lease_instances.max(1)),
        }));
        let flusher = Arc::new(Flusher {
            conn: conn.clone(),
            sync: Script::new(SYNC_LUA),
            timeout: config.timeout,
            ttl_ms: AtomicI64::new(600_000),
            wake: tokio::sync::Notify::new(),
            running: tokio::sync::Mutex::new(()),
        });
        if leases.enabled() {
            spawn_flusher(Arc::downgrade(&leases), Arc::downgrade(&flusher));
        }
        Ok(Self {
            conn,
            prefix: format!("{{{ns}}}"),
            instance,
            mode: config.fail_mode,
            timeout: config.timeout,
            fallback: LocalCounters::new(Arc::clone(&seed)),
            seed,
            health: Arc::new(Health {
                degraded: AtomicBool::new(false),
                probing: AtomicBool::new(false),
                last_probe_ms: AtomicI64::new(0),
                degradations: AtomicU64::new(0),
                leased: AtomicU64::new(0),
            }),
            admit: Script::new(ADMIT_LUA),
            settle: Script::new(SETTLE_LUA),
            seed_script: Script::new(SEED_LUA),
            leases,
            flusher,
        })
    }

    /// The fail mode in force.
    pub fn fail_mode(&self) -> FailMode {
        self.mode
    }

    fn keys(&self, c: &Check) -> (String, String) {
        let p = &self.prefix;
        let id = c.limit_id;
        match c.counter {
            Counter::Requests { window_ms, .. } => {
                let k = format!("{p}:r:{id}:{window_ms}");
                (k.clone(), k)
            }
            Counter::Tokens { .. } => {
                let k = format!("{p}:t:{id}");
                (k.clone(), k)
            }
            Counter::Concurrency { .. } => {
                let k = format!("{p}:c:{id}");
                (k.clone(), k)
            }
            Counter::Budget {
                unit, period_start, ..
            } => {
                let u = unit_tag(unit);
                (
                    format!("{p}:b:{id}:{u}:{period_start}"),
                    format!("{p}:bx:{id}:{u}:{period_start}"),
                )
            }
        }
    }

    fn member(&self, seq: u64) -> String {
        format!("{}:{seq:x}", self.instance)
    }

    async fn run<T, F>(&self, fut: F) -> Result<T, Failure>
    where
        F: std::future::Future<Output = Result<T, redis::RedisError>>,
    {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(Failure::from),
            Err(_) => Err(Failure::Down(format!(
                "no answer within {:?}",
                self.timeout
            ))),
        }
    }

    async fn seed_budget(&self, check: &Check) -> Result<(), Failure> {
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
            .await
            .map_err(Failure::Seed)?;
        let used = match unit {
            Unit::Tokens => tokens,
            Unit::CostMicro => cost,
        };
        let (k1, _) = self.keys(check);
        let expire_at = period_end.map_or(-1, |e| e + PERIOD_GRACE_MS);
        let mut conn = self.conn.clone();
        let mut inv = self.seed_script.prepare_invoke();
        inv.key(k1).arg(used).arg(expire_at);
        self.run(inv.invoke_async::<i64>(&mut conn)).await?;
        Ok(())
    }

    /// Admits (or peeks) in Redis, asking for the blocks in `wanted` (one per check) under the
    /// names `lease_member:<check>`.
    async fn redis_admit(
        &self,
        a: &Attempt<'_>,
        peek: bool,
        keys: &[(String, String)],
        wanted: &[i64],
        lease_member: &str,
    ) -> Result<Vec<i64>, Failure> {
        let member = self.member(a.seq);
        for _ in 0..=a.checks.len() + 1 {
            let mut inv = self.admit.prepare_invoke();
            inv.arg(if peek { "peek" } else { "admit" })
                .arg(a.now_ms)
                .arg(&member)
                .arg(a.ttl_ms)
                .arg(self.leases.instances())
                .arg(lease_member);
            for (i, c) in a.checks.iter().enumerate() {
                if let Some((k1, k2)) = keys.get(i) {
                    inv.key(k1).key(k2);
                }
                let (typ, max, amount, param) = match c.counter {
                    Counter::Requests { window_ms, max } => ("R", max, 0, window_ms),
                    Counter::Tokens { max, amount } => ("T", max, amount, 0),
                    Counter::Concurrency { max } => ("C", max, 0, 0),
                    Counter::Budget {
                        max,
                        amount,
                        period_end,
                        ..
                    } => ("B", max, amount, period_end.unwrap_or(-1)),
                };
                let life = match c.counter {
                    Counter::Requests { window_ms, .. } => request_life_ms(window_ms),
                    _ => 0,
                };
                inv.arg(typ)
                    .arg(u8::from(c.hard))
                    .arg(max)
                    .arg(amount.max(0))
                    .arg(param)
                    .arg(wanted.get(i).copied().unwrap_or(0).max(0))
                    .arg(life);
            }
            let mut conn = self.conn.clone();
            let reply: Vec<i64> = self.run(inv.invoke_async(&mut conn)).await?;
            if reply.first() == Some(&2) {
                let index = reply
                    .get(1)
                    .and_then(|i| usize::try_from(*i - 1).ok())
                    .unwrap_or(0);
                if let Some(check) = a.checks.get(index) {
                    self.seed_budget(check).await?;
                    continue;
                }
            }
            return Ok(reply);
        }
        Err(Failure::Down(
            "budget counters disappeared while being seeded".to_owned(),
        ))
    }

    fn fall_back(&self, why: &str) {
        if !self.health.degraded.swap(true, Ordering::SeqCst) {
            self.health.degradations.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                mode = ?self.mode,
                error = why,
                "Redis is unreachable; limit counters are degraded"
            );
        }
    }

    /// While degraded, checks in the background (at most every 500 ms) whether Redis is back.
    #[expect(
        clippy::disallowed_methods,
        reason = "one PING bounded by the round-trip timeout: the task ends by itself"
    )]
    fn probe(&self) {
        let now = tollgate_core::time::now_ms();
        let last = self.health.last_probe_ms.load(Ordering::Relaxed);
        if now - last < 500 || self.health.probing.swap(true, Ordering::SeqCst) {
            return;
        }
        self.health.last_probe_ms.store(now, Ordering::Relaxed);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.health.probing.store(false, Ordering::SeqCst);
            return;
        };
        let health = Arc::clone(&self.health);
        let mut conn = self.conn.clone();
        let timeout = self.timeout;
        handle.spawn(async move {
            let cmd = redis::cmd("PING");
            let ping = cmd.query_async::<String>(&mut conn);
            if let Ok(Ok(_)) = tokio::time::timeout(timeout, ping).await
                && health.degraded.swap(false, Ordering::SeqCst)
            {
                tracing::info!("Redis is reachable again; limit counters are shared again");
            }
            health.probing.store(false, Ordering::SeqCst);
        });
    }

    fn degraded_now(&self) -> bool {
        let d = self.health.degraded.load(Ordering::SeqCst);
        if d {
            self.probe();
        }
        d
    }

    fn unavailable(&self) -> CountersError {
        CountersError::Unavailable("Redis is unreachable and limits fail closed".to_owned())
    }
}

fn unit_tag(unit: Unit) -> &'static str {
    match unit {
        Unit::Tokens => "t",
        Unit::CostMicro => "c",
    }
}

fn uuid_tail() -> String {
    // The random tail of a v7 UUID: unique per process, short enough for sorted-set members.
    let s = uuid::Uuid::now_v7().simple().to_string();
    s[s.len() - 12..].to_owned()
}

fn states_of(reply: &[i64], n: usize) -> States {
    (0..n)
        .map(|i| {
            let at = |k: usize| reply.get(1 + i * STATE_WIDTH + k).copied().unwrap_or(0);
            let reset = at(2);
            CheckState {
                used: at(0),
                reserved: at(1),
                reset_ms: (reset >= 0).then_some(reset),
            }
        })
        .collect()
}

fn granted_of(reply: &[i64], n: usize) -> Vec<i64> {
    (0..n)
        .map(|i| reply.get(1 + i * STATE_WIDTH + 3).copied().unwrap_or(0))
        .collect()
}

#[expect(
    clippy::disallowed_methods,
    reason = "the lease flusher ends by itself once the counters are dropped (weak references)"
)]
fn spawn_flusher(leases: Weak<Leases>, flusher: Weak<Flusher>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        loop {
            let (Some(leases), Some(flusher)) = (leases.upgrade(), flusher.upgrade()) else {
                return;
            };
            let _ = tokio::time::timeout(FLUSH_EVERY, flusher.wake.notified()).await;
            flush(&leases, &flusher, false).await;
        }
    });
}

/// Brings every lease that needs it up to date in Redis, in one script call (with `end_blocks`,
/// request blocks end now and give back their unused permits).
async fn flush(leases: &Leases, f: &Flusher, end_blocks: bool) {
    let _one = f.running.lock().await;
    let ttl = f.ttl_ms.load(Ordering::Relaxed);
    let now = tollgate_core::time::now_ms();
    let jobs = leases.jobs(now, ttl, end_blocks);
    if jobs.is_empty() {
        return;
    }
    let mut inv = f.sync.prepare_invoke();
    inv.arg(now).arg(ttl).arg(leases.instances());
    for job in &jobs {
        match job {
            Job::Budget {
                member,
                k1,
                k2,
                pending,
                inflight,
                keep,
                block,
                max,
                ..
            } => {
                inv.key(k1).key(k2);
                inv.arg("B")
                    .arg(member)
                    .arg(*pending)
                    .arg(*inflight)
                    .arg(u8::from(*keep))
                    .arg(*block)
                    .arg(*max);
            }
            Job::Return {
                k1,
                prefix,
                first,
                last,
            } => {
                inv.key(k1).key(k1);
                inv.arg("Z")
                    .arg(prefix)
                    .arg(*first)
                    .arg(*last)
                    .arg(0)
                    .arg(0)
                    .arg(0);
            }
        }
    }
    let mut conn = f.conn.clone();
    let reply = match tokio::time::timeout(f.timeout, inv.invoke_async::<Vec<i64>>(&mut conn)).await
    {
        Ok(Ok(r)) => Some(r),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "bringing leased limit blocks up to date in Redis failed");
            None
        }
        Err(_) => {
            tracing::warn!("bringing leased limit blocks up to date in Redis timed out");
            None
        }
    };
    leases.apply(&jobs, reply.as_deref(), tollgate_core::time::now_ms());
}

#[async_trait]
impl Counters for RedisCounters {
    fn admit_now(&self, a: &Attempt<'_>) -> Option<Outcome> {
        let (states, flush_soon) = self.leases.try_admit(a)?;
        self.health.leased.fetch_add(1, Ordering::Relaxed);
        if flush_soon {
            self.flusher.wake.notify_one();
        }
        Some(Outcome::Admitted {
            states,
            local: false,
        })
    }

    async fn admit(&self, a: &Attempt<'_>) -> Result<Outcome, CountersError> {
        if let Some(outcome) = self.admit_now(a) {
            return Ok(outcome);
        }
        if !self.degraded_now() {
            self.flusher.ttl_ms.store(a.ttl_ms, Ordering::Relaxed);
            let keys: Vec<(String, String)> = a.checks.iter().map(|c| self.keys(c)).collect();
            let wanted = self.leases.wanted(a.checks, a.now_ms);
            let lease_member = if wanted.iter().any(|w| *w > 0) {
                self.leases.member(&self.instance)
            } else {
                String::new()
            };
            match self
                .redis_admit(a, false, &keys, &wanted, &lease_member)
                .await
            {
                Ok(reply) => {
                    if reply.first() == Some(&1) {
                        let at = |k: usize| reply.get(k).copied().unwrap_or(-1);
                        let retry = at(2);
                        return Ok(Outcome::Refused {
                            index: usize::try_from(at(1) - 1).unwrap_or(0),
                            retry_ms: (retry >= 0).then_some(retry),
                            used: at(3),
                        });
                    }
                    let mut states = states_of(&reply, a.checks.len());
                    let granted = granted_of(&reply, a.checks.len());
                    self.leases
                        .install(a, &keys, &lease_member, &granted, &mut states);
                    return Ok(Outcome::Admitted {
                        states,
                        local: false,
                    });
                }
                Err(Failure::Seed(e)) => return Err(e.into()),
                Err(Failure::Down(why)) => self.fall_back(&why),
            }
        }
        match self.mode {
            FailMode::FailOpen => self.fallback.admit(a).await,
            FailMode::FailClosed => Err(self.unavailable()),
        }
    }

    async fn peek(&self, checks: &[Check], now_ms: i64) -> Result<Vec<CheckState>, CountersError> {
        if !self.degraded_now() {
            // What this instance settled from its blocks is added first and its unused permits
            // given back, so the use it reads is current.
            flush(&self.leases, &self.flusher, true).await;
            let a = Attempt {
                checks,
                now_ms,
                seq: 0,
                ttl_ms: 0,
            };
            let keys: Vec<(String, String)> = checks.iter().map(|c| self.keys(c)).collect();
            let none = vec![0; checks.len()];
            match self.redis_admit(&a, true, &keys, &none, "").await {
                Ok(reply) => return Ok(states_of(&reply, checks.len()).into_vec()),
                Err(Failure::Seed(e)) => return Err(e.into()),
                Err(Failure::Down(why)) => self.fall_back(&why),
            }
        }
        match self.mode {
            FailMode::FailOpen => self.fallback.peek(checks, now_ms).await,
            FailMode::FailClosed => Err(self.unavailable()),
        }
    }

    async fn settle(&self, s: &Settlement<'_>) -> Result<Vec<i64>, CountersError> {
        if s.local || (s.ticket.is_none() && self.degraded_now()) {
            return self.fallback.settle(s).await;
        }
        if let Some(done) = self.leases.settle(s) {
            if done.in_redis.is_empty() {
                return Ok(done.used);
            }
            // Checks whose blocks are all given back: their use goes to Redis directly.
            let rest: Vec<Check> = done
                .in_redis
                .iter()
                .filter_map(|i| s.checks.get(*i).copied())
                .collect();
            let used = self
                .redis_settle(&Settlement {
                    checks: &rest,
                    ..*s
                })
                .await?;
            let mut all = done.used;
            for (i, u) in done.in_redis.iter().zip(used) {
                if let Some(slot) = all.get_mut(*i) {
                    *slot = u;
                }
            }
            return Ok(all);
        }
        self.redis_settle(s).await
    }
    fn settle_now(&self, s: &Settlement<'_>) -> Option<Vec<i64>> {
        // Admitted through the local fallback: settled there. A call admitted from leased
        // blocks is settled in the process when every block it used is still held here; when
        // one was given back meanwhile, its use goes to Redis, through `settle`.
        if s.local {
            return self.fallback.settle_now(s);
        }
        self.leases.settle_in_process(s)
    }

    fn release_now(&self, checks: &[Check], seq: u64, local: bool) -> bool {
        if local {
            return self.fallback.release_now(checks, seq, local);
        }
        !checks
            .iter()
            .any(|c| matches!(c.counter, Counter::Concurrency { .. }))
    }

    async fn release_later(&self, checks: Vec<Check>, seq: u64, local: bool) {
        if local {
            self.fallback.release_now(&checks, seq, local);
            return;
        }
        let member = self.member(seq);
        let mut pipe = redis::pipe();
        for c in checks
            .iter()
            .filter(|c| matches!(c.counter, Counter::Concurrency { .. }))
        {
            pipe.zrem(self.keys(c).0, &member).ignore();
        }
        let mut conn = self.conn.clone();
        if let Err(Failure::Down(why)) = self.run(pipe.query_async::<()>(&mut conn)).await {
            // The lease expires on its own after the reservation TTL.
            tracing::warn!(error = why, "releasing an in-flight lease in Redis failed");
        }
    }

    fn degraded(&self) -> bool {
        self.health.degraded.load(Ordering::SeqCst)
    }

    fn degradations(&self) -> u64 {
        self.health.degradations.load(Ordering::Relaxed)
    }

    fn leased_admissions(&self) -> u64 {
        self.health.leased.load(Ordering::Relaxed)
    }
}

impl RedisCounters {
    /// Settles in Redis: one script call (after seeding budgets it finds unseeded).
    async fn redis_settle(&self, s: &Settlement<'_>) -> Result<Vec<i64>, CountersError> {
        let member = s
            .ticket
            .map(|(seq, _)| self.member(seq))
            .unwrap_or_default();
        let admitted_at = s.ticket.map_or(s.now_ms, |(_, at)| at);
        for _ in 0..=s.checks.len() + 1 {
            let mut inv = self.settle.prepare_invoke();
            inv.arg(&member)
                .arg(admitted_at)
                .arg(s.actual_tokens)
                .arg(s.actual_cost_micro)
                .arg(s.now_ms);
            for c in s.checks {
                let (k1, k2) = self.keys(c);
                inv.key(k1).key(k2);
                let (typ, amount, unit) = match c.counter {
                    Counter::Requests { .. } => ("R", 0, "-"),
                    Counter::Tokens { amount, .. } => ("T", amount, "-"),
                    Counter::Concurrency { .. } => ("C", 0, "-"),
                    Counter::Budget { amount, unit, .. } => ("B", amount, unit_tag(unit)),
                };
                inv.arg(typ).arg(amount.max(0)).arg(unit);
            }
            let mut conn = self.conn.clone();
            let reply: Result<Vec<i64>, Failure> = self.run(inv.invoke_async(&mut conn)).await;
            let reply = match reply {
                Ok(r) => r,
                Err(Failure::Down(why)) => {
                    self.fall_back(&why);
                    return Err(CountersError::Unavailable(why));
                }
                Err(Failure::Seed(e)) => return Err(e.into()),
            };
            if reply.first() == Some(&2) {
                let index = reply
                    .get(1)
                    .and_then(|i| usize::try_from(*i - 1).ok())
                    .unwrap_or(0);
                if let Some(check) = s.checks.get(index) {
                    match self.seed_budget(check).await {
                        Ok(()) => continue,
                        Err(Failure::Seed(e)) => return Err(e.into()),
                        Err(Failure::Down(why)) => {
                            self.fall_back(&why);
                            return Err(CountersError::Unavailable(why));
                        }
                    }
                }
            }
            return Ok(reply.into_iter().skip(1).collect());
        }
        Err(CountersError::Unavailable(
            "budget counters disappeared while being seeded".to_owned(),
        ))
    }
}
