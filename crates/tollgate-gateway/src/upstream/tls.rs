//! HTTPS upstreams: HTTP/2 where the upstream picks `h2` by ALPN, else HTTP/1.1 through the same
//! own pool as plain upstreams.
//!
//! An h2 connection carries up to [`STREAMS_PER_H2_CONNECTION`] calls at once; past that a new
//! connection is opened, so a burst of long streams is not queued behind the upstream's stream
//! limit on one connection (hyper-util's pooled client never opens a second one). New
//! connections to an upstream that may speak h2 are opened one at a time: calls that arrive
//! together wait for the first handshake and share its connection, instead of each opening its
//! own. Each h2 connection is driven by a task of its own, as multiplexing requires.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http::{HeaderValue, Request, Response, Uri};
use http_body::{Body, Frame};
use hyper::body::Incoming;
use hyper::client::conn::{TrySendError, http2};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::{Connection as _, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tower::ServiceExt;

use super::h1::{self, Conn, PooledBody};
use super::{IDLE_TIMEOUT, ResponseBody, UpstreamError};
use crate::proxy::UpstreamBody;

/// Calls in flight on one h2 connection before another is opened. RFC 9113 §6.5.2 asks servers
/// to allow at least 100 concurrent streams, so no upstream that follows it queues a call of ours.
pub(super) const STREAMS_PER_H2_CONNECTION: usize = 100;
/// An h2 connection is pinged after this long without a frame, and closed when no answer comes
/// within [`H2_PING_TIMEOUT`] (a dead peer is not kept as the home of new calls).
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// A TLS connection to an upstream (or plain, which this pool is never given).
pub(super) type TlsIo = MaybeHttpsStream<TokioIo<TcpStream>>;

/// The connections to HTTPS upstreams.
pub(super) struct TlsPool {
    connector: HttpsConnector<HttpConnector>,
    h1: Arc<h1::Pool<TlsIo>>,
    upstreams: Mutex<HashMap<Authority, Arc<Upstream>>>,
    /// The start of the millisecond clock of [`Load::last_end_ms`].
    epoch: Instant,
}

/// What is known of one HTTPS upstream.
#[derive(Default)]
struct Upstream {
    /// It picked `http/1.1` by ALPN on the last connection opened to it.
    http1: AtomicBool,
    h2: Mutex<Vec<H2Conn>>,
    /// Held while a connection to an upstream that may speak h2 is opened.
    connecting: tokio::sync::Mutex<()>,
    /// Connections that could not be opened, and why the last one could not: a call that waited
    /// for another's attempt fails with it instead of trying again in turn (each waiting out
    /// the connect timeout of an upstream that does not answer).
    failures: AtomicU64,
    last_failure: Mutex<String>,
}

struct H2Conn {
    sender: http2::SendRequest<UpstreamBody>,
    load: Arc<Load>,
}

/// The calls in flight on one h2 connection.
struct Load {
    streams: AtomicUsize,
    /// When the last call on it ended (or it opened), in ms since the pool's epoch.
    last_end_ms: AtomicU64,
    epoch: Instant,
}

impl Load {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// No call on it, and none for longer than `timeout`.
    fn idle_past(&self, timeout: Duration) -> bool {
        self.streams.load(Ordering::Acquire) == 0
            && self
                .now_ms()
                .saturating_sub(self.last_end_ms.load(Ordering::Relaxed))
                > u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)
    }
}

/// A call's place on an h2 connection, given back when its answer's body ends or is dropped.
pub(crate) struct StreamSlot(Arc<Load>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.last_end_ms.store(self.0.now_ms(), Ordering::Relaxed);
        self.0.streams.fetch_sub(1, Ordering::Release);
    }
}

/// An answer's body from an h2 connection, holding the call's stream slot.
pub(crate) struct H2Body {
    pub(super) body: Incoming,
    _slot: StreamSlot,
}

impl H2Body {
    pub(super) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }
}

/// A connection a call is sent on.
enum Lease {
    H1(Box<Conn<TlsIo>>),
    H2(http2::SendRequest<UpstreamBody>, StreamSlot),
}

