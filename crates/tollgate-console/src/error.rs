//! The console API's one error type and its status mapping. Internal details go to the log; the
//! client gets `{"error":{"code","message","field"?}}`, or on the seed-compatible paths the seeds'
//! shape around it, [`SeedRefusal`].

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tollgate_store::StoreError;
use utoipa::ToSchema;

/// Why a console request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400).
    #[error("{message}")]
    BadRequest {
        /// Machine-readable code.
        code: &'static str,
        /// One human line.
        message: String,
        /// The offending field.
        field: Option<String>,
    },
    /// A field's value is not acceptable (422).
    #[error("{message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// One human line naming it.
        message: String,
    },
    /// No valid credentials (401).
    #[error("{message}")]
    Unauthenticated {
        /// Machine-readable code.
        code: &'static str,
        /// One human line.
        message: String,
    },
    /// Signed in but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// The CSRF token is missing or wrong (403).
    #[error("the X-CSRF-Token header is missing or does not match the session")]
    Csrf,
    /// No such thing, or not visible to the caller (404).
    #[error("{0}")]
    NotFound(String),
    /// Taken name, last owner, … (409).
    #[error("{0}")]
    Conflict(String),
    /// A conflict with its own machine-readable code, e.g. `prefix_conflict` (409).
    #[error("{message}")]
    ConflictWith {
        /// Machine-readable code.
        code: &'static str,
        /// One human line.
        message: String,
    },
    /// Gone: an expired or used invitation (410).
    #[error("{0}")]
    Gone(String),
    /// Gone with its own machine-readable code, e.g. `snapshot_required` (410).
    #[error("{message}")]
    GoneWith {
        /// Machine-readable code.
        code: &'static str,
        /// One human line.
        message: String,
    },
    /// Body over the limit (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Not JSON (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too many attempts (429), with the seconds to wait.
    #[error("{message}")]
    TooManyRequests {
        /// One human line.
        message: String,
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// A feature that needs configuration that is missing (e.g. no master key) (409 with its own code).
    #[error("{message}")]
    NotConfigured {
        /// Machine-readable code.
        code: &'static str,
        /// One human line.
        message: String,
    },
    /// The store cannot be reached (503).
    #[error("the store is unavailable")]
    Unavailable,
    /// A bug (500). The detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

/// The body of every console error.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code, e.g. `invalid_field`, `forbidden`.
    pub code: String,
    /// One human line.
    pub message: String,
    /// The offending field, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A refusal on a seed-compatible path: the seeds' `{"code":<HTTP status>,"msg":"<status text>"}`
/// (seed 002's auth middleware answers `{"code":401,"msg":"Unauthorized"}`), so that a client
/// written for the seeds that checks `code` understands it, with tollgate's usual error beside it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeedRefusal {
    /// The HTTP status (a seed's `code` is 0 on success).
    pub code: u16,
    /// The status text, as the seeds' Go servers write it (`Unauthorized`, `Not Found`, …).
    pub msg: String,
    /// tollgate's error, as on every other path.
    pub error: ErrorDetail,
}

impl SeedRefusal {
    /// The refusal for `status` carrying `error`.
    pub fn new(status: StatusCode, error: ErrorDetail) -> Self {
        Self {
            code: status.as_u16(),
            msg: status.canonical_reason().unwrap_or("Error").to_owned(),
            error,
        }
    }
}

impl ApiError {
    /// A 422 naming `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// A 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A 401.
    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthenticated {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::Csrf => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::NotConfigured { .. } | Self::ConflictWith { .. } => {
                StatusCode::CONFLICT
            }
            Self::Gone(_) | Self::GoneWith { .. } => StatusCode::GONE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told: the body's `error` (the command line prints a local rule's
    /// refusal from the same detail, so both front ends word it alike).
    pub fn detail(&self) -> ErrorDetail {
        let field = match self {
            Self::Invalid { field, .. } => Some(field.clone()),
            Self::BadRequest { field, .. } => field.clone(),
            _ => None,
        };
        ErrorDetail {
            code: self.code().to_owned(),
            message: self.to_string(),
            field,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Unauthenticated { code, .. }
            | Self::NotConfigured { code, .. }
            | Self::ConflictWith { code, .. }
            | Self::GoneWith { code, .. } => code,
            Self::Invalid { .. } => "invalid_field",
            Self::Forbidden(_) => "forbidden",
            Self::Csrf => "csrf_failed",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Gone(_) => "gone",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::TooManyRequests { .. } => "too_many_requests",
            Self::Unavailable => "store_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::NotFound(m) => Self::NotFound(m),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "console: store unavailable");
                Self::Unavailable
            }
            StoreError::Internal(m) => Self::Internal(m),
        }
    }
}

