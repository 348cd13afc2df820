//! The request path of one call: authentication, route, limits, LLM request inspection,
//! forwarding with streaming both ways, and the call's usage event.
//!
//! The event is owned by a [`Call`] guard from the first byte on. A refusal finishes it at once;
//! a forwarded call moves it into the response body, which finishes it when the body ends or is
//! dropped. A guard dropped unfinished is a client that hung up: it is recorded as 499.
//!
//! `forward` holds the stages in order; `headers` rewrites both heads; `request_body` and
//! `response_body` are the two bodies; `call` is the guard.

mod call;
mod forward;
mod headers;
mod llm;
mod request_body;
mod response_body;

use std::borrow::Cow;
use std::error::Error as StdError;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use tollgate_core::UsageEvent;

pub(crate) use call::Deferred;
pub(crate) use request_body::UpstreamBody;

use crate::error::GatewayError;
use crate::server::Peer;
use call::Call;
use forward::{Answer, forward};
use headers::{X_FORWARDED_FOR, X_REQUEST_ID, peer_is_trusted, request_id};
pub(crate) use response_body::GatewayBody;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Longest user agent kept in a usage event.
const MAX_USER_AGENT: usize = 512;

/// A refusal or failure: what the client is told, and what the usage event and log say.
#[derive(Debug)]
struct Failure {
    error: GatewayError,
    detail: Cow<'static, str>,
    /// Told to the client instead of the code's fixed message, when the detail is the client's
    /// own mistake and naming it helps (never an internal detail).
    public: bool,
    /// `Retry-After` in seconds, for refusals by a limit.
    retry_after: Option<u64>,
}

impl Failure {
    fn new(error: GatewayError, detail: impl Into<Cow<'static, str>>) -> Self {
        Self {
            error,
            detail: detail.into(),
            public: false,
            retry_after: None,
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
            retry_after: None,
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
            refusal(GatewayError::Internal, None, None, false)
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
    let span =
        peer.shared.config.tracing.as_ref().map(|tracing| {
            tracing.start_call(req.headers(), req.method().as_str(), req.uri().path())
        });
    let mut call = Call {
        shared: peer.shared.clone(),
        event: Some(event),
        started,
        upstream_sent: None,
        ack: None,
        client_addr,
        admission: None,
        rate_headers: None,
        anthropic: false,
        span,
    };

    match forward(&peer, req, &mut call, &request_id).await {
        Ok(Answer::Upstream(upstream)) => upstream.into_response(call, request_id),
        Ok(Answer::Local(mut response)) => {
            call.finish(StatusCode::OK.as_u16(), None, None);
            if let Some(ack) = call.ack.take() {
                ack.await;
            }
            response
                .headers_mut()
                .insert(X_REQUEST_ID.clone(), request_id);
            response
        }
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
            let mut response = refusal(failure.error, message, Some(request_id), call.anthropic);
            add_rate_headers(response.headers_mut(), call.rate_headers.as_ref());
            if let Some(wait) = failure.retry_after {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(wait));
            }
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

/// Adds the `x-ratelimit-*` headers of a call's admission, as OpenAI sends them
/// (`x-ratelimit-reset-requests: 6m0s`), without `format!` and with constant names: this runs on
/// every call through an LLM route that has a limit.
fn add_rate_headers(headers: &mut http::HeaderMap, rate: Option<&tollgate_limits::RateHeaders>) {
    use http::header::HeaderName;
    const NAMES: [[HeaderName; 3]; 2] = [
        [
            HeaderName::from_static("x-ratelimit-limit-requests"),
            HeaderName::from_static("x-ratelimit-remaining-requests"),
            HeaderName::from_static("x-ratelimit-reset-requests"),
        ],
        [
            HeaderName::from_static("x-ratelimit-limit-tokens"),
            HeaderName::from_static("x-ratelimit-remaining-tokens"),
            HeaderName::from_static("x-ratelimit-reset-tokens"),
        ],
    ];
    let Some(rate) = rate else { return };
    // Room for all six at once: the map grows once, not per header.
    headers.reserve(6);
    for (limit, [limit_name, remaining_name, reset_name]) in
        [rate.requests, rate.tokens].into_iter().zip(NAMES)
    {
        let Some(limit) = limit else { continue };
        headers.insert(limit_name, HeaderValue::from(limit.limit));
        headers.insert(remaining_name, HeaderValue::from(limit.remaining));
        if let Ok(value) = HeaderValue::try_from(tollgate_limits::format_reset(limit.reset)) {
            headers.insert(reset_name, value);
        }
    }
}

/// The JSON refusal; `message` replaces the code's fixed message when the client is told the
/// detail. On `anthropic` routes the body has Anthropic's error shape.
fn refusal(
    error: GatewayError,
    message: Option<&str>,
    request_id: Option<HeaderValue>,
    anthropic: bool,
) -> Response<GatewayBody> {
    let body = match message {
        _ if anthropic => error.anthropic_body(message),
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
    fn truncation_respects_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
