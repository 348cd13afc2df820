//! `POST /api/v1/estimate`: counts the tokens of a text with a model's BPE vocabulary, as
//! `tollgate estimate` does and as the gateway does when a stream carries no usage.

use axum::Json;
use serde::{Deserialize, Serialize};
use tollgate_core::tokenize::Vocabulary;
use utoipa::ToSchema;

use super::counters::{MAX_ESTIMATE_BYTES, count_text};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::ApiJson;

/// A text to count.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EstimateRequest {
    /// The text, up to 1 MiB.
    pub text: String,
    /// Model whose vocabulary to use (default: `o200k_base`, today's OpenAI default).
    pub model: Option<String>,
    /// Vocabulary by name, overriding `model`: `o200k_base` or `cl100k_base`.
    pub vocabulary: Option<String>,
}

/// The count, with what `tollgate estimate --json` prints beside it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EstimateResult {
    /// Tokens.
    pub tokens: usize,
    /// The vocabulary that counted them.
    pub vocabulary: &'static str,
    /// The model named, if any.
    pub model: Option<String>,
    /// Characters (Unicode scalar values).
    pub characters: usize,
    /// Bytes of UTF-8.
    pub bytes: usize,
}

/// Counts the tokens of a text with a model's BPE vocabulary (`o200k_base` or `cl100k_base`).
#[utoipa::path(post, path = "/api/v1/estimate", tag = "counters", request_body = EstimateRequest,
    responses((status = 200, body = EstimateResult), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn estimate(
    caller: Caller,
    ApiJson(req): ApiJson<EstimateRequest>,
) -> ApiResult<Json<EstimateResult>> {
    let _ = caller;
    if req.text.len() > MAX_ESTIMATE_BYTES {
        return Err(ApiError::invalid(
            "text",
            format!("text: longer than {MAX_ESTIMATE_BYTES} bytes"),
        ));
    }
    if req.model.as_ref().is_some_and(|m| m.len() > 200) {
        return Err(ApiError::invalid(
            "model",
            "model is longer than 200 characters",
        ));
    }
    let vocab = match req.vocabulary.as_deref() {
        Some(name) => Vocabulary::parse(name).ok_or_else(|| {
            ApiError::invalid(
                "vocabulary",
                format!("vocabulary `{name}` is not o200k_base or cl100k_base"),
            )
        })?,
        None => Vocabulary::for_model(req.model.as_deref().unwrap_or("")),
    };
    let characters = req.text.chars().count();
    let bytes = req.text.len();
    let tokens = count_text(vocab, req.text).await?;
    Ok(Json(EstimateResult {
        tokens,
        vocabulary: vocab.name(),
        model: req.model,
        characters,
        bytes,
    }))
}
