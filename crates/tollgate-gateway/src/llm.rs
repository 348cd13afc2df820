//! Model routing on the data path: the targets and models of the store, opened once per reload
//! (credentials unsealed, URLs parsed, names indexed), each target's health (calls in flight,
//! requests this minute, its circuit breaker), which survives reloads, and the order in which a
//! pool's targets are tried.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use rand::Rng;
use tollgate_core::crypto::{MasterKey, SealedRow};
use tollgate_core::llm::{
    self, Matched, ModelSettings, Provider, Resolver, Strategy, TargetSettings,
};
use tollgate_store::{ModelRecord, TargetRecord};

use crate::metrics::Metrics;
use crate::state::{Credential, UpstreamBase};
pub(crate) use crate::target_health::{Availability, HealthRegistry, TargetHealth};

/// How calls to a pool are retried and when a target cools down (`gateway.llm_*` settings).
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most upstream attempts of one call, over every target and fallback model.
    pub max_attempts: u32,
    /// Longest `Retry-After` the gateway waits out before trying a rate-limited target again,
    /// when no other target is left; longer ones end the call with the upstream's answer.
    pub retry_after_cap: Duration,
    /// Consecutive failures (connect errors, 429, 5xx) that open a target's circuit.
    pub circuit_failures: u32,
    /// How long an open circuit keeps a target out before one probe call is let through.
    pub circuit_cooldown: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            retry_after_cap: Duration::from_secs(5),
            circuit_failures: 3,
            circuit_cooldown: Duration::from_secs(30),
        }
    }
}

/// A target ready for the request path.
#[derive(Debug)]
pub(crate) struct TargetEntry {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) provider: Provider,
    /// `None` when the base URL does not parse (logged at load; the target is skipped).
    pub(crate) base: Option<UpstreamBase>,
    pub(crate) credential: Credential,
    /// `k=v&…` added to every call's query, empty for none.
    pub(crate) query: String,
    pub(crate) deployment: Option<String>,
    pub(crate) weight: u32,
    pub(crate) rpm: Option<u32>,
    pub(crate) health: Arc<TargetHealth>,
}

impl TargetEntry {
    /// Whether calls can be sent to it at all.
    pub(crate) fn usable(&self) -> bool {
        self.base.is_some() && !matches!(self.credential, Credential::Unusable)
    }
}

/// One target of a model's pool.
#[derive(Debug, Clone)]
pub(crate) struct PoolEntry {
    /// Index into [`Catalogue::targets`].
    pub(crate) target: usize,
    pub(crate) upstream_model: Option<String>,
}

/// A model ready for the request path.
#[derive(Debug)]
pub(crate) struct ModelEntry {
    pub(crate) name: String,
    pub(crate) aliases: Vec<String>,
    pub(crate) pool: Vec<PoolEntry>,
    /// Indexes into [`Catalogue::models`], in order.
    pub(crate) fallbacks: Vec<usize>,
    pub(crate) strategy: Strategy,
    pub(crate) created_at_ms: i64,
}

impl ModelEntry {
    /// The model name sent upstream through `entry` when the client asked for `requested`.
    pub(crate) fn upstream_model<'a>(
        &'a self,
        entry: &'a PoolEntry,
        requested: &'a str,
        matched: Matched,
    ) -> &'a str {
        match (&entry.upstream_model, matched) {
            (Some(name), _) => name,
            (None, Matched::Wildcard) => requested,
            (None, _) => &self.name,
        }
    }
}

/// The targets and models of the store, as the gateway uses them.
#[derive(Debug, Default)]
pub(crate) struct Catalogue {
    pub(crate) targets: Vec<TargetEntry>,
    pub(crate) models: Vec<ModelEntry>,
    resolver: Resolver,
}

fn open_credential(
    record: &TargetRecord,
    settings: &TargetSettings,
    master_key: Option<&MasterKey>,
) -> Credential {
    let Some(sealed) = record.sealed_credential.as_deref() else {
        return Credential::None;
    };
    let Some(master_key) = master_key else {
        tracing::error!(target_name = %record.name, "target has a credential but no master key is configured; it is skipped");
        return Credential::Unusable;
    };
    let secret = match master_key.open_text(sealed, SealedRow::TargetCredential(record.id)) {
        Ok(secret) => secret,
        Err(err) => {
            tracing::error!(target_name = %record.name, error = %err, "target credential cannot be opened; it is skipped");
            return Credential::Unusable;
        }
    };
    let header = settings.header_for(record.provider);
    let Ok(name) = http::HeaderName::from_bytes(header.name.as_bytes()) else {
        tracing::error!(target_name = %record.name, "target credential header is not a header name; it is skipped");
        return Credential::Unusable;
    };
    match HeaderValue::from_str(&header.value(&secret)) {
        Ok(mut value) => {
            value.set_sensitive(true);
            Credential::Header(name, value)
        }
        Err(_) => {
            tracing::error!(target_name = %record.name, "target credential is not a valid header value; it is skipped");
            Credential::Unusable
        }
    }
}

