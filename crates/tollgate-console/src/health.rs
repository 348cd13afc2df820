//! Health and metrics of the console listener.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::ConsoleState;

/// Liveness: answers while the process runs.
#[utoipa::path(get, path = "/health", tag = "health", security(()), responses((status = 200, description = "Alive")))]
pub async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Overall status of `/health/detailed`.
#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Overall {
    Ok,
    Degraded,
    Down,
}

#[derive(Debug, Serialize)]
struct Component {
    status: Overall,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(flatten)]
    figures: serde_json::Value,
}

/// Each component's state: store round trip, key cache, usage writer backlog, spool.
#[utoipa::path(get, path = "/health/detailed", tag = "health", security(()), responses((status = 200, description = "ok or degraded"), (status = 503, description = "down")))]
pub async fn health_detailed(State(state): State<ConsoleState>) -> Response {
    let started = Instant::now();
    let ping = tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await;
    let round_trip_ms = started.elapsed().as_secs_f64() * 1000.0;
    let store = match ping {
        Ok(Ok(())) => Component {
            status: Overall::Ok,
            detail: None,
            figures: serde_json::json!({"backend": state.store.backend(), "round_trip_ms": round_trip_ms}),
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: store ping failed");
            Component {
                status: Overall::Down,
                detail: Some("the store does not answer".into()),
                figures: serde_json::json!({"backend": state.store.backend()}),
            }
        }
        Err(_) => Component {
            status: Overall::Down,
            detail: Some("the store did not answer within 2 s".into()),
            figures: serde_json::json!({"backend": state.store.backend()}),
        },
    };
    let queue_depth = state.metrics.queue_depth_now();
    let spool_bytes = state.metrics.spool_bytes_now();
    let dropped = state.metrics.dropped_now();
    let write_ok = state.metrics.store_write_ok_now();
    let write_failures = state.metrics.store_write_failures.get();
    let oldest_age = state.metrics.oldest_unwritten_age_seconds();
    let detail = match (write_ok, dropped) {
        (false, 0) => Some(
            "usage writes to the store fail: events wait in the spool, retried with backoff"
                .to_owned(),
        ),
        (false, _) => Some(format!(
            "usage writes to the store fail, and {dropped} usage events were lost"
        )),
        (true, 0) => None,
        (true, _) => Some(format!("{dropped} usage events were lost")),
    };
    let writer = Component {
        status: if dropped > 0 || !write_ok {
            Overall::Degraded
        } else {
            Overall::Ok
        },
        detail,
        figures: serde_json::json!({
            "queue_depth": queue_depth,
            "events_in_memory": queue_depth,
            "dropped": dropped,
            "store_write_ok": write_ok,
            "store_write_failures": write_failures,
            "oldest_unwritten_age_seconds": oldest_age,
        }),
    };
    let spool = Component {
        status: if spool_bytes > 0 {
            Overall::Degraded
        } else {
            Overall::Ok
        },
        detail: (spool_bytes > 0)
            .then(|| "usage events wait in the spool for the store".to_owned()),
        figures: serde_json::json!({"bytes": spool_bytes}),
    };
    let cache = Component {
        status: Overall::Ok,
        detail: None,
        figures: serde_json::json!({
            "entries": state.gateway.key_cache_entries(),
            "routes": state.gateway.route_count(),
        }),
    };
    let limits = match state.gateway.limits() {
        Some(limits) => {
            let degraded = limits.limiter().degraded();
            Component {
                status: if degraded {
                    Overall::Degraded
                } else {
                    Overall::Ok
                },
                detail: degraded.then(|| {
                    "Redis does not answer: limits count in this process alone (fail_open) \
                     or refuse limited calls (fail_closed) until it is back"
                        .to_owned()
                }),
                figures: serde_json::json!({
                    "backend": limits.backend(),
                    "degradations": limits.limiter().degradations(),
                }),
            }
        }
        None => Component {
            status: Overall::Ok,
            detail: None,
            figures: serde_json::json!({"backend": "none"}),
        },
    };
    let overall = if store.status == Overall::Down {
        Overall::Down
    } else if [&writer, &spool, &cache, &limits]
        .iter()
        .any(|c| c.status != Overall::Ok)
    {
        Overall::Degraded
    } else {
        Overall::Ok
    };
    let body = serde_json::json!({
        "status": overall,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "components": {"store": store, "key_cache": cache, "usage_writer": writer, "spool": spool, "limits": limits},
    });
    let code = if overall == Overall::Down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body)).into_response()
}

/// Prometheus metrics: OpenMetrics when the `Accept` header asks for it (as Prometheus does),
/// else the Prometheus text format 0.0.4 that every other tool (`promtool`, `curl`) reads.
#[utoipa::path(get, path = "/metrics", tag = "health", security(()), responses((status = 200, description = "Prometheus text format 0.0.4, or OpenMetrics 1.0 when the Accept header names application/openmetrics-text")))]
pub async fn metrics(
    State(state): State<ConsoleState>,
    headers: axum::http::HeaderMap,
) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (body, content_type) = if openmetrics {
        (
            state.metrics.render(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
    } else {
        (
            state.metrics.render_text(),
            "text/plain; version=0.0.4; charset=utf-8",
        )
    };
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
