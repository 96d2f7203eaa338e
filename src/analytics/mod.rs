//! Analytics: per-minute aggregates of gateway traffic and the reports
//! built from them (APIM's Reports API).
//!
//! Owns: the aggregate's key ([`Dims`]: api, operation, product,
//! subscription, user, region, status class) and values ([`Cell`]: call
//! counts in APIM's report classes, bytes, cache hits, total and backend
//! latency sums/min/max and a latency histogram with the Prometheus
//! histogram's buckets); the in-memory [`Recorder`] the gateway adds every
//! request to (sharded, never blocking a request, a bounded number of keys
//! per minute); the persisted aggregates ([`db::AnalyticsDb`], a sealed sled
//! tree keyed by minute first); and the query layer ([`report::report`]).
//!
//! Layer 2 (like `store`): uses `store`, `model` and `config`; the gateway
//! records into it, `mgmt` and `portal` read reports from it, `cluster`
//! carries a secondary's aggregates to the primary in heartbeats.

pub mod db;
pub mod report;

pub use db::{AnalyticsDb, AnalyticsError};
pub use report::{report, GroupBy, ReportQuery, ReportRow};

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Upper bounds (milliseconds) of the latency histogram's buckets: the
/// Prometheus duration histogram's buckets; one more bucket counts what
/// lies above the last bound.
pub const LATENCY_BUCKETS_MS: [f64; 14] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
];

/// Number of histogram cells (the buckets plus the overflow cell).
pub const HIST_CELLS: usize = LATENCY_BUCKETS_MS.len() + 1;

/// The value every dimension of the overflow aggregate holds.
pub const OTHER: &str = "(other)";

/// Shards of the [`Recorder`].
const SHARDS: usize = 16;

/// What one aggregate is keyed by (besides its minute). Empty strings mean
/// "none" (e.g. a request without a subscription).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dims {
    pub api: String,
    pub operation: String,
    pub product: String,
    pub subscription: String,
    pub user: String,
    pub region: String,
    /// The status class: 1 to 5 (`status / 100`), 0 when unknown.
    pub class: u8,
}

/// The values of one aggregate. Times in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Cell {
    pub count: u64,
    /// APIM's report classes (see [`Class::of`]).
    pub success: u64,
    pub blocked: u64,
    pub failed: u64,
    pub other: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub cache_hit: u64,
    pub cache_miss: u64,
    pub api_us_sum: u64,
    pub api_us_min: u64,
    pub api_us_max: u64,
    /// Requests that reached a backend (the service-time fields cover these).
    pub service_count: u64,
    pub service_us_sum: u64,
    pub service_us_min: u64,
    pub service_us_max: u64,
    /// Counts per [`LATENCY_BUCKETS_MS`] bucket of the total time, then
    /// the overflow cell.
    pub hist: [u64; HIST_CELLS],
}

impl Default for Cell {
    fn default() -> Self {
        Cell {
            count: 0,
            success: 0,
            blocked: 0,
            failed: 0,
            other: 0,
            bytes_in: 0,
            bytes_out: 0,
            cache_hit: 0,
            cache_miss: 0,
            api_us_sum: 0,
            api_us_min: 0,
            api_us_max: 0,
            service_count: 0,
            service_us_sum: 0,
            service_us_min: 0,
            service_us_max: 0,
            hist: [0; HIST_CELLS],
        }
    }
}

/// APIM's report classes of a response status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `status <= 301`, 304 and 307.
    Success,
    /// 401, 403 and 429.
    Blocked,
    /// 400 and 500–599.
    Failed,
    /// Anything else (e.g. 404, 302).
    Other,
}

impl Class {
    /// The class of `status`, as APIM's `ReportRecordContract` defines them.
    pub fn of(status: u16) -> Class {
        match status {
            0..=301 | 304 | 307 => Class::Success,
            401 | 403 | 429 => Class::Blocked,
            400 | 500..=599 => Class::Failed,
            _ => Class::Other,
        }
    }
}

