//! Configuration: built-in defaults → `tollgate.toml` → `TOLLGATE_*` environment → flags.
//! Unknown keys are errors; secrets are wrapped so `Debug` prints `[REDACTED]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tollgate_core::crypto::MasterKey;
use tollgate_core::net::TrustedProxies;
use tollgate_core::pricing::PriceTable;
use tollgate_core::upstream::UpstreamAllowlist;

mod sections;

pub use sections::*;

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Folder for the SQLite file and the usage spool.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default `sqlite://<data_dir>/tollgate.db`. Shown with its
    /// password redacted.
    pub database_url: Option<DatabaseUrl>,
    /// Gateway (data plane) listener.
    pub gateway_listen: SocketAddr,
    /// Console (control plane) listener.
    pub console_listen: SocketAddr,
    /// Encrypts revealable key copies and upstream credentials; at least 32 characters.
    #[serde(serialize_with = "redact")]
    pub master_key: Option<SecretString>,
    /// Authenticates usage ingest (HMAC secret or bearer token).
    #[serde(serialize_with = "redact")]
    pub ingest_secret: Option<SecretString>,
    /// Accept usage ingest without credentials (off unless set explicitly).
    pub ingest_allow_unauthenticated: bool,
    /// First admin's e-mail, created on first start.
    pub admin_email: Option<String>,
    /// First admin's password.
    #[serde(serialize_with = "redact")]
    pub admin_password: Option<SecretString>,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `tollgate=debug`.
    pub log_level: String,
    /// Raw usage retention.
    pub retention: Retention,
    /// Alert evaluation and delivery (`[alerts]`).
    pub alerts: AlertSettings,
    /// Gateway limits and timings.
    pub gateway: GatewaySettings,
    /// Console listener timings and connection cap.
    pub console: ConsoleListenerSettings,
    /// Usage writer tuning.
    pub writer: WriterSettings,
    /// When a usage event counts as kept.
    pub usage: UsageSettings,
    /// Model → price per million tokens.
    pub prices: PriceTable,
    /// Peers (addresses or CIDR ranges) whose `X-Forwarded-For` is believed, on both listeners.
    pub trusted_proxies: Vec<String>,
    /// Loopback, private and link-local upstream hosts (names, `*.domain`, addresses or CIDR
    /// ranges) that team admins may route to; instance admins may route anywhere.
    pub upstream_allowlist: Vec<String>,
    /// Where limit counters live and how budgets are counted (`[limits]`).
    pub limits: LimitsSettings,
    /// The usage series of `/metrics` and their cardinality caps (`[metrics]`).
    pub metrics: MetricsConfig,
    /// OpenTelemetry traces of gateway calls over OTLP/HTTP (`[otel]`); off by default.
    pub otel: OtelSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./tollgate-data"),
            database_url: None,
            gateway_listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            console_listen: SocketAddr::from(([127, 0, 0, 1], 8317)),
            master_key: None,
            ingest_secret: None,
            ingest_allow_unauthenticated: false,
            admin_email: None,
            admin_password: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            retention: Retention::default(),
            alerts: AlertSettings::default(),
            gateway: GatewaySettings::default(),
            console: ConsoleListenerSettings::default(),
            writer: WriterSettings::default(),
            usage: UsageSettings::default(),
            prices: PriceTable::default(),
            trusted_proxies: Vec::new(),
            upstream_allowlist: Vec::new(),
            limits: LimitsSettings::default(),
            metrics: MetricsConfig::default(),
            otel: OtelSettings::default(),
        }
    }
}

fn redact_endpoint<S: serde::Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(url) => s.serialize_some(&redact_url(url)),
        None => s.serialize_none(),
    }
}

fn redact<S: serde::Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_some(REDACTED),
        None => s.serialize_none(),
    }
}

/// Values given as flags; `None` leaves the lower layers in force.
#[derive(Debug, Default, Serialize)]
pub struct FlagOverrides {
    /// `--data-dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--database-url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// `--gateway-listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_listen: Option<SocketAddr>,
    /// `--console-listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_listen: Option<SocketAddr>,
}

