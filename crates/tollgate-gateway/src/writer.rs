//! The usage writer: a bounded in-memory queue drained in batches into the store, with the disk
//! spool taking over when the queue is full or the store is down.
//!
//! The request path only calls [`UsageSink::record`], which never waits: it counts the event in
//! the usage series of `/metrics` (see [`crate::usage_series`]), then a `try_send` into the
//! queue, or a synchronous append to the spool when the queue is full or closed. One writer task
//! owns the queue's receiving end. It writes a batch when `batch_size` events are in or
//! `batch_interval` has passed since the batch's first event, in one store transaction. When a
//! write fails, the batch goes to the spool and the store is considered down: batches go straight
//! to the spool while the writer pings the store with a growing pause. Once the store answers, the
//! writer replays the spool, oldest file first, and deletes a file only after every event of it
//! was written. The store stores an `event_id` once, so a file replayed twice (a crash between the
//! commit and the delete) counts each event once.
//!
//! `queue_depth` counts every event the writer holds in memory (in the queue or in the batch
//! being built), so `queue_depth == 0 && spool_bytes == 0` means everything reached the store.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tollgate_core::UsageEvent;
use tollgate_store::{Store, StoreError};

use crate::metrics::Metrics;
use crate::spool::{Spool, SpoolFile};

/// First pause before the store is tried again after a failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between two tries of a store that is down.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Pause between two replays of a spool filled while the store was up (queue overflow), so a
/// sustained overload does not turn into a replay per batch.
const REPLAY_PAUSE: Duration = Duration::from_millis(200);
/// A store write that takes longer counts as failed; the batch is spooled (replaying it later is
/// safe even if the slow write did commit, because the store dedupes by `event_id`).
const STORE_TIMEOUT: Duration = Duration::from_secs(15);

/// Most events one durable append takes (one `fdatasync` for all of them).
const MAX_GROUP_COMMIT: usize = 4096;

/// When a recorded usage event is safe from a crash of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Events wait in memory (queue and batch) until their batch is stored: a kill -9 loses up
    /// to `queue_capacity` events plus the batch being written (`usage_events_in_memory`).
    #[default]
    Memory,
    /// Every event is appended to the spool and synced to disk before [`UsageSink::record_acked`]
    /// resolves (concurrent events share one sync); the writer stores from the spool.
    Spool,
}

/// Settings of the usage writer.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Events the in-memory queue holds before new ones go to the spool.
    pub queue_capacity: usize,
    /// Most events written in one transaction.
    pub batch_size: usize,
    /// Longest time an event waits before its batch is written.
    pub batch_interval: Duration,
    /// Folder of the disk spool.
    pub spool_dir: PathBuf,
    /// When an event counts as kept.
    pub durability: Durability,
}

/// State the sinks, the writer task and the handle share.
#[derive(Debug)]
struct Shared {
    metrics: Arc<Metrics>,
    spool: Spool,
    store_ok: AtomicBool,
    /// Set while events overflow into the spool, so the overflow is logged once, not per event.
    overflowing: AtomicBool,
    /// Set while the spool is replayed or the store is down: `record` appends to the spool
    /// instead of the queue, so no event waits in memory behind a replay (a kill -9 would lose
    /// it).
    diverting: AtomicBool,
}

