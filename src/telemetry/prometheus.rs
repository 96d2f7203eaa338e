//! The gateway's own metrics and their Prometheus text exposition (format
//! 0.0.4), served at `GET /metrics` on the management listener.
//!
//! Owns: request counts, durations (histograms) and bytes per
//! `api`/`operation`/`product`/`status_class`; rate-limit and quota
//! rejections; cache lookups; and [`render`], which writes those, the
//! custom metrics of `emit-metric` and the token metrics (the
//! [`Registry`](super::registry::Registry)) and the node's gauges in the
//! text format.
//!
//! Recording is lock-free: each family is a map from label values to
//! atomics behind an `ArcSwap`; a request loads the map, finds its series
//! and adds with relaxed atomics. Only a series seen for the first time
//! takes the family's insert mutex and publishes a copied map (cold path;
//! series are bounded by configuration). Label values are configuration
//! identifiers (API, operation, product, policy names) or fixed words:
//! never paths, keys or header values. Past `MAX_SERIES` series per family
//! new series are dropped and counted.

use super::registry::Registry;
use arc_swap::ArcSwap;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most series one family holds.
pub const MAX_SERIES: usize = 10_000;

/// Upper bounds (seconds) of the duration histograms' buckets.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A duration histogram: per-bucket (non-cumulative) counts, the sum in
/// microseconds and the count.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; DURATION_BUCKETS.len()],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = DURATION_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum_us
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }
}

/// What one request series counts.
#[derive(Debug, Default)]
pub struct RequestCell {
    requests: AtomicU64,
    duration: Histogram,
    backend: Histogram,
    request_bytes: AtomicU64,
    /// Shared with a streamed body's [`Metered`](super::flow::Metered).
    response_bytes: Arc<AtomicU64>,
    /// Response head to body end.
    client: Arc<Histogram>,
}

/// One series: its label values and its cell.
#[derive(Debug)]
pub(super) struct Entry<C> {
    pub(super) labels: Box<[Box<str>]>,
    pub(super) cell: C,
}

/// A metric family: label values → cell, lock-free to read.
#[derive(Debug)]
pub struct Family<C> {
    map: ArcSwap<HashMap<u64, Vec<Arc<Entry<C>>>>>,
    insert: Mutex<usize>,
    dropped: AtomicU64,
    max_series: usize,
}

impl<C: Default> Default for Family<C> {
    fn default() -> Self {
        Family::with_limit(MAX_SERIES)
    }
}

fn hash_labels(labels: &[&str]) -> u64 {
    let mut h = DefaultHasher::new();
    labels.hash(&mut h);
    h.finish()
}

fn same(a: &[Box<str>], b: &[&str]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.as_ref() == *y)
}

impl<C: Default> Family<C> {
    /// A family holding at most `max_series` series.
    pub fn with_limit(max_series: usize) -> Family<C> {
        Family {
            map: ArcSwap::from_pointee(HashMap::new()),
            insert: Mutex::new(0),
            dropped: AtomicU64::new(0),
            max_series,
        }
    }

