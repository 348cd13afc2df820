//! Gateway refusals: one error type with an explicit status mapping and one JSON shape that
//! OpenAI-style SDKs can parse. Internal details go to the log; the client sees only the code and
//! a fixed message.

use bytes::Bytes;
use http::StatusCode;

/// Why the gateway answered a call itself instead of with the upstream's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// No key in any of the accepted headers.
    #[error("missing_api_key")]
    MissingApiKey,
    /// The key is malformed, fails its checksum, or is unknown.
    #[error("invalid_api_key")]
    InvalidApiKey,
    /// The key's expiry has passed.
    #[error("expired_api_key")]
    ExpiredApiKey,
    /// The key was revoked.
    #[error("revoked_api_key")]
    RevokedApiKey,
    /// The key may not call the matched route.
    #[error("route_not_allowed")]
    RouteNotAllowed,
    /// No enabled route covers the path.
    #[error("no_route")]
    NoRoute,
    /// The path holds something an upstream could read as another path than the one matched
    /// (encoded `/` or `\`, a dot segment, double encoding, `;`, a control character, a bad escape).
    /// The refusal's message names which.
    #[error("invalid_path")]
    InvalidPath,
    /// The request body is larger than the configured limit.
    #[error("payload_too_large")]
    PayloadTooLarge,
    /// The request headers are larger than the configured limit.
    #[error("header_too_large")]
    HeaderTooLarge,
    /// The client's address failed too many key look-ups lately; keys not cached are refused.
    #[error("rate_limited")]
    RateLimited,
    /// The key's model allow-list does not cover the model the call asks for.
    #[error("model_not_allowed")]
    ModelNotAllowed,
    /// A request or token rate limit on the instance, team, key or route is reached.
    #[error("rate_limited")]
    LimitRateLimited,
    /// On an `llm` route: no model, alias or wildcard matches the body's `model`.
    #[error("model_not_found")]
    ModelNotFound,
    /// On an `llm` route: the body is not JSON naming a `model` (or too large to read).
    #[error("model_required")]
    ModelRequired,
    /// On an `llm` route: the path is none of the endpoints it serves.
    #[error("unknown_endpoint")]
    UnknownEndpoint,
    /// On an `llm` route: every target of the model and of its fallbacks is cooling down or at
    /// its rate ceiling.
    #[error("no_target_available")]
    NoTargetAvailable,
    /// A token or cost budget is spent.
    #[error("budget_exceeded")]
    BudgetExceeded,
    /// Too many calls are in flight for a concurrency limit.
    #[error("concurrency_limited")]
    ConcurrencyLimited,
    /// The shared limit counters cannot be reached and limits fail closed.
    #[error("limits_unavailable")]
    LimitsUnavailable,
    /// The request body did not arrive within the body-read deadline.
    #[error("request_timeout")]
    RequestTimeout,
    /// The key could not be looked up because the store is unreachable.
    #[error("store_unavailable")]
    StoreUnavailable,
    /// The route's upstream URL or credential cannot be used (see the gateway log).
    #[error("route_misconfigured")]
    RouteMisconfigured,
    /// The upstream refused or dropped the connection before answering.
    #[error("upstream_unreachable")]
    UpstreamUnreachable,
    /// The upstream did not connect or answer in time.
    #[error("upstream_timeout")]
    UpstreamTimeout,
    /// The client hung up before the response was sent (recorded as 499, never sent).
    #[error("client_closed_request")]
    ClientClosed,
    /// A bug in the gateway; details are in the log.
    #[error("internal_error")]
    Internal,
}

/// Status recorded for a client that hung up first (nginx's convention).
pub const CLIENT_CLOSED_STATUS: u16 = 499;

/// The code, OpenAI-style error type and message of every refusal, and the JSON body built from
/// them at compile time, so that refusing never allocates.
macro_rules! refusals {
    ($($variant:ident => $code:literal, $kind:literal, $message:literal;)*) => {
        impl GatewayError {
            /// The machine-readable code, as in the body and at the head of an event's error.
            pub fn code(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)*
                }
            }

            /// The message sent to the client.
            pub fn message(self) -> &'static str {
                match self {
                    $(Self::$variant => $message,)*
                }
            }

            /// The OpenAI-style `type` of the error.
            pub fn kind(self) -> &'static str {
                match self {
                    $(Self::$variant => $kind,)*
                }
            }

            /// The JSON body sent to the client.
            pub fn body(self) -> &'static str {
                match self {
                    $(Self::$variant => concat!(
                        r#"{"error":{"code":""#, $code,
                        r#"","message":""#, $message,
                        r#"","type":""#, $kind,
                        r#""}}"#
                    ),)*
                }
            }
        }
    };
}

