//! The usage event of one call and the guard that records it exactly once.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tollgate_core::UsageEvent;

use super::micros;
use crate::capture::{CapturedUsage, ResponseTap, Settled};
use crate::error::CLIENT_CLOSED_STATUS;
use crate::otel::CallSpan;
use crate::server::Shared;
use crate::writer::Ack;

/// The usage event of one call, recorded exactly once: by [`Call::finish`], or on drop as a
/// client that hung up (499), or as 500 if the handler panicked.
pub(crate) struct Call {
    pub(super) shared: Arc<Shared>,
    pub(super) event: Option<UsageEvent>,
    pub(super) started: Instant,
    /// When the request that answered was sent upstream (the last attempt's, on `llm` routes):
    /// the start of its upstream latencies, to the first byte and to the last.
    pub(super) upstream_sent: Option<Instant>,
    /// Pending while the recorded event is not yet durable (`usage.durability = "spool"`): the
    /// response's end waits for it, so a client never sees a complete answer whose event a
    /// crash could still lose.
    pub(super) ack: Option<Ack>,
    /// The client's address (see `serve_call`).
    pub(super) client_addr: IpAddr,
    /// The call's place in the limits, settled with its exact use when the event is recorded
    /// (also for a client that hung up or a failed upstream).
    pub(super) admission: Option<tollgate_limits::Admission>,
    /// The `x-ratelimit-*` headers of the admission, for the response.
    pub(super) rate_headers: Option<tollgate_limits::RateHeaders>,
    /// The call goes through an `anthropic` route: refusals use Anthropic's error shape.
    pub(super) anthropic: bool,
    /// The call's trace span, when traces are on; ended with the finished event.
    pub(super) span: Option<CallSpan>,
}

impl Call {
    pub(super) fn event_mut(&mut self, change: impl FnOnce(&mut UsageEvent)) {
        if let Some(event) = self.event.as_mut() {
            change(event);
        }
    }

    /// The upstream's response head arrived: the request that answered was sent at `sent`.
    pub(super) fn answered(&mut self, sent: Instant, head: Duration) {
        self.upstream_sent = Some(sent);
        self.event_mut(|e| e.upstream_latency_us = Some(micros(head)));
    }

    /// The upstream's answer ended (its last byte is here): its time to last byte.
    pub(super) fn upstream_ended(&mut self) {
        if let Some(sent) = self.upstream_sent {
            let last_byte = micros(sent.elapsed());
            self.event_mut(|e| e.upstream_last_byte_us = Some(last_byte));
        }
    }

    pub(super) fn finish(
        &mut self,
        status: u16,
        error: Option<String>,
        usage: Option<CapturedUsage>,
    ) {
        let Some(mut event) = self.close(status, error) else {
            return;
        };
        if let Some(usage) = usage {
            apply_usage(&self.shared, &mut event, usage);
        }
        if let Some(admission) = self.admission.take() {
            settle(admission, &event);
        }
        if let Some(span) = self.span.take() {
            span.end(&event);
        }
        let ack = self.shared.sink.record_acked(event);
        if ack.is_pending() {
            self.ack = Some(ack);
        }
    }

    /// Like [`Call::finish`] with the usage a response tap settled on. Usage that must be
    /// estimated is counted on the blocking pool, after the response's last bytes are handed
    /// over, so that neither the count nor a vocabulary still loading delays them; the event
    /// (and the settlement of the call's limits) follows the count. Where the event must be
    /// durable before the response ends, the response's end waits for it as usual.
    pub(super) fn finish_tap(
        &mut self,
        status: u16,
        error: Option<String>,
        tap: Option<ResponseTap>,
    ) {
        let counting = match tap.map(ResponseTap::settle) {
            None => return self.finish(status, error, None),
            Some(Settled::Ready(usage)) => return self.finish(status, error, Some(usage)),
            Some(Settled::Count(counting)) => counting,
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Never on the request path (a call dropped outside the runtime): count here.
            return self.finish(status, error, Some(counting.count()));
        };
        let Some(event) = self.close(status, error) else {
            return;
        };
        let (done, ack) = self.shared.sink.deferred_ack();
        if ack.is_pending() {
            self.ack = Some(ack);
        }
        let shared = self.shared.clone();
        let admission = self.admission.take();
        let span = self.span.take();
        let pending = shared.deferred.start();
        runtime.spawn_blocking(move || {
            let _pending = pending;
            let mut event = event;
            apply_usage(&shared, &mut event, counting.count());
            if let Some(admission) = admission {
                settle(admission, &event);
            }
            if let Some(span) = span {
                span.end(&event);
            }
            shared.sink.record_then_ack(event, done);
        });
    }

