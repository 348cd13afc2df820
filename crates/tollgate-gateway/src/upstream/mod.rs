//! The upstream client. Plain-HTTP upstreams go through an own keep-alive pool of HTTP/1.1
//! connections whose connection future is polled inside the call's own task: while the request
//! is sent, and then by the response body each time the client side asks for the next frame. No
//! task is spawned per connection and no chunk crosses from one task to another, so a streamed
//! answer costs no wake-up of a second task per chunk (pingora keeps its upstream connections in
//! the downstream's task the same way). HTTPS upstreams keep hyper-util's pooled client, which
//! speaks h2 when the upstream picks it by ALPN.
//!
//! A connection goes back to the pool once its answer's body has ended; an idle one is polled
//! nowhere, so on checkout it is polled once (reading the close an upstream sent meanwhile) and
//! used only when ready for a new request. A call whose request the reused connection never
//! wrote (it was closed under it) is retried once on a new connection, as hyper-util's client does.

use std::collections::{HashMap, VecDeque};
use std::error::Error as StdError;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::ServiceExt;

use crate::proxy::UpstreamBody;

/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Most idle connections kept per upstream (host and port).
const MAX_IDLE_PER_UPSTREAM: usize = 1024;

/// hyper-util's pooled client, for HTTPS upstreams: HTTP/2 when the upstream picks `h2` by ALPN
/// (one connection per upstream carries every concurrent call) else HTTP/1.1.
pub(crate) type TlsClient = Client<HttpsConnector<HttpConnector>, UpstreamBody>;

/// The client of one connect timeout: the own HTTP/1.1 pool for `http` upstreams, hyper-util's
/// client for `https` ones. Cheap to clone; clones share the pools.
#[derive(Clone)]
pub(crate) struct UpstreamClient {
    tls: TlsClient,
    plain: Arc<Pool>,
}

impl fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamClient").finish_non_exhaustive()
    }
}

/// Why a call got no response head from its upstream.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// No connection could be opened (refused, unresolvable, or the connect timeout passed).
    Connect(Box<dyn StdError + Send + Sync>),
    /// The HTTP/1.1 exchange on a pooled connection failed.
    Http(hyper::Error),
    /// hyper-util's client failed (HTTPS upstreams).
    Client(hyper_util::client::legacy::Error),
}

