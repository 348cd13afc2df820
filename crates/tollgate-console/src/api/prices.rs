//! Prices: the table in force for everyone to read, the console's overrides for instance admins.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tollgate_core::pricing::{ModelPrice, PriceSource};
use utoipa::ToSchema;

use crate::ConsoleState;
use crate::auth::Caller;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::rules::{Actor, prices};

/// One price in force, dollars per million tokens.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PriceView {
    /// The model name, or a name prefix: the longest one a call's model starts with applies.
    pub model: String,
    /// Input (prompt) tokens.
    pub input: f64,
    /// Output (completion) tokens.
    pub output: f64,
    /// Cached input tokens (absent: the input price).
    pub cached_input: Option<f64>,
    /// Reasoning tokens (absent: the output price).
    pub reasoning: Option<f64>,
    /// Where the price comes from: `built_in`, `config` or `console`.
    pub source: PriceSource,
    /// The provider, for built-in prices.
    pub provider: Option<String>,
    /// Who set it, for prices set from the console.
    pub updated_by: Option<String>,
    /// When it was set, epoch ms, for prices set from the console.
    pub updated_at: Option<i64>,
}

/// `GET /api/v1/prices` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PriceList {
    /// When the built-in prices were taken, `YYYY-MM-DD`: check them against the providers'.
    pub as_of: String,
    /// Every price in force, by model name. A call whose model matches none has no price: its
    /// cost shows as "no price", never as $0.
    pub prices: Vec<PriceView>,
}

/// `PUT /api/v1/prices/{model}` body: dollars per million tokens, 0 to 100000.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceSet {
    /// Input (prompt) tokens.
    pub input: f64,
    /// Output (completion) tokens.
    pub output: f64,
    /// Cached input tokens (absent: the input price).
    #[serde(default)]
    pub cached_input: Option<f64>,
    /// Reasoning tokens (absent: the output price).
    #[serde(default)]
    pub reasoning: Option<f64>,
}

impl From<&PriceSet> for ModelPrice {
    fn from(p: &PriceSet) -> Self {
        Self {
            input: p.input,
            output: p.output,
            cached_input: p.cached_input,
            reasoning: p.reasoning,
        }
    }
}

/// The table in force as the API shows it.
pub async fn price_list(state: &ConsoleState) -> ApiResult<PriceList> {
    let (table, overrides) = prices::list(&state.rules(), &state.prices).await?;
    Ok(views(&table, &overrides))
}

/// The views of a table in force and the overrides it was built with.
pub fn views(
    table: &tollgate_core::pricing::PricedTable,
    overrides: &[tollgate_store::PriceOverride],
) -> PriceList {
    let prices = table
        .entries()
        .map(|(model, e)| {
            let set = overrides
                .iter()
                .find(|o| o.model == model && e.source == PriceSource::Console);
            PriceView {
                model: model.to_owned(),
                input: e.price.input,
                output: e.price.output,
                cached_input: e.price.cached_input,
                reasoning: e.price.reasoning,
                source: e.source,
                provider: e.provider.map(str::to_owned),
                updated_by: set.map(|o| o.updated_by.clone()),
                updated_at: set.map(|o| o.updated_at_ms),
            }
        })
        .collect();
    PriceList {
        as_of: table.as_of().to_owned(),
        prices,
    }
}

/// Every price in force, with its source and the date of the built-in table (every signed-in
/// user).
#[utoipa::path(get, path = "/api/v1/prices", tag = "prices",
    responses((status = 200, body = PriceList), (status = 401, body = ErrorBody)))]
pub async fn list_prices(
    State(state): State<ConsoleState>,
    _caller: Caller,
) -> ApiResult<Json<PriceList>> {
    Ok(Json(price_list(&state).await?))
}

/// Sets the price of a model name or prefix from the console (instance admins); it replaces
/// the built-in and configured price of that name and applies to the next call.
#[utoipa::path(put, path = "/api/v1/prices/{model}", tag = "prices",
    params(("model" = String, Path, description = "Model name or prefix (URL-encoded)")),
    request_body = PriceSet,
    responses((status = 200, body = PriceView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_price(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(model): ApiPath<String>,
    ApiJson(req): ApiJson<PriceSet>,
) -> ApiResult<Json<PriceView>> {
    let set = prices::set(
        &state.rules(),
        &Actor::Console(&caller),
        &state.prices,
        &model,
        ModelPrice::from(&req),
    )
    .await?;
    Ok(Json(PriceView {
        model: set.model,
        input: set.price.input,
        output: set.price.output,
        cached_input: set.price.cached_input,
        reasoning: set.price.reasoning,
        source: PriceSource::Console,
        provider: None,
        updated_by: Some(set.updated_by),
        updated_at: Some(set.updated_at_ms),
    }))
}

/// Removes the console's price of a model name or prefix (instance admins): the built-in or
/// configured price of that name, if any, applies again.
#[utoipa::path(delete, path = "/api/v1/prices/{model}", tag = "prices",
    params(("model" = String, Path, description = "Model name or prefix (URL-encoded)")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn remove_price(
    State(state): State<ConsoleState>,
    caller: Caller,
    ApiPath(model): ApiPath<String>,
) -> ApiResult<StatusCode> {
    prices::remove(
        &state.rules(),
        &Actor::Console(&caller),
        &state.prices,
        &model,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