/// A configuration problem, in one line.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads every layer. `file` is `--config`; without it `./tollgate.toml` is read when present.
    pub fn load(file: Option<&Path>, flags: FlagOverrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None if Path::new("tollgate.toml").is_file() => {
                figment = figment.merge(Toml::file_exact("tollgate.toml"))
            }
            None => {}
        }
        let env = Env::prefixed("TOLLGATE_")
            // Variables read by tests and tools, not configuration: `TOLLGATE_CONSOLE` is where
            // the web console's dev server (`npm run dev`) sends its API calls,
            // `TOLLGATE_SERVER` / `TOLLGATE_TOKEN` send CLI commands to a running console, and
            // `TOLLGATE_REDIS_URL` is `limits.redis_url`, below. `TOLLGATE_CONSOLE__…` still sets
            // the `[console]` section.
            .filter(|k| {
                !k.as_str().to_ascii_lowercase().starts_with("test_")
                    && !k.as_str().eq_ignore_ascii_case("config")
                    && !k.as_str().eq_ignore_ascii_case("console")
                    && !k.as_str().eq_ignore_ascii_case("redis_url")
                    && !k.as_str().eq_ignore_ascii_case("server")
                    && !k.as_str().eq_ignore_ascii_case("token")
            })
            .split("__");
        let redis_env = Env::raw()
            .only(&["TOLLGATE_REDIS_URL"])
            .map(|_| "limits.redis_url".into());
        let config: Config = figment
            .merge(platform_layer()?)
            .merge(env)
            .merge(redis_env)
            .merge(Serialized::defaults(flags))
            .extract()
            .map_err(|e| ConfigError(one_line(&e.to_string())))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = self.database_url.as_ref().map(DatabaseUrl::expose)
            && !["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
        {
            return Err(ConfigError(format!(
                "database_url (TOLLGATE_DATABASE_URL, or DATABASE_URL) `{}` must start with \
                 sqlite:// or postgres://",
                redact_url(url)
            )));
        }
        if let Some(key) = &self.master_key {
            MasterKey::new(key.expose_secret())
                .map_err(|e| ConfigError(format!("master_key: {e}")))?;
        }
        if let Some(secret) = &self.ingest_secret
            && secret.expose_secret().len() < 16
        {
            return Err(ConfigError(
                "ingest_secret must be at least 16 characters".into(),
            ));
        }
        if self.admin_email.is_some() != self.admin_password.is_some() {
            return Err(ConfigError(
                "admin_email and admin_password must be set together".into(),
            ));
        }
        if self.retention.days == 0 {
            return Err(ConfigError("retention.days must be at least 1".into()));
        }
        self.alerts.validate()?;
        let interval = tollgate_core::time::parse_duration(&self.retention.cleanup_interval)
            .map_err(|e| ConfigError(format!("retention.cleanup_interval: {e}")))?;
        if interval < Duration::from_secs(1) {
            return Err(ConfigError(
                "retention.cleanup_interval must be at least 1s".into(),
            ));
        }
        let edge_changes = tollgate_core::time::parse_duration(&self.retention.edge_changes)
            .map_err(|e| ConfigError(format!("retention.edge_changes: {e}")))?;
        if edge_changes < Duration::from_secs(1) {
            return Err(ConfigError(
                "retention.edge_changes must be at least 1s".into(),
            ));
        }
        if self.retention.days > 36_500 || self.retention.rollup_days > 36_500 {
            return Err(ConfigError(
                "retention.days and retention.rollup_days must be at most 36500".into(),
            ));
        }
        if self.retention.rollup_days < self.retention.days {
            return Err(ConfigError(format!(
                "retention.rollup_days ({}) must be at least retention.days ({}): roll-ups outlive raw events",
                self.retention.rollup_days, self.retention.days
            )));
        }
        if self.writer.queue_capacity == 0 || self.writer.batch_size == 0 {
            return Err(ConfigError(
                "writer.queue_capacity and writer.batch_size must be at least 1".into(),
            ));
        }
        if self.gateway.refresh_interval_ms == 0 || self.gateway.refresh_interval_ms > 1000 {
            return Err(ConfigError(
                "gateway.refresh_interval_ms must be 1 to 1000 (changes must show within a second)"
                    .into(),
            ));
        }
        self.validate_listeners()?;
        self.validate_limits()?;
        self.validate_telemetry()?;
        self.prices.validate().map_err(ConfigError)?;
        TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| ConfigError(format!("trusted_proxies: {e}")))?;
        UpstreamAllowlist::parse(&self.upstream_allowlist)
            .map_err(|e| ConfigError(format!("upstream_allowlist: {e}")))?;
        Ok(())
    }

    fn validate_listeners(&self) -> Result<(), ConfigError> {
        let g = &self.gateway;
        let c = &self.console;
        for (name, secs) in [
            (
                "gateway.header_read_timeout_secs",
                g.header_read_timeout_secs,
            ),
            ("gateway.idle_timeout_secs", g.idle_timeout_secs),
            ("gateway.keepalive_ping_secs", g.keepalive_ping_secs),
            ("gateway.body_read_timeout_secs", g.body_read_timeout_secs),
            (
                "console.header_read_timeout_secs",
                c.header_read_timeout_secs,
            ),
            ("console.idle_timeout_secs", c.idle_timeout_secs),
            ("console.keepalive_ping_secs", c.keepalive_ping_secs),
        ] {
            if !(1..=3600).contains(&secs) {
                return Err(ConfigError(format!(
                    "{name} must be 1 to 3600 seconds (got {secs})"
                )));
            }
        }
        for (name, max) in [
            ("gateway.max_connections", g.max_connections),
            ("console.max_connections", c.max_connections),
        ] {
            if !(1..=1_000_000).contains(&max) {
                return Err(ConfigError(format!(
                    "{name} must be 1 to 1000000 (got {max})"
                )));
            }
        }
        for (name, value, min, max) in [
            (
                "gateway.llm_max_attempts",
                u64::from(g.llm_max_attempts),
                1,
                10,
            ),
            (
                "gateway.llm_retry_after_cap_secs",
                g.llm_retry_after_cap_secs,
                0,
                60,
            ),
            (
                "gateway.llm_circuit_failures",
                u64::from(g.llm_circuit_failures),
                1,
                100,
            ),
            (
                "gateway.llm_circuit_cooldown_ms",
                g.llm_circuit_cooldown_ms,
                1,
                3_600_000,
            ),
        ] {
            if !(min..=max).contains(&value) {
                return Err(ConfigError(format!(
                    "{name} must be {min} to {max} (got {value})"
                )));
            }
        }
        if g.peek_budget_bytes < g.llm_peek_bytes {
            return Err(ConfigError(format!(
                "gateway.peek_budget_bytes ({}) must be at least gateway.llm_peek_bytes ({}): \
                 one body must fit",
                g.peek_budget_bytes, g.llm_peek_bytes
            )));
        }
        if g.failed_key_lookups_per_minute == 0 {
            return Err(ConfigError(
                "gateway.failed_key_lookups_per_minute must be at least 1".into(),
            ));
        }
        if let Some(path) = &g.upstream_ca_file {
            tollgate_gateway::read_upstream_ca(path)
                .map_err(|e| ConfigError(format!("gateway.upstream_ca_file: {e}")))?;
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        tollgate_limits::time_zone("limits.time_zone", &l.time_zone)
            .map_err(|e| ConfigError(format!("limits.time_zone: {}", e.message)))?;
        if let Some(url) = &l.redis_url {
            let url = url.expose_secret();
            if !["redis://", "rediss://", "redis+unix://", "unix://"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
            {
                return Err(ConfigError(format!(
                    "limits.redis_url (TOLLGATE_REDIS_URL) `{}` must start with redis:// or rediss://",
                    redact_url(url)
                )));
            }
        }
        let ns = &l.namespace;
        if ns.is_empty()
            || ns.len() > 64
            || !ns
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            return Err(ConfigError(
                "limits.namespace must be 1 to 64 letters, digits, `-`, `_`, `.` or `:`".into(),
            ));
        }
        if !(1..=10_000_000).contains(&l.default_estimate_tokens) {
            return Err(ConfigError(
                "limits.default_estimate_tokens must be 1 to 10000000".into(),
            ));
        }
        if !(1..=86_400).contains(&l.reservation_ttl_secs) {
            return Err(ConfigError(
                "limits.reservation_ttl_secs must be 1 to 86400 seconds".into(),
            ));
        }
        if !(1..=10_000).contains(&l.redis_timeout_ms) {
            return Err(ConfigError(
                "limits.redis_timeout_ms must be 1 to 10000".into(),
            ));
        }
        if l.redis_lease_calls > 10_000 {
            return Err(ConfigError(
                "limits.redis_lease_calls must be 0 (no leases) to 10000".into(),
            ));
        }
        if !(1..=1_000).contains(&l.redis_lease_instances) {
            return Err(ConfigError(
                "limits.redis_lease_instances must be 1 to 1000".into(),
            ));
        }
        Ok(())
    }

    fn validate_telemetry(&self) -> Result<(), ConfigError> {
        let m = &self.metrics;
        for (name, value) in [
            ("metrics.max_routes", m.max_routes),
            ("metrics.max_models", m.max_models),
            ("metrics.max_teams", m.max_teams),
            ("metrics.max_keys", m.max_keys),
        ] {
            if !(1..=100_000).contains(&value) {
                return Err(ConfigError(format!(
                    "{name} must be 1 to 100000 (got {value})"
                )));
            }
        }
        let o = &self.otel;
        if let Some(endpoint) = &o.endpoint {
            otel_endpoint(endpoint)?;
        }
        if !(o.sampling_ratio.is_finite() && (0.0..=1.0).contains(&o.sampling_ratio)) {
            return Err(ConfigError(format!(
                "otel.sampling_ratio must be 0 to 1 (got {})",
                o.sampling_ratio
            )));
        }
        if o.service_name.trim().is_empty() || o.service_name.len() > 255 {
            return Err(ConfigError(
                "otel.service_name must be 1 to 255 characters".into(),
            ));
        }
        if !(1..=60_000).contains(&o.timeout_ms) {
            return Err(ConfigError(format!(
                "otel.timeout_ms must be 1 to 60000 (got {})",
                o.timeout_ms
            )));
        }
        Ok(())
    }

    /// The caps of the usage series.
    pub fn metrics_settings(&self) -> tollgate_gateway::usage_series::MetricsSettings {
        let m = &self.metrics;
        tollgate_gateway::usage_series::MetricsSettings {
            max_routes: m.max_routes,
            max_models: m.max_models,
            max_teams: m.max_teams,
            per_key: m.per_key,
            max_keys: m.max_keys,
        }
    }

    /// The trace exporter's settings, when `[otel]` has an endpoint (validated at load).
    pub fn otel(&self) -> Option<tollgate_gateway::otel::OtelConfig> {
        let o = &self.otel;
        let endpoint = otel_endpoint(o.endpoint.as_deref()?).ok()?;
        Some(tollgate_gateway::otel::OtelConfig {
            endpoint,
            service_name: o.service_name.clone(),
            sampling_ratio: o.sampling_ratio,
            timeout: Duration::from_millis(o.timeout_ms),
        })
    }

    /// The store URL in force.
    pub fn store_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("tollgate.db").display()),
        }
    }

    /// The master key, when configured (validated at load).
    pub fn master_key(&self) -> Option<MasterKey> {
        self.master_key
            .as_ref()
            .and_then(|k| MasterKey::new(k.expose_secret()).ok())
    }

    /// The proxies whose `X-Forwarded-For` is believed (validated at load).
    pub fn trusted_proxies(&self) -> TrustedProxies {
        TrustedProxies::parse(&self.trusted_proxies).unwrap_or_default()
    }

    /// The upstream allow-list in force (validated at load).
    pub fn upstream_allowlist(&self) -> UpstreamAllowlist {
        UpstreamAllowlist::parse(&self.upstream_allowlist).unwrap_or_default()
    }

    /// The usage spool folder.
    pub fn spool_dir(&self) -> PathBuf {
        self.data_dir.join("spool")
    }

    /// How often the retention clean-up runs (validated at load).
    pub fn cleanup_interval(&self) -> Duration {
        tollgate_core::time::parse_duration(&self.retention.cleanup_interval)
            .unwrap_or(Duration::from_secs(86_400))
    }

    /// The writer's durability mode.
    pub fn durability(&self) -> tollgate_gateway::writer::Durability {
        match self.usage.durability {
            UsageDurability::Memory => tollgate_gateway::writer::Durability::Memory,
            UsageDurability::Spool => tollgate_gateway::writer::Durability::Spool,
        }
    }

    /// The batch interval as a duration.
    pub fn batch_interval(&self) -> Duration {
        Duration::from_millis(self.writer.batch_interval_ms.max(1))
    }
}

