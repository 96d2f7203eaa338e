//! OTLP/HTTP export of traces and metrics (`[telemetry] otlp_endpoint`).
//!
//! Owns: the span record the gateway fills ([`SpanData`]), the sampling
//! decision for new traces, the bounded queue between requests and the
//! exporter (a full queue drops and counts, never blocks a request), the
//! background task that batches spans (512, or every
//! `otlp_export_interval`) and POSTs them to `{endpoint}/v1/traces`, the
//! periodic export of the Prometheus series to `{endpoint}/v1/metrics`
//! as OTLP cumulative sums, gauges and histograms, retries with backoff,
//! failure warnings at most once a minute (never a header value), and the
//! bounded flush on shutdown.
//!
//! Encoding: the OTLP/HTTP JSON mapping (`Content-Type:
//! application/json`), written here with `serde_json`. The OpenTelemetry
//! crates were measured first: `opentelemetry` 0.31, `opentelemetry_sdk`
//! and `opentelemetry-otlp` (features `http-proto`, `trace`, `metrics`,
//! no defaults) add 19 crates to our tree, among them `tonic` and
//! `tonic-prost` (pulled by `opentelemetry-proto`'s message types even
//! without gRPC), `prost`, `async-trait`, `anyhow` and `rand_chacha`; a
//! clean release build of their whole tree alone (50 crates) takes 57 s
//! on one core. tonic is not wanted, and the JSON mapping is small and
//! stable, so the encoding, the batching and the HTTP client (hyper-util
//! with rustls on `ring`, like the gateway's) are ours: no new dependency.
//!
//! The span model follows OTLP: trace and span ids as lowercase hex,
//! times in Unix nanoseconds, kinds INTERNAL (1), SERVER (2), CLIENT (3),
//! status codes UNSET (0) and ERROR (2).

use crate::config::Telemetry as Config;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value as Json};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// Spans per POST (and the queue length that triggers an early send).
pub const BATCH: usize = 512;
/// Requests' span sets the queue holds before it drops.
pub const QUEUE: usize = 2048;
/// Spans kept for a retry while the collector fails; older ones go first.
pub const MAX_PENDING: usize = 8192;
/// Longest wait between two attempts while the collector fails.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Seconds between two warnings about failing exports.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Longest flush on shutdown.
const MAX_FLUSH: Duration = Duration::from_secs(5);

/// OTLP span kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Bool(bool),
}

