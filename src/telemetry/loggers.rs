//! Loggers: where `log-to-eventhub` messages go off Azure.
//!
//! Owns: the sink definitions the snapshot carries ([`SinkConfig`], made
//! from `/mgmt/loggers/{id}`) and the runtime that writes them
//! ([`Loggers`], owned by the gateway so it outlives snapshots). Each
//! logger has a bounded channel and one background task:
//!
//! - `file`: JSON lines `{"time", "loggerId", "partitionId",
//!   "partitionKey", "message"}` appended to a file under
//!   `{data_dir}/logs/`, rotated when it would pass `maxBytes` (the current
//!   file becomes `NAME.1`, `NAME.1` becomes `NAME.2`, ... keeping
//!   `maxFiles`);
//! - `http`: the same records POSTed as JSON arrays of up to `batchSize`,
//!   at least every `flushIntervalMs`, with a timeout and one retry; a
//!   batch that still fails is dropped with a warning;
//! - `stdout`: one JSON line per record.
//!
//! The request path only calls [`Loggers::send`], a non-blocking
//! `try_send`: when a logger's channel is full the record is dropped and
//! counted (a warning at most once a minute). [`Loggers::sync`] rebuilds
//! the set when the snapshot's definitions change, keeping the tasks of
//! loggers whose definition did not; a removed logger's task drains and
//! ends when its sender is dropped. [`Loggers::close`] (graceful shutdown)
//! lets every task write what it holds.

use crate::error::Secret;
use arc_swap::ArcSwap;
use bytes::Bytes;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Records a logger's channel holds before new ones are dropped.
pub const CHANNEL_CAPACITY: usize = 10_000;

/// Largest message kept (APIM truncates at 200 KB).
pub const MAX_MESSAGE_BYTES: usize = 200 * 1024;

/// Where a logger writes.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkConfig {
    /// `path` is relative to `{data_dir}/logs/` (checked when written).
    File {
        path: String,
        max_bytes: u64,
        max_files: u32,
    },
    Http {
        url: String,
        headers: Vec<(String, Secret)>,
        batch_size: usize,
        flush_interval: Duration,
        timeout: Duration,
    },
    Stdout,
}

/// Logger id → definition, as the snapshot carries it.
pub type LoggerDefs = HashMap<String, SinkConfig>;

/// One message.
#[derive(Debug, Clone)]
pub struct Record {
    pub logger_id: String,
    pub partition_id: Option<String>,
    pub partition_key: Option<String>,
    pub message: String,
    /// RFC 3339, UTC.
    pub time: String,
}

impl Record {
    pub fn new(
        logger_id: &str,
        partition_id: Option<String>,
        partition_key: Option<String>,
        mut message: String,
    ) -> Record {
        if message.len() > MAX_MESSAGE_BYTES {
            let mut end = MAX_MESSAGE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        Record {
            logger_id: logger_id.to_string(),
            partition_id,
            partition_key,
            message,
            time: rfc3339(SystemTime::now()),
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "time": self.time,
            "loggerId": self.logger_id,
            "partitionId": self.partition_id,
            "partitionKey": self.partition_key,
            "message": self.message,
        })
    }
}

/// `2024-05-06T07:08:09.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

struct Sink {
    config: SinkConfig,
    tx: mpsc::Sender<Record>,
    task: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Active {
    defs: Arc<LoggerDefs>,
    sinks: HashMap<String, Arc<Sink>>,
}

/// The running loggers. One per gateway.
pub struct Loggers {
    data_dir: PathBuf,
    current: ArcSwap<Active>,
    rebuild: Mutex<()>,
    closed: watch::Sender<bool>,
    dropped: AtomicU64,
    last_warn: AtomicU64,
}

impl std::fmt::Debug for Loggers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loggers")
            .field("data_dir", &self.data_dir)
            .field("dropped", &self.dropped)
            .finish()
    }
}

impl Default for Loggers {
    fn default() -> Self {
        Loggers::new(PathBuf::from("."))
    }
}

impl Loggers {
    /// Loggers whose files live under `{data_dir}/logs/`.
    pub fn new(data_dir: PathBuf) -> Loggers {
        Loggers {
            data_dir,
            current: ArcSwap::from_pointee(Active::default()),
            rebuild: Mutex::new(()),
            closed: watch::channel(false).0,
            dropped: AtomicU64::new(0),
            last_warn: AtomicU64::new(0),
        }
    }

    /// The file a `file` logger with `path` writes.
    pub fn file_path(&self, path: &str) -> PathBuf {
        self.data_dir.join("logs").join(path)
    }

