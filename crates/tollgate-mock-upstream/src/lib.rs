//! A fake upstream for tollgate's tests and benchmarks: OpenAI- and Anthropic-shaped LLM answers
//! (JSON and SSE, with known usage), a plain HTTP echo, a fast static body and a plain SSE stream.
//! It serves HTTP/1.1 and HTTP/2 (prior knowledge, h2c) with keep-alive; or, started with
//! [`MockUpstream::start_tls`], TLS with a fresh self-signed certificate for `127.0.0.1` and
//! `localhost` (its PEM from [`MockUpstream::ca_pem`]) offering `h2` and `http/1.1` by ALPN, or
//! `http/1.1` only. It counts the connections it accepted and records each request's HTTP version.
//!
//! # Endpoints (by method and path)
//!
//! | request | answer |
//! |---|---|
//! | `POST …/chat/completions` | OpenAI chat completion; with `"stream":true` OpenAI SSE chunks |
//! | `POST …/completions` | OpenAI legacy text completion, JSON or SSE likewise |
//! | `POST …/messages` | Anthropic message; with `"stream":true` Anthropic SSE events |
//! | any method `/static` | a fixed small JSON body |
//! | `GET /sse` | `id: i` / `data: {"seq":i}` events, 5 unless `x-mock-chunks` says |
//! | anything else | echo: `{"method","path","query","headers":{…},"body":"…"}` |
//!
//! LLM answers name the request's `model` (`mock-model` when absent); a body that is not JSON gets
//! a 400. OpenAI streams send a role chunk, one content chunk per word, a `finish_reason` chunk
//! and `data: [DONE]`; only when the request had `"stream_options":{"include_usage":true}` does
//! every chunk carry `"usage":null` and a last chunk with `"choices":[]` carry the usage, as OpenAI
//! does. Anthropic streams send `message_start` (input tokens, 1 output token),
//! `content_block_start`, `ping`, one `content_block_delta` per word, `content_block_stop`,
//! `message_delta` (output tokens) and `message_stop`.
//!
//! # Control headers
//!
//! | header | effect | default |
//! |---|---|---|
//! | `x-mock-prompt-tokens` | prompt / input tokens reported | 11 |
//! | `x-mock-completion-tokens` | completion / output tokens reported | 7 |
//! | `x-mock-cached-tokens` | `cached_tokens` / `cache_read_input_tokens` | 0 |
//! | `x-mock-reasoning-tokens` | `reasoning_tokens` (OpenAI) | 0 |
//! | `x-mock-text` | reply text (UTF-8) | `Hello from the tollgate mock upstream.` |
//! | `x-mock-status` | answer with this status (200–599) and an error JSON in the endpoint's shape | — |
//! | `x-mock-latency-ms` | sleep before sending the head | 0 |
//! | `x-mock-chunk-delay-ms` | sleep between SSE events, or between pieces of a plain body | 0 |
//! | `x-mock-chunks` | events of `/sse`; content chunks of LLM streams (words of the text, cycled); pieces a plain body is cut into | words; plain bodies 1, or 2 with a chunk delay |
//! | `x-mock-no-usage: 1` | JSON and SSE answers carry no usage at all | 0 |
//! | `x-mock-body-bytes` | `/static` and echo answer with this many bytes of `x` | — |
//! | `x-mock-hang: 1` | send the head, then never finish the body | 0 |
//! | `x-mock-close: 1` | close the connection without answering (HTTP/2: reset the stream) | 0 |
//! | `x-mock-echo-headers: 1` | copy every request header (but the framing ones) into the answer's headers, as a careless upstream would | 0 |
//!
//! # Faults
//!
//! [`MockUpstream::set_fault`] makes every request fail the same way ([`Fault`]: a status with
//! an optional `Retry-After`, a closed connection, or a slow answer) until cleared, whatever its
//! headers say, so one mock of several behind a pool can fail while the others answer. Requests
//! are recorded either way.
//!
//! Token counts are whatever the headers say; they need not match the streamed words. An unknown
//! `x-mock-*` header or a bad value is answered 400 with a message naming it.
//!
//! Usage numbers in the answers equal the headers exactly, so tests compare tollgate's usage rows
//! with the values they sent.

