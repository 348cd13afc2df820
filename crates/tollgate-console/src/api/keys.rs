//! API keys over the API: create (the secret returned once), list (masked), get, update, revoke,
//! delete, reveal. Each handler parses, calls `rules::keys` and maps the answer. Changes reach
//! the gateway through the store revision within a second.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tollgate_core::time::now_ms;
use tollgate_core::{ApiKey, Role};
use tollgate_store::KeyRecord;
use utoipa::{IntoParams, ToSchema};

use super::views::KeyView;
use crate::ConsoleState;
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::rules::keys::{self, Expiry, KeyChange, KeyDraft};
use crate::rules::{Actor, RuleError};

/// Filters of the key list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeyListQuery {
    /// Only this team's keys.
    pub team_id: Option<i64>,
    /// `true`: only keys that have never been used (clean-up candidates).
    #[serde(default)]
    pub unused: bool,
    /// Only keys not used in the last N days, 1 to 3650; never-used keys count as idle.
    pub idle_days: Option<u32>,
}

/// A new key.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
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
    /// Models the key may call on LLM routes, as glob patterns (`gpt-4o*`); omit or null for every model.
    pub models: Option<Vec<String>>,
}

impl TryFrom<KeyCreate> for KeyDraft {
    type Error = RuleError;

    /// The request as the key rules take it (the HTTP handler and the CLI both convert here).
    fn try_from(req: KeyCreate) -> Result<Self, RuleError> {
        let expiry = match (req.expires_in, req.expires_at) {
            (Some(_), Some(_)) => {
                return Err(RuleError::invalid(
                    "expires_at",
                    "give expires_in or expires_at, not both",
                ));
            }
            (Some(text), None) => Expiry::In(text),
            (None, Some(at)) => Expiry::At(at),
            (None, None) => Expiry::Never,
        };
        Ok(Self {
            team_id: req.team_id,
            name: req.name,
            description: req.description,
            expiry,
            route_ids: req.route_ids,
            models: req.models,
        })
    }
}

/// The created key: `key` is shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyCreated {
    /// The secret `ntk_…`.
    pub key: String,
    /// The key as listed.
    #[serde(flatten)]
    pub view: KeyView,
}

/// A change to a key; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPatch {
    /// New name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// New expiry, epoch ms; `null` removes it.
    #[serde(
        default,
        deserialize_with = "super::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<i64>)]
    pub expires_at: Option<Option<i64>>,
    /// New allowed route ids; `null` for all of the team's.
    #[serde(
        default,
        deserialize_with = "super::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Vec<i64>>)]
    pub route_ids: Option<Option<Vec<i64>>>,
    /// New model allow-list (glob patterns); `null` for every model.
    #[serde(
        default,
        deserialize_with = "super::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<Vec<String>>)]
    pub models: Option<Option<Vec<String>>>,
}

/// A revealed key.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyRevealed {
    /// Id.
    pub id: i64,
    /// The secret.
    pub key: String,
}

/// Creates a key for the caller in `team_id` (checked: member or more) and audits it; shared
/// with the seed-compatible path.
pub async fn create_key_for(
    state: &ConsoleState,
    caller: &Caller,
    team_id: Option<i64>,
    name: &str,
    description: &str,
    expires_at_ms: Option<i64>,
    route_ids: Option<Vec<i64>>,
) -> ApiResult<(KeyRecord, ApiKey)> {
    let draft = KeyDraft {
        team_id,
        name: name.to_owned(),
        description: description.to_owned(),
        expiry: expires_at_ms.map_or(Expiry::Never, Expiry::At),
        route_ids,
        models: None,
    };
    Ok(keys::create(&state.rules(), &Actor::Console(caller), draft).await?)
}

/// Every key's model allow-list, by key id.
async fn key_models(state: &ConsoleState) -> ApiResult<HashMap<i64, Vec<String>>> {
    Ok(crate::rules::limits::key_models(state.store.as_ref()).await?)
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
    let by_use = keys::UseFilter::new(q.unused, q.idle_days)?;
    let now = now_ms();
    let keys = state.store.list_keys(q.team_id).await?;
    let models = key_models(&state).await?;
    Ok(Json(
        keys.iter()
            .filter(|k| caller.role_in(k.team_id).is_some() && by_use.keeps(k, now))
            .map(|k| KeyView::of(k, now).with_models(&models))
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
    let draft = KeyDraft::try_from(req)?;
    let (key, secret) = keys::create(&state.rules(), &Actor::Console(&caller), draft).await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyCreated {
            key: secret.expose().to_owned(),
            view: KeyView::of(&key, now_ms()).with_models(&key_models(&state).await?),
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
    let key = keys::visible(state.store.as_ref(), &Actor::Console(&caller), id).await?;
    Ok(Json(
        KeyView::of(&key, now_ms()).with_models(&key_models(&state).await?),
    ))
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
    let change = KeyChange {
        name: req.name,
        description: req.description,
        expires_at: req.expires_at,
        route_ids: req.route_ids,
        models: req.models,
    };
    let updated = keys::update(&state.rules(), &Actor::Console(&caller), id, change).await?;
    Ok(Json(
        KeyView::of(&updated, now_ms()).with_models(&key_models(&state).await?),
    ))
}

/// Revokes a key: the gateway refuses it within a second.
#[utoipa::path(post, path = "/api/v1/keys/{id}/revoke", tag = "keys", params(("id" = i64, Path, description = "Key id")),
    responses((status = 200, body = KeyView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<KeyView>> {
    let revoked = keys::revoke(&state.rules(), &Actor::Console(&caller), id).await?;
    Ok(Json(
        KeyView::of(&revoked, now_ms()).with_models(&key_models(&state).await?),
    ))
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
    Ok(keys::delete(&state.rules(), &Actor::Console(caller), id).await?)
}

/// Shows a key's secret again: owners and admins only, with a master key configured; audited.
#[utoipa::path(post, path = "/api/v1/keys/{id}/reveal", tag = "keys", params(("id" = i64, Path, description = "Key id")),
    responses((status = 200, body = KeyRevealed), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reveal_key(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<KeyRevealed>> {
    let key = keys::reveal(&state.rules(), &Actor::Console(&caller), id).await?;
    Ok(Json(KeyRevealed { id, key }))
}