refusals! {
    MissingApiKey => "missing_api_key", "authentication_error",
        "No API key was sent. Send it as `Authorization: Bearer ntk_…`, `X-API-Key` or `api-key`.";
    InvalidApiKey => "invalid_api_key", "authentication_error", "The API key is not valid.";
    ExpiredApiKey => "expired_api_key", "authentication_error", "The API key has expired.";
    RevokedApiKey => "revoked_api_key", "authentication_error", "The API key has been revoked.";
    RouteNotAllowed => "route_not_allowed", "permission_error", "This API key may not call this route.";
    NoRoute => "no_route", "not_found_error", "No route matches this path.";
    InvalidPath => "invalid_path", "invalid_request_error",
        "The path holds an encoded separator, a dot segment or a bad escape.";
    PayloadTooLarge => "payload_too_large", "invalid_request_error",
        "The request body is larger than the gateway accepts.";
    HeaderTooLarge => "header_too_large", "invalid_request_error",
        "The request headers are larger than the gateway accepts.";
    RateLimited => "rate_limited", "rate_limit_error",
        "Too many calls with unknown API keys from this address. Retry later.";
    ModelNotAllowed => "model_not_allowed", "permission_error",
        "This API key may not call this model.";
    ModelNotFound => "model_not_found", "invalid_request_error",
        "The model does not exist or is not served here.";
    ModelRequired => "model_required", "invalid_request_error",
        "The request body must be JSON naming a `model`.";
    UnknownEndpoint => "unknown_endpoint", "invalid_request_error",
        "This route serves /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models and /v1/messages.";
    NoTargetAvailable => "no_target_available", "api_error",
        "Every upstream of this model is cooling down. Retry shortly.";
    LimitRateLimited => "rate_limited", "rate_limit_error",
        "A rate limit for this API key, its team, the route or the instance is reached. Retry later.";
    BudgetExceeded => "budget_exceeded", "rate_limit_error",
        "A token or cost budget for this API key, its team, the route or the instance is spent.";
    ConcurrencyLimited => "concurrency_limited", "rate_limit_error",
        "Too many calls are in flight. Retry when one has finished.";
    LimitsUnavailable => "limits_unavailable", "api_error",
        "The gateway cannot check its limits right now. Retry shortly.";
    RequestTimeout => "request_timeout", "invalid_request_error",
        "The request body did not arrive in time.";
    StoreUnavailable => "store_unavailable", "api_error",
        "The gateway cannot check the API key right now. Retry shortly.";
    RouteMisconfigured => "route_misconfigured", "api_error",
        "This route's upstream is not usable; the gateway's operator has the details.";
    UpstreamUnreachable => "upstream_unreachable", "api_error",
        "The upstream service could not be reached.";
    UpstreamTimeout => "upstream_timeout", "timeout_error",
        "The upstream service did not answer in time.";
    ClientClosed => "client_closed_request", "invalid_request_error",
        "The client closed the request.";
    Internal => "internal_error", "api_error", "The gateway failed to handle the request.";
}

