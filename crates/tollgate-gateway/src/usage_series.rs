//! Usage in Prometheus: calls, tokens and cost by source, route, model and team, the gateway's
//! latency by route, and (opt-in) the same per key.
//!
//! Every usage event is counted here as it is handed to the usage writer, so the series add up
//! to what the analytics API reads from the store for the same calls. Reported usage (ingest and
//! middleware) is counted too, under its own `source` label: the analytics totals include it, and
//! the label keeps it apart from this instance's own calls. Reports are delivered at least once:
//! a batch the reporter retries is stored once but counted again here.
//!
//! Cardinality is bounded: the first `max_routes` route names, `max_models` models, `max_teams`
//! teams (and, with `per_key`, `max_keys` keys) get series of their own, every later one is
//! counted under `other`. A missing value is `none`.
//!
//! The request path never allocates a label nor takes a shared lock: label values are interned
//! once, in copy-on-write maps read without locks (an [`ArcSwap`] load), and each label set's
//! counters are resolved once and found again by the interned labels' addresses. Only the first
//! call with a new value takes the (per-map) mutex.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use arc_swap::ArcSwap;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tollgate_core::{UsageEvent, UsageSource};

/// Label value of a value over its cap.
pub const OTHER: &str = "other";
/// Label value of a missing value (no route matched, no model named, no team known).
pub const NONE: &str = "none";

/// `[metrics]`: how many distinct label values get series of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Route names with series of their own; later ones count as `other`.
    pub max_routes: usize,
    /// Models with series of their own; later ones count as `other`.
    pub max_models: usize,
    /// Teams with series of their own; later ones count as `other`.
    pub max_teams: usize,
    /// Whether per-key series are exported at all.
    pub per_key: bool,
    /// Keys with series of their own when `per_key` is on; later ones count as `other`.
    pub max_keys: usize,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            max_routes: 200,
            max_models: 100,
            max_teams: 200,
            per_key: false,
            max_keys: 1000,
        }
    }
}

/// Upper bounds (seconds) of the per-route latency histogram: 100 µs to 10 minutes.
pub const CALL_DURATION_BUCKETS: [f64; 21] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// The token kinds of `tollgate_usage_tokens_total`, in [`Cell::tokens`] order.
const TOKEN_KINDS: [&str; 4] = ["prompt", "completion", "cached", "reasoning"];

/// The status classes of `tollgate_usage_calls_total`, indexed by [`tollgate_core::usage::status_class`]
/// (0: a reported call without a status).
const STATUS_CLASSES: [&str; 6] = ["unknown", "1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UsageLabels {
    source: &'static str,
    route: Arc<String>,
    model: Arc<String>,
    team_id: Arc<String>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    source: &'static str,
    route: Arc<String>,
    model: Arc<String>,
    team_id: Arc<String>,
    status_class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    source: &'static str,
    route: Arc<String>,
    model: Arc<String>,
    team_id: Arc<String>,
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Arc<String>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabels {
    key_id: Arc<String>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyTokenLabels {
    key_id: Arc<String>,
    kind: &'static str,
}

type CostCounter = Counter<f64, AtomicU64>;

/// A map from values to what stands for them, read without locks and grown under a mutex up to
/// `cap` entries; past the cap every new value gets `overflow`.
#[derive(Debug)]
struct Bounded<K, V: ?Sized> {
    map: ArcSwap<HashMap<K, Arc<V>>>,
    grow: Mutex<()>,
    cap: usize,
    overflow: Arc<V>,
}

impl<K: Hash + Eq + Clone, V: ?Sized> Bounded<K, V> {
    fn new(cap: usize, overflow: Arc<V>) -> Self {
        Self {
            map: ArcSwap::from_pointee(HashMap::new()),
            grow: Mutex::new(()),
            cap,
            overflow,
        }
    }

    /// Runs `with` on what stands for `key`, borrowed from the map without a lock or a reference
    /// count change (the request path's way in); on a miss as [`Bounded::get`].
    fn with<Q, R>(
        &self,
        key: &Q,
        make: impl FnOnce() -> (K, Arc<V>),
        with: impl FnOnce(&Arc<V>) -> R,
    ) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.map.load();
        if let Some(found) = map.get(key) {
            return with(found);
        }
        drop(map);
        with(&self.get(key, make))
    }

    /// What stands for `key`: found without a lock, or made by `make` (under the mutex, once) while
    /// there is room, else the overflow.
    fn get<Q>(&self, key: &Q, make: impl FnOnce() -> (K, Arc<V>)) -> Arc<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(found) = self.map.load().get(key) {
            return found.clone();
        }
        if self.map.load().len() >= self.cap {
            return self.overflow.clone();
        }
        let _grow = self.grow.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.map.load_full();
        if let Some(found) = current.get(key) {
            return found.clone();
        }
        if current.len() >= self.cap {
            return self.overflow.clone();
        }
        let (key, value) = make();
        let mut grown = HashMap::clone(&current);
        grown.insert(key, value.clone());
        self.map.store(Arc::new(grown));
        value
    }
}

