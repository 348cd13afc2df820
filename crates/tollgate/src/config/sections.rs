//! The sections of the configuration file (`[gateway]`, `[console]`, `[limits]`, …): their
//! settings, documented defaults and the small helpers that read them. `Config` and the layering
//! live in the parent module.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[metrics]`: the usage series of `/metrics` (calls, tokens and cost by source, route, model
/// and team). Each label keeps its first `max_*` values; later ones are counted as `other`, so a
/// client sending made-up model names cannot grow the exposition.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Route names with series of their own (reported usage names its own routes).
    pub max_routes: usize,
    /// Models with series of their own.
    pub max_models: usize,
    /// Teams with series of their own.
    pub max_teams: usize,
    /// Export per-key series (`tollgate_usage_key_*`, by `key_id`): off by default.
    pub per_key: bool,
    /// Keys with series of their own when `per_key` is on.
    pub max_keys: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        let d = tollgate_gateway::usage_series::MetricsSettings::default();
        Self {
            max_routes: d.max_routes,
            max_models: d.max_models,
            max_teams: d.max_teams,
            per_key: d.per_key,
            max_keys: d.max_keys,
        }
    }
}

/// `[otel]`: OpenTelemetry traces of gateway calls, exported over OTLP/HTTP with protobuf
/// bodies. Off while `endpoint` is unset (`TOLLGATE_OTEL__ENDPOINT`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtelSettings {
    /// The collector: `http(s)://host:4318` (`/v1/traces` is added) or the full traces URL.
    /// Shown with any password redacted. Headers for the collector (authentication) come from
    /// the standard `OTEL_EXPORTER_OTLP_HEADERS` variable.
    #[serde(serialize_with = "super::redact_endpoint")]
    pub endpoint: Option<String>,
    /// `service.name` of the spans.
    pub service_name: String,
    /// Share (0 to 1) of the traces started here that are recorded; a client's `traceparent`
    /// decides for its own trace.
    pub sampling_ratio: f64,
    /// Longest time one export may take, ms.
    pub timeout_ms: u64,
}

impl Default for OtelSettings {
    fn default() -> Self {
        Self {
            endpoint: None,
            service_name: "tollgate".into(),
            sampling_ratio: 1.0,
            timeout_ms: 10_000,
        }
    }
}

/// `[limits]`: where the counters of rate limits and budgets live, and how calls are estimated.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSettings {
    /// `redis://host:port[/db]` (also `TOLLGATE_REDIS_URL`): every counter lives in Redis and is
    /// shared by every instance using it. Without it counters live in the process and budgets are
    /// rebuilt from the store at start.
    #[serde(serialize_with = "super::redact")]
    pub redis_url: Option<SecretString>,
    /// When Redis cannot be reached: `fail_open` (count in the process meanwhile; health
    /// degraded) or `fail_closed` (refuse limited calls with 503 `limits_unavailable`).
    pub fail_mode: tollgate_limits::FailMode,
    /// IANA time zone in which daily, weekly and monthly budgets start (default `UTC`).
    pub time_zone: String,
    /// Prefix of every Redis key, so several deployments can share one Redis.
    pub namespace: String,
    /// Completion tokens reserved for a call that names no `max_tokens`.
    pub default_estimate_tokens: u64,
    /// How long an unsettled reservation lasts (a crashed call's never leaks), seconds.
    pub reservation_ttl_secs: u64,
    /// Longest Redis round trip before Redis counts as unreachable, ms.
    pub redis_timeout_ms: u64,
    /// With Redis, far from a limit's end an instance leases a block sized for this many calls
    /// and admits them with no round trip (0: every call is decided in Redis).
    pub redis_lease_calls: u32,
    /// Instances expected to share the Redis counters: blocks are leased only while more than
    /// 2 × block × this is left, so near the end every call is decided in Redis.
    pub redis_lease_instances: u32,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            fail_mode: tollgate_limits::FailMode::FailOpen,
            time_zone: "UTC".into(),
            namespace: "tollgate".into(),
            default_estimate_tokens: 1024,
            reservation_ttl_secs: 600,
            redis_timeout_ms: 250,
            redis_lease_calls: 64,
            redis_lease_instances: 4,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Retention of raw usage events and roll-ups.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Days raw events are kept.
    pub days: u32,
    /// How often the clean-up runs, e.g. `24h`.
    pub cleanup_interval: String,
    /// Most raw events kept (0: no limit).
    pub max_rows: u64,
    /// Days hourly roll-ups are kept.
    pub rollup_days: u32,
    /// How long the edge change feed (`/api/v1/edge/changes`) keeps a change, e.g. `7d`; an edge
    /// further behind takes a new snapshot.
    pub edge_changes: String,
}

