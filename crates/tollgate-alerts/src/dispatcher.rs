//! The dispatcher: claim a crossing once, fan it out to the channels, retry each delivery with
//! exponential backoff and full jitter, and record every attempt.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tollgate_core::time::now_ms;

use crate::alert::Alert;
use crate::channel::{Channel, ChannelFormat};
use crate::delivery::{AlertLedger, Attempt, AttemptStatus, ChannelDirectory, DeliveryLog};
use crate::outbound::{CheckingResolver, OutboundPolicy, OutboundRefusal};
use crate::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

/// How the wait before a retry is spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform between zero and the backoff ceiling (AWS's "full jitter"): instances that failed
    /// together do not retry together.
    Full,
    /// Exactly the ceiling (tests).
    None,
}

/// When to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The ceiling after the first failure; it doubles after each one.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
    /// Attempts per delivery, the first included (at least 1).
    pub max_attempts: u32,
    /// How the wait is drawn under the ceiling.
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    /// 1 s doubling to 5 min, 6 attempts, full jitter.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            max_attempts: 6,
            jitter: Jitter::Full,
        }
    }
}

impl RetryPolicy {
    /// The backoff ceiling after attempt `failed` (1-based) fails: `min(cap, base × 2^(failed−1))`.
    pub fn ceiling(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(31);
        self.base
            .checked_mul(1_u32 << doublings)
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// The wait after attempt `failed` fails.
    pub fn delay_after(&self, failed: u32) -> Duration {
        let ceiling = self.ceiling(failed);
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full => {
                let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(rand::rng().random_range(0..=nanos))
            }
        }
    }
}

/// How the dispatcher runs.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// This instance's name, in every body (`instance`).
    pub instance: String,
    /// Retries of a failed delivery.
    pub retry: RetryPolicy,
    /// Connecting to a receiver.
    pub connect_timeout: Duration,
    /// A whole attempt, connection to response head.
    pub timeout: Duration,
    /// How long a claimed crossing stays claimed. Keys carry their period, so this only needs to
    /// outlive the period in which the same key can be produced again (a budget month).
    pub claim_ttl: Duration,
    /// Alerts being delivered at once; the queue waits beyond that.
    pub max_in_flight: usize,
    /// Which addresses webhooks may reach.
    pub outbound: OutboundPolicy,
}

impl DispatcherConfig {
    /// The defaults (5 s connect, 10 s total, claims for 400 days, 32 alerts at once, public
    /// addresses only) for `instance`.
    pub fn new(instance: impl Into<String>) -> Self {
        Self {
            instance: instance.into(),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            claim_ttl: Duration::from_secs(400 * 86_400),
            max_in_flight: 32,
            outbound: OutboundPolicy::default(),
        }
    }
}

/// What became of one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchOutcome {
    /// No channel takes this kind of alert; nothing was claimed.
    NoChannel,
    /// Another dispatcher (here or on another instance) claimed this crossing first.
    AlreadyClaimed,
    /// The channels could not be listed; nothing was claimed or sent.
    ChannelsUnavailable(String),
    /// Sent: the last attempt to each channel.
    Sent(Vec<Attempt>),
}

/// What one attempt came to, before it is numbered and recorded.
struct Outcome {
    http_status: Option<u16>,
    latency_ms: u64,
    error: Option<String>,
    next: Next,
}

enum Next {
    Done,
    Retry { at_least: Duration },
    Stop,
}

struct Inner {
    client: reqwest::Client,
    config: DispatcherConfig,
    channels: Arc<dyn ChannelDirectory>,
    ledger: Arc<dyn AlertLedger>,
    log: Arc<dyn DeliveryLog>,
}