impl GatewayError {
    /// The HTTP status of the refusal.
    pub fn status(self) -> StatusCode {
        match self {
            Self::MissingApiKey
            | Self::InvalidApiKey
            | Self::ExpiredApiKey
            | Self::RevokedApiKey => StatusCode::UNAUTHORIZED,
            Self::RouteNotAllowed | Self::ModelNotAllowed => StatusCode::FORBIDDEN,
            Self::NoRoute | Self::ModelNotFound | Self::UnknownEndpoint => StatusCode::NOT_FOUND,
            Self::ModelRequired => StatusCode::BAD_REQUEST,
            Self::NoTargetAvailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::InvalidPath => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::RateLimited
            | Self::LimitRateLimited
            | Self::BudgetExceeded
            | Self::ConcurrencyLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::StoreUnavailable | Self::LimitsUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::RouteMisconfigured | Self::UpstreamUnreachable => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::ClientClosed => {
                StatusCode::from_u16(CLIENT_CLOSED_STATUS).unwrap_or(StatusCode::BAD_REQUEST)
            }
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The status as recorded in usage events.
    pub fn status_code(self) -> u16 {
        match self {
            Self::ClientClosed => CLIENT_CLOSED_STATUS,
            other => other.status().as_u16(),
        }
    }

    /// The `type` of the error in Anthropic's error shape.
    pub fn anthropic_kind(self) -> &'static str {
        match self.status().as_u16() {
            400 | 408 | 431 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            503 => "overloaded_error",
            _ => "api_error",
        }
    }

    /// The body in Anthropic's error shape (`{"type":"error","error":{"type":…,"message":…}}`),
    /// for refusals on `anthropic` routes; the tollgate code rides along as `error.code`.
    pub fn anthropic_body(self, message: Option<&str>) -> Bytes {
        Bytes::from(
            serde_json::json!({
                "type": "error",
                "error": {
                    "type": self.anthropic_kind(),
                    "message": message.unwrap_or(self.message()),
                    "code": self.to_string(),
                },
            })
            .to_string(),
        )
    }

    /// The body as bytes, without copying.
    pub fn body_bytes(self) -> Bytes {
        Bytes::from_static(self.body().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [GatewayError; 26] = [
        GatewayError::ModelNotFound,
        GatewayError::ModelRequired,
        GatewayError::UnknownEndpoint,
        GatewayError::NoTargetAvailable,
        GatewayError::RateLimited,
        GatewayError::ModelNotAllowed,
        GatewayError::LimitRateLimited,
        GatewayError::BudgetExceeded,
        GatewayError::ConcurrencyLimited,
        GatewayError::LimitsUnavailable,
        GatewayError::RequestTimeout,
        GatewayError::MissingApiKey,
        GatewayError::InvalidApiKey,
        GatewayError::ExpiredApiKey,
        GatewayError::RevokedApiKey,
        GatewayError::RouteNotAllowed,
        GatewayError::NoRoute,
        GatewayError::InvalidPath,
        GatewayError::PayloadTooLarge,
        GatewayError::HeaderTooLarge,
        GatewayError::StoreUnavailable,
        GatewayError::RouteMisconfigured,
        GatewayError::UpstreamUnreachable,
        GatewayError::UpstreamTimeout,
        GatewayError::ClientClosed,
        GatewayError::Internal,
    ];

    #[test]
    fn every_body_is_the_documented_json_shape() {
        for err in ALL {
            let value: serde_json::Value = serde_json::from_str(err.body()).unwrap();
            assert_eq!(value["error"]["code"], err.to_string(), "{err:?}");
            assert!(
                value["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
            assert!(
                value["error"]["type"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            );
        }
    }

    #[test]
    fn statuses_follow_the_spec() {
        assert_eq!(GatewayError::MissingApiKey.status_code(), 401);
        assert_eq!(GatewayError::RevokedApiKey.status_code(), 401);
        assert_eq!(GatewayError::RouteNotAllowed.status_code(), 403);
        assert_eq!(GatewayError::NoRoute.status_code(), 404);
        assert_eq!(GatewayError::PayloadTooLarge.status_code(), 413);
        assert_eq!(GatewayError::HeaderTooLarge.status_code(), 431);
        assert_eq!(GatewayError::StoreUnavailable.status_code(), 503);
        assert_eq!(GatewayError::RateLimited.status_code(), 429);
        assert_eq!(GatewayError::RequestTimeout.status_code(), 408);
        assert_eq!(GatewayError::UpstreamUnreachable.status_code(), 502);
        assert_eq!(GatewayError::UpstreamTimeout.status_code(), 504);
        assert_eq!(GatewayError::ClientClosed.status_code(), 499);
        assert_eq!(GatewayError::ModelNotAllowed.status_code(), 403);
        assert_eq!(GatewayError::LimitRateLimited.status_code(), 429);
        assert_eq!(GatewayError::BudgetExceeded.status_code(), 429);
        assert_eq!(GatewayError::ConcurrencyLimited.status_code(), 429);
        assert_eq!(GatewayError::LimitsUnavailable.status_code(), 503);
    }

    #[test]
    fn anthropic_bodies_have_the_anthropic_shape() {
        for err in ALL {
            let value: serde_json::Value =
                serde_json::from_slice(&err.anthropic_body(None)).unwrap();
            assert_eq!(value["type"], "error", "{err:?}");
            assert_eq!(value["error"]["code"], err.to_string(), "{err:?}");
            assert!(
                value["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
        let limited: serde_json::Value =
            serde_json::from_slice(&GatewayError::BudgetExceeded.anthropic_body(Some("spent")))
                .unwrap();
        assert_eq!(limited["error"]["type"], "rate_limit_error");
        assert_eq!(limited["error"]["message"], "spent");
    }
}
