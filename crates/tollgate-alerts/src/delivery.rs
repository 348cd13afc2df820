//! What the dispatcher needs from storage: the channels, a once-only ledger of crossings, and a
//! log of every delivery attempt. In-memory versions serve tests and the single-instance default.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::alert::AlertKind;
use crate::channel::Channel;

/// An error from a storage implementation (the store, Redis); the dispatcher logs it and goes on.
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// The receiver answered 2xx.
    Delivered,
    /// It failed and another attempt follows.
    Failed,
    /// It failed and no attempt follows: the last allowed attempt, or a failure retrying cannot
    /// fix (a refused address, a 4xx other than 408 and 429).
    GaveUp,
}

impl AttemptStatus {
    /// The snake-case name, as in JSON and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::GaveUp => "gave_up",
        }
    }
}

/// One delivery attempt of one alert to one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// The channel's id.
    pub channel_id: i64,
    /// The alert's [`crate::Alert::dedup_key`].
    pub dedup_key: String,
    /// The alert's kind.
    pub kind: AlertKind,
    /// The alert's [`crate::Alert::summary`], so a log of attempts reads on its own.
    pub summary: String,
    /// 1 for the first attempt.
    pub attempt_no: u32,
    /// When the attempt started.
    pub at_ms: i64,
    /// How it ended.
    pub status: AttemptStatus,
    /// The receiver's status code, when it answered.
    pub http_status: Option<u16>,
    /// From sending to the response head (or the failure).
    pub latency_ms: u64,
    /// What went wrong, in words; never holds the webhook URL or secret.
    pub error: Option<String>,
}

/// Where every attempt is kept (the store in production), so deliveries are visible.
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    /// Keeps one attempt.
    async fn record(&self, attempt: Attempt) -> Result<(), BackendError>;
}

/// Which crossings were already delivered, shared by every instance: the store with a unique row,
/// or Redis `SET NX PX`.
#[async_trait]
pub trait AlertLedger: Send + Sync {
    /// Claims `dedup_key` for `ttl`: true for the first claimer only, false while the claim stands.
    async fn claim(&self, dedup_key: &str, ttl: Duration) -> Result<bool, BackendError>;
}

/// The channels alerts go to now (the store's, secrets opened).
#[async_trait]
pub trait ChannelDirectory: Send + Sync {
    /// Every channel that takes alerts.
    async fn channels(&self) -> Result<Vec<Channel>, BackendError>;
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks leaves plain data behind; keep using it.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An in-process delivery log keeping the most recent attempts.
#[derive(Debug)]
pub struct MemoryDeliveryLog {
    capacity: usize,
    attempts: Mutex<VecDeque<Attempt>>,
}

impl MemoryDeliveryLog {
    /// Keeps up to `capacity` attempts, dropping the oldest.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            attempts: Mutex::new(VecDeque::new()),
        }
    }

    /// The attempts kept, oldest first.
    pub fn attempts(&self) -> Vec<Attempt> {
        lock(&self.attempts).iter().cloned().collect()
    }
}

impl Default for MemoryDeliveryLog {
    fn default() -> Self {
        Self::new(10_000)
    }
}

#[async_trait]
impl DeliveryLog for MemoryDeliveryLog {
    async fn record(&self, attempt: Attempt) -> Result<(), BackendError> {
        let mut attempts = lock(&self.attempts);
        if attempts.len() == self.capacity {
            attempts.pop_front();
        }
        attempts.push_back(attempt);
        Ok(())
    }
}

/// The longest an in-memory claim is held (a longer `ttl` would overflow `Instant` on some
/// platforms; ten years outlives any process).
const MAX_CLAIM: Duration = Duration::from_secs(10 * 365 * 86_400);

/// An in-process ledger: once-only within one process (or among dispatchers sharing it).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    claims: Mutex<HashMap<String, Instant>>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl AlertLedger for MemoryLedger {
    async fn claim(&self, dedup_key: &str, ttl: Duration) -> Result<bool, BackendError> {
        let now = Instant::now();
        let mut claims = lock(&self.claims);
        claims.retain(|_, until| *until > now);
        if claims.contains_key(dedup_key) {
            return Ok(false);
        }
        let until = now + ttl.min(MAX_CLAIM);
        claims.insert(dedup_key.to_owned(), until);
        Ok(true)
    }
}

/// A fixed set of channels (tests, or a configuration file).
#[derive(Debug, Clone, Default)]
pub struct StaticChannels(pub Arc<Vec<Channel>>);

impl StaticChannels {
    /// These channels.
    pub fn new(channels: Vec<Channel>) -> Self {
        Self(Arc::new(channels))
    }
}

#[async_trait]
impl ChannelDirectory for StaticChannels {
    async fn channels(&self) -> Result<Vec<Channel>, BackendError> {
        Ok(self.0.as_ref().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_claim_is_granted_once_until_it_expires() {
        let ledger = MemoryLedger::new();
        let ttl = Duration::from_millis(300);
        assert!(ledger.claim("k", ttl).await.unwrap());
        assert!(!ledger.claim("k", ttl).await.unwrap());
        assert!(ledger.claim("other", ttl).await.unwrap());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(ledger.claim("k", ttl).await.unwrap());
    }

    #[tokio::test]
    async fn the_memory_log_keeps_the_newest() {
        let log = MemoryDeliveryLog::new(2);
        for n in 1..=3 {
            log.record(Attempt {
                channel_id: 1,
                dedup_key: "k".into(),
                kind: AlertKind::Test,
                summary: String::new(),
                attempt_no: n,
                at_ms: 0,
                status: AttemptStatus::Failed,
                http_status: None,
                latency_ms: 0,
                error: None,
            })
            .await
            .unwrap();
        }
        let kept: Vec<u32> = log.attempts().iter().map(|a| a.attempt_no).collect();
        assert_eq!(kept, [2, 3]);
    }
}