impl From<crate::rules::RuleError> for ApiError {
    fn from(e: crate::rules::RuleError) -> Self {
        use crate::rules::RuleError;
        match e {
            RuleError::Invalid { field, message } => Self::invalid(field, message),
            RuleError::Forbidden(m) => Self::Forbidden(m),
            RuleError::NotFound(m) => Self::NotFound(m),
            RuleError::Conflict(m) => Self::Conflict(m),
            RuleError::ConflictWith { code, message } => Self::ConflictWith { code, message },
            RuleError::NotConfigured { code, message } => Self::NotConfigured { code, message },
            RuleError::Store(e) => e.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => {
                // axum reports the path of the offending field (serde_path_to_error), e.g.
                // "…target type: name: invalid type: integer `5`, expected a string at line 1 column 9".
                let text = e.body_text();
                let detail = text
                    .split_once("target type: ")
                    .map_or(text.as_str(), |(_, d)| d)
                    .to_owned();
                let field = field_of_message(&detail);
                Self::Invalid {
                    field: field.unwrap_or_else(|| "body".into()),
                    message: detail,
                }
            }
            JsonRejection::JsonSyntaxError(e) => Self::BadRequest {
                code: "malformed_json",
                message: format!(
                    "the body is not valid JSON: {}",
                    e.body_text().rsplit(": ").next().unwrap_or("")
                ),
                field: None,
            },
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType(
                "send the body as JSON with Content-Type: application/json".into(),
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::PayloadTooLarge(
                    "the request body is larger than this endpoint accepts".into(),
                )
            }
            other => Self::bad_request("bad_body", other.body_text()),
        }
    }
}

/// The field a serde message blames: `name: invalid type…` → `name`; `unknown field `x`` → `x`;
/// `missing field `y`` → `y`.
pub fn field_of_message(detail: &str) -> Option<String> {
    for marker in ["unknown field `", "missing field `"] {
        if let Some(rest) = detail.split_once(marker).map(|(_, r)| r) {
            return rest.split('`').next().map(str::to_owned);
        }
    }
    let (path, _) = detail.split_once(": ")?;
    (!path.contains(' ') && !path.is_empty() && path != ".").then(|| path.to_owned())
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        let text = r.body_text();
        let detail = text
            .split_once("Failed to deserialize query string: ")
            .map_or(text.as_str(), |(_, d)| d);
        let field = field_of_message(detail).unwrap_or_else(|| "query".into());
        Self::Invalid {
            field,
            message: format!("query string: {detail}"),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::PayloadTooLarge("the request body is larger than this endpoint accepts".into())
        } else {
            Self::bad_request("bad_body", r.body_text())
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::BadRequest {
            code: "bad_path",
            message: r.body_text(),
            field: Some("path".into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(detail) = &self {
            tracing::error!(error = %detail, "console: internal error");
        }
        let retry = match &self {
            Self::TooManyRequests {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let body = ErrorBody {
            error: self.detail(),
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry
            && let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

/// Result of a console handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_their_field() {
        assert_eq!(
            field_of_message("name: invalid type: integer `5`, expected a string at line 1")
                .as_deref(),
            Some("name")
        );
        assert_eq!(
            field_of_message("unknown field `colour`, expected one of `name`").as_deref(),
            Some("colour")
        );
        assert_eq!(
            field_of_message("missing field `email` at line 1 column 2").as_deref(),
            Some("email")
        );
        assert_eq!(field_of_message("expected value at line 1 column 1"), None);
    }

    #[test]
    fn statuses_are_explicit() {
        assert_eq!(
            ApiError::invalid("x", "bad").status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(ApiError::Csrf.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            ApiError::from(StoreError::Conflict("taken".into())).status(),
            StatusCode::CONFLICT
        );
        assert_eq!(
            ApiError::from(StoreError::Unavailable("down".into())).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