    /// Makes the running loggers match `defs` (cheap when they already
    /// do: one pointer comparison). Needs a Tokio runtime to start tasks.
    pub fn sync(&self, defs: &Arc<LoggerDefs>) {
        if Arc::ptr_eq(&self.current.load().defs, defs) {
            return;
        }
        let _g = match self.rebuild.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let cur = self.current.load_full();
        if Arc::ptr_eq(&cur.defs, defs) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut sinks = HashMap::new();
        for (id, config) in defs.iter() {
            let sink = match cur.sinks.get(id) {
                Some(s) if s.config == *config => s.clone(),
                _ => Arc::new(self.start(&rt, id, config.clone())),
            };
            sinks.insert(id.clone(), sink);
        }
        self.current.store(Arc::new(Active {
            defs: defs.clone(),
            sinks,
        }));
    }

    fn start(&self, rt: &tokio::runtime::Handle, id: &str, config: SinkConfig) -> Sink {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let closed = self.closed.subscribe();
        let task = match &config {
            SinkConfig::File {
                path,
                max_bytes,
                max_files,
            } => rt.spawn(file_task(
                self.file_path(path),
                *max_bytes,
                *max_files,
                rx,
                closed,
            )),
            SinkConfig::Http {
                url,
                headers,
                batch_size,
                flush_interval,
                timeout,
            } => rt.spawn(http_task(
                id.to_string(),
                url.clone(),
                headers.clone(),
                *batch_size,
                *flush_interval,
                *timeout,
                rx,
                closed,
            )),
            SinkConfig::Stdout => rt.spawn(stdout_task(rx, closed)),
        };
        Sink {
            config,
            tx,
            task: Mutex::new(Some(task)),
        }
    }

    /// Whether logger `id` is running.
    pub fn has(&self, id: &str) -> bool {
        self.current.load().sinks.contains_key(id)
    }

    /// Queues `record` for logger `id` without waiting. False when the
    /// logger does not exist or its queue is full (the record is dropped).
    pub fn send(&self, id: &str, record: Record) -> bool {
        let cur = self.current.load();
        let Some(sink) = cur.sinks.get(id) else {
            return false;
        };
        match sink.tx.try_send(record) {
            Ok(()) => true,
            Err(_) => {
                let n = self.dropped.fetch_add(1, Relaxed) + 1;
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let last = self.last_warn.load(Relaxed);
                if now.saturating_sub(last) >= 60
                    && self
                        .last_warn
                        .compare_exchange(last, now, Relaxed, Relaxed)
                        .is_ok()
                {
                    tracing::warn!(logger = %id, dropped = n, "logger queue full; messages dropped");
                }
                false
            }
        }
    }

    /// Messages dropped because a queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Stops every logger after it wrote what it holds (bounded by `grace`).
    pub async fn close(&self, grace: Duration) {
        self.closed.send_replace(true);
        let cur = self.current.swap(Arc::new(Active::default()));
        let mut tasks = Vec::new();
        for s in cur.sinks.values() {
            let t = match s.task.lock() {
                Ok(mut t) => t.take(),
                Err(p) => p.into_inner().take(),
            };
            tasks.extend(t);
        }
        drop(cur);
        let all = futures_util::future::join_all(tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("loggers did not flush within the grace period");
        }
    }
}

/// Waits for the next record, or `None` when the channel closed or the
/// shutdown fired with nothing left.
async fn next(
    rx: &mut mpsc::Receiver<Record>,
    closed: &mut watch::Receiver<bool>,
) -> Option<Record> {
    if *closed.borrow() {
        return rx.try_recv().ok();
    }
    tokio::select! {
        r = rx.recv() => r,
        _ = closed.wait_for(|c| *c) => rx.try_recv().ok(),
    }
}

type Appender = tokio::io::BufWriter<tokio::fs::File>;

async fn open_append(path: &Path) -> std::io::Result<(Appender, u64)> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let f = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await?;
    let len = f.metadata().await.map_or(0, |m| m.len());
    // Lines are buffered and written once per batch.
    Ok((tokio::io::BufWriter::with_capacity(64 * 1024, f), len))
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

async fn rotate(path: &Path, max_files: u32) {
    if max_files == 0 {
        let _ = tokio::fs::remove_file(path).await;
        return;
    }
    let _ = tokio::fs::remove_file(rotated(path, max_files)).await;
    for i in (1..max_files).rev() {
        let _ = tokio::fs::rename(rotated(path, i), rotated(path, i + 1)).await;
    }
    let _ = tokio::fs::rename(path, rotated(path, 1)).await;
}

