//! Model routing over the API: upstream targets (instance admins only; the credential is
//! write-only) and models (read by every signed-in user, managed by instance admins). Each
//! handler parses, calls `rules::models` and maps the answer; gateways pick a change up through
//! the store revision.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tollgate_core::llm::{CredentialHeader, ModelSettings, PoolMember, Provider, Strategy};
use tollgate_core::time::now_ms;
use tollgate_gateway::target_health::CircuitState;
use tollgate_store::{ModelRecord, TargetRecord};
use utoipa::ToSchema;

use crate::ConsoleState;
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::rules::models::{
    self, ModelChange, ModelDraft, TargetChange, TargetDraft, model_settings, target_settings,
};
use crate::rules::{Actor, RuleResult};

/// An upstream target as the console shows it; never its credential.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TargetView {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Which API it speaks.
    pub provider: Provider,
    /// Base URL.
    pub base_url: String,
    /// Whether a credential is stored.
    pub has_credential: bool,
    /// The header the credential is sent in, and its value with `{key}` for the secret.
    pub credential_header: CredentialHeader,
    /// Query parameters added to every call (Azure's `api-version` included).
    pub query: BTreeMap<String, String>,
    /// Azure deployment.
    pub deployment: Option<String>,
    /// Share of its pools' calls.
    pub weight: u32,
    /// Requests per minute ceiling; null: none.
    pub rpm: Option<u32>,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Updated, epoch ms.
    pub updated_at: i64,
}

impl TargetView {
    /// The view of a stored target.
    pub fn of(record: &TargetRecord) -> RuleResult<Self> {
        let settings = target_settings(record)?;
        Ok(Self {
            id: record.id,
            name: record.name.clone(),
            provider: record.provider,
            base_url: record.base_url.clone(),
            has_credential: record.sealed_credential.is_some(),
            credential_header: settings.header_for(record.provider),
            query: settings.query_for(record.provider).into_iter().collect(),
            deployment: settings.deployment,
            weight: settings.weight,
            rpm: settings.rpm,
            created_at: record.created_at_ms,
            updated_at: record.updated_at_ms,
        })
    }
}

/// A model as the console shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModelView {
    /// Id.
    pub id: i64,
    /// Name, or wildcard such as `claude-*`.
    pub name: String,
    /// The targets serving it.
    pub pool: Vec<PoolMember>,
    /// Other names clients may use.
    pub aliases: Vec<String>,
    /// Models tried in order when the whole pool is down.
    pub fallbacks: Vec<String>,
    /// How a target is picked.
    pub strategy: Strategy,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Updated, epoch ms.
    pub updated_at: i64,
}

impl ModelView {
    /// The view of a stored model.
    pub fn of(record: &ModelRecord) -> RuleResult<Self> {
        let ModelSettings {
            pool,
            aliases,
            fallbacks,
            strategy,
        } = model_settings(record)?;
        Ok(Self {
            id: record.id,
            name: record.name.clone(),
            pool,
            aliases,
            fallbacks,
            strategy,
            created_at: record.created_at_ms,
            updated_at: record.updated_at_ms,
        })
    }
}

/// A new upstream target.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetCreate {
    /// Unique name (letters, digits, -, _ and .).
    pub name: String,
    /// `openai`, `anthropic`, `azure`, `gemini` or `openai_compatible`.
    pub provider: Provider,
    /// Base URL, up to where the endpoint (`/chat/completions`, `/messages`) follows; default the
    /// provider's public one (required for `azure` and `openai_compatible`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The upstream credential (needs a master key); write-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// The header the credential is sent in; default the provider's (`authorization`,
    /// `x-api-key`, `api-key`, `x-goog-api-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_header: Option<String>,
    /// The header's value with `{key}` for the credential, e.g. `Bearer {key}`; default `{key}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_format: Option<String>,
    /// Query parameters added to every call, e.g. `{"api-version": "2024-10-21"}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// Azure deployment name (azure only, required there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// Share of its pools' calls, 1 to 1000 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Most requests per minute sent to it; default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
}

