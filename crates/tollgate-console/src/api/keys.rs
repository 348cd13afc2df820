//! API keys over the API: create (the secret returned once), list (masked), get, update, revoke,
//! delete, reveal. Changes reach the gateway through the store revision within a second.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tollgate_core::crypto::SealedRow;
use tollgate_core::time::now_ms;
use tollgate_core::{ApiKey, KeyHash, Role};
use tollgate_store::{KeyRecord, KeyUpdate, NewKey, Store};
use utoipa::{IntoParams, ToSchema};

use super::views::{KeyView, MAX_TIME_MS, expiry_from};
use crate::ConsoleState;
use crate::audit::{self, Change};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// Filters of the key list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeyListQuery {
    /// Only this team's keys.
    pub team_id: Option<i64>,
}

/// A new key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyCreate {
    /// Owning team; default: the caller's only team, or `default`.
    pub team_id: Option<i64>,
    /// Name, 1 to 100 characters.
    pub name: String,
    /// Free text, up to 1000 characters.
    #[serde(default)]
    pub description: String,
    /// Lifetime such as `90d`; or give `expires_at`.
    pub expires_in: Option<String>,
    /// Expiry, epoch ms.
    pub expires_at: Option<i64>,
    /// Allowed route ids; omit for all of the team's and shared routes.
    pub route_ids: Option<Vec<i64>>,
}

/// The created key: `key` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCreated {
    /// The secret `ntk_…`.
    pub key: String,
    /// The key as listed.
    #[serde(flatten)]
    pub view: KeyView,
}

/// A change to a key; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New expiry, epoch ms; `null` removes it.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<i64>)]
    pub expires_at: Option<Option<i64>>,
    /// New allowed route ids; `null` for all of the team's.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<Vec<i64>>)]
    pub route_ids: Option<Option<Vec<i64>>>,
}

/// A revealed key.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyRevealed {
    /// Id.
    pub id: i64,
    /// The secret.
    pub key: String,
}

fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "name",
            "the name must be 1 to 100 characters",
        ));
    }
    Ok(name.to_owned())
}

fn check_description(text: &str) -> ApiResult<String> {
    if text.chars().count() > 1000 {
        return Err(ApiError::invalid(
            "description",
            "the description must be at most 1000 characters",
        ));
    }
    Ok(text.to_owned())
}