impl TlsPool {
    pub(super) fn new(connector: HttpsConnector<HttpConnector>) -> Self {
        Self {
            connector,
            h1: Arc::new(h1::Pool::new()),
            upstreams: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }

    /// Sends `req` (its URI absolute) and waits for the head.
    pub(super) async fn send(
        self: &Arc<Self>,
        authority: Authority,
        req: Request<UpstreamBody>,
    ) -> Result<Response<ResponseBody>, UpstreamError> {
        let upstream = self.upstream(&authority);
        let uri = req.uri().clone();
        let (lease, reused) = match self.reuse(&upstream, &authority).await {
            Some(lease) => (lease, true),
            None => (self.open(&upstream, &uri).await?, false),
        };
        match self.exchange(lease, &authority, req).await {
            Ok(response) => Ok(response),
            Err(mut err) => {
                // A reused connection closed before the request was written: once more on a
                // new one (the upstream never saw the request).
                let Some(mut req) = err.take_message().filter(|_| reused) else {
                    return Err(UpstreamError::Http(err.into_error()));
                };
                *req.uri_mut() = uri.clone();
                let lease = self.open(&upstream, &uri).await?;
                self.exchange(lease, &authority, req)
                    .await
                    .map_err(|err| UpstreamError::Http(err.into_error()))
            }
        }
    }

    fn upstream(&self, authority: &Authority) -> Arc<Upstream> {
        let mut upstreams = self
            .upstreams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        upstreams.entry(authority.clone()).or_default().clone()
    }

    /// A connection already open: a place on an h2 one, else an idle HTTP/1.1 one.
    async fn reuse(&self, upstream: &Upstream, authority: &Authority) -> Option<Lease> {
        if !upstream.http1.load(Ordering::Relaxed)
            && let Some(lease) = upstream.lease_h2()
        {
            return Some(lease);
        }
        self.h1.checkout(authority).await.map(Lease::H1)
    }

    /// A new connection, unless one opened meanwhile by another call has room. To an upstream
    /// that may speak h2, one attempt at a time: calls that arrive together share the first
    /// connection, and fail with its attempt when it fails. Once the upstream is known to pick
    /// HTTP/1.1, every call opens its own at once.
    async fn open(&self, upstream: &Upstream, uri: &Uri) -> Result<Lease, UpstreamError> {
        if !upstream.http1.load(Ordering::Relaxed) {
            let failures = upstream.failures.load(Ordering::Acquire);
            let turn = upstream.connecting.lock().await;
            if let Some(lease) = upstream.lease_h2() {
                return Ok(lease);
            }
            if upstream.failures.load(Ordering::Acquire) != failures {
                let why = upstream
                    .last_failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                return Err(UpstreamError::Connect(why.into()));
            }
            if !upstream.http1.load(Ordering::Relaxed) {
                return self.connect(upstream, uri).await;
            }
            drop(turn);
        }
        self.connect(upstream, uri).await
    }

    /// Opens a connection to `uri`'s authority and speaks what the upstream picked by ALPN.
    #[expect(
        clippy::disallowed_methods,
        reason = "an h2 connection's task ends once its streams have ended and every sender is dropped (the pool's go with the gateway's upstream state at shutdown), or when the peer stops answering pings"
    )]
    async fn connect(&self, upstream: &Upstream, uri: &Uri) -> Result<Lease, UpstreamError> {
        let io = match self.connector.clone().oneshot(uri.clone()).await {
            Ok(io) => io,
            Err(err) => {
                *upstream
                    .last_failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = err.to_string();
                upstream.failures.fetch_add(1, Ordering::Release);
                return Err(UpstreamError::Connect(err));
            }
        };
        if !io.connected().is_negotiated_h2() {
            upstream.http1.store(true, Ordering::Relaxed);
            return Ok(Lease::H1(Conn::handshake(io).await?));
        }
        upstream.http1.store(false, Ordering::Relaxed);
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(H2_PING_INTERVAL)
            .keep_alive_timeout(H2_PING_TIMEOUT)
            .handshake(io)
            .await
            .map_err(UpstreamError::Http)?;
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!(error = %err, "h2 upstream connection ended with an error");
            }
        });
        let load = Arc::new(Load {
            streams: AtomicUsize::new(1),
            last_end_ms: AtomicU64::new(0),
            epoch: self.epoch,
        });
        load.last_end_ms.store(load.now_ms(), Ordering::Relaxed);
        let slot = StreamSlot(load.clone());
        upstream
            .h2
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(H2Conn {
                sender: sender.clone(),
                load,
            });
        Ok(Lease::H2(sender, slot))
    }

    /// Sends `req` on the leased connection: in origin form with a `Host` on HTTP/1.1, as it is
    /// on h2 (hyper sends `:authority` from the URI and drops what h2 forbids).
    async fn exchange(
        self: &Arc<Self>,
        lease: Lease,
        authority: &Authority,
        mut req: Request<UpstreamBody>,
    ) -> Result<Response<ResponseBody>, TrySendError<Request<UpstreamBody>>> {
        match lease {
            Lease::H1(mut conn) => {
                let host = host_header(req.uri());
                *req.uri_mut() = h1::origin_form(req.uri());
                if let Some(host) = host {
                    req.headers_mut().entry(http::header::HOST).or_insert(host);
                }
                let response = conn.exchange(req).await?;
                Ok(
                    PooledBody::wrap(response, conn, &self.h1, authority.clone())
                        .map(ResponseBody::Tls),
                )
            }
            Lease::H2(mut sender, slot) => {
                let response = sender.try_send_request(req).await?;
                Ok(response.map(|body| ResponseBody::H2(H2Body { body, _slot: slot })))
            }
        }
    }
}

