//! HTTP/1.1 upstream connections kept alive in an own pool, over plain TCP or TLS. A connection's
//! future is polled inside the call's own task: while the request is sent, and then by the
//! response body each time the client side asks for the next frame.

use std::collections::{HashMap, VecDeque};
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery};
use http::{Request, Response, Uri};
use http_body::{Body, Frame};
use hyper::body::Incoming;
use hyper::client::conn::{TrySendError, http1};

use super::{IDLE_TIMEOUT, MAX_IDLE_PER_UPSTREAM, UpstreamError};
use crate::proxy::UpstreamBody;

/// What an upstream connection runs over: plain TCP or TLS.
pub(crate) trait Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static {}

impl<T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static> Io for T {}

/// One HTTP/1.1 connection: the handle requests are sent with, and the connection future that
/// does the reading and writing whenever it is polled.
pub(super) struct Conn<T: Io> {
    sender: http1::SendRequest<UpstreamBody>,
    conn: http1::Connection<T, UpstreamBody>,
    /// The connection future has completed: it is closed and never polled again.
    ended: bool,
}

impl<T: Io> Conn<T> {
    /// The HTTP/1.1 handshake (nothing is sent yet) over an open connection.
    pub(super) async fn handshake(io: T) -> Result<Box<Self>, UpstreamError> {
        let (sender, conn) = http1::handshake(io).await.map_err(UpstreamError::Http)?;
        Ok(Box::new(Self {
            sender,
            conn,
            ended: false,
        }))
    }

    /// Lets the connection read and write what it can; whether it has ended (closed or failed).
    fn poll_ended(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.ended && Pin::new(&mut self.conn).poll(cx).is_ready() {
            self.ended = true;
        }
        self.ended
    }

    fn reusable(&self) -> bool {
        !self.ended && !self.sender.is_closed()
    }

    /// Sends `req` (its URI in origin form), polling the connection in this task until the
    /// response head is in. A request the connection never wrote comes back in the error.
    pub(super) async fn exchange(
        &mut self,
        req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, TrySendError<Request<UpstreamBody>>> {
        let mut response = std::pin::pin!(self.sender.try_send_request(req));
        poll_fn(|cx| {
            // Once the connection has ended, the response future holds its error.
            self.poll_ended(cx);
            response.as_mut().poll(cx)
        })
        .await
    }
}

/// HTTP/1.1 to an origin server: the request line carries only the path and query.
pub(super) fn origin_form(uri: &Uri) -> Uri {
    Uri::from(
        uri.path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    )
}

struct Idle<T: Io> {
    conn: Box<Conn<T>>,
    since: Instant,
}

/// The idle HTTP/1.1 connections, per upstream authority, most recently used last.
pub(super) struct Pool<T: Io> {
    idle: Mutex<HashMap<Authority, VecDeque<Idle<T>>>>,
}

impl<T: Io> Pool<T> {
    pub(super) fn new() -> Self {
        Self {
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// The most recently used idle connection to `authority` that is still open and ready.
    pub(super) async fn checkout(&self, authority: &Authority) -> Option<Box<Conn<T>>> {
        loop {
            let idle = {
                let mut pools = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                let list = pools.get_mut(authority)?;
                let idle = list.pop_back();
                if idle.is_none() {
                    pools.remove(authority);
                }
                idle?
            };
            if idle.since.elapsed() > IDLE_TIMEOUT {
                // The rest are older still.
                self.idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(authority);
                return None;
            }
            let mut conn = idle.conn;
            let ready = poll_fn(|cx| {
                if conn.poll_ended(cx) {
                    return Poll::Ready(false);
                }
                Poll::Ready(matches!(conn.sender.poll_ready(cx), Poll::Ready(Ok(()))))
            })
            .await;
            if ready {
                return Some(conn);
            }
        }
    }

    /// Keeps `conn` for the next call to `authority`; the oldest idle ones go past the cap or
    /// their idle timeout.
    fn put(&self, authority: Authority, conn: Box<Conn<T>>) {
        let now = Instant::now();
        let mut pools = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let list = pools.entry(authority).or_default();
        while list.front().is_some_and(|oldest| {
            list.len() >= MAX_IDLE_PER_UPSTREAM || now - oldest.since > IDLE_TIMEOUT
        }) {
            list.pop_front();
        }
        list.push_back(Idle { conn, since: now });
    }
}

/// The pooled side of an answer's body: hyper's body, and the connection it arrives on, polled
/// before each read of the body. Back in the pool once the body has ended.
pub(crate) struct PooledBody<T: Io> {
    pub(super) body: Incoming,
    /// `None` once the connection has ended or gone back to the pool.
    conn: Option<Box<Conn<T>>>,
    pool: Arc<Pool<T>>,
    authority: Authority,
}

impl<T: Io> PooledBody<T> {
    /// `response`, whose body arrived on `conn`, with the body keeping the connection for `pool`.
    pub(super) fn wrap(
        response: Response<Incoming>,
        conn: Box<Conn<T>>,
        pool: &Arc<Pool<T>>,
        authority: Authority,
    ) -> Response<Self> {
        let open = conn.reusable();
        response.map(|body| Self {
            body,
            conn: open.then_some(conn),
            pool: pool.clone(),
            authority,
        })
    }

    pub(super) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        // The connection first: it reads what arrived and hands it to the body. When it ends
        // (the upstream closed, or failed) the body gets its end or error from it.
        if let Some(conn) = self.conn.as_mut()
            && conn.poll_ended(cx)
        {
            self.conn = None;
        }
        let frame = ready!(Pin::new(&mut self.body).poll_frame(cx));
        match &frame {
            None => self.release(),
            Some(Ok(_)) if self.body.is_end_stream() => self.release(),
            Some(Ok(_)) => {}
            Some(Err(_)) => self.conn = None,
        }
        Poll::Ready(frame)
    }

    /// The body has ended: its connection goes back to the pool.
    fn release(&mut self) {
        if let Some(conn) = self.conn.take()
            && conn.reusable()
        {
            self.pool.put(self.authority.clone(), conn);
        }
    }
}

impl<T: Io> Drop for PooledBody<T> {
    fn drop(&mut self) {
        // An answer without a body (HEAD, 204, 304), or one whose declared length was read, may be
        // dropped without a last poll; any other body dropped early leaves bytes unread on its
        // connection, which is closed with it.
        if self.body.is_end_stream() {
            self.release();
        }
    }
}
