//! The limit model: what a limit applies to, what it counts, and how it is enforced.
//!
//! Every rule about what makes a limit valid lives here, so the API, the CLI and the store share
//! it; each error names the field it is about.

use std::fmt;
use std::str::FromStr;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, ZonedDateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The largest `max` of a request-rate limit; each admitted request in the window is remembered.
pub const MAX_REQUESTS_PER_WINDOW: u64 = 1_000_000;
/// The largest token or micro-USD amount a limit may hold (counters are signed 64-bit, and
/// Redis scripts compute in doubles, exact up to 2^53).
pub const MAX_AMOUNT: u64 = 1 << 53;

/// A bad value in a limit or allow-list, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field, as it is spelled in the JSON document (`kind.max`, `alert_at`).
    pub field: String,
    /// What is wrong with it and what is expected.
    pub message: String,
}

impl FieldError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// What a limit applies to: the whole instance, one team, one key or one route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Scope {
    /// Every call through this instance (and, with Redis, through every instance).
    Instance,
    /// Calls made with any key of this team.
    Team(i64),
    /// Calls made with this key.
    Key(i64),
    /// Calls through this route.
    Route(i64),
}

impl Scope {
    /// The kind of scope, for metrics labels and messages: `instance`, `team`, `key`, `route`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Instance => "instance",
            Self::Team(_) => "team",
            Self::Key(_) => "key",
            Self::Route(_) => "route",
        }
    }

    fn validate(&self) -> Result<(), FieldError> {
        match self {
            Self::Instance => Ok(()),
            Self::Team(id) | Self::Key(id) | Self::Route(id) if *id > 0 => Ok(()),
            _ => Err(FieldError::new("scope.id", "must be a positive id")),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Instance => f.write_str("instance"),
            Self::Team(id) | Self::Key(id) | Self::Route(id) => {
                write!(f, "{} {id}", self.kind_name())
            }
        }
    }
}

/// The window of a request-rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// One second.
    Second,
    /// One minute.
    Minute,
    /// One hour.
    Hour,
}

impl Window {
    /// The window's length in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            Self::Second => 1_000,
            Self::Minute => 60_000,
            Self::Hour => 3_600_000,
        }
    }
}

impl FromStr for Window {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "second" | "s" | "1s" => Ok(Self::Second),
            "minute" | "m" | "1m" => Ok(Self::Minute),
            "hour" | "h" | "1h" => Ok(Self::Hour),
            other => Err(FieldError::new(
                "kind.per",
                format!("`{other}` is not a window; expected second, minute or hour"),
            )),
        }
    }
}

/// The period of a budget: a calendar day, week (from Monday), month, or all time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// From midnight to midnight in the configured time zone.
    Day,
    /// From Monday 00:00 to the next Monday 00:00 in the configured time zone.
    Week,
    /// From the first of the month 00:00 to the first of the next month.
    Month,
    /// Never resets.
    Total,
}

impl FromStr for Period {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            "total" => Ok(Self::Total),
            other => Err(FieldError::new(
                "kind.period",
                format!("`{other}` is not a period; expected day, week, month or total"),
            )),
        }
    }
}

/// Whether a limit refuses calls (hard) or only reports crossings (soft).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Refuse the call that would go over.
    #[default]
    Hard,
    /// Never refuse; report threshold crossings only.
    Soft,
}

impl FromStr for Enforcement {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hard" => Ok(Self::Hard),
            "soft" => Ok(Self::Soft),
            other => Err(FieldError::new(
                "enforcement",
                format!("`{other}` is not an enforcement; expected hard or soft"),
            )),
        }
    }
}

