//! The request path of one call: authentication, route, limits, LLM request inspection,
//! forwarding with streaming both ways, and the call's usage event.
//!
//! The event is owned by a [`Call`] guard from the first byte on. A refusal finishes it at once;
//! a forwarded call moves it into the response body, which finishes it when the body ends or is
//! dropped. A guard dropped unfinished is a client that hung up: it is recorded as 499.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, FORWARDED,
    HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, RETRY_AFTER, TE, TRAILER, TRANSFER_ENCODING,
    UPGRADE, USER_AGENT,
};
use http::uri::{PathAndQuery, Uri};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tollgate_core::UsageEvent;
use tollgate_core::route::normalize_path;
use uuid::Uuid;

use crate::auth;
use crate::capture::{self, CapturedUsage, RequestInfo, ResponseTap};
use crate::error::{CLIENT_CLOSED_STATUS, GatewayError};
use crate::keys::LookupError;
use crate::server::{Peer, Shared};
use crate::state::{Credential, RouteEntry};
use crate::writer::Ack;

type BoxError = Box<dyn StdError + Send + Sync>;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static X_API_KEY: HeaderName = HeaderName::from_static(auth::X_API_KEY);
static API_KEY: HeaderName = HeaderName::from_static(auth::API_KEY);

/// Longest user agent kept in a usage event.
const MAX_USER_AGENT: usize = 512;
/// Longest `X-Request-Id` accepted from a client; longer or odd ones are replaced.
const MAX_REQUEST_ID: usize = 128;

/// A refusal or failure: what the client is told, and what the usage event and log say.
#[derive(Debug)]
struct Failure {
    error: GatewayError,
    detail: Cow<'static, str>,
    /// Told to the client instead of the code's fixed message, when the detail is the client's
    /// own mistake and naming it helps (never an internal detail).
    public: bool,
}

impl Failure {
    fn new(error: GatewayError, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            error,
            detail: detail.into(),
            public: false,
        }
    }

    /// A refusal whose detail names the client's mistake and is sent to the client.
    fn told(error: GatewayError, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            public: true,
            ..Self::new(error, detail)
        }
    }

    fn event_text(&self) -> String {
        format!("{}: {}", self.error, self.detail)
    }
}

impl From<GatewayError> for Failure {
    fn from(error: GatewayError) -> Self {
        Self {
            error,
            detail: Cow::Borrowed("refused"),
            public: false,
        }
    }
}

/// Handles one gateway call. Never fails: every problem becomes a JSON refusal.
pub(crate) async fn handle(peer: Arc<Peer>, req: Request<Incoming>) -> Response<GatewayBody> {
    match AssertUnwindSafe(serve_call(peer, req)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            // The Call guard recorded the event as 500 while unwinding.
            tracing::error!("gateway call handler panicked");
            refusal(GatewayError::Internal, None, None)
        }
    }
}

async fn serve_call(peer: Arc<Peer>, req: Request<Incoming>) -> Response<GatewayBody> {
    let started = Instant::now();
    let ts_ms = tollgate_core::time::now_ms();
    let mut event = UsageEvent::new(ts_ms, req.method().as_str(), req.uri().path(), 0);
    // The client: the peer, or the address a trusted proxy forwarded for. Usage rows and the
    // failed-look-up limiter both key on it, so clients behind a proxy are limited one by one.
    let client_addr = if peer_is_trusted(&peer) {
        let forwarded = req
            .headers()
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let trusted = &peer.shared.config.trusted_proxies;
        trusted.client_ip(peer.addr, forwarded)
    } else {
        peer.addr
    };
    event.client_ip = Some(if client_addr == peer.addr {
        peer.ip.clone()
    } else {
        client_addr.to_string()
    });
    event.user_agent = req
        .headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| truncate(ua, MAX_USER_AGENT).to_owned());
    let (request_id, request_id_text) = request_id(req.headers(), &event.event_id);
    event.request_id = Some(request_id_text);
    let mut call = Call {
        shared: peer.shared.clone(),
        event: Some(event),
        started,
        ack: None,
        client_addr,
    };

    match forward(&peer, req, &mut call, &request_id).await {
        Ok(upstream) => upstream.into_response(call, request_id),
        Err(failure) => {
            if failure.error.status_code() >= 500 {
                tracing::warn!(code = %failure.error, detail = %failure.detail, "gateway call failed");
            } else {
                tracing::debug!(code = %failure.error, detail = %failure.detail, "gateway call refused");
            }
            let status = failure.error.status_code();
            let folded = matches!(
                failure.error,
                GatewayError::InvalidApiKey | GatewayError::RateLimited
            ) && !peer.shared.refused_keys.admit(
                call.client_addr,
                status,
                ts_ms,
                &peer.shared.sink,
            );
            if folded {
                call.fold_into_summary(status);
            } else {
                call.finish(status, Some(failure.event_text()), None);
            }
            // With `usage.durability = "spool"` the refusal waits for its event to be on disk.
            if let Some(ack) = call.ack.take() {
                ack.await;
            }
            let message = failure.public.then_some(&*failure.detail);
            let limited = failure.error == GatewayError::RateLimited;
            let mut response = refusal(failure.error, message, Some(request_id));
            if limited {
                // The limiter gives one more look-up every 60 / quota seconds.
                let per_minute = peer.shared.config.failed_key_lookups_per_minute.max(1);
                let wait = 60_u32.div_ceil(per_minute);
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(wait));
            }
            response
        }
    }
}