/// Delivers alerts to channels; clones share one HTTP client and configuration.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher over these stores. Fails only if the TLS back end cannot start.
    pub fn new(
        config: DispatcherConfig,
        channels: Arc<dyn ChannelDirectory>,
        ledger: Arc<dyn AlertLedger>,
        log: Arc<dyn DeliveryLog>,
    ) -> Result<Self, String> {
        let resolver = CheckingResolver {
            policy: Arc::new(config.outbound.clone()),
        };
        let client = reqwest::Client::builder()
            .user_agent(concat!("tollgate-alerts/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            // A redirect could lead anywhere, past the address policy; receivers must answer
            // where they are.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would resolve the host itself, past the policy.
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .build()
            .map_err(|e| format!("the webhook HTTP client did not start: {e}"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                config,
                channels,
                ledger,
                log,
            }),
        })
    }

    /// Runs [`Self::run`] on a task; it ends when every sender of `alerts` is dropped, and the
    /// caller owns the handle to await or abort it at shutdown.
    #[expect(
        clippy::disallowed_methods,
        reason = "the caller owns the returned handle; the task ends when the queue closes"
    )]
    pub fn spawn(&self, alerts: mpsc::Receiver<Alert>) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move { this.run(alerts).await })
    }

    /// Dispatches alerts as they arrive, up to `max_in_flight` at once, until every sender is
    /// dropped; then waits for the deliveries under way (abort the task to stop sooner). Senders
    /// should use `try_send`, so a full queue never holds up a request.
    pub async fn run(&self, mut alerts: mpsc::Receiver<Alert>) {
        let slots = Arc::new(Semaphore::new(self.inner.config.max_in_flight.max(1)));
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                alert = alerts.recv() => {
                    let Some(alert) = alert else { break };
                    let Ok(slot) = Arc::clone(&slots).acquire_owned().await else { break };
                    let this = self.clone();
                    tasks.spawn(async move {
                        let _slot = slot;
                        this.dispatch(alert).await;
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Claims `alert` once across instances and delivers it to every channel that takes its
    /// kind, with retries; returns when every delivery has ended.
    pub async fn dispatch(&self, alert: Alert) -> DispatchOutcome {
        let kind = alert.kind();
        let channels = match self.inner.channels.channels().await {
            Ok(all) => all
                .into_iter()
                .filter(|c| c.accepts(kind))
                .collect::<Vec<_>>(),
            Err(e) => {
                tracing::error!(kind = kind.as_str(), error = %e, "alert channels could not be listed; alert not sent");
                return DispatchOutcome::ChannelsUnavailable(e.to_string());
            }
        };
        if channels.is_empty() {
            return DispatchOutcome::NoChannel;
        }
        let key = alert.dedup_key();
        match self
            .inner
            .ledger
            .claim(&key, self.inner.config.claim_ttl)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(dedup_key = %key, "alert already claimed");
                return DispatchOutcome::AlreadyClaimed;
            }
            // Alerting about an outage must not depend on the outage: a ledger that cannot
            // answer (the store is down) lets the alert through, at the risk of a repeat.
            Err(e) => {
                tracing::warn!(dedup_key = %key, error = %e, "alert ledger unavailable; delivering without a claim");
            }
        }
        let at_ms = now_ms();
        let alert = Arc::new(alert);
        let mut deliveries = JoinSet::new();
        for channel in channels {
            let this = self.clone();
            let alert = Arc::clone(&alert);
            deliveries.spawn(async move { this.deliver(&channel, &alert, at_ms).await });
        }
        let mut last = Vec::new();
        while let Some(done) = deliveries.join_next().await {
            match done {
                Ok(attempt) => last.push(attempt),
                Err(e) => tracing::error!(error = %e, "an alert delivery task failed"),
            }
        }
        last.sort_by_key(|a| a.channel_id);
        DispatchOutcome::Sent(last)
    }

    /// One attempt of a test alert to `channel`, recorded like any other; no ledger, no retry
    /// (someone is waiting for the answer).
    pub async fn send_test(&self, channel: &Channel) -> Attempt {
        let at_ms = now_ms();
        let alert = Alert::Test { sent_at_ms: at_ms };
        let outcome = self.attempt(channel, &alert, at_ms).await;
        let status = match outcome.next {
            Next::Done => AttemptStatus::Delivered,
            Next::Retry { .. } | Next::Stop => AttemptStatus::GaveUp,
        };
        self.record(channel, &alert, 1, at_ms, status, outcome)
            .await
    }

    /// Delivers to one channel with retries; returns the last attempt.
    async fn deliver(&self, channel: &Channel, alert: &Alert, at_ms: i64) -> Attempt {
        let policy = self.inner.config.retry;
        let max_attempts = policy.max_attempts.max(1);
        let mut attempt_no = 1;
        loop {
            let started_ms = now_ms();
            let outcome = self.attempt(channel, alert, at_ms).await;
            let (status, wait) = match outcome.next {
                Next::Done => (AttemptStatus::Delivered, None),
                Next::Retry { at_least } if attempt_no < max_attempts => {
                    let wait = policy.delay_after(attempt_no).max(at_least.min(policy.cap));
                    (AttemptStatus::Failed, Some(wait))
                }
                Next::Retry { .. } | Next::Stop => (AttemptStatus::GaveUp, None),
            };
            let recorded = self
                .record(channel, alert, attempt_no, started_ms, status, outcome)
                .await;
            let Some(wait) = wait else { return recorded };
            tokio::time::sleep(wait).await;
            attempt_no += 1;
        }
    }

    async fn record(
        &self,
        channel: &Channel,
        alert: &Alert,
        attempt_no: u32,
        at_ms: i64,
        status: AttemptStatus,
        outcome: Outcome,
    ) -> Attempt {
        let key = alert.dedup_key();
        let key = key.as_str();
        let attempt = Attempt {
            channel_id: channel.id,
            dedup_key: key.to_owned(),
            kind: alert.kind(),
            summary: alert.summary(),
            attempt_no,
            at_ms,
            status,
            http_status: outcome.http_status,
            latency_ms: outcome.latency_ms,
            error: outcome.error,
        };
        match status {
            AttemptStatus::Delivered => tracing::info!(
                channel_id = channel.id, target = %channel.url, dedup_key = key, attempt_no,
                "alert delivered"
            ),
            _ => tracing::warn!(
                channel_id = channel.id, target = %channel.url, dedup_key = key, attempt_no,
                status = status.as_str(), error = attempt.error.as_deref().unwrap_or(""),
                "alert delivery failed"
            ),
        }
        if let Err(e) = self.inner.log.record(attempt.clone()).await {
            tracing::warn!(channel_id = channel.id, dedup_key = key, error = %e, "a delivery attempt could not be recorded");
        }
        attempt
    }

    /// One HTTP attempt, the address policy first.
    async fn attempt(&self, channel: &Channel, alert: &Alert, at_ms: i64) -> Outcome {
        let started = Instant::now();
        let elapsed = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Err(refusal) = self.inner.config.outbound.check(&channel.url).await {
            return Outcome {
                http_status: None,
                latency_ms: elapsed(),
                error: Some(refusal.to_string()),
                next: if refusal.is_retryable() {
                    Next::Retry {
                        at_least: Duration::ZERO,
                    }
                } else {
                    Next::Stop
                },
            };
        }
        let instance = &self.inner.config.instance;
        let mut request = self
            .inner
            .client
            .post(channel.url.as_url().clone())
            .header(CONTENT_TYPE, "application/json");
        let body = match channel.format {
            ChannelFormat::Generic => {
                let body = alert.generic_body(instance, at_ms);
                let timestamp = now_ms().div_euclid(1000);
                request = request
                    .header(TIMESTAMP_HEADER, timestamp.to_string())
                    .header(
                        SIGNATURE_HEADER,
                        sign(channel.secret_text(), timestamp, &body),
                    );
                body
            }
            ChannelFormat::Slack => alert.slack_body(instance, at_ms),
        };
        match request.body(body).send().await {
            Ok(response) => {
                let status = response.status();
                let retry_after = retry_after(&response);
                let (error, next) = classify(status, retry_after);
                Outcome {
                    http_status: Some(status.as_u16()),
                    latency_ms: elapsed(),
                    error,
                    next,
                }
            }
            Err(e) => {
                let timed_out = e.is_timeout();
                let (error, next) =
                    describe_send_error(e.without_url(), timed_out, &self.inner.config);
                Outcome {
                    http_status: None,
                    latency_ms: elapsed(),
                    error: Some(error),
                    next,
                }
            }
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from webhook receivers and ignored).
fn retry_after(response: &reqwest::Response) -> Duration {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_secs)
}

/// 2xx is delivered; 408, 429 and 5xx may pass later; anything else will not.
fn classify(status: StatusCode, retry_after: Duration) -> (Option<String>, Next) {
    if status.is_success() {
        return (None, Next::Done);
    }
    let error = if status.is_redirection() {
        format!("the receiver answered {status}; redirects are not followed, use the final URL")
    } else {
        format!("the receiver answered {status}")
    };
    let retryable = status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS;
    let next = if retryable {
        Next::Retry {
            at_least: retry_after,
        }
    } else {
        Next::Stop
    };
    (Some(error), next)
}

/// The error in words, its causes included (without the URL), and whether to retry.
fn describe_send_error(
    error: reqwest::Error,
    timed_out: bool,
    config: &DispatcherConfig,
) -> (String, Next) {
    let mut refused = false;
    let mut text = if timed_out {
        format!("no answer within {} s", config.timeout.as_secs_f64())
    } else {
        error.to_string()
    };
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(refusal) = cause.downcast_ref::<OutboundRefusal>() {
            refused = !refusal.is_retryable();
        }
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    let next = if refused {
        Next::Stop
    } else {
        Next::Retry {
            at_least: Duration::ZERO,
        }
    };
    (text, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let policy = RetryPolicy {
            jitter: Jitter::None,
            ..RetryPolicy::default()
        };
        let waits: Vec<u64> = (1..=12).map(|n| policy.delay_after(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(policy.ceiling(u32::MAX), policy.cap);
    }

    #[test]
    fn full_jitter_stays_under_the_ceiling() {
        let policy = RetryPolicy::default();
        for n in 1..=8 {
            for _ in 0..50 {
                assert!(policy.delay_after(n) <= policy.ceiling(n));
            }
        }
        // Spread, not a constant: 50 draws under a 4 s ceiling are not all equal.
        let draws: std::collections::HashSet<Duration> =
            (0..50).map(|_| policy.delay_after(3)).collect();
        assert!(draws.len() > 1);
    }

    #[test]
    fn statuses_are_sorted_into_done_retry_and_stop() {
        assert!(matches!(
            classify(StatusCode::OK, Duration::ZERO).1,
            Next::Done
        ));
        assert!(matches!(
            classify(StatusCode::NO_CONTENT, Duration::ZERO).1,
            Next::Done
        ));
        for retry in [500, 502, 503, 408, 429] {
            let status = StatusCode::from_u16(retry).unwrap();
            assert!(
                matches!(classify(status, Duration::ZERO).1, Next::Retry { .. }),
                "{retry}"
            );
        }
        for stop in [400, 401, 403, 404, 410, 301] {
            let status = StatusCode::from_u16(stop).unwrap();
            assert!(
                matches!(classify(status, Duration::ZERO).1, Next::Stop),
                "{stop}"
            );
        }
        let (error, next) = classify(StatusCode::TOO_MANY_REQUESTS, Duration::from_secs(7));
        assert_eq!(
            error.as_deref(),
            Some("the receiver answered 429 Too Many Requests")
        );
        assert!(matches!(next, Next::Retry { at_least } if at_least == Duration::from_secs(7)));
    }
}
