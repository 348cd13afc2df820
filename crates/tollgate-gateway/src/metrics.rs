//! Prometheus metrics of the data plane and the usage writer, exposed by the console at `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tollgate_core::tokenize::Vocabulary;

use crate::usage_series::{MetricsSettings, UsageSeries};

/// Labels of a gateway response.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// HTTP status sent to the client (499 for a client that hung up).
    pub status: u16,
}

/// Labels of an upstream call's protocol.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    /// `h2` or `http/1.1`: what the upstream connection speaks.
    pub protocol: &'static str,
}

/// Labels of a listener's connection metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    /// `gateway` or `console`.
    pub listener: &'static str,
}

/// Labels of a call refused by a limit.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// `rate_limited`, `budget_exceeded`, `concurrency_limited`, `limits_unavailable` or
    /// `model_not_allowed`.
    pub code: &'static str,
    /// The kind of scope of the limit that refused: `instance`, `team`, `key`, `route`, or
    /// `none` (limits unavailable, model allow-lists).
    pub scope: &'static str,
}

/// Labels of a limit admission's timing.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CountersLabels {
    /// Where the counters live: `local` or `redis`.
    pub backend: &'static str,
}

/// Labels of a tokenizer vocabulary.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VocabularyLabels {
    /// `o200k_base` or `cl100k_base`.
    pub vocabulary: &'static str,
}

/// Labels of a model-routing target.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LlmTargetLabels {
    /// The target's name.
    pub target: String,
}

/// Labels of one upstream attempt of an `llm` call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LlmAttemptLabels {
    /// The target's name.
    pub target: String,
    /// `ok` (a head passed on), `rate_limited` (429), `error` (5xx) or `unreachable` (no head).
    pub outcome: &'static str,
}

/// Labels of a fallback model.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LlmModelLabels {
    /// The model fallen back to.
    pub model: String,
}

