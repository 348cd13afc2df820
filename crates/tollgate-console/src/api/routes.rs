//! Routes over the API. The upstream credential is write-only: stored sealed, never returned.
//! Each handler parses, calls `rules::routes` (validation, defaults, who may, the audit entry)
//! and maps the answer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tollgate_core::RouteKind;
use utoipa::ToSchema;

use super::views::RouteView;
use crate::ConsoleState;
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::rules::routes::{self, RouteChange, RouteDraft};
use crate::rules::{Actor, RuleError};

/// A new route.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
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
    /// the instance's `upstream_allowlist` lists them (422). May be left out on `llm` routes,
    /// whose calls go to their models' targets.
    #[serde(default)]
    pub upstream_url: String,
    /// What the gateway understands of the traffic (default `http`).
    pub kind: Option<RouteKind>,
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
    /// The header the credential is sent in (instance admins only), e.g. `x-internal-token`;
    /// default `authorization` (`x-api-key` on anthropic routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_header: Option<String>,
    /// The header's value with `{key}` for the credential, e.g. `Token {key}`; default `{key}`
    /// with `credential_header`, else `Bearer {key}` (the key alone on anthropic routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_format: Option<String>,
}

impl TryFrom<RouteCreate> for RouteDraft {
    type Error = RuleError;

    /// The request as the route rules take it (the HTTP handler and the CLI both convert here).
    fn try_from(req: RouteCreate) -> Result<Self, RuleError> {
        let credential_header = routes::parse_credential_header(
            req.credential_header.as_deref(),
            req.credential_format.as_deref(),
        )?;
        Ok(Self {
            team_id: req.team_id,
            name: req.name,
            prefix: req.prefix,
            upstream_url: req.upstream_url,
            kind: req.kind,
            strip_prefix: req.strip_prefix,
            connect_timeout_ms: req.connect_timeout_ms,
            timeout_ms: req.timeout_ms,
            enabled: req.enabled,
            credential: req.upstream_key,
            credential_header,
        })
    }
}

/// A change to a route; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutePatch {
    /// New name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// New upstream URL. Another host (scheme, host or port) is for instance admins only and
    /// removes the stored credential unless `upstream_key` sets a new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_url: Option<String>,
    /// New kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<RouteKind>,
    /// Strip the prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strip_prefix: Option<bool>,
    /// Connect timeout, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout_ms: Option<i64>,
    /// Response and idle timeout, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<i64>,
    /// Enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// New upstream credential (instance admins only); `null` removes it.
    #[serde(
        default,
        deserialize_with = "super::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub upstream_key: Option<Option<String>>,
    /// New credential header (instance admins only); `null` goes back to the kind's.
    #[serde(
        default,
        deserialize_with = "super::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub credential_header: Option<Option<String>>,
    /// The new header's value with `{key}` (with `credential_header`; default `{key}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_format: Option<String>,
}

impl TryFrom<RoutePatch> for RouteChange {
    type Error = RuleError;

    /// The patch as the route rules take it (the HTTP handler and the CLI both convert here).
    fn try_from(req: RoutePatch) -> Result<Self, RuleError> {
        let credential_header = match req.credential_header {
            Some(Some(name)) => Some(routes::parse_credential_header(
                Some(&name),
                req.credential_format.as_deref(),
            )?),
            Some(None) => Some(None),
            None => {
                routes::parse_credential_header(None, req.credential_format.as_deref())?;
                None
            }
        };
        Ok(Self {
            name: req.name,
            prefix: req.prefix,
            upstream_url: req.upstream_url,
            kind: req.kind,
            strip_prefix: req.strip_prefix,
            connect_timeout_ms: req.connect_timeout_ms,
            timeout_ms: req.timeout_ms,
            enabled: req.enabled,
            credential: req.upstream_key,
            credential_header,
        })
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
    let draft = RouteDraft::try_from(req)?;
    let route = routes::create(&state.rules(), &Actor::Console(&caller), draft).await?;
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
    let route = routes::visible(&state.rules(), &Actor::Console(&caller), id).await?;
    Ok(Json(RouteView::from(&route)))
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
    let change = RouteChange::try_from(req)?;
    let updated = routes::update(&state.rules(), &Actor::Console(&caller), id, change).await?;
    Ok(Json(RouteView::from(&updated.route)))
}

/// Deletes a route; keys that listed it lose it.
#[utoipa::path(delete, path = "/api/v1/routes/{id}", tag = "routes", params(("id" = i64, Path, description = "Route id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_route(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    routes::delete(&state.rules(), &Actor::Console(&caller), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
