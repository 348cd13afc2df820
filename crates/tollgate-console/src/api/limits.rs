//! Limits and budgets over the API: list (with current use when this process runs the limiter),
//! create, change, remove. Each handler parses, calls `rules::limits` and maps the answer; a
//! change reaches this instance's limiter at once and the others through the store revision.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tollgate_core::time::now_ms;
use tollgate_limits::{Enforcement, LimitKind, LimitUsage, Scope, period_bounds};
use utoipa::{IntoParams, ToSchema};

use crate::ConsoleState;
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::rules::Actor;
use crate::rules::limits::{self, LimitChange, LimitDraft, LimitEntry, LimitFilter};

/// Filters of the limit list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LimitListQuery {
    /// Only limits of this kind of scope: `instance`, `team`, `key` or `route`.
    pub scope: Option<String>,
    /// Only limits of this team, key or route id.
    pub id: Option<i64>,
}

/// A limit's current use.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LimitUsageView {
    /// Requests in the window, tokens in the minute, calls in flight, or settled budget use.
    pub used: i64,
    /// Reserved by calls in flight.
    pub reserved: i64,
    /// The ceiling.
    pub max: i64,
    /// What is left (never below zero).
    pub remaining: i64,
    /// `used / max × 100`, two decimals (above 100 when overrun).
    pub percent: f64,
    /// When the use next goes down, epoch ms; null when nothing is counted or the budget is total.
    pub reset_at: Option<i64>,
    /// Start of the budget's current period, epoch ms; null for rate and concurrency limits.
    pub period_start: Option<i64>,
}

/// A limit as the console shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LimitView {
    /// Id.
    pub id: i64,
    /// What it applies to.
    pub scope: Scope,
    /// The name of the team, key or route; `instance` for the instance.
    pub scope_name: String,
    /// What it counts and its ceiling.
    pub kind: LimitKind,
    /// Hard limits refuse; soft ones only alert.
    pub enforcement: Enforcement,
    /// Percent thresholds at which a crossing alerts.
    pub alert_at: Vec<u16>,
    /// Whether token-counter readings count towards this budget.
    pub include_reported: bool,
    /// Who made it.
    pub created_by: String,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Current use; null when this process runs no limiter.
    pub usage: Option<LimitUsageView>,
}

/// All limits the caller may see.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LimitList {
    /// The limits, by id.
    pub limits: Vec<LimitView>,
}

/// A new limit.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitCreate {
    /// What it applies to.
    pub scope: Scope,
    /// What it counts and its ceiling.
    pub kind: LimitKind,
    /// `hard` (default) or `soft`.
    pub enforcement: Option<Enforcement>,
    /// Percent thresholds (1 to 1000) at which a crossing alerts; default 80 and 100.
    pub alert_at: Option<Vec<u16>>,
    /// Whether token-counter readings count (budgets only); default false.
    pub include_reported: Option<bool>,
}

/// A change to a limit; absent optional fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitUpdate {
    /// What it counts and its ceiling.
    pub kind: LimitKind,
    /// `hard` or `soft`.
    pub enforcement: Option<Enforcement>,
    /// Percent thresholds (1 to 1000).
    pub alert_at: Option<Vec<u16>>,
    /// Whether token-counter readings count (budgets only).
    pub include_reported: Option<bool>,
}

/// The use of one limit as shown, from the limiter's figures.
pub fn usage_view(entry: &LimitEntry, usage: &LimitUsage, now: i64) -> LimitUsageView {
    #[expect(clippy::cast_precision_loss, reason = "amounts far below 2^52")]
    let percent = if usage.max > 0 {
        (usage.used as f64 / usage.max as f64 * 10_000.0).round() / 100.0
    } else {
        0.0
    };
    let period_start = entry
        .limit
        .kind
        .period()
        .map(|p| period_bounds(p, &jiff::tz::TimeZone::UTC, now).0);
    LimitUsageView {
        used: usage.used,
        reserved: usage.reserved,
        max: usage.max,
        remaining: usage.remaining,
        percent,
        reset_at: usage.resets_at_ms,
        period_start,
    }
}