mod anthropic;
mod body;
mod controls;
mod handler;
mod llm;
mod openai;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::Version;
use http::request::Parts;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// Bytes of a request body kept in its [`RecordedRequest`].
pub const RECORDED_BODY_LIMIT: usize = 1024 * 1024;

/// Whether the mock keeps every request it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    /// Keep every request, for [`MockUpstream::requests`] (tests).
    All,
    /// Only count them, so memory stays flat under load (benchmarks).
    CountOnly,
}

/// What the mock offers by ALPN when it speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsOffer {
    /// `h2` first, then `http/1.1`: what the providers' APIs offer.
    H2AndHttp1,
    /// `http/1.1` only: an upstream that does not speak HTTP/2.
    Http1Only,
}

/// A failure the mock shows every request until told otherwise ([`MockUpstream::set_fault`]),
/// whatever the request's control headers say: one upstream of several can fail while the others
/// answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and an error JSON in the endpoint's shape, with `Retry-After`
    /// (seconds) when given.
    Status {
        /// 400 to 599.
        status: u16,
        /// `Retry-After` in seconds.
        retry_after: Option<u64>,
    },
    /// Close the connection without answering.
    Close,
    /// Wait this long before answering as usual.
    Slow(Duration),
}

/// A request as the mock received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The method, e.g. `POST`.
    pub method: String,
    /// Path and query, e.g. `/v1/chat/completions?x=1`.
    pub path: String,
    /// Headers in arrival order, names lower-case; values not UTF-8 are converted lossily.
    pub headers: Vec<(String, String)>,
    /// The body, cut at [`RECORDED_BODY_LIMIT`] bytes.
    pub body: Bytes,
    /// The body's full length in bytes.
    pub body_len: u64,
    /// The HTTP version it arrived in (`HTTP/2.0` on an h2 connection).
    pub version: Version,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn body_json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
    }
}

/// State shared by the server and its handle.
pub(crate) struct Shared {
    recording: Recording,
    count: AtomicUsize,
    connections: AtomicUsize,
    requests: Mutex<Vec<RecordedRequest>>,
    fault: Mutex<Option<Fault>>,
}

impl Shared {
    /// Counts a request and, when recording, keeps it.
    pub(crate) fn record(&self, parts: &Parts, body: &Bytes, body_len: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if self.recording == Recording::CountOnly {
            return;
        }
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.to_string());
        let headers = parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        // A copy, so that a large body's buffer is not kept alive by a small slice.
        let body = match body.get(..RECORDED_BODY_LIMIT) {
            Some(head) => Bytes::copy_from_slice(head),
            None => body.clone(),
        };
        let request = RecordedRequest {
            method: parts.method.to_string(),
            path,
            headers,
            body,
            body_len,
            version: parts.version,
        };
        self.lock().push(request);
    }

    /// The fault every request shows now, if any.
    pub(crate) fn fault(&self) -> Option<Fault> {
        *self.fault.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RecordedRequest>> {
        // A panic elsewhere cannot leave a Vec half-pushed; keep serving.
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running mock upstream; dropping it (or [`MockUpstream::shutdown`]) stops the server and
/// closes every connection.
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
    /// The self-signed certificate (PEM) when serving TLS.
    ca_pem: Option<String>,
}

impl fmt::Debug for MockUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockUpstream")
            .field("addr", &self.addr)
            .field("tls", &self.ca_pem.is_some())
            .field("request_count", &self.request_count())
            .finish_non_exhaustive()
    }
}