impl Shared {
    /// Notes the time of an event the writer now holds, unless it holds an older one.
    fn note_in_memory(&self, ts_ms: i64) {
        let _ = self.metrics.oldest_in_memory_ms.compare_exchange(
            0,
            ts_ms.max(1),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Sets the time of the oldest event the writer holds (0 for none).
    fn set_oldest_in_memory(&self, ts_ms: i64) {
        self.metrics
            .oldest_in_memory_ms
            .store(ts_ms, Ordering::Release);
    }

    /// `n` events the writer held are in the store or the spool now.
    fn out_of_memory(&self, n: usize) {
        self.metrics
            .queue_depth
            .dec_by(i64::try_from(n).unwrap_or(i64::MAX));
    }

    fn status(&self) -> WriterStatus {
        WriterStatus {
            queue_depth: self.metrics.queue_depth_now(),
            spool_bytes: self.spool.bytes(),
            store_ok: self.store_ok.load(Ordering::Acquire),
        }
    }
}

/// The handle the request path records events with. Cloning is cheap; `record` never blocks.
#[derive(Debug, Clone)]
pub struct UsageSink {
    tx: mpsc::Sender<UsageEvent>,
    shared: Arc<Shared>,
    /// The group-commit thread of `Durability::Spool`.
    durable: Option<std::sync::mpsc::Sender<Durable>>,
}

/// An event on its way to a synced spool append, with whom to tell once it is on disk.
struct Durable {
    event: UsageEvent,
    done: Option<oneshot::Sender<()>>,
}

/// Resolves once a recorded event is as safe as the writer's [`Durability`] makes it: at once in
/// `Memory`, after the synced spool append in `Spool`.
#[derive(Debug)]
#[must_use = "the event is only durable once the ack resolves"]
pub struct Ack(Option<oneshot::Receiver<()>>);

impl Ack {
    /// Whether there is anything to wait for.
    pub fn is_pending(&self) -> bool {
        self.0.is_some()
    }
}

impl Future for Ack {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(rx) = self.0.as_mut() else {
            return Poll::Ready(());
        };
        // An error means the committer is gone; it has already counted the event.
        match Pin::new(rx).poll(cx) {
            Poll::Ready(_) => {
                self.0 = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl UsageSink {
    /// Hands an event to the writer without waiting for anything (see [`UsageSink::record_acked`]).
    pub fn record(&self, event: UsageEvent) {
        self.shared.metrics.usage.observe(&event);
        if let Some(durable) = &self.durable {
            self.send_durable(durable, event, None);
        } else {
            self.record_in_memory(event);
        }
    }

    /// Hands an event to the writer; the answer resolves once the event is durable. In `Memory`
    /// durability it is resolved already; in `Spool` it resolves after the group commit's
    /// `fdatasync`. Never waits on the store.
    pub fn record_acked(&self, event: UsageEvent) -> Ack {
        self.shared.metrics.usage.observe(&event);
        let Some(durable) = &self.durable else {
            self.record_in_memory(event);
            return Ack(None);
        };
        let (done, ack) = oneshot::channel();
        self.send_durable(durable, event, Some(done));
        Ack(Some(ack))
    }

    /// For an event recorded later, elsewhere: the sender to hand to
    /// [`UsageSink::record_then_ack`] with it, and the [`Ack`] that resolves once it is durable
    /// (resolved already in `Memory` durability).
    pub(crate) fn deferred_ack(&self) -> (Option<oneshot::Sender<()>>, Ack) {
        if self.durable.is_none() {
            return (None, Ack(None));
        }
        let (done, ack) = oneshot::channel();
        (Some(done), Ack(Some(ack)))
    }

    /// Hands an event to the writer and resolves `done` (from [`UsageSink::deferred_ack`]) once
    /// it is durable. Never waits.
    pub(crate) fn record_then_ack(&self, event: UsageEvent, done: Option<oneshot::Sender<()>>) {
        self.shared.metrics.usage.observe(&event);
        match &self.durable {
            Some(durable) => self.send_durable(durable, event, done),
            None => self.record_in_memory(event),
        }
    }

    fn send_durable(
        &self,
        durable: &std::sync::mpsc::Sender<Durable>,
        event: UsageEvent,
        done: Option<oneshot::Sender<()>>,
    ) {
        // In memory until the committer has appended it.
        self.shared.metrics.queue_depth.inc();
        if let Err(std::sync::mpsc::SendError(lost)) = durable.send(Durable { event, done }) {
            // The committer thread is gone (it cannot be, while this sink lives): keep the
            // event the other way.
            self.shared.metrics.queue_depth.dec();
            self.record_in_memory(lost.event);
        }
    }

    /// Into the queue, or into the spool when the queue is full or closed or the writer is
    /// diverting. Never blocks, never waits on the store.
    fn record_in_memory(&self, event: UsageEvent) {
        let metrics = &self.shared.metrics;
        if self.shared.diverting.load(Ordering::Acquire) {
            self.spool_one(event);
            return;
        }
        // Counted before the send so the writer's decrement can never run first.
        metrics.queue_depth.inc();
        match self.tx.try_send(event) {
            Ok(()) => {
                metrics.events_queued.inc();
            }
            Err(
                mpsc::error::TrySendError::Full(event) | mpsc::error::TrySendError::Closed(event),
            ) => {
                metrics.queue_depth.dec();
                if !self.shared.overflowing.swap(true, Ordering::AcqRel) {
                    tracing::warn!("usage queue full or closed: events go to the disk spool");
                }
                self.spool_one(event);
            }
        }
    }

    fn spool_one(&self, event: UsageEvent) {
        if let Err(e) = self.shared.spool.append(std::slice::from_ref(&event)) {
            self.shared.metrics.events_dropped.inc();
            tracing::error!(error = %e, event_id = %event.event_id, "usage event lost: the spool cannot be written");
        }
    }

    /// Current status of the writer.
    pub fn status(&self) -> WriterStatus {
        self.shared.status()
    }
}

/// What health checks read of the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriterStatus {
    /// Events in the queue.
    pub queue_depth: i64,
    /// Bytes in the spool.
    pub spool_bytes: i64,
    /// Whether the last write to the store succeeded.
    pub store_ok: bool,
}

/// Owns the writer task; `shutdown` drains it. Dropping it also makes the task drain and stop,
/// without waiting for it.
#[derive(Debug)]
pub struct UsageWriter {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl UsageWriter {
    /// Starts the writer task; replays whatever the spool holds from an earlier run.
    #[expect(
        clippy::disallowed_methods,
        reason = "UsageWriter::shutdown stops the task and awaits it"
    )]
    pub fn start(
        store: Arc<dyn Store>,
        config: WriterConfig,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<(Self, UsageSink)> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            std::io::Error::other("the usage writer must be started inside a tokio runtime")
        })?;
        let spool = Spool::open(&config.spool_dir, metrics.clone())?;
        let shared = Arc::new(Shared {
            metrics,
            spool,
            store_ok: AtomicBool::new(true),
            overflowing: AtomicBool::new(false),
            diverting: AtomicBool::new(false),
        });
        shared.metrics.store_write_ok.set(1);
        // tokio's channel refuses a capacity of 0.
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let durable = match config.durability {
            Durability::Memory => None,
            Durability::Spool => Some(start_committer(shared.clone(), tx.clone())?),
        };
        let replay_pause = match config.durability {
            // Events reach the store only through the spool: replay it at the batch pace.
            Durability::Spool => config.batch_interval,
            Durability::Memory => REPLAY_PAUSE,
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = WriterTask {
            store,
            batch_size: config.batch_size.max(1),
            batch_interval: config.batch_interval,
            shared: shared.clone(),
            rx,
            stop: stop_rx,
            stopping: false,
            store_down: false,
            backoff: FIRST_BACKOFF,
            replay_pause,
            spool_first: config.durability == Durability::Spool,
            // An earlier run's spool is replayed right away.
            next_recovery: Instant::now(),
        };
        let task = runtime.spawn(task.run());
        let sink = UsageSink {
            tx,
            shared: shared.clone(),
            durable,
        };
        Ok((
            Self {
                shared,
                stop: Some(stop_tx),
                task,
            },
            sink,
        ))
    }

    /// Current status.
    pub fn status(&self) -> WriterStatus {
        self.shared.status()
    }

    /// For tests: stops the writer the way a kill -9 would, dropping whatever it holds in memory
    /// without writing it anywhere. Events already in the spool stay there for the next start.
    pub fn kill(self) {
        self.task.abort();
    }

    /// Stops taking events from the queue after writing everything in it (to the store, or to the
    /// spool if the store is down). Events recorded afterwards go to the spool.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Err(e) = (&mut self.task).await {
            tracing::error!(error = %e, "usage writer task failed");
        }
    }
}

