//! Routes over the API. The upstream credential is write-only: stored sealed, never returned.
//! Who may set it, move a route to another host, reach internal hosts or nest prefixes is decided
//! by `tollgate_core::route_policy` and `tollgate_core::upstream`; this file only applies it.

use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tollgate_core::crypto::{MasterKey, SealedRow};
use tollgate_core::route_policy::{
    self, CredentialPlan, CredentialRequest, CurrentUpstream, Plan, PolicyError, UpstreamChange,
};
use tollgate_core::upstream::{self, TargetHost, UpstreamTarget};
use tollgate_core::{Role, RouteKind, route as rules};
use tollgate_store::{NewRoute, RouteRecord, RouteUpdate};
use utoipa::ToSchema;

use super::views::RouteView;
use crate::ConsoleState;
use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};

/// A new route.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteCreate {
    /// Owning team; omit for a route shared by every team (instance admins only).
    pub team_id: Option<i64>,
    /// Unique name.
    pub name: String,
    /// Unique path prefix, e.g. `/openai`. A team's prefix may not cover or sit under another
    /// team's or a shared route's prefix (409 `prefix_conflict`).
    pub prefix: String,
    /// Upstream base URL. Team admins may not use loopback, private or link-local hosts unless
    /// the instance's `upstream_allowlist` lists them (422).
    pub upstream_url: String,
    /// `http` (default), `openai` or `anthropic`.
    pub kind: Option<String>,
    /// Remove the prefix before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Connect timeout, ms (default 5000).
    pub connect_timeout_ms: Option<i64>,
    /// Response and idle timeout, ms (default 300000).
    pub timeout_ms: Option<i64>,
    /// Enabled (default true).
    pub enabled: Option<bool>,
    /// Upstream credential injected by the gateway (needs a master key; instance admins only);
    /// never returned.
    pub upstream_key: Option<String>,
}

/// A change to a route; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutePatch {
    /// New name.
    pub name: Option<String>,
    /// New prefix.
    pub prefix: Option<String>,
    /// New upstream URL. Another host (scheme, host or port) is for instance admins only and
    /// removes the stored credential unless `upstream_key` sets a new one.
    pub upstream_url: Option<String>,
    /// New kind.
    pub kind: Option<String>,
    /// Strip the prefix.
    pub strip_prefix: Option<bool>,
    /// Connect timeout, ms.
    pub connect_timeout_ms: Option<i64>,
    /// Response and idle timeout, ms.
    pub timeout_ms: Option<i64>,
    /// Enabled.
    pub enabled: Option<bool>,
    /// New upstream credential (instance admins only); `null` removes it.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub upstream_key: Option<Option<String>>,
}

fn check_timeout(field: &str, ms: i64) -> ApiResult<i64> {
    if (1..=3_600_000).contains(&ms) {
        Ok(ms)
    } else {
        Err(ApiError::invalid(
            field,
            format!("{field} must be 1 to 3600000 ms"),
        ))
    }
}

fn check_kind(kind: &str) -> ApiResult<RouteKind> {
    kind.parse()
        .map_err(|e: String| ApiError::invalid("kind", e))
}

/// The master key that will seal `secret`, once the credential is known to be storable.
fn sealer<'a>(state: &'a ConsoleState, secret: &str) -> ApiResult<&'a MasterKey> {
    if secret.is_empty() || secret.len() > 4096 {
        return Err(ApiError::invalid(
            "upstream_key",
            "the upstream credential must be 1 to 4096 bytes",
        ));
    }
    state
        .master_key
        .as_ref()
        .ok_or_else(|| ApiError::NotConfigured {
            code: "no_master_key",
            message: "storing an upstream credential needs a master key (TOLLGATE_MASTER_KEY)"
                .into(),
        })
}

/// Longest wait for resolving an upstream host name.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

fn policy_error(e: PolicyError) -> ApiError {
    match e {
        PolicyError::InvalidUpstream(reason) => ApiError::invalid("upstream_url", reason),
        other => ApiError::Forbidden(other.to_string()),
    }
}

fn credential_request<T>(field: Option<&Option<T>>) -> CredentialRequest {
    match field {
        None => CredentialRequest::Unchanged,
        Some(Some(_)) => CredentialRequest::Set,
        Some(None) => CredentialRequest::Remove,
    }
}