/// The upstream's response head, ready to be streamed back.
struct Upstream {
    response: Response<Incoming>,
    route: Arc<RouteEntry>,
    request: Option<RequestInfo>,
}

async fn forward(
    peer: &Peer,
    req: Request<Incoming>,
    call: &mut Call,
    request_id: &HeaderValue,
) -> Result<Upstream, Failure> {
    let shared = &*peer.shared;
    let (mut parts, body) = req.into_parts();

    if header_bytes(&parts.headers) > shared.config.max_header_bytes {
        return Err(GatewayError::HeaderTooLarge.into());
    }

    // Authentication: the checksum refuses garbage before any look-up.
    let presented = auth::presented_key(&parts.headers)?;
    let key_source = presented.source;
    let hash = auth::key_hash(presented.text)?;
    let cached = shared
        .keys
        .lookup(&*shared.store, &hash, call.client_addr)
        .await
        .map_err(|err| match err {
            LookupError::RateLimited => Failure::new(
                GatewayError::RateLimited,
                "too many failed key look-ups from this address",
            ),
            LookupError::Store(err) => Failure::new(
                GatewayError::StoreUnavailable,
                format!("key look-up failed: {err}"),
            ),
        })?;
    // An unknown key's hash is not recorded: it names nothing, and the usage writer would look
    // it up in the store a second time to attribute it.
    let Some(key) = cached.record.as_ref() else {
        return Err(Failure::new(
            GatewayError::InvalidApiKey,
            "no key has this hash",
        ));
    };
    call.event_mut(|e| {
        e.key_id = Some(key.id);
        e.key_hash = Some(hash);
        e.team_id = Some(key.team_id);
    });
    auth::check_usable(key, tollgate_core::time::now_ms())?;

    // Route: longest prefix on the normalised path, then the key's permission. The same path is
    // forwarded, so the upstream cannot read it as another route's.
    let path = normalize_path(parts.uri.path())
        .map_err(|err| Failure::told(GatewayError::InvalidPath, err.to_string()))?;
    if path != parts.uri.path() {
        call.event_mut(|e| e.path.clone_from(&path));
    }
    let route = shared
        .routes
        .load()
        .table
        .find(&path)
        .cloned()
        .ok_or(GatewayError::NoRoute)?;
    call.event_mut(|e| {
        e.route_id = Some(route.record.id);
        e.route = Some(route.record.name.clone());
    });
    if !key.may_call(&route.record) {
        return Err(GatewayError::RouteNotAllowed.into());
    }
    let Some(base) = route.upstream.as_ref() else {
        return Err(Failure::new(
            GatewayError::RouteMisconfigured,
            "upstream URL unusable",
        ));
    };
    if matches!(route.credential, Credential::Unusable) {
        return Err(Failure::new(
            GatewayError::RouteMisconfigured,
            "upstream credential cannot be opened",
        ));
    }

    // Limits. Per-key rate and budget limits come with the limits issue; today: the body size.
    let max_body = shared.config.max_body_bytes;
    let declared = body.size_hint().exact();
    if declared.is_some_and(|len| len > max_body) {
        return Err(Failure::new(
            GatewayError::PayloadTooLarge,
            "declared Content-Length over the limit",
        ));
    }

    // LLM request inspection: a bounded peek for the model; bigger bodies stream through unread.
    let kind = route.record.kind;
    let peek_limit = shared.config.llm_peek_bytes;
    let mut request_info = None;
    let upstream_body = if body.is_end_stream() {
        UpstreamBody::Empty
    } else if kind.is_llm()
        && is_json(&parts.headers)
        && declared.is_none_or(|len| len <= peek_limit as u64)
    {
        // The whole peek has a deadline, and all peeks together a byte budget: past it the body
        // is forwarded unread (the model then comes from the response) rather than refused.
        let reserve = declared.map_or(peek_limit, |len| usize::try_from(len).unwrap_or(usize::MAX));
        let permit = u32::try_from(reserve)
            .ok()
            .and_then(|n| shared.peek_budget.clone().try_acquire_many_owned(n).ok());
        let peeked = match permit {
            None => {
                shared.metrics.peeks_skipped.inc();
                Peeked::Partial(Bytes::new(), body)
            }
            Some(_permit) => {
                let timeout = shared.config.body_read_timeout;
                tokio::time::timeout(timeout, peek(body, declared, peek_limit, max_body))
                    .await
                    .map_err(|_| {
                        Failure::new(
                            GatewayError::RequestTimeout,
                            format!("request body not read within {} s", timeout.as_secs()),
                        )
                    })??
            }
        };
        match peeked {
            Peeked::Whole(bytes) => {
                let (info, rewritten) = capture::inspect_request(kind, &bytes);
                call.event_mut(|e| e.model.clone_from(&info.model));
                request_info = Some(info);
                let bytes = rewritten.unwrap_or(bytes);
                parts
                    .headers
                    .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
                UpstreamBody::Full(Some(bytes))
            }
            Peeked::Partial(prefix, rest) => UpstreamBody::stream(Some(prefix), rest, max_body),
        }
    } else {
        UpstreamBody::stream(None, body, max_body)
    };

    // The upstream request: hop-by-hop and key headers out, forwarding headers and credential in.
    let headers = &mut parts.headers;
    remove_hop_by_hop(headers);
    remove_keys(headers, key_source);
    headers.remove(EXPECT);
    headers.insert(HOST, base.host.clone());
    set_forwarding_headers(headers, peer, peer_is_trusted(peer));
    headers.insert(X_REQUEST_ID.clone(), request_id.clone());
    if let Credential::Header(name, value) = &route.credential {
        headers.insert(*name, value.clone());
    }
    if kind.is_llm() {
        // Compressed answers would hide the usage from the capture.
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    parts.uri = upstream_uri(&route, base, &path, parts.uri.query())?;
    parts.version = Version::HTTP_11;
    let upstream_request = Request::from_parts(parts, upstream_body);

    let sent = Instant::now();
    let outcome = tokio::time::timeout(route.timeout, route.client.request(upstream_request)).await;
    let response = match outcome {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => {
            let failure = classify_upstream_error(&err);
            if matches!(
                failure.error,
                GatewayError::UpstreamUnreachable | GatewayError::UpstreamTimeout
            ) {
                shared.metrics.upstream_errors.inc();
            }
            return Err(failure);
        }
        Err(_) => {
            shared.metrics.upstream_errors.inc();
            return Err(Failure::new(
                GatewayError::UpstreamTimeout,
                format!("no response head within {} ms", route.timeout.as_millis()),
            ));
        }
    };
    let elapsed = sent.elapsed();
    call.event_mut(|e| e.upstream_latency_us = Some(micros(elapsed)));
    shared
        .metrics
        .upstream_duration
        .observe(elapsed.as_secs_f64());
    Ok(Upstream {
        response,
        route,
        request: request_info,
    })
}

impl Upstream {
    fn into_response(self, call: Call, request_id: HeaderValue) -> Response<GatewayBody> {
        let Self {
            response,
            route,
            request,
        } = self;
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        remove_credential_echo(&mut parts.headers, &route.credential);
        parts.version = Version::HTTP_11;
        parts.headers.insert(X_REQUEST_ID.clone(), request_id);
        let kind = route.record.kind;
        let tap = kind.is_llm().then(|| {
            let sse = parts
                .headers
                .get(CONTENT_TYPE)
                .is_some_and(|v| starts_with_ignore_case(v.as_bytes(), b"text/event-stream"));
            if sse {
                // The tap may hide an injected usage-only event, so the length can change.
                parts.headers.remove(CONTENT_LENGTH);
            }
            ResponseTap::new(kind, request.unwrap_or_default(), sse)
        });
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let status = parts.status.as_u16();
        let body = GatewayBody {
            inner: Inner::Proxied(Box::new(Proxied {
                upstream: body,
                tap,
                call,
                status,
                idle_timeout: route.timeout,
                credential: route.credential.clone(),
                idle: None,
                last_activity: Instant::now(),
                declared,
                sent: 0,
                stash: None,
                held: None,
                ended: false,
            })),
        };
        Response::from_parts(parts, body)
    }
}

/// The usage event of one call, recorded exactly once: by [`Call::finish`], or on drop as a
/// client that hung up (499), or as 500 if the handler panicked.
pub(crate) struct Call {
    shared: Arc<Shared>,
    event: Option<UsageEvent>,
    started: Instant,
    /// Pending while the recorded event is not yet durable (`usage.durability = "spool"`): the
    /// response's end waits for it, so a client never sees a complete answer whose event a
    /// crash could still lose.
    ack: Option<Ack>,
    /// The client's address (see `serve_call`).
    client_addr: IpAddr,
}

impl Call {
    fn event_mut(&mut self, change: impl FnOnce(&mut UsageEvent)) {
        if let Some(event) = self.event.as_mut() {
            change(event);
        }
    }

    fn finish(&mut self, status: u16, error: Option<String>, usage: Option<CapturedUsage>) {
        let Some(mut event) = self.event.take() else {
            return;
        };
        let elapsed = self.started.elapsed();
        event.status = status;
        event.latency_us = micros(elapsed);
        if let Some(usage) = usage {
            if usage.model.is_some() {
                event.model = usage.model;
            }
            event.tokens = usage.tokens;
            event.estimated = usage.estimated;
            event.cost_usd = self
                .shared
                .config
                .prices
                .cost(event.model.as_deref(), &event.tokens);
        }
        if error.is_some() {
            event.error = error;
        }
        self.shared
            .metrics
            .observe_response(status, elapsed.as_secs_f64());
        let ack = self.shared.sink.record_acked(event);
        if ack.is_pending() {
            self.ack = Some(ack);
        }
    }
}

impl Call {
    /// Counts the call in the metrics but leaves its row to a summary (see `keys`).
    fn fold_into_summary(&mut self, status: u16) {
        if self.event.take().is_some() {
            self.shared
                .metrics
                .observe_response(status, self.started.elapsed().as_secs_f64());
            self.shared.metrics.refused_key_events_folded.inc();
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.event.is_some() {
            let (status, error) = if std::thread::panicking() {
                (
                    500,
                    "internal_error: the gateway failed while handling the call",
                )
            } else {
                (
                    CLIENT_CLOSED_STATUS,
                    "client_closed_request: the client hung up before the response head",
                )
            };
            self.finish(status, Some(error.to_owned()), None);
        }
    }
}

/// The body of every gateway response: a refusal's JSON, or the upstream's body streamed through.
pub(crate) struct GatewayBody {
    inner: Inner,
}

enum Inner {
    Full(Option<Bytes>),
    // Boxed: the usage event makes it large, and responses are moved several times.
    Proxied(Box<Proxied>),
}

impl GatewayBody {
    fn full(bytes: Bytes) -> Self {
        Self {
            inner: Inner::Full(Some(bytes)),
        }
    }
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().inner {
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Proxied(proxied) => proxied.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(bytes) => bytes.is_none(),
            // An upstream body that is already over (HEAD, 204, 304) is reported as such, so
            // that hyper does not check a zero length against the `Content-Length` header.
            Inner::Proxied(proxied) => {
                proxied.stash.is_none()
                    && proxied.held.is_none()
                    && proxied.call.ack.is_none()
                    && (proxied.ended || proxied.upstream.is_end_stream())
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            // Through a tap the length may change, and a length that disagrees with the header
            // is an error to hyper: otherwise hyper relies on the headers.
            Inner::Proxied(proxied) if proxied.tap.is_none() && !proxied.ended => {
                let hint = proxied.upstream.size_hint();
                match (hint.exact(), proxied.declared) {
                    (Some(exact), Some(declared)) if exact == declared => hint,
                    _ => SizeHint::default(),
                }
            }
            Inner::Proxied(_) => SizeHint::default(),
        }
    }
}

/// An upstream body on its way to the client, chunk by chunk, through the usage tap.
struct Proxied {
    upstream: Incoming,
    tap: Option<ResponseTap>,
    call: Call,
    status: u16,
    idle_timeout: Duration,
    /// The injected upstream credential, kept out of the trailers too.
    credential: Credential,
    // Created on the first wait only: most small answers arrive with their head.
    idle: Option<Pin<Box<tokio::time::Sleep>>>,
    last_activity: Instant,
    /// `Content-Length` sent to the client, if any.
    declared: Option<u64>,
    sent: u64,
    /// Trailers held back while the tap's last bytes go first.
    stash: Option<Frame<Bytes>>,
    /// The last frame, held back until the call's usage event is durable.
    held: Option<Frame<Bytes>>,
    ended: bool,
}

/// The upstream sent nothing for longer than the route's timeout.
#[derive(Debug, thiserror::Error)]
#[error("upstream sent nothing for {0} ms")]
struct IdleTimeout(u128);

impl Proxied {
    /// The next frame for the client. Once the call is complete, its last frame (or its end)
    /// waits until the usage event is durable.
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            if let Some(ack) = self.call.ack.as_mut() {
                if Pin::new(ack).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.call.ack = None;
            }
            if let Some(frame) = self.held.take() {
                return Poll::Ready(Some(Ok(frame)));
            }
            match self.poll_upstream(cx) {
                Poll::Ready(Some(Ok(frame))) if self.call.ack.is_some() => {
                    self.held = Some(frame);
                }
                Poll::Ready(None) if self.call.ack.is_some() => {}
                other => return other,
            }
        }
    }

    fn poll_upstream(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.stash.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut self.upstream).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if self.idle.is_some() {
                        self.last_activity = Instant::now();
                    }
                    let trailers = match frame.into_data() {
                        Ok(data) => {
                            let mut out = match self.tap.as_mut() {
                                Some(tap) => tap.on_chunk(data),
                                None => data,
                            };
                            if self.upstream.is_end_stream() {
                                // hyper may not poll again once the length is reached, so the
                                // call ends with its last chunk.
                                out = concat(out, self.flush_tap());
                                self.complete(None);
                                if out.is_empty() {
                                    return Poll::Ready(None);
                                }
                            } else if out.is_empty() {
                                continue;
                            }
                            self.sent += out.len() as u64;
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                        Err(mut trailers) => {
                            if let Some(fields) = trailers.trailers_mut() {
                                remove_credential_echo(fields, &self.credential);
                            }
                            trailers
                        }
                    };
                    let tail = self.flush_tap();
                    self.complete(None);
                    if tail.is_empty() {
                        return Poll::Ready(Some(Ok(trailers)));
                    }
                    self.stash = Some(trailers);
                    self.sent += tail.len() as u64;
                    return Poll::Ready(Some(Ok(Frame::data(tail))));
                }
                Poll::Ready(Some(Err(err))) => {
                    self.call.shared.metrics.upstream_errors.inc();
                    self.complete(Some(format!("upstream_body_error: {}", error_chain(&err))));
                    return Poll::Ready(Some(Err(Box::new(err))));
                }
                Poll::Ready(None) => {
                    let tail = self.flush_tap();
                    self.complete(None);
                    if tail.is_empty() {
                        return Poll::Ready(None);
                    }
                    self.sent += tail.len() as u64;
                    return Poll::Ready(Some(Ok(Frame::data(tail))));
                }
                Poll::Pending => return self.poll_idle(cx),
            }
        }
    }

    /// Arms or checks the idle timer. The timer is re-armed lazily (only when it fires early),
    /// so a fast stream costs no timer update per chunk.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let timeout = self.idle_timeout;
        if self.idle.is_none() {
            self.idle = Some(Box::pin(tokio::time::sleep(timeout)));
            self.last_activity = Instant::now();
        }
        loop {
            let Some(sleep) = self.idle.as_mut() else {
                return Poll::Pending;
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let deadline = self.last_activity + timeout;
            if deadline > Instant::now() {
                sleep.as_mut().reset(deadline.into());
                continue;
            }
            self.call.shared.metrics.upstream_errors.inc();
            let error = IdleTimeout(timeout.as_millis());
            self.complete(Some(format!("upstream_timeout: {error}")));
            return Poll::Ready(Some(Err(Box::new(error))));
        }
    }

    fn flush_tap(&mut self) -> Bytes {
        self.tap
            .as_mut()
            .map_or_else(Bytes::new, ResponseTap::flush)
    }

    fn complete(&mut self, error: Option<String>) {
        self.ended = true;
        let usage = self.tap.take().map(ResponseTap::finish);
        self.call.finish(self.status, error, usage);
    }
}