struct WriterTask {
    store: Arc<dyn Store>,
    batch_size: usize,
    batch_interval: Duration,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<UsageEvent>,
    stop: oneshot::Receiver<()>,
    stopping: bool,
    store_down: bool,
    backoff: Duration,
    /// Pause between two replays of a spool filled while the store was up.
    replay_pause: Duration,
    /// `Durability::Spool`: events reach the store through the spool only.
    spool_first: bool,
    /// When to next ping the store (if down) or replay the spool (if it holds anything).
    next_recovery: Instant,
}

/// Starts the group-commit thread of `Durability::Spool`: it takes every event waiting, appends
/// them in one synced write and then answers each. When the spool cannot be written, the events
/// go to the in-memory queue instead (kept, though not durable), and are counted as dropped only
/// when that is full too.
#[expect(
    clippy::disallowed_methods,
    reason = "the commit thread ends when every sink, which owns its sender, is gone"
)]
fn start_committer(
    shared: Arc<Shared>,
    queue: mpsc::Sender<UsageEvent>,
) -> std::io::Result<std::sync::mpsc::Sender<Durable>> {
    let (tx, rx) = std::sync::mpsc::channel::<Durable>();
    std::thread::Builder::new()
        .name("usage-spool-commit".into())
        .spawn(move || {
            let mut events = Vec::with_capacity(64);
            let mut waiting = Vec::with_capacity(64);
            // Ends when every sink is gone.
            while let Ok(first) = rx.recv() {
                let mut next = Some(first);
                while let Some(item) = next {
                    events.push(item.event);
                    waiting.extend(item.done);
                    next = if events.len() < MAX_GROUP_COMMIT {
                        rx.try_recv().ok()
                    } else {
                        None
                    };
                }
                let n = events.len();
                if let Err(e) = shared.spool.append_synced(&events) {
                    tracing::error!(error = %e, events = n, "usage spool append failed: events kept in memory only");
                    for event in events.drain(..) {
                        shared.metrics.queue_depth.inc();
                        if queue.try_send(event).is_ok() {
                            shared.metrics.events_queued.inc();
                        } else {
                            shared.metrics.queue_depth.dec();
                            shared.metrics.events_dropped.inc();
                        }
                    }
                }
                events.clear();
                shared.out_of_memory(n);
                for done in waiting.drain(..) {
                    let _ = done.send(());
                }
            }
        })?;
    Ok(tx)
}

