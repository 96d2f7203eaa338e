//! Analytics wiring on a primary: opening the aggregates' tree and the
//! background task that writes the gateway's recorded minutes to it in
//! batches (every `[analytics] flush_interval`, and once more at shutdown,
//! after the gateway has drained) and prunes by age and size.

use crate::analytics::{minute_of, AnalyticsDb, Recorder};
use crate::config::Analytics;
use crate::shutdown::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often pruning runs.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Writes what `recorder` holds to `db`. Blocking.
pub fn flush(recorder: &Recorder, db: &AnalyticsDb) {
    let rows = recorder.drain();
    if rows.is_empty() {
        return;
    }
    if let Err(e) = db.merge(&rows) {
        tracing::error!(error = %e, rows = rows.len(), "writing analytics aggregates failed");
    }
}

/// Removes what `settings` no longer keeps. Blocking.
pub fn prune(db: &AnalyticsDb, settings: &Analytics) {
    let now = minute_of(SystemTime::now());
    let oldest = now.saturating_sub(u64::from(settings.retention_days) * 1440);
    match db.prune(oldest, settings.max_bytes) {
        Ok(0) => {}
        Ok(n) => tracing::debug!(removed = n, "pruned analytics aggregates"),
        Err(e) => tracing::error!(error = %e, "pruning analytics aggregates failed"),
    }
}

/// The background writer: flushes every `flush_interval` and prunes every
/// minute until `shutdown` (the last flush is [`Running::wait`]'s, after
/// the gateway stopped).
///
/// [`Running::wait`]: super::Running::wait
pub async fn run(
    recorder: Arc<Recorder>,
    db: Arc<AnalyticsDb>,
    settings: Analytics,
    mut shutdown: Shutdown,
) {
    let mut pruned: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(settings.flush_interval) => {}
            _ = shutdown.wait() => return,
        }
        let (r, d, s) = (recorder.clone(), db.clone(), settings.clone());
        let prune_now = pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY);
        if prune_now {
            pruned = Some(Instant::now());
        }
        let done = tokio::task::spawn_blocking(move || {
            flush(&r, &d);
            if prune_now {
                prune(&d, &s);
            }
        })
        .await;
        if let Err(e) = done {
            tracing::error!(error = %e, "the analytics flush task failed");
        }
    }
}