/// Views of `entries`, with their names and (when given) their use.
pub fn views(
    entries: Vec<LimitEntry>,
    names: &HashMap<Scope, String>,
    usage: Option<&HashMap<i64, LimitUsage>>,
) -> Vec<LimitView> {
    let now = now_ms();
    entries
        .into_iter()
        .map(|e| {
            let scope = e.limit.scope;
            LimitView {
                id: e.limit.id,
                scope,
                scope_name: names
                    .get(&scope)
                    .cloned()
                    .unwrap_or_else(|| scope.to_string()),
                kind: e.limit.kind,
                enforcement: e.limit.enforcement,
                alert_at: e.limit.alert_at.clone(),
                include_reported: e.limit.include_reported,
                created_by: e.created_by.clone(),
                created_at: e.created_at_ms,
                usage: usage
                    .and_then(|u| u.get(&e.limit.id))
                    .map(|u| usage_view(&e, u, now)),
            }
        })
        .collect()
}

async fn limiter_usage(state: &ConsoleState) -> Option<HashMap<i64, LimitUsage>> {
    let limiter = state.limiter.as_ref()?;
    match limiter.usage().await {
        Ok(all) => Some(all.into_iter().map(|u| (u.limit_id, u)).collect()),
        Err(e) => {
            tracing::warn!(error = %e, "limit use could not be read");
            None
        }
    }
}

async fn view_of(state: &ConsoleState, entry: LimitEntry) -> ApiResult<LimitView> {
    let names = limits::scope_names(state.store.as_ref()).await?;
    let usage = limiter_usage(state).await;
    views(vec![entry], &names, usage.as_ref())
        .pop()
        .ok_or_else(|| crate::error::ApiError::Internal("a limit view went missing".into()))
}

/// Gives this instance's limiter the changed limits at once.
async fn apply(state: &ConsoleState) -> ApiResult<()> {
    if let Some(limiter) = &state.limiter {
        limits::reload(state.store.as_ref(), limiter).await?;
    }
    Ok(())
}

/// Lists the limits the caller may see, with their current use.
#[utoipa::path(get, path = "/api/v1/limits", tag = "limits", params(LimitListQuery),
    responses((status = 200, body = LimitList), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_limits(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<LimitListQuery>,
) -> ApiResult<Json<LimitList>> {
    let filter = LimitFilter {
        scope_kind: q.scope.as_deref().map(limits::scope_kind).transpose()?,
        id: q.id,
    };
    let entries = limits::list(&state.rules(), &Actor::Console(&caller), filter).await?;
    let names = limits::scope_names(state.store.as_ref()).await?;
    let usage = limiter_usage(&state).await;
    Ok(Json(LimitList {
        limits: views(entries, &names, usage.as_ref()),
    }))
}

/// Sets a limit: instance admins on the instance and routes, team admins and owners on their
/// team and its keys (never above the team's own limit).
#[utoipa::path(post, path = "/api/v1/limits", tag = "limits", request_body = LimitCreate,
    responses((status = 201, body = LimitView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_limit(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiJson(req): ApiJson<LimitCreate>,
) -> ApiResult<(StatusCode, Json<LimitView>)> {
    let draft = LimitDraft {
        scope: req.scope,
        kind: req.kind,
        enforcement: req.enforcement,
        alert_at: req.alert_at,
        include_reported: req.include_reported,
    };
    let entry = limits::create(&state.rules(), &Actor::Console(&caller), draft, None).await?;
    apply(&state).await?;
    Ok((StatusCode::CREATED, Json(view_of(&state, entry).await?)))
}

/// Changes a limit's kind, ceiling, enforcement, thresholds or readings.
#[utoipa::path(put, path = "/api/v1/limits/{id}", tag = "limits", request_body = LimitUpdate, params(("id" = i64, Path, description = "Limit id")),
    responses((status = 200, body = LimitView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_limit(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<LimitUpdate>,
) -> ApiResult<Json<LimitView>> {
    let change = LimitChange {
        kind: req.kind,
        enforcement: req.enforcement,
        alert_at: req.alert_at,
        include_reported: req.include_reported,
    };
    let entry = limits::update(&state.rules(), &Actor::Console(&caller), id, change).await?;
    apply(&state).await?;
    Ok(Json(view_of(&state, entry).await?))
}

/// Removes a limit.
#[utoipa::path(delete, path = "/api/v1/limits/{id}", tag = "limits", params(("id" = i64, Path, description = "Limit id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_limit(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    limits::delete(&state.rules(), &Actor::Console(&caller), id).await?;
    apply(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}