impl Retention {
    /// How long the edge change feed keeps a change (validated at load; 7 days if it is not).
    pub fn edge_changes_retention(&self) -> Duration {
        tollgate_core::time::parse_duration(&self.edge_changes)
            .unwrap_or(Duration::from_secs(7 * 86_400))
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            days: 30,
            cleanup_interval: "24h".into(),
            max_rows: 0,
            rollup_days: 400,
            edge_changes: "7d".into(),
        }
    }
}

/// `[alerts]`: how often the alert rules run and how failed webhook deliveries are retried.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// Seconds between evaluations of the alert rules (expiring keys, route error rates,
    /// unreachable upstreams, degraded store or Redis, the spool); one instance evaluates at a
    /// time, judging routes by the calls it carried itself.
    pub evaluate_interval_secs: u64,
    /// Days before a key's expiry at which it is announced (each once).
    pub key_expiry_days: Vec<u32>,
    /// A route alerts when more than this percentage of its calls answer 5xx (the upstream's, or
    /// the gateway's 502/504) over `route_error_window_minutes`...
    pub route_error_rate_pct: f64,
    /// ...and it had at least this many calls in the window.
    pub route_error_min_calls: u64,
    /// The window route errors are counted over, minutes (1 to 15).
    pub route_error_window_minutes: u32,
    /// A route's upstream alerts once every call to it has failed to connect or timed out for
    /// this long, seconds.
    pub upstream_unreachable_secs: u64,
    /// Wait before the first retry of a failed delivery, ms; it doubles after each failure.
    pub retry_base_ms: u64,
    /// Longest wait between retries, seconds.
    pub retry_cap_secs: u64,
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            evaluate_interval_secs: 60,
            key_expiry_days: vec![7, 1],
            route_error_rate_pct: 10.0,
            route_error_min_calls: 20,
            route_error_window_minutes: 5,
            upstream_unreachable_secs: 60,
            retry_base_ms: 1_000,
            retry_cap_secs: 300,
            max_attempts: 6,
        }
    }
}

impl AlertSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=86_400).contains(&self.evaluate_interval_secs) {
            return Err(ConfigError(
                "alerts.evaluate_interval_secs must be 1 to 86400".into(),
            ));
        }
        if self.key_expiry_days.iter().any(|d| !(1..=365).contains(d)) {
            return Err(ConfigError(
                "alerts.key_expiry_days must each be 1 to 365".into(),
            ));
        }
        if !(self.route_error_rate_pct.is_finite()
            && (0.0..100.0).contains(&self.route_error_rate_pct))
        {
            return Err(ConfigError(
                "alerts.route_error_rate_pct must be at least 0 and below 100".into(),
            ));
        }
        if !(1..=1_000_000).contains(&self.route_error_min_calls) {
            return Err(ConfigError(
                "alerts.route_error_min_calls must be 1 to 1000000".into(),
            ));
        }
        let most = u32::try_from(tollgate_gateway::outcomes::WINDOW_MINUTES).unwrap_or(15);
        if !(1..=most).contains(&self.route_error_window_minutes) {
            return Err(ConfigError(format!(
                "alerts.route_error_window_minutes must be 1 to {most}"
            )));
        }
        if !(1..=86_400).contains(&self.upstream_unreachable_secs) {
            return Err(ConfigError(
                "alerts.upstream_unreachable_secs must be 1 to 86400".into(),
            ));
        }
        if !(1..=3_600_000).contains(&self.retry_base_ms) {
            return Err(ConfigError(
                "alerts.retry_base_ms must be 1 to 3600000".into(),
            ));
        }
        if !(1..=86_400).contains(&self.retry_cap_secs) {
            return Err(ConfigError(
                "alerts.retry_cap_secs must be 1 to 86400".into(),
            ));
        }
        if !(1..=20).contains(&self.max_attempts) {
            return Err(ConfigError("alerts.max_attempts must be 1 to 20".into()));
        }
        Ok(())
    }
}