/// One answered request, as the gateway hands it to the [`Recorder`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample<'a> {
    pub api: &'a str,
    pub operation: &'a str,
    pub product: &'a str,
    pub subscription: &'a str,
    pub user: &'a str,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Arrival to the response head.
    pub total: Duration,
    /// Time waiting for backends (`None`: no backend was called).
    pub backend: Option<Duration>,
    /// `Some(true)`: served from cache; `Some(false)`: a lookup missed.
    pub cache: Option<bool>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Cell {
    /// Adds one request.
    pub fn add(&mut self, s: &Sample<'_>) {
        let one = Cell::of(s);
        self.merge(&one);
    }

    /// The aggregate of one request.
    pub fn of(s: &Sample<'_>) -> Cell {
        let mut c = Cell {
            count: 1,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            ..Cell::default()
        };
        match Class::of(s.status) {
            Class::Success => c.success = 1,
            Class::Blocked => c.blocked = 1,
            Class::Failed => c.failed = 1,
            Class::Other => c.other = 1,
        }
        match s.cache {
            Some(true) => c.cache_hit = 1,
            Some(false) => c.cache_miss = 1,
            None => {}
        }
        let us = micros(s.total);
        c.api_us_sum = us;
        c.api_us_min = us;
        c.api_us_max = us;
        if let Some(b) = s.backend {
            let us = micros(b);
            c.service_count = 1;
            c.service_us_sum = us;
            c.service_us_min = us;
            c.service_us_max = us;
        }
        let ms = s.total.as_secs_f64() * 1000.0;
        let i = LATENCY_BUCKETS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        c.hist[i] = 1;
        c
    }

    /// Adds `o` to this aggregate.
    pub fn merge(&mut self, o: &Cell) {
        if o.count > 0 {
            if self.count == 0 {
                self.api_us_min = o.api_us_min;
            } else {
                self.api_us_min = self.api_us_min.min(o.api_us_min);
            }
            self.api_us_max = self.api_us_max.max(o.api_us_max);
        }
        if o.service_count > 0 {
            if self.service_count == 0 {
                self.service_us_min = o.service_us_min;
            } else {
                self.service_us_min = self.service_us_min.min(o.service_us_min);
            }
            self.service_us_max = self.service_us_max.max(o.service_us_max);
        }
        self.count += o.count;
        self.success += o.success;
        self.blocked += o.blocked;
        self.failed += o.failed;
        self.other += o.other;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.cache_hit += o.cache_hit;
        self.cache_miss += o.cache_miss;
        self.api_us_sum = self.api_us_sum.saturating_add(o.api_us_sum);
        self.service_count += o.service_count;
        self.service_us_sum = self.service_us_sum.saturating_add(o.service_us_sum);
        for (a, b) in self.hist.iter_mut().zip(o.hist.iter()) {
            *a += b;
        }
    }
}

/// One minute's aggregate for one key: what is persisted, and what a
/// secondary sends in its heartbeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    /// Minutes since the Unix epoch.
    pub minute: u64,
    #[serde(flatten)]
    pub dims: Dims,
    pub cell: Cell,
}

/// The minute (since the Unix epoch) `t` falls in.
pub fn minute_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 60)
        .unwrap_or(0)
}

/// The in-memory aggregates of the current minutes, owned by the `Gateway`
/// (not the snapshot). Recording takes one of 16 shard mutexes for one map
/// operation, trying the next shard when one is busy (never waiting);
/// [`Recorder::drain`] takes everything out for the store or a heartbeat.
#[derive(Debug)]
pub struct Recorder {
    shards: Vec<Mutex<Shard>>,
    next: AtomicUsize,
    region: String,
    max_keys: usize,
    /// Requests not recorded because every shard was busy.
    dropped: AtomicU64,
    /// Requests recorded under the overflow key (the key cap was reached).
    overflowed: AtomicU64,
}

/// One shard: aggregates by (minute, hash of the key), so a request whose
/// key is already there is added without allocating.
#[derive(Debug, Default)]
struct Shard {
    cells: HashMap<(u64, u64), Vec<(Dims, Cell)>>,
    keys: HashMap<u64, usize>,
}

/// The key of a request without its region (one per recorder).
#[derive(Clone, Copy)]
struct Key<'a> {
    api: &'a str,
    operation: &'a str,
    product: &'a str,
    subscription: &'a str,
    user: &'a str,
    class: u8,
}

impl Key<'_> {
    fn hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            self.api,
            self.operation,
            self.product,
            self.subscription,
            self.user,
            self.class,
        )
            .hash(&mut h);
        h.finish()
    }

    fn is(&self, d: &Dims) -> bool {
        d.class == self.class
            && d.api == self.api
            && d.operation == self.operation
            && d.product == self.product
            && d.subscription == self.subscription
            && d.user == self.user
    }

    fn dims(&self, region: &str) -> Dims {
        Dims {
            api: self.api.to_string(),
            operation: self.operation.to_string(),
            product: self.product.to_string(),
            subscription: self.subscription.to_string(),
            user: self.user.to_string(),
            region: region.to_string(),
            class: self.class,
        }
    }
}

