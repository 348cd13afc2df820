//! Key look-ups in front of the store, made safe against forged keys: the checksum of a key is
//! CRC32 and anyone can compute it, so every defence here assumes unknown keys with valid
//! checksums arrive in bulk.
//!
//! - Known keys live in one bounded cache, unknown ones in a second, smaller one: unknown keys can
//!   evict each other but never a valid key.
//! - Concurrent misses of one hash share one store read.
//! - Each client address may fail a limited number of look-ups a minute (`governor`, keyed by the
//!   address, IPv6 by its /64); past it, keys not already cached get 429 without a store read.
//! - Refused-key calls are recorded one row each only up to [`ROWS_PER_ADDRESS_MINUTE`] per address
//!   and minute; the rest are counted and written as one summary row per address and minute.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use moka::future::Cache;
use tollgate_core::{KeyHash, UsageEvent};
use tollgate_store::{KeyRecord, Store, StoreError};

use crate::metrics::Metrics;
use crate::writer::UsageSink;

/// A cached look-up result, stamped with the cache generation it was loaded in.
#[derive(Debug)]
pub(crate) struct CachedKey {
    generation: u64,
    /// `None`: no key has this hash.
    pub(crate) record: Option<KeyRecord>,
}

/// Why a look-up gave no answer.
#[derive(Debug)]
pub(crate) enum LookupError {
    /// The address failed too many look-ups lately.
    RateLimited,
    /// The store could not be read (the error's text).
    Store(String),
}

/// Why a load put nothing in the cache of known keys.
#[derive(Debug)]
enum Miss {
    Unknown,
    Store(StoreError),
}

/// The key cache in front of `store.key_by_hash`: known and unknown keys in separate bounded
/// caches with a TTL, coalesced concurrent misses, a per-address limit on failed look-ups, and
/// emptied whole whenever the store's revision changes.
pub(crate) struct KeyCache {
    known: Cache<KeyHash, Arc<CachedKey>>,
    unknown: Cache<KeyHash, u64>,
    // A load that started before an invalidation may finish after it and insert a stale record;
    // the generation stamp lets the next read notice and load again.
    generation: AtomicU64,
    failures: FailedLookups,
    metrics: Arc<Metrics>,
    no_key: Arc<CachedKey>,
}

impl KeyCache {
    /// At most `capacity` known and `negative_capacity` unknown keys, each kept at most `ttl`;
    /// `failures_per_minute` failed look-ups per client address.
    pub(crate) fn new(
        capacity: u64,
        negative_capacity: u64,
        ttl: Duration,
        failures_per_minute: u32,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            known: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            unknown: Cache::builder()
                .max_capacity(negative_capacity)
                .time_to_live(ttl)
                .build(),
            generation: AtomicU64::new(0),
            failures: FailedLookups::new(failures_per_minute),
            metrics,
            no_key: Arc::new(CachedKey {
                generation: 0,
                record: None,
            }),
        }
    }

    /// The key with this hash, from a cache or (unless `client` is over its limit) the store.
    pub(crate) async fn lookup(
        &self,
        store: &dyn Store,
        hash: &KeyHash,
        client: IpAddr,
    ) -> Result<Arc<CachedKey>, LookupError> {
        let mut attempts = 0;
        loop {
            let generation = self.generation.load(Ordering::Acquire);
            if let Some(entry) = self.known.get(hash).await {
                if entry.generation == generation {
                    return Ok(entry);
                }
                self.known.invalidate(hash).await;
            }
            if self.unknown.get(hash).await == Some(generation) {
                return Ok(self.no_key.clone());
            }
            if self.failures.is_blocked(client) {
                self.metrics.key_lookups_rate_limited.inc();
                return Err(LookupError::RateLimited);
            }
            let loaded = self
                .known
                .try_get_with_by_ref(hash, async {
                    self.metrics.key_store_reads.inc();
                    match store.key_by_hash(hash).await {
                        Ok(Some(record)) => Ok(Arc::new(CachedKey {
                            generation,
                            record: Some(record),
                        })),
                        Ok(None) => Err(Miss::Unknown),
                        Err(err) => Err(Miss::Store(err)),
                    }
                })
                .await;
            attempts += 1;
            match loaded {
                Ok(entry) => {
                    if entry.generation == self.generation.load(Ordering::Acquire) || attempts > 1 {
                        return Ok(entry);
                    }
                    self.known.invalidate(hash).await;
                }
                Err(miss) => {
                    return match &*miss {
                        Miss::Unknown => {
                            self.unknown.insert(hash.clone(), generation).await;
                            self.failures.failed(client);
                            Ok(self.no_key.clone())
                        }
                        Miss::Store(err) => Err(LookupError::Store(err.to_string())),
                    };
                }
            }
        }
    }

    /// Forgets every entry (the store's keys changed).
    pub(crate) fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.known.invalidate_all();
        self.unknown.invalidate_all();
    }

    /// Drops limiter state of addresses that have not failed lately.
    pub(crate) fn forget_quiet_addresses(&self) {
        self.failures.forget_quiet();
    }

    /// Approximate number of cached known keys.
    pub(crate) fn entry_count(&self) -> u64 {
        self.known.entry_count()
    }
}

