//! Edge key sync: what an edge (a Cloudflare Worker, say) needs to decide a call itself — key
//! hashes (never keys), status, expiry, team, allowed routes and models, and the route table
//! (prefix, name, kind; never upstream URLs or credentials) — as a streamed snapshot with a
//! revision, and a change feed since a revision. Read with an edge access token (`tge_…`, which
//! reads nothing else) or by an instance admin; edge tokens are made and revoked by instance
//! admins (rules in `rules::edge`).
//!
//! Consistency: the snapshot reads the revision first, then the routes and the keys page by
//! page. A change made while it streams may or may not be in it, but it has a later revision, so
//! applying `changes?since=<snapshot revision>` always lands on the current state.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tollgate_core::RouteKind;
use tollgate_core::time::now_ms;
use tollgate_store::{EdgeEntity, EdgeKey, EdgeToken, RouteRecord};
use utoipa::{IntoParams, ToSchema};

use crate::ConsoleState;
use crate::auth::{Caller, EdgeReader};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::rules::{Actor, edge};

/// Keys per store read while a snapshot streams.
const SNAPSHOT_PAGE: i64 = 5_000;
/// Most changes read per feed request; a longer backlog is answered with `more`.
const CHANGES_PAGE: i64 = 10_000;

/// What a key's status is, for an edge deciding a call now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKeyStatus {
    /// Valid (until `expires_at`, if set: an edge checks that itself as time passes).
    Active,
    /// Revoked: refuse with `revoked_api_key`.
    Revoked,
    /// Past its expiry: refuse with `expired_api_key`.
    Expired,
}

/// A key as an edge sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EdgeKeyView {
    /// Id.
    pub id: i64,
    /// SHA-256 hex of the full key: hash the presented `ntk_…` key and look it up.
    pub key_hash: String,
    /// Owning team.
    pub team_id: i64,
    /// Status at the time of the answer.
    pub status: EdgeKeyStatus,
    /// Expiry, epoch ms.
    pub expires_at: Option<i64>,
    /// Revocation time, epoch ms.
    pub revoked_at: Option<i64>,
    /// Route ids it may call; null: every route of its team and every shared route.
    pub routes: Option<Vec<i64>>,
    /// Model glob patterns it may call on LLM routes; null: any model.
    pub models: Option<Vec<String>>,
}

impl EdgeKeyView {
    fn of(key: &EdgeKey, now: i64) -> Self {
        let status = if key.revoked_at_ms.is_some() {
            EdgeKeyStatus::Revoked
        } else if key.expires_at_ms.is_some_and(|t| t <= now) {
            EdgeKeyStatus::Expired
        } else {
            EdgeKeyStatus::Active
        };
        Self {
            id: key.id,
            key_hash: key.key_hash.as_str().to_owned(),
            team_id: key.team_id,
            status,
            expires_at: key.expires_at_ms,
            revoked_at: key.revoked_at_ms,
            routes: key.route_ids.clone(),
            models: key.models.as_deref().map(|p| {
                p.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
        }
    }
}

/// A route as an edge sees it: what to match and what it is, never where it goes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EdgeRouteView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Path prefix, matched on segment boundaries; the longest match wins.
    pub prefix: String,
    /// Kind: whether usage capture applies.
    pub kind: RouteKind,
    /// Owning team; null for a route shared by every team.
    pub team_id: Option<i64>,
    /// A disabled route answers `no_route`.
    pub enabled: bool,
}

impl From<&RouteRecord> for EdgeRouteView {
    fn from(r: &RouteRecord) -> Self {
        Self {
            id: r.id,
            name: r.name.clone(),
            prefix: r.prefix.clone(),
            kind: r.kind,
            team_id: r.team_id,
            enabled: r.enabled,
        }
    }
}

/// The routes an edge can serve. `llm` routes are left out: they choose their upstream by the
/// request's model, from targets whose credentials never leave the gateway, which an edge
/// cannot do; a call to their prefix at the edge finds no route.
fn edge_routes(records: &[RouteRecord]) -> Vec<EdgeRouteView> {
    records
        .iter()
        .filter(|r| r.kind != RouteKind::Llm)
        .map(EdgeRouteView::from)
        .collect()
}

/// The snapshot's shape (streamed: `keys` arrive page by page).
#[derive(Debug, Serialize, ToSchema)]
pub struct EdgeSnapshot {
    /// The store revision the snapshot starts from: follow `changes?since=` from here.
    pub revision: i64,
    /// When it was made, epoch ms.
    pub generated_at: i64,
    /// Every route but `llm` ones (model-routed; an edge cannot serve them).
    pub routes: Vec<EdgeRouteView>,
    /// Every key, revoked and expired ones included (so an edge answers with the right code).
    pub keys: Vec<EdgeKeyView>,
}

/// Change-feed query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// The revision the edge holds (a snapshot's or the previous answer's `revision`).
    pub since: i64,
}