impl MockUpstream {
    /// Starts on `127.0.0.1` on a free port, recording every request.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts on `addr`, recording every request.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        Self::start_with(addr, Recording::All).await
    }

    /// Starts on `addr` with the given recording mode. The server runs on the current Tokio
    /// runtime.
    pub async fn start_with(addr: SocketAddr, recording: Recording) -> std::io::Result<Self> {
        Self::start_configured(addr, recording, None).await
    }

    /// Starts on `127.0.0.1` on a free port speaking TLS with a fresh self-signed certificate
    /// (trust [`MockUpstream::ca_pem`]), offering `offer` by ALPN, recording every request.
    pub async fn start_tls(offer: TlsOffer) -> std::io::Result<Self> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self::start_configured(addr, Recording::All, Some(offer)).await
    }

    /// Starts on `addr` with the given recording mode, over TLS when `tls` says what to offer.
    /// The server runs on the current Tokio runtime.
    #[expect(
        clippy::disallowed_methods,
        reason = "the accept loop is aborted when the MockUpstream is dropped"
    )]
    pub async fn start_configured(
        addr: SocketAddr,
        recording: Recording,
        tls: Option<TlsOffer>,
    ) -> std::io::Result<Self> {
        let (acceptor, ca_pem) = match tls {
            Some(offer) => {
                let (acceptor, pem) = tls_acceptor(offer)?;
                (Some(acceptor), Some(pem))
            }
            None => (None, None),
        };
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            recording,
            count: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            fault: Mutex::new(None),
        });
        let server = tokio::spawn(serve(listener, Arc::clone(&shared), acceptor));
        Ok(Self {
            addr,
            shared,
            server,
            ca_pem,
        })
    }

    /// The self-signed certificate (PEM) a client must trust, when serving TLS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Connections accepted so far (TLS ones whose handshake then failed included).
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, e.g. `http://127.0.0.1:41234` (`https://…` when serving TLS).
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// Every request received so far, oldest first (empty with [`Recording::CountOnly`]).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().clone()
    }

    /// Makes every request from now on show `fault` (`None`: answer normally again).
    pub fn set_fault(&self, fault: Option<Fault>) {
        *self
            .shared
            .fault
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// How many requests were received so far.
    pub fn request_count(&self) -> usize {
        self.shared.count.load(Ordering::Relaxed)
    }

    /// Stops the server and waits until the listener and every connection are closed.
    pub async fn shutdown(mut self) {
        self.server.abort();
        // The only possible error is the cancellation just asked for.
        let _ = (&mut self.server).await;
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.server.abort();
    }
}

/// A TLS acceptor with a new self-signed certificate for `127.0.0.1` and `localhost`, and that
/// certificate's PEM.
fn tls_acceptor(offer: TlsOffer) -> std::io::Result<(TlsAcceptor, String)> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(std::io::Error::other)?;
    let pem = certified.cert.pem();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .map_err(std::io::Error::other)?;
    config.alpn_protocols = match offer {
        TlsOffer::H2AndHttp1 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        TlsOffer::Http1Only => vec![b"http/1.1".to_vec()],
    };
    Ok((TlsAcceptor::from(Arc::new(config)), pem))
}

/// Accepts connections until aborted.
async fn serve(listener: TcpListener, shared: Arc<Shared>, tls: Option<TlsAcceptor>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors or a connection reset before accept: wait and go on.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Small SSE events must leave at once, not wait for Nagle.
        let _ = stream.set_nodelay(true);
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let builder = builder.clone();
        let shared = Arc::clone(&shared);
        let tls = tls.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| handler::handle(Arc::clone(&shared), req));
            // Errors here are the peer's doing or x-mock-close; there is no one to tell. The
            // auto builder tells h2 from HTTP/1.1 by the preface, which follows ALPN's choice.
            let _ = match tls {
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => {
                        builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                    Err(_) => return,
                },
            };
        });
        while connections.try_join_next().is_some() {}
    }
}