fn query_string(pairs: &[(String, String)]) -> String {
    // The rules admit only unreserved characters in names and values: nothing to encode.
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

impl Catalogue {
    /// Opens the store's targets and models; rows that do not parse are logged and left out.
    pub(crate) fn build(
        targets: Vec<TargetRecord>,
        models: Vec<ModelRecord>,
        master_key: Option<&MasterKey>,
        health: &HealthRegistry,
    ) -> Self {
        let mut entries = Vec::with_capacity(targets.len());
        for record in targets {
            let settings: TargetSettings = match serde_json::from_str(&record.settings) {
                Ok(settings) => settings,
                Err(err) => {
                    tracing::error!(target_name = %record.name, error = %err, "target settings unreadable; it is skipped");
                    continue;
                }
            };
            let base = UpstreamBase::parse(&record.base_url);
            if base.is_none() {
                tracing::error!(target_name = %record.name, base_url = %record.base_url, "target base URL is not an http(s) URL; it is skipped");
            }
            entries.push(TargetEntry {
                id: record.id,
                credential: open_credential(&record, &settings, master_key),
                query: query_string(&settings.query_for(record.provider)),
                name: record.name,
                provider: record.provider,
                base,
                deployment: settings.deployment,
                weight: settings.weight.max(1),
                rpm: settings.rpm,
                health: health.of(record.id),
            });
        }
        health.retain(&entries.iter().map(|t| t.id).collect::<Vec<_>>());
        let target_index: HashMap<&str, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.as_str(), i))
            .collect();
        let parsed: Vec<(ModelRecord, ModelSettings)> = models
            .into_iter()
            .filter_map(|record| match serde_json::from_str(&record.settings) {
                Ok(settings) => Some((record, settings)),
                Err(err) => {
                    tracing::error!(model = %record.name, error = %err, "model settings unreadable; it is skipped");
                    None
                }
            })
            .collect();
        let model_index: HashMap<&str, usize> = parsed
            .iter()
            .enumerate()
            .map(|(i, (r, _))| (r.name.as_str(), i))
            .collect();
        let model_entries: Vec<ModelEntry> = parsed
            .iter()
            .map(|(record, settings)| ModelEntry {
                name: record.name.clone(),
                aliases: settings.aliases.clone(),
                pool: settings
                    .pool
                    .iter()
                    .filter_map(|m| {
                        target_index
                            .get(m.target.as_str())
                            .map(|&target| PoolEntry {
                                target,
                                upstream_model: m.upstream_model.clone(),
                            })
                    })
                    .collect(),
                fallbacks: settings
                    .fallbacks
                    .iter()
                    .filter_map(|f| model_index.get(f.as_str()).copied())
                    .collect(),
                strategy: settings.strategy,
                created_at_ms: record.created_at_ms,
            })
            .collect();
        let resolver = Resolver::new(
            model_entries
                .iter()
                .map(|m| (m.name.as_str(), m.aliases.as_slice())),
        );
        Self {
            targets: entries,
            models: model_entries,
            resolver,
        }
    }

    /// The model a client's `model` names: alias, exact name, then the most specific wildcard.
    pub(crate) fn resolve(&self, requested: &str) -> Option<(usize, Matched)> {
        self.resolver.resolve(requested)
    }

    /// The models to try for model `first`: itself, then its fallbacks in order (and theirs),
    /// each once.
    pub(crate) fn chain(&self, first: usize) -> Vec<usize> {
        let mut chain = vec![first];
        let mut i = 0;
        while let Some(&current) = chain.get(i) {
            if let Some(model) = self.models.get(current) {
                for &fallback in &model.fallbacks {
                    if !chain.contains(&fallback) {
                        chain.push(fallback);
                    }
                }
            }
            i += 1;
        }
        chain
    }

    /// The pool of `model` in the order its targets are to be tried: by weighted random draw
    /// without replacement, or fewest calls in flight per weight first.
    pub(crate) fn order(&self, model: &ModelEntry) -> Vec<usize> {
        let mut members: Vec<&PoolEntry> = model
            .pool
            .iter()
            .filter(|m| self.targets.get(m.target).is_some_and(TargetEntry::usable))
            .collect();
        let mut order = Vec::with_capacity(members.len());
        match model.strategy {
            Strategy::Weighted => {
                let mut rng = rand::rng();
                while !members.is_empty() {
                    let total: u64 = members
                        .iter()
                        .map(|m| u64::from(self.targets[m.target].weight))
                        .sum();
                    let mut draw = rng.random_range(0..total.max(1));
                    let mut pick = 0;
                    for (i, m) in members.iter().enumerate() {
                        let weight = u64::from(self.targets[m.target].weight);
                        if draw < weight {
                            pick = i;
                            break;
                        }
                        draw -= weight;
                    }
                    let member = members.remove(pick);
                    order.push(pool_position(model, member));
                }
            }
            Strategy::LeastBusy => {
                members.sort_by(|a, b| {
                    let (ta, tb) = (&self.targets[a.target], &self.targets[b.target]);
                    // busy_a / weight_a < busy_b / weight_b, without division.
                    let busy = |t: &TargetEntry| u64::try_from(t.health.busy()).unwrap_or(u64::MAX);
                    (busy(ta).saturating_mul(u64::from(tb.weight)))
                        .cmp(&busy(tb).saturating_mul(u64::from(ta.weight)))
                        .then(tb.weight.cmp(&ta.weight))
                });
                order.extend(members.into_iter().map(|m| pool_position(model, m)));
            }
        }
        order
    }

    /// The model names a client may list: exact names and aliases (wildcards name no model).
    pub(crate) fn listed_names(&self) -> impl Iterator<Item = (&str, i64)> {
        self.models.iter().flat_map(|m| {
            let own = (!llm::is_wildcard(&m.name)).then_some((m.name.as_str(), m.created_at_ms));
            own.into_iter()
                .chain(m.aliases.iter().map(move |a| (a.as_str(), m.created_at_ms)))
        })
    }

    /// Publishes every target's circuit state on `/metrics`.
    pub(crate) fn publish(&self, metrics: &Metrics) {
        for target in &self.targets {
            metrics.set_circuit(&target.name, target.health.is_open());
        }
    }
}

