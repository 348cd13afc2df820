//! The one accept loop both listeners (gateway and console) run: a connection cap, a first-byte
//! and header-read timeout, an idle timeout, HTTP/2 keep-alive pings, backed-off accept errors,
//! connection metrics, and graceful shutdown.
//!
//! At the cap a new connection is accepted and closed at once and counted as refused, as Envoy's
//! listener connection limit does: the kernel's backlog keeps draining and the client learns at
//! once instead of waiting in a queue that cannot move.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use crate::metrics::{ListenerLabels, Metrics};

/// Timeouts and limits of one listener.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// `gateway` or `console`: the `listener` label of the metrics and the log.
    pub name: &'static str,
    /// Longest wait for the first byte of a connection and for a whole request head (HTTP/1).
    pub header_read_timeout: Duration,
    /// A connection with no byte read or written for this long is closed.
    pub idle_timeout: Duration,
    /// HTTP/2 keep-alive ping interval; a ping unanswered for as long closes the connection.
    pub keepalive_ping: Duration,
    /// Most open connections; more are accepted and closed at once.
    pub max_connections: usize,
    /// Longest wait for in-flight calls at shutdown.
    pub drain_timeout: Duration,
    /// Serve HTTPS with this configuration; the handshake must end within
    /// `header_read_timeout`, like a request head.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        Self {
            name: "gateway",
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            keepalive_ping: Duration::from_secs(30),
            max_connections: 10_000,
            drain_timeout: Duration::from_secs(30),
            tls: None,
        }
    }
}

impl ListenerSettings {
    /// The HTTP/1.1 and HTTP/1.1 + h2c connection builders with this listener's timeouts.
    pub fn builders(&self) -> Builders {
        let mut auto = auto::Builder::new(TokioExecutor::new());
        auto.http1()
            .keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        auto.http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(self.keepalive_ping)
            .keep_alive_timeout(self.keepalive_ping);
        let mut http1 = http1::Builder::new();
        http1
            .keep_alive(true)
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        Builders { auto, http1 }
    }
}

/// How a listener's connections are served. A plain connection whose first bytes cannot begin
/// the h2 preface (`PRI * HTTP/2.0`) is served by the HTTP/1.1 builder alone: hyper-util's
/// detecting connection holds room for an h2 connection (about 1.5 KiB against 0.6 KiB), which
/// every open HTTP/1.1 connection, a long stream's included, would otherwise carry. The rest
/// (a possible h2c preface, TLS) go through the detecting builder, whose settings must match.
pub struct Builders {
    auto: auto::Builder<TokioExecutor>,
    http1: http1::Builder,
}

impl Builders {
    /// hyper's own limits on a request head (HTTP/1.1 read buffer, h2 header list).
    pub fn max_header_bytes(&mut self, http1_buf: usize, h2_list: u32) -> &mut Self {
        self.auto.http1().max_buf_size(http1_buf);
        self.http1.max_buf_size(http1_buf);
        self.auto.http2().max_header_list_size(h2_list);
        self
    }
}

/// What a connection's first bytes allow.
#[derive(Clone, Copy)]
enum Protocol {
    /// Not the h2 preface: HTTP/1.1.
    Http1,
    /// Possibly h2c, or not readable before TLS: detect.
    Detect,
}

impl Protocol {
    /// From the first one or two bytes of a plain connection.
    fn of(first: &[u8]) -> Self {
        match first {
            [b, ..] if *b != b'P' => Self::Http1,
            [_, b, ..] if *b != b'R' => Self::Http1,
            _ => Self::Detect,
        }
    }
}