/// Checks that every route exists and that the team may call it.
async fn check_routes(store: &dyn Store, team_id: i64, ids: &[i64]) -> ApiResult<Vec<i64>> {
    if ids.len() > 1000 {
        return Err(ApiError::invalid("route_ids", "at most 1000 routes"));
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let route = store.route_by_id(*id).await?;
        match route {
            Some(r) if r.team_id.is_none_or(|t| t == team_id) => out.push(*id),
            Some(_) => {
                return Err(ApiError::invalid(
                    "route_ids",
                    format!("route {id} belongs to another team"),
                ));
            }
            None => {
                return Err(ApiError::invalid(
                    "route_ids",
                    format!("route {id} does not exist"),
                ));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// Who created a key, for "members manage their own keys".
fn creator_of(caller: &Caller) -> String {
    format!("user:{}", caller.user.email)
}

/// The key if the caller may see it (viewer or more in its team); otherwise 404.
async fn visible_key(state: &ConsoleState, caller: &Caller, id: i64) -> ApiResult<KeyRecord> {
    let key = state.store.key_by_id(id).await?;
    match key {
        Some(k) if caller.role_in(k.team_id).is_some() => Ok(k),
        _ => Err(ApiError::NotFound(format!("key {id} does not exist"))),
    }
}

/// The key if the caller may change it: admin or owner of its team, or the member who made it.
async fn managed_key(state: &ConsoleState, caller: &Caller, id: i64) -> ApiResult<KeyRecord> {
    let key = visible_key(state, caller, id).await?;
    let role = caller.role_in(key.team_id).unwrap_or(Role::Viewer);
    let own =
        role == Role::Member && key.created_by.as_deref() == Some(creator_of(caller).as_str());
    if role.manages_team() || own {
        Ok(key)
    } else {
        Err(ApiError::Forbidden(format!(
            "key {id}: only its team's owners and admins, or the member who created it, may change it"
        )))
    }
}

/// The team a new key goes to.
async fn target_team(
    state: &ConsoleState,
    caller: &Caller,
    team_id: Option<i64>,
) -> ApiResult<i64> {
    if let Some(id) = team_id {
        return Ok(id);
    }
    if !caller.user.is_admin && caller.roles.len() == 1 {
        return caller
            .roles
            .keys()
            .next()
            .copied()
            .ok_or_else(|| ApiError::invalid("team_id", "give team_id"));
    }
    if caller.user.is_admin {
        let team = state
            .store
            .team_by_name(tollgate_store::DEFAULT_TEAM)
            .await?;
        return team
            .map(|t| t.id)
            .ok_or_else(|| ApiError::invalid("team_id", "give team_id"));
    }
    Err(ApiError::invalid(
        "team_id",
        "you belong to several teams (or none): give team_id",
    ))
}

/// Creates a key for the caller in `team_id` (checked: member or more) and audits it.
pub async fn create_key_for(
    state: &ConsoleState,
    caller: &Caller,
    team_id: Option<i64>,
    name: &str,
    description: &str,
    expires_at_ms: Option<i64>,
    route_ids: Option<Vec<i64>>,
) -> ApiResult<(KeyRecord, ApiKey)> {
    let name = check_name(name)?;
    let description = check_description(description)?;
    let team_id = target_team(state, caller, team_id).await?;
    caller.require(team_id, Role::Member)?;
    let route_ids = match route_ids {
        Some(ids) => Some(check_routes(state.store.as_ref(), team_id, &ids).await?),
        None => None,
    };
    let secret = ApiKey::generate();
    let key = state
        .store
        .create_key(NewKey {
            team_id,
            name,
            description,
            key_hash: secret.hash(),
            prefix: secret.display_prefix(),
            sealed_key: state.master_key.as_ref().map(|m| {
                m.seal(
                    secret.expose().as_bytes(),
                    SealedRow::ApiKey(&secret.hash()),
                )
            }),
            created_by: Some(creator_of(caller)),
            expires_at_ms,
            route_ids,
        })
        .await?;
    let change = Change::new("key.create", "key", key.id)
        .team(Some(team_id))
        .summary(format!(
            "key `{}` ({}) created in {}",
            key.name, key.prefix, key.team_name
        ));
    audit::record(state.store.as_ref(), caller, change).await;
    Ok((key, secret))
}

/// Lists the keys the caller can see, newest first, masked.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", params(KeyListQuery),
    responses((status = 200, body = [KeyView]), (status = 401, body = ErrorBody)))]
pub async fn list_keys(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<KeyListQuery>,
) -> ApiResult<Json<Vec<KeyView>>> {
    if let Some(team) = q.team_id {
        caller.require(team, Role::Viewer)?;
    }
    let now = now_ms();
    let keys = state.store.list_keys(q.team_id).await?;
    Ok(Json(
        keys.iter()
            .filter(|k| caller.role_in(k.team_id).is_some())
            .map(|k| KeyView::of(k, now))
            .collect(),
    ))
}

/// Creates a key; the secret is in the answer once.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = KeyCreate,
    responses((status = 201, body = KeyCreated), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_key(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiJson(req): ApiJson<KeyCreate>,
) -> ApiResult<(StatusCode, Json<KeyCreated>)> {
    let now = now_ms();
    let expires_at = match (req.expires_in.as_deref(), req.expires_at) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "expires_at",
                "give expires_in or expires_at, not both",
            ));
        }
        (text @ Some(_), None) => expiry_from("expires_in", text, now)?,
        (None, Some(at)) if at <= now || at >= MAX_TIME_MS => {
            return Err(ApiError::invalid(
                "expires_at",
                "expires_at must be in the future (epoch ms)",
            ));
        }
        (None, at) => at,
    };
    let (key, secret) = create_key_for(
        &state,
        &caller,
        req.team_id,
        &req.name,
        &req.description,
        expires_at,
        req.route_ids,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyCreated {
            key: secret.expose().to_owned(),
            view: KeyView::of(&key, now),
        }),
    ))
}

/// One key, masked.
#[utoipa::path(get, path = "/api/v1/keys/{id}", tag = "keys", params(("id" = i64, Path, description = "Key id")),
    responses((status = 200, body = KeyView), (status = 404, body = ErrorBody)))]
