//! A small axum service that reports its usage to a tollgate server.
//!
//! ```text
//! TOLLGATE_URL=http://127.0.0.1:8317 TOLLGATE_INGEST_SECRET=… \
//!     cargo run -p tollgate-middleware --example echo_service
//! curl 'http://127.0.0.1:3000/echo?text=hi'
//! curl -H 'Authorization: Bearer ntk_…' -d '{"model":"echo-1","prompt":"hello world"}' \
//!     http://127.0.0.1:3000/v1/completions
//! curl http://127.0.0.1:3000/v1/stream
//! ```
//!
//! `/echo` is plain HTTP; `/v1/completions` answers like an LLM and sets [`LlmUsage`] on its
//! response (and the caller's key hash, so that tollgate attributes the call); `/v1/stream` streams
//! and only knows its tokens at the end, so it fills the request's [`UsageSlot`]. Ctrl-C stops the
//! server and flushes the reporter.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Extension, Query};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::Deserialize;
use tollgate_middleware::{ApiKeyHash, LlmUsage, UsageReporter, UsageSlot};

#[derive(Deserialize)]
struct EchoQuery {
    text: Option<String>,
}

async fn echo(Query(q): Query<EchoQuery>) -> String {
    q.text.unwrap_or_default()
}

#[derive(Deserialize)]
struct Completion {
    model: String,
    prompt: String,
}

/// A fake completion: the answer is the prompt; a "token" is a word.
async fn completions(headers: HeaderMap, Json(req): Json<Completion>) -> Response {
    if req.prompt.is_empty() {
        return (StatusCode::BAD_REQUEST, "empty prompt").into_response();
    }
    let tokens = u64::try_from(req.prompt.split_whitespace().count()).unwrap_or(u64::MAX);
    let mut res = Json(serde_json::json!({
        "model": req.model,
        "choices": [{"text": req.prompt}],
        "usage": {"prompt_tokens": tokens, "completion_tokens": tokens},
    }))
    .into_response();
    res.extensions_mut()
        .insert(LlmUsage::new(req.model, tokens, tokens));
    if let Some(key) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        res.extensions_mut().insert(ApiKeyHash::of_key(key));
    }
    res
}

/// Streams five words; the usage is known once the stream is done.
async fn stream(Extension(slot): Extension<UsageSlot>) -> Response {
    let words = ["one ", "two ", "three ", "four ", "five"];
    let body = futures_util::stream::iter(words.into_iter().enumerate()).then(move |(i, w)| {
        let slot = slot.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if i + 1 == words.len() {
                slot.set(LlmUsage::new("echo-stream", 1, 5));
            }
            Ok::<_, std::convert::Infallible>(w)
        }
    });
    axum::body::Body::from_stream(body).into_response()
}

/// The example's routes, without the usage layer.
fn app() -> Router {
    Router::new()
        .route("/echo", get(echo))
        .route("/v1/completions", post(completions))
        .route("/v1/stream", get(stream))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let base = std::env::var("TOLLGATE_URL").unwrap_or_else(|_| "http://127.0.0.1:8317".into());
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let mut builder = UsageReporter::builder(base).service("echo-service");
    if let Ok(secret) = std::env::var("TOLLGATE_INGEST_SECRET") {
        builder = builder.signature(secret);
    }
    let reporter = builder.build()?;
    let app = app().layer(reporter.layer());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!(%listen, "echo service listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    if let Err(e) = reporter.shutdown().await {
        tracing::warn!(%e, "usage not fully delivered");
    }
    tracing::info!(stats = ?reporter.stats(), "usage reporter stopped");
    Ok(())
}