impl Drop for Proxied {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // hyper drops a body without a last poll once the declared length is written, or for
        // answers that have no body (HEAD, 204, 304): those calls are complete.
        let complete =
            self.upstream.is_end_stream() || self.declared.is_some_and(|len| self.sent >= len);
        if complete {
            self.complete(None);
        } else {
            self.ended = true;
            let usage = self.tap.take().map(ResponseTap::finish);
            self.call.finish(
                CLIENT_CLOSED_STATUS,
                Some("client_closed_request: the client hung up during the response".to_owned()),
                usage,
            );
        }
    }
}

fn concat(head: Bytes, tail: Bytes) -> Bytes {
    if tail.is_empty() {
        return head;
    }
    if head.is_empty() {
        return tail;
    }
    let mut joined = BytesMut::with_capacity(head.len() + tail.len());
    joined.extend_from_slice(&head);
    joined.extend_from_slice(&tail);
    joined.freeze()
}

/// Why the request body could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestBodyError {
    /// More bytes than `max_body_bytes`.
    #[error("request body over the size limit")]
    TooLarge,
    /// The client's body failed (it hung up mid-upload, or sent a malformed chunk).
    #[error("client request body failed: {0}")]
    Client(#[source] hyper::Error),
}

/// The body sent upstream: nothing, a peeked (maybe rewritten) whole body, or the client's body
/// streamed through with its bytes counted against the limit.
pub(crate) enum UpstreamBody {
    Empty,
    Full(Option<Bytes>),
    Stream {
        prefix: Option<Bytes>,
        inner: Incoming,
        seen: u64,
        limit: u64,
    },
}