impl Recorder {
    /// A recorder tagging every aggregate with `region`, holding at most
    /// `max_keys` distinct keys per minute per shard (more go to the
    /// `(other)` key).
    pub fn new(region: &str, max_keys: usize) -> Recorder {
        Recorder {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            next: AtomicUsize::new(0),
            region: region.to_string(),
            max_keys: max_keys.max(1),
            dropped: AtomicU64::new(0),
            overflowed: AtomicU64::new(0),
        }
    }

    /// Records one request at the current minute.
    pub fn record(&self, s: &Sample<'_>) {
        self.record_at(minute_of(SystemTime::now()), s)
    }

    /// Records one request at `minute`.
    pub fn record_at(&self, minute: u64, s: &Sample<'_>) {
        let key = Key {
            api: s.api,
            operation: s.operation,
            product: s.product,
            subscription: s.subscription,
            user: s.user,
            class: u8::try_from(s.status / 100).unwrap_or(0).min(9),
        };
        let hash = key.hash();
        let start = self.next.fetch_add(1, Relaxed);
        for i in 0..SHARDS {
            let Ok(mut shard) = self.shards[(start + i) % SHARDS].try_lock() else {
                continue;
            };
            let shard = &mut *shard;
            if let Some(cells) = shard.cells.get_mut(&(minute, hash)) {
                if let Some((_, c)) = cells.iter_mut().find(|(d, _)| key.is(d)) {
                    c.add(s);
                    return;
                }
            }
            let keys = shard.keys.entry(minute).or_insert(0);
            let (key, hash) = if *keys >= self.max_keys {
                self.overflowed.fetch_add(1, Relaxed);
                let other = Key {
                    api: OTHER,
                    operation: OTHER,
                    product: OTHER,
                    subscription: OTHER,
                    user: OTHER,
                    class: key.class,
                };
                (other, other.hash())
            } else {
                *keys += 1;
                (key, hash)
            };
            let cells = shard.cells.entry((minute, hash)).or_default();
            match cells.iter_mut().find(|(d, _)| key.is(d)) {
                Some((_, c)) => c.add(s),
                None => cells.push((key.dims(&self.region), Cell::of(s))),
            }
            return;
        }
        self.dropped.fetch_add(1, Relaxed);
    }

    /// Takes every aggregate recorded so far, merged by key.
    pub fn drain(&self) -> Vec<Row> {
        let mut all: HashMap<(u64, Dims), Cell> = HashMap::new();
        for shard in &self.shards {
            let taken = match shard.lock() {
                Ok(mut s) => {
                    s.keys.clear();
                    std::mem::take(&mut s.cells)
                }
                Err(poisoned) => {
                    let mut s = poisoned.into_inner();
                    s.keys.clear();
                    std::mem::take(&mut s.cells)
                }
            };
            for ((minute, _), cells) in taken {
                for (dims, c) in cells {
                    all.entry((minute, dims)).or_default().merge(&c);
                }
            }
        }
        let mut rows: Vec<Row> = all
            .into_iter()
            .map(|((minute, dims), cell)| Row { minute, dims, cell })
            .collect();
        rows.sort_by(|a, b| (a.minute, &a.dims).cmp(&(b.minute, &b.dims)));
        rows
    }

    /// Requests dropped (every shard busy) and requests folded into the
    /// overflow key, since start.
    pub fn losses(&self) -> (u64, u64) {
        (self.dropped.load(Relaxed), self.overflowed.load(Relaxed))
    }
}

/// Rows per heartbeat batch.
pub const BATCH_ROWS: usize = 2000;
/// Batches a secondary holds for the primary; older ones are dropped.
pub const OUTBOX_BATCHES: usize = 120;

/// A secondary's aggregates on their way to the primary: `sequence` grows
/// with every batch, across restarts (it starts from the clock), so the
/// primary counts each batch once however often it is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    pub sequence: u64,
    pub rows: Vec<Row>,
}

/// A secondary's batches not yet acknowledged by the primary (bounded:
/// past [`OUTBOX_BATCHES`] the oldest go, counted and logged).
#[derive(Debug, Default)]
pub struct Outbox {
    state: Mutex<OutboxState>,
    dropped: AtomicU64,
}

#[derive(Debug, Default)]
struct OutboxState {
    pending: std::collections::VecDeque<Batch>,
    last: u64,
}