/// Serves `listener` until `shutdown` resolves: `service(peer)` makes the service of each
/// connection. Then stops accepting, lets in-flight calls finish for up to `drain_timeout`,
/// and returns.
#[expect(
    clippy::disallowed_methods,
    reason = "each connection task holds a watcher of the graceful drain this function awaits before it returns"
)]
pub async fn serve<F, S, B>(
    listener: TcpListener,
    settings: ListenerSettings,
    builders: Builders,
    metrics: Arc<Metrics>,
    service: F,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()>
where
    F: Fn(SocketAddr) -> S,
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let labels = ListenerLabels {
        listener: settings.name,
    };
    let open = metrics.connections_open.get_or_create(&labels).clone();
    let refused = metrics.connections_refused.get_or_create(&labels).clone();
    let permits = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut backoff = AcceptBackoff::new(settings.name);
    let builders = Arc::new(builders);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => {
                backoff.reset();
                pair
            }
            Err(err) => {
                if let Some(pause) = backoff.failed(&err) {
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused.inc();
            drop(stream);
            continue;
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "TCP_NODELAY not set");
        }
        let guard = OpenConnection {
            gauge: open.clone(),
            _permit: permit,
        };
        guard.gauge.inc();
        let connection = Connection {
            settings: settings.clone(),
            builders: builders.clone(),
            stop: stop_rx.clone(),
        };
        let svc = service(peer);
        // The watcher is registered before the first byte, so that shutdown waits for it too.
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            connection.run(stream, svc, watcher).await;
            drop(guard);
        });
    }
    drop(listener);
    stop_tx.send_replace(true);
    let in_flight = graceful.count();
    tracing::info!(
        listener = settings.name,
        connections = in_flight,
        "draining in-flight calls"
    );
    if tokio::time::timeout(settings.drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = settings.name,
            timeout = ?settings.drain_timeout,
            "drain timed out; remaining calls are cut"
        );
    }
    Ok(())
}

/// One open connection: its gauge and its place under the cap, given back on drop.
struct OpenConnection {
    gauge: Gauge<i64, std::sync::atomic::AtomicI64>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

struct Connection {
    settings: ListenerSettings,
    builders: Arc<Builders>,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run<S, B>(
        mut self,
        stream: TcpStream,
        service: S,
        watcher: hyper_util::server::graceful::Watcher,
    ) where
        S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        // hyper's protocol detection reads the first bytes without a deadline: wait for one here.
        let mut probe = [0_u8; 2];
        let first = tokio::select! {
            biased;
            _ = self.stop.wait_for(|stopped| *stopped) => return,
            first = tokio::time::timeout(self.settings.header_read_timeout, stream.peek(&mut probe)) => first,
        };
        let protocol = match first {
            Ok(Ok(n)) if n > 0 => Protocol::of(&probe[..n]),
            Ok(Ok(_)) | Ok(Err(_)) => return,
            Err(_) => {
                tracing::debug!(
                    listener = self.settings.name,
                    "connection closed: no byte within header_read_timeout"
                );
                return;
            }
        };
        match self.settings.tls.clone() {
            None => self.serve_io(stream, protocol, service, watcher).await,
            // Boxed: the handshake and the TLS stream are large, and a plain connection's task
            // would otherwise hold room for them for as long as it is open.
            Some(tls) => {
                Box::pin(async move {
                    let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
                    let stream = tokio::select! {
                        biased;
                        _ = self.stop.wait_for(|stopped| *stopped) => return,
                        done = tokio::time::timeout(self.settings.header_read_timeout, handshake) => done,
                    };
                    match stream {
                        Ok(Ok(stream)) => self.serve_io(stream, Protocol::Detect, service, watcher).await,
                        Ok(Err(err)) => {
                            tracing::debug!(listener = self.settings.name, error = %err, "TLS handshake failed");
                        }
                        Err(_) => {
                            tracing::debug!(
                                listener = self.settings.name,
                                "connection closed: TLS handshake not done within header_read_timeout"
                            );
                        }
                    }
                })
                .await
            }
        }
    }