    /// Runs `f` on the cell of `labels` (creating it while under the cap;
    /// past it, `f` does not run and the drop is counted).
    pub fn with(&self, labels: &[&str], f: impl FnOnce(&C)) {
        let h = hash_labels(labels);
        {
            let map = self.map.load();
            if let Some(e) = map
                .get(&h)
                .and_then(|v| v.iter().find(|e| same(&e.labels, labels)))
            {
                f(&e.cell);
                return;
            }
        }
        // Cold path: first sight of this series.
        let mut len = match self.insert.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let cur = self.map.load_full();
        if let Some(e) = cur
            .get(&h)
            .and_then(|v| v.iter().find(|e| same(&e.labels, labels)))
        {
            f(&e.cell);
            return;
        }
        if *len >= self.max_series {
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        let entry = Arc::new(Entry {
            labels: labels.iter().map(|l| Box::<str>::from(*l)).collect(),
            cell: C::default(),
        });
        f(&entry.cell);
        let mut next = (*cur).clone();
        next.entry(h).or_default().push(entry);
        self.map.store(Arc::new(next));
        *len += 1;
    }

    /// Every series, sorted by label values.
    pub(super) fn entries(&self) -> Vec<Arc<Entry<C>>> {
        let mut out: Vec<_> = self.map.load().values().flatten().cloned().collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Series dropped because the cap was reached.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

/// One answered gateway request, as [`Metrics::observe`] records it.
/// `api`, `operation`, `product` are configuration ids (`""` when the
/// request matched none).
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub api: &'a str,
    pub operation: &'a str,
    pub product: &'a str,
    pub status: u16,
    pub total: Duration,
    /// Time spent in `forward-request`, when the request reached it.
    pub backend: Option<Duration>,
    /// Body sizes known at header time (`Content-Length` / exact size).
    pub request_bytes: u64,
    pub response_bytes: u64,
}

/// The gateway's own metrics. Owned by the gateway (inside
/// [`Telemetry`](super::Telemetry)), so they survive configuration changes.
#[derive(Debug, Default)]
pub struct Metrics {
    /// `api`, `operation`, `product`, `status_class`.
    requests: Family<RequestCell>,
    /// `api`, `policy`.
    rejections: Family<AtomicU64>,
    /// `api`, `result`.
    cache: Family<AtomicU64>,
    /// Open upstream connections by `host:port` (shared with the
    /// gateway's connector).
    pub connections: Arc<super::flow::Connections>,
}

/// `2xx` … for a status code.
pub fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "other",
    }
}

impl Metrics {
    /// Records one answered request.
    pub fn observe(&self, o: &Observed<'_>) {
        let _ = self.observe_flow(o, false);
    }

    /// Records one answered request like [`Metrics::observe`] and returns
    /// where its body's late measurements go: the client duration, and
    /// the bytes sent when `count_bytes` (the length was unknown at head
    /// time). `None` past the family's series cap.
    pub fn observe_flow(
        &self,
        o: &Observed<'_>,
        count_bytes: bool,
    ) -> Option<super::flow::FlowSink> {
        let labels = [o.api, o.operation, o.product, status_class(o.status)];
        let mut sink = None;
        self.requests.with(&labels, |c| {
            c.requests.fetch_add(1, Relaxed);
            c.duration.observe(o.total);
            if let Some(b) = o.backend {
                c.backend.observe(b);
            }
            c.request_bytes.fetch_add(o.request_bytes, Relaxed);
            c.response_bytes.fetch_add(o.response_bytes, Relaxed);
            sink = Some(super::flow::FlowSink {
                client: c.client.clone(),
                bytes: count_bytes.then(|| c.response_bytes.clone()),
            });
        });
        sink
    }

    /// Counts a request refused by a limit policy (`rate-limit`, `quota`, …).
    pub fn rejected(&self, api: &str, policy: &str) {
        self.rejections
            .with(&[api, policy], |c| _ = c.fetch_add(1, Relaxed));
    }

    /// Counts a cache lookup: `result` is `hit` or `miss`.
    pub fn cache_lookup(&self, api: &str, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache
            .with(&[api, result], |c| _ = c.fetch_add(1, Relaxed));
    }
}

/// What a scrape reads besides the recorded metrics.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo<'a> {
    /// The node's region (`[node] region`), a label of the request series.
    pub region: &'a str,
    /// The configuration revision in service.
    pub revision: u64,
    /// Backends whose circuit breaker is open, with every backend known.
    pub breakers: Vec<(String, bool)>,
    /// A secondary's seconds since its last answered configuration poll
    /// and since its last accepted heartbeat (`None`: not yet, or a primary).
    pub sync_age: Option<f64>,
    pub heartbeat_age: Option<f64>,
}