/// What a limit counts and its ceiling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LimitKind {
    /// At most `max` requests in any trailing window of length `per`.
    Requests {
        /// The window.
        per: Window,
        /// Requests allowed in the window.
        max: u64,
    },
    /// At most `max` tokens (prompt + completion) in any trailing minute; a call reserves its
    /// estimate when admitted and settles to its exact use when it ends.
    TokensPerMinute {
        /// Tokens allowed per minute.
        max: u64,
    },
    /// At most `max` calls in flight at once.
    Concurrency {
        /// Calls allowed in flight.
        max: u64,
    },
    /// At most `max` tokens (prompt + completion) per period.
    TokenBudget {
        /// Tokens allowed per period.
        max: u64,
        /// The period.
        period: Period,
    },
    /// At most `max_micro_usd` millionths of a US dollar of cost per period.
    CostBudget {
        /// Cost allowed per period, in micro-USD (1 USD = 1 000 000).
        max_micro_usd: i64,
        /// The period.
        period: Period,
    },
}

impl LimitKind {
    /// The kind's name: `requests`, `tokens_per_minute`, `concurrency`, `token_budget`, `cost_budget`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Requests { .. } => "requests",
            Self::TokensPerMinute { .. } => "tokens_per_minute",
            Self::Concurrency { .. } => "concurrency",
            Self::TokenBudget { .. } => "token_budget",
            Self::CostBudget { .. } => "cost_budget",
        }
    }

    /// The ceiling as a signed amount (requests, tokens, calls or micro-USD).
    pub fn max(&self) -> i64 {
        let max = match *self {
            Self::Requests { max, .. }
            | Self::TokensPerMinute { max }
            | Self::Concurrency { max }
            | Self::TokenBudget { max, .. } => max,
            Self::CostBudget { max_micro_usd, .. } => return max_micro_usd,
        };
        i64::try_from(max).unwrap_or(i64::MAX)
    }

    /// The budget period, for budgets.
    pub fn period(&self) -> Option<Period> {
        match *self {
            Self::TokenBudget { period, .. } | Self::CostBudget { period, .. } => Some(period),
            _ => None,
        }
    }

    /// Checks the ceiling: positive and within what the counters can hold.
    pub fn validate(&self) -> Result<(), FieldError> {
        match *self {
            Self::Requests { max, .. } => check_max("kind.max", max, MAX_REQUESTS_PER_WINDOW),
            Self::TokensPerMinute { max } | Self::TokenBudget { max, .. } => {
                check_max("kind.max", max, MAX_AMOUNT)
            }
            Self::Concurrency { max } => check_max("kind.max", max, MAX_REQUESTS_PER_WINDOW),
            Self::CostBudget { max_micro_usd, .. } => {
                if max_micro_usd <= 0 {
                    return Err(FieldError::new(
                        "kind.max_micro_usd",
                        "must be more than zero",
                    ));
                }
                check_max(
                    "kind.max_micro_usd",
                    max_micro_usd.unsigned_abs(),
                    MAX_AMOUNT,
                )
            }
        }
    }
}

fn check_max(field: &str, max: u64, ceiling: u64) -> Result<(), FieldError> {
    if max == 0 {
        return Err(FieldError::new(field, "must be at least 1"));
    }
    if max > ceiling {
        return Err(FieldError::new(field, format!("must be at most {ceiling}")));
    }
    Ok(())
}

/// The thresholds (percent of the limit) at which a crossing is reported when none are given.
pub fn default_alert_at() -> Vec<u16> {
    vec![80, 100]
}

/// One limit: its scope, what it counts, how it is enforced and when it alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// The limit's id in the store.
    pub id: i64,
    /// What the limit applies to.
    pub scope: Scope,
    /// What it counts and its ceiling.
    pub kind: LimitKind,
    /// Hard limits refuse; soft ones only report crossings.
    #[serde(default)]
    pub enforcement: Enforcement,
    /// Percent thresholds (1..=1000, sorted, no duplicates) at which a budget crossing is reported.
    #[serde(default = "default_alert_at")]
    pub alert_at: Vec<u16>,
    /// Whether token-counter readings (not gateway traffic) count towards this budget.
    #[serde(default)]
    pub include_reported: bool,
}