impl UpstreamBody {
    fn stream(prefix: Option<Bytes>, inner: Incoming, limit: u64) -> Self {
        let seen = prefix.as_ref().map_or(0, |p| p.len() as u64);
        Self::Stream {
            prefix,
            inner,
            seen,
            limit,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        match self.get_mut() {
            Self::Empty => Poll::Ready(None),
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Stream {
                prefix,
                inner,
                seen,
                limit,
            } => {
                if let Some(prefix) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(prefix))));
                }
                match ready!(Pin::new(inner).poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            *seen += data.len() as u64;
                            if *seen > *limit {
                                return Poll::Ready(Some(Err(RequestBodyError::TooLarge)));
                            }
                        }
                        Poll::Ready(Some(Ok(frame)))
                    }
                    Some(Err(err)) => Poll::Ready(Some(Err(RequestBodyError::Client(err)))),
                    None => Poll::Ready(None),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Full(bytes) => bytes.is_none(),
            Self::Stream { prefix, inner, .. } => prefix.is_none() && inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Empty => SizeHint::with_exact(0),
            Self::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Stream { prefix, inner, .. } => {
                let extra = prefix.as_ref().map_or(0, |p| p.len() as u64);
                let inner = inner.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(inner.lower() + extra);
                if let Some(upper) = inner.upper() {
                    hint.set_upper(upper + extra);
                }
                hint
            }
        }
    }
}

