//! OpenTelemetry traces of gateway calls (`[otel]`), exported over OTLP/HTTP (protobuf).
//!
//! Each gateway call is a server span (`gateway call`) with the route, model, key id (never the
//! key), status, tokens and cost; the upstream request is its child (`upstream`, a client span
//! from sending to the upstream's response head). A W3C `traceparent` (and `tracestate`) from the
//! client makes the call span its child; the upstream gets a `traceparent` naming the upstream
//! span, so the upstream's own spans join the same trace.
//!
//! Finished spans go to the SDK's batch processor: a bounded queue (a full one drops spans, never
//! waits) drained by its own thread, whose exports run on the tokio runtime through the gateway's
//! hyper client with a timeout. A collector that is down costs failed exports, never a call.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector, HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider,
};
use tollgate_core::UsageEvent;

/// Largest collector answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Most finished spans waiting for export; past it new spans are dropped.
const MAX_QUEUE: usize = 8192;
/// How often waiting spans are exported.
const EXPORT_DELAY: Duration = Duration::from_secs(2);

/// `[otel]` as the gateway uses it.
#[derive(Debug, Clone)]
pub struct OtelConfig {
    /// The OTLP/HTTP traces URL, e.g. `http://127.0.0.1:4318/v1/traces`.
    pub endpoint: String,
    /// `service.name` of the spans.
    pub service_name: String,
    /// Share of traces started here that are recorded (0 to 1); a client's sampled flag wins.
    pub sampling_ratio: f64,
    /// Longest time one export may take.
    pub timeout: Duration,
}

/// The tracer of the gateway's calls and its exporter.
pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

impl fmt::Debug for Tracing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracing").finish_non_exhaustive()
    }
}

/// The exporter's HTTP client: the export runs on the tokio runtime (the batch processor's
/// thread only waits for it), with a timeout.
#[derive(Clone)]
struct ExportClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
}

impl fmt::Debug for ExportClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    #[expect(
        clippy::disallowed_methods,
        reason = "one export, ended by its timeout; the batch processor's thread awaits it"
    )]
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let timeout = self.timeout;
        let (parts, body) = request.into_parts();
        let request = Request::from_parts(parts, Full::new(body));
        let exchange = async move {
            let response = client.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES).collect().await?;
            Ok::<_, HttpError>(Response::from_parts(parts, body.to_bytes()))
        };
        let task = self.runtime.spawn(async move {
            match tokio::time::timeout(timeout, exchange).await {
                Ok(answer) => answer,
                Err(_) => Err(HttpError::from(format!(
                    "no answer within {} ms",
                    timeout.as_millis()
                ))),
            }
        });
        match task.await {
            Ok(answer) => answer,
            Err(e) => Err(HttpError::from(e)),
        }
    }
}

impl Tracing {
    /// Sets up the exporter and the tracer. Must be called inside the tokio runtime the exports
    /// are to run on.
    pub fn start(config: &OtelConfig) -> Result<Arc<Self>, String> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "traces must be set up inside a tokio runtime".to_owned())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup for the OTLP exporter failed: {e}"))?;
        let tls = hyper_rustls::ConfigBuilderExt::with_webpki_roots(tls).with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = ExportClient {
            client: Client::builder(TokioExecutor::new()).build(https),
            runtime,
            timeout: config.timeout,
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(config.endpoint.clone())
            .with_timeout(config.timeout)
            .with_http_client(client)
            .build()
            .map_err(|e| format!("otel.endpoint: {e}"))?;
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(MAX_QUEUE)
            .with_scheduled_delay(EXPORT_DELAY)
            .build();
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(batch)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sampling_ratio,
            ))))
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("tollgate-gateway");
        Ok(Arc::new(Self {
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
        }))
    }

    /// Exports what is waiting and stops the exporter. Blocks (up to the export timeout): call
    /// it from a blocking thread.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "traces not all exported at shutdown");
        }
    }

    /// Starts the span of a call, the child of the client's `traceparent` when it sent one.
    pub(crate) fn start_call(&self, headers: &HeaderMap, method: &str, path: &str) -> CallSpan {
        let parent = self.propagator.extract(&HeaderExtractor(headers));
        let span = self
            .tracer
            .span_builder("gateway call")
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("http.request.method", method.to_owned()),
                KeyValue::new("url.path", path.to_owned()),
            ])
            .start_with_context(&self.tracer, &parent);
        CallSpan {
            tracing: self.clone_handle(),
            span,
        }
    }

    fn clone_handle(&self) -> TracerHandle {
        TracerHandle {
            tracer: self.tracer.clone(),
            propagator: self.propagator.clone(),
        }
    }
}