    /// Serves HTTP on an open (plain or TLS) stream until it ends or idles out.
    async fn serve_io<I, S, B>(
        self,
        stream: I,
        protocol: Protocol,
        service: S,
        watcher: hyper_util::server::graceful::Watcher,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn StdError + Send + Sync>>,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn StdError + Send + Sync>>,
    {
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(TrackedIo {
            inner: stream,
            activity: activity.clone(),
        });
        let idle = self.settings.idle_timeout;
        // The connection is made inside `select!`, not in a local first: a future moved from a
        // local into another is held twice in this function's state (~1.7 KiB more for each open
        // connection). The detecting one is boxed, so that HTTP/1.1 connections hold no room
        // for it.
        let name = self.settings.name;
        let result = match protocol {
            Protocol::Http1 => {
                tokio::select! {
                    result = watcher.watch(self.builders.http1.serve_connection(io, service)) => {
                        Some(result.map_err(|err| Box::new(err) as Box<dyn StdError + Send + Sync>))
                    }
                    () = activity.idle_for(idle) => None,
                }
            }
            Protocol::Detect => {
                Box::pin(async {
                    tokio::select! {
                        result = watcher.watch(self.builders.auto.serve_connection(io, service).into_owned()) => Some(result),
                        () = activity.idle_for(idle) => None,
                    }
                })
                .await
            }
        };
        match result {
            Some(Err(err)) => {
                tracing::debug!(listener = name, error = %err, "connection ended with an error");
            }
            Some(Ok(())) => {}
            None => tracing::debug!(listener = name, "connection closed: idle_timeout"),
        }
    }
}

/// When a connection last moved a byte, in ms since it opened.
struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// Resolves once no byte has moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = self.opened + last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// The connection's stream, noting every read and write in its [`Activity`].
struct TrackedIo<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for TrackedIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for TrackedIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accept errors: a connection the client aborted is skipped; anything else (out of file
/// descriptors, buffers) pauses accepting, 10 ms doubling to 1 s, logged at most once a second.
struct AcceptBackoff {
    listener: &'static str,
    pause: Duration,
    last_log: Option<Instant>,
    unlogged: u64,
}

const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

impl AcceptBackoff {
    fn new(listener: &'static str) -> Self {
        Self {
            listener,
            pause: FIRST_PAUSE,
            last_log: None,
            unlogged: 0,
        }
    }

    fn reset(&mut self) {
        self.pause = FIRST_PAUSE;
    }

    /// How long to pause after `err`, if at all.
    fn failed(&mut self, err: &io::Error) -> Option<Duration> {
        if matches!(
            err.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::Interrupted
                | io::ErrorKind::WouldBlock
        ) {
            return None;
        }
        self.unlogged += 1;
        if self
            .last_log
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(
                listener = self.listener,
                error = %err,
                failures = self.unlogged,
                pause = ?self.pause,
                "accept failed; pausing (out of file descriptors?)"
            );
            self.last_log = Some(Instant::now());
            self.unlogged = 0;
        }
        let pause = self.pause;
        self.pause = (self.pause * 2).min(LONGEST_PAUSE);
        Some(pause)
    }
}

/// Raises the soft limit of open files to the hard limit where allowed; returns the limit in force.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(limit) => Some(limit),
            Err(err) => {
                tracing::warn!(error = %err, "open-file limit cannot be raised");
                rlimit::getrlimit(rlimit::Resource::NOFILE)
                    .ok()
                    .map(|(soft, _)| soft)
            }
        }
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_possible_h2_preface_is_sent_to_protocol_detection() {
        for http1 in [
            &b"GET"[..],
            b"G",
            b"POST",
            b"PO",
            b"PUT",
            b"PATCH",
            b"HEAD",
            b"\x16\x03",
        ] {
            assert!(matches!(Protocol::of(http1), Protocol::Http1), "{http1:?}");
        }
        for maybe_h2 in [&b"P"[..], b"PR", b"PRI * HTTP/2.0"] {
            assert!(
                matches!(Protocol::of(maybe_h2), Protocol::Detect),
                "{maybe_h2:?}"
            );
        }
    }

    #[test]
    fn accept_errors_back_off_and_aborted_connections_do_not() {
        let mut backoff = AcceptBackoff::new("test");
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(backoff.failed(&aborted), None);
        let emfile = io::Error::other("Too many open files");
        let pauses: Vec<Duration> = (0..10).filter_map(|_| backoff.failed(&emfile)).collect();
        assert_eq!(pauses[0], Duration::from_millis(10));
        assert_eq!(pauses[1], Duration::from_millis(20));
        assert_eq!(pauses[9], Duration::from_secs(1));
        // Ten failures, one log line: the rest are counted for the next one.
        assert_eq!(backoff.unlogged, 9);
        backoff.reset();
        assert_eq!(backoff.failed(&emfile), Some(Duration::from_millis(10)));
    }
}
