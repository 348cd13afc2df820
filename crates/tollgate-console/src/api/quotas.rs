//! Token quotas, instance-wide and per team, with their use in the current period. A quota is a
//! hard token budget (labelled `quota`) of the limit model, so the gateway enforces it. The seed's
//! `/api/console/stats` shows the same figures in its own shape.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tollgate_core::Role;
use tollgate_core::time::{HOUR_MS, month_start, now_ms};
use tollgate_store::{AggregateOrder, Grouping, RollupFilter};
use utoipa::ToSchema;

use crate::ConsoleState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::rules::Actor;
use crate::rules::limits;
use tollgate_limits::{LimitKind, Period};

/// A token quota as set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaSetting {
    /// Tokens allowed per period (≥ 1); `null` removes the quota.
    pub tokens: Option<i64>,
    /// `month` (default: the current UTC calendar month) or `total` (all time).
    #[serde(default)]
    pub period: QuotaPeriod,
}

/// What a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QuotaPeriod {
    /// The current UTC calendar month.
    #[default]
    Month,
    /// All time.
    Total,
}

/// A quota with its use.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaView {
    /// `instance` or `team`.
    pub scope: String,
    /// The team, for team quotas.
    pub team_id: Option<i64>,
    /// The quota; null when none is set.
    pub quota_tokens: Option<i64>,
    /// Period counted.
    pub period: QuotaPeriod,
    /// Start of the period, epoch ms.
    pub period_start: i64,
    /// Tokens used in the period by gateway and ingested calls (token-counter readings only when
    /// the budget counts them).
    pub used_tokens: i64,
    /// `quota − used` (never below 0); null without a quota.
    pub remaining_tokens: Option<i64>,
    /// `used / quota × 100`, two decimals; null without a quota.
    pub usage_percent: Option<f64>,
    /// Calls in the period.
    pub calls: i64,
}

async fn quota_setting(state: &ConsoleState, team: Option<i64>) -> ApiResult<(QuotaSetting, bool)> {
    let entry = limits::quota_limit(state.store.as_ref(), team).await?;
    Ok(
        match entry.map(|e| (e.limit.kind, e.limit.include_reported)) {
            Some((LimitKind::TokenBudget { max, period }, include_reported)) => (
                QuotaSetting {
                    tokens: i64::try_from(max).ok(),
                    period: if period == Period::Total {
                        QuotaPeriod::Total
                    } else {
                        QuotaPeriod::Month
                    },
                },
                include_reported,
            ),
            _ => (
                QuotaSetting {
                    tokens: None,
                    period: QuotaPeriod::Month,
                },
                false,
            ),
        },
    )
}

/// The quota view of the instance (`team` = None) or of one team.
pub async fn quota_view(state: &ConsoleState, team: Option<i64>) -> ApiResult<QuotaView> {
    let (setting, include_reported) = quota_setting(state, team).await?;
    let now = now_ms();
    let start = match setting.period {
        QuotaPeriod::Month => month_start(now),
        QuotaPeriod::Total => 0,
    };
    let filter = RollupFilter {
        from_ms: start,
        to_ms: now + HOUR_MS,
        team_ids: team.map(|t| vec![t]),
        ..RollupFilter::default()
    };
    let totals = state
        .store
        .aggregate_usage(&filter, Grouping::Total, AggregateOrder::Bucket, 1)
        .await?;
    let (mut used, calls) = totals.first().map_or((0, 0), |t| (t.total_tokens, t.calls));
    // Token-counter readings are not gateway traffic: they count only when the budget says so.
    if team.is_none() && include_reported {
        used += state
            .store
            .counter_daily(None, start, now + 1)
            .await?
            .iter()
            .map(|(_, tokens, _)| tokens)
            .sum::<i64>();
    }
    let (remaining, percent) = match setting.tokens {
        Some(q) if q > 0 => {
            #[expect(clippy::cast_precision_loss, reason = "token counts far below 2^52")]
            let pct = (used as f64 / q as f64 * 10_000.0).round() / 100.0;
            (Some((q - used).max(0)), Some(pct))
        }
        _ => (None, None),
    };
    Ok(QuotaView {
        scope: if team.is_some() {
            "team".into()
        } else {
            "instance".into()
        },
        team_id: team,
        quota_tokens: setting.tokens,
        period: setting.period,
        period_start: start,
        used_tokens: used,
        remaining_tokens: remaining,
        usage_percent: percent,
        calls,
    })
}

/// Every quota the caller may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotasView {
    /// The instance-wide quota (instance admins only).
    pub instance: Option<QuotaView>,
    /// Team quotas of the caller's teams.
    pub teams: Vec<QuotaView>,
}

/// Token quotas with their use: instance-wide (instance admins) and per team.
#[utoipa::path(get, path = "/api/v1/quotas", tag = "usage", responses((status = 200, body = QuotasView), (status = 401, body = ErrorBody)))]
pub async fn list_quotas(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<QuotasView>> {
    let instance = if caller.user.is_admin {
        Some(quota_view(&state, None).await?)
    } else {
        None
    };
    let mut teams = Vec::new();
    for team in state.store.list_teams().await? {
        if caller.role_in(team.id).is_some() {
            teams.push(quota_view(&state, Some(team.id)).await?);
        }
    }
    Ok(Json(QuotasView { instance, teams }))
}

fn check_quota(q: &QuotaSetting) -> ApiResult<()> {
    let most = i64::try_from(tollgate_limits::model::MAX_AMOUNT).unwrap_or(i64::MAX);
    if q.tokens.is_some_and(|t| !(1..=most).contains(&t)) {
        return Err(ApiError::invalid(
            "tokens",
            format!("tokens must be 1 to {most}, or null to remove the quota"),
        ));
    }
    Ok(())
}

async fn save_quota(
    state: &ConsoleState,
    caller: &Caller,
    team: Option<i64>,
    q: QuotaSetting,
) -> ApiResult<QuotaView> {
    caller.require_admin()?;
    check_quota(&q)?;
    let quota = q.tokens.and_then(|t| u64::try_from(t).ok()).map(|t| {
        let period = match q.period {
            QuotaPeriod::Month => Period::Month,
            QuotaPeriod::Total => Period::Total,
        };
        (t, period)
    });
    limits::set_quota(&state.rules(), &Actor::Console(caller), team, quota).await?;
    if let Some(limiter) = &state.limiter {
        limits::reload(state.store.as_ref(), limiter).await?;
    }
    quota_view(state, team).await
}

/// Sets the instance-wide token quota (instance admins).
#[utoipa::path(put, path = "/api/v1/quotas/instance", tag = "usage", request_body = QuotaSetting,
    responses((status = 200, body = QuotaView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_instance_quota(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiJson(q): ApiJson<QuotaSetting>,
) -> ApiResult<Json<QuotaView>> {
    Ok(Json(save_quota(&state, &caller, None, q).await?))
}

/// Sets a team's token quota (instance admins).
#[utoipa::path(put, path = "/api/v1/quotas/teams/{id}", tag = "usage", request_body = QuotaSetting, params(("id" = i64, Path, description = "Team id")),
    responses((status = 200, body = QuotaView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_team_quota(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(q): ApiJson<QuotaSetting>,
) -> ApiResult<Json<QuotaView>> {
    caller.require(id, Role::Viewer)?;
    state
        .store
        .team_by_id(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("team {id} does not exist")))?;
    Ok(Json(save_quota(&state, &caller, Some(id), q).await?))
}