/// Why a replay stopped early.
enum ReplayError {
    Store(StoreError),
    Io(std::io::Error),
}

impl WriterTask {
    async fn run(mut self) {
        let mut batch: Vec<UsageEvent> = Vec::with_capacity(self.batch_size);
        // The batch being written while the next one is gathered: its statements run while the
        // next batch is prepared, so the store's writer connection seldom waits on this task.
        let mut in_flight: Option<InFlight> = None;
        while !self.stopping {
            // In spool durability the committer thread fills the spool without waking this task:
            // it looks at the spool every `replay_pause`.
            let recovery_due = self.store_down || self.spool_first || self.shared.spool.bytes() > 0;
            // Wait for the first event of a batch, the end of the write in flight, a recovery
            // tick, or the stop signal.
            tokio::select! {
                biased;
                _ = &mut self.stop => {
                    self.stopping = true;
                    break;
                }
                (write, result) = InFlight::finished(&mut in_flight) => {
                    self.finish_write(&write, result);
                    self.shared.set_oldest_in_memory(0);
                    continue;
                }
                () = tokio::time::sleep_until(self.next_recovery), if recovery_due => {
                    // A replay writes on its own: the batch in flight ends first.
                    self.finish_in_flight(&mut in_flight, 0).await;
                    self.recover().await;
                    continue;
                }
                event = self.rx.recv() => match event {
                    Some(event) => {
                        self.shared.note_in_memory(event.ts_ms);
                        batch.push(event);
                    }
                    // Cannot happen while the task holds a sink's sender, but ends cleanly if it does.
                    None => break,
                },
            }
            let deadline = Instant::now() + self.batch_interval;
            while batch.len() < self.batch_size {
                tokio::select! {
                    biased;
                    _ = &mut self.stop => {
                        self.stopping = true;
                        break;
                    }
                    event = self.rx.recv() => match event {
                        Some(event) => batch.push(event),
                        None => break,
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            // At most two batches in flight: this one starts before the one before is done with.
            let batch = std::mem::replace(&mut batch, Vec::with_capacity(self.batch_size));
            let started = self.start_write(batch);
            let oldest = started.as_ref().map_or(0, |write| write.oldest_ms);
            self.finish_in_flight(&mut in_flight, oldest).await;
            in_flight = started;
        }
        self.finish_in_flight(&mut in_flight, 0).await;
        self.drain(batch).await;
    }

    /// Writes what the queue still holds, then the spool if the store is up.
    async fn drain(&mut self, mut batch: Vec<UsageEvent>) {
        // Closing makes further `record` calls fail fast into the spool, while the events already
        // in the queue stay receivable.
        self.rx.close();
        while let Some(event) = self.rx.recv().await {
            batch.push(event);
            if batch.len() >= self.batch_size {
                self.write_batch(&mut batch).await;
            }
        }
        self.write_batch(&mut batch).await;
        if !self.store_down && self.shared.spool.bytes() > 0 {
            // Best effort: a kill in the middle is safe, the next start replays what is left.
            if let Err(e) = self.replay().await {
                self.log_replay_error(&e);
            }
        }
        tracing::info!(
            spool_bytes = self.shared.spool.bytes(),
            store_ok = !self.store_down,
            "usage writer stopped"
        );
    }

    /// Writes one batch to the store, or to the spool when the store is down or the write
    /// fails, and waits until it is done.
    async fn write_batch(&mut self, batch: &mut Vec<UsageEvent>) {
        let mut in_flight = self.start_write(std::mem::take(batch));
        self.finish_in_flight(&mut in_flight, 0).await;
    }

    /// Starts writing a batch on a task of its own, or spools it at once when the store is down
    /// (then nothing is in flight).
    #[expect(
        clippy::disallowed_methods,
        reason = "the task is aborted when its InFlight is dropped, and awaited by finish_in_flight"
    )]
    fn start_write(&self, batch: Vec<UsageEvent>) -> Option<InFlight> {
        if batch.is_empty() {
            return None;
        }
        if self.store_down {
            self.spool_batch(&batch);
            self.shared.out_of_memory(batch.len());
            return None;
        }
        let oldest_ms = batch.first().map_or(0, |e| e.ts_ms.max(1));
        let batch = Arc::new(batch);
        let writer = self.store_writer();
        let events = batch.clone();
        let task = tokio::spawn(async move { writer.write_isolating(&events, false).await });
        Some(InFlight {
            batch,
            oldest_ms,
            task,
        })
    }

    /// Waits for the write in flight, if any, and deals with its outcome; `oldest_ms` is the
    /// time of the oldest event still in memory after it (0 for none).
    async fn finish_in_flight(&mut self, in_flight: &mut Option<InFlight>, oldest_ms: i64) {
        if in_flight.is_some() {
            let (write, result) = InFlight::finished(in_flight).await;
            self.finish_write(&write, result);
        }
        self.shared.set_oldest_in_memory(oldest_ms);
    }

    /// Sets aside the events the store refused, or spools the whole batch when the write
    /// failed. The events are then out of memory: in the store or in the spool.
    fn finish_write(&mut self, write: &InFlight, result: BatchResult) {
        let batch = write.batch.as_slice();
        match result {
            Ok(refused) => self.quarantine(batch, &refused),
            Err(e) => {
                self.mark_down(&e, batch.len(), true);
                // Events of the batch that did get in are stored once more at replay: harmless.
                self.spool_batch(batch);
            }
        }
        self.shared.out_of_memory(batch.len());
    }

    fn store_writer(&self) -> StoreWriter {
        StoreWriter {
            store: self.store.clone(),
            shared: self.shared.clone(),
        }
    }

    /// Moves events the store refused out of the way, to the spool's quarantine file.
    fn quarantine(&self, events: &[UsageEvent], refused: &[(usize, StoreError)]) {
        if refused.is_empty() {
            return;
        }
        let bad: Vec<UsageEvent> = refused
            .iter()
            .filter_map(|(i, _)| events.get(*i).cloned())
            .collect();
        self.shared.metrics.events_dropped.inc_by(bad.len() as u64);
        for ((_, error), event) in refused.iter().zip(&bad) {
            tracing::error!(event_id = %event.event_id, error = %error, "the store refused a usage event");
        }
        match self.shared.spool.quarantine(&bad) {
            Ok(path) => tracing::error!(
                events = bad.len(),
                file = %path.display(),
                "usage events refused by the store were set aside, not stored"
            ),
            Err(e) => {
                tracing::error!(error = %e, events = bad.len(), "usage events refused by the store are lost")
            }
        }
    }

    fn spool_batch(&self, batch: &[UsageEvent]) {
        if let Err(e) = self.shared.spool.append(batch) {
            self.shared
                .metrics
                .events_dropped
                .inc_by(batch.len() as u64);
            tracing::error!(error = %e, events = batch.len(), "usage events lost: the spool cannot be written");
        }
    }

    /// Notes a failed store ping or write (`write_failed`): new events go to the spool until the
    /// store takes writes again, tried with a growing pause.
    fn mark_down(&mut self, error: &StoreError, events: usize, write_failed: bool) {
        let metrics = &self.shared.metrics;
        if write_failed {
            metrics.store_write_failures.inc();
        }
        metrics.store_write_ok.set(0);
        self.shared.diverting.store(true, Ordering::Release);
        if !self.store_down {
            tracing::warn!(error = %error, events, "usage store write failed: spooling usage events until it is back");
            self.store_down = true;
            self.shared.store_ok.store(false, Ordering::Release);
            self.backoff = FIRST_BACKOFF;
        } else {
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
        self.next_recovery = Instant::now() + self.backoff;
    }

    /// Pings a store that is down; replays the spool once the store answers.
    async fn recover(&mut self) {
        if self.store_down {
            let ping = match tokio::time::timeout(STORE_TIMEOUT, self.store.ping()).await {
                Ok(result) => result,
                Err(_) => Err(StoreError::Unavailable("ping timed out".into())),
            };
            if let Err(e) = ping {
                tracing::debug!(error = %e, "usage store still down");
                self.mark_down(&e, 0, false);
                return;
            }
        }
        match self.replay().await {
            Ok(replayed) => {
                if self.store_down {
                    tracing::warn!(replayed, "usage store is back: spool replayed");
                } else if replayed > 0 {
                    tracing::info!(replayed, "usage spool replayed");
                }
                self.store_down = false;
                self.shared.store_ok.store(true, Ordering::Release);
                self.shared.metrics.store_write_ok.set(1);
                self.shared.diverting.store(false, Ordering::Release);
                self.backoff = FIRST_BACKOFF;
                self.next_recovery = Instant::now() + self.replay_pause;
            }
            Err(ReplayError::Store(e)) => self.mark_down(&e, 0, true),
            Err(e @ ReplayError::Io(_)) => {
                // The store is fine but a spool file cannot be read or deleted: retry later
                // without marking the store down, so new batches still go to the store.
                self.log_replay_error(&e);
                if !self.store_down {
                    self.shared.diverting.store(false, Ordering::Release);
                }
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                self.next_recovery = Instant::now() + self.backoff;
            }
        }
    }

    fn log_replay_error(&self, e: &ReplayError) {
        match e {
            ReplayError::Store(e) => {
                tracing::warn!(error = %e, "usage spool replay stopped: store write failed")
            }
            ReplayError::Io(e) => tracing::error!(error = %e, "usage spool replay stopped"),
        }
    }

    /// Moves what the queue holds to the spool: while diverting, nothing may wait in memory.
    fn divert_queue(&mut self) {
        let mut moved = Vec::new();
        while let Ok(event) = self.rx.try_recv() {
            moved.push(event);
        }
        if moved.is_empty() {
            return;
        }
        self.spool_batch(&moved);
        self.shared.out_of_memory(moved.len());
    }

    /// Writes every sealed spool file to the store, oldest first; returns how many events it read.
    /// Meanwhile `record` appends to the spool (diverting), and the events the queue held when
    /// the replay began go to the spool too: a kill during the replay finds every event on disk.
    /// The caller ends the diversion once the store is known to be up.
    async fn replay(&mut self) -> Result<u64, ReplayError> {
        self.shared.overflowing.store(false, Ordering::Release);
        self.shared.diverting.store(true, Ordering::Release);
        self.divert_queue();
        let files = self.shared.spool.seal_and_list().map_err(ReplayError::Io)?;
        let mut replayed = 0_u64;
        let mut accepted = false;
        // Files the store refused before it accepted anything: a lone bad event, or a broken
        // store. A few later files tell which.
        let mut refused_files = Vec::new();
        for file in files {
            // A `record` that read `diverting` just before it was set put its event in the queue.
            self.divert_queue();
            match self.replay_file(&file, accepted).await {
                Ok(outcome) => {
                    replayed += outcome.events;
                    accepted |= outcome.stored_any;
                }
                Err(ReplayError::Store(e))
                    if !matches!(e, StoreError::Unavailable(_)) && refused_files.len() < 2 =>
                {
                    refused_files.push((file, e));
                }
                Err(e) => return Err(e),
            }
        }
        for (file, error) in refused_files {
            if !accepted {
                return Err(ReplayError::Store(error));
            }
            replayed += self.replay_file(&file, true).await?.events;
        }
        Ok(replayed)
    }

    async fn replay_file(
        &mut self,
        file: &SpoolFile,
        mut accepted: bool,
    ) -> Result<FileReplay, ReplayError> {
        let read = {
            let file = file.clone();
            tokio::task::spawn_blocking(move || Spool::read(&file)).await
        };
        let contents = match read {
            Ok(result) => result.map_err(ReplayError::Io)?,
            Err(e) => return Err(ReplayError::Io(std::io::Error::other(e))),
        };
        let mut stored_any = false;
        let mut refused = Vec::new();
        for (n, chunk) in contents.events.chunks(self.batch_size).enumerate() {
            let chunk_refused = self
                .store_writer()
                .write_isolating(chunk, accepted)
                .await
                .map_err(ReplayError::Store)?;
            if chunk_refused.len() < chunk.len() {
                accepted = true;
                stored_any = true;
            }
            let offset = n * self.batch_size;
            refused.extend(chunk_refused.into_iter().map(|(i, e)| (offset + i, e)));
        }
        // Everything is in the store (or refused by it): only now is the file done with.
        self.quarantine(&contents.events, &refused);
        self.shared.spool.remove(file).map_err(ReplayError::Io)?;
        if contents.torn_tail {
            tracing::warn!(file = %file.path.display(), "spool file ended in a torn line (a crash mid-write): skipped it");
        }
        if contents.corrupt_lines > 0 {
            self.shared
                .metrics
                .events_dropped
                .inc_by(contents.corrupt_lines);
            tracing::error!(
                file = %file.path.display(),
                lines = contents.corrupt_lines,
                "spool file had unreadable lines: those usage events are lost"
            );
        }
        Ok(FileReplay {
            events: contents.events.len() as u64,
            stored_any,
        })
    }
}

/// What a batch's write task answers: the indices of the events the store refused, or the error
/// that stopped the write.
type BatchResult = Result<Vec<(usize, StoreError)>, StoreError>;

/// A batch being written on its own task. Dropping it (the writer killed) aborts the write.
struct InFlight {
    batch: Arc<Vec<UsageEvent>>,
    /// Time of its first event (epoch ms).
    oldest_ms: i64,
    task: JoinHandle<BatchResult>,
}

impl InFlight {
    /// Waits for the write in `slot` to end and takes it out; never ends with nothing in flight
    /// (a `select!` branch). Cancel-safe: the write goes on until awaited again.
    async fn finished(slot: &mut Option<Self>) -> (Self, BatchResult) {
        let Some(write) = slot.as_mut() else {
            return std::future::pending().await;
        };
        let result = match (&mut write.task).await {
            Ok(result) => result,
            Err(e) => Err(StoreError::Internal(format!(
                "the usage write task ended early: {e}"
            ))),
        };
        match slot.take() {
            Some(write) => (write, result),
            None => std::future::pending().await,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Writes batches to the store, on a batch's own task or in a replay.
struct StoreWriter {
    store: Arc<dyn Store>,
    shared: Arc<Shared>,
}

impl StoreWriter {
    /// Writes events; when the store refuses them with anything but `Unavailable`, splits them in
    /// halves to find the events it refuses, so one bad event cannot hold up every other one.
    /// Returns the refused events' indices. Refusals only count as such when the store accepted
    /// other writes (here or, with `accepted`, just before); otherwise the store itself is the
    /// problem (a read-only file, a full disk) and the error is returned.
    async fn write_isolating(
        &self,
        events: &[UsageEvent],
        mut accepted: bool,
    ) -> Result<Vec<(usize, StoreError)>, StoreError> {
        let first = match self.write_to_store(events).await {
            Ok(()) => return Ok(Vec::new()),
            Err(e @ StoreError::Unavailable(_)) => return Err(e),
            Err(e) => e,
        };
        // Reaching the first single event takes about log2(n) failed writes; failing more than
        // that without a single success means the store, not an event, is broken.
        let blind_limit = usize::BITS - events.len().leading_zeros() + 2;
        let mut blind_failures = 1_u32;
        let mut refused = Vec::new();
        let mut pending = Vec::new();
        split_or_refuse(0..events.len(), first, &mut pending, &mut refused);
        while let Some(range) = pending.pop() {
            match self.write_to_store(&events[range.clone()]).await {
                Ok(()) => accepted = true,
                Err(e @ StoreError::Unavailable(_)) => return Err(e),
                Err(e) => {
                    if !accepted {
                        blind_failures += 1;
                        if blind_failures > blind_limit {
                            return Err(e);
                        }
                    }
                    split_or_refuse(range, e, &mut pending, &mut refused);
                }
            }
        }
        if !accepted && let Some((_, e)) = refused.pop() {
            return Err(e);
        }
        Ok(refused)
    }

    async fn write_to_store(&self, events: &[UsageEvent]) -> Result<(), StoreError> {
        let written =
            match tokio::time::timeout(STORE_TIMEOUT, self.store.write_usage(events)).await {
                Ok(result) => result?,
                Err(_) => {
                    return Err(StoreError::Unavailable(format!(
                        "writing {} usage events took longer than {} s",
                        events.len(),
                        STORE_TIMEOUT.as_secs()
                    )));
                }
            };
        self.shared.metrics.events_written.inc_by(written);
        Ok(())
    }
}

/// What replaying one spool file did.
struct FileReplay {
    /// Events read from it.
    events: u64,
    /// Whether the store took at least one of them (proof that it accepts writes).
    stored_any: bool,
}

/// Queues the halves of a failed range, or records a single event as refused.
fn split_or_refuse(
    range: std::ops::Range<usize>,
    error: StoreError,
    pending: &mut Vec<std::ops::Range<usize>>,
    refused: &mut Vec<(usize, StoreError)>,
) {
    if range.len() <= 1 {
        refused.push((range.start, error));
    } else {
        let mid = range.start + range.len() / 2;
        // Popped left half first.
        pending.push(mid..range.end);
        pending.push(range.start..mid);
    }
}