impl From<TargetCreate> for TargetDraft {
    /// The request as the rules take it (the handler and the CLI both convert here).
    fn from(req: TargetCreate) -> Self {
        Self {
            name: req.name,
            provider: req.provider,
            base_url: req.base_url,
            credential: req.credential,
            credential_header: req.credential_header,
            credential_format: req.credential_format,
            query: req.query,
            deployment: req.deployment,
            weight: req.weight,
            rpm: req.rpm,
        }
    }
}

/// A change to a target; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetPatch {
    /// New base URL; another host removes the credential unless `credential` sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// New credential; `null` removes it.
    #[serde(
        default,
        deserialize_with = "super::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub credential: Option<Option<String>>,
    /// New credential header; `null`: back to the provider's.
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
    /// New query parameters, replacing all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<BTreeMap<String, String>>,
    /// New Azure deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// New weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// New requests per minute ceiling; `null` removes it.
    #[serde(
        default,
        deserialize_with = "super::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<u32>)]
    pub rpm: Option<Option<u32>>,
}

impl TargetPatch {
    /// The patch as the rules take it.
    pub fn into_change(self) -> RuleResult<TargetChange> {
        let credential_header = match (self.credential_header, self.credential_format) {
            (Some(header), format) => Some(header.map(|name| (name, format))),
            (None, Some(_)) => {
                return Err(crate::rules::RuleError::invalid(
                    "credential_format",
                    "credential_format needs credential_header (the header it is sent in)",
                ));
            }
            (None, None) => None,
        };
        Ok(TargetChange {
            base_url: self.base_url,
            credential: self.credential,
            credential_header,
            query: self.query,
            deployment: self.deployment.map(Some),
            weight: self.weight,
            rpm: self.rpm,
        })
    }
}

/// A new model.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelCreate {
    /// The name clients send as `model`: exact (`gpt-4o`) or a wildcard (`claude-*`).
    pub name: String,
    /// The targets that serve it, each with the model name to send it (default: the name asked for).
    pub pool: Vec<PoolMember>,
    /// Other names clients may use for it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Models tried in this order when the whole pool is down.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<String>,
    /// `weighted` (default) or `least_busy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
}

impl From<ModelCreate> for ModelDraft {
    fn from(req: ModelCreate) -> Self {
        Self {
            name: req.name,
            settings: ModelSettings {
                pool: req.pool,
                aliases: req.aliases,
                fallbacks: req.fallbacks,
                strategy: req.strategy.unwrap_or_default(),
            },
        }
    }
}

/// A change to a model; absent fields stay as they are, given lists replace the old ones.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPatch {
    /// New pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<Vec<PoolMember>>,
    /// New aliases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Vec<String>>,
    /// New fallbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallbacks: Option<Vec<String>>,
    /// New strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
}

impl From<ModelPatch> for ModelChange {
    fn from(p: ModelPatch) -> Self {
        Self {
            pool: p.pool,
            aliases: p.aliases,
            fallbacks: p.fallbacks,
            strategy: p.strategy,
        }
    }
}

