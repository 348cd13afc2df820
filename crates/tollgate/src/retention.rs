//! The periodic clean-up: raw usage older than `retention.days` (and beyond `retention.max_rows`),
//! roll-ups older than `retention.rollup_days`, expired sessions, edge changes older than
//! `retention.edge_changes`. Deletes run in small batches so that the usage writer is never held
//! up for long.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tollgate_core::time::now_ms;
use tollgate_store::Store;

use crate::config::Retention;

use tollgate_core::time::DAY_MS;
/// Rows per delete transaction.
const BATCH: i64 = 5_000;

/// Logs the outcome of one clean-up step: what was removed, or why it failed.
fn report(step: &str, result: tollgate_store::StoreResult<u64>) {
    match result {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "retention: {step}"),
        Err(e) => tracing::warn!(error = %e, "retention: {step} failed"),
    }
}

/// One pass of the clean-up; errors are logged and the next pass tries again.
pub async fn clean_once(store: &dyn Store, retention: &Retention) {
    let now = now_ms();
    let events_before = now - i64::from(retention.days) * DAY_MS;
    report(
        "removing usage events older than retention.days",
        store.delete_usage_before(events_before, BATCH).await,
    );
    if retention.max_rows > 0 {
        let max = i64::try_from(retention.max_rows).unwrap_or(i64::MAX);
        report(
            "trimming usage events to retention.max_rows",
            store.trim_usage(max, BATCH).await,
        );
    }
    let rollups_before = now - i64::from(retention.rollup_days) * DAY_MS;
    report(
        "removing roll-ups older than retention.rollup_days",
        store.delete_rollups_before(rollups_before).await,
    );
    report("purging expired sessions", store.purge_sessions(now).await);
    let kept = i64::try_from(retention.edge_changes_retention().as_millis()).unwrap_or(i64::MAX);
    report(
        "removing edge changes older than retention.edge_changes",
        store
            .prune_edge_changes(now.saturating_sub(kept), BATCH)
            .await,
    );
}

/// Runs [`clean_once`] at start and then every `interval`, until `stop` turns true.
#[expect(
    clippy::disallowed_methods,
    reason = "the clean-up loop stops on serve's stop signal; serve keeps the handle"
)]
pub fn spawn(
    store: Arc<dyn Store>,
    retention: Retention,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => clean_once(store.as_ref(), &retention).await,
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
            }
        }
    })
}
