//! What an operator is told, and how it reads in a generic webhook and in Slack.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tollgate_core::time::format_ms;

/// The longest free text (an upstream error, a degradation detail) carried into a summary.
const MAX_DETAIL_CHARS: usize = 500;

/// The unit a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetUnit {
    /// Prompt plus completion tokens.
    Tokens,
    /// US dollars, from the price table.
    Usd,
}

/// A shared component whose trouble degrades every instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// The Redis that holds shared limit counters.
    Redis,
    /// The SQLite or PostgreSQL store.
    Store,
}

impl Component {
    /// Lower-case name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Store => "store",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Redis => "Redis",
            Self::Store => "The store",
        }
    }
}

/// Something an operator should hear about. Serialised as `{"kind": …, "details": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "details", rename_all = "snake_case")]
pub enum Alert {
    /// A budget's use reached one of its alert thresholds this period.
    BudgetCrossing {
        /// The limit's id.
        limit_id: i64,
        /// What the limit applies to, in words (`team ml`, `key 12 "ci"`, `instance`).
        scope: String,
        /// The threshold reached, in percent of `max` (from the limit's `alert_at`).
        threshold_pct: u16,
        /// Use so far this period.
        used: f64,
        /// The budget.
        max: f64,
        /// What `used` and `max` count.
        unit: BudgetUnit,
        /// Start of the budget period (0 for a budget over all time).
        period_start_ms: i64,
    },
    /// A key expires within `days` days.
    KeyExpiring {
        /// The key's id.
        key_id: i64,
        /// The key's name.
        name: String,
        /// When it expires.
        expires_at_ms: i64,
        /// The notice threshold crossed, in days.
        days: u32,
    },
    /// Too many of a route's calls failed over the last window.
    RouteErrorRate {
        /// The route's name.
        route: String,
        /// Failed calls in percent of all calls over the window.
        rate_pct: f64,
        /// Calls over the window.
        calls: u64,
        /// Failed calls over the window.
        errors: u64,
        /// The window's length in seconds.
        window_secs: u64,
        /// Start of the re-notification period: the same route alerts at most once per period.
        period_start_ms: i64,
    },
    /// A route's upstream cannot be reached.
    UpstreamUnreachable {
        /// The route's name.
        route: String,
        /// The last connection error.
        error: String,
        /// Since when.
        since_ms: i64,
        /// Start of the re-notification period.
        period_start_ms: i64,
    },
    /// Redis or the store is failing; the instance runs degraded.
    Degraded {
        /// Which one.
        component: Component,
        /// The last error, in words.
        detail: String,
        /// Since when.
        since_ms: i64,
        /// Start of the re-notification period.
        period_start_ms: i64,
    },
    /// Usage events wait in the spool and it has not drained.
    SpoolNotDraining {
        /// Bytes waiting.
        pending_bytes: u64,
        /// The last time the spool shrank or was empty.
        since_ms: i64,
        /// Start of the re-notification period.
        period_start_ms: i64,
    },
    /// An operator asked for a test delivery.
    Test {
        /// When the test was asked for.
        sent_at_ms: i64,
    },
}

/// The kind of an [`Alert`], without its details: what a channel subscribes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// [`Alert::BudgetCrossing`].
    BudgetCrossing,
    /// [`Alert::KeyExpiring`].
    KeyExpiring,
    /// [`Alert::RouteErrorRate`].
    RouteErrorRate,
    /// [`Alert::UpstreamUnreachable`].
    UpstreamUnreachable,
    /// [`Alert::Degraded`].
    Degraded,
    /// [`Alert::SpoolNotDraining`].
    SpoolNotDraining,
    /// [`Alert::Test`].
    Test,
}

impl AlertKind {
    /// The snake-case name used in JSON bodies and dedup keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BudgetCrossing => "budget_crossing",
            Self::KeyExpiring => "key_expiring",
            Self::RouteErrorRate => "route_error_rate",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::Degraded => "degraded",
            Self::SpoolNotDraining => "spool_not_draining",
            Self::Test => "test",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::BudgetCrossing => "Budget threshold reached",
            Self::KeyExpiring => "API key expiring",
            Self::RouteErrorRate => "Route error rate high",
            Self::UpstreamUnreachable => "Upstream unreachable",
            Self::Degraded => "tollgate degraded",
            Self::SpoolNotDraining => "Usage spool not draining",
            Self::Test => "Test alert",
        }
    }
}