/// Every metric tollgate exports. Cheap to update from the request path (atomics only).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Gateway responses by status.
    pub requests: Family<StatusLabels, Counter>,
    /// Total gateway latency, seconds.
    pub request_duration: Histogram,
    /// Time to the upstream's response head, seconds.
    pub upstream_duration: Histogram,
    /// Upstream connection failures and timeouts.
    pub upstream_errors: Counter,
    /// Upstream calls answered, by the protocol of their connection (`h2` by ALPN over TLS).
    pub upstream_calls: Family<ProtocolLabels, Counter>,
    /// Usage events accepted into the in-memory queue.
    pub events_queued: Counter,
    /// Usage events written to the store.
    pub events_written: Counter,
    /// Usage events written to the disk spool (queue full or store down).
    pub events_spooled: Counter,
    /// Usage events lost. Must stay 0: a non-zero value means the spool itself failed.
    pub events_dropped: Counter,
    /// Events waiting in the in-memory queue.
    pub queue_depth: Gauge<i64, AtomicI64>,
    /// Bytes waiting in the spool.
    pub spool_bytes: Gauge<i64, AtomicI64>,
    /// Usage events waiting in the spool.
    pub spool_events: Gauge<i64, AtomicI64>,
    /// Open client connections per listener.
    pub connections_open: Family<ListenerLabels, Gauge<i64, AtomicI64>>,
    /// Connections closed at once because the listener was at its cap, per listener.
    pub connections_refused: Family<ListenerLabels, Counter>,
    /// Key look-ups that reached the store (cache misses).
    pub key_store_reads: Counter,
    /// Calls refused with 429 because their address failed too many key look-ups.
    pub key_lookups_rate_limited: Counter,
    /// Refused-key calls folded into a per-address summary row instead of a row each.
    pub refused_key_events_folded: Counter,
    /// LLM bodies forwarded without the model peek because the peek byte budget was spent.
    pub peeks_skipped: Counter,
    /// 1 while the last usage write to the store succeeded, 0 while the store refuses writes.
    pub store_write_ok: Gauge<i64, AtomicI64>,
    /// Usage batch writes to the store that failed (each is retried from the spool).
    pub store_write_failures: Counter,
    /// Usage events only in memory: lost by a kill -9 (the `memory` durability window). Set from
    /// `queue_depth` at each render.
    pub events_in_memory: Gauge<i64, AtomicI64>,
    /// Age of the oldest usage event not yet in the store, seconds; set at each render from
    /// `oldest_spooled_ms` and `oldest_in_memory_ms`.
    oldest_unwritten_age: Gauge<f64, AtomicU64>,
    /// Creation time (epoch ms) of the oldest spool file; 0 when the spool is empty.
    pub oldest_spooled_ms: AtomicI64,
    /// Calls refused by a limit or a key's model allow-list.
    pub limit_refusals: Family<RefusalLabels, Counter>,
    /// Time of one admission decision against the counters (with Redis: one round trip).
    limit_admit_duration: Family<CountersLabels, Histogram>,
    /// The two series of `limit_admit_duration` (`local`, `redis`), each made on first use and
    /// then observed without the family's lock and label hashing.
    limit_admit_series: [std::sync::OnceLock<Histogram>; 2],
    /// 1 while the limit counters run on their fallback (Redis unreachable), else 0.
    pub limits_degraded: Gauge<i64, AtomicI64>,
    /// Calls admitted from leased Redis headroom in the process (synced with the limiter).
    pub limits_leased: Counter,
    /// 1 once a tokenizer vocabulary is loaded (read when rendered).
    vocabulary_loaded: Family<VocabularyLabels, Gauge<i64, AtomicI64>>,
    /// Time (epoch ms) of the oldest event the writer holds in memory; 0 when none.
    pub oldest_in_memory_ms: AtomicI64,
    /// Each route's recent calls and failures, for the alert rules (not exported).
    pub routes: crate::outcomes::RouteOutcomes,
    /// Calls, tokens and cost by source, route, model and team; latency by route.
    pub usage: UsageSeries,
    /// Upstream attempts of `llm` calls by target and outcome.
    pub llm_attempts: Family<LlmAttemptLabels, Counter>,
    /// Attempts that followed a failed one in the same call, by the target tried.
    pub llm_retries: Family<LlmTargetLabels, Counter>,
    /// Calls served by a fallback model (its pool tried) after their model's pool failed.
    pub llm_fallbacks: Family<LlmModelLabels, Counter>,
    /// 1 while a target's circuit is open (it is cooling down), else 0.
    llm_circuit_open: Family<LlmTargetLabels, Gauge<i64, AtomicI64>>,
    /// Each model-routing target's circuit, calls in flight and recent errors (not exported;
    /// the console's `GET /api/v1/targets/health` reads it).
    pub llm_health: crate::target_health::HealthRegistry,
}

/// The gateway's latency buckets: 100 µs to 10 minutes (the longest route timeout worth
/// resolving), so a sub-millisecond gateway and a minutes-long stream both show.
fn latency_buckets() -> impl Iterator<Item = f64> {
    crate::usage_series::CALL_DURATION_BUCKETS.into_iter()
}

fn admit_histogram() -> Histogram {
    Histogram::new([
        0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
        0.025, 0.1, 0.25,
    ])
}

impl Metrics {
    /// Creates and registers every metric, with the default `[metrics]` caps.
    pub fn new() -> Arc<Self> {
        Self::with_settings(MetricsSettings::default())
    }

