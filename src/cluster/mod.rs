//! The secondary's side of cluster mode (DESIGN.md §8): a gateway that
//! follows a primary.
//!
//! Owns: start-up (first configuration from the primary, else from the
//! backup, else a clear refusal), the sync loop (long-poll or plain poll,
//! compile with the same compiler as the primary, swap atomically, keep
//! the backup), fail-static (a lost primary changes nothing but the logs;
//! retries back off with jitter) and the heartbeat loop.
//!
//! The primary's side (`/cluster/v1/*`) is part of the management API
//! (`mgmt::cluster`). Imports `model`, `snapshot`, `config`, `telemetry`,
//! `durable`, `shutdown`, and `store::seal` (the master key sealing the backup).

pub mod backup;
pub mod client;

use crate::config::Settings;
use crate::model::{export, Heartbeat, RequestCounts};
use crate::shutdown::Shutdown;
use crate::snapshot::{compile_with, Options, Snapshot, SnapshotHandle};
use crate::telemetry::RequestStats;
use bytes::Bytes;
use client::{CallError, Fetched, PrimaryClient};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the configuration in service came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Primary,
    /// The backup, because the primary could not give one (`reason`).
    Backup {
        reason: String,
    },
}

/// A secondary's link to its primary.
pub struct Follower {
    client: PrimaryClient,
    data_dir: PathBuf,
    backup: bool,
    poll_interval: Duration,
    heartbeat_interval: Duration,
    long_poll: bool,
    gateway_id: String,
    region: String,
    from_backup: AtomicBool,
    started: Instant,
    /// Random per process: tells the primary which beats belong together.
    instance_id: String,
    /// What this node compiles with (`[dapr]`).
    options: Options,
    /// Seals the configuration backup; without it no backup is kept.
    master: Option<crate::store::seal::MasterKey>,
    /// Milliseconds after `started` of the last answered poll and the last
    /// accepted heartbeat, plus one (0: never) — metrics.
    last_sync_ms: AtomicU64,
    last_beat_ms: AtomicU64,
    /// The gateway's traffic aggregates, sent with the heartbeats.
    analytics: std::sync::OnceLock<Arc<crate::analytics::Recorder>>,
    /// Aggregate batches the primary has not acknowledged yet.
    outbox: crate::analytics::Outbox,
}

/// Analytics batches sent with one heartbeat.
const BATCHES_PER_BEAT: usize = 2;

/// Inflates, parses and compiles an export. Blocking.
fn build(export: &[u8], options: &Options) -> Result<Snapshot, String> {
    let catalog = export::decode(export, export::MAX_EXPORT_BYTES).map_err(|e| e.to_string())?;
    compile_with(&catalog, options).map_err(|problems| {
        let all: Vec<String> = problems
            .iter()
            .take(5)
            .map(|d| format!("{}: {}", d.target, d.message))
            .collect();
        format!("it does not compile: {}", all.join("; "))
    })
}

async fn build_off_thread(export: Bytes, options: Options) -> Result<Snapshot, String> {
    tokio::task::spawn_blocking(move || build(&export, &options))
        .await
        .map_err(|e| format!("the compile task failed: {e}"))?
}

/// `d` stretched or shrunk by up to 20%, so secondaries that lost the
/// primary together do not retry in lock-step.
fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = match getrandom::fill(&mut b) {
        Ok(()) => u16::from_le_bytes(b) as f64 / u16::MAX as f64,
        Err(_) => 0.5,
    };
    d.mul_f64(0.8 + 0.4 * r)
}