pub async fn get_key(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<KeyView>> {
    Ok(Json(KeyView::of(
        &visible_key(&state, &caller, id).await?,
        now_ms(),
    )))
}

/// Changes a key's name, description, expiry or allowed routes.
#[utoipa::path(patch, path = "/api/v1/keys/{id}", tag = "keys", request_body = KeyPatch, params(("id" = i64, Path, description = "Key id")),
    responses((status = 200, body = KeyView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_key(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<KeyPatch>,
) -> ApiResult<Json<KeyView>> {
    let key = managed_key(&state, &caller, id).await?;
    let now = now_ms();
    if let Some(Some(at)) = req.expires_at
        && !(0..MAX_TIME_MS).contains(&at)
    {
        return Err(ApiError::invalid(
            "expires_at",
            "expires_at must be an epoch ms time before 9999",
        ));
    }
    let route_ids = match req.route_ids {
        Some(Some(ids)) => Some(Some(
            check_routes(state.store.as_ref(), key.team_id, &ids).await?,
        )),
        other => other,
    };
    let update = KeyUpdate {
        name: req.name.as_deref().map(check_name).transpose()?,
        description: req
            .description
            .as_deref()
            .map(check_description)
            .transpose()?,
        expires_at_ms: req.expires_at,
        route_ids,
        sealed_key: None,
    };
    let mut changed = Vec::new();
    for (field, set) in [
        ("name", update.name.is_some()),
        ("description", update.description.is_some()),
        ("expiry", update.expires_at_ms.is_some()),
        ("routes", update.route_ids.is_some()),
    ] {
        if set {
            changed.push(field);
        }
    }
    let updated = state.store.update_key(id, update).await?;
    let change = Change::new("key.update", "key", id)
        .team(Some(key.team_id))
        .summary(format!(
            "key `{}` changed: {}",
            updated.name,
            if changed.is_empty() {
                "nothing".into()
            } else {
                changed.join(", ")
            }
        ));
    audit::record(state.store.as_ref(), &caller, change).await;
    Ok(Json(KeyView::of(&updated, now)))
}

/// Revokes a key: the gateway refuses it within a second.
#[utoipa::path(post, path = "/api/v1/keys/{id}/revoke", tag = "keys", params(("id" = i64, Path, description = "Key id")),
    responses((status = 200, body = KeyView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<KeyView>> {
    let key = managed_key(&state, &caller, id).await?;
    let now = now_ms();
    let revoked = state.store.revoke_key(id, now).await?;
    let change = Change::new("key.revoke", "key", id)
        .team(Some(key.team_id))
        .summary(format!("key `{}` revoked", key.name));
    audit::record(state.store.as_ref(), &caller, change).await;
    Ok(Json(KeyView::of(&revoked, now)))
}

/// Deletes a key (its usage stays).
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", params(("id" = i64, Path, description = "Key id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_key(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    delete_key_as(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a key the caller manages, audited; shared with the seed-compatible path.
pub async fn delete_key_as(state: &ConsoleState, caller: &Caller, id: i64) -> ApiResult<()> {
    let key = managed_key(state, caller, id).await?;
    state.store.delete_key(id).await?;
    let change = Change::new("key.delete", "key", id)
        .team(Some(key.team_id))
        .summary(format!("key `{}` deleted", key.name));
    audit::record(state.store.as_ref(), caller, change).await;
    Ok(())
}

/// Shows a key's secret again: owners and admins only, with a master key configured; audited.
#[utoipa::path(post, path = "/api/v1/keys/{id}/reveal", tag = "keys", params(("id" = i64, Path, description = "Key id")),
    responses((status = 200, body = KeyRevealed), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reveal_key(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<KeyRevealed>> {
    let key = visible_key(&state, &caller, id).await?;
    caller.require(key.team_id, Role::Admin)?;
    let Some(master) = &state.master_key else {
        return Err(ApiError::NotConfigured {
            code: "no_master_key",
            message: "keys can only be revealed when a master key is configured".into(),
        });
    };
    let Some(sealed) = &key.sealed_key else {
        return Err(ApiError::NotConfigured {
            code: "not_revealable",
            message: format!("key {id} was created without a master key: no copy was kept"),
        });
    };
    // Bound to this key's hash: a copy moved here from another row does not open, and what
    // opens must be this key.
    let secret = master
        .open_text(sealed, SealedRow::ApiKey(&key.key_hash))
        .ok()
        .filter(|secret| KeyHash::of(secret) == key.key_hash)
        .ok_or_else(|| ApiError::NotConfigured {
            code: "not_revealable",
            message: format!(
                "key {id}'s copy was sealed with another master key or for another key"
            ),
        })?;
    let change = Change::new("key.reveal", "key", id)
        .team(Some(key.team_id))
        .summary(format!("key `{}` revealed", key.name));
    audit::record(state.store.as_ref(), &caller, change).await;
    Ok(Json(KeyRevealed { id, key: secret }))
}