enum Peeked {
    /// The whole body.
    Whole(Bytes),
    /// The body was longer than the peek: what was read, and the rest still to stream.
    Partial(Bytes, Incoming),
}

/// Reads an LLM request body of up to `peek_limit` bytes; stops early when it is longer.
async fn peek(
    mut body: Incoming,
    declared: Option<u64>,
    peek_limit: usize,
    max_body: u64,
) -> Result<Peeked, Failure> {
    // Most bodies arrive in one chunk: keep it without copying until a second one comes.
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    let mut total: u64 = 0;
    loop {
        match body.frame().await {
            None => {
                return Ok(Peeked::Whole(match first {
                    Some(only) => only,
                    None => buf.freeze(),
                }));
            }
            Some(Err(err)) => {
                return Err(Failure::new(
                    GatewayError::ClientClosed,
                    format!("request body failed: {}", error_chain(&err)),
                ));
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                total += data.len() as u64;
                if total > max_body {
                    return Err(Failure::new(
                        GatewayError::PayloadTooLarge,
                        "request body over the limit",
                    ));
                }
                if first.is_none() && buf.is_empty() {
                    first = Some(data);
                } else {
                    if let Some(earlier) = first.take() {
                        let capacity =
                            declared.map_or(earlier.len() * 2, |n| usize::try_from(n).unwrap_or(0));
                        buf.reserve(capacity.min(peek_limit.saturating_add(1)));
                        buf.extend_from_slice(&earlier);
                    }
                    buf.extend_from_slice(&data);
                }
                if total > peek_limit as u64 {
                    let read = first.take().unwrap_or_else(|| buf.split().freeze());
                    return Ok(Peeked::Partial(read, body));
                }
            }
        }
    }
}