impl Outbox {
    /// Moves what `recorder` holds into new batches.
    pub fn refill(&self, recorder: &Recorder) {
        let rows = recorder.drain();
        if rows.is_empty() {
            return;
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for chunk in rows.chunks(BATCH_ROWS) {
            let sequence = now_ms.max(st.last + 1);
            st.last = sequence;
            st.pending.push_back(Batch {
                sequence,
                rows: chunk.to_vec(),
            });
        }
        while st.pending.len() > OUTBOX_BATCHES {
            if let Some(lost) = st.pending.pop_front() {
                let n = self.dropped.fetch_add(1, Relaxed);
                if n.is_power_of_two() || n == 0 {
                    tracing::warn!(
                        dropped = n + 1,
                        rows = lost.rows.len(),
                        "analytics batches for the primary dropped (heartbeats failing)"
                    );
                }
            }
        }
    }

    /// The oldest `max` batches, to send.
    pub fn pending(&self, max: usize) -> Vec<Batch> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.pending.iter().take(max).cloned().collect()
    }

    /// The primary accepted every batch up to `sequence`.
    pub fn acked(&self, sequence: u64) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while st.pending.front().is_some_and(|b| b.sequence <= sequence) {
            st.pending.pop_front();
        }
    }

    /// Batches held, and batches dropped since start.
    pub fn held(&self) -> (usize, u64) {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (st.pending.len(), self.dropped.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(status: u16, ms: u64) -> Sample<'static> {
        Sample {
            api: "a",
            operation: "op",
            status,
            bytes_in: 10,
            bytes_out: 100,
            total: Duration::from_millis(ms),
            backend: Some(Duration::from_millis(ms / 2)),
            ..Sample::default()
        }
    }

    #[test]
    fn classes_follow_apim() {
        for (s, c) in [
            (200, Class::Success),
            (301, Class::Success),
            (304, Class::Success),
            (307, Class::Success),
            (302, Class::Other),
            (400, Class::Failed),
            (401, Class::Blocked),
            (403, Class::Blocked),
            (429, Class::Blocked),
            (404, Class::Other),
            (500, Class::Failed),
            (503, Class::Failed),
        ] {
            assert_eq!(Class::of(s), c, "{s}");
        }
    }

    #[test]
    fn records_merge_and_drain() {
        let r = Recorder::new("west", 100);
        for ms in [1, 3, 40] {
            r.record_at(7, &sample(200, ms));
        }
        r.record_at(7, &sample(429, 2));
        r.record_at(8, &sample(500, 2));
        let rows = r.drain();
        assert_eq!(rows.len(), 3);
        let ok = rows.iter().find(|r| r.dims.class == 2).unwrap();
        assert_eq!(ok.minute, 7);
        assert_eq!(ok.dims.region, "west");
        assert_eq!(ok.cell.count, 3);
        assert_eq!(ok.cell.success, 3);
        assert_eq!(ok.cell.bytes_out, 300);
        assert_eq!(ok.cell.api_us_min, 1000);
        assert_eq!(ok.cell.api_us_max, 40_000);
        assert_eq!(ok.cell.hist.iter().sum::<u64>(), 3);
        assert_eq!(ok.cell.hist[0], 1);
        assert!(r.drain().is_empty());
    }

    #[test]
    fn keys_past_the_cap_go_to_other() {
        let r = Recorder::new("west", 2);
        for api in ["a", "b", "c", "d"] {
            // Every shard sees every key: record 16 times each.
            for _ in 0..SHARDS {
                r.record_at(
                    1,
                    &Sample {
                        api,
                        status: 200,
                        ..Sample::default()
                    },
                );
            }
        }
        let rows = r.drain();
        let total: u64 = rows.iter().map(|r| r.cell.count).sum();
        assert_eq!(total, 4 * SHARDS as u64);
        assert!(rows.iter().any(|r| r.dims.api == OTHER));
        assert_eq!(r.losses().1, 2 * SHARDS as u64);
    }

    #[test]
    fn the_outbox_keeps_batches_until_acked() {
        let r = Recorder::new("east", 10);
        let out = Outbox::default();
        r.record_at(1, &sample(200, 1));
        out.refill(&r);
        r.record_at(2, &sample(200, 1));
        out.refill(&r);
        out.refill(&r);
        let sent = out.pending(5);
        assert_eq!(sent.len(), 2);
        assert!(sent[0].sequence < sent[1].sequence);
        out.acked(sent[0].sequence);
        assert_eq!(out.pending(5), vec![sent[1].clone()]);
        out.acked(sent[1].sequence);
        assert_eq!(out.held(), (0, 0));
    }
}