impl Limit {
    /// Checks every field and returns the limit with `alert_at` sorted and de-duplicated.
    pub fn validated(mut self) -> Result<Self, FieldError> {
        if self.id <= 0 {
            return Err(FieldError::new("id", "must be a positive id"));
        }
        self.scope.validate()?;
        self.kind.validate()?;
        if let Some(bad) = self.alert_at.iter().find(|p| !(1..=1000).contains(*p)) {
            return Err(FieldError::new(
                "alert_at",
                format!("{bad} is not a threshold; each must be a percentage from 1 to 1000"),
            ));
        }
        self.alert_at.sort_unstable();
        self.alert_at.dedup();
        if self.include_reported && self.kind.period().is_none() {
            return Err(FieldError::new(
                "include_reported",
                "applies to token and cost budgets only",
            ));
        }
        Ok(self)
    }

    /// Whether the limit refuses calls.
    pub fn is_hard(&self) -> bool {
        self.enforcement == Enforcement::Hard
    }
}

/// A limit as the store keeps it: everything but its id and scope, which the store has in columns.
/// Stored as JSON; unknown fields are refused so a typo never silently drops a setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitSpec {
    /// What it counts and its ceiling.
    pub kind: LimitKind,
    /// Hard limits refuse; soft ones only report crossings.
    #[serde(default)]
    pub enforcement: Enforcement,
    /// Percent thresholds at which a crossing is reported.
    #[serde(default = "default_alert_at")]
    pub alert_at: Vec<u16>,
    /// Whether token-counter readings count towards this budget.
    #[serde(default)]
    pub include_reported: bool,
    /// A marker for limits that another API owns, e.g. `quota` for the budgets behind
    /// `/api/v1/quotas`; none for limits made through `/api/v1/limits`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Limit {
    /// The stored part of this limit, as JSON.
    pub fn spec_json(&self, label: Option<&str>) -> String {
        let spec = LimitSpec {
            kind: self.kind,
            enforcement: self.enforcement,
            alert_at: self.alert_at.clone(),
            include_reported: self.include_reported,
            label: label.map(str::to_owned),
        };
        serde_json::to_string(&spec).unwrap_or_default()
    }

    /// A validated limit from its store row: id, scope, and the JSON written by [`Limit::spec_json`].
    /// Also returns the spec's label.
    pub fn from_record(
        id: i64,
        scope: Scope,
        spec: &str,
    ) -> Result<(Self, Option<String>), FieldError> {
        let spec: LimitSpec = serde_json::from_str(spec)
            .map_err(|e| FieldError::new("spec", format!("limit {id} is not readable: {e}")))?;
        let limit = Self {
            id,
            scope,
            kind: spec.kind,
            enforcement: spec.enforcement,
            alert_at: spec.alert_at,
            include_reported: spec.include_reported,
        }
        .validated()?;
        Ok((limit, spec.label))
    }
}

/// Parses an amount of US dollars (`12.5`, `0.000001`) into micro-USD without float rounding.
pub fn parse_usd(field: &str, text: &str) -> Result<i64, FieldError> {
    let t = text.trim().trim_start_matches('$');
    let bad = || {
        FieldError::new(
            field,
            format!("`{text}` is not an amount of US dollars like 12.50"),
        )
    };
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if frac.len() > 6 {
        return Err(FieldError::new(field, "has more than six decimal places"));
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac_micro: i64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
    let micro = whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac_micro))
        .ok_or_else(|| FieldError::new(field, "is too large"))?;
    if micro <= 0 {
        return Err(FieldError::new(field, "must be more than zero"));
    }
    Ok(micro)
}

/// Looks up an IANA time zone (`Europe/Paris`) in the bundled time zone database.
pub fn time_zone(field: &str, name: &str) -> Result<TimeZone, FieldError> {
    TimeZone::get(name.trim()).map_err(|e| {
        FieldError::new(
            field,
            format!("`{name}` is not an IANA time zone like Europe/Paris ({e})"),
        )
    })
}

