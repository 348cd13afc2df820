//! The response body: whole, paced chunk by chunk, or never finishing.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// A response body of the mock upstream.
pub(crate) enum MockBody {
    /// One buffer sent at once: the fast path used by benchmarks.
    Full(Option<Bytes>),
    /// Chunks with a pause between consecutive ones.
    Paced(Paced),
    /// Never yields a frame and never ends.
    Hang,
}

/// State of a paced body.
pub(crate) struct Paced {
    chunks: VecDeque<Bytes>,
    delay: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    /// Plain bodies announce their length (`Content-Length`); SSE streams stay chunked.
    sized: bool,
}

impl MockBody {
    /// A body sent in one piece.
    pub(crate) fn full(bytes: Bytes) -> Self {
        Self::Full(Some(bytes))
    }

    /// An SSE stream: chunked transfer, `delay` between events.
    pub(crate) fn events(events: Vec<Bytes>, delay: Duration) -> Self {
        Self::Paced(Paced {
            chunks: events.into(),
            delay,
            sleep: None,
            sized: false,
        })
    }

    /// A plain body cut into `pieces` chunks of nearly equal size with `delay` between them.
    pub(crate) fn split(bytes: Bytes, pieces: usize, delay: Duration) -> Self {
        let len = bytes.len();
        let pieces = pieces.clamp(1, len.max(1));
        if pieces == 1 {
            return Self::full(bytes);
        }
        let mut chunks = VecDeque::with_capacity(pieces);
        let mut start = 0;
        for i in 0..pieces {
            // Spread the remainder over the first pieces so every piece is non-empty.
            let end = start + len / pieces + usize::from(i < len % pieces);
            chunks.push_back(bytes.slice(start..end));
            start = end;
        }
        Self::Paced(Paced {
            chunks,
            delay,
            sleep: None,
            sized: true,
        })
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Hang => Poll::Pending,
            Self::Paced(paced) => {
                if let Some(sleep) = paced.sleep.as_mut() {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    paced.sleep = None;
                }
                let Some(chunk) = paced.chunks.pop_front() else {
                    return Poll::Ready(None);
                };
                if !paced.chunks.is_empty() && !paced.delay.is_zero() {
                    paced.sleep = Some(Box::pin(tokio::time::sleep(paced.delay)));
                }
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(bytes) => bytes.is_none(),
            Self::Hang => false,
            Self::Paced(paced) => paced.chunks.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Hang => SizeHint::default(),
            Self::Paced(paced) if paced.sized => {
                SizeHint::with_exact(paced.chunks.iter().map(|c| c.len() as u64).sum())
            }
            Self::Paced(_) => SizeHint::default(),
        }
    }
}