/// The position of `member` in the model's pool.
fn pool_position(model: &ModelEntry, member: &PoolEntry) -> usize {
    model
        .pool
        .iter()
        .position(|m| std::ptr::eq(m, member))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, weight: u32) -> TargetEntry {
        TargetEntry {
            id: 0,
            name: name.to_owned(),
            provider: Provider::OpenaiCompatible,
            base: UpstreamBase::parse("http://127.0.0.1:9/v1"),
            credential: Credential::None,
            query: String::new(),
            deployment: None,
            weight,
            rpm: None,
            health: Arc::default(),
        }
    }

    fn pooled(catalogue: &Catalogue, strategy: Strategy) -> ModelEntry {
        ModelEntry {
            name: "m".to_owned(),
            aliases: Vec::new(),
            pool: (0..catalogue.targets.len())
                .map(|target| PoolEntry {
                    target,
                    upstream_model: None,
                })
                .collect(),
            fallbacks: Vec::new(),
            strategy,
            created_at_ms: 0,
        }
    }

    #[test]
    fn a_weighted_pool_is_tried_first_in_proportion_to_the_weights() {
        let catalogue = Catalogue {
            targets: vec![target("light", 1), target("heavy", 9)],
            ..Catalogue::default()
        };
        let model = pooled(&catalogue, Strategy::Weighted);
        let draws = 4_000;
        let heavy_first = (0..draws)
            .filter(|_| catalogue.order(&model)[0] == 1)
            .count();
        // 90 % expected; the bounds are over 10 standard deviations wide.
        assert!(
            (3_400..=3_800).contains(&heavy_first),
            "heavy first {heavy_first} of {draws}"
        );
        // Every draw still lists the whole pool, once each.
        let mut order = catalogue.order(&model);
        order.sort_unstable();
        assert_eq!(order, vec![0, 1]);
    }

    #[test]
    fn a_least_busy_pool_is_tried_by_calls_in_flight_per_weight() {
        let catalogue = Catalogue {
            targets: vec![target("a", 1), target("b", 2), target("c", 1)],
            ..Catalogue::default()
        };
        let model = pooled(&catalogue, Strategy::LeastBusy);
        // Nothing in flight: the heavier target first, then the pool's order.
        assert_eq!(catalogue.order(&model), vec![1, 0, 2]);
        // a: 1 in flight (1 per weight), b: 3 (1.5 per weight), c: none.
        let _a = catalogue.targets[0].health.start();
        let _b: Vec<_> = (0..3)
            .map(|_| catalogue.targets[1].health.start())
            .collect();
        assert_eq!(catalogue.order(&model), vec![2, 0, 1]);
    }
}