async fn file_task(
    path: PathBuf,
    max_bytes: u64,
    max_files: u32,
    mut rx: mpsc::Receiver<Record>,
    mut closed: watch::Receiver<bool>,
) {
    let mut file: Option<(Appender, u64)> = None;
    let mut warned = false;
    while let Some(first) = next(&mut rx, &mut closed).await {
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        for r in batch {
            let mut line = r.json().to_string();
            line.push('\n');
            if let Some((f, size)) = &mut file {
                if *size > 0 && *size + line.len() as u64 > max_bytes {
                    let _ = f.flush().await;
                    file = None;
                    rotate(&path, max_files).await;
                }
            }
            if file.is_none() {
                match open_append(&path).await {
                    Ok(f) => file = Some(f),
                    Err(e) => {
                        if !warned {
                            tracing::warn!(path = %path.display(), error = %e, "file logger cannot open its file; messages dropped");
                            warned = true;
                        }
                        continue;
                    }
                }
            }
            if let Some((f, size)) = &mut file {
                match f.write_all(line.as_bytes()).await {
                    Ok(()) => *size += line.len() as u64,
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "file logger write failed");
                        file = None;
                    }
                }
            }
        }
        if let Some((f, _)) = &mut file {
            let _ = f.flush().await;
        }
    }
    if let Some((f, _)) = &mut file {
        let _ = f.flush().await;
        let _ = f.get_ref().sync_all().await;
    }
}

async fn stdout_task(mut rx: mpsc::Receiver<Record>, mut closed: watch::Receiver<bool>) {
    use std::io::Write;
    while let Some(r) = next(&mut rx, &mut closed).await {
        let mut line = r.json().to_string();
        line.push('\n');
        // One short write per record; stdout is this task's alone.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<Bytes>,
>;

fn http_client() -> HttpClient {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https)
}

/// The URL without its query (which may carry a key) for messages.
fn shown(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

async fn post(
    client: &HttpClient,
    url: &str,
    headers: &[(String, Secret)],
    body: &Bytes,
    timeout: Duration,
) -> Result<(), String> {
    let mut req = http::Request::post(url).header(http::header::CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.expose());
    }
    let req = req
        .body(http_body_util::Full::new(body.clone()))
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, client.request(req)).await {
        Err(_) => Err("timed out".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(r)) if r.status().is_success() => Ok(()),
        Ok(Ok(r)) => Err(format!("status {}", r.status().as_u16())),
    }
}

#[allow(clippy::too_many_arguments)]
async fn http_task(
    id: String,
    url: String,
    headers: Vec<(String, Secret)>,
    batch_size: usize,
    flush_interval: Duration,
    timeout: Duration,
    mut rx: mpsc::Receiver<Record>,
    mut closed: watch::Receiver<bool>,
) {
    let client = http_client();
    let batch_size = batch_size.max(1);
    while let Some(first) = next(&mut rx, &mut closed).await {
        let mut batch = vec![first.json()];
        let deadline = tokio::time::Instant::now() + flush_interval;
        while batch.len() < batch_size {
            if *closed.borrow() {
                match rx.try_recv() {
                    Ok(r) => batch.push(r.json()),
                    Err(_) => break,
                }
                continue;
            }
            tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => batch.push(r.json()),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
                _ = closed.wait_for(|c| *c) => {}
            }
        }
        let body = Bytes::from(serde_json::Value::Array(batch).to_string());
        if let Err(first_err) = post(&client, &url, &headers, &body, timeout).await {
            tracing::debug!(logger = %id, error = %first_err, "http logger POST failed; retrying once");
            tokio::time::sleep(Duration::from_millis(500)).await;
            if let Err(e) = post(&client, &url, &headers, &body, timeout).await {
                tracing::warn!(logger = %id, url = %shown(&url), error = %e, "http logger batch dropped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn truncates_long_messages() {
        let r = Record::new("l", None, None, "é".repeat(MAX_MESSAGE_BYTES));
        assert!(r.message.len() <= MAX_MESSAGE_BYTES);
    }

    #[tokio::test]
    async fn file_logger_writes_and_rotates() {
        let dir = std::env::temp_dir().join(format!("turnpike-loggers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let loggers = Loggers::new(dir.clone());
        let mut defs = LoggerDefs::new();
        defs.insert(
            "f".into(),
            SinkConfig::File {
                path: "a/events.log".into(),
                max_bytes: 400,
                max_files: 2,
            },
        );
        loggers.sync(&Arc::new(defs));
        for i in 0..10 {
            assert!(loggers.send(
                "f",
                Record::new("f", Some(i.to_string()), None, "x".repeat(50))
            ));
        }
        assert!(!loggers.send("nope", Record::new("nope", None, None, String::new())));
        loggers.close(Duration::from_secs(5)).await;
        let base = dir.join("logs/a/events.log");
        let mut lines = 0;
        for p in [base.clone(), rotated(&base, 1), rotated(&base, 2)] {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            assert!(text.len() <= 400, "{} is {} bytes", p.display(), text.len());
            lines += text.lines().count();
        }
        assert!(!rotated(&base, 3).exists());
        // Three files of at most two lines each survive rotation.
        assert!((4..=6).contains(&lines), "{lines}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
