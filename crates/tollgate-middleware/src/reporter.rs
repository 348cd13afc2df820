//! The reporter: a bounded queue that never blocks the caller, and a background task that ships
//! the queued records to the ingest API in batches, with a timeout, bounded retries and a bounded
//! backlog.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hmac::{Hmac, Mac};
use http::{HeaderValue, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use tollgate_core::ingest::IngestEvent;

use crate::layer::UsageLayer;
use crate::record::UsageRecord;

/// Path of the ingest API under the server's base URL.
pub const INGEST_PATH: &str = tollgate_core::ingest::EVENTS_PATH;
/// Header carrying `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`.
pub const SIGNATURE_HEADER: &str = tollgate_core::ingest::SIGNATURE_HEADER;
/// Header carrying the unix time (seconds) of the signature; the server refuses it when it is more
/// than five minutes off, so a captured request cannot be replayed later.
pub const TIMESTAMP_HEADER: &str = tollgate_core::ingest::TIMESTAMP_HEADER;
/// Most events the ingest API takes in one request.
pub const MAX_BATCH_SIZE: usize = tollgate_core::ingest::MAX_BATCH;

/// How the reporter proves itself to the ingest API.
#[derive(Clone, Default)]
pub enum IngestAuth {
    /// No credentials (a server with unauthenticated ingest explicitly allowed).
    #[default]
    None,
    /// `Authorization: Bearer <ingest secret>`.
    Bearer(SecretString),
    /// `X-Tollgate-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}" keyed by the ingest
    /// secret>` with `X-Tollgate-Timestamp: <unix seconds>`, made afresh for every attempt; the
    /// secret itself never travels.
    Signature(SecretString),
}

impl std::fmt::Debug for IngestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Bearer(_) => "Bearer([redacted])",
            Self::Signature(_) => "Signature([redacted])",
        })
    }
}

/// Why a reporter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The base URL does not parse.
    #[error("invalid tollgate base URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A setting is out of range.
    #[error("invalid reporter setting: {0}")]
    InvalidSetting(&'static str),
    /// `build` was called outside a tokio runtime.
    #[error("the usage reporter must be built inside a tokio runtime")]
    NoRuntime,
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Why a flush or shutdown did not deliver everything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlushError {
    /// The reporter's task has already stopped (after `shutdown`).
    #[error("the usage reporter has shut down")]
    Closed,
    /// Some events could not be delivered: the ingest API was unreachable or refused them.
    /// After a flush they stay pending for later; after a shutdown they are dropped.
    #[error("{undelivered} usage events could not be delivered")]
    Undelivered {
        /// How many.
        undelivered: u64,
    },
}

/// Counters of what the reporter did, since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReporterStats {
    /// Records accepted into the queue.
    pub recorded: u64,
    /// Records the ingest API accepted.
    pub delivered: u64,
    /// Records waiting: in the queue or the backlog.
    pub pending: u64,
    /// Records dropped because the queue was full (the task could not keep up).
    pub dropped_queue_full: u64,
    /// Records dropped, oldest first, because the backlog was full (the server was down long).
    pub dropped_backlog_full: u64,
    /// Records dropped after the retries ran out or the server refused them.
    pub dropped_undeliverable: u64,
    /// Records offered after `shutdown`.
    pub dropped_after_shutdown: u64,
    /// Ingest requests that failed and were retried.
    pub retries: u64,
    /// Ingest requests sent, successful or not.
    pub requests: u64,
}

impl ReporterStats {
    /// All records dropped, for whatever reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_backlog_full
            + self.dropped_undeliverable
            + self.dropped_after_shutdown
    }
}

#[derive(Debug, Default)]
struct Counters {
    recorded: AtomicU64,
    delivered: AtomicU64,
    backlog: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_backlog_full: AtomicU64,
    dropped_undeliverable: AtomicU64,
    dropped_after_shutdown: AtomicU64,
    retries: AtomicU64,
    requests: AtomicU64,
}

fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Builds a [`UsageReporter`]; see the setters for the defaults.
#[derive(Debug, Clone)]
pub struct ReporterBuilder {
    base_url: String,
    auth: IngestAuth,
    batch_size: usize,
    flush_interval: Duration,
    channel_capacity: usize,
    max_backlog: usize,
    request_timeout: Duration,
    max_retries: u32,
    retry_backoff: Duration,
    service: Option<String>,
    trust_forwarded_for: bool,
    client: Option<reqwest::Client>,
}

impl ReporterBuilder {
    /// A builder for the tollgate server at `base_url` (its console listener, e.g.
    /// `http://127.0.0.1:8317`).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            auth: IngestAuth::None,
            batch_size: 200,
            flush_interval: Duration::from_secs(1),
            channel_capacity: 10_000,
            max_backlog: 50_000,
            request_timeout: Duration::from_secs(5),
            max_retries: 5,
            retry_backoff: Duration::from_millis(250),
            service: None,
            trust_forwarded_for: false,
            client: None,
        }
    }

    /// Authenticates with `Authorization: Bearer <secret>`.
    pub fn bearer(mut self, secret: impl Into<String>) -> Self {
        self.auth = IngestAuth::Bearer(SecretString::from(secret.into()));
        self
    }

    /// Authenticates with an HMAC-SHA256 signature of each body (`X-Tollgate-Signature`).
    pub fn signature(mut self, secret: impl Into<String>) -> Self {
        self.auth = IngestAuth::Signature(SecretString::from(secret.into()));
        self
    }

    /// Sets the authentication mode (default: none).
    pub fn auth(mut self, auth: IngestAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Most records per ingest request (default 200, at most 10,000).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }

    /// Longest a record waits before it is sent (default 1 s).
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Records the queue holds before new ones are dropped (default 10,000).
    pub fn channel_capacity(mut self, n: usize) -> Self {
        self.channel_capacity = n;
        self
    }

    /// Records held while the server is unreachable before the oldest are dropped (default 50,000).
    pub fn max_backlog(mut self, n: usize) -> Self {
        self.max_backlog = n;
        self
    }

    /// Timeout of one ingest request (default 5 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Retries of a failed batch before it is dropped (default 5).
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// First retry delay, doubled on each further retry up to 30 s (default 250 ms).
    pub fn retry_backoff(mut self, delay: Duration) -> Self {
        self.retry_backoff = delay;
        self
    }

    /// The service's name, recorded as the route of calls without a [`crate::RouteName`].
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }

    /// Whether to take the client IP from `X-Forwarded-For` / `X-Real-IP` (default off: only
    /// behind a proxy that sets them, since clients can forge them).
    pub fn trust_forwarded_for(mut self, trust: bool) -> Self {
        self.trust_forwarded_for = trust;
        self
    }

    /// Uses this HTTP client (proxy settings, TLS roots…) instead of a default one.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Starts the background task (on the current tokio runtime) and returns its handle.
    #[expect(
        clippy::disallowed_methods,
        reason = "the shipping task ends on UsageReporter::shutdown or when every handle is dropped"
    )]
    pub fn build(self) -> Result<UsageReporter, BuildError> {
        let url_text = format!("{}{INGEST_PATH}", self.base_url.trim_end_matches('/'));
        let url = reqwest::Url::parse(&url_text).map_err(|e| BuildError::InvalidUrl {
            url: self.base_url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BuildError::InvalidUrl {
                url: self.base_url,
                reason: "the scheme must be http or https".into(),
            });
        }
        if !(1..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return Err(BuildError::InvalidSetting("batch_size must be 1 to 10000"));
        }
        if self.channel_capacity == 0 {
            return Err(BuildError::InvalidSetting(
                "channel_capacity must be positive",
            ));
        }
        if self.max_backlog < self.batch_size {
            return Err(BuildError::InvalidSetting(
                "max_backlog must be at least batch_size",
            ));
        }
        if self.flush_interval.is_zero() || self.request_timeout.is_zero() {
            return Err(BuildError::InvalidSetting(
                "flush_interval and request_timeout must be positive",
            ));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let client = match self.client {
            Some(c) => c,
            None => reqwest::Client::builder().build()?,
        };
        let (events_tx, events_rx) = mpsc::channel(self.channel_capacity);
        let (control_tx, control_rx) = mpsc::channel(16);
        let counters = Arc::new(Counters::default());
        let shipper = Shipper {
            client,
            url,
            auth: self.auth,
            timeout: self.request_timeout,
            counters: counters.clone(),
        };
        let task = Task {
            events: events_rx,
            control: control_rx,
            shipper,
            backlog: VecDeque::new(),
            batch_size: self.batch_size,
            max_backlog: self.max_backlog,
            flush_interval: self.flush_interval,
            max_retries: self.max_retries,
            retry_backoff: self.retry_backoff,
            counters: counters.clone(),
        };
        runtime.spawn(task.run());
        Ok(UsageReporter {
            inner: Arc::new(Inner {
                events: events_tx,
                control: control_tx,
                counters,
                capacity: self.channel_capacity,
                service: self.service,
                trust_forwarded_for: self.trust_forwarded_for,
            }),
        })
    }
}