/// What changed since a revision.
#[derive(Debug, Serialize, ToSchema)]
pub struct EdgeChanges {
    /// The revision this answer brings the edge to: pass it as `since` next time.
    pub revision: i64,
    /// Keys added or changed, in their current state.
    pub keys: Vec<EdgeKeyView>,
    /// Hashes of keys deleted: forget them.
    pub removed_keys: Vec<String>,
    /// The whole route table when any route changed; null when none did.
    pub routes: Option<Vec<EdgeRouteView>>,
    /// More changes wait: ask again at once with the new `revision`.
    pub more: bool,
}

/// Streams the snapshot of everything an edge decides with.
#[utoipa::path(get, path = "/api/v1/edge/snapshot", tag = "edge",
    responses((status = 200, body = EdgeSnapshot), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("edge_token" = []), ("session" = []), ("token" = [])))]
pub async fn edge_snapshot(
    State(state): State<ConsoleState>,
    _reader: EdgeReader,
) -> ApiResult<Response> {
    let revision = state.store.revision().await?;
    let routes = edge_routes(&state.store.list_routes().await?);
    let now = now_ms();
    let head = format!(
        "{{\"revision\":{revision},\"generated_at\":{now},\"routes\":{},\"keys\":[",
        serde_json::to_string(&routes).map_err(|e| ApiError::Internal(e.to_string()))?
    );
    // Page by page from the store, each page encoded as it arrives: memory stays one page.
    let pages = futures_util::stream::unfold(Some((0_i64, true)), move |cursor| {
        let store = state.store.clone();
        async move {
            let (after, first) = cursor?;
            match store.edge_keys_after(after, SNAPSHOT_PAGE).await {
                Ok(keys) => {
                    let mut out = Vec::with_capacity(keys.len() * 200);
                    for (i, key) in keys.iter().enumerate() {
                        if !(first && i == 0) {
                            out.push(b',');
                        }
                        if let Err(e) = serde_json::to_writer(&mut out, &EdgeKeyView::of(key, now))
                        {
                            return Some((Err(std::io::Error::other(e)), None));
                        }
                    }
                    let full = i64::try_from(keys.len()).unwrap_or(0) == SNAPSHOT_PAGE;
                    let next = keys.last().filter(|_| full).map(|last| (last.id, false));
                    if next.is_none() {
                        out.extend_from_slice(b"]}\n");
                    }
                    Some((Ok::<_, std::io::Error>(out), next))
                }
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    });
    let body =
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(head.into_bytes()) })
            .chain(pages)
            // Fused: the compression layer polls once more after the end, which `unfold` forbids.
            .fuse();
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

/// What changed since revision `since`: keys in their current state, deleted keys' hashes, and
/// the route table when a route changed.
#[utoipa::path(get, path = "/api/v1/edge/changes", tag = "edge", params(ChangesQuery),
    responses((status = 200, body = EdgeChanges), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 410, body = ErrorBody, description = "`snapshot_required`: changes after `since` were pruned by `retention.edge_changes`; take a new snapshot"), (status = 422, body = ErrorBody)),
    security(("edge_token" = []), ("session" = []), ("token" = [])))]
