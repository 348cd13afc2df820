//! Limits on the request path: the [`Limiter`] the binary built, the active limits and key model
//! allow-lists as loaded from the store, and what the request path asks of them cheaply (does a
//! key have an allow-list, does any token limit apply so that the prompt must be counted).
//!
//! The limits are loaded at start and again whenever the store's revision changes (limits and
//! model allow-lists bump it), together with the routes.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustc_hash::{FxHashMap, FxHashSet};
use tollgate_limits::{Limit, LimitKind, Limiter, ModelAllowList, Scope};
use tollgate_store::{LimitOwner, LimitRecord, Store, StoreError};

/// What the limits of the store mean for the request path, rebuilt at each reload. Its sets are
/// read on every call, so they hash with Fx: their keys are ids the store gave, not attacker text.
#[derive(Default)]
struct LimitIndex {
    /// Whether any limit is active: without one, admission is skipped entirely.
    any: bool,
    /// The scopes that have a tokens-per-minute limit or a token or cost budget: only calls in
    /// one of them need a token estimate.
    token_scopes: FxHashSet<Scope>,
    /// The scopes that have a cost budget: only calls in one of them need a cost estimate (a
    /// price look-up).
    cost_scopes: FxHashSet<Scope>,
    /// Model allow-lists by key id; `None` for a list that cannot be read (no model allowed).
    models: FxHashMap<i64, Option<ModelAllowList>>,
}

/// The limits the gateway enforces: a shared [`Limiter`] and the allow-lists of keys.
pub struct GatewayLimits {
    limiter: Arc<Limiter>,
    default_estimate_tokens: u64,
    backend: &'static str,
    index: ArcSwap<LimitIndex>,
}

impl fmt::Debug for GatewayLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let index = self.index.load();
        f.debug_struct("GatewayLimits")
            .field("backend", &self.backend)
            .field("default_estimate_tokens", &self.default_estimate_tokens)
            .field("any", &index.any)
            .field("keys_with_models", &index.models.len())
            .finish_non_exhaustive()
    }
}

/// A limit's store owner as a limit scope.
pub fn scope_of(owner: LimitOwner) -> Scope {
    match owner {
        LimitOwner::Instance => Scope::Instance,
        LimitOwner::Team(id) => Scope::Team(id),
        LimitOwner::Key(id) => Scope::Key(id),
        LimitOwner::Route(id) => Scope::Route(id),
    }
}

impl GatewayLimits {
    /// Wraps `limiter`; `default_estimate_tokens` is the completion reserved for a call that
    /// names no `max_tokens`; `backend` (`local` or `redis`) labels the admission metric.
    pub fn new(limiter: Arc<Limiter>, default_estimate_tokens: u64, backend: &'static str) -> Self {
        Self {
            limiter,
            default_estimate_tokens,
            backend,
            index: ArcSwap::from_pointee(LimitIndex::default()),
        }
    }

    /// The limiter (shared with the console).
    pub fn limiter(&self) -> &Arc<Limiter> {
        &self.limiter
    }

    /// `local` or `redis`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The completion tokens reserved for a call without `max_tokens`.
    pub fn default_estimate_tokens(&self) -> u64 {
        self.default_estimate_tokens
    }

    /// Reads the limits and model allow-lists from the store and makes them active. A row that
    /// does not read as a limit is left out and logged; the others still apply.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), StoreError> {
        let records = store.list_limits().await?;
        let models = store.key_models().await?;
        self.apply(records, models);
        Ok(())
    }

    /// Makes `records` and `models` the active limits and allow-lists.
    pub fn apply(&self, records: Vec<LimitRecord>, models: Vec<(i64, String)>) {
        let mut limits: Vec<Limit> = Vec::with_capacity(records.len());
        for record in records {
            match Limit::from_record(record.id, scope_of(record.owner), &record.spec) {
                Ok((limit, _label)) => limits.push(limit),
                Err(err) => {
                    tracing::error!(limit = record.id, error = %err, "limit cannot be read; it is not enforced");
                }
            }
        }
        let mut index = LimitIndex {
            any: !limits.is_empty(),
            ..LimitIndex::default()
        };
        for limit in &limits {
            if matches!(
                limit.kind,
                LimitKind::TokensPerMinute { .. }
                    | LimitKind::TokenBudget { .. }
                    | LimitKind::CostBudget { .. }
            ) {
                index.token_scopes.insert(limit.scope);
            }
            if matches!(limit.kind, LimitKind::CostBudget { .. }) {
                index.cost_scopes.insert(limit.scope);
            }
        }
        for (key_id, patterns) in models {
            let list = ModelAllowList::parse(&patterns)
                .inspect_err(|err| {
                    // A key whose allow-list cannot be read may call no model rather than any.
                    tracing::error!(key = key_id, error = %err, "model patterns cannot be read; the key may call no model");
                })
                .ok();
            index.models.insert(key_id, list);
        }
        let count = limits.len();
        if let Err(err) = self.limiter.set_limits(limits) {
            tracing::error!(error = %err, "limits cannot be applied; the previous ones stay");
            return;
        }
        tracing::debug!(
            limits = count,
            keys_with_models = index.models.len(),
            "limits loaded"
        );
        self.index.store(Arc::new(index));
    }

    /// Whether any limit is active.
    pub(crate) fn any(&self) -> bool {
        self.index.load().any
    }

    /// Whether a key may call `model`: `None` when the key has no allow-list, else whether the
    /// list covers the model (a call whose model is unknown is not covered).
    pub(crate) fn model_allowed(&self, key_id: i64, model: Option<&str>) -> Option<bool> {
        let index = self.index.load();
        let list = index.models.get(&key_id)?;
        Some(match (list, model) {
            (Some(list), Some(model)) => list.allows(model),
            _ => false,
        })
    }

    /// What a call of this team, key and route must be estimated for: `None` when no token limit
    /// or budget applies to it, else whether a cost budget does (the estimate then needs a price).
    pub(crate) fn needs_estimate(&self, team_id: i64, key_id: i64, route_id: i64) -> Option<bool> {
        let index = self.index.load();
        let scopes = [
            Scope::Instance,
            Scope::Team(team_id),
            Scope::Key(key_id),
            Scope::Route(route_id),
        ];
        if !scopes.iter().any(|s| index.token_scopes.contains(s)) {
            return None;
        }
        Some(scopes.iter().any(|s| index.cost_scopes.contains(s)))
    }
}