/// Refuses (422) an upstream a team admin may not reach: every address its host resolves to must
/// be public, not one of tollgate's own listeners, unless the instance's `upstream_allowlist`
/// lists the host or the address. Instance admins are not asked.
async fn check_reachable(state: &ConsoleState, caller: &Caller, url: &str) -> ApiResult<()> {
    if caller.user.is_admin {
        return Ok(());
    }
    let target = UpstreamTarget::parse(url).map_err(|e| ApiError::invalid("upstream_url", e))?;
    let settings = &state.settings;
    let addresses: Vec<IpAddr> = match &target.host {
        TargetHost::Ip(ip) => vec![*ip],
        TargetHost::Name(name) if settings.upstream_allowlist.allows_name(name) => return Ok(()),
        TargetHost::Name(name) => {
            let lookup = tokio::net::lookup_host((name.as_str(), target.port));
            match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                Ok(Err(e)) => {
                    return Err(ApiError::invalid(
                        "upstream_url",
                        format!("upstream host `{name}` does not resolve: {e}"),
                    ));
                }
                Err(_) => {
                    return Err(ApiError::invalid(
                        "upstream_url",
                        format!(
                            "upstream host `{name}` did not resolve within {} s",
                            RESOLVE_TIMEOUT.as_secs()
                        ),
                    ));
                }
            }
        }
    };
    if addresses.is_empty() {
        return Err(ApiError::invalid(
            "upstream_url",
            format!("upstream host `{}` has no address", target.host),
        ));
    }
    upstream::check_addresses(
        &target,
        &addresses,
        &settings.upstream_allowlist,
        &settings.own_listeners,
    )
    .map_err(|refused| ApiError::invalid("upstream_url", refused.to_string()))
}

/// Refuses (409 `prefix_conflict`) a team admin's prefix that covers, or sits under, a prefix of
/// another team's or a shared route. Names the other prefix, never the other team.
async fn check_prefix(
    state: &ConsoleState,
    caller: &Caller,
    prefix: &str,
    team_id: Option<i64>,
    except: Option<i64>,
) -> ApiResult<()> {
    if caller.user.is_admin {
        return Ok(());
    }
    let routes = state.store.list_routes().await?;
    let existing = routes
        .iter()
        .filter(|r| Some(r.id) != except)
        .map(|r| (r.prefix.as_str(), r.team_id));
    match route_policy::prefix_conflict(prefix, team_id, existing) {
        Some(other) => Err(ApiError::ConflictWith {
            code: "prefix_conflict",
            message: format!(
                "prefix `{prefix}` overlaps the prefix `{other}` of a route this team does not own; choose a prefix outside it"
            ),
        }),
        None => Ok(()),
    }
}

/// `secret` sealed for route `id` (bound to it: it does not open in another route's row).
fn seal(state: &ConsoleState, id: i64, secret: &str) -> ApiResult<Vec<u8>> {
    Ok(sealer(state, secret)?.seal(secret.as_bytes(), SealedRow::RouteCredential(id)))
}

/// Who may change a route: admins of its team, or instance admins for shared routes.
fn require_manage(caller: &Caller, team_id: Option<i64>) -> ApiResult<()> {
    match team_id {
        Some(team) => caller.require(team, Role::Admin).map(|_| ()),
        None => caller.require_admin(),
    }
}

async fn visible_route(state: &ConsoleState, caller: &Caller, id: i64) -> ApiResult<RouteRecord> {
    match state.store.route_by_id(id).await? {
        Some(r) if r.team_id.is_none_or(|t| caller.role_in(t).is_some()) => Ok(r),
        _ => Err(ApiError::NotFound(format!("route {id} does not exist"))),
    }
}

/// Lists the routes the caller can see: their teams' and the shared ones.
#[utoipa::path(get, path = "/api/v1/routes", tag = "routes",
    responses((status = 200, body = [RouteView]), (status = 401, body = ErrorBody)))]
