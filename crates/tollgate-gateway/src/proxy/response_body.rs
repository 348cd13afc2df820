//! The body of every gateway response: a refusal's JSON, or the upstream's body streamed to the
//! client through the usage tap, with the route's idle timeout, credential-free trailers, and the
//! last frame held until the call's usage event is durable.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

use super::call::Call;
use super::headers::remove_credential_echo;
use super::{BoxError, error_chain};
use crate::capture::ResponseTap;
use crate::error::CLIENT_CLOSED_STATUS;
use crate::state::{Credential, RouteEntry};
use crate::upstream::ResponseBody;

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
    /// A body of one known chunk (a refusal's JSON).
    pub(super) fn full(bytes: Bytes) -> Self {
        Self {
            inner: Inner::Full(Some(bytes)),
        }
    }

    /// The upstream's body, streamed through the usage tap (if any) under the route's idle
    /// timeout; `declared` is the `Content-Length` the client is sent. The call's event is
    /// recorded when the body ends or is dropped.
    pub(super) fn proxied(
        upstream: ResponseBody,
        route: &RouteEntry,
        tap: Option<ResponseTap>,
        call: Call,
        status: u16,
        declared: Option<u64>,
    ) -> Self {
        Self {
            inner: Inner::Proxied(Box::new(Proxied {
                upstream,
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
    upstream: ResponseBody,
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

    /// The call ends: with `error` where the upstream's answer failed, else with its last byte.
    fn complete(&mut self, error: Option<String>) {
        self.ended = true;
        if error.is_none() {
            self.call.upstream_ended();
        }
        self.call.finish_tap(self.status, error, self.tap.take());
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
            self.call.finish_tap(
                CLIENT_CLOSED_STATUS,
                Some("client_closed_request: the client hung up during the response".to_owned()),
                self.tap.take(),
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
