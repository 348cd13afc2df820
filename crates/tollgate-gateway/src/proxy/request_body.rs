//! The body sent upstream: nothing, a peeked (maybe rewritten) whole body, or the client's body
//! streamed through under the size limit; and the bounded peek that reads an LLM request.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::{Failure, error_chain};
use crate::error::GatewayError;

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
///
/// Kept small: hyper's client holds each upstream connection's requests in a channel whose blocks
/// have room for 32 of them, allocated with the connection, so every byte of this type is paid
/// 32 times per open upstream connection. The rare streamed upload is boxed for that reason.
pub(crate) enum UpstreamBody {
    Empty,
    Full(Option<Bytes>),
    Stream(Box<Streamed>),
}

/// A client body passed through as it arrives, after what was peeked of it.
pub(crate) struct Streamed {
    prefix: Option<Bytes>,
    inner: Incoming,
    seen: u64,
    limit: u64,
}

impl UpstreamBody {
    pub(super) fn stream(prefix: Option<Bytes>, inner: Incoming, limit: u64) -> Self {
        let seen = prefix.as_ref().map_or(0, |p| p.len() as u64);
        Self::Stream(Box::new(Streamed {
            prefix,
            inner,
            seen,
            limit,
        }))
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
            Self::Stream(streamed) => {
                let Streamed {
                    prefix,
                    inner,
                    seen,
                    limit,
                } = &mut **streamed;
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
            Self::Stream(s) => s.prefix.is_none() && s.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Empty => SizeHint::with_exact(0),
            Self::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Stream(s) => {
                let extra = s.prefix.as_ref().map_or(0, |p| p.len() as u64);
                let inner = s.inner.size_hint();
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

pub(super) enum Peeked {
    /// The whole body.
    Whole(Bytes),
    /// The body was longer than the peek: what was read, and the rest still to stream.
    Partial(Bytes, Incoming),
}

/// Reads an LLM request body of up to `peek_limit` bytes; stops early when it is longer.
pub(super) async fn peek(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_body_stays_small() {
        // Paid 32 times per open upstream connection (hyper's request channel block): a field
        // added to the streamed variant belongs in `Streamed`, behind its box.
        assert!(
            std::mem::size_of::<UpstreamBody>() <= 40,
            "UpstreamBody is {} bytes",
            std::mem::size_of::<UpstreamBody>()
        );
    }
}