/// The OTLP/HTTP traces URL of `otel.endpoint`: an `http(s)://` URL, `/v1/traces` added when it
/// names no path (as `OTEL_EXPORTER_OTLP_ENDPOINT` is read).
fn otel_endpoint(endpoint: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| {
        ConfigError(format!(
            "otel.endpoint (TOLLGATE_OTEL__ENDPOINT) `{}` {why}",
            redact_url(endpoint)
        ))
    };
    let uri: http::Uri = endpoint.parse().map_err(|_| bad("is not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("names no host"));
    }
    if uri.query().is_some() {
        return Err(bad("must not have a query string"));
    }
    let path = uri.path();
    if path.is_empty() || path == "/" {
        Ok(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
    } else {
        Ok(endpoint.to_owned())
    }
}

/// What a secret is replaced with wherever configuration is shown.
/// What a secret prints as.
pub const REDACTED: &str = "[redacted]";

/// Replaces the password of a URL (in its user info and in any `password`-like query parameter)
/// with `[redacted]`, for messages and `tollgate config`.
///
/// Errs on the side of hiding: everything before the last `@` is user info, so a password holding
/// a raw `/` or `@` is hidden too.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{REDACTED}@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => rest.to_owned(),
    };
    let rest = match rest.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((name, _)) if name.to_ascii_lowercase().contains("pass") => {
                        format!("{name}={REDACTED}")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => rest,
    };
    format!("{scheme}://{rest}")
}