impl UpstreamError {
    /// Whether no connection could be opened.
    pub(crate) fn is_connect(&self) -> bool {
        match self {
            Self::Connect(_) => true,
            Self::Http(_) => false,
            Self::Client(err) => err.is_connect(),
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(_) => f.write_str("cannot connect to the upstream"),
            Self::Http(err) => fmt::Display::fmt(err, f),
            Self::Client(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl StdError for UpstreamError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Connect(err) => Some(&**err),
            Self::Http(err) => err.source(),
            Self::Client(err) => err.source(),
        }
    }
}

impl UpstreamClient {
    /// A client whose plain connections are opened by `connector` (its connect timeout, TCP
    /// no-delay and keep-alive) and whose HTTPS calls go through `tls`.
    pub(crate) fn new(connector: HttpConnector, tls: TlsClient) -> Self {
        Self {
            tls,
            plain: Arc::new(Pool {
                connector,
                idle: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Sends `req` (its URI absolute, with a `Host` header for `http`) and waits for the head.
    pub(crate) async fn request(
        &self,
        req: Request<UpstreamBody>,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        if req.uri().scheme() == Some(&Scheme::HTTP)
            && let Some(authority) = req.uri().authority().cloned()
        {
            let response = self.plain.send(authority, req).await?;
            return Ok(response);
        }
        let response = self.tls.request(req).await.map_err(UpstreamError::Client)?;
        Ok(response.map(ResponseBody::Client))
    }
}

/// The pooled side of an answer's body: hyper's body, and the connection it arrives on, polled
/// before each read of the body. Back in the pool once the body has ended.
pub(crate) struct PooledBody {
    body: Incoming,
    /// `None` once the connection has ended or gone back to the pool.
    conn: Option<Box<Conn>>,
    pool: Arc<Pool>,
    authority: Authority,
}

/// An upstream's response body.
pub(crate) enum ResponseBody {
    /// From a plain-HTTP connection of the own pool, driven by this body.
    Pooled(PooledBody),
    /// From hyper-util's client (HTTPS upstreams).
    Client(Incoming),
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Self::Pooled(pooled) => pooled.poll_frame(cx),
            Self::Client(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Pooled(pooled) => pooled.body.is_end_stream(),
            Self::Client(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Pooled(pooled) => pooled.body.size_hint(),
            Self::Client(body) => body.size_hint(),
        }
    }
}

impl PooledBody {
    fn poll_frame(
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

impl Drop for PooledBody {
    fn drop(&mut self) {
        // An answer without a body (HEAD, 204, 304), or one whose declared length was read, may be
        // dropped without a last poll; any other body dropped early leaves bytes unread on its
        // connection, which is closed with it.
        if self.body.is_end_stream() {
            self.release();
        }
    }
}

/// One HTTP/1.1 connection: the handle requests are sent with, and the connection future that
/// does the reading and writing whenever it is polled.
struct Conn {
    sender: http1::SendRequest<UpstreamBody>,
    conn: http1::Connection<TokioIo<TcpStream>, UpstreamBody>,
    /// The connection future has completed: it is closed and never polled again.
    ended: bool,
}

impl Conn {
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
}

struct Idle {
    conn: Box<Conn>,
    since: Instant,
}

/// The idle plain-HTTP/1.1 connections, per upstream authority, most recently used last.
struct Pool {
    connector: HttpConnector,
    idle: Mutex<HashMap<Authority, VecDeque<Idle>>>,
}

impl Pool {
    async fn send(
        self: &Arc<Self>,
        authority: Authority,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        let uri = req.uri().clone();
        // HTTP/1.1 to an origin server: the request line carries only the path and query.
        *req.uri_mut() = Uri::from(
            uri.path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        let (mut conn, reused) = match self.checkout(&authority).await {
            Some(conn) => (conn, true),
            None => (self.connect(&uri).await?, false),
        };
        let response = match exchange(&mut conn, req).await {
            Ok(response) => response,
            Err(mut err) => {
                // A reused connection closed before the request was written: once more on a
                // new one (the upstream never saw the request).
                let message = err.take_message().filter(|_| reused);
                let Some(req) = message else {
                    return Err(UpstreamError::Http(err.into_error()));
                };
                conn = self.connect(&uri).await?;
                exchange(&mut conn, req)
                    .await
                    .map_err(|err| UpstreamError::Http(err.into_error()))?
            }
        };
        let open = conn.reusable();
        Ok(response.map(|body| {
            ResponseBody::Pooled(PooledBody {
                body,
                conn: open.then_some(conn),
                pool: self.clone(),
                authority,
            })
        }))
    }

    /// Opens a new connection to `uri`'s authority.
    async fn connect(&self, uri: &Uri) -> Result<Box<Conn>, UpstreamError> {
        let io = self
            .connector
            .clone()
            .oneshot(uri.clone())
            .await
            .map_err(|err| UpstreamError::Connect(Box::new(err)))?;
        let (sender, conn) = http1::handshake(io).await.map_err(UpstreamError::Http)?;
        Ok(Box::new(Conn {
            sender,
            conn,
            ended: false,
        }))
    }

    /// The most recently used idle connection to `authority` that is still open and ready.
    async fn checkout(&self, authority: &Authority) -> Option<Box<Conn>> {
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
    fn put(&self, authority: Authority, conn: Box<Conn>) {
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

/// Sends `req` on `conn`, polling the connection in this task until the response head is in.
async fn exchange(
    conn: &mut Conn,
    req: Request<UpstreamBody>,
) -> Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<UpstreamBody>>> {
    let mut response = std::pin::pin!(conn.sender.try_send_request(req));
    poll_fn(|cx| {
        // Once the connection has ended, the response future holds its error.
        conn.poll_ended(cx);
        response.as_mut().poll(cx)
    })
    .await
}

#[cfg(test)]
mod tests;
