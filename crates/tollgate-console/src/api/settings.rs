//! Instance settings (instance admins): what is configured, and the ingest secret's rotation.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use tollgate_core::crypto::SealedRow;
use utoipa::ToSchema;

use super::ingest::{INGEST_SECRET_SETTING, SecretSource, StoredSecret};
use crate::ConsoleState;
use crate::audit::{self, Change};
use crate::auth::{Caller, random_secret};
use crate::error::{ApiError, ApiResult, ErrorBody};

/// Instance settings as the console shows them.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsView {
    /// Where the ingest secret in force comes from.
    pub ingest_secret: SecretSource,
    /// Whether ingest without credentials is allowed.
    pub ingest_open: bool,
    /// Whether a master key is configured (revealable keys, upstream credentials).
    pub master_key: bool,
    /// Raw usage retention, days.
    pub retention_days: u32,
}

/// The instance settings (instance admins).
#[utoipa::path(get, path = "/api/v1/settings", tag = "settings", responses((status = 200, body = SettingsView), (status = 403, body = ErrorBody)))]
pub async fn get_settings(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<SettingsView>> {
    caller.require_admin()?;
    let (_, source) = state.ingest_secret.current(&state).await?;
    Ok(Json(SettingsView {
        ingest_secret: source,
        ingest_open: state.settings.ingest_open,
        master_key: state.master_key.is_some(),
        retention_days: state.settings.retention_days,
    }))
}

/// A new ingest secret, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestSecretRotated {
    /// The new secret: sign bodies with it or send it as a bearer token. The previous one stops working.
    pub secret: String,
}

/// Rotates the ingest secret (instance admins): the old one stops working within a second.
#[utoipa::path(post, path = "/api/v1/settings/ingest-secret", tag = "settings",
    responses((status = 201, body = IngestSecretRotated), (status = 403, body = ErrorBody)))]
pub async fn rotate_ingest_secret(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<(StatusCode, Json<IngestSecretRotated>)> {
    caller.require_admin()?;
    let secret = random_secret();
    let stored = match &state.master_key {
        Some(m) => StoredSecret::Sealed(hex::encode(
            m.seal(secret.as_bytes(), SealedRow::Setting(INGEST_SECRET_SETTING)),
        )),
        None => StoredSecret::Plain(secret.clone()),
    };
    let text = serde_json::to_string(&stored).map_err(|e| ApiError::Internal(e.to_string()))?;
    state
        .store
        .set_setting(INGEST_SECRET_SETTING, &text)
        .await?;
    state.ingest_secret.invalidate();
    audit::record(
        state.store.as_ref(),
        &caller,
        Change::new("setting.change", "setting", INGEST_SECRET_SETTING)
            .summary("ingest secret rotated"),
    )
    .await;
    Ok((StatusCode::CREATED, Json(IngestSecretRotated { secret })))
}
