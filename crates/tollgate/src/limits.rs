//! Building the limit engine for `serve`: the counters (in the process, or in Redis when
//! `limits.redis_url` is set), budgets seeded from the store's roll-ups so a restart does not
//! reset a month's spend, and the [`GatewayLimits`] the gateway enforces and reloads.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use secrecy::ExposeSecret;
use tollgate_console::rules::limits::calls_used_since;
use tollgate_gateway::limits::GatewayLimits;
use tollgate_limits::{
    BudgetSeed, Counters, Limiter, LimiterConfig, LocalCounters, RedisConfig, RedisCounters, Scope,
    SeedError,
};
use tollgate_store::Store;

use crate::config::Config;

const HOUR_MS: i64 = 3_600_000;

/// A budget's use as the store knows it: the calls of the scope since the period start, exactly
/// (whole hours from the roll-ups, the partial first hour from the raw events; tokens, and the
/// cost priced when each call was recorded), plus token-counter readings for budgets that count
/// them.
pub struct StoreSeed {
    store: Arc<dyn Store>,
}

impl StoreSeed {
    /// A seed reading `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

fn usd_to_micro(usd: f64) -> i64 {
    if usd.is_finite() && usd > 0.0 {
        // `as` saturates: an absurd cost caps at i64::MAX.
        (usd * 1_000_000.0).round() as i64
    } else {
        0
    }
}

#[async_trait]
impl BudgetSeed for StoreSeed {
    async fn used(
        &self,
        scope: Scope,
        since_ms: i64,
        include_reported: bool,
    ) -> Result<(i64, i64), SeedError> {
        let now = tollgate_core::time::now_ms();
        let (mut tokens, cost_usd) = calls_used_since(self.store.as_ref(), scope, since_ms)
            .await
            .map_err(|e| SeedError(e.to_string()))?;
        if include_reported {
            // Readings are kept by day: the days the period touches.
            let from = since_ms.max(0).div_euclid(HOUR_MS) * HOUR_MS;
            let to = (now.div_euclid(HOUR_MS) + 1) * HOUR_MS;
            tokens = tokens.saturating_add(self.reported(scope, from, to).await?);
        }
        Ok((tokens.max(0), usd_to_micro(cost_usd)))
    }
}

impl StoreSeed {
    /// Tokens of the counter readings in `scope` (counters belong to teams: the instance counts
    /// them all, a team its own, keys and routes none).
    async fn reported(&self, scope: Scope, from_ms: i64, to_ms: i64) -> Result<i64, SeedError> {
        let err = |e: tollgate_store::StoreError| SeedError(e.to_string());
        let sum = |days: Vec<(i64, i64, i64)>| {
            days.iter()
                .fold(0_i64, |sum, (_, tokens, _)| sum.saturating_add(*tokens))
        };
        match scope {
            Scope::Instance => Ok(sum(self
                .store
                .counter_daily(None, from_ms, to_ms)
                .await
                .map_err(err)?)),
            Scope::Team(team) => {
                let mut total = 0_i64;
                for counter in self.store.list_counters().await.map_err(err)? {
                    if counter.team_id == team {
                        let days = self
                            .store
                            .counter_daily(Some(counter.id), from_ms, to_ms)
                            .await
                            .map_err(err)?;
                        total = total.saturating_add(sum(days));
                    }
                }
                Ok(total)
            }
            Scope::Key(_) | Scope::Route(_) => Ok(0),
        }
    }
}

/// Builds the limiter from `[limits]`: Redis counters when `redis_url` is set (a wrong URL or an
/// unreachable Redis is an error naming `limits.redis_url`), else counters in the process. The
/// limits themselves are loaded by the gateway, at start and on every store change.
pub async fn build(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Arc<GatewayLimits>> {
    let settings = &config.limits;
    let time_zone = tollgate_limits::time_zone("limits.time_zone", &settings.time_zone)
        .map_err(|e| anyhow::anyhow!("limits.time_zone: {}", e.message))?;
    let seed: Arc<dyn BudgetSeed> = Arc::new(StoreSeed::new(store));
    let (counters, backend): (Arc<dyn Counters>, &'static str) = match &settings.redis_url {
        Some(url) => {
            let redis = RedisConfig {
                url: url.expose_secret().to_owned(),
                namespace: settings.namespace.clone(),
                fail_mode: settings.fail_mode,
                timeout: Duration::from_millis(settings.redis_timeout_ms),
                lease_calls: settings.redis_lease_calls,
                lease_instances: settings.redis_lease_instances,
            };
            let counters = RedisCounters::connect(redis, seed)
                .await
                .map_err(|e| anyhow::anyhow!("limits.{e}"))?;
            (Arc::new(counters), "redis")
        }
        None => (Arc::new(LocalCounters::new(seed)), "local"),
    };
    let limiter = Limiter::new(
        Vec::new(),
        counters,
        LimiterConfig {
            time_zone,
            reservation_ttl: Duration::from_secs(settings.reservation_ttl_secs),
            ..LimiterConfig::default()
        },
    )
    .context("limits cannot be set up")?;
    tracing::info!(
        backend,
        fail_mode = ?settings.fail_mode,
        time_zone = %settings.time_zone,
        "limit counters ready"
    );
    Ok(Arc::new(GatewayLimits::new(
        Arc::new(limiter),
        settings.default_estimate_tokens,
        backend,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_become_micro_dollars() {
        assert_eq!(usd_to_micro(1.5), 1_500_000);
        assert_eq!(usd_to_micro(0.000_000_4), 0);
        assert_eq!(usd_to_micro(-3.0), 0);
        assert_eq!(usd_to_micro(f64::NAN), 0);
    }
}