/// One finished span.
#[derive(Debug, Clone)]
pub struct SpanData {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The parent's span id (`None`: a root span).
    pub parent_id: Option<[u8; 8]>,
    pub name: String,
    pub kind: SpanKind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attributes: Vec<(&'static str, AttrValue)>,
    /// `Some(message)`: status ERROR with that message.
    pub error: Option<String>,
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The next 64 random bits of this thread's splitmix64 generator, seeded
/// from the OS once per thread: ids for requests, traces and spans, which
/// must be unique and unguessable enough to not collide, not secret (no
/// system call per request).
pub fn fast_random_u64() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut b = [0u8; 8];
            let _ = getrandom::fill(&mut b);
            u64::from_le_bytes(b) ^ now_ns()
        });
    }
    let mut z = STATE.with(|s| {
        let v = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(v);
        v
    });
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` from [`fast_random_u64`].
pub fn fast_random_fill(buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        let r = fast_random_u64().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
}

/// A new random span id (never all zero).
pub fn new_span_id() -> [u8; 8] {
    let z = fast_random_u64();
    if z == 0 { 1u64 } else { z }.to_be_bytes()
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Renders the Prometheus text exposition at export time.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Where the exporter sends, and what every export carries.
struct Target {
    traces: http::Uri,
    metrics: http::Uri,
    /// Display form of the endpoint for warnings (no header values).
    endpoint: String,
    headers: http::HeaderMap,
    resource: Json,
    /// `resource` as JSON text.
    resource_text: String,
}

/// The handle the gateway holds: sampling and the non-blocking queue.
pub struct Exporter {
    tx: mpsc::Sender<Vec<SpanData>>,
    control: mpsc::UnboundedSender<oneshot::Sender<()>>,
    /// A new trace is sampled when its low 64 bits are below this.
    threshold: u64,
    always: bool,
    dropped: AtomicU64,
    exported: AtomicU64,
    failures: AtomicU64,
    render: OnceLock<Render>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("dropped", &self.dropped.load(Relaxed))
            .field("exported", &self.exported.load(Relaxed))
            .finish()
    }
}

/// The resource attributes: service, version, host, region, gateway id.
fn resource(cfg: &Config, region: &str, gateway_id: &str) -> Json {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    json!({"attributes": attributes(&[
        ("service.name", AttrValue::Str(cfg.otlp_service_name.clone())),
        ("service.version", AttrValue::Str(env!("CARGO_PKG_VERSION").into())),
        ("host.name", AttrValue::Str(host)),
        ("cloud.region", AttrValue::Str(region.into())),
        ("turnpike.region", AttrValue::Str(region.into())),
        ("turnpike.gateway_id", AttrValue::Str(gateway_id.into())),
    ])})
}

fn attr_json(v: &AttrValue) -> Json {
    match v {
        AttrValue::Str(s) => json!({ "stringValue": s }),
        // int64 travels as a string in the JSON mapping.
        AttrValue::Int(i) => json!({ "intValue": i.to_string() }),
        AttrValue::Bool(b) => json!({ "boolValue": b }),
    }
}

fn attributes(attrs: &[(&str, AttrValue)]) -> Json {
    Json::Array(
        attrs
            .iter()
            .map(|(k, v)| json!({"key": k, "value": attr_json(v)}))
            .collect(),
    )
}

fn scope() -> Json {
    json!({"name": "turnpike", "version": env!("CARGO_PKG_VERSION")})
}

/// Appends `s` as a JSON string.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

/// The `ExportTraceServiceRequest` JSON of `spans`; `resource` is the
/// resource object's JSON text. Written directly (no intermediate
/// values): this runs for every exported span.
pub fn encode_spans(resource: &str, spans: &[SpanData]) -> Vec<u8> {
    let mut out = String::with_capacity(256 + spans.len() * 640);
    out.push_str("{\"resourceSpans\":[{\"resource\":");
    out.push_str(resource);
    out.push_str(",\"scopeSpans\":[{\"scope\":{\"name\":\"turnpike\",\"version\":\"");
    out.push_str(env!("CARGO_PKG_VERSION"));
    out.push_str("\"},\"spans\":[");
    for (i, s) in spans.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"traceId\":\"");
        push_hex(&mut out, &s.trace_id);
        out.push_str("\",\"spanId\":\"");
        push_hex(&mut out, &s.span_id);
        out.push('"');
        if let Some(p) = s.parent_id {
            out.push_str(",\"parentSpanId\":\"");
            push_hex(&mut out, &p);
            out.push('"');
        }
        out.push_str(",\"name\":");
        push_json_str(&mut out, &s.name);
        let _ = write!(
            out,
            ",\"kind\":{},\"startTimeUnixNano\":\"{}\",\"endTimeUnixNano\":\"{}\",\"attributes\":[",
            s.kind as i32,
            s.start_ns,
            s.end_ns.max(s.start_ns)
        );
        for (j, (k, v)) in s.attributes.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str("{\"key\":");
            push_json_str(&mut out, k);
            out.push_str(",\"value\":{");
            match v {
                AttrValue::Str(v) => {
                    out.push_str("\"stringValue\":");
                    push_json_str(&mut out, v);
                }
                // int64 travels as a string in the JSON mapping.
                AttrValue::Int(v) => {
                    let _ = write!(out, "\"intValue\":\"{v}\"");
                }
                AttrValue::Bool(v) => {
                    let _ = write!(out, "\"boolValue\":{v}");
                }
            }
            out.push_str("}}");
        }
        out.push_str("],\"status\":");
        match &s.error {
            Some(m) => {
                out.push_str("{\"code\":2,\"message\":");
                push_json_str(&mut out, m);
                out.push('}');
            }
            None => out.push_str("{\"code\":0}"),
        }
        out.push('}');
    }
    out.push_str("]}]}]}");
    out.into_bytes()
}

impl Exporter {
    /// Starts the exporter when `otlp_endpoint` is set (and a Tokio
    /// runtime runs); `None` otherwise.
    pub fn start(cfg: &Config, region: &str, gateway_id: &str) -> Option<Arc<Exporter>> {
        let endpoint = cfg.otlp_endpoint.as_deref()?;
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let base = endpoint.trim_end_matches('/');
        let traces = format!("{base}/v1/traces").parse().ok()?;
        let metrics = format!("{base}/v1/metrics").parse().ok()?;
        let mut headers = http::HeaderMap::new();
        for (k, v) in &cfg.otlp_headers {
            if let (Ok(n), Ok(mut v)) = (
                http::HeaderName::try_from(k.as_str()),
                http::HeaderValue::try_from(v.expose()),
            ) {
                v.set_sensitive(true);
                headers.insert(n, v);
            }
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let target = Target {
            traces,
            metrics,
            endpoint: base.to_string(),
            headers,
            resource_text: resource(cfg, region, gateway_id).to_string(),
            resource: resource(cfg, region, gateway_id),
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let (control, control_rx) = mpsc::unbounded_channel();
        let ratio = cfg.otlp_sample_ratio.clamp(0.0, 1.0);
        let exporter = Arc::new(Exporter {
            tx,
            control,
            threshold: (ratio * u64::MAX as f64) as u64,
            always: ratio >= 1.0,
            dropped: AtomicU64::new(0),
            exported: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            render: OnceLock::new(),
        });
        let task = Task {
            exporter: Arc::downgrade(&exporter),
            target,
            client: client(),
            export_every: cfg.otlp_export_interval,
            metrics_every: cfg.otlp_metrics_interval,
            started_ns: now_ns(),
        };
        runtime.spawn(task.run(rx, control_rx));
        Some(exporter)
    }

    /// Whether a new trace (no `traceparent` from the client) is sampled.
    pub fn sample(&self, trace_id: &[u8; 16]) -> bool {
        if self.always {
            return true;
        }
        let mut low = [0u8; 8];
        low.copy_from_slice(&trace_id[8..]);
        u64::from_be_bytes(low) < self.threshold
    }

    /// Queues one request's spans; drops (and counts) them when the
    /// queue is full. Never waits.
    pub fn submit(&self, spans: Vec<SpanData>) {
        let n = spans.len() as u64;
        if self.tx.try_send(spans).is_err() {
            self.dropped.fetch_add(n, Relaxed);
        }
    }

    /// Exports the metrics `render` returns every `otlp_metrics_interval`
    /// (the first call wins).
    pub fn export_metrics(&self, render: Render) {
        let _ = self.render.set(render);
    }

    /// Spans dropped (queue full, or too many pending while the collector
    /// fails).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Spans the collector accepted.
    pub fn exported(&self) -> u64 {
        self.exported.load(Relaxed)
    }

    /// Exports that failed.
    pub fn failures(&self) -> u64 {
        self.failures.load(Relaxed)
    }

    /// Sends what is queued, waiting at most `grace` (and 5 s).
    pub async fn flush(&self, grace: Duration) {
        let (ack, done) = oneshot::channel();
        if self.control.send(ack).is_ok() {
            let _ = tokio::time::timeout(grace.min(MAX_FLUSH), done).await;
        }
    }
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

fn client() -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(https)
}

/// The background task's state.
struct Task {
    exporter: std::sync::Weak<Exporter>,
    target: Target,
    client: HttpClient,
    export_every: Duration,
    metrics_every: Duration,
    started_ns: u64,
}

/// Spans waiting to go, and the retry state while the collector fails.
#[derive(Default)]
struct Pending {
    spans: Vec<SpanData>,
    backoff: Duration,
    retry_at: Option<Instant>,
    failing_since_warn: Option<Instant>,
}

impl Task {
    async fn run(
        self,
        mut rx: mpsc::Receiver<Vec<SpanData>>,
        mut control: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
    ) {
        let mut pending = Pending::default();
        let mut tick = tokio::time::interval(self.export_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let metrics_every = if self.metrics_every.is_zero() {
            // Never fires in practice: metrics export is off.
            Duration::from_secs(365 * 24 * 3600)
        } else {
            self.metrics_every
        };
        let mut metrics_tick =
            tokio::time::interval_at(tokio::time::Instant::now() + metrics_every, metrics_every);
        metrics_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                got = rx.recv() => match got {
                    Some(spans) => {
                        self.keep(&mut pending, spans);
                        if pending.spans.len() >= BATCH && pending.retry_at.is_none() {
                            self.send(&mut pending, false).await;
                        }
                    }
                    None => {
                        // The gateway is gone: a last bounded flush.
                        let _ = tokio::time::timeout(MAX_FLUSH, self.send(&mut pending, true)).await;
                        return;
                    }
                },
                _ = tick.tick() => {
                    let due = pending.retry_at.is_none_or(|t| Instant::now() >= t);
                    if !pending.spans.is_empty() && due {
                        self.send(&mut pending, false).await;
                    }
                }
                _ = metrics_tick.tick(), if !self.metrics_every.is_zero() => {
                    self.send_metrics(&mut pending).await;
                }
                ack = control.recv() => {
                    if let Some(ack) = ack {
                        while let Ok(spans) = rx.try_recv() {
                            self.keep(&mut pending, spans);
                        }
                        self.send(&mut pending, true).await;
                        if !self.metrics_every.is_zero() {
                            self.send_metrics(&mut pending).await;
                        }
                        let _ = ack.send(());
                    }
                }
            }
        }
    }

    /// Adds `spans` to what is pending, dropping the oldest past the cap.
    fn keep(&self, pending: &mut Pending, spans: Vec<SpanData>) {
        pending.spans.extend(spans);
        if pending.spans.len() > MAX_PENDING {
            let over = pending.spans.len() - MAX_PENDING;
            pending.spans.drain(..over);
            if let Some(e) = self.exporter.upgrade() {
                e.dropped.fetch_add(over as u64, Relaxed);
            }
        }
    }

    /// Sends pending spans in batches; stops at the first failure (the
    /// rest wait for the backoff), unless `all` (shutdown: one attempt).
    async fn send(&self, pending: &mut Pending, all: bool) {
        while !pending.spans.is_empty() {
            let n = pending.spans.len().min(BATCH);
            let body = encode_spans(&self.target.resource_text, &pending.spans[..n]);
            match self.post(&self.target.traces, body).await {
                Ok(()) => {
                    pending.spans.drain(..n);
                    if let Some(e) = self.exporter.upgrade() {
                        e.exported.fetch_add(n as u64, Relaxed);
                    }
                    if pending.retry_at.take().is_some() {
                        tracing::info!(endpoint = %self.target.endpoint, "OTLP export recovered");
                    }
                    pending.backoff = Duration::ZERO;
                }
                Err(e) => {
                    self.failed(pending, "traces", &e);
                    if all {
                        let n = pending.spans.len() as u64;
                        pending.spans.clear();
                        if let Some(x) = self.exporter.upgrade() {
                            x.dropped.fetch_add(n, Relaxed);
                        }
                    }
                    return;
                }
            }
        }
    }

    async fn send_metrics(&self, pending: &mut Pending) {
        let Some(render) = self
            .exporter
            .upgrade()
            .and_then(|e| e.render.get().cloned())
        else {
            return;
        };
        let text = render();
        let body = encode_metrics(&self.target.resource, &text, self.started_ns, now_ns());
        if let Err(e) = self.post(&self.target.metrics, body).await {
            self.failed(pending, "metrics", &e);
        }
    }

    /// Backoff and a warning at most once a minute.
    fn failed(&self, pending: &mut Pending, what: &str, error: &str) {
        if let Some(e) = self.exporter.upgrade() {
            e.failures.fetch_add(1, Relaxed);
        }
        pending.backoff = if pending.backoff.is_zero() {
            self.export_every.min(MAX_BACKOFF)
        } else {
            (pending.backoff * 2).min(MAX_BACKOFF.max(self.export_every))
        };
        pending.retry_at = Some(Instant::now() + pending.backoff);
        let warn = pending
            .failing_since_warn
            .is_none_or(|t| t.elapsed() >= WARN_EVERY);
        if warn {
            pending.failing_since_warn = Some(Instant::now());
            let dropped = self.exporter.upgrade().map_or(0, |e| e.dropped());
            tracing::warn!(
                endpoint = %self.target.endpoint,
                export = what,
                error = %error,
                pending = pending.spans.len(),
                dropped,
                retry_in = ?pending.backoff,
                "OTLP export failed; retrying"
            );
        }
    }

    /// One POST; `Err` names the failure (never a header value).
    async fn post(&self, uri: &http::Uri, body: Vec<u8>) -> Result<(), String> {
        let mut req = http::Request::new(Full::new(Bytes::from(body)));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = uri.clone();
        *req.headers_mut() = self.target.headers.clone();
        let resp = tokio::time::timeout(POST_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| {
                let mut s = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(c) = src {
                    s.push_str(": ");
                    s.push_str(&c.to_string());
                    src = c.source();
                }
                s
            })?;
        let status = resp.status();
        // The body is dropped unread: the connection closes rather than
        // reading an unbounded answer.
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the collector answered {status}"))
        }
    }
}

/// One sample of the exposition: name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// One metric family parsed from the text exposition.
struct Family {
    name: String,
    help: String,
    kind: String,
    /// `(labels, value)`; histogram series keep `le` in the labels.
    samples: Vec<Sample>,
}

/// Parses `name{a="b",c="d"} value` (label values unescaped).
fn parse_sample(line: &str) -> Option<Sample> {
    let (name_end, mut labels) = match line.find('{') {
        Some(i) => (i, Vec::new()),
        None => (line.find(' ')?, Vec::new()),
    };
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    if rest.starts_with('{') {
        rest = &rest[1..];
        loop {
            rest = rest.trim_start_matches(',');
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=')?;
            let key = rest[..eq].to_string();
            let mut chars = rest[eq + 1..].char_indices();
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            let mut end = None;
            let mut escaped = false;
            for (i, c) in chars {
                if escaped {
                    value.push(if c == 'n' { '\n' } else { c });
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    end = Some(eq + 1 + i + 1);
                    break;
                } else {
                    value.push(c);
                }
            }
            labels.push((key, value));
            rest = &rest[end?..];
        }
    }
    let v = rest.trim();
    let value = match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    Some((name, labels, value))
}

/// Parses the text exposition into families (in order).
fn parse_exposition(text: &str) -> Vec<Family> {
    let mut out: Vec<Family> = Vec::new();
    let mut help = String::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("# HELP ") {
            help = h.split_once(' ').map_or("", |x| x.1).to_string();
        } else if let Some(t) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = t.split_once(' ') {
                out.push(Family {
                    name: name.to_string(),
                    help: std::mem::take(&mut help),
                    kind: kind.trim().to_string(),
                    samples: Vec::new(),
                });
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            if let (Some(s), Some(f)) = (parse_sample(line), out.last_mut()) {
                f.samples.push(s);
            }
        }
    }
    out
}

fn label_attrs(labels: &[(String, String)]) -> Json {
    Json::Array(
        labels
            .iter()
            .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
            .collect(),
    )
}

/// The `ExportMetricsServiceRequest` JSON of a text exposition: counters
/// become cumulative monotonic sums (named without `_total`), gauges
/// gauges, histograms cumulative explicit-bucket histograms.
pub fn encode_metrics(resource: &Json, exposition: &str, start_ns: u64, now_ns: u64) -> Vec<u8> {
    let (start, now) = (start_ns.to_string(), now_ns.to_string());
    let mut metrics = Vec::new();
    for f in parse_exposition(exposition) {
        let point = |labels: &[(String, String)], v: f64| {
            json!({"attributes": label_attrs(labels), "startTimeUnixNano": start,
                   "timeUnixNano": now, "asDouble": v})
        };
        match f.kind.as_str() {
            "counter" => {
                let points: Vec<Json> = f.samples.iter().map(|(_, l, v)| point(l, *v)).collect();
                let name = f.name.strip_suffix("_total").unwrap_or(&f.name);
                metrics.push(json!({"name": name, "description": f.help, "sum": {
                    "dataPoints": points, "aggregationTemporality": 2, "isMonotonic": true}}));
            }
            "gauge" => {
                let points: Vec<Json> = f.samples.iter().map(|(_, l, v)| point(l, *v)).collect();
                metrics.push(json!({"name": f.name, "description": f.help,
                                    "gauge": {"dataPoints": points}}));
            }
            "histogram" => {
                let points = histogram_points(&f, &start, &now);
                let unit = if f.name.ends_with("_seconds") {
                    "s"
                } else {
                    ""
                };
                metrics.push(json!({"name": f.name, "description": f.help, "unit": unit,
                    "histogram": {"dataPoints": points, "aggregationTemporality": 2}}));
            }
            _ => {}
        }
    }
    let body = json!({"resourceMetrics": [{
        "resource": resource,
        "scopeMetrics": [{"scope": scope(), "metrics": metrics}],
    }]});
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Groups `_bucket`/`_sum`/`_count` samples by their labels (without
/// `le`); cumulative bucket counts become per-bucket counts.
fn histogram_points(f: &Family, start: &str, now: &str) -> Vec<Json> {
    struct Point {
        labels: Vec<(String, String)>,
        bounds: Vec<f64>,
        cumulative: Vec<f64>,
        sum: f64,
        count: f64,
    }
    let mut points: Vec<Point> = Vec::new();
    let bucket = format!("{}_bucket", f.name);
    let sum = format!("{}_sum", f.name);
    let count = format!("{}_count", f.name);
    for (name, labels, v) in &f.samples {
        let le = labels.iter().find(|(k, _)| k == "le").map(|x| x.1.clone());
        let key: Vec<(String, String)> =
            labels.iter().filter(|(k, _)| k != "le").cloned().collect();
        let i = match points.iter().position(|p| p.labels == key) {
            Some(i) => i,
            None => {
                points.push(Point {
                    labels: key,
                    bounds: Vec::new(),
                    cumulative: Vec::new(),
                    sum: 0.0,
                    count: 0.0,
                });
                points.len() - 1
            }
        };
        let p = &mut points[i];
        if *name == bucket {
            match le.as_deref() {
                Some("+Inf") | None => {}
                Some(b) => {
                    if let Ok(b) = b.parse::<f64>() {
                        p.bounds.push(b);
                        p.cumulative.push(*v);
                    }
                }
            }
        } else if *name == sum {
            p.sum = *v;
        } else if *name == count {
            p.count = *v;
        }
    }
    points
        .into_iter()
        .map(|p| {
            let mut counts = Vec::with_capacity(p.cumulative.len() + 1);
            let mut prev = 0.0;
            for c in &p.cumulative {
                counts.push(((c - prev).max(0.0) as u64).to_string());
                prev = *c;
            }
            counts.push(((p.count - prev).max(0.0) as u64).to_string());
            json!({"attributes": label_attrs(&p.labels), "startTimeUnixNano": start,
                   "timeUnixNano": now, "count": (p.count as u64).to_string(), "sum": p.sum,
                   "bucketCounts": counts, "explicitBounds": p.bounds})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_encode_to_the_json_mapping() {
        let s = SpanData {
            trace_id: [0xab; 16],
            span_id: [1; 8],
            parent_id: Some([2; 8]),
            name: "GET /echo/\"x\"\n\u{1}".into(),
            kind: SpanKind::Server,
            start_ns: 10,
            end_ns: 20,
            attributes: vec![
                ("http.response.status_code", AttrValue::Int(200)),
                ("turnpike.api_id", AttrValue::Str("echo".into())),
            ],
            error: Some("policy/Boom".into()),
        };
        let body = encode_spans("{}", &[s]);
        let v: Json = serde_json::from_slice(&body).unwrap();
        let span = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "abababababababababababababababab");
        assert_eq!(span["spanId"], "0101010101010101");
        assert_eq!(span["name"], "GET /echo/\"x\"\n\u{1}");
        assert!(span["attributes"][1]["value"]["stringValue"] == "echo");
        assert_eq!(span["parentSpanId"], "0202020202020202");
        assert_eq!(span["kind"], 2);
        assert_eq!(span["startTimeUnixNano"], "10");
        assert_eq!(span["attributes"][0]["value"]["intValue"], "200");
        assert_eq!(span["status"]["code"], 2);
    }

    #[test]
    fn the_exposition_becomes_otlp_metrics() {
        let text = "# HELP turnpike_requests_total Gateway requests answered.\n\
            # TYPE turnpike_requests_total counter\n\
            turnpike_requests_total{api=\"echo\",operation=\"a\\\"b\"} 3\n\
            # HELP turnpike_config_revision Configuration revision in service.\n\
            # TYPE turnpike_config_revision gauge\n\
            turnpike_config_revision 7\n\
            # HELP d_seconds Time.\n\
            # TYPE d_seconds histogram\n\
            d_seconds_bucket{api=\"echo\",le=\"0.1\"} 1\n\
            d_seconds_bucket{api=\"echo\",le=\"1\"} 3\n\
            d_seconds_bucket{api=\"echo\",le=\"+Inf\"} 4\n\
            d_seconds_sum{api=\"echo\"} 2.5\n\
            d_seconds_count{api=\"echo\"} 4\n";
        let v: Json = serde_json::from_slice(&encode_metrics(&json!({}), text, 1, 2)).unwrap();
        let m = &v["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
        assert_eq!(m[0]["name"], "turnpike_requests");
        assert_eq!(m[0]["sum"]["isMonotonic"], true);
        let p = &m[0]["sum"]["dataPoints"][0];
        assert_eq!(p["asDouble"], 3.0);
        assert_eq!(p["attributes"][1]["value"]["stringValue"], "a\"b");
        assert_eq!(m[1]["gauge"]["dataPoints"][0]["asDouble"], 7.0);
        let h = &m[2]["histogram"]["dataPoints"][0];
        assert_eq!(h["count"], "4");
        assert_eq!(h["bucketCounts"], json!(["1", "2", "1"]));
        assert_eq!(h["explicitBounds"], json!([0.1, 1.0]));
        assert_eq!(h["attributes"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        // The runtime is never driven: the task does not drain the queue.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _g = rt.enter();
        let cfg = Config {
            otlp_endpoint: Some("http://127.0.0.1:9".into()),
            ..Config::default()
        };
        let e = Exporter::start(&cfg, "r", "g").unwrap();
        let span = SpanData {
            trace_id: [1; 16],
            span_id: [1; 8],
            parent_id: None,
            name: "x".into(),
            kind: SpanKind::Server,
            start_ns: 0,
            end_ns: 0,
            attributes: Vec::new(),
            error: None,
        };
        for _ in 0..QUEUE {
            e.submit(vec![span.clone(), span.clone()]);
        }
        assert_eq!(e.dropped(), 0);
        e.submit(vec![span.clone(), span.clone(), span]);
        assert_eq!(e.dropped(), 3);
    }

    #[test]
    fn ratio_sampling_follows_the_trace_id() {
        let cfg = Config {
            otlp_sample_ratio: 0.5,
            ..Config::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _g = rt.enter();
        let cfg = Config {
            otlp_endpoint: Some("http://127.0.0.1:9".into()),
            ..cfg
        };
        let e = Exporter::start(&cfg, "r", "g").unwrap();
        let mut low = [0u8; 16];
        low[8] = 0x10;
        let mut high = [0u8; 16];
        high[8] = 0xf0;
        assert!(e.sample(&low));
        assert!(!e.sample(&high));
    }
}