/// The counters of one (source, route, model, team) label set.
#[derive(Debug)]
struct Cell {
    labels: UsageLabels,
    /// By status class, created on first use so that classes never seen export nothing.
    calls: [OnceLock<Counter>; 6],
    tokens: [Counter; 4],
    cost: CostCounter,
    /// The route's latency histogram; gateway calls only (a report's latency was measured
    /// elsewhere).
    latency: Option<Histogram>,
}

/// The counters of one key (per-key series).
#[derive(Debug)]
struct KeyCell {
    calls: Counter,
    tokens: [Counter; 4],
    cost: CostCounter,
}

/// The interned labels of one event, identified by address.
type CellKey = (u8, usize, usize, usize);

/// The usage series and the maps that bound them.
#[derive(Debug)]
pub struct UsageSeries {
    settings: MetricsSettings,
    calls: Family<CallLabels, Counter>,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<UsageLabels, CostCounter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    key_calls: Family<KeyLabels, Counter>,
    key_tokens: Family<KeyTokenLabels, Counter>,
    key_cost: Family<KeyLabels, CostCounter>,
    none: Arc<String>,
    routes: Bounded<Box<str>, String>,
    models: Bounded<Box<str>, String>,
    teams: Bounded<i64, String>,
    keys: Bounded<i64, KeyCell>,
    cells: Bounded<CellKey, Cell>,
}

fn call_duration_histogram() -> Histogram {
    Histogram::new(CALL_DURATION_BUCKETS)
}

fn source_index(source: UsageSource) -> u8 {
    match source {
        UsageSource::Gateway => 0,
        UsageSource::Ingest => 1,
        UsageSource::Middleware => 2,
    }
}

/// An interned label's identity: its address (interned labels are never removed, so they live
/// as long as the series).
fn addr(label: &Arc<String>) -> usize {
    Arc::as_ptr(label).addr()
}

/// Non-negative token counts as counter increments.
fn count(tokens: i64) -> u64 {
    u64::try_from(tokens).unwrap_or(0)
}