/// The address a limit or an aggregate is kept for: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by
/// its /64, the block one subscriber usually gets.
pub(crate) fn client_block(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Most addresses remembered as blocked at once; more are not blocked (and logged).
const MAX_BLOCKED: usize = 100_000;

/// The per-address limit of failed look-ups. Only failures spend the quota, so a client whose
/// valid keys miss the cache is never throttled by its own successes; an address whose quota is
/// spent is blocked until `governor` says a cell is free again.
struct FailedLookups {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

impl FailedLookups {
    fn new(per_minute: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Self {
            limiter: RateLimiter::keyed(quota),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    fn is_blocked(&self, client: IpAddr) -> bool {
        let block = client_block(client);
        let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
        match blocked.get(&block) {
            Some(until) if Instant::now() < *until => true,
            Some(_) => {
                blocked.remove(&block);
                false
            }
            None => false,
        }
    }

    fn failed(&self, client: IpAddr) {
        let block = client_block(client);
        if let Err(not_until) = self.limiter.check_key(&block) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let mut blocked = self.blocked.lock().unwrap_or_else(PoisonError::into_inner);
            if blocked.len() >= MAX_BLOCKED {
                let now = Instant::now();
                blocked.retain(|_, until| *until > now);
            }
            if blocked.len() < MAX_BLOCKED {
                blocked.insert(block, Instant::now() + wait);
            } else {
                tracing::warn!(
                    "too many addresses blocked for failed key look-ups; not blocking more"
                );
            }
        }
    }

    fn forget_quiet(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        let now = Instant::now();
        self.blocked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, until| *until > now);
    }
}

/// Rows recorded one by one per address and minute for refused-key calls.
pub(crate) const ROWS_PER_ADDRESS_MINUTE: u32 = 10;
/// Most addresses with an open minute; calls from further addresses go to one shared summary.
const MAX_WINDOWS: usize = 50_000;

/// One address's minute of refused-key calls.
#[derive(Debug, Default)]
struct Window {
    minute: i64,
    recorded: u32,
    /// Folded calls by status (401 unknown key, 429 rate limited).
    folded: HashMap<u16, u64>,
}

/// Folds refused-key calls (unknown keys, malformed keys, rate-limited look-ups) so that a flood of
/// forged keys costs a bounded number of usage rows: the first [`ROWS_PER_ADDRESS_MINUTE`] of each
/// address and minute are recorded as usual, the rest become one summary row per address, minute
/// and status, written when the minute ends. The summary row has method and path `*`, the
/// address, and an error text with the number of calls it stands for.
pub(crate) struct RefusedKeyEvents {
    /// `None`: the shared window of addresses past [`MAX_WINDOWS`].
    windows: Mutex<HashMap<Option<IpAddr>, Window>>,
    /// The minute whose earlier windows were last flushed.
    flushed_minute: AtomicI64,
}

impl RefusedKeyEvents {
    pub(crate) fn new() -> Self {
        Self {
            windows: Mutex::new(HashMap::new()),
            flushed_minute: AtomicI64::new(i64::MIN),
        }
    }

    /// Whether this refused call gets its own row; if not it is counted for the summary.
    pub(crate) fn admit(&self, client: IpAddr, status: u16, now_ms: i64, sink: &UsageSink) -> bool {
        let minute = now_ms.div_euclid(60_000);
        let block = client_block(client);
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let key = if windows.contains_key(&Some(block)) || windows.len() < MAX_WINDOWS {
            Some(block)
        } else {
            None
        };
        let window = windows.entry(key).or_insert_with(|| Window {
            minute,
            ..Window::default()
        });
        if window.minute != minute {
            let ended = std::mem::replace(
                window,
                Window {
                    minute,
                    ..Window::default()
                },
            );
            summarise(key, &ended, sink);
        }
        if key.is_some() && window.recorded < ROWS_PER_ADDRESS_MINUTE {
            window.recorded += 1;
            return true;
        }
        *window.folded.entry(status).or_default() += 1;
        false
    }

    /// Writes the summaries of minutes that have ended and forgets them.
    pub(crate) fn flush_ended(&self, now_ms: i64, sink: &UsageSink) {
        let minute = now_ms.div_euclid(60_000);
        if self.flushed_minute.swap(minute, Ordering::AcqRel) == minute {
            return;
        }
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        windows.retain(|key, window| {
            if window.minute == minute {
                return true;
            }
            summarise(*key, window, sink);
            false
        });
    }
}

fn summarise(client: Option<IpAddr>, window: &Window, sink: &UsageSink) {
    let end_ms = (window.minute + 1) * 60_000 - 1;
    let mut statuses: Vec<(&u16, &u64)> = window.folded.iter().collect();
    statuses.sort();
    for (&status, &calls) in statuses {
        let mut event = UsageEvent::new(end_ms, "*", "*", status);
        event.client_ip = client.map(|ip| ip.to_string());
        let what = if status == 429 {
            "rate_limited"
        } else {
            "invalid_api_key"
        };
        let from = match client {
            Some(ip) => format!("from {ip}"),
            None => "from addresses past the per-address table".to_owned(),
        };
        event.error = Some(format!(
            "{what}: summary of {calls} further refused-key calls {from} in this minute, \
             not recorded one by one"
        ));
        sink.record(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_share_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8:1:2:bbbb::9"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(client_block(a), client_block(b));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(client_block(mapped), IpAddr::from([10, 1, 2, 3]));
    }

    #[test]
    fn only_failures_spend_the_quota() {
        let failures = FailedLookups::new(3);
        let ip = IpAddr::from([192, 0, 2, 1]);
        for _ in 0..3 {
            assert!(!failures.is_blocked(ip));
            failures.failed(ip);
        }
        assert!(!failures.is_blocked(ip), "three failures are within 3/min");
        failures.failed(ip);
        assert!(failures.is_blocked(ip));
        assert!(!failures.is_blocked(IpAddr::from([192, 0, 2, 2])));
    }
}
