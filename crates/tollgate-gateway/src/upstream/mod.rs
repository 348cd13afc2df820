//! The upstream client. HTTP/1.1 connections, plain or TLS, go through an own keep-alive pool
//! ([`h1`]) whose connection future is polled inside the call's own task: while the request is
//! sent, and then by the response body each time the client side asks for the next frame. No
//! task is spawned per connection and no chunk crosses from one task to another, so a streamed
//! answer costs no wake-up of a second task per chunk (pingora keeps its upstream connections in
//! the downstream's task the same way). HTTPS upstreams that pick `h2` by ALPN get HTTP/2
//! ([`tls`]): one connection carries many calls, and more are opened as calls pile up.
//!
//! A connection goes back to the pool once its answer's body has ended; an idle one is polled
//! nowhere, so on checkout it is polled once (reading the close an upstream sent meanwhile) and
//! used only when ready for a new request. A call whose request the reused connection never
//! wrote (it was closed under it) is retried once on a new connection, as hyper-util's client does.

mod h1;
mod tls;

use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::ServiceExt;

use crate::proxy::UpstreamBody;
use h1::{Conn, PooledBody};
use tls::{H2Body, TlsPool};

/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Most idle connections kept per upstream (host and port).
const MAX_IDLE_PER_UPSTREAM: usize = 1024;

/// The client of one connect timeout: the own HTTP/1.1 pool for `http` upstreams, the TLS pool
/// (h2 or HTTP/1.1) for `https` ones. Cheap to clone; clones share the pools.
#[derive(Clone)]
pub(crate) struct UpstreamClient {
    tls: Arc<TlsPool>,
    plain: Arc<PlainPool>,
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
    /// The exchange on an open connection failed (HTTP/1.1 or h2).
    Http(hyper::Error),
}

impl UpstreamError {
    /// Whether no connection could be opened.
    pub(crate) fn is_connect(&self) -> bool {
        match self {
            Self::Connect(_) => true,
            Self::Http(_) => false,
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(_) => f.write_str("cannot connect to the upstream"),
            Self::Http(err) => fmt::Display::fmt(err, f),
        }
    }
}

impl StdError for UpstreamError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Connect(err) => Some(&**err),
            Self::Http(err) => err.source(),
        }
    }
}

impl UpstreamClient {
    /// A client whose plain connections are opened by `connector` (its connect timeout, TCP
    /// no-delay and keep-alive) and whose HTTPS ones by `tls` (the same, wrapped in TLS).
    pub(crate) fn new(connector: HttpConnector, tls: HttpsConnector<HttpConnector>) -> Self {
        Self {
            tls: Arc::new(TlsPool::new(tls)),
            plain: Arc::new(PlainPool {
                connector,
                pool: Arc::new(h1::Pool::new()),
            }),
        }
    }

    /// Sends `req` (its URI absolute, with a `Host` header for `http`) and waits for the head.
    pub(crate) async fn request(
        &self,
        req: Request<UpstreamBody>,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        let Some(authority) = req.uri().authority().cloned() else {
            return Err(UpstreamError::Connect(
                "the upstream URL has no host".into(),
            ));
        };
        if req.uri().scheme() == Some(&Scheme::HTTPS) {
            // Boxed: with its TLS and h2 handshakes this future is about 8 KiB, which every plain
            // call would otherwise carry in its own future and copy each time it is moved.
            Box::pin(self.tls.send(authority, req)).await
        } else {
            self.plain.send(authority, req).await
        }
    }
}

/// An upstream's response body.
pub(crate) enum ResponseBody {
    /// From a plain-HTTP connection of the own pool, driven by this body.
    Pooled(PooledBody<TokioIo<TcpStream>>),
    /// From an HTTP/1.1 connection over TLS, driven by this body.
    Tls(PooledBody<tls::TlsIo>),
    /// From an h2 connection (driven by its own task).
    H2(H2Body),
}

impl ResponseBody {
    fn incoming(&self) -> &hyper::body::Incoming {
        match self {
            Self::Pooled(pooled) => &pooled.body,
            Self::Tls(pooled) => &pooled.body,
            Self::H2(h2) => &h2.body,
        }
    }
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
            Self::Tls(pooled) => pooled.poll_frame(cx),
            Self::H2(h2) => h2.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming().is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming().size_hint()
    }
}

/// The own HTTP/1.1 pool of plain-HTTP upstreams, and how its connections are opened.
struct PlainPool {
    connector: HttpConnector,
    pool: Arc<h1::Pool<TokioIo<TcpStream>>>,
}

impl PlainPool {
    async fn send(
        &self,
        authority: Authority,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        let uri = req.uri().clone();
        *req.uri_mut() = h1::origin_form(&uri);
        let (mut conn, reused) = match self.pool.checkout(&authority).await {
            Some(conn) => (conn, true),
            None => (self.connect(&uri).await?, false),
        };
        let response = match conn.exchange(req).await {
            Ok(response) => response,
            Err(mut err) => {
                // A reused connection closed before the request was written: once more on a
                // new one (the upstream never saw the request).
                let message = err.take_message().filter(|_| reused);
                let Some(req) = message else {
                    return Err(UpstreamError::Http(err.into_error()));
                };
                conn = self.connect(&uri).await?;
                conn.exchange(req)
                    .await
                    .map_err(|err| UpstreamError::Http(err.into_error()))?
            }
        };
        Ok(PooledBody::wrap(response, conn, &self.pool, authority).map(ResponseBody::Pooled))
    }

    /// Opens a new connection to `uri`'s authority.
    async fn connect(
        &self,
        uri: &http::Uri,
    ) -> Result<Box<Conn<TokioIo<TcpStream>>>, UpstreamError> {
        let io = self
            .connector
            .clone()
            .oneshot(uri.clone())
            .await
            .map_err(|err| UpstreamError::Connect(Box::new(err)))?;
        Conn::handshake(io).await
    }
}

#[cfg(test)]
mod tests;