/// A store URL. `Debug` and `Serialize` (what `tollgate config` prints) show it with its password
/// redacted; [`DatabaseUrl::expose`] gives the real one to the store.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL with its password, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&redact_url(&self.0))
    }
}

/// What hosting platforms (Railway, Heroku, Render, Fly, Cloud Run…) inject, read below the
/// `TOLLGATE_*` variables and above the file: `DATABASE_URL` is the store, and `PORT` the one port
/// the platform exposes, given to the console listener on every interface (the console serves
/// the web UI, the REST API and `/health` that the platform's health check calls). The gateway
/// stays on `gateway_listen`; to expose it instead, set `TOLLGATE_GATEWAY_LISTEN=0.0.0.0:$PORT`.
fn platform_layer() -> Result<Figment, ConfigError> {
    let mut layer = Figment::new();
    if let Some(url) = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    {
        layer = layer.merge(Serialized::default("database_url", url));
    }
    if let Some(port) = std::env::var("PORT").ok().filter(|p| !p.trim().is_empty()) {
        let port: u16 = port
            .trim()
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                ConfigError(format!("PORT `{port}` is not a port number (1 to 65535)"))
            })?;
        layer = layer.merge(Serialized::default(
            "console_listen",
            SocketAddr::from(([0, 0, 0, 0], port)).to_string(),
        ));
    }
    Ok(layer)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_settings_are_checked() {
        let mut config = Config::default();
        assert!(config.validate().is_ok());
        config.gateway.header_read_timeout_secs = 0;
        let err = config
            .validate()
            .map(|()| String::new())
            .unwrap_or_else(|e| e.to_string());
        assert!(err.contains("gateway.header_read_timeout_secs"), "{err}");
        let mut config = Config::default();
        config.console.max_connections = 0;
        let err = config
            .validate()
            .map(|()| String::new())
            .unwrap_or_else(|e| e.to_string());
        assert!(err.contains("console.max_connections"), "{err}");
        let mut config = Config::default();
        config.gateway.peek_budget_bytes = 1024;
        let err = config
            .validate()
            .map(|()| String::new())
            .unwrap_or_else(|e| e.to_string());
        assert!(err.contains("peek_budget_bytes"), "{err}");
        let mut config = Config::default();
        config.gateway.failed_key_lookups_per_minute = 0;
        assert!(config.validate().is_err());
    }

    #[test]
    fn limit_settings_are_checked() {
        let err_of = |config: &Config| {
            config
                .validate()
                .map(|()| String::new())
                .unwrap_or_else(|e| e.to_string())
        };
        let mut config = Config::default();
        config.limits.time_zone = "Mars/Olympus".into();
        assert!(err_of(&config).contains("limits.time_zone"));
        let mut config = Config::default();
        config.limits.time_zone = "Europe/Paris".into();
        assert_eq!(err_of(&config), "");
        let mut config = Config::default();
        config.limits.redis_url = Some(SecretString::from("http://u:pw@127.0.0.1:6379"));
        let err = err_of(&config);
        assert!(
            err.contains("limits.redis_url") && !err.contains("pw@"),
            "{err}"
        );
        let mut config = Config::default();
        config.limits.namespace = "a b".into();
        assert!(err_of(&config).contains("limits.namespace"));
        let mut config = Config::default();
        config.limits.redis_lease_calls = 10_001;
        assert!(err_of(&config).contains("limits.redis_lease_calls"));
        let mut config = Config::default();
        config.limits.redis_lease_instances = 0;
        assert!(err_of(&config).contains("limits.redis_lease_instances"));
        let mut config = Config::default();
        config.limits.default_estimate_tokens = 0;
        assert!(err_of(&config).contains("limits.default_estimate_tokens"));
        let mut config = Config::default();
        config.limits.reservation_ttl_secs = 0;
        assert!(err_of(&config).contains("limits.reservation_ttl_secs"));
    }

    #[test]
    fn telemetry_settings_are_checked() {
        let err_of = |config: &Config| {
            config
                .validate()
                .map(|()| String::new())
                .unwrap_or_else(|e| e.to_string())
        };
        let mut config = Config::default();
        assert!(config.otel().is_none(), "traces are off by default");
        assert!(
            !config.metrics_settings().per_key,
            "per-key series are opt-in"
        );
        config.metrics.max_models = 0;
        assert!(err_of(&config).contains("metrics.max_models"));
        let mut config = Config::default();
        config.otel.endpoint = Some("ftp://collector:4318".into());
        assert!(err_of(&config).contains("otel.endpoint"));
        config.otel.endpoint = Some("http://u:pw@collector:4318/?a=b".into());
        let err = err_of(&config);
        assert!(
            err.contains("otel.endpoint") && !err.contains("pw@"),
            "{err}"
        );
        config.otel.endpoint = Some("http://collector:4318".into());
        assert_eq!(err_of(&config), "");
        assert_eq!(
            config.otel().map(|o| o.endpoint),
            Some("http://collector:4318/v1/traces".into())
        );
        config.otel.endpoint = Some("https://collector/otlp/v1/traces".into());
        assert_eq!(
            config.otel().map(|o| o.endpoint),
            Some("https://collector/otlp/v1/traces".into())
        );
        config.otel.sampling_ratio = 1.5;
        assert!(err_of(&config).contains("otel.sampling_ratio"));
        config.otel.sampling_ratio = f64::NAN;
        assert!(err_of(&config).contains("otel.sampling_ratio"));
        config.otel.sampling_ratio = 0.25;
        config.otel.service_name = " ".into();
        assert!(err_of(&config).contains("otel.service_name"));
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:[redacted]@h:5432/db"
        );
        assert_eq!(
            redact_url("postgres://u:se/cr@t@h/db?sslmode=require&password=x&sslpassword=y"),
            "postgres://u:[redacted]@h/db?sslmode=require&password=[redacted]&sslpassword=[redacted]"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://./x.db"), "sqlite://./x.db");
    }

    #[test]
    fn debug_and_serialized_config_hide_secrets() {
        let config = Config {
            master_key: Some(SecretString::from("m".repeat(40))),
            admin_password: Some(SecretString::from("hunter2hunter2")),
            ingest_secret: Some(SecretString::from("iiiiiiiiiiiiiiiiiiii")),
            database_url: Some(DatabaseUrl("postgres://u:dbpass@h/db".into())),
            limits: LimitsSettings {
                redis_url: Some(SecretString::from("redis://:redispass@h:6379")),
                ..LimitsSettings::default()
            },
            ..Config::default()
        };
        let debug = format!("{config:?}");
        let toml = serde_json::to_string(&config).unwrap_or_default();
        for shown in [debug, toml] {
            assert!(
                !shown.contains("mmmmmmmm")
                    && !shown.contains("hunter2")
                    && !shown.contains("iiiiiiii")
                    && !shown.contains("dbpass")
                    && !shown.contains("redispass"),
                "{shown}"
            );
        }
    }
}