fn classify_upstream_error(err: &hyper_util::client::legacy::Error) -> Failure {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(body) = current.downcast_ref::<RequestBodyError>() {
            return match body {
                RequestBodyError::TooLarge => Failure::new(
                    GatewayError::PayloadTooLarge,
                    "streamed request body over the limit",
                ),
                RequestBodyError::Client(_) => Failure::new(
                    GatewayError::ClientClosed,
                    format!("request body failed: {}", error_chain(err)),
                ),
            };
        }
        if err.is_connect()
            && current
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return Failure::new(
                GatewayError::UpstreamTimeout,
                format!("connect: {}", error_chain(err)),
            );
        }
        source = current.source();
    }
    let stage = if err.is_connect() {
        "connect"
    } else {
        "before the response head"
    };
    Failure::new(
        GatewayError::UpstreamUnreachable,
        format!("{stage}: {}", error_chain(err)),
    )
}

/// An error and its sources on one line.
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(current) = source {
        let part = current.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = current.source();
    }
    text
}

/// The JSON refusal; `message` replaces the code's fixed message when the client is told the detail.
fn refusal(
    error: GatewayError,
    message: Option<&str>,
    request_id: Option<HeaderValue>,
) -> Response<GatewayBody> {
    let body = match message {
        Some(message) => Bytes::from(
            serde_json::json!({"error": {
                "code": error.to_string(),
                "message": message,
                "type": error.kind(),
            }})
            .to_string(),
        ),
        None => error.body_bytes(),
    };
    let mut response = Response::new(GatewayBody::full(body));
    *response.status_mut() = error.status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(id) = request_id {
        headers.insert(X_REQUEST_ID.clone(), id);
    }
    response
}