/// Escapes a label value (`\`, `"`, newline).
fn escape_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A valid label name from a dimension name: `dim_` then `[a-zA-Z0-9_]`.
fn label_name(dim: &str) -> String {
    let mut s = String::from("dim_");
    s.extend(
        dim.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    s
}

fn labels_of(pairs: &[(&str, &str)], out: &mut String) {
    if pairs.is_empty() {
        return;
    }
    out.push('{');
    for (i, (n, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(n);
        out.push_str("=\"");
        escape_value(v, out);
        out.push('"');
    }
    out.push('}');
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    labels_of(labels, out);
    let _ = writeln!(out, " {value}");
}

/// A float as the text format writes it.
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn histogram(out: &mut String, name: &str, labels: &[(&str, &str)], h: &Histogram) {
    let mut cumulative = 0u64;
    let bucket = format!("{name}_bucket");
    for (i, b) in DURATION_BUCKETS.iter().enumerate() {
        cumulative += h.buckets[i].load(Relaxed);
        let le = float(*b);
        let mut l = labels.to_vec();
        l.push(("le", &le));
        sample(out, &bucket, &l, cumulative);
    }
    let count = h.count.load(Relaxed);
    let mut l = labels.to_vec();
    l.push(("le", "+Inf"));
    sample(out, &bucket, &l, count);
    let sum = h.sum_us.load(Relaxed) as f64 / 1e6;
    sample(out, &format!("{name}_sum"), labels, float(sum));
    sample(out, &format!("{name}_count"), labels, count);
}

/// The whole exposition: the gateway's metrics, the custom and token
/// metrics of `custom`, and the node's gauges.
pub fn render(metrics: &Metrics, custom: &Registry, node: &NodeInfo<'_>) -> String {
    let mut out = String::with_capacity(4096);
    header(
        &mut out,
        "turnpike_build_info",
        "gauge",
        "Build of the running binary (always 1).",
    );
    sample(
        &mut out,
        "turnpike_build_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("commit", env!("TURNPIKE_GIT_COMMIT")),
        ],
        1,
    );
    header(
        &mut out,
        "turnpike_config_revision",
        "gauge",
        "Configuration revision in service.",
    );
    sample(&mut out, "turnpike_config_revision", &[], node.revision);

    let requests = metrics.requests.entries();
    let with_region = |e: &Entry<RequestCell>| -> Vec<(&'static str, String)> {
        vec![
            ("api", e.labels[0].to_string()),
            ("operation", e.labels[1].to_string()),
            ("product", e.labels[2].to_string()),
            ("status_class", e.labels[3].to_string()),
            ("region", node.region.to_string()),
        ]
    };
    let label_sets: Vec<Vec<(&'static str, String)>> =
        requests.iter().map(|e| with_region(e)).collect();
    let refs: Vec<Vec<(&str, &str)>> = label_sets
        .iter()
        .map(|v| v.iter().map(|(n, s)| (*n, s.as_str())).collect())
        .collect();

    header(
        &mut out,
        "turnpike_requests_total",
        "counter",
        "Gateway requests answered.",
    );
    for (e, l) in requests.iter().zip(&refs) {
        sample(
            &mut out,
            "turnpike_requests_total",
            l,
            e.cell.requests.load(Relaxed),
        );
    }
    header(
        &mut out,
        "turnpike_request_duration_seconds",
        "histogram",
        "Time from request headers to response headers.",
    );
    for (e, l) in requests.iter().zip(&refs) {
        histogram(
            &mut out,
            "turnpike_request_duration_seconds",
            l,
            &e.cell.duration,
        );
    }
    header(
        &mut out,
        "turnpike_backend_duration_seconds",
        "histogram",
        "Time spent in forward-request (to the backend's response headers).",
    );
    for (e, l) in requests.iter().zip(&refs) {
        if e.cell.backend.count() > 0 {
            histogram(
                &mut out,
                "turnpike_backend_duration_seconds",
                l,
                &e.cell.backend,
            );
        }
    }
    header(
        &mut out,
        "turnpike_client_duration_seconds",
        "histogram",
        "Time from response headers to the end of the response body (sending to the client).",
    );
    for (e, l) in requests.iter().zip(&refs) {
        if e.cell.client.count() > 0 {
            histogram(
                &mut out,
                "turnpike_client_duration_seconds",
                l,
                &e.cell.client,
            );
        }
    }
    header(
        &mut out,
        "turnpike_request_bytes_total",
        "counter",
        "Request body bytes declared by Content-Length.",
    );
    for (e, l) in requests.iter().zip(&refs) {
        sample(
            &mut out,
            "turnpike_request_bytes_total",
            l,
            e.cell.request_bytes.load(Relaxed),
        );
    }
    header(
        &mut out,
        "turnpike_response_bytes_total",
        "counter",
        "Response body bytes: the length known at response header time, else the bytes sent.",
    );
    for (e, l) in requests.iter().zip(&refs) {
        sample(
            &mut out,
            "turnpike_response_bytes_total",
            l,
            e.cell.response_bytes.load(Relaxed),
        );
    }

    header(
        &mut out,
        "turnpike_limit_rejections_total",
        "counter",
        "Requests refused by rate-limit and quota policies.",
    );
    for e in metrics.rejections.entries() {
        sample(
            &mut out,
            "turnpike_limit_rejections_total",
            &[("api", &e.labels[0]), ("policy", &e.labels[1])],
            e.cell.load(Relaxed),
        );
    }
    header(
        &mut out,
        "turnpike_cache_lookups_total",
        "counter",
        "cache-lookup results (hit or miss).",
    );
    for e in metrics.cache.entries() {
        sample(
            &mut out,
            "turnpike_cache_lookups_total",
            &[("api", &e.labels[0]), ("result", &e.labels[1])],
            e.cell.load(Relaxed),
        );
    }
    header(
        &mut out,
        "turnpike_backend_circuit_open",
        "gauge",
        "1 while the backend's circuit breaker is open.",
    );
    for (b, open) in &node.breakers {
        sample(
            &mut out,
            "turnpike_backend_circuit_open",
            &[("backend", b)],
            u8::from(*open),
        );
    }
    let conns = metrics.connections.read();
    header(
        &mut out,
        "turnpike_upstream_connections",
        "gauge",
        "Open upstream connections (in use or idle in the pool) by backend host:port.",
    );
    for (h, open, _) in &conns {
        sample(
            &mut out,
            "turnpike_upstream_connections",
            &[("host", h)],
            open,
        );
    }
    header(
        &mut out,
        "turnpike_upstream_connections_opened_total",
        "counter",
        "Upstream connections opened by backend host:port.",
    );
    for (h, _, opened) in &conns {
        sample(
            &mut out,
            "turnpike_upstream_connections_opened_total",
            &[("host", h)],
            opened,
        );
    }
    for (name, help, v) in [
        (
            "turnpike_cluster_last_sync_age_seconds",
            "Seconds since the primary last answered a configuration poll (secondaries).",
            node.sync_age,
        ),
        (
            "turnpike_cluster_heartbeat_age_seconds",
            "Seconds since the primary last accepted a heartbeat (secondaries).",
            node.heartbeat_age,
        ),
    ] {
        if let Some(v) = v {
            header(&mut out, name, "gauge", help);
            sample(&mut out, name, &[], float(v));
        }
    }
    header(
        &mut out,
        "turnpike_series_dropped_total",
        "counter",
        "Values not recorded because a family reached its series cap.",
    );
    let dropped = metrics.requests.dropped()
        + metrics.rejections.dropped()
        + metrics.cache.dropped()
        + metrics.connections.family.dropped()
        + custom.dropped();
    sample(&mut out, "turnpike_series_dropped_total", &[], dropped);

    custom_metrics(&mut out, custom);
    out
}

/// `emit-metric` and the token metrics: per series the sum of the values
/// (`turnpike_custom_metric_total`) and how many were recorded
/// (`turnpike_custom_metric_records_total`), labelled `namespace`, `name`
/// and each dimension as `dim_<name>`.
fn custom_metrics(out: &mut String, custom: &Registry) {
    let series = custom.snapshot();
    let mut sets = Vec::with_capacity(series.len());
    for s in &series {
        let mut l: Vec<(String, String)> = vec![
            ("namespace".into(), s.key.namespace.clone()),
            ("name".into(), s.key.name.clone()),
        ];
        for (n, v) in &s.key.dimensions {
            let name = label_name(n);
            if !l.iter().any(|(x, _)| *x == name) {
                l.push((name, v.clone()));
            }
        }
        sets.push(l);
    }
    for (metric, help, records) in [
        (
            "turnpike_custom_metric_total",
            "Sum of the values recorded by emit-metric and the token metric policies.",
            false,
        ),
        (
            "turnpike_custom_metric_records_total",
            "How many values emit-metric and the token metric policies recorded.",
            true,
        ),
    ] {
        header(out, metric, "counter", help);
        for (s, l) in series.iter().zip(&sets) {
            let refs: Vec<(&str, &str)> = l.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            if records {
                sample(out, metric, &refs, s.count);
            } else {
                sample(out, metric, &refs, float(s.sum));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        for ms in [2u64, 2, 40, 20_000, 60_000] {
            m.observe(&Observed {
                api: "a",
                operation: "o",
                product: "",
                status: 200,
                total: Duration::from_millis(ms),
                backend: None,
                request_bytes: 3,
                response_bytes: 5,
            });
        }
        let text = render(&m, &Registry::default(), &NodeInfo::default());
        let l = r#"api="a",operation="o",product="",status_class="2xx",region="""#;
        assert!(text.contains(&format!("turnpike_requests_total{{{l}}} 5\n")));
        assert!(text.contains(&format!(
            "turnpike_request_duration_seconds_bucket{{{l},le=\"0.0025\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "turnpike_request_duration_seconds_bucket{{{l},le=\"0.05\"}} 3\n"
        )));
        assert!(text.contains(&format!(
            "turnpike_request_duration_seconds_bucket{{{l},le=\"30\"}} 4\n"
        )));
        assert!(text.contains(&format!(
            "turnpike_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} 5\n"
        )));
        assert!(text.contains(&format!(
            "turnpike_request_duration_seconds_count{{{l}}} 5\n"
        )));
        assert!(text.contains(&format!(
            "turnpike_request_duration_seconds_sum{{{l}}} 80.044\n"
        )));
        assert!(text.contains(&format!("turnpike_response_bytes_total{{{l}}} 25\n")));
        assert!(!text.contains("turnpike_backend_duration_seconds_count"));
    }

    #[test]
    fn label_values_are_escaped_and_dimensions_renamed() {
        let r = Registry::default();
        r.record(
            "ns",
            "Total Tokens",
            vec![("API ID".into(), "a\"b\\c\nd".into())],
            7.0,
        );
        let text = render(&Metrics::default(), &r, &NodeInfo::default());
        assert!(text.contains(
            "turnpike_custom_metric_total{namespace=\"ns\",name=\"Total Tokens\",dim_API_ID=\"a\\\"b\\\\c\\nd\"} 7\n"
        ));
        assert!(text.contains("turnpike_custom_metric_records_total{namespace=\"ns\""));
    }

    #[test]
    fn cluster_ages_only_when_known() {
        let r = Registry::default();
        let m = Metrics::default();
        let text = render(&m, &r, &NodeInfo::default());
        assert!(!text.contains("turnpike_cluster_"));
        let node = NodeInfo {
            sync_age: Some(1.5),
            heartbeat_age: Some(0.25),
            ..NodeInfo::default()
        };
        let text = render(&m, &r, &node);
        assert!(text.contains("\nturnpike_cluster_last_sync_age_seconds 1.5\n"));
        assert!(text.contains("\nturnpike_cluster_heartbeat_age_seconds 0.25\n"));
    }

    #[test]
    fn families_are_capped() {
        let f: Family<AtomicU64> = Family::with_limit(2);
        for i in 0..5 {
            f.with(&[&i.to_string()], |c| _ = c.fetch_add(1, Relaxed));
        }
        f.with(&["0"], |c| _ = c.fetch_add(1, Relaxed));
        let e = f.entries();
        assert_eq!(e.len(), 2);
        assert_eq!(f.dropped(), 3);
        assert_eq!(e[0].cell.load(Relaxed), 2);
    }

    #[test]
    fn rejections_and_cache_lookups_are_counted() {
        let m = Metrics::default();
        m.rejected("echo", "rate-limit");
        m.rejected("echo", "rate-limit");
        m.cache_lookup("echo", true);
        m.cache_lookup("echo", false);
        let text = render(&m, &Registry::default(), &NodeInfo::default());
        assert!(text
            .contains("turnpike_limit_rejections_total{api=\"echo\",policy=\"rate-limit\"} 2\n"));
        assert!(text.contains("turnpike_cache_lookups_total{api=\"echo\",result=\"hit\"} 1\n"));
        assert!(text.contains("turnpike_cache_lookups_total{api=\"echo\",result=\"miss\"} 1\n"));
    }
}