fn clip(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(MAX_DETAIL_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

fn amount(value: f64, unit: BudgetUnit) -> String {
    match unit {
        BudgetUnit::Tokens => format!("{value:.0} tokens"),
        BudgetUnit::Usd => format!("${value:.2}"),
    }
}

/// Slack reads `&`, `<` and `>` as markup (`<!channel>` pings everyone); names come from users.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Alert {
    /// The kind, without details.
    pub fn kind(&self) -> AlertKind {
        match self {
            Self::BudgetCrossing { .. } => AlertKind::BudgetCrossing,
            Self::KeyExpiring { .. } => AlertKind::KeyExpiring,
            Self::RouteErrorRate { .. } => AlertKind::RouteErrorRate,
            Self::UpstreamUnreachable { .. } => AlertKind::UpstreamUnreachable,
            Self::Degraded { .. } => AlertKind::Degraded,
            Self::SpoolNotDraining { .. } => AlertKind::SpoolNotDraining,
            Self::Test { .. } => AlertKind::Test,
        }
    }

    /// The crossing this alert reports, the same on every instance that sees it: a ledger lets
    /// only the first claimer of a key deliver. Free text (route names) comes last so keys stay
    /// unambiguous.
    pub fn dedup_key(&self) -> String {
        match self {
            Self::BudgetCrossing {
                limit_id,
                threshold_pct,
                period_start_ms,
                ..
            } => format!("budget:{limit_id}:{period_start_ms}:{threshold_pct}"),
            Self::KeyExpiring {
                key_id,
                expires_at_ms,
                days,
                ..
            } => format!("key_expiring:{key_id}:{expires_at_ms}:{days}"),
            Self::RouteErrorRate {
                route,
                period_start_ms,
                ..
            } => format!("route_error_rate:{period_start_ms}:{route}"),
            Self::UpstreamUnreachable {
                route,
                period_start_ms,
                ..
            } => format!("upstream_unreachable:{period_start_ms}:{route}"),
            Self::Degraded {
                component,
                period_start_ms,
                ..
            } => format!("degraded:{}:{period_start_ms}", component.as_str()),
            Self::SpoolNotDraining {
                period_start_ms, ..
            } => format!("spool_not_draining:{period_start_ms}"),
            Self::Test { sent_at_ms } => format!("test:{sent_at_ms}"),
        }
    }

    /// One line a person reads first (plain text; names appear as given).
    pub fn summary(&self) -> String {
        match self {
            Self::BudgetCrossing {
                scope,
                threshold_pct,
                used,
                max,
                unit,
                period_start_ms,
                ..
            } => {
                let period = if *period_start_ms == 0 {
                    "in total".to_owned()
                } else {
                    format!("since {}", format_ms(*period_start_ms))
                };
                format!(
                    "Budget of {scope} reached {threshold_pct} %: {} of {} {period}",
                    amount(*used, *unit),
                    amount(*max, *unit)
                )
            }
            Self::KeyExpiring {
                key_id,
                name,
                expires_at_ms,
                days,
            } => format!(
                "Key \"{name}\" (id {key_id}) expires within {days} day{} (at {})",
                if *days == 1 { "" } else { "s" },
                format_ms(*expires_at_ms)
            ),
            Self::RouteErrorRate {
                route,
                rate_pct,
                calls,
                errors,
                window_secs,
                ..
            } => format!(
                "Route {route}: {rate_pct:.1} % of calls failed over the last {} ({errors} of {calls})",
                window_words(*window_secs)
            ),
            Self::UpstreamUnreachable {
                route,
                error,
                since_ms,
                ..
            } => format!(
                "The upstream of route {route} is unreachable since {}: {}",
                format_ms(*since_ms),
                clip(error)
            ),
            Self::Degraded {
                component,
                detail,
                since_ms,
                ..
            } => format!(
                "{} is degraded since {}: {}",
                component.title(),
                format_ms(*since_ms),
                clip(detail)
            ),
            Self::SpoolNotDraining {
                pending_bytes,
                since_ms,
                ..
            } => format!(
                "The usage spool has not drained since {}: {pending_bytes} bytes pending",
                format_ms(*since_ms)
            ),
            Self::Test { .. } => "Test alert from tollgate: this channel receives alerts".into(),
        }
    }

    /// The generic webhook body: `kind`, `summary`, `details`, `instance`, `at` (RFC 3339) and
    /// `dedup_key` (the same on every retry, for receivers that drop repeats).
    pub fn generic_body(&self, instance: &str, at_ms: i64) -> Vec<u8> {
        let tagged = serde_json::to_value(self).unwrap_or(Value::Null);
        let details = tagged.get("details").cloned().unwrap_or(Value::Null);
        let body = json!({
            "kind": self.kind().as_str(),
            "summary": self.summary(),
            "details": details,
            "instance": instance,
            "at": format_ms(at_ms),
            "dedup_key": self.dedup_key(),
        });
        body.to_string().into_bytes()
    }

    /// The Slack incoming-webhook body: `text` (the notification line) and `blocks`.
    pub fn slack_body(&self, instance: &str, at_ms: i64) -> Vec<u8> {
        let summary = slack_escape(&self.summary());
        let body = json!({
            "text": format!("{}: {summary}", self.kind().title()),
            "blocks": [
                {
                    "type": "header",
                    "text": {"type": "plain_text", "text": self.kind().title()}
                },
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": summary}
                },
                {
                    "type": "context",
                    "elements": [{
                        "type": "mrkdwn",
                        "text": format!("tollgate {} · {}", slack_escape(instance), format_ms(at_ms))
                    }]
                }
            ]
        });
        body.to_string().into_bytes()
    }
}