pub async fn list_routes(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<Vec<RouteView>>> {
    let routes = state.store.list_routes().await?;
    Ok(Json(
        routes
            .iter()
            .filter(|r| r.team_id.is_none_or(|t| caller.role_in(t).is_some()))
            .map(RouteView::from)
            .collect(),
    ))
}

/// Creates a route.
#[utoipa::path(post, path = "/api/v1/routes", tag = "routes", request_body = RouteCreate,
    responses((status = 201, body = RouteView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_route(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiJson(req): ApiJson<RouteCreate>,
) -> ApiResult<(StatusCode, Json<RouteView>)> {
    require_manage(&caller, req.team_id)?;
    rules::validate_name(&req.name).map_err(|e| ApiError::invalid("name", e))?;
    rules::validate_prefix(&req.prefix).map_err(|e| ApiError::invalid("prefix", e))?;
    rules::validate_upstream(&req.upstream_url)
        .map_err(|e| ApiError::invalid("upstream_url", e))?;
    route_policy::plan_upstream_change(
        None,
        UpstreamChange {
            upstream_url: Some(&req.upstream_url),
            credential: credential_request(Some(&req.upstream_key)),
        },
        caller.user.is_admin,
    )
    .map_err(policy_error)?;
    let kind = req
        .kind
        .as_deref()
        .map(check_kind)
        .transpose()?
        .unwrap_or_default();
    let connect_timeout_ms = check_timeout(
        "connect_timeout_ms",
        req.connect_timeout_ms.unwrap_or(5_000),
    )?;
    let timeout_ms = check_timeout("timeout_ms", req.timeout_ms.unwrap_or(300_000))?;
    // Checked before the route exists; sealed once it has the id the credential is bound to.
    if let Some(k) = req.upstream_key.as_deref() {
        sealer(&state, k)?;
    }
    check_reachable(&state, &caller, &req.upstream_url).await?;
    check_prefix(&state, &caller, &req.prefix, req.team_id, None).await?;
    let mut route = state
        .store
        .create_route(NewRoute {
            team_id: req.team_id,
            name: req.name.clone(),
            prefix: req.prefix.clone(),
            upstream_url: req.upstream_url.clone(),
            kind,
            strip_prefix: req.strip_prefix,
            connect_timeout_ms,
            timeout_ms,
            sealed_credential: None,
        })
        .await?;
    let sealed_credential = req
        .upstream_key
        .as_deref()
        .map(|k| seal(&state, route.id, k))
        .transpose()?;
    if req.enabled == Some(false) || sealed_credential.is_some() {
        route = state
            .store
            .update_route(
                route.id,
                RouteUpdate {
                    enabled: (req.enabled == Some(false)).then_some(false),
                    sealed_credential: sealed_credential.map(Some),
                    ..RouteUpdate::default()
                },
            )
            .await?;
    }
    let change = Change::new("route.create", "route", route.id)
        .team(route.team_id)
        .summary(format!(
            "route `{}` {} → {}",
            route.name, route.prefix, route.upstream_url
        ));
    audit::record(state.store.as_ref(), &caller, change).await;
    Ok((StatusCode::CREATED, Json(RouteView::from(&route))))
}

/// One route.
#[utoipa::path(get, path = "/api/v1/routes/{id}", tag = "routes", params(("id" = i64, Path, description = "Route id")),
    responses((status = 200, body = RouteView), (status = 404, body = ErrorBody)))]
pub async fn get_route(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<RouteView>> {
    Ok(Json(RouteView::from(
        &visible_route(&state, &caller, id).await?,
    )))
}

/// Changes a route.
#[utoipa::path(patch, path = "/api/v1/routes/{id}", tag = "routes", request_body = RoutePatch, params(("id" = i64, Path, description = "Route id")),
    responses((status = 200, body = RouteView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_route(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<RoutePatch>,
) -> ApiResult<Json<RouteView>> {
    let route = visible_route(&state, &caller, id).await?;
    require_manage(&caller, route.team_id)?;
    if let Some(name) = &req.name {
        rules::validate_name(name).map_err(|e| ApiError::invalid("name", e))?;
    }
    if let Some(prefix) = &req.prefix {
        rules::validate_prefix(prefix).map_err(|e| ApiError::invalid("prefix", e))?;
    }
    if let Some(url) = &req.upstream_url {
        rules::validate_upstream(url).map_err(|e| ApiError::invalid("upstream_url", e))?;
    }
    let plan: Plan = route_policy::plan_upstream_change(
        Some(CurrentUpstream {
            upstream_url: &route.upstream_url,
            has_credential: route.sealed_credential.is_some(),
        }),
        UpstreamChange {
            upstream_url: req.upstream_url.as_deref(),
            credential: credential_request(req.upstream_key.as_ref()),
        },
        caller.user.is_admin,
    )
    .map_err(policy_error)?;
    let sealed_credential = match (plan.credential, &req.upstream_key) {
        (CredentialPlan::Set, Some(Some(k))) => Some(Some(seal(&state, id, k)?)),
        (CredentialPlan::Clear, _) => Some(None),
        _ => None,
    };
    if let Some(url) = &req.upstream_url {
        check_reachable(&state, &caller, url).await?;
    }
    if let Some(prefix) = &req.prefix {
        check_prefix(&state, &caller, prefix, route.team_id, Some(id)).await?;
    }
    let update = RouteUpdate {
        name: req.name,
        prefix: req.prefix,
        upstream_url: req.upstream_url,
        kind: req.kind.as_deref().map(check_kind).transpose()?,
        strip_prefix: req.strip_prefix,
        connect_timeout_ms: req
            .connect_timeout_ms
            .map(|v| check_timeout("connect_timeout_ms", v))
            .transpose()?,
        timeout_ms: req
            .timeout_ms
            .map(|v| check_timeout("timeout_ms", v))
            .transpose()?,
        enabled: req.enabled,
        sealed_credential,
        team_id: None,
    };
    let updated = state.store.update_route(id, update).await?;
    let change = Change::new("route.update", "route", id)
        .team(updated.team_id)
        .summary(if plan.credential_dropped_by_move {
            format!(
                "route `{}` changed; its upstream credential was removed because the upstream moved to another host",
                updated.name
            )
        } else {
            format!("route `{}` changed", updated.name)
        });
    audit::record(state.store.as_ref(), &caller, change).await;
    Ok(Json(RouteView::from(&updated)))
}

/// Deletes a route; keys that listed it lose it.
#[utoipa::path(delete, path = "/api/v1/routes/{id}", tag = "routes", params(("id" = i64, Path, description = "Route id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_route(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let route = visible_route(&state, &caller, id).await?;
    require_manage(&caller, route.team_id)?;
    state.store.delete_route(&route.name).await?;
    let change = Change::new("route.delete", "route", id)
        .team(route.team_id)
        .summary(format!("route `{}` deleted", route.name));
    audit::record(state.store.as_ref(), &caller, change).await;
    Ok(StatusCode::NO_CONTENT)
}