    /// Takes the event, with the call's status, latency and error, and counts the response.
    fn close(&mut self, status: u16, error: Option<String>) -> Option<UsageEvent> {
        let mut event = self.event.take()?;
        let elapsed = self.started.elapsed();
        event.status = status;
        event.latency_us = micros(elapsed);
        if error.is_some() {
            event.error = error;
        }
        self.shared
            .metrics
            .observe_response(status, elapsed.as_secs_f64());
        self.shared.metrics.routes.observe(&event);
        Some(event)
    }
}

/// The captured model, tokens and their price into the event.
fn apply_usage(shared: &Shared, event: &mut UsageEvent, usage: CapturedUsage) {
    if usage.model.is_some() {
        event.model = usage.model;
    }
    event.tokens = usage.tokens;
    event.estimated = usage.estimated;
    event.cost_usd = shared
        .config
        .prices
        .current()
        .cost(event.model.as_deref(), &event.tokens);
}

/// Usage events being completed off the request path (their usage counted on the blocking
/// pool): the gateway's shutdown waits for them before the usage writer is flushed.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    running: AtomicUsize,
    idle: Notify,
}

/// One deferred event in progress; done when dropped.
pub(crate) struct DeferredGuard(Arc<Deferred>);

impl Deferred {
    fn start(self: &Arc<Self>) -> DeferredGuard {
        self.running.fetch_add(1, Ordering::AcqRel);
        DeferredGuard(self.clone())
    }

    /// Waits until no deferred event is in progress.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.running.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for DeferredGuard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Replaces the admission's reservations with the call's exact tokens and cost, off the
/// request path. Counters in the process settle at once, with no future; a Redis settlement is
/// polled once here (one from leased headroom completes so) and only one that waits goes to a
/// task of its own. Without a runtime (never on the
/// request path) the admission is dropped, which releases its leases and leaves its
/// reservations to expire.
#[expect(
    clippy::disallowed_methods,
    reason = "one settlement bounded by the counters' round-trip timeout: the task ends by itself"
)]
fn settle(admission: tollgate_limits::Admission, event: &UsageEvent) {
    let tokens = u64::try_from(event.tokens.total.max(0)).unwrap_or(0);
    // An unpriced call adds nothing to cost budgets: there is no figure to add.
    let cost_micro = usd_to_micro(event.cost_usd.unwrap_or(0.0));
    let Err(admission) = admission.settle_now(tokens, cost_micro) else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let mut settling = Box::pin(async move {
        if let Err(err) = (*admission).settle(tokens, cost_micro).await {
            tracing::warn!(error = %err, "a call's use could not be settled on its limits");
        }
    });
    if futures_util::FutureExt::now_or_never(settling.as_mut()).is_none() {
        runtime.spawn(settling);
    }
}

/// US dollars as micro-USD, rounded; negative or non-finite amounts count as 0.
pub(super) fn usd_to_micro(usd: f64) -> i64 {
    if usd.is_finite() && usd > 0.0 {
        // `as` saturates: an absurd cost caps at i64::MAX.
        (usd * 1_000_000.0).round() as i64
    } else {
        0
    }
}

impl Call {
    /// Counts the call in the metrics but leaves its row to a summary (see `keys`).
    pub(super) fn fold_into_summary(&mut self, status: u16) {
        if let Some(mut event) = self.event.take() {
            self.shared
                .metrics
                .observe_response(status, self.started.elapsed().as_secs_f64());
            self.shared.metrics.refused_key_events_folded.inc();
            if let Some(span) = self.span.take() {
                event.status = status;
                span.end(&event);
            }
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.event.is_some() {
            let (status, error) = if std::thread::panicking() {
                (
                    500,
                    "internal_error: the gateway failed while handling the call",
                )
            } else {
                (
                    CLIENT_CLOSED_STATUS,
                    "client_closed_request: the client hung up before the response head",
                )
            };
            self.finish(status, Some(error.to_owned()), None);
        }
    }
}
