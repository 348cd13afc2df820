//! The seed-compatible paths: the exact paths and answer shapes of the seed documents, beside
//! `/api/v1`, so that the seeds' clients work unchanged. Each file is one seed's part: [`usage`]
//! (000: the edge's usage report and usage statistics), [`dashboard`] (001), [`console`] and
//! [`keys`] (004); seed 003's `/api/record_token_usage` is served by the counters' handler.
//!
//! Every refusal on these paths answers the seeds' shape [`SeedRefusal`]
//! `{"code":<status>,"msg":"<status text>","error":{…}}` ([`refusals`], which the console router
//! places outside authentication so that a 401 takes the shape too), and the OpenAPI document says
//! so for each of them.

pub mod console;
pub mod dashboard;
pub mod keys;
pub mod usage;

use axum::Json;
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::{RefOr, path::Operation};
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::counters;
use crate::ConsoleState;
use crate::error::{ErrorDetail, SeedRefusal};

/// The seed's envelope: `{"code":0,"data":…}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeedEnvelope<T> {
    /// 0 for success.
    pub code: i32,
    /// The answer.
    pub data: T,
}

/// Every seed-compatible path, as the router matches it (the [`router`]'s paths; a test keeps the
/// two equal).
pub const PATHS: &[&str] = &[
    "/api/usage-log",
    "/api/usage/stats",
    "/api/usage/token/{id}",
    "/api/usage/route",
    "/api/dashboard/overview",
    "/api/dashboard/audit-logs",
    "/api/console/stats",
    "/api/console/usage-trend",
    "/api/console/logs",
    "/api/console/export",
    "/api/console/keys",
    "/api/console/keys/{id}",
    "/api/record_token_usage",
];

#[derive(OpenApi)]
#[openapi(components(schemas(SeedRefusal, ErrorDetail)))]
struct CompatDoc;

/// The seed-compatible operations, grouped by path: the table of both [`router`] and [`served`].
macro_rules! compat_operations {
    ($make:ident $(, $openapi:expr)?) => {
        $make!(
            $($openapi;)?
            [usage::usage_log],
            [usage::usage_stats],
            [usage::key_usage],
            [usage::route_usage],
            [dashboard::overview],
            [dashboard::dashboard_audit_logs],
            [console::console_stats],
            [console::usage_trend],
            [console::console_logs],
            [console::console_export],
            [keys::seed_list_keys, keys::seed_create_key],
            [keys::seed_delete_key],
            [counters::record_token_usage],
        )
    };
}

/// The seed-compatible routes with their documentation.
pub fn router() -> OpenApiRouter<ConsoleState> {
    let mut router = compat_operations!(documented_operations, CompatDoc::openapi());
    document_refusals(router.get_openapi_mut());
    router
}

/// The seed-compatible routes as served: [`router`]'s table without its documentation.
pub fn served() -> axum::Router<ConsoleState> {
    compat_operations!(served_operations)
}

/// Points every documented error answer of the seed-compatible operations at [`SeedRefusal`],
/// the shape [`refusals`] gives them.
fn document_refusals(openapi: &mut utoipa::openapi::OpenApi) {
    const FROM: &str = "#/components/schemas/ErrorBody";
    let to = format!("#/components/schemas/{}", <SeedRefusal as ToSchema>::name());
    for item in openapi.paths.paths.values_mut() {
        let operations: [&mut Option<Operation>; 5] = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            for response in operation.responses.responses.values_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                for content in response.content.values_mut() {
                    if let Some(RefOr::Ref(r)) = &mut content.schema
                        && r.ref_location == FROM
                    {
                        r.ref_location.clone_from(&to);
                    }
                }
            }
        }
    }
}

/// Whether `path` (a route as the router matches it) is seed-compatible.
pub fn is_compat_path(path: &str) -> bool {
    PATHS.contains(&path)
}

/// Largest error body rewritten; tollgate's are a few hundred bytes.
const MAX_REFUSAL_BYTES: usize = 64 * 1024;

/// Gives every refusal (status 400 and above) on a seed-compatible path the seeds' shape, keeping
/// tollgate's error object in it. Other paths and successful answers pass untouched.
pub async fn refusals(req: Request, next: Next) -> Response {
    let compat = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| is_compat_path(p.as_str()));
    let response = next.run(req).await;
    let status = response.status();
    if !compat || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_REFUSAL_BYTES)
        .await
        .unwrap_or_default();
    let detail = error_detail(status, &bytes);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let Ok(json) = serde_json::to_vec(&SeedRefusal::new(status, detail)) else {
        return (status, Json(serde_json::json!({"code": status.as_u16()}))).into_response();
    };
    Response::from_parts(parts, Body::from(json))
}

/// tollgate's error object from an error body; for a body that is not one (axum's own answers,
/// such as 405), one made from the status and the body's text.
fn error_detail(status: StatusCode, body: &[u8]) -> ErrorDetail {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: ErrorDetail,
    }
    if let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(body) {
        return error;
    }
    let reason = status.canonical_reason().unwrap_or("Error");
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    ErrorDetail {
        code: reason.to_ascii_lowercase().replace([' ', '-'], "_"),
        message: if text.is_empty() {
            reason.to_owned()
        } else {
            text.to_owned()
        },
        field: None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_path_list_is_the_router() {
        let routed: BTreeSet<String> = router().into_openapi().paths.paths.into_keys().collect();
        let listed: BTreeSet<String> = PATHS.iter().map(|p| (*p).to_owned()).collect();
        assert_eq!(routed, listed);
    }

    #[test]
    fn refusals_are_documented_in_the_seed_shape() {
        let doc = serde_json::to_value(router().into_openapi()).unwrap_or_default();
        let text = doc["paths"].to_string();
        assert!(!text.contains("#/components/schemas/ErrorBody"), "{text}");
        assert_eq!(
            doc["paths"]["/api/console/usage-trend"]["get"]["responses"]["422"]["content"]["application/json"]
                ["schema"]["$ref"],
            "#/components/schemas/SeedRefusal"
        );
        assert!(doc["components"]["schemas"]["SeedRefusal"].is_object());
    }

    #[test]
    fn error_bodies_keep_their_detail() {
        let body = br#"{"error":{"code":"invalid_field","message":"days must be 7 to 90","field":"days"}}"#;
        let detail = error_detail(StatusCode::UNPROCESSABLE_ENTITY, body);
        assert_eq!(detail.code, "invalid_field");
        assert_eq!(detail.field.as_deref(), Some("days"));
        let other = error_detail(StatusCode::METHOD_NOT_ALLOWED, b"");
        assert_eq!(other.code, "method_not_allowed");
        assert_eq!(other.message, "Method Not Allowed");
        let refusal = SeedRefusal::new(StatusCode::UNAUTHORIZED, other);
        assert_eq!((refusal.code, refusal.msg.as_str()), (401, "Unauthorized"));
    }
}
