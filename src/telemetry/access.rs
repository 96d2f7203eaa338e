//! The access log: one event per gateway request.
//!
//! Owns: the [`AccessRecord`] (its fields and JSON shape), where records go
//! (`tracing` target `access`, or JSON lines appended to
//! `[telemetry] access_log_file` by a writer thread fed through a bounded
//! queue, never blocking a request), and the body wrappers that count
//! bytes in and out as they stream and write the record when the
//! response body ends (or the client goes away).
//!
//! Records carry ids, never keys or tokens.

use super::tally::{AtEnd, Tally};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Instant;

/// Records a file writer may hold before new ones are dropped.
const QUEUE: usize = 8192;

/// One request as the access log reports it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccessRecord {
    /// RFC 3339 UTC time the request arrived.
    pub timestamp: String,
    pub request_id: String,
    pub trace_id: String,
    pub client_ip: String,
    pub method: String,
    pub host: String,
    /// The path; the query too when `access_log_query` is on.
    pub path: String,
    pub status: u16,
    /// Request body bytes the gateway read from the client.
    pub bytes_in: u64,
    /// Response body bytes sent to the client.
    pub bytes_out: u64,
    /// Arrival to the end of the response body.
    pub duration_us: u64,
    /// Time spent waiting for backends' response heads.
    pub backend_duration_us: u64,
    pub api: String,
    pub operation: String,
    pub product: String,
    pub subscription: String,
    pub user: String,
    pub region: String,
    pub gateway_id: String,
    /// `hit`, `miss` or `none` (no `cache-lookup` applied).
    pub cache: &'static str,
    pub error_source: String,
    pub error_reason: String,
}

/// Where access records go.
#[derive(Debug, Clone)]
pub enum AccessLog {
    /// `tracing` events with target [`super::ACCESS_TARGET`].
    Events,
    /// JSON lines appended to a file by a writer thread.
    File(Arc<FileSink>),
}

/// The queue into the writer thread of an access-log file.
#[derive(Debug)]
pub struct FileSink {
    tx: SyncSender<Vec<u8>>,
    dropped: AtomicU64,
}

impl AccessLog {
    /// Records to the file at `path` (created, appended to).
    pub fn file(path: &Path) -> std::io::Result<AccessLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(file, rx))?;
        Ok(AccessLog::File(Arc::new(FileSink {
            tx,
            dropped: AtomicU64::new(0),
        })))
    }

    /// Writes one record.
    pub fn write(&self, r: &AccessRecord) {
        match self {
            AccessLog::Events => tracing::info!(
                target: super::ACCESS_TARGET,
                request_id = %r.request_id,
                trace_id = %r.trace_id,
                client = %r.client_ip,
                method = %r.method,
                host = %r.host,
                path = %r.path,
                status = r.status,
                bytes_in = r.bytes_in,
                bytes_out = r.bytes_out,
                duration_us = r.duration_us,
                backend_duration_us = r.backend_duration_us,
                api = %r.api,
                operation = %r.operation,
                product = %r.product,
                subscription = %r.subscription,
                user = %r.user,
                region = %r.region,
                gateway_id = %r.gateway_id,
                cache = r.cache,
                error_source = %r.error_source,
                reason = %r.error_reason,
                "request"
            ),
            AccessLog::File(sink) => {
                let Ok(mut line) = serde_json::to_vec(r) else {
                    return;
                };
                line.push(b'\n');
                match sink.tx.try_send(line) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                        let before = sink.dropped.fetch_add(1, Relaxed);
                        if before.is_power_of_two() || before == 0 {
                            tracing::warn!(
                                dropped = before + 1,
                                "access log file falls behind; records dropped"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The writer thread: appends lines, flushing whenever the queue is empty;
/// ends when every sender is gone.
fn write_lines(file: std::fs::File, rx: Receiver<Vec<u8>>) {
    let mut out = std::io::BufWriter::new(file);
    while let Ok(line) = rx.recv() {
        let mut ok = out.write_all(&line).is_ok();
        while let Ok(more) = rx.try_recv() {
            ok &= out.write_all(&more).is_ok();
        }
        ok &= out.flush().is_ok();
        if !ok {
            tracing::warn!("access log file write failed");
        }
    }
    let _ = out.flush();
}

/// Counts the bytes of a request body as the pipeline reads it, into a
/// cell the access record reads at the end.
pub type CountIn<B> = Tally<B, InCount>;

/// [`CountIn`]'s end action: the count is shared while the body streams.
pub struct InCount(Arc<AtomicU64>);

impl AtEnd for InCount {
    fn end(self, _bytes: u64) {}

    fn frame(&mut self, bytes: u64) {
        self.0.fetch_add(bytes, Relaxed);
    }
}

/// Wraps a request body so its bytes are added to `count` as they stream.
pub fn tally_in<B>(inner: B, count: Arc<AtomicU64>) -> CountIn<B> {
    Tally::new(inner, InCount(count))
}

/// A response body that counts what it sends and writes the access record
/// when it is dropped (fully sent, or the client went away).
pub type CountOut<B> = Tally<B, WriteRecord>;

/// [`CountOut`]'s end action: complete the record and write it.
pub struct WriteRecord {
    started: Instant,
    bytes_in: Arc<AtomicU64>,
    log: AccessLog,
    record: AccessRecord,
}

impl AtEnd for WriteRecord {
    fn end(mut self, bytes: u64) {
        self.record.bytes_out = bytes;
        self.record.bytes_in = self.bytes_in.load(Relaxed);
        self.record.duration_us = self.started.elapsed().as_micros() as u64;
        self.log.write(&self.record);
    }
}

/// Wraps `inner`; `record` is completed with the byte counts and the
/// total duration since `started`.
pub fn tally_out<B>(
    inner: B,
    started: Instant,
    bytes_in: Arc<AtomicU64>,
    log: AccessLog,
    record: AccessRecord,
) -> CountOut<B> {
    Tally::new(
        inner,
        WriteRecord {
            started,
            bytes_in,
            log,
            record,
        },
    )
}