struct Inner {
    events: mpsc::Sender<IngestEvent>,
    control: mpsc::Sender<Control>,
    counters: Arc<Counters>,
    capacity: usize,
    service: Option<String>,
    trust_forwarded_for: bool,
}

/// The handle of a running reporter: records, counts, flushes. Cheap to clone; the background task
/// ends (after a last flush) when every clone, and every layer made from one, is dropped.
#[derive(Clone)]
pub struct UsageReporter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for UsageReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageReporter")
            .field("service", &self.inner.service)
            .field("stats", &self.stats())
            .finish()
    }
}

impl UsageReporter {
    /// A builder for the tollgate server at `base_url`.
    pub fn builder(base_url: impl Into<String>) -> ReporterBuilder {
        ReporterBuilder::new(base_url)
    }

    /// The tower layer that records every call of the service it wraps through this reporter.
    pub fn layer(&self) -> UsageLayer {
        UsageLayer::new(self.clone())
    }

    /// Queues a record without waiting; returns whether it was queued (a full queue or a shut
    /// down reporter drops it and counts it).
    pub fn record(&self, mut record: UsageRecord) -> bool {
        record.sanitize();
        let c = &self.inner.counters;
        match self.inner.events.try_send(IngestEvent::from(record)) {
            Ok(()) => {
                c.recorded.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                c.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                c.dropped_after_shutdown.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// What the reporter has done so far.
    pub fn stats(&self) -> ReporterStats {
        let c = &self.inner.counters;
        let queued = self
            .inner
            .capacity
            .saturating_sub(self.inner.events.capacity());
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ReporterStats {
            recorded: get(&c.recorded),
            delivered: get(&c.delivered),
            pending: get(&c.backlog) + u64::try_from(queued).unwrap_or(u64::MAX),
            dropped_queue_full: get(&c.dropped_queue_full),
            dropped_backlog_full: get(&c.dropped_backlog_full),
            dropped_undeliverable: get(&c.dropped_undeliverable),
            dropped_after_shutdown: get(&c.dropped_after_shutdown),
            retries: get(&c.retries),
            requests: get(&c.requests),
        }
    }

    /// Sends everything recorded so far now, retrying each batch with backoff up to the configured
    /// number of times. A batch that runs out of retries is dropped (and counted) and ends the
    /// flush; what was not tried yet stays pending for the next flush or interval.
    pub async fn flush(&self) -> Result<(), FlushError> {
        self.ask(Control::Flush).await
    }

    /// Sends everything recorded so far, then stops the background task. Later records are
    /// dropped (and counted); the layer keeps serving the host normally.
    pub async fn shutdown(&self) -> Result<(), FlushError> {
        self.ask(Control::Shutdown).await
    }

    async fn ask(
        &self,
        make: fn(oneshot::Sender<Result<(), FlushError>>) -> Control,
    ) -> Result<(), FlushError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .control
            .send(make(tx))
            .await
            .map_err(|_| FlushError::Closed)?;
        rx.await.unwrap_or(Err(FlushError::Closed))
    }

    pub(crate) fn service(&self) -> Option<&str> {
        self.inner.service.as_deref()
    }

    pub(crate) fn trust_forwarded_for(&self) -> bool {
        self.inner.trust_forwarded_for
    }
}

enum Control {
    Flush(oneshot::Sender<Result<(), FlushError>>),
    Shutdown(oneshot::Sender<Result<(), FlushError>>),
}

/// Why one ingest request failed.
enum SendFailure {
    /// Worth retrying: unreachable, timed out, 408, 429, 5xx.
    Transient(String),
    /// Not worth retrying: the server refused the batch (401, 422…).
    Refused(String),
}

struct Shipper {
    client: reqwest::Client,
    url: reqwest::Url,
    auth: IngestAuth,
    timeout: Duration,
    counters: Arc<Counters>,
}

impl Shipper {
    async fn send(&self, batch: &[IngestEvent]) -> Result<(), SendFailure> {
        let body = serde_json::to_vec(batch)
            .map_err(|e| SendFailure::Refused(format!("serialising the batch: {e}")))?;
        let mut req = self
            .client
            .post(self.url.clone())
            .timeout(self.timeout)
            .header(header::CONTENT_TYPE, "application/json");
        match &self.auth {
            IngestAuth::None => {}
            IngestAuth::Bearer(secret) => {
                let mut value =
                    HeaderValue::from_str(&format!("Bearer {}", secret.expose_secret())).map_err(
                        |_| SendFailure::Refused("the ingest secret is not a valid header".into()),
                    )?;
                value.set_sensitive(true);
                req = req.header(header::AUTHORIZATION, value);
            }
            IngestAuth::Signature(secret) => {
                // Signed per attempt: a retry after a backoff carries a fresh timestamp.
                let now = u64::try_from(tollgate_core::time::now_ms() / 1000).unwrap_or(0);
                let signature = sign(secret.expose_secret().as_bytes(), now, &body)
                    .map_err(SendFailure::Refused)?;
                req = req
                    .header(TIMESTAMP_HEADER, now.to_string())
                    .header(SIGNATURE_HEADER, signature);
            }
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| SendFailure::Transient(describe(&e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        let message = format!("{status}: {}", text.chars().take(300).collect::<String>());
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            Err(SendFailure::Transient(message))
        } else {
            Err(SendFailure::Refused(message))
        }
    }
}

/// The `X-Tollgate-Signature` value for `body` sent at `timestamp` (unix seconds):
/// `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> Result<String, String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|e| format!("hmac: {e}"))?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// A reqwest error with its causes (its `Display` alone says little).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

struct Task {
    events: mpsc::Receiver<IngestEvent>,
    control: mpsc::Receiver<Control>,
    shipper: Shipper,
    backlog: VecDeque<IngestEvent>,
    batch_size: usize,
    max_backlog: usize,
    flush_interval: Duration,
    max_retries: u32,
    retry_backoff: Duration,
    counters: Arc<Counters>,
}

/// What happened to the batch at the head of the backlog.
enum Outcome {
    Delivered,
    /// Failed; may be retried.
    Failed,
    /// Dropped: refused (`false`), or out of retries (`true`: the server is unreachable).
    Dropped(bool),
}

impl Task {
    async fn run(mut self) {
        // When to send a partial batch, and the retry state of the head batch.
        let mut due: Option<Instant> = None;
        let mut attempts: u32 = 0;
        loop {
            let wake = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                control = self.control.recv() => match control {
                    Some(Control::Flush(reply)) => {
                        let result = self.flush_all(false).await;
                        attempts = 0;
                        due = (!self.backlog.is_empty())
                            .then(|| Instant::now() + self.flush_interval);
                        let _ = reply.send(result);
                    }
                    Some(Control::Shutdown(reply)) => {
                        self.events.close();
                        let result = self.flush_all(true).await;
                        let _ = reply.send(result);
                        return;
                    }
                    None => {
                        let _ = self.flush_all(true).await;
                        return;
                    }
                },
                event = self.events.recv() => match event {
                    Some(event) => {
                        self.push(event);
                        if due.is_none() {
                            due = Some(Instant::now() + self.flush_interval);
                        }
                        // A full batch goes at once, unless the head batch is waiting to retry.
                        if attempts == 0 {
                            while self.backlog.len() >= self.batch_size {
                                match self.send_head(&mut attempts).await {
                                    Outcome::Delivered | Outcome::Dropped(_) => {}
                                    Outcome::Failed => {
                                        due = Some(Instant::now() + self.backoff(attempts));
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    None => {
                        let _ = self.flush_all(true).await;
                        return;
                    }
                },
                () = wake => {
                    due = None;
                    while !self.backlog.is_empty() {
                        match self.send_head(&mut attempts).await {
                            Outcome::Delivered | Outcome::Dropped(_) => {}
                            Outcome::Failed => {
                                due = Some(Instant::now() + self.backoff(attempts));
                                break;
                            }
                        }
                    }
                }
            }
        }
    }

    fn push(&mut self, event: IngestEvent) {
        if self.backlog.len() >= self.max_backlog && self.backlog.pop_front().is_some() {
            self.counters
                .dropped_backlog_full
                .fetch_add(1, Ordering::Relaxed);
            self.counters.backlog.fetch_sub(1, Ordering::Relaxed);
        }
        self.backlog.push_back(event);
        self.counters.backlog.fetch_add(1, Ordering::Relaxed);
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32 << attempts.saturating_sub(1).min(16);
        self.retry_backoff
            .saturating_mul(factor)
            .min(Duration::from_secs(30))
    }

    /// Sends the head batch once; `attempts` counts its failures so far.
    async fn send_head(&mut self, attempts: &mut u32) -> Outcome {
        let n = self.backlog.len().min(self.batch_size);
        if n == 0 {
            return Outcome::Delivered;
        }
        let batch = &self.backlog.make_contiguous()[..n];
        let result = self.shipper.send(batch).await;
        let unreachable = match result {
            Ok(()) => {
                self.remove_head(n);
                add(&self.counters.delivered, n);
                *attempts = 0;
                return Outcome::Delivered;
            }
            Err(SendFailure::Refused(reason)) => {
                tracing::warn!(events = n, %reason, "tollgate ingest refused a usage batch; dropping it");
                false
            }
            Err(SendFailure::Transient(reason)) => {
                *attempts += 1;
                if *attempts <= self.max_retries {
                    tracing::debug!(events = n, attempts = *attempts, %reason, "tollgate ingest failed; will retry");
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    return Outcome::Failed;
                }
                tracing::warn!(events = n, attempts = *attempts, %reason, "tollgate ingest unreachable; dropping a usage batch");
                true
            }
        };
        self.remove_head(n);
        add(&self.counters.dropped_undeliverable, n);
        *attempts = 0;
        Outcome::Dropped(unreachable)
    }

    fn remove_head(&mut self, n: usize) {
        self.backlog.drain(..n);
        self.counters
            .backlog
            .fetch_sub(u64::try_from(n).unwrap_or(0), Ordering::Relaxed);
    }

    /// Takes everything queued, then sends the whole backlog, retrying each batch with backoff.
    /// On the first batch that runs out of retries, stops: the server is down, and the rest would
    /// only wait the same way. `last` drops what is left; otherwise it stays pending.
    async fn flush_all(&mut self, last: bool) -> Result<(), FlushError> {
        while let Ok(event) = self.events.try_recv() {
            self.push(event);
        }
        let dropped_before = self.counters.dropped_undeliverable.load(Ordering::Relaxed);
        let mut attempts = 0;
        while !self.backlog.is_empty() {
            match self.send_head(&mut attempts).await {
                Outcome::Delivered => {}
                // A refused batch says nothing about the next one; a dead server ends the flush.
                Outcome::Dropped(false) => {}
                Outcome::Dropped(true) => break,
                Outcome::Failed => tokio::time::sleep(self.backoff(attempts)).await,
            }
        }
        let left = self.backlog.len();
        if last && left > 0 {
            self.remove_head(left);
            add(&self.counters.dropped_undeliverable, left);
        }
        let dropped = self.counters.dropped_undeliverable.load(Ordering::Relaxed) - dropped_before;
        let undelivered = if last {
            dropped
        } else {
            dropped + u64::try_from(left).unwrap_or(u64::MAX)
        };
        if undelivered == 0 {
            Ok(())
        } else {
            Err(FlushError::Undelivered { undelivered })
        }
    }
}