/// What a call's span needs of the tracer.
struct TracerHandle {
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

/// The span of one gateway call.
pub(crate) struct CallSpan {
    tracing: TracerHandle,
    span: opentelemetry_sdk::trace::Span,
}

/// The span of the upstream request of a call.
pub(crate) struct UpstreamSpan(opentelemetry_sdk::trace::Span);

impl CallSpan {
    /// Starts the upstream span and puts its `traceparent` (and the client's `tracestate`) in
    /// the upstream request's headers, replacing the client's.
    pub(crate) fn start_upstream(&self, headers: &mut HeaderMap, route: &str) -> UpstreamSpan {
        let parent = Context::new().with_remote_span_context(self.span.span_context().clone());
        let span = self
            .tracing
            .tracer
            .span_builder("upstream")
            .with_kind(SpanKind::Client)
            .with_attributes([KeyValue::new("tollgate.route", route.to_owned())])
            .start_with_context(&self.tracing.tracer, &parent);
        let cx = Context::new().with_remote_span_context(span.span_context().clone());
        self.tracing
            .propagator
            .inject_context(&cx, &mut HeaderInjector(headers));
        UpstreamSpan(span)
    }

    /// Ends the call's span with what its usage event says.
    pub(crate) fn end(mut self, event: &UsageEvent) {
        let span = &mut self.span;
        if span.is_recording() {
            let mut attributes = Vec::with_capacity(12);
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(event.status),
            ));
            if let Some(route) = &event.route {
                attributes.push(KeyValue::new("tollgate.route", route.clone()));
            }
            if let Some(model) = &event.model {
                attributes.push(KeyValue::new("gen_ai.request.model", model.clone()));
            }
            if let Some(key_id) = event.key_id {
                attributes.push(KeyValue::new("tollgate.key_id", key_id));
            }
            if let Some(team_id) = event.team_id {
                attributes.push(KeyValue::new("tollgate.team_id", team_id));
            }
            if let Some(request_id) = &event.request_id {
                attributes.push(KeyValue::new("tollgate.request_id", request_id.clone()));
            }
            let t = &event.tokens;
            if !t.is_empty() {
                attributes.extend([
                    KeyValue::new("gen_ai.usage.input_tokens", t.prompt),
                    KeyValue::new("gen_ai.usage.output_tokens", t.completion),
                    KeyValue::new("tollgate.tokens.cached", t.cached),
                    KeyValue::new("tollgate.tokens.reasoning", t.reasoning),
                    KeyValue::new("tollgate.tokens.estimated", event.estimated),
                ]);
            }
            if let Some(cost) = event.cost_usd.filter(|c| *c > 0.0) {
                attributes.push(KeyValue::new("tollgate.cost_usd", cost));
            }
            span.set_attributes(attributes);
            if event.status >= 500 {
                let code = event
                    .error
                    .as_deref()
                    .and_then(|e| e.split(':').next())
                    .unwrap_or("error")
                    .to_owned();
                span.set_status(Status::error(code));
            }
        }
        span.end();
    }
}

impl UpstreamSpan {
    /// Ends the upstream span at the response head.
    pub(crate) fn answered(mut self, status: u16) {
        self.0.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if status >= 500 {
            self.0
                .set_status(Status::error("upstream answered an error"));
        }
        self.0.end();
    }

    /// Ends the upstream span of a request that got no answer.
    pub(crate) fn failed(mut self, code: &'static str) {
        self.0.set_status(Status::error(code));
        self.0.end();
    }
}