impl UsageSeries {
    /// Creates the series and registers them in `registry` (prefixed `tollgate_`).
    pub fn new(settings: MetricsSettings, registry: &mut Registry) -> Self {
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "usage_calls",
            "Calls by usage source, route, model, team and status class (what the analytics API counts)",
            calls.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "usage_tokens",
            "LLM tokens by usage source, route, model, team and kind (prompt, completion, cached, reasoning)",
            tokens.clone(),
        );
        let cost = Family::<UsageLabels, CostCounter>::default();
        registry.register(
            "usage_cost_usd",
            "Cost in US dollars from the price table, by usage source, route, model and team",
            cost.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            call_duration_histogram as fn() -> Histogram,
        );
        registry.register(
            "gateway_call_duration_seconds",
            "Total time of a gateway call by route (none: refused before a route matched)",
            latency.clone(),
        );
        let key_calls = Family::<KeyLabels, Counter>::default();
        let key_tokens = Family::<KeyTokenLabels, Counter>::default();
        let key_cost = Family::<KeyLabels, CostCounter>::default();
        if settings.per_key {
            registry.register(
                "usage_key_calls",
                "Calls by API key id (metrics.per_key)",
                key_calls.clone(),
            );
            registry.register(
                "usage_key_tokens",
                "LLM tokens by API key id and kind (metrics.per_key)",
                key_tokens.clone(),
            );
            registry.register(
                "usage_key_cost_usd",
                "Cost in US dollars by API key id (metrics.per_key)",
                key_cost.clone(),
            );
        }
        let other: Arc<String> = Arc::new(OTHER.to_owned());
        let other_key = Arc::new(KeyCell::new(&key_calls, &key_tokens, &key_cost, &other));
        // The cells are bounded by the product of the other caps; the overflow is never used.
        let overflow_cell = Arc::new(Cell {
            labels: UsageLabels {
                source: "gateway",
                route: other.clone(),
                model: other.clone(),
                team_id: other.clone(),
            },
            calls: Default::default(),
            tokens: Default::default(),
            cost: CostCounter::default(),
            latency: None,
        });
        Self {
            settings,
            none: Arc::new(NONE.to_owned()),
            routes: Bounded::new(settings.max_routes, other.clone()),
            models: Bounded::new(settings.max_models, other.clone()),
            teams: Bounded::new(settings.max_teams, other.clone()),
            keys: Bounded::new(settings.max_keys, other_key),
            cells: Bounded::new(usize::MAX, overflow_cell),
            calls,
            tokens,
            cost,
            latency,
            key_calls,
            key_tokens,
            key_cost,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> MetricsSettings {
        self.settings
    }

    fn text_label(&self, map: &Bounded<Box<str>, String>, value: Option<&str>) -> Arc<String> {
        match value {
            None => self.none.clone(),
            Some(value) => map.get(value, || (Box::from(value), Arc::new(value.to_owned()))),
        }
    }

    /// The interned label of a text value, by address (see [`addr`]).
    fn text_addr(&self, map: &Bounded<Box<str>, String>, value: Option<&str>) -> usize {
        match value {
            None => addr(&self.none),
            Some(value) => map.with(
                value,
                || (Box::from(value), Arc::new(value.to_owned())),
                addr,
            ),
        }
    }

    fn team_label(&self, team_id: Option<i64>) -> Arc<String> {
        match team_id {
            None => self.none.clone(),
            Some(id) => self.teams.get(&id, || (id, Arc::new(id.to_string()))),
        }
    }

    /// Counts one usage event (its call, tokens and cost; its latency when the gateway measured
    /// it). Known label values and label sets are found by address in lock-free maps, without a
    /// reference count change: only a new value or label set takes a mutex and allocates.
    pub fn observe(&self, event: &UsageEvent) {
        let route = self.text_addr(&self.routes, event.route.as_deref());
        let model = self.text_addr(&self.models, event.model.as_deref());
        let team = match event.team_id {
            None => addr(&self.none),
            Some(id) => self
                .teams
                .with(&id, || (id, Arc::new(id.to_string())), addr),
        };
        let key = (source_index(event.source), route, model, team);
        let make = || {
            let labels = UsageLabels {
                source: event.source.as_str(),
                route: self.text_label(&self.routes, event.route.as_deref()),
                model: self.text_label(&self.models, event.model.as_deref()),
                team_id: self.team_label(event.team_id),
            };
            (key, Arc::new(self.new_cell(labels)))
        };
        self.cells.with(&key, make, |cell| self.count(cell, event));
        if self.settings.per_key
            && let Some(id) = event.key_id
        {
            let make = || {
                let label: Arc<String> = Arc::new(id.to_string());
                let cell = KeyCell::new(&self.key_calls, &self.key_tokens, &self.key_cost, &label);
                (id, Arc::new(cell))
            };
            self.keys.with(&id, make, |key| {
                key.calls.inc();
                add_tokens(&key.tokens, event);
                if let Some(cost) = positive_cost(event) {
                    key.cost.inc_by(cost);
                }
            });
        }
    }

    fn count(&self, cell: &Cell, event: &UsageEvent) {
        let class = usize::try_from(event.status_class()).unwrap_or(0);
        if let Some(slot) = cell.calls.get(class) {
            slot.get_or_init(|| {
                self.calls
                    .get_or_create(&CallLabels {
                        source: cell.labels.source,
                        route: cell.labels.route.clone(),
                        model: cell.labels.model.clone(),
                        team_id: cell.labels.team_id.clone(),
                        status_class: STATUS_CLASSES[class],
                    })
                    .clone()
            })
            .inc();
        }
        add_tokens(&cell.tokens, event);
        if let Some(cost) = positive_cost(event) {
            cell.cost.inc_by(cost);
        }
        if let Some(latency) = &cell.latency {
            // Microseconds as f64: exact far beyond any real latency.
            latency.observe(event.latency_us.max(0) as f64 / 1_000_000.0);
        }
    }

    fn new_cell(&self, labels: UsageLabels) -> Cell {
        let tokens = TOKEN_KINDS.map(|kind| {
            self.tokens
                .get_or_create(&TokenLabels {
                    source: labels.source,
                    route: labels.route.clone(),
                    model: labels.model.clone(),
                    team_id: labels.team_id.clone(),
                    kind,
                })
                .clone()
        });
        let cost = self.cost.get_or_create(&labels).clone();
        let latency = (labels.source == UsageSource::Gateway.as_str()).then(|| {
            self.latency
                .get_or_create(&RouteLabels {
                    route: labels.route.clone(),
                })
                .clone()
        });
        Cell {
            labels,
            calls: Default::default(),
            tokens,
            cost,
            latency,
        }
    }
}

impl KeyCell {
    fn new(
        calls: &Family<KeyLabels, Counter>,
        tokens: &Family<KeyTokenLabels, Counter>,
        cost: &Family<KeyLabels, CostCounter>,
        key_id: &Arc<String>,
    ) -> Self {
        let labels = KeyLabels {
            key_id: key_id.clone(),
        };
        Self {
            calls: calls.get_or_create(&labels).clone(),
            tokens: TOKEN_KINDS.map(|kind| {
                tokens
                    .get_or_create(&KeyTokenLabels {
                        key_id: key_id.clone(),
                        kind,
                    })
                    .clone()
            }),
            cost: cost.get_or_create(&labels).clone(),
        }
    }
}

fn add_tokens(counters: &[Counter; 4], event: &UsageEvent) {
    let t = &event.tokens;
    for (counter, value) in counters
        .iter()
        .zip([t.prompt, t.completion, t.cached, t.reasoning])
    {
        if value > 0 {
            counter.inc_by(count(value));
        }
    }
}

/// An event's cost when it is a positive figure (unpriced calls add nothing to the counters).
fn positive_cost(event: &UsageEvent) -> Option<f64> {
    event.cost_usd.filter(|c| c.is_finite() && *c > 0.0)
}

#[cfg(test)]
mod tests {
    use tollgate_core::TokenUsage;

