//! Seed 001's dashboard paths: the overview (`/api/dashboard/overview`) and the audit log
//! (`/api/dashboard/audit-logs`, pages of 50, CSV export).

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use tollgate_core::time::{DAY_MS, day_start, now_ms};
use utoipa::ToSchema;

use crate::ConsoleState;
use crate::api::audit::{AuditQuery, AuditView, audit_answer};
use crate::api::views::{KeyView, Page};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiQuery;

/// Seed 001's dashboard overview.
#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    /// Keys the caller can see.
    pub total_keys: usize,
    /// Active (not revoked, not expired) keys.
    pub active_keys: usize,
    /// Routes the caller can see.
    pub total_routes: usize,
    /// Teams the caller can see.
    pub total_teams: usize,
    /// Keys expiring within 30 days.
    pub expiring_soon: usize,
    /// Keys created per day over the last 7 days: `{ts, count}`.
    pub key_creation_trend: Vec<DayCount>,
    /// Teams with the most keys (top 5).
    pub team_key_distribution: Vec<TeamCount>,
    /// The keys expiring within 30 days, soonest first.
    pub expiring_keys: Vec<KeyView>,
    /// The 10 latest audit entries the caller may read.
    pub recent_activity: Vec<AuditView>,
}

/// A count on one day.
#[derive(Debug, Serialize, ToSchema)]
pub struct DayCount {
    /// Day start (UTC), epoch ms.
    pub ts: i64,
    /// Count.
    pub count: i64,
}

/// Keys of one team.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamCount {
    /// Team id.
    pub team_id: i64,
    /// Team name.
    pub team: String,
    /// Keys.
    pub keys: i64,
}

/// Seed 001: counts of keys, routes and teams, expiring keys, key creation trend, latest activity.
#[utoipa::path(get, path = "/api/dashboard/overview", tag = "seed", responses((status = 200, body = Overview), (status = 401, body = ErrorBody)))]
pub async fn overview(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<Overview>> {
    let now = now_ms();
    let keys: Vec<_> = state
        .store
        .list_keys(None)
        .await?
        .into_iter()
        .filter(|k| caller.role_in(k.team_id).is_some())
        .collect();
    let routes = state
        .store
        .list_routes()
        .await?
        .into_iter()
        .filter(|r| r.team_id.is_none_or(|t| caller.role_in(t).is_some()))
        .count();
    let teams: Vec<_> = state
        .store
        .list_teams()
        .await?
        .into_iter()
        .filter(|t| caller.role_in(t.id).is_some())
        .collect();
    let active = |k: &&tollgate_store::KeyRecord| {
        k.revoked_at_ms.is_none() && k.expires_at_ms.is_none_or(|t| t > now)
    };
    let mut expiring: Vec<_> = keys
        .iter()
        .filter(active)
        .filter(|k| k.expires_at_ms.is_some_and(|t| t <= now + 30 * DAY_MS))
        .collect();
    expiring.sort_by_key(|k| k.expires_at_ms);
    let today = day_start(now);
    let trend = (0..7)
        .rev()
        .map(|d| {
            let ts = today - d * DAY_MS;
            let count = keys
                .iter()
                .filter(|k| (ts..ts + DAY_MS).contains(&k.created_at_ms))
                .count();
            DayCount {
                ts,
                count: i64::try_from(count).unwrap_or(i64::MAX),
            }
        })
        .collect();
    let mut dist: Vec<TeamCount> = teams
        .iter()
        .map(|t| TeamCount {
            team_id: t.id,
            team: t.name.clone(),
            keys: i64::try_from(keys.iter().filter(|k| k.team_id == t.id).count()).unwrap_or(0),
        })
        .filter(|t| t.keys > 0)
        .collect();
    dist.sort_by(|a, b| b.keys.cmp(&a.keys).then(a.team.cmp(&b.team)));
    dist.truncate(5);
    let (recent, _) = state.store.list_audit(&caller.audit_scope(), 10, 0).await?;
    Ok(Json(Overview {
        total_keys: keys.len(),
        active_keys: keys.iter().filter(active).count(),
        total_routes: routes,
        total_teams: teams.len(),
        expiring_soon: expiring.len(),
        key_creation_trend: trend,
        team_key_distribution: dist,
        expiring_keys: expiring.into_iter().map(|k| KeyView::of(k, now)).collect(),
        recent_activity: recent.into_iter().map(AuditView::from).collect(),
    }))
}

/// The seed's audit log path: filter by action and entity type, pages of 50, `format=csv` for CSV.
#[utoipa::path(get, path = "/api/dashboard/audit-logs", tag = "seed", params(AuditQuery),
    responses((status = 200, body = Page<AuditView>, description = "JSON page, or CSV with format=csv"), (status = 422, body = ErrorBody)))]
pub async fn dashboard_audit_logs(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(mut q): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    if q.per_page.is_some_and(|p| p != 50) {
        return Err(ApiError::invalid(
            "per_page",
            "this path pages by 50; use /api/v1/audit for other sizes",
        ));
    }
    q.per_page = Some(50);
    audit_answer(&state, &caller, q, 50).await
}