/// The bounds of the period containing `now_ms` in `tz`: its start and, unless the period is
/// `Total` (which starts at the epoch), its end, both in epoch milliseconds.
pub fn period_bounds(period: Period, tz: &TimeZone, now_ms: i64) -> (i64, Option<i64>) {
    if period == Period::Total {
        return (0, None);
    }
    let Ok(ts) = Timestamp::from_millisecond(now_ms) else {
        return (0, None);
    };
    let now = ts.to_zoned_datetime(tz.clone());
    let Some(start) = calendar_start(period, &now) else {
        return (0, None);
    };
    let next = match period {
        Period::Day => start.checked_add(1.day()),
        Period::Week => start.checked_add(1.week()),
        Period::Month => start.checked_add(1.month()),
        Period::Total => return (0, None),
    };
    let end = next
        .ok()
        .and_then(|z| z.start_of_day().ok())
        .map(|z| z.timestamp().as_millisecond());
    (start.timestamp().as_millisecond(), end)
}

fn calendar_start(period: Period, now: &ZonedDateTime) -> Option<ZonedDateTime> {
    let day = now.start_of_day().ok()?;
    match period {
        Period::Day => Some(day),
        Period::Week => {
            let back = i64::from(now.weekday().to_monday_zero_offset());
            day.checked_sub(back.days()).ok()?.start_of_day().ok()
        }
        Period::Month => now.first_of_month().ok()?.start_of_day().ok(),
        Period::Total => None,
    }
}

/// A key's allow-list of models, as glob patterns (`gpt-4o*`, `claude-*`), matched without
/// regard to case.
#[derive(Clone)]
pub struct ModelAllowList {
    patterns: Vec<String>,
    set: GlobSet,
}

impl ModelAllowList {
    /// Builds the list from patterns; an empty or malformed pattern is an error naming `models`.
    pub fn new<I, S>(patterns: I) -> Result<Self, FieldError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut builder = GlobSetBuilder::new();
        let mut kept = Vec::new();
        for p in patterns {
            let p = p.as_ref().trim();
            if p.is_empty() {
                return Err(FieldError::new("models", "a pattern is empty"));
            }
            if p.len() > 200 {
                return Err(FieldError::new(
                    "models",
                    "a pattern is longer than 200 characters",
                ));
            }
            let glob = GlobBuilder::new(p)
                .case_insensitive(true)
                .literal_separator(false)
                .backslash_escape(true)
                .build()
                .map_err(|e| {
                    FieldError::new("models", format!("`{p}` is not a glob pattern ({e})"))
                })?;
            builder.add(glob);
            kept.push(p.to_owned());
        }
        if kept.is_empty() {
            return Err(FieldError::new(
                "models",
                "give at least one pattern, or no allow-list",
            ));
        }
        let set = builder
            .build()
            .map_err(|e| FieldError::new("models", format!("the patterns do not compile ({e})")))?;
        Ok(Self {
            patterns: kept,
            set,
        })
    }

    /// Parses a comma-separated list: `gpt-4o*,claude-*`.
    pub fn parse(list: &str) -> Result<Self, FieldError> {
        Self::new(list.split(','))
    }

    /// Whether a call for `model` may go through.
    pub fn allows(&self, model: &str) -> bool {
        self.set.is_match(model)
    }

    /// The patterns, as given (trimmed).
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

impl fmt::Debug for ModelAllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ModelAllowList")
            .field(&self.patterns)
            .finish()
    }
}

impl PartialEq for ModelAllowList {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl Serialize for ModelAllowList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.patterns.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ModelAllowList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let patterns = Vec::<String>::deserialize(d)?;
        Self::new(patterns).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for ModelAllowList {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <Vec<String> as utoipa::PartialSchema>::schema()
    }
}

impl ToSchema for ModelAllowList {}