    use super::*;

    fn event(route: &str, model: &str, team: i64, status: u16, prompt: i64) -> UsageEvent {
        let mut e = UsageEvent::new(0, "POST", "/v1/chat/completions", status);
        e.route = Some(route.to_owned());
        e.model = Some(model.to_owned());
        e.team_id = Some(team);
        e.key_id = Some(team * 10);
        e.latency_us = 250;
        e.tokens = TokenUsage {
            prompt,
            completion: 2,
            total: prompt + 2,
            cached: 1,
            reasoning: 0,
        };
        e.cost_usd = Some(0.5);
        e
    }

    fn render(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    #[test]
    fn counts_by_labels_and_folds_values_over_the_cap_into_other() {
        let mut registry = Registry::with_prefix("tollgate");
        let series = UsageSeries::new(
            MetricsSettings {
                max_models: 2,
                per_key: true,
                max_keys: 1,
                ..MetricsSettings::default()
            },
            &mut registry,
        );
        for model in ["m1", "m2", "m3", "m4", "m1"] {
            series.observe(&event("llm", model, 7, 200, 10));
        }
        series.observe(&event("llm", "m2", 8, 502, 0));
        let text = render(&registry);
        let line = |needle: &str| {
            text.lines()
                .find(|l| l.starts_with(needle))
                .unwrap_or_else(|| panic!("{needle} not in\n{text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .parse::<f64>()
                .unwrap()
        };
        let calls = |model: &str, team: &str, class: &str| {
            line(&format!(
                "tollgate_usage_calls_total{{source=\"gateway\",route=\"llm\",model=\"{model}\",team_id=\"{team}\",status_class=\"{class}\"}}"
            ))
        };
        assert_eq!(calls("m1", "7", "2xx"), 2.0);
        assert_eq!(calls("m2", "7", "2xx"), 1.0);
        assert_eq!(
            calls("other", "7", "2xx"),
            2.0,
            "m3 and m4 are over the cap"
        );
        assert_eq!(calls("m2", "8", "5xx"), 1.0);
        assert!(!text.contains("model=\"m3\""), "{text}");
        assert_eq!(
            line(
                "tollgate_usage_tokens_total{source=\"gateway\",route=\"llm\",model=\"m1\",team_id=\"7\",kind=\"prompt\"}"
            ),
            20.0
        );
        assert_eq!(
            line(
                "tollgate_usage_cost_usd_total{source=\"gateway\",route=\"llm\",model=\"other\",team_id=\"7\"}"
            ),
            1.0
        );
        // 250 µs falls in the 0.00025 s bucket: the buckets resolve below a millisecond.
        assert_eq!(
            line("tollgate_gateway_call_duration_seconds_bucket{le=\"0.0001\",route=\"llm\"}"),
            0.0
        );
        assert_eq!(
            line("tollgate_gateway_call_duration_seconds_bucket{le=\"0.00025\",route=\"llm\"}"),
            6.0
        );
        // One key of its own, the second over the cap.
        assert_eq!(line("tollgate_usage_key_calls_total{key_id=\"70\"}"), 5.0);
        assert_eq!(
            line("tollgate_usage_key_calls_total{key_id=\"other\"}"),
            1.0
        );
    }

    #[test]
    fn reported_usage_has_its_own_source_and_no_latency() {
        let mut registry = Registry::with_prefix("tollgate");
        let series = UsageSeries::new(MetricsSettings::default(), &mut registry);
        let mut e = event("/v1/chat", "m1", 1, 0, 5);
        e.source = UsageSource::Ingest;
        e.route = None;
        series.observe(&e);
        let text = render(&registry);
        assert!(
            text.contains(
                "tollgate_usage_calls_total{source=\"ingest\",route=\"none\",model=\"m1\",team_id=\"1\",status_class=\"unknown\"} 1"
            ),
            "{text}"
        );
        assert!(
            !text.contains("tollgate_gateway_call_duration_seconds_count"),
            "{text}"
        );
        assert!(!text.contains("usage_key_calls"), "per-key is off: {text}");
    }
}
