//! The tower layer: notes what it can of the request, lets the inner service answer untouched, and
//! records the call when the response body ends (or is dropped).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::record::{ApiKeyHash, ClientIp, LlmUsage, RouteName, UsageRecord, UsageSlot};
use crate::reporter::UsageReporter;

/// Status recorded when the client goes away before the response is complete (nginx's 499, as the
/// tollgate gateway records it).
pub const CLIENT_CLOSED: u16 = 499;

/// A tower [`Layer`] that records every call of the wrapped service through a
/// [`UsageReporter`]. Recording never waits and never fails the call.
///
/// Timing: `latency_ms` runs from the request entering the layer to the end of the response body,
/// so a streamed response is measured whole; `upstream_latency_ms` is the time to the response
/// head, and `upstream_last_byte_ms` the time to the body's end when it ended normally. The body's frames pass through as they come: the layer only watches for its end.
#[derive(Clone, Debug)]
pub struct UsageLayer {
    reporter: UsageReporter,
}

impl UsageLayer {
    /// A layer recording through `reporter`.
    pub fn new(reporter: UsageReporter) -> Self {
        Self { reporter }
    }
}

impl<S> Layer<S> for UsageLayer {
    type Service = UsageService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        UsageService {
            inner,
            reporter: self.reporter.clone(),
        }
    }
}

/// The service made by [`UsageLayer`].
#[derive(Clone, Debug)]
pub struct UsageService<S> {
    inner: S,
    reporter: UsageReporter,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for UsageService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<RecordedBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let slot = UsageSlot::default();
        req.extensions_mut().insert(slot.clone());
        let recording = Recording::start(&self.reporter, &req, slot);
        ResponseFuture {
            inner: self.inner.call(req),
            recording: Some(recording),
        }
    }
}

pin_project! {
    /// The response future of [`UsageService`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        recording: Option<Recording>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<RecordedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let recording = this.recording.take();
        match result {
            Ok(res) => {
                let (parts, body) = res.into_parts();
                let recording = recording.and_then(|mut r| {
                    r.at_head(&parts);
                    // No body will be polled: record now rather than on drop.
                    let bodiless = r.method_is_head
                        || parts.status.is_informational()
                        || parts.status == StatusCode::NO_CONTENT
                        || parts.status == StatusCode::NOT_MODIFIED
                        || body.is_end_stream();
                    if bodiless {
                        r.finish(None, None);
                        None
                    } else {
                        Some(r)
                    }
                });
                Poll::Ready(Ok(Response::from_parts(
                    parts,
                    RecordedBody {
                        inner: body,
                        recording,
                    },
                )))
            }
            Err(e) => {
                if let Some(r) = recording {
                    r.finish(
                        Some(StatusCode::INTERNAL_SERVER_ERROR.as_u16()),
                        Some("the service returned an error instead of a response".into()),
                    );
                }
                Poll::Ready(Err(e))
            }
        }
    }
}

pin_project! {
    /// A response body passed through unchanged; the call is recorded when it ends, fails or is
    /// dropped.
    pub struct RecordedBody<B> {
        #[pin]
        inner: B,
        recording: Option<Recording>,
    }
}

impl<B: Body> Body for RecordedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        let ended = match &frame {
            None => Some(None),
            Some(Err(_)) => Some(Some("the response body failed")),
            Some(Ok(_)) => this.inner.is_end_stream().then_some(None),
        };
        if let Some(error) = ended
            && let Some(r) = this.recording.take()
        {
            r.finish(None, error.map(str::to_owned));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A call being recorded; recorded as abandoned (499) if dropped before it is finished.
struct Recording {
    reporter: UsageReporter,
    record: Option<UsageRecord>,
    started: Instant,
    head: Option<Duration>,
    slot: UsageSlot,
    response_usage: Option<LlmUsage>,
    method_is_head: bool,
}

impl Recording {
    fn start<B>(reporter: &UsageReporter, req: &Request<B>, slot: UsageSlot) -> Self {
        let ext = req.extensions();
        let path = original_path(req);
        let mut record = UsageRecord::new(req.method().as_str(), path, 0);
        record.route = ext
            .get::<RouteName>()
            .map(|r| r.0.clone())
            .or_else(|| reporter.service().map(str::to_owned));
        record.key_hash = ext.get::<ApiKeyHash>().map(|h| h.as_str().to_owned());
        record.user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        record.client_ip = client_ip(req, reporter.trust_forwarded_for()).map(|ip| ip.to_string());
        Self {
            reporter: reporter.clone(),
            record: Some(record),
            started: Instant::now(),
            head: None,
            slot,
            response_usage: None,
            method_is_head: req.method() == Method::HEAD,
        }
    }

    /// Notes what the response head says.
    fn at_head(&mut self, parts: &http::response::Parts) {
        self.head = Some(self.started.elapsed());
        if let Some(record) = self.record.as_mut() {
            record.status = parts.status.as_u16();
            if let Some(route) = parts.extensions.get::<RouteName>() {
                record.route = Some(route.0.clone());
            }
            if let Some(hash) = parts.extensions.get::<ApiKeyHash>() {
                record.key_hash = Some(hash.as_str().to_owned());
            }
            self.response_usage = parts.extensions.get::<LlmUsage>().cloned();
        }
    }

    /// Records the call: `status` overrides the response's, `error` says what went wrong.
    fn finish(mut self, status: Option<u16>, error: Option<String>) {
        self.record_now(status, error);
    }

    fn record_now(&mut self, status: Option<u16>, error: Option<String>) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        if let Some(status) = status {
            record.status = status;
        }
        if let Some(usage) = self.response_usage.take().or_else(|| self.slot.get()) {
            record = record.with_llm_usage(usage);
        }
        record.latency_ms = ms(self.started.elapsed());
        record.upstream_latency_ms = self.head.map(ms);
        // The wrapped service is the upstream: its answer ended when the body did, unless the
        // call ended otherwise (a failed body, an error, a client that went away).
        record.upstream_last_byte_ms = error.is_none().then_some(record.latency_ms);
        record.error = error;
        self.reporter.record(record);
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if self.record.is_none() {
            return;
        }
        let error = match (self.head, self.record.as_ref().map(|r| r.status)) {
            (Some(_), Some(status)) => {
                format!("the client went away before the end of the {status} response body")
            }
            _ => "the client went away before the response".to_owned(),
        };
        self.record_now(Some(CLIENT_CLOSED), Some(error));
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The request's path before any `nest` stripped a prefix (axum), without the query.
fn original_path<B>(req: &Request<B>) -> String {
    #[cfg(feature = "axum")]
    if let Some(uri) = req.extensions().get::<axum::extract::OriginalUri>() {
        return uri.path().to_owned();
    }
    req.uri().path().to_owned()
}

fn client_ip<B>(req: &Request<B>, trust_forwarded_for: bool) -> Option<IpAddr> {
    if let Some(ip) = req.extensions().get::<ClientIp>() {
        return Some(ip.0);
    }
    if trust_forwarded_for {
        let header_ip = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
        };
        if let Some(ip) = header_ip("x-forwarded-for").or_else(|| header_ip("x-real-ip")) {
            return Some(ip);
        }
    }
    #[cfg(feature = "axum")]
    if let Some(info) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(info.0.ip());
    }
    None
}
