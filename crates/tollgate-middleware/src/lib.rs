//! Usage recording for any axum/tower HTTP service, shipped to a tollgate server.
//!
//! Add [`UsageLayer`] to a service and every call is recorded — method, path (no query), status,
//! latency, client IP, user agent and, for LLM proxies, the model and tokens that the service puts
//! in a [`LlmUsage`] response extension (or in the request's [`UsageSlot`] when they are only
//! known once a stream has ended) — and sent in batches to the server's ingest API
//! (`POST {base}/api/v1/usage/events`, recorded there with source `middleware`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), tollgate_middleware::BuildError> {
//! use tollgate_middleware::{LlmUsage, UsageReporter};
//!
//! let reporter = UsageReporter::builder("http://127.0.0.1:8317")
//!     .bearer("the ingest secret")
//!     .service("chat-proxy")
//!     .build()?;
//! let app: axum::Router = axum::Router::new()
//!     .route("/v1/chat", axum::routing::post(|| async {
//!         let mut res = axum::response::IntoResponse::into_response("hi");
//!         res.extensions_mut().insert(LlmUsage::new("gpt-4o-mini", 12, 3));
//!         res
//!     }))
//!     .layer(reporter.layer());
//! # let _ = app;
//! // … serve `app`; on the way out:
//! let _ = reporter.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! The host service is never slowed down or failed by the recording: a record is a `try_send`
//! into a bounded queue (a full queue drops and counts it); a background task sends batches of at
//! most `batch_size` records, or what it has every `flush_interval`, each request with a timeout,
//! retried with exponential backoff a bounded number of times; while the server is unreachable
//! records wait in a bounded backlog (the oldest are dropped, and counted, past it). Every record
//! carries a UUID v7, so a batch retried after a lost answer is stored once.
//! [`UsageReporter::stats`] shows the counts; [`UsageReporter::flush`] and
//! [`UsageReporter::shutdown`] send what is pending.
//!
//! Response bodies stream through untouched; the call is recorded when the body ends, so
//! `latency_ms` covers the whole stream and `upstream_latency_ms` the time to the response head.
//! A body dropped before its end (the client went away) is recorded with status 499.

#![warn(missing_docs)]

mod layer;
mod record;
mod reporter;

pub use layer::{CLIENT_CLOSED, RecordedBody, ResponseFuture, UsageLayer, UsageService};
pub use record::{ApiKeyHash, ClientIp, LlmUsage, RouteName, UsageRecord, UsageSlot};
pub use reporter::{
    BuildError, FlushError, INGEST_PATH, IngestAuth, MAX_BATCH_SIZE, ReporterBuilder,
    ReporterStats, SIGNATURE_HEADER, TIMESTAMP_HEADER, UsageReporter, sign,
};