/// Lists the upstream targets (instance admins).
#[utoipa::path(get, path = "/api/v1/targets", tag = "models",
    responses((status = 200, body = [TargetView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_targets(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TargetView>>> {
    let targets = models::list_targets(&state.rules(), &Actor::Console(&caller)).await?;
    Ok(Json(
        targets
            .iter()
            .map(TargetView::of)
            .collect::<RuleResult<_>>()?,
    ))
}

/// Where a target's circuit breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CircuitView {
    /// Calls go through.
    Closed,
    /// The target cools down until `reopens_at`.
    Open,
    /// The cooldown is over; the next call is a probe that closes or reopens it.
    HalfOpen,
}

/// Attempts sent to a target in one minute.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TargetMinute {
    /// Start of the minute, epoch ms.
    pub minute: i64,
    /// Attempts judged in that minute.
    pub attempts: u32,
    /// Of which failed (connect error, timeout, 429, 5xx).
    pub errors: u32,
}

/// One failed attempt on a target.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TargetError {
    /// When, epoch ms.
    pub at: i64,
    /// The upstream's status, or 502/504 when it did not answer.
    pub status: u16,
    /// A short reason (never an upstream body or a credential).
    pub reason: String,
}

/// A target's health as this process's gateway sees it (circuits are per process).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TargetHealthView {
    /// The target's id.
    pub target_id: i64,
    /// The target's name.
    pub name: String,
    /// Circuit breaker state.
    pub circuit: CircuitView,
    /// Since when the circuit is open or half-open, epoch ms; null when closed.
    pub open_since: Option<i64>,
    /// When an open circuit lets a probe through, epoch ms; null when closed.
    pub reopens_at: Option<i64>,
    /// Failures in a row since the last success.
    pub consecutive_failures: u32,
    /// Calls sent and not yet answered.
    pub in_flight: u64,
    /// Attempts in the current minute.
    pub current_minute_attempts: u32,
    /// The target's requests-per-minute ceiling; null: none.
    pub rpm: Option<u32>,
    /// Attempts and errors of the last minutes that had any, oldest first.
    pub minutes: Vec<TargetMinute>,
    /// The latest errors, newest first.
    pub recent_errors: Vec<TargetError>,
}