fn window_words(secs: u64) -> String {
    match secs {
        s if s % 60 == 0 && s >= 60 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> Alert {
        Alert::BudgetCrossing {
            limit_id: 4,
            scope: "team ml".into(),
            threshold_pct: 80,
            used: 81_000.0,
            max: 100_000.0,
            unit: BudgetUnit::Tokens,
            period_start_ms: 1_764_547_200_000,
        }
    }

    #[test]
    fn dedup_keys_name_the_crossing() {
        assert_eq!(budget().dedup_key(), "budget:4:1764547200000:80");
        let route = Alert::RouteErrorRate {
            route: "open:ai".into(),
            rate_pct: 50.0,
            calls: 10,
            errors: 5,
            window_secs: 300,
            period_start_ms: 3_600_000,
        };
        assert_eq!(route.dedup_key(), "route_error_rate:3600000:open:ai");
        let degraded = Alert::Degraded {
            component: Component::Redis,
            detail: "connection refused".into(),
            since_ms: 1,
            period_start_ms: 0,
        };
        assert_eq!(degraded.dedup_key(), "degraded:redis:0");
    }

    #[test]
    fn the_generic_body_has_the_documented_shape() {
        let body: Value = serde_json::from_slice(&budget().generic_body("gw-1", 0)).unwrap();
        assert_eq!(body["kind"], "budget_crossing");
        assert_eq!(body["instance"], "gw-1");
        assert_eq!(body["at"], "1970-01-01T00:00:00Z");
        assert_eq!(body["dedup_key"], "budget:4:1764547200000:80");
        assert_eq!(body["details"]["limit_id"], 4);
        assert_eq!(body["details"]["unit"], "tokens");
        let summary = body["summary"].as_str().unwrap();
        assert_eq!(
            summary,
            "Budget of team ml reached 80 %: 81000 tokens of 100000 tokens since 2025-12-01T00:00:00Z"
        );
        // The tagged form round-trips, so a stored alert can be sent again.
        let round: Alert = serde_json::from_value(json!({
            "kind": body["kind"], "details": body["details"]
        }))
        .unwrap();
        assert_eq!(round, budget());
    }

    #[test]
    fn slack_bodies_escape_user_text() {
        let alert = Alert::UpstreamUnreachable {
            route: "<!channel> & co".into(),
            error: "x".repeat(600),
            since_ms: 0,
            period_start_ms: 0,
        };
        let body: Value = serde_json::from_slice(&alert.slack_body("a<b", 0)).unwrap();
        let text = body["text"].as_str().unwrap();
        assert!(text.starts_with("Upstream unreachable: "), "{text}");
        assert!(text.contains("&lt;!channel&gt; &amp; co"), "{text}");
        assert!(!text.contains("<!channel>"));
        assert!(text.ends_with('…') && text.len() < 700, "{text}");
        assert_eq!(body["blocks"][0]["type"], "header");
        assert_eq!(body["blocks"][1]["text"]["type"], "mrkdwn");
        assert_eq!(
            body["blocks"][2]["elements"][0]["text"],
            "tollgate a&lt;b · 1970-01-01T00:00:00Z"
        );
    }

    #[test]
    fn usd_budgets_read_as_money() {
        let alert = Alert::BudgetCrossing {
            limit_id: 1,
            scope: "instance".into(),
            threshold_pct: 100,
            used: 100.5,
            max: 100.0,
            unit: BudgetUnit::Usd,
            period_start_ms: 0,
        };
        assert_eq!(
            alert.summary(),
            "Budget of instance reached 100 %: $100.50 of $100.00 in total"
        );
    }
}