pub async fn edge_changes(
    State(state): State<ConsoleState>,
    _reader: EdgeReader,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> ApiResult<Json<EdgeChanges>> {
    if q.since < 0 {
        return Err(ApiError::invalid("since", "since is a revision, 0 or more"));
    }
    let current = state.store.revision().await?;
    if q.since > current {
        return Err(ApiError::invalid(
            "since",
            format!(
                "since {} is ahead of this store's revision {current}: take a new snapshot",
                q.since
            ),
        ));
    }
    let feed = state
        .store
        .edge_changes_since(q.since, CHANGES_PAGE)
        .await?;
    // Read after the feed: if the retention pruned changes past `since` meanwhile, this sees it.
    let pruned_through = state.store.edge_feed_pruned_through().await?;
    if q.since < pruned_through {
        return Err(ApiError::GoneWith {
            code: "snapshot_required",
            message: format!(
                "changes up to revision {pruned_through} are no longer kept \
                 (retention.edge_changes), since {} is older: take a new snapshot",
                q.since
            ),
        });
    }
    let more = i64::try_from(feed.len()).unwrap_or(0) == CHANGES_PAGE;
    // The last change read, not the store's revision now: a change committed after this read
    // would otherwise be skipped.
    let revision = feed.last().map_or(q.since, |c| c.revision);
    let mut key_ids = BTreeSet::new();
    let mut hashes: BTreeMap<i64, String> = BTreeMap::new();
    let mut route_changed = false;
    for change in &feed {
        match change.entity {
            EdgeEntity::Key => {
                key_ids.insert(change.entity_id);
                if let Some(hash) = &change.key_hash {
                    hashes.insert(change.entity_id, hash.clone());
                }
            }
            EdgeEntity::Route => route_changed = true,
        }
    }
    let ids: Vec<i64> = key_ids.iter().copied().collect();
    let now = now_ms();
    let found = state.store.edge_keys_by_id(&ids).await?;
    let present: BTreeSet<i64> = found.iter().map(|k| k.id).collect();
    let removed_keys = key_ids
        .iter()
        .filter(|id| !present.contains(id))
        .filter_map(|id| hashes.get(id).cloned())
        .collect();
    let routes = if route_changed {
        Some(edge_routes(&state.store.list_routes().await?))
    } else {
        None
    };
    Ok(Json(EdgeChanges {
        revision,
        keys: found.iter().map(|k| EdgeKeyView::of(k, now)).collect(),
        removed_keys,
        routes,
        more,
    }))
}

/// An edge token as listed (never the secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EdgeTokenView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Display prefix, e.g. `tge_AbCd…wxyz`.
    pub prefix: String,
    /// Who created it.
    pub created_by: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Expiry, epoch ms.
    pub expires_at: Option<i64>,
    /// Revocation time, epoch ms.
    pub revoked_at: Option<i64>,
    /// Last use, epoch ms; null is "never used".
    pub last_used_at: Option<i64>,
}

impl From<&EdgeToken> for EdgeTokenView {
    fn from(t: &EdgeToken) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            created_by: t.created_by.clone(),
            created_at: t.created_at_ms,
            expires_at: t.expires_at_ms,
            revoked_at: t.revoked_at_ms,
            last_used_at: t.last_used_at_ms,
        }
    }
}

/// A new edge token.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EdgeTokenCreate {
    /// Name, 1 to 100 characters.
    pub name: String,
    /// Lifetime such as `90d` or `12h`; none for no expiry.
    pub expires_in: Option<String>,
}

/// The created edge token: `token` is shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EdgeTokenCreated {
    /// The secret `tge_…`; it cannot be shown again.
    pub token: String,
    /// The token as listed.
    #[serde(flatten)]
    pub view: EdgeTokenView,
}

/// Lists the edge tokens (instance admins).
#[utoipa::path(get, path = "/api/v1/edge/tokens", tag = "edge",
    responses((status = 200, body = [EdgeTokenView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_edge_tokens(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<Vec<EdgeTokenView>>> {
    let tokens = edge::list(&state.rules(), &Actor::Console(&caller)).await?;
    Ok(Json(tokens.iter().map(EdgeTokenView::from).collect()))
}

/// Creates an edge token (instance admins); the secret is in the answer once.
#[utoipa::path(post, path = "/api/v1/edge/tokens", tag = "edge", request_body = EdgeTokenCreate,
    responses((status = 201, body = EdgeTokenCreated), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_edge_token(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiJson(req): ApiJson<EdgeTokenCreate>,
) -> ApiResult<(StatusCode, Json<EdgeTokenCreated>)> {
    let (token, secret) = edge::create(
        &state.rules(),
        &Actor::Console(&caller),
        &req.name,
        req.expires_in.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(EdgeTokenCreated {
            token: secret.expose().to_owned(),
            view: (&token).into(),
        }),
    ))
}

/// Revokes an edge token (instance admins): it stops working at once.
#[utoipa::path(delete, path = "/api/v1/edge/tokens/{id}", tag = "edge", params(("id" = i64, Path, description = "Edge token id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_edge_token(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    edge::revoke(&state.rules(), &Actor::Console(&caller), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