/// The health of every upstream target in this process (instance admins): circuit, calls in
/// flight, this minute's rate against its ceiling, recent attempts and errors.
#[utoipa::path(get, path = "/api/v1/targets/health", tag = "models",
    responses((status = 200, body = [TargetHealthView]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn targets_health(
    State(state): State<ConsoleState>,
    caller: Caller,
) -> ApiResult<Json<Vec<TargetHealthView>>> {
    let targets = models::list_targets(&state.rules(), &Actor::Console(&caller)).await?;
    let mut health = state.metrics.llm_health.snapshot(now_ms());
    let views = targets
        .iter()
        .map(|record| {
            let settings = target_settings(record)?;
            let snapshot = health.remove(&record.id);
            Ok(match snapshot {
                Some(s) => TargetHealthView {
                    target_id: record.id,
                    name: record.name.clone(),
                    circuit: match s.circuit {
                        CircuitState::Closed => CircuitView::Closed,
                        CircuitState::Open => CircuitView::Open,
                        CircuitState::HalfOpen => CircuitView::HalfOpen,
                    },
                    open_since: s.open_since_ms,
                    reopens_at: s.reopens_at_ms,
                    consecutive_failures: s.consecutive_failures,
                    in_flight: u64::try_from(s.in_flight).unwrap_or(u64::MAX),
                    current_minute_attempts: s.current_minute_attempts,
                    rpm: settings.rpm,
                    minutes: s
                        .minutes
                        .iter()
                        .map(|m| TargetMinute {
                            minute: m.minute_ms,
                            attempts: m.attempts,
                            errors: m.errors,
                        })
                        .collect(),
                    recent_errors: s
                        .recent_errors
                        .into_iter()
                        .map(|e| TargetError {
                            at: e.at_ms,
                            status: e.status,
                            reason: e.reason,
                        })
                        .collect(),
                },
                // Not loaded by the gateway yet (created a moment ago): nothing sent to it.
                None => TargetHealthView {
                    target_id: record.id,
                    name: record.name.clone(),
                    circuit: CircuitView::Closed,
                    open_since: None,
                    reopens_at: None,
                    consecutive_failures: 0,
                    in_flight: 0,
                    current_minute_attempts: 0,
                    rpm: settings.rpm,
                    minutes: Vec::new(),
                    recent_errors: Vec::new(),
                },
            })
        })
        .collect::<RuleResult<_>>()?;
    Ok(Json(views))
}

/// Creates an upstream target (instance admins).
#[utoipa::path(post, path = "/api/v1/targets", tag = "models", request_body = TargetCreate,
    responses((status = 201, body = TargetView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_target(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiJson(req): ApiJson<TargetCreate>,
) -> ApiResult<(StatusCode, Json<TargetView>)> {
    let record =
        models::create_target(&state.rules(), &Actor::Console(&caller), req.into()).await?;
    Ok((StatusCode::CREATED, Json(TargetView::of(&record)?)))
}

/// One upstream target (instance admins).
#[utoipa::path(get, path = "/api/v1/targets/{id}", tag = "models", params(("id" = i64, Path, description = "Target id")),
    responses((status = 200, body = TargetView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_target(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TargetView>> {
    let record = models::target(&state.rules(), &Actor::Console(&caller), id).await?;
    Ok(Json(TargetView::of(&record)?))
}

/// Changes an upstream target (instance admins).
#[utoipa::path(patch, path = "/api/v1/targets/{id}", tag = "models", request_body = TargetPatch, params(("id" = i64, Path, description = "Target id")),
    responses((status = 200, body = TargetView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_target(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<TargetPatch>,
) -> ApiResult<Json<TargetView>> {
    let change = req.into_change()?;
    let record =
        models::update_target(&state.rules(), &Actor::Console(&caller), id, change).await?;
    Ok(Json(TargetView::of(&record)?))
}

/// Deletes an upstream target no model uses (instance admins).
#[utoipa::path(delete, path = "/api/v1/targets/{id}", tag = "models", params(("id" = i64, Path, description = "Target id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_target(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    models::delete_target(&state.rules(), &Actor::Console(&caller), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists the models, their pools, aliases and fallbacks.
#[utoipa::path(get, path = "/api/v1/models", tag = "models",
    responses((status = 200, body = [ModelView]), (status = 401, body = ErrorBody)))]
pub async fn list_models(
    State(state): State<ConsoleState>,
    _caller: Caller,
) -> ApiResult<Json<Vec<ModelView>>> {
    let records = models::list_models(&state.rules()).await?;
    Ok(Json(
        records
            .iter()
            .map(ModelView::of)
            .collect::<RuleResult<_>>()?,
    ))
}

/// Creates a model (instance admins).
#[utoipa::path(post, path = "/api/v1/models", tag = "models", request_body = ModelCreate,
    responses((status = 201, body = ModelView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_model(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiJson(req): ApiJson<ModelCreate>,
) -> ApiResult<(StatusCode, Json<ModelView>)> {
    let record = models::create_model(&state.rules(), &Actor::Console(&caller), req.into()).await?;
    Ok((StatusCode::CREATED, Json(ModelView::of(&record)?)))
}

/// One model.
#[utoipa::path(get, path = "/api/v1/models/{id}", tag = "models", params(("id" = i64, Path, description = "Model id")),
    responses((status = 200, body = ModelView), (status = 404, body = ErrorBody)))]
pub async fn get_model(
    State(state): State<ConsoleState>,
    _caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ModelView>> {
    let record = models::model(&state.rules(), id).await?;
    Ok(Json(ModelView::of(&record)?))
}

/// Changes a model (instance admins).
#[utoipa::path(patch, path = "/api/v1/models/{id}", tag = "models", request_body = ModelPatch, params(("id" = i64, Path, description = "Model id")),
    responses((status = 200, body = ModelView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_model(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ModelPatch>,
) -> ApiResult<Json<ModelView>> {
    let record =
        models::update_model(&state.rules(), &Actor::Console(&caller), id, req.into()).await?;
    Ok(Json(ModelView::of(&record)?))
}

/// Deletes a model no other model falls back to (instance admins).
#[utoipa::path(delete, path = "/api/v1/models/{id}", tag = "models", params(("id" = i64, Path, description = "Model id")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_model(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    models::delete_model(&state.rules(), &Actor::Console(&caller), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