/// The incoming `X-Request-Id` when it is sane, else the event's id (a UUID v7).
fn request_id(headers: &HeaderMap, event_id: &Uuid) -> (HeaderValue, String) {
    if let Some(value) = headers.get(&X_REQUEST_ID) {
        let bytes = value.as_bytes();
        if !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID
            && bytes.iter().all(|b| (0x21..=0x7e).contains(b))
            && let Ok(text) = value.to_str()
        {
            return (value.clone(), text.to_owned());
        }
    }
    let text = event_id.hyphenated().to_string();
    let value = HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("unknown"));
    (value, text)
}

/// Total size of the request headers as sent on an HTTP/1.1 wire.
fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

/// Removes hop-by-hop headers: every header named by any `Connection` header line (each may
/// list several), the `Connection` headers themselves, and the fixed list.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|value| {
            value
                .as_bytes()
                .split(|&b| b == b',')
                .map(<[u8]>::trim_ascii)
        })
        .filter(|t| !t.is_empty())
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        &CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &PROXY_AUTHENTICATE,
        &PROXY_AUTHORIZATION,
        &TE,
        &TRAILER,
        &TRANSFER_ENCODING,
        &UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// Removes the header the key came in, and any other that holds a tollgate key: keys never go
/// upstream. A foreign `Authorization` beside an `X-API-Key` key is the caller's and goes on.
fn remove_keys(headers: &mut HeaderMap, source: auth::KeySource) {
    headers.remove(source.header());
    for name in [&AUTHORIZATION, &X_API_KEY, &API_KEY] {
        if headers
            .get_all(name)
            .iter()
            .any(|value| auth::holds_key(value.as_bytes()))
        {
            headers.remove(name);
        }
    }
}

/// Whether the connection comes from a configured trusted proxy.
fn peer_is_trusted(peer: &Peer) -> bool {
    let trusted = &peer.shared.config.trusted_proxies;
    !trusted.is_empty() && trusted.is_trusted(peer.addr)
}

/// Forwarding headers the upstream can believe. `X-Real-IP`, `Forwarded`, `X-Forwarded-Host`
/// and `X-Forwarded-Port` from the client are dropped. `X-Forwarded-For` is the peer's address,
/// appended to the incoming list only when the peer is a trusted proxy; `X-Forwarded-Proto` is
/// `http` (the listener's scheme) unless a trusted proxy said `http` or `https`.
fn set_forwarding_headers(headers: &mut HeaderMap, peer: &Peer, trusted: bool) {
    for name in [&X_REAL_IP, &FORWARDED, &X_FORWARDED_HOST, &X_FORWARDED_PORT] {
        headers.remove(name);
    }
    let mut forwarded_for = peer.ip_header.clone();
    if trusted {
        let mut joined = BytesMut::new();
        for previous in headers.get_all(&X_FORWARDED_FOR) {
            joined.extend_from_slice(previous.as_bytes());
            joined.extend_from_slice(b", ");
        }
        if !joined.is_empty() {
            joined.extend_from_slice(peer.ip.as_bytes());
            if let Ok(value) = HeaderValue::from_maybe_shared(joined.freeze()) {
                forwarded_for = value;
            }
        }
    }
    headers.insert(X_FORWARDED_FOR.clone(), forwarded_for);
    let proto = headers
        .get(&X_FORWARDED_PROTO)
        .filter(|_| trusted)
        .and_then(|value| match value.as_bytes() {
            v if v.eq_ignore_ascii_case(b"https") => Some("https"),
            v if v.eq_ignore_ascii_case(b"http") => Some("http"),
            _ => None,
        })
        .unwrap_or("http");
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
}

