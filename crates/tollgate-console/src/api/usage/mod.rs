//! Usage analytics over the hourly roll-ups (totals, percentiles, series, top-N, breakdowns), call
//! logs over raw events with cursor pagination, and streamed exports. Every answer is limited to
//! the teams the caller may see; unattributed usage is visible to instance admins only.

use serde::Deserialize;
use tollgate_core::Role;
use tollgate_core::time::{DAY_MS, HOUR_MS, now_ms};
use tollgate_store::RollupFilter;
use utoipa::{IntoParams, ToSchema};

use super::views::MAX_TIME_MS;
pub use super::vocabulary::ExportFormat;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

/// Longest range any usage query covers.
const MAX_RANGE_MS: i64 = 400 * DAY_MS;

/// The shared filters of a query that has its own extra parameters.
macro_rules! usage_filter {
    ($q:expr) => {
        UsageQuery {
            from: $q.from,
            to: $q.to,
            range: $q.range.clone(),
            team_id: $q.team_id,
            key_id: $q.key_id,
            route_id: $q.route_id,
            model: $q.model.clone(),
            status_class: $q.status_class,
        }
    };
}

mod export;
mod logs;
mod summary;

pub use export::*;
pub use logs::*;
pub use summary::*;

/// Filters shared by every usage endpoint.
#[derive(Debug, Clone, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Start, epoch ms (default: `to` minus `range`).
    pub from: Option<i64>,
    /// End (exclusive), epoch ms (default: now).
    pub to: Option<i64>,
    /// Length when `from` is not given: `24h` (default), `7d`, `30d`, …, at most `400d`.
    pub range: Option<String>,
    /// Only this team.
    pub team_id: Option<i64>,
    /// Only this key.
    pub key_id: Option<i64>,
    /// Only this route.
    pub route_id: Option<i64>,
    /// Only this model (empty for calls without one).
    pub model: Option<String>,
    /// Only this status class: 2, 3, 4 or 5.
    pub status_class: Option<i16>,
}

/// A resolved, checked time range and filter.
#[derive(Debug, Clone)]
pub struct Scope {
    /// Start, epoch ms.
    pub from_ms: i64,
    /// End, epoch ms.
    pub to_ms: i64,
    /// Roll-up filter (hour-aligned).
    pub rollups: RollupFilter,
}

impl UsageQuery {
    /// Checks the query against the caller's rights and resolves the range.
    pub fn scope(&self, caller: &Caller) -> ApiResult<Scope> {
        let now = now_ms();
        let to = self.to.unwrap_or(now);
        if !(0..MAX_TIME_MS).contains(&to) {
            return Err(ApiError::invalid("to", "`to` must be epoch ms before 9999"));
        }
        let from = match (self.from, &self.range) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "range",
                    "give `from` or `range`, not both",
                ));
            }
            (Some(from), None) => from,
            (None, range) => {
                let text = range.as_deref().unwrap_or("24h");
                let d = tollgate_core::time::parse_duration(text)
                    .map_err(|e| ApiError::invalid("range", e))?;
                let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                if ms > MAX_RANGE_MS {
                    return Err(ApiError::invalid("range", "`range` is at most 400d"));
                }
                to - ms
            }
        };
        if from < 0 || from >= to {
            return Err(ApiError::invalid("from", "`from` must be before `to`"));
        }
        if to - from > MAX_RANGE_MS {
            return Err(ApiError::invalid("from", "a range covers at most 400 days"));
        }
        if let Some(class) = self.status_class
            && ![0, 2, 3, 4, 5].contains(&class)
        {
            return Err(ApiError::invalid(
                "status_class",
                "status_class is 2, 3, 4 or 5",
            ));
        }
        if self.model.as_ref().is_some_and(|m| m.len() > 200) {
            return Err(ApiError::invalid(
                "model",
                "model is longer than 200 characters",
            ));
        }
        let team_ids = match self.team_id {
            Some(team) => {
                caller.require(team, Role::Viewer)?;
                Some(vec![team])
            }
            None => caller.visible_teams(),
        };
        Ok(Scope {
            from_ms: from,
            to_ms: to,
            rollups: RollupFilter {
                // Whole hours: the roll-ups' resolution.
                from_ms: from - from.rem_euclid(HOUR_MS),
                to_ms: to - to.rem_euclid(HOUR_MS)
                    + if to.rem_euclid(HOUR_MS) == 0 {
                        0
                    } else {
                        HOUR_MS
                    },
                team_ids,
                key_id: self.key_id,
                route_id: self.route_id,
                model: self.model.clone(),
                status_class: self.status_class,
            },
        })
    }
}