/// The pause after `failures` consecutive failed polls: from one second
/// (or the poll interval, when shorter), doubling, up to the poll interval,
/// with jitter. An outage never makes a secondary poll more often than it
/// normally does, and the primary's return is noticed within one interval.
fn backoff(poll_interval: Duration, failures: u32) -> Duration {
    let base = poll_interval.min(Duration::from_secs(1));
    let exp = base.saturating_mul(1 << failures.saturating_sub(1).min(16));
    jitter(exp.min(poll_interval.max(base)))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

impl Follower {
    /// A follower for a secondary's settings (validated: `[cluster]`
    /// primary, gateway_id and token are present). Fails when `[cluster]
    /// ca_cert` cannot be read (the error names the file).
    pub fn new(settings: &Settings) -> Result<Follower, String> {
        let c = &settings.cluster;
        let roots = match &c.ca_cert {
            Some(path) => Some(crate::tls::ca::root_store(
                &settings.node.data_dir.join(path),
            )?),
            None => None,
        };
        Ok(Follower {
            client: PrimaryClient::with_roots(
                c.primary.as_deref().unwrap_or_default(),
                c.token.clone().unwrap_or_default(),
                roots,
            )?,
            data_dir: settings.node.data_dir.clone(),
            backup: c.backup,
            poll_interval: c.poll_interval,
            heartbeat_interval: c.heartbeat_interval,
            long_poll: c.long_poll,
            gateway_id: c.gateway_id.clone().unwrap_or_default(),
            region: settings.node.region.clone(),
            from_backup: AtomicBool::new(false),
            started: Instant::now(),
            last_sync_ms: AtomicU64::new(0),
            last_beat_ms: AtomicU64::new(0),
            instance_id: crate::error::random_hex(8).unwrap_or_default(),
            options: Options::from_settings(settings),
            master: None,
            analytics: std::sync::OnceLock::new(),
            outbox: crate::analytics::Outbox::default(),
        })
    }

    /// Sends the aggregates `recorder` collects with the heartbeats.
    pub fn set_analytics(&self, recorder: Arc<crate::analytics::Recorder>) {
        let _ = self.analytics.set(recorder);
    }

    /// Sets the master key that seals the configuration backup.
    pub fn with_master_key(mut self, key: crate::store::seal::MasterKey) -> Follower {
        self.master = Some(key);
        self
    }

    /// The primary's URL.
    pub fn primary(&self) -> &str {
        &self.client.base
    }

    /// The first configuration: from the primary, or else from the backup.
    /// The error says why neither is possible, naming the primary.
    pub async fn bootstrap(&self) -> Result<(Snapshot, Origin), String> {
        let reason = match self.client.fetch(None, Duration::ZERO).await {
            Ok(Fetched::Config { revision, export }) => {
                match build_off_thread(export.clone(), self.options.clone()).await {
                    Ok(snapshot) => {
                        self.save_backup(revision, export).await;
                        tracing::info!(
                            primary = %self.client.base,
                            revision,
                            "configuration received from the primary"
                        );
                        return Ok((snapshot, Origin::Primary));
                    }
                    Err(e) => format!("its configuration revision {revision} was refused: {e}"),
                }
            }
            Ok(Fetched::NotModified) => "it answered 304 to a first poll".to_string(),
            Err(CallError::Refused(r)) => format!("it refused this gateway: {r}"),
            Err(CallError::Untrusted(r)) => {
                tracing::error!(
                    primary = %self.client.base,
                    "THE PRIMARY'S TLS CERTIFICATE IS NOT TRUSTED ({r}); nothing was sent \
                     and nothing applied. Check [cluster] ca_cert"
                );
                format!("its TLS certificate is not trusted: {r}")
            }
            Err(e) => format!("it is {e}"),
        };
        let url = &self.client.base;
        if !self.backup {
            return Err(format!(
                "cannot start: no configuration from the primary {url} ({reason}), \
                 and [cluster] backup = false, so there is no backup to start from"
            ));
        }
        let dir = self.data_dir.clone();
        let Some(key) = self.master.clone() else {
            return Err(format!(
                "cannot start: no configuration from the primary {url} ({reason}), \
                 and no master key to open the backup with"
            ));
        };
        let loaded = tokio::task::spawn_blocking(move || backup::load(&dir, &key))
            .await
            .map_err(|e| format!("cannot start: reading the backup failed: {e}"))?;
        let saved = loaded.map_err(|e| {
            format!("cannot start: no configuration from the primary {url} ({reason}), and {e}")
        })?;
        let snapshot = build_off_thread(Bytes::from(saved.export), self.options.clone())
            .await
            .map_err(|e| {
                format!(
                    "cannot start: no configuration from the primary {url} ({reason}), \
                     and the backup revision {} is unusable: {e}",
                    saved.revision
                )
            })?;
        tracing::warn!(
            primary = %url,
            revision = saved.revision,
            backup = %backup::path(&self.data_dir).display(),
            "the primary is out of reach ({reason}); serving the configuration backup"
        );
        self.from_backup.store(true, Ordering::Relaxed);
        Ok((snapshot, Origin::Backup { reason }))
    }

    async fn save_backup(&self, revision: u64, export: Bytes) {
        if !self.backup {
            return;
        }
        let Some(key) = self.master.clone() else {
            tracing::warn!("no master key: the configuration backup is not written");
            return;
        };
        let dir = self.data_dir.clone();
        let url = self.client.base.clone();
        let saved =
            tokio::task::spawn_blocking(move || backup::save(&dir, &key, revision, &export, &url))
                .await;
        match saved {
            Ok(Ok(())) => tracing::debug!(revision, "configuration backup written"),
            Ok(Err(e)) => {
                tracing::error!(error = %e, revision, "cannot write the configuration backup")
            }
            Err(e) => tracing::error!(error = %e, "the backup task failed"),
        }
    }

    /// Polls the primary until `shutdown`, swapping in every new revision
    /// that compiles. Never stops serving: a lost primary, a refused token
    /// or a bad payload are logged and retried.
    pub async fn sync(self: Arc<Self>, handle: Arc<SnapshotHandle>, mut shutdown: Shutdown) {
        let mut known = handle.load().revision;
        let mut failures: u32 = 0;
        loop {
            let wait = if self.long_poll {
                self.poll_interval
            } else {
                Duration::ZERO
            };
            let started = Instant::now();
            let polled = tokio::select! {
                r = self.client.fetch(Some(known), wait) => r,
                _ = shutdown.wait() => return,
            };
            let pause = match polled {
                Ok(fetched) => {
                    if failures > 0 {
                        tracing::info!(
                            primary = %self.client.base,
                            failed_polls = failures,
                            "the primary is reachable again"
                        );
                    }
                    failures = 0;
                    self.from_backup.store(false, Ordering::Relaxed);
                    self.mark(&self.last_sync_ms);
                    match fetched {
                        Fetched::Config { revision, export } => {
                            known = revision;
                            self.apply(&handle, revision, export).await;
                            Duration::ZERO
                        }
                        // A long-poll that ran its course: ask again at once;
                        // a plain poll (or a primary that does not hold
                        // polls): wait out the interval.
                        Fetched::NotModified => {
                            let spent = started.elapsed();
                            if !wait.is_zero() && spent >= wait / 2 {
                                Duration::ZERO
                            } else {
                                self.poll_interval.saturating_sub(spent)
                            }
                        }
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let serving = handle.load().revision;
                    match (&e, failures) {
                        (CallError::Refused(reason), _) => tracing::error!(
                            primary = %self.client.base,
                            gateway = %self.gateway_id,
                            serving,
                            "THE PRIMARY REFUSED THIS GATEWAY'S TOKEN: {reason}; \
                             still serving the last configuration. Mint a new token \
                             (POST /mgmt/gateways/{}/token) and restart with it",
                            self.gateway_id
                        ),
                        (CallError::Untrusted(reason), _) => tracing::error!(
                            primary = %self.client.base,
                            serving,
                            "THE PRIMARY'S TLS CERTIFICATE IS NOT TRUSTED ({reason}); \
                             nothing was sent and nothing applied; still serving the last \
                             configuration. Check [cluster] ca_cert"
                        ),
                        (_, 1) => tracing::warn!(
                            primary = %self.client.base,
                            serving,
                            "lost the primary ({e}); still serving the last configuration"
                        ),
                        _ => tracing::debug!(primary = %self.client.base, "poll failed: {e}"),
                    }
                    backoff(self.poll_interval, failures)
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.wait() => return,
                }
            }
        }
    }

    /// Compiles `export` and puts it in service, or logs why not and
    /// keeps the old snapshot.
    async fn apply(&self, handle: &SnapshotHandle, revision: u64, export: Bytes) {
        let t = Instant::now();
        match build_off_thread(export.clone(), self.options.clone()).await {
            Ok(snapshot) => {
                handle.replace(Arc::new(snapshot));
                tracing::info!(
                    revision,
                    compile_ms = t.elapsed().as_millis() as u64,
                    bytes = export.len(),
                    "applied configuration from the primary"
                );
                self.save_backup(revision, export).await;
            }
            Err(e) => tracing::error!(
                revision,
                serving = handle.load().revision,
                "REFUSED configuration revision {revision} from the primary: {e}; \
                 still serving the previous one"
            ),
        }
    }

    fn mark(&self, at: &AtomicU64) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        at.store(ms.saturating_add(1), Ordering::Relaxed);
    }

    /// Seconds since the last answered configuration poll and since the
    /// last accepted heartbeat (`None`: not yet), for metrics.
    pub fn ages(&self) -> (Option<f64>, Option<f64>) {
        let now = self.started.elapsed().as_secs_f64();
        let age = |at: &AtomicU64| match at.load(Ordering::Relaxed) {
            0 => None,
            ms => Some((now - (ms - 1) as f64 / 1000.0).max(0.0)),
        };
        (age(&self.last_sync_ms), age(&self.last_beat_ms))
    }

    /// Reports to the primary every `heartbeat_interval` (the first at
    /// once) until `shutdown`.
    pub async fn heartbeats(
        self: Arc<Self>,
        handle: Arc<SnapshotHandle>,
        stats: Arc<RequestStats>,
        mut shutdown: Shutdown,
    ) {
        let host = hostname();
        let mut reported = (0u64, 0u64);
        let mut failing = false;
        let mut sequence = 0u64;
        loop {
            let now = stats.read();
            sequence += 1;
            let mut beat = Heartbeat {
                gateway_id: self.gateway_id.clone(),
                region: self.region.clone(),
                revision: handle.load().revision,
                version: crate::telemetry::VERSION.to_string(),
                uptime_seconds: self.started.elapsed().as_secs(),
                hostname: host.clone(),
                heartbeat_interval_seconds: self.heartbeat_interval.as_secs_f64(),
                config_source: if self.from_backup.load(Ordering::Relaxed) {
                    "backup".into()
                } else {
                    "primary".into()
                },
                requests: RequestCounts {
                    total: now.0 - reported.0,
                    failed: now.1 - reported.1,
                },
                requests_since_start: Some(RequestCounts {
                    total: now.0,
                    failed: now.1,
                }),
                instance_id: self.instance_id.clone(),
                sequence,
                analytics: Vec::new(),
            };
            if let Some(recorder) = self.analytics.get() {
                self.outbox.refill(recorder);
            }
            let batches = self.outbox.pending(BATCHES_PER_BEAT);
            let acked = batches.iter().map(|b| b.sequence).max();
            beat.analytics = batches
                .iter()
                .filter_map(|b| serde_json::to_value(b).ok())
                .collect();
            let sent = tokio::select! {
                r = self.client.heartbeat(&beat) => r,
                _ = shutdown.wait() => return,
            };
            match sent {
                Ok(_) => {
                    if let Some(seq) = acked {
                        self.outbox.acked(seq);
                    }
                    reported = now;
                    failing = false;
                    self.mark(&self.last_beat_ms);
                }
                // Said once per outage, not once per beat.
                Err(_) if failing => {}
                Err(CallError::Refused(reason)) => {
                    failing = true;
                    tracing::error!(
                        gateway = %self.gateway_id,
                        "THE PRIMARY REFUSED THIS GATEWAY'S HEARTBEAT: {reason}"
                    );
                }
                Err(e) => {
                    failing = true;
                    tracing::warn!(primary = %self.client.base, "heartbeat failed: {e}");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.heartbeat_interval) => {}
                _ = shutdown.wait() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let within = |d: Duration, lo: u64, hi: u64| {
            assert!(
                d >= Duration::from_millis(lo) && d <= Duration::from_millis(hi),
                "{d:?} not in {lo}..{hi} ms"
            )
        };
        let ten = Duration::from_secs(10);
        within(backoff(ten, 1), 800, 1200);
        within(backoff(ten, 2), 1600, 2400);
        within(backoff(ten, 4), 6400, 9600);
        within(backoff(ten, 5), 8000, 12000);
        within(backoff(ten, 40), 8000, 12000);
        let short = Duration::from_millis(200);
        within(backoff(short, 1), 160, 240);
        within(backoff(short, 9), 160, 240);
    }
}
