//! Seed 004's key paths: list (masked), create `{name, description}` (the key shown once), delete.
//! They call the same rules as `/api/v1/keys`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tollgate_core::time::now_ms;
use utoipa::ToSchema;

use super::SeedEnvelope;
use crate::ConsoleState;
use crate::api::keys::{KeyCreated, create_key_for, delete_key_as};
use crate::api::views::KeyView;
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};

/// The seed's key creation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedKeyCreate {
    /// Name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
}

/// The seed's key list (masked), for the caller's teams.
#[utoipa::path(get, path = "/api/console/keys", tag = "seed", responses((status = 200, body = SeedEnvelope<Vec<KeyView>>), (status = 401, body = ErrorBody)))]
pub async fn seed_list_keys(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<SeedEnvelope<Vec<KeyView>>>> {
    let now = now_ms();
    let keys = state.store.list_keys(None).await?;
    let data = keys
        .iter()
        .filter(|k| caller.role_in(k.team_id).is_some())
        .map(|k| KeyView::of(k, now))
        .collect();
    Ok(Json(SeedEnvelope { code: 0, data }))
}

/// The seed's key creation: `{name, description}`; the key is in the answer once.
#[utoipa::path(post, path = "/api/console/keys", tag = "seed", request_body = SeedKeyCreate,
    responses((status = 201, body = SeedEnvelope<KeyCreated>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn seed_create_key(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiJson(req): ApiJson<SeedKeyCreate>,
) -> ApiResult<(StatusCode, Json<SeedEnvelope<KeyCreated>>)> {
    let (key, secret) = create_key_for(
        &state,
        &caller,
        None,
        &req.name,
        &req.description,
        None,
        None,
    )
    .await?;
    let data = KeyCreated {
        key: secret.expose().to_owned(),
        view: KeyView::of(&key, now_ms()),
    };
    Ok((StatusCode::CREATED, Json(SeedEnvelope { code: 0, data })))
}

/// The seed's key deletion.
#[utoipa::path(delete, path = "/api/console/keys/{id}", tag = "seed", params(("id" = i64, Path, description = "Key id")),
    responses((status = 200, body = SeedEnvelope<String>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn seed_delete_key(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<SeedEnvelope<String>>> {
    delete_key_as(&state, &caller, id).await?;
    Ok(Json(SeedEnvelope {
        code: 0,
        data: format!("key {id} deleted"),
    }))
}