    /// Creates and registers every metric, the usage series bounded by `settings`.
    pub fn with_settings(settings: MetricsSettings) -> Arc<Self> {
        let mut registry = Registry::with_prefix("tollgate");
        let requests = Family::<StatusLabels, Counter>::default();
        registry.register(
            "gateway_requests",
            "Gateway responses by status",
            requests.clone(),
        );
        let request_duration = Histogram::new(latency_buckets());
        registry.register(
            "gateway_request_duration_seconds",
            "Total time of a gateway call",
            request_duration.clone(),
        );
        let upstream_duration = Histogram::new(latency_buckets());
        registry.register(
            "gateway_upstream_duration_seconds",
            "Time to the upstream's response head",
            upstream_duration.clone(),
        );
        let upstream_errors = Counter::default();
        registry.register(
            "gateway_upstream_errors",
            "Upstream connect failures and timeouts",
            upstream_errors.clone(),
        );
        let upstream_calls = Family::<ProtocolLabels, Counter>::default();
        registry.register(
            "gateway_upstream_calls",
            "Upstream calls answered, by protocol (h2 when negotiated by ALPN, else http/1.1)",
            upstream_calls.clone(),
        );
        let events_queued = Counter::default();
        registry.register(
            "usage_events_queued",
            "Usage events put on the writer queue",
            events_queued.clone(),
        );
        let events_written = Counter::default();
        registry.register(
            "usage_events_written",
            "Usage events written to the store",
            events_written.clone(),
        );
        let events_spooled = Counter::default();
        registry.register(
            "usage_events_spooled",
            "Usage events written to the disk spool",
            events_spooled.clone(),
        );
        let events_dropped = Counter::default();
        registry.register(
            "usage_events_dropped",
            "Usage events lost (must stay 0)",
            events_dropped.clone(),
        );
        let queue_depth = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "usage_queue_depth",
            "Usage events waiting in memory",
            queue_depth.clone(),
        );
        let spool_bytes = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "usage_spool_bytes",
            "Bytes of usage events waiting in the spool",
            spool_bytes.clone(),
        );
        let spool_events = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "usage_spool_events",
            "Usage events waiting in the spool",
            spool_events.clone(),
        );
        let connections_open = Family::<ListenerLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "connections_open",
            "Open client connections per listener",
            connections_open.clone(),
        );
        let connections_refused = Family::<ListenerLabels, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections closed at once because the listener was at max_connections",
            connections_refused.clone(),
        );
        let key_store_reads = Counter::default();
        registry.register(
            "gateway_key_store_reads",
            "Key look-ups that reached the store",
            key_store_reads.clone(),
        );
        let key_lookups_rate_limited = Counter::default();
        registry.register(
            "gateway_key_lookups_rate_limited",
            "Calls refused because their address failed too many key look-ups",
            key_lookups_rate_limited.clone(),
        );
        let refused_key_events_folded = Counter::default();
        registry.register(
            "gateway_refused_key_events_folded",
            "Refused-key calls counted in a summary usage row instead of a row each",
            refused_key_events_folded.clone(),
        );
        let peeks_skipped = Counter::default();
        registry.register(
            "gateway_peeks_skipped",
            "LLM bodies forwarded unread because peek_budget_bytes was spent",
            peeks_skipped.clone(),
        );
        for listener in ["gateway", "console"] {
            let labels = ListenerLabels { listener };
            drop(connections_open.get_or_create(&labels));
            drop(connections_refused.get_or_create(&labels));
        }
        let store_write_ok = Gauge::<i64, AtomicI64>::default();
        store_write_ok.set(1);
        registry.register(
            "usage_store_write_ok",
            "1 while usage writes to the store succeed, 0 while they fail",
            store_write_ok.clone(),
        );
        let store_write_failures = Counter::default();
        registry.register(
            "usage_store_write_failures",
            "Usage batch writes to the store that failed",
            store_write_failures.clone(),
        );
        let events_in_memory = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "usage_events_in_memory",
            "Usage events held only in memory (lost by a kill -9 in memory durability)",
            events_in_memory.clone(),
        );
        let oldest_unwritten_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "usage_oldest_unwritten_age_seconds",
            "Age of the oldest usage event not yet in the store",
            oldest_unwritten_age.clone(),
        );
        let limit_refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "limit_refusals",
            "Gateway calls refused by a limit, by code and scope kind",
            limit_refusals.clone(),
        );
        let limit_admit_duration =
            Family::<CountersLabels, Histogram>::new_with_constructor(admit_histogram);
        registry.register(
            "limit_admit_duration_seconds",
            "Time of one limit admission decision (with Redis, its round trip)",
            limit_admit_duration.clone(),
        );
        let limits_degraded = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "limits_degraded",
            "1 while limit counters run on their fallback because Redis is unreachable",
            limits_degraded.clone(),
        );
        let limits_leased = Counter::default();
        registry.register(
            "limit_leased_admissions",
            "Calls admitted from a block of headroom leased from Redis, with no round trip",
            limits_leased.clone(),
        );
        let vocabulary_loaded = Family::<VocabularyLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "tokenizer_vocabulary_loaded",
            "1 once the tokenizer vocabulary is loaded: token estimates with it no longer wait or fall back to the text's length",
            vocabulary_loaded.clone(),
        );
        let llm_attempts = Family::<LlmAttemptLabels, Counter>::default();
        registry.register(
            "gateway_llm_attempts",
            "Upstream attempts of llm-route calls by target and outcome (ok, rate_limited, error, unreachable)",
            llm_attempts.clone(),
        );
        let llm_retries = Family::<LlmTargetLabels, Counter>::default();
        registry.register(
            "gateway_llm_retries",
            "llm-route attempts that followed a failed attempt of the same call, by the target tried",
            llm_retries.clone(),
        );
        let llm_fallbacks = Family::<LlmModelLabels, Counter>::default();
        registry.register(
            "gateway_llm_fallbacks",
            "llm-route calls whose model's pool failed, by the fallback model tried",
            llm_fallbacks.clone(),
        );
        let llm_circuit_open = Family::<LlmTargetLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "gateway_llm_circuit_open",
            "1 while a model-routing target's circuit is open (cooling down after failures)",
            llm_circuit_open.clone(),
        );
        let usage = UsageSeries::new(settings, &mut registry);
        Arc::new(Self {
            llm_attempts,
            llm_retries,
            llm_fallbacks,
            llm_circuit_open,
            llm_health: crate::target_health::HealthRegistry::default(),
            usage,
            spool_events,
            registry,
            routes: crate::outcomes::RouteOutcomes::default(),
            vocabulary_loaded,
            limit_refusals,
            limit_admit_duration,
            limit_admit_series: Default::default(),
            limits_degraded,
            limits_leased,
            store_write_ok,
            store_write_failures,
            events_in_memory,
            oldest_unwritten_age,
            oldest_spooled_ms: AtomicI64::new(0),
            oldest_in_memory_ms: AtomicI64::new(0),
            requests,
            request_duration,
            upstream_duration,
            upstream_errors,
            upstream_calls,
            events_queued,
            events_written,
            events_spooled,
            events_dropped,
            queue_depth,
            spool_bytes,
            connections_open,
            connections_refused,
            key_store_reads,
            key_lookups_rate_limited,
            refused_key_events_folded,
            peeks_skipped,
        })
    }

    /// Marks a target's circuit open or closed on `/metrics`.
    pub fn set_circuit(&self, target: &str, open: bool) {
        self.llm_circuit_open
            .get_or_create(&LlmTargetLabels {
                target: target.to_owned(),
            })
            .set(i64::from(open));
    }

    /// Records one admission decision of `backend` (`local` or `redis`).
    pub fn observe_admission(&self, backend: &'static str, seconds: f64) {
        let slot = usize::from(backend == "redis");
        let series = self.limit_admit_series.get(slot).map(|cell| {
            cell.get_or_init(|| {
                self.limit_admit_duration
                    .get_or_create(&CountersLabels { backend })
                    .clone()
            })
        });
        if let Some(series) = series {
            series.observe(seconds);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.oldest_unwritten_age
            .set(self.oldest_unwritten_age_seconds());
        self.events_in_memory.set(self.queue_depth.get());
        for vocabulary in Vocabulary::ALL {
            self.vocabulary_loaded
                .get_or_create(&VocabularyLabels {
                    vocabulary: vocabulary.name(),
                })
                .set(i64::from(vocabulary.is_loaded()));
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// The Prometheus text format (0.0.4) of every metric: the OpenMetrics of [`Metrics::render`]
    /// with each counter's `HELP` and `TYPE` naming its `_total` samples, and without the `UNIT`
    /// and `EOF` lines that format lacks.
    pub fn render_text(&self) -> String {
        openmetrics_to_text(&self.render())
    }

    /// Counts one gateway response.
    pub fn observe_response(&self, status: u16, seconds: f64) {
        self.requests.get_or_create(&StatusLabels { status }).inc();
        self.request_duration.observe(seconds);
    }

    /// Current queue depth (for health).
    pub fn queue_depth_now(&self) -> i64 {
        self.queue_depth.get()
    }

    /// Current spool size in bytes (for health).
    pub fn spool_bytes_now(&self) -> i64 {
        self.spool_bytes.get()
    }

    /// Age of the oldest usage event not yet in the store, seconds (0 when none waits).
    pub fn oldest_unwritten_age_seconds(&self) -> f64 {
        let oldest = [&self.oldest_spooled_ms, &self.oldest_in_memory_ms]
            .iter()
            .map(|ms| ms.load(Ordering::Acquire))
            .filter(|ms| *ms > 0)
            .min();
        let Some(oldest) = oldest else {
            return 0.0;
        };
        let age_ms = tollgate_core::time::now_ms().saturating_sub(oldest).max(0);
        // Milliseconds as f64: exact far beyond any real age.
        age_ms as f64 / 1000.0
    }

    /// Whether the last usage write to the store succeeded.
    pub fn store_write_ok_now(&self) -> bool {
        self.store_write_ok.get() != 0
    }

    /// Events dropped so far.
    pub fn dropped_now(&self) -> u64 {
        self.events_dropped.get()
    }
}

/// OpenMetrics text → Prometheus text format 0.0.4 (see [`Metrics::render_text`]).
fn openmetrics_to_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + 1024);
    let mut help: Option<(&str, &str)> = None;
    let flush_help = |out: &mut String, help: &mut Option<(&str, &str)>, suffix: &str| {
        if let Some((name, text)) = help.take() {
            out.push_str("# HELP ");
            out.push_str(name);
            out.push_str(suffix);
            out.push(' ');
            out.push_str(text);
            out.push('\n');
        }
    };
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(&mut out, &mut help, "");
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (suffix, kind) = match kind {
                "counter" => ("_total", "counter"),
                "unknown" => ("", "untyped"),
                other => ("", other),
            };
            flush_help(&mut out, &mut help, suffix);
            out.push_str("# TYPE ");
            out.push_str(name);
            out.push_str(suffix);
            out.push(' ');
            out.push_str(kind);
            out.push('\n');
        } else if line.starts_with("# UNIT ") || line == "# EOF" {
            flush_help(&mut out, &mut help, "");
        } else {
            flush_help(&mut out, &mut help, "");
            out.push_str(line);
            out.push('\n');
        }
    }
    flush_help(&mut out, &mut help, "");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_counters_by_their_samples() {
        let m = Metrics::new();
        m.observe_response(200, 0.01);
        let text = m.render_text();
        assert!(
            text.contains(
                "# HELP tollgate_gateway_requests_total Gateway responses by status.\n# TYPE tollgate_gateway_requests_total counter\ntollgate_gateway_requests_total{status=\"200\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("# TYPE tollgate_gateway_request_duration_seconds histogram\n"),
            "{text}"
        );
        assert!(
            !text.contains("# UNIT") && !text.contains("# EOF"),
            "{text}"
        );
    }

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.observe_response(200, 0.01);
        m.events_written.inc_by(3);
        let text = m.render();
        assert!(
            text.contains("tollgate_gateway_requests_total{status=\"200\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tollgate_usage_events_written_total 3"),
            "{text}"
        );
        assert!(
            text.contains("tollgate_usage_events_dropped_total 0"),
            "{text}"
        );
    }
}