/// Gateway limits and timings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySettings {
    /// Largest request body, bytes.
    pub max_body_bytes: u64,
    /// Largest LLM request body read for its `model`, bytes.
    pub llm_peek_bytes: usize,
    /// Largest total of request header bytes.
    pub max_header_bytes: usize,
    /// How often changes made elsewhere are picked up, ms.
    pub refresh_interval_ms: u64,
    /// Longest wait for in-flight calls at shutdown, seconds.
    pub drain_timeout_secs: u64,
    /// Longest wait for a connection's first byte and for a whole request head, seconds.
    pub header_read_timeout_secs: u64,
    /// A connection that moves no byte for this long is closed, seconds.
    pub idle_timeout_secs: u64,
    /// HTTP/2 keep-alive ping interval (and ping timeout), seconds.
    pub keepalive_ping_secs: u64,
    /// Most open client connections; more are accepted and closed at once. Lowered at start when
    /// the open-file limit cannot hold them.
    pub max_connections: usize,
    /// Longest time reading an LLM request body for its model may take, seconds (then 408).
    pub body_read_timeout_secs: u64,
    /// Most bytes all concurrent LLM-body reads may hold; past it bodies are forwarded unread.
    pub peek_budget_bytes: usize,
    /// Unknown-key look-ups allowed per client address per minute; past it 429 `rate_limited`.
    pub failed_key_lookups_per_minute: u32,
    /// `[gateway.tls]`: serve HTTPS with this certificate and key (PEM files).
    pub tls: Option<crate::tls::TlsFiles>,
    /// PEM file of certificates upstream TLS servers are also trusted to present (a private CA,
    /// a self-signed test upstream), besides the public web PKI. Read and checked at start.
    pub upstream_ca_file: Option<PathBuf>,
    /// Offer HTTP/2 (`h2` by ALPN) to TLS upstreams (default on). One connection carries up to
    /// 100 calls to an upstream that picks it; more calls at once open more connections.
    pub upstream_http2: bool,
    /// Most upstream attempts of one call on an `llm` route, over its pool and fallback models.
    pub llm_max_attempts: u32,
    /// Longest `Retry-After` waited out before trying a rate-limited target again when no other
    /// target is left, seconds; a longer one ends the call with the upstream's 429.
    pub llm_retry_after_cap_secs: u64,
    /// Consecutive failures (connect errors, 429, 5xx) that open a target's circuit.
    pub llm_circuit_failures: u32,
    /// How long an open circuit keeps a target out before one probe call, ms.
    pub llm_circuit_cooldown_ms: u64,
}

/// Console listener timings and connection cap.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleListenerSettings {
    /// Longest wait for a connection's first byte and for a whole request head, seconds.
    pub header_read_timeout_secs: u64,
    /// A connection that moves no byte for this long is closed, seconds.
    pub idle_timeout_secs: u64,
    /// HTTP/2 keep-alive ping interval (and ping timeout), seconds.
    pub keepalive_ping_secs: u64,
    /// Most open connections; more are accepted and closed at once.
    pub max_connections: usize,
    /// `[console.tls]`: serve HTTPS with this certificate and key (PEM files).
    pub tls: Option<crate::tls::TlsFiles>,
}

impl Default for ConsoleListenerSettings {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            keepalive_ping_secs: 30,
            max_connections: 1024,
            tls: None,
        }
    }
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 * 1024 * 1024,
            llm_peek_bytes: 4 * 1024 * 1024,
            max_header_bytes: 32 * 1024,
            refresh_interval_ms: 250,
            drain_timeout_secs: 30,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            keepalive_ping_secs: 30,
            max_connections: 10_000,
            body_read_timeout_secs: 30,
            peek_budget_bytes: 256 * 1024 * 1024,
            failed_key_lookups_per_minute: 60,
            tls: None,
            upstream_ca_file: None,
            upstream_http2: true,
            llm_max_attempts: 3,
            llm_retry_after_cap_secs: 5,
            llm_circuit_failures: 3,
            llm_circuit_cooldown_ms: 30_000,
        }
    }
}

/// Usage writer tuning.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WriterSettings {
    /// Events held in memory before the spool takes over.
    pub queue_capacity: usize,
    /// Most events per store transaction.
    pub batch_size: usize,
    /// Longest wait before a batch is written, ms.
    pub batch_interval_ms: u64,
}

impl Default for WriterSettings {
    fn default() -> Self {
        Self {
            queue_capacity: 65_536,
            batch_size: 1000,
            batch_interval_ms: 100,
        }
    }
}

/// When a usage event counts as kept (`[usage]`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageSettings {
    /// `memory` (default): events wait in memory for their batch, and a kill -9 loses at most
    /// `writer.queue_capacity` events plus the batch being written (`usage_events_in_memory`
    /// counts them). `spool`: every event is synced to the disk spool before its call's
    /// response ends, and a kill -9 loses none that a client saw complete.
    pub durability: UsageDurability,
}

/// `usage.durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageDurability {
    /// In-memory queue; the crash window is the queue plus the batch in flight.
    #[default]
    Memory,
    /// Spool-first: synced to disk before the response ends.
    Spool,
}