impl Upstream {
    /// A place on an open h2 connection with room for one more call; closed connections, and
    /// ones idle past the idle timeout, are let go.
    fn lease_h2(&self) -> Option<Lease> {
        let mut conns = self.h2.lock().unwrap_or_else(PoisonError::into_inner);
        conns.retain(|c| !c.sender.is_closed() && !c.load.idle_past(IDLE_TIMEOUT));
        let conn = conns.iter().find(|c| {
            c.sender.is_ready()
                && c.load.streams.load(Ordering::Acquire) < STREAMS_PER_H2_CONNECTION
        })?;
        conn.load.streams.fetch_add(1, Ordering::AcqRel);
        Some(Lease::H2(
            conn.sender.clone(),
            StreamSlot(conn.load.clone()),
        ))
    }
}

/// `host[:port]` of an absolute URI, the port left out when it is HTTPS's own.
fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let value = match uri.port_u16() {
        Some(port) if port != 443 => format!("{host}:{port}"),
        _ => host.to_owned(),
    };
    HeaderValue::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection `ago` old whose last call ended `ended_ago` ago, with `streams` in flight.
    fn load(ago: Duration, ended_ago: Duration, streams: usize) -> Load {
        let epoch = Instant::now().checked_sub(ago).expect("a past instant");
        let ended = u64::try_from((ago - ended_ago).as_millis()).expect("ms");
        Load {
            streams: AtomicUsize::new(streams),
            last_end_ms: AtomicU64::new(ended),
            epoch,
        }
    }

    #[test]
    fn an_h2_connection_is_idle_only_without_calls_past_the_timeout() {
        let timeout = Duration::from_secs(90);
        let s = Duration::from_secs;
        assert!(load(s(200), s(91), 0).idle_past(timeout));
        assert!(!load(s(200), s(89), 0).idle_past(timeout), "ended recently");
        assert!(
            !load(s(200), s(150), 1).idle_past(timeout),
            "a call in flight"
        );
        // A slot given back updates when the last call ended.
        let l = Arc::new(load(s(200), s(150), 1));
        assert!(!l.idle_past(timeout));
        drop(StreamSlot(l.clone()));
        assert!(!l.idle_past(timeout), "its call just ended");
        assert_eq!(l.streams.load(Ordering::Acquire), 0);
    }
}