/// The secret of an injected credential: the token after `Bearer `, or the whole value.
fn credential_secret(credential: &Credential) -> Option<&[u8]> {
    let Credential::Header(_, value) = credential else {
        return None;
    };
    let bytes = value.as_bytes();
    let secret = if bytes.len() > 7 && bytes[..7].eq_ignore_ascii_case(b"bearer ") {
        bytes[7..].trim_ascii()
    } else {
        bytes
    };
    (!secret.is_empty()).then_some(secret)
}

/// Removes every response header or trailer that repeats the injected upstream credential (an
/// upstream that echoes request headers), so the caller never sees it.
fn remove_credential_echo(headers: &mut HeaderMap, credential: &Credential) {
    let Some(secret) = credential_secret(credential) else {
        return;
    };
    let finder = memchr::memmem::Finder::new(secret);
    let echoed: Vec<HeaderName> = headers
        .iter()
        .filter(|(_, value)| finder.find(value.as_bytes()).is_some())
        .map(|(name, _)| name.clone())
        .collect();
    for name in echoed {
        tracing::warn!(header = %name, "upstream answer repeated the route credential; header removed");
        headers.remove(name);
    }
}

/// `route.upstream_url` + the normalised path (without the prefix when stripping) + the query as
/// the client sent it.
fn upstream_uri(
    route: &RouteEntry,
    base: &crate::state::UpstreamBase,
    path: &str,
    query: Option<&str>,
) -> Result<Uri, Failure> {
    let prefix = route.record.prefix.as_str();
    let rest = if route.record.strip_prefix && prefix != "/" {
        path.get(prefix.len()..).unwrap_or_default()
    } else {
        path
    };
    let mut target =
        String::with_capacity(base.path.len() + rest.len() + query.map_or(0, |q| q.len() + 1) + 1);
    target.push_str(&base.path);
    if rest.is_empty() {
        if target.is_empty() {
            target.push('/');
        }
    } else {
        target.push_str(rest);
    }
    if let Some(query) = query {
        target.push('?');
        target.push_str(query);
    }
    let path_and_query = PathAndQuery::from_maybe_shared(Bytes::from(target))
        .map_err(|_| Failure::new(GatewayError::InvalidPath, "upstream path does not parse"))?;
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(base.scheme.clone());
    parts.authority = Some(base.authority.clone());
    parts.path_and_query = Some(path_and_query);
    Uri::from_parts(parts)
        .map_err(|_| Failure::new(GatewayError::InvalidPath, "upstream URI does not parse"))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).is_none_or(|v| {
        v.as_bytes()
            .windows(4)
            .any(|w| w.eq_ignore_ascii_case(b"json"))
    })
}

fn starts_with_ignore_case(value: &[u8], prefix: &[u8]) -> bool {
    value.len() >= prefix.len() && value[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_go() {
        let mut h = HeaderMap::new();
        h.insert(
            CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret-Hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn every_connection_line_and_every_name_in_it_is_honoured() {
        let mut h = HeaderMap::new();
        h.append(CONNECTION, HeaderValue::from_static("close"));
        h.append(CONNECTION, HeaderValue::from_static("x-a, ,X-B"));
        for name in ["x-a", "x-b", "x-kept"] {
            h.insert(name, HeaderValue::from_static("1"));
        }
        remove_hop_by_hop(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["x-kept"]);
    }

    #[test]
    fn headers_and_trailers_repeating_the_credential_go() {
        let bearer = Credential::Header(
            "authorization",
            HeaderValue::from_static("Bearer sk-secret-1"),
        );
        let mut trailers = HeaderMap::new();
        trailers.insert(
            "x-echo-auth",
            HeaderValue::from_static("Bearer sk-secret-1"),
        );
        trailers.insert("x-debug", HeaderValue::from_static("token=sk-secret-1;"));
        trailers.insert("x-fine", HeaderValue::from_static("sk-other"));
        remove_credential_echo(&mut trailers, &bearer);
        assert_eq!(trailers.keys().collect::<Vec<_>>(), ["x-fine"]);
        let raw = Credential::Header("x-api-key", HeaderValue::from_static("ak-raw"));
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("ak-raw"));
        remove_credential_echo(&mut headers, &raw);
        assert!(headers.is_empty());
        remove_credential_echo(&mut trailers, &Credential::None);
        assert_eq!(trailers.len(), 1);
    }

    #[test]
    fn request_ids_are_kept_when_sane() {
        let id = Uuid::now_v7();
        let mut h = HeaderMap::new();
        h.insert(X_REQUEST_ID.clone(), HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h, &id).1, "abc-123");
        h.insert(X_REQUEST_ID.clone(), HeaderValue::from_static("has space"));
        assert_eq!(request_id(&h, &id).1, id.hyphenated().to_string());
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
